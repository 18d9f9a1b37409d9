//! `krea doctor`: each thing a run depends on, checked and reported as ok, warn or fail with
//! the fix. The checks are library calls (`Krea::probe`, `Krea::refresh_catalog`, the journal's
//! `damaged`/`pending`/`unresolved`); this file only words them.

use serde_json::{Value, json};

use crate::cli::Global;
use crate::context::{self, Ctx};
use crate::exit;
use crate::output::Out;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    out: Out,
    rows: Vec<Value>,
    worst: Level,
    code: u8,
}

impl Report {
    fn add(&mut self, level: Level, check: &str, detail: impl Into<String>, fix: Option<String>) {
        let detail = detail.into();
        let word = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        self.out.line(format!("{word}  {check:<8} {detail}"));
        if let Some(fix) = &fix {
            self.out.line(format!("              fix: {fix}"));
        }
        self.worst = self.worst.max(level);
        self.rows.push(json!({
            "check": check,
            "status": match level { Level::Ok => "ok", Level::Warn => "warn", Level::Fail => "fail" },
            "detail": detail,
            "fix": fix,
        }));
    }
}

pub async fn run(out: &Out, g: &Global) -> anyhow::Result<u8> {
    let mut report = Report {
        out: *out,
        rows: Vec::new(),
        worst: Level::Ok,
        code: exit::OK,
    };
    let login = "run `krea auth login`, or set KREA_API_TOKEN".to_string();
    let found = if g.sim { None } else { context::find_token(g)? };
    match (&found, g.sim) {
        (_, true) => report.add(Level::Ok, "token", "the in-process simulator's", None),
        (Some(f), false) => report.add(
            Level::Ok,
            "token",
            format!("{} from {}", krea::credentials::masked(&f.token), f.source),
            None,
        ),
        (None, false) => {
            report.add(Level::Fail, "token", "none found", Some(login.clone()));
            report.code = exit::AUTH;
        }
    }
    if found.is_some() || g.sim {
        match context::connect(g).await {
            Ok(ctx) => {
                api_checks(&ctx, &mut report, &login).await;
                journal_checks(&ctx, &mut report);
            }
            // The journal's store cannot be opened (a database down, a refused password):
            // that is this check's finding, not the end of the others.
            Err(e) if matches!(e.downcast_ref(), Some(krea::Error::Journal { .. })) => {
                report.code = e
                    .downcast_ref::<krea::Error>()
                    .map_or(exit::NETWORK, exit::code_of);
                report.add(
                    Level::Fail,
                    "journal",
                    krea::redact::clean(&format!("{e:#}"), None, 400),
                    Some(
                        "check that the database runs and that --journal (or KREA_JOURNAL) \
                         has the right address, user and password; nothing is sent until it \
                         opens"
                            .into(),
                    ),
                );
            }
            Err(e) => return Err(e),
        }
    }
    output_dir_check(&mut report);
    out.json(&json!({"ok": report.worst != Level::Fail, "checks": report.rows}));
    Ok(match report.worst {
        Level::Fail if report.code == exit::OK => exit::NETWORK,
        Level::Fail => report.code,
        _ => exit::OK,
    })
}

