//! `krea-gen/spec/krea-api.lock`: the sha256 of the upstream document the vendored description
//! was made from, where it came from and when. A tiny `key = "value"` file, written by `cargo xtask spec refresh`.

use std::fmt;

/// Which upstream OpenAPI document the vendored description was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Lower-case hex sha256 of the document's bytes.
    pub sha256: String,
    /// Where the document was taken from (URL or file path).
    pub source: String,
    /// The day it was taken (YYYY-MM-DD).
    pub date: String,
}

impl Lock {
    /// Parses the lock file's text; the message names the missing or malformed key.
    pub fn parse(text: &str) -> Result<Lock, String> {
        let mut sha256 = None;
        let mut source = None;
        let mut date = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected `key = \"value\"`", n + 1))?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("line {}: the value must be quoted", n + 1))?
                .to_string();
            match key.trim() {
                "sha256" => sha256 = Some(value),
                "source" => source = Some(value),
                "date" => date = Some(value),
                other => return Err(format!("line {}: unknown key `{other}`", n + 1)),
            }
        }
        let sha256 = sha256.ok_or("missing `sha256`")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`sha256` is not 64 hex digits: {sha256:?}"));
        }
        Ok(Lock {
            sha256: sha256.to_ascii_lowercase(),
            source: source.ok_or("missing `source`")?,
            date: date.ok_or("missing `date`")?,
        })
    }
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# The upstream OpenAPI document krea-api.json was made from (that document is never committed)."
        )?;
        writeln!(
            f,
            "# Written by `cargo xtask spec refresh`; do not edit by hand."
        )?;
        writeln!(f, "sha256 = \"{}\"", self.sha256)?;
        writeln!(f, "source = \"{}\"", self.source)?;
        writeln!(f, "date = \"{}\"", self.date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text_form() {
        let lock = Lock {
            sha256: "ab".repeat(32),
            source: "https://api.krea.ai/openapi.json".into(),
            date: "2026-11-21".into(),
        };
        assert_eq!(Lock::parse(&lock.to_string()), Ok(lock));
    }

    #[test]
    fn rejects_a_short_hash_and_missing_keys() {
        assert!(Lock::parse("sha256 = \"abc\"\nsource = \"x\"\ndate = \"d\"").is_err());
        let err = Lock::parse(&format!("sha256 = \"{}\"", "0".repeat(64))).unwrap_err();
        assert!(err.contains("source"), "{err}");
    }
}
