//! `krea auth login | status | logout`: the token kept by the tool (never in shell history),
//! by profile, in a file only the user can read (see `krea::credentials`).

use std::io::{BufRead, IsTerminal};

use krea::Krea;
use krea::credentials::{Credentials, masked};
use serde_json::json;

use crate::cli::{AuthCommand, Global};
use crate::context::{self, TokenSource};
use crate::exit::{self, Usage};
use crate::output::Out;

fn store() -> anyhow::Result<Credentials> {
    Credentials::at_default().ok_or_else(|| {
        Usage("this system has no configuration directory to keep a token in: set KREA_API_TOKEN instead".into()).into()
    })
}

/// The token typed at a hidden prompt, or the first line of stdin when it is not a terminal.
fn read_token() -> anyhow::Result<String> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Krea API token (input hidden): ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    let token = token.trim().to_string();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(Usage(
            "no token read: paste the token (one line, no spaces) from https://krea.ai/settings/api-tokens".into(),
        )
        .into());
    }
    Ok(token)
}

/// A client for `token` against the base URL the options give (else Krea's).
fn client(token: &str, base_url: Option<&str>) -> anyhow::Result<Krea> {
    let mut b = Krea::builder().token(token);
    if let Some(url) = base_url {
        b = b.base_url(url);
    }
    Ok(b.build()?)
}

pub async fn run(out: &Out, g: &Global, cmd: &AuthCommand) -> anyhow::Result<u8> {
    match cmd {
        AuthCommand::Login => {
            let store = store()?;
            let token = match &g.token {
                Some(t) => t.clone(),
                None => read_token()?,
            };
            let krea = client(&token, g.base_url.as_deref())?;
            // One free request: a refused or unreachable token is not stored.
            let probe = krea.probe().await?;
            let saved_url = g
                .base_url
                .as_deref()
                .filter(|u| u.trim_end_matches('/') != krea::DEFAULT_BASE_URL);
            store.save(&g.profile, &token, saved_url)?;
            out.line(format!(
                "token {} accepted by {} ({} ms) and stored for profile {:?} in {} (readable by you only)",
                masked(&token),
                krea.base_url(),
                probe.latency.as_millis(),
                g.profile,
                crate::output::shown(store.path())
            ));
            if std::env::var_os(krea::TOKEN_ENV).is_some() {
                out.warn(format!(
                    "{} is set in this environment and is used before the stored token",
                    krea::TOKEN_ENV
                ));
            }
            out.json(&json!({"profile": g.profile, "stored": true, "path": store.path(), "base_url": krea.base_url(), "token": masked(&token)}));
            Ok(exit::OK)
        }
        AuthCommand::Status => {
            let Some(found) = context::find_token(g)? else {
                out.line(format!(
                    "no token: run `krea auth login` (profile {:?}) or set {}",
                    g.profile,
                    krea::TOKEN_ENV
                ));
                out.json(&json!({"token": null, "profile": g.profile}));
                return Ok(exit::AUTH);
            };
            let krea = client(&found.token, found.base_url.as_deref())?;
            let source = match &found.source {
                TokenSource::Stored { .. } => format!("profile {:?}, {}", g.profile, found.source),
                other => other.to_string(),
            };
            out.line(format!("token {} from {source}", masked(&found.token)));
            let (code, verdict) = match krea.probe().await {
                Ok(p) => (
                    exit::OK,
                    format!(
                        "accepted by {} ({} ms)",
                        krea.base_url(),
                        p.latency.as_millis()
                    ),
                ),
                Err(e) => (exit::code_of(&e), format!("not usable: {e}")),
            };
            out.line(&verdict);
            out.json(&json!({"token": masked(&found.token), "source": source, "base_url": krea.base_url(), "ok": code == exit::OK, "detail": verdict}));
            Ok(code)
        }
        AuthCommand::Logout => {
            let store = store()?;
            let removed = store.remove(&g.profile)?;
            out.line(if removed {
                format!(
                    "forgot the token of profile {:?} ({})",
                    g.profile,
                    crate::output::shown(store.path())
                )
            } else {
                format!("no token was stored for profile {:?}", g.profile)
            });
            if std::env::var_os(krea::TOKEN_ENV).is_some() {
                out.warn(format!(
                    "{} is still set in this environment",
                    krea::TOKEN_ENV
                ));
            }
            out.json(&json!({"profile": g.profile, "removed": removed}));
            Ok(exit::OK)
        }
    }
}