async fn api_checks(ctx: &Ctx, report: &mut Report, login: &str) {
    let url = ctx.krea.base_url().to_string();
    let probe = match ctx.krea.probe().await {
        Ok(p) => p,
        Err(e) => {
            report.code = exit::code_of(&e);
            let fix = if report.code == exit::AUTH {
                format!("the token was refused: create a new one and {login}")
            } else {
                format!("check the network and the base URL ({url})")
            };
            report.add(Level::Fail, "api", e.report(), Some(fix));
            return;
        }
    };
    report.add(
        Level::Ok,
        "api",
        format!("{url} accepts the token ({} ms)", probe.latency.as_millis()),
        None,
    );
    match probe.clock_skew(chrono::Utc::now()) {
        None => report.add(
            Level::Warn,
            "clock",
            "the API gave no time to compare",
            None,
        ),
        Some(skew) if skew.num_seconds().abs() <= 10 => report.add(
            Level::Ok,
            "clock",
            format!("within {} s of the API's", skew.num_seconds().abs().max(1)),
            None,
        ),
        Some(skew) => report.add(
            Level::Warn,
            "clock",
            format!("{} s off the API's", skew.num_seconds()),
            Some("sync the system clock (settling lost answers compares times)".into()),
        ),
    }
    let cached = krea::catalog::default_cache_path()
        .and_then(|p| krea::catalog::load_cache(&p).ok().flatten());
    let age = cached.map_or("no cached catalog".to_string(), |c| {
        let days = (chrono::Utc::now() - c.fetched_at).num_days();
        format!("cached catalog {days} day(s) old")
    });
    match ctx.krea.refresh_catalog().await {
        Ok(live) if live.not_built_in.is_empty() && live.gone.is_empty() => report.add(
            Level::Ok,
            "catalog",
            format!("{age}; the live document's {} models match this build", live.models),
            None,
        ),
        Ok(live) => report.add(
            Level::Warn,
            "catalog",
            format!(
                "{age}; the live document has {} model(s) this build lacks ({}) and lacks {} it has",
                live.not_built_in.len(),
                live.not_built_in.join(", "),
                live.gone.len()
            ),
            Some("the cache was refreshed now, so the new models work; update krea to get them built in".into()),
        ),
        Err(e) => report.add(
            Level::Warn,
            "catalog",
            format!("{age}; the live document could not be read: {e}"),
            None,
        ),
    }
}

fn journal_checks(ctx: &Ctx, report: &mut Report) {
    let Some(journal) = ctx.krea.journal() else {
        report.add(Level::Ok, "journal", "none (simulated run)", None);
        return;
    };
    let path = match journal.path() {
        Some(p) => crate::output::shown(p),
        None => format!("{} (PostgreSQL)", journal.location()),
    };
    let pending = journal.pending().map(|p| p.len());
    let unresolved = journal.unresolved().map(|u| u.len());
    let damaged = journal.damaged();
    let (Ok(pending), Ok(unresolved)) = (pending, unresolved) else {
        report.add(
            Level::Fail,
            "journal",
            format!("{path} cannot be read"),
            Some("check its permissions".into()),
        );
        return;
    };
    if !damaged.is_empty() {
        let lines: Vec<String> = damaged.iter().map(ToString::to_string).collect();
        report.add(
            Level::Warn,
            "journal",
            format!(
                "{path}: {} damaged line(s): {}",
                damaged.len(),
                lines.join("; ")
            ),
            Some(
                "the other entries are intact; finish the jobs named with `krea jobs wait ID`"
                    .into(),
            ),
        );
    }
    if unresolved > 0 {
        report.add(
            Level::Warn,
            "journal",
            format!("{unresolved} request(s) sent whose outcome is unknown"),
            Some("`krea jobs settle` finds out whether they created jobs".into()),
        );
    }
    if pending > 0 {
        report.add(
            Level::Warn,
            "journal",
            format!("{pending} job(s) submitted and not finished"),
            Some("`krea jobs resume` waits for them and downloads their files".into()),
        );
    }
    if damaged.is_empty() && unresolved == 0 && pending == 0 {
        report.add(
            Level::Ok,
            "journal",
            format!("{path}: nothing left unfinished"),
            None,
        );
    }
}

fn output_dir_check(report: &mut Report) {
    let probe = std::path::Path::new(".krea-doctor-write-test");
    match std::fs::write(probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(probe);
            report.add(
                Level::Ok,
                "output",
                "the current directory is writable",
                None,
            );
        }
        Err(e) => report.add(
            Level::Fail,
            "output",
            format!("the current directory is not writable ({e})"),
            Some("run from a writable directory or give -o DIR".into()),
        ),
    }
}
