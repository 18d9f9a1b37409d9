//! Tokens kept for the user, by profile, in a file only they can read: `krea auth login` writes
//! it so the token stays out of shell history and environment dumps. The file is
//! `krea/credentials.json` under the user's configuration directory, written whole to a
//! temporary file created with mode 0600 and renamed over the old one.
//!
//! ```no_run
//! use krea::credentials::Credentials;
//! # fn f() -> krea::Result<()> {
//! let store = Credentials::at_default().expect("a configuration directory");
//! store.save("default", "krea_...", None)?;
//! let token = store.get("default")?.expect("just saved");
//! let krea = krea::Krea::builder().token(token.token()).build()?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The default file: `krea/credentials.json` under the user's configuration directory.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("krea").join("credentials.json"))
}

/// `…a1b2`: enough of a token to tell two apart, never enough to use one.
pub fn masked(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("…{tail}")
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    profiles: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    saved_at: DateTime<Utc>,
}

/// A token read from the store.
pub struct StoredToken {
    /// Its profile.
    pub profile: String,
    token: SecretString,
    /// The API base URL saved with it, if one was.
    pub base_url: Option<String>,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

impl StoredToken {
    /// The token, to give to [`crate::KreaBuilder::token`].
    pub fn token(&self) -> &str {
        self.token.expose_secret()
    }

    /// The token masked for display ([`masked`]).
    pub fn masked(&self) -> String {
        masked(self.token())
    }
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("profile", &self.profile)
            .field("token", &self.masked())
            .field("base_url", &self.base_url)
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

/// The token store, one file.
#[derive(Debug, Clone)]
pub struct Credentials {
    path: PathBuf,
}

impl Credentials {
    /// The store at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Credentials {
        Credentials { path: path.into() }
    }

    /// The store at [`default_path`], if the platform has a configuration directory.
    pub fn at_default() -> Option<Credentials> {
        default_path().map(Credentials::at)
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<File> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::io(
                    &self.path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    fn write(&self, file: &File) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let text = serde_json::to_vec_pretty(file)
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        out.write_all(&text)
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }

    /// The token of `profile`, if one is stored.
    pub fn get(&self, profile: &str) -> Result<Option<StoredToken>> {
        Ok(self.read()?.profiles.remove(profile).map(|e| StoredToken {
            profile: profile.to_string(),
            token: SecretString::from(e.token),
            base_url: e.base_url,
            saved_at: e.saved_at,
        }))
    }

    /// Stores `token` (and the base URL it is for, if not the default) as `profile`,
    /// replacing what that profile had.
    pub fn save(&self, profile: &str, token: &str, base_url: Option<&str>) -> Result<()> {
        let mut file = self.read()?;
        file.profiles.insert(
            profile.to_string(),
            Entry {
                token: token.to_string(),
                base_url: base_url.map(String::from),
                saved_at: Utc::now(),
            },
        );
        self.write(&file)
    }

    /// Forgets `profile`'s token; `false` if there was none.
    pub fn remove(&self, profile: &str) -> Result<bool> {
        let mut file = self.read()?;
        let had = file.profiles.remove(profile).is_some();
        if had {
            self.write(&file)?;
        }
        Ok(had)
    }

    /// The stored profiles, by name.
    pub fn profiles(&self) -> Result<Vec<String>> {
        Ok(self.read()?.profiles.into_keys().collect())
    }
}

/// Where a token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// The environment ([`crate::TOKEN_ENV`]).
    Env,
    /// A profile of a credentials file (`krea auth login`).
    Stored {
        /// The file.
        path: PathBuf,
        /// When the token was saved there.
        saved_at: DateTime<Utc>,
    },
}

/// A token found by the usual precedence ([`find`]).
#[non_exhaustive]
pub struct FoundToken {
    token: SecretString,
    /// Where it came from.
    pub source: TokenSource,
    /// The base URL to use it with: [`crate::BASE_URL_ENV`] where set, else the one saved with
    /// a stored token.
    pub base_url: Option<String>,
}

impl FoundToken {
    /// The token, to give to [`crate::KreaBuilder::token`].
    pub fn token(&self) -> &str {
        self.token.expose_secret()
    }
}

impl std::fmt::Debug for FoundToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoundToken")
            .field("token", &masked(self.token()))
            .field("source", &self.source)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// The token a program should use, by the one precedence every front end keeps:
/// [`crate::TOKEN_ENV`] where set and not blank, else profile `profile` of the default
/// credentials file (what `krea auth login` saved). `None` when there is neither. A token given
/// explicitly ([`crate::KreaBuilder::token`], the CLI's `--token`) comes before both.
pub fn find(profile: &str) -> Result<Option<FoundToken>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    find_in(
        env(crate::TOKEN_ENV),
        env(crate::BASE_URL_ENV),
        Credentials::at_default().as_ref(),
        profile,
    )
}

