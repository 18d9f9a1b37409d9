//! What an assistant may read and write on this machine. An assistant is not the user: it reads
//! local files only under the output directory, the directories the user allowed
//! (`--allow-read DIR`) and the roots its client declares (MCP `roots/list`: the folders the
//! user opened there), and writes only under the output directory. Every path is resolved
//! first (symlinks followed, `..` applied), so neither a link nor `..` leads out.

use std::path::{Component, Path, PathBuf};

/// The directories a session may read and write, resolved at start.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Where files are written (resolved).
    write: PathBuf,
    /// Where files may be read: the output directory and each `--allow-read` (resolved).
    read: Vec<PathBuf>,
}

impl Bounds {
    /// `out_dir` must exist; each of `allowed` must be a directory.
    pub fn new(out_dir: &Path, allowed: &[PathBuf]) -> Result<Bounds, String> {
        let resolve = |dir: &Path, flag: &str| {
            let resolved = dir
                .canonicalize()
                .map_err(|e| format!("{flag} {}: {e}", dir.display()))?;
            if !resolved.is_dir() {
                return Err(format!("{flag} {}: not a directory", dir.display()));
            }
            Ok(resolved)
        };
        let write = resolve(out_dir, "--output-dir")?;
        let mut read = vec![write.clone()];
        for dir in allowed {
            read.push(resolve(dir, "--allow-read")?);
        }
        Ok(Bounds { write, read })
    }

    /// The output directory, resolved.
    pub fn output_dir(&self) -> &Path {
        &self.write
    }

    /// `path` resolved, if it is a file under a readable directory or one of `roots` (the
    /// client's, resolved); else why not, naming the flag that would allow it.
    pub fn readable(&self, path: &str, roots: &[PathBuf]) -> Result<PathBuf, String> {
        let resolved = Path::new(path)
            .canonicalize()
            .map_err(|e| format!("cannot read {path}: {e} (nothing was sent)"))?;
        if self
            .read
            .iter()
            .chain(roots)
            .any(|dir| resolved.starts_with(dir))
        {
            return Ok(resolved);
        }
        let dirs: Vec<String> = self
            .read
            .iter()
            .chain(roots)
            .map(|d| d.display().to_string())
            .collect();
        Err(format!(
            "{path} is outside the directories this server may read ({}); nothing was sent. The user can allow its directory with `krea mcp --allow-read {}`",
            dirs.join(", "),
            resolved.parent().map_or_else(
                || resolved.display().to_string(),
                |p| p.display().to_string()
            )
        ))
    }

    /// Where a run asked to write to `dir` (relative to the output directory) goes, if that is
    /// under the output directory; else why not.
    pub fn writable(&self, dir: &str) -> Result<PathBuf, String> {
        let asked = Path::new(dir);
        let joined = if asked.is_absolute() {
            asked.to_path_buf()
        } else {
            self.write.join(asked)
        };
        let resolved = resolve_new(&joined).ok_or_else(|| format!("{dir} cannot be resolved"))?;
        if resolved.starts_with(&self.write) {
            return Ok(resolved);
        }
        Err(format!(
            "{dir} is outside the output directory {} (runs write only under it; give a name inside it); nothing was sent",
            self.write.display()
        ))
    }
}

/// The directories among a client's roots: `file://` URIs of existing directories, resolved
/// (a root of another scheme, or one that is not a directory here, allows nothing).
pub fn root_dirs<'a>(uris: impl IntoIterator<Item = &'a str>) -> Vec<PathBuf> {
    uris.into_iter()
        .filter_map(|uri| url::Url::parse(uri).ok())
        .filter(|u| u.scheme() == "file")
        .filter_map(|u| u.to_file_path().ok())
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.is_dir())
        .collect()
}

/// `path` resolved although its last parts may not exist yet: `..` applied, the deepest part
/// that exists canonicalized (following its links), the rest appended.
fn resolve_new(path: &Path) -> Option<PathBuf> {
    let mut lexical = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Some(out);
        }
        rest.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("krea-bounds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out")).expect("scratch");
        std::fs::create_dir_all(dir.join("allowed")).expect("scratch");
        std::fs::create_dir_all(dir.join("private")).expect("scratch");
        dir
    }

    #[test]
    fn reads_only_under_the_output_and_allowed_directories_whatever_the_path_says() {
        let dir = scratch("read");
        for f in ["out/a.png", "allowed/b.png", "private/c.png"] {
            std::fs::write(dir.join(f), b"x").expect("file");
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("private/c.png"), dir.join("out/link.png"))
            .expect("link");
        let b = Bounds::new(&dir.join("out"), &[dir.join("allowed")]).expect("bounds");
        let path = |p: &str| dir.join(p).display().to_string();
        assert!(b.readable(&path("out/a.png"), &[]).is_ok());
        assert!(b.readable(&path("allowed/b.png"), &[]).is_ok());
        let refused = b
            .readable(&path("private/c.png"), &[])
            .expect_err("outside");
        assert!(refused.contains("--allow-read"), "{refused}");
        assert!(
            b.readable(&path("out/../private/c.png"), &[]).is_err(),
            ".."
        );
        #[cfg(unix)]
        assert!(
            b.readable(&path("out/link.png"), &[]).is_err(),
            "a link out"
        );
        assert!(b.readable(&path("out/missing.png"), &[]).is_err());
    }

    #[test]
    fn a_clients_file_roots_allow_reading_under_them_and_nothing_else_does() {
        let dir = scratch("roots");
        std::fs::write(dir.join("private/c.png"), b"x").expect("file");
        let b = Bounds::new(&dir.join("out"), &[]).expect("bounds");
        let file = dir.join("private/c.png").display().to_string();
        let uri = url::Url::from_directory_path(dir.join("private")).expect("absolute");
        let roots = root_dirs([
            uri.as_str(),
            "https://example.com/private",
            "file:///no/such/dir",
            "not a uri",
        ]);
        assert_eq!(roots, [dir.join("private").canonicalize().expect("dir")]);
        assert!(b.readable(&file, &[]).is_err());
        assert!(b.readable(&file, &roots).is_ok());
        let other = root_dirs([url::Url::from_directory_path(dir.join("allowed"))
            .expect("absolute")
            .as_str()]);
        assert!(b.readable(&file, &other).is_err());
    }

    #[test]
    fn writes_only_under_the_output_directory() {
        let dir = scratch("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("private"), dir.join("out/escape")).expect("link");
        let b = Bounds::new(&dir.join("out"), &[]).expect("bounds");
        let out = dir.join("out").canonicalize().expect("out");
        assert_eq!(b.writable("run-1").expect("inside"), out.join("run-1"));
        assert_eq!(
            b.writable("a/../b/new").expect("inside"),
            out.join("b").join("new")
        );
        assert!(b.writable("../../escaped-run").is_err());
        assert!(b.writable("/tmp/elsewhere").is_err());
        #[cfg(unix)]
        assert!(b.writable("escape/run").is_err(), "a link out");
    }
}