fn find_in(
    env_token: Option<String>,
    env_url: Option<String>,
    store: Option<&Credentials>,
    profile: &str,
) -> Result<Option<FoundToken>> {
    if let Some(token) = env_token {
        return Ok(Some(FoundToken {
            token: SecretString::from(token),
            source: TokenSource::Env,
            base_url: env_url,
        }));
    }
    let Some(store) = store else { return Ok(None) };
    Ok(store.get(profile)?.map(|stored| FoundToken {
        token: stored.token.clone(),
        source: TokenSource::Stored {
            path: store.path().to_path_buf(),
            saved_at: stored.saved_at,
        },
        base_url: env_url.or(stored.base_url),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A credentials file in a scratch directory that goes when the test ends.
    fn store(name: &str) -> (tempfile::TempDir, Credentials) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("krea-cred-{name}-"))
            .tempdir()
            .expect("scratch");
        let store = Credentials::at(dir.path().join("krea").join("credentials.json"));
        (dir, store)
    }

    #[test]
    fn profiles_are_saved_read_and_removed_and_the_file_is_private() {
        let (_dir, s) = store("round");
        assert!(s.get("default").expect("read").is_none());
        s.save("default", "krea-token-0123456789", None)
            .expect("save");
        s.save("work", "krea-token-abcdefghij", Some("https://example.com"))
            .expect("save");
        let got = s.get("work").expect("read").expect("stored");
        assert_eq!(got.token(), "krea-token-abcdefghij");
        assert_eq!(got.base_url.as_deref(), Some("https://example.com"));
        assert_eq!(got.masked(), "…ghij");
        assert!(!format!("{got:?}").contains("abcdefghij"));
        assert_eq!(s.profiles().expect("list"), ["default", "work"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.path())
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(s.remove("default").expect("remove"));
        assert!(!s.remove("default").expect("remove"));
        assert_eq!(s.profiles().expect("list"), ["work"]);
    }

    #[test]
    fn the_environment_comes_before_the_stored_profile() {
        let (_dir, s) = store("precedence");
        assert!(
            find_in(None, None, Some(&s), "default")
                .expect("read")
                .is_none()
        );
        s.save(
            "default",
            "krea-token-stored-0123",
            Some("http://127.0.0.1:9"),
        )
        .expect("save");
        let stored = find_in(None, None, Some(&s), "default")
            .expect("read")
            .expect("found");
        assert_eq!(stored.token(), "krea-token-stored-0123");
        assert!(matches!(stored.source, TokenSource::Stored { .. }));
        assert_eq!(stored.base_url.as_deref(), Some("http://127.0.0.1:9"));
        assert!(!format!("{stored:?}").contains("stored-0123"));
        let env = find_in(Some("krea-token-env".into()), None, Some(&s), "default")
            .expect("read")
            .expect("found");
        assert_eq!(env.token(), "krea-token-env");
        assert_eq!(env.source, TokenSource::Env);
        // The environment's base URL goes with any token.
        let url = find_in(None, Some("http://127.0.0.1:8".into()), Some(&s), "default")
            .expect("read")
            .expect("found");
        assert_eq!(url.base_url.as_deref(), Some("http://127.0.0.1:8"));
        assert!(
            find_in(None, None, Some(&s), "work")
                .expect("read")
                .is_none()
        );
    }

    #[test]
    fn short_tokens_are_masked_entirely() {
        assert_eq!(masked("abc"), "…");
    }
}
