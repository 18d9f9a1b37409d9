//! Downloading results: a client with no credentials, each file streamed to a temporary file in
//! the destination directory, its length checked, then renamed into place. File names are
//! chosen here (`{slug}-{job8}-{n}.{ext}`, the extension from the content type, or the exact
//! name an [`OutputPlan`] asks for), never taken from the server, so a hostile URL cannot write
//! outside the directory. Every transfer goes through the one request path (retries, deadline).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use tokio::io::AsyncWriteExt;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::Finished;
use crate::journal::OutputPlan;
use crate::redact::{MESSAGE_CHARS, clean};
use crate::send::{Body, Call, Class, Fault};

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Replace an existing file of the same name (else a numbered name is chosen).
    pub overwrite: bool,
    /// `fsync` each file (and its directory) before reporting it, so it survives a power loss,
    /// not only a crash of this process (renaming into place already guarantees that). Costs
    /// about a fifth of the throughput on large files.
    pub durable: bool,
}

impl DownloadOptions {
    /// Replacing files that exist (or not).
    pub fn overwrite(mut self, yes: bool) -> DownloadOptions {
        self.overwrite = yes;
        self
    }

    /// With `fsync` (or not).
    pub fn durable(mut self, yes: bool) -> DownloadOptions {
        self.durable = yes;
        self
    }
}

impl Finished {
    /// Downloads every result file into `dir` (created if needed); returns the paths in URL
    /// order.
    pub async fn download_to(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let plan = OutputPlan::dir(dir.as_ref())
            .overwrite(self.output.as_ref().is_some_and(|o| o.overwrite));
        self.download_plan(&plan, self.krea.inner.durable_downloads)
            .await
    }

    /// Downloads where the request's output plan says (a directory, or an exact file name).
    pub async fn download(&self) -> Result<Vec<PathBuf>> {
        let Some(plan) = self.output.clone() else {
            return Err(Error::Config(
                "this job has no output plan: use download_to(dir)".into(),
            ));
        };
        self.download_plan(&plan, self.krea.inner.durable_downloads)
            .await
    }

    /// Downloads into `dir` with `options`.
    pub async fn download_with(
        &self,
        dir: &Path,
        options: DownloadOptions,
    ) -> Result<Vec<PathBuf>> {
        let plan = OutputPlan::dir(dir).overwrite(options.overwrite);
        self.download_plan(&plan, options.durable).await
    }

    /// Downloads as `plan` says, at most the client's download concurrency at once, then
    /// notes the job finished in the journal.
    pub(crate) async fn download_plan(
        &self,
        plan: &OutputPlan,
        durable: bool,
    ) -> Result<Vec<PathBuf>> {
        tokio::fs::create_dir_all(&plan.dir)
            .await
            .map_err(|e| Error::io(&plan.dir, e))?;
        let concurrency = self.krea.inner.download_concurrency;
        // Owned items: a closure over borrowed ones makes this future's `Send` unprovable to
        // the compiler in generic callers (an MCP tool's future must be `Send`).
        let files: Vec<(String, Target)> = (self.urls().iter().enumerate())
            .map(|(n, url)| (url.clone(), self.target(plan, n)))
            .collect();
        let paths: Vec<PathBuf> = futures_util::stream::iter(files)
            .map(|(url, target)| async move {
                self.krea
                    .download(&url, &plan.dir, target, plan.overwrite, durable)
                    .await
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        self.close_journal(&paths)?;
        Ok(paths)
    }

    /// The name of file `n`: the plan's exact name (numbered after the first), else
    /// `{slug}-{job8}-{n}` with the extension the content type gives.
    fn target(&self, plan: &OutputPlan, n: usize) -> Target {
        match &plan.file_name {
            Some(name) => {
                let name = sanitize(name);
                let named = if n == 0 {
                    name
                } else {
                    match name.rsplit_once('.') {
                        Some((stem, ext)) => format!("{stem}-{n}.{ext}"),
                        None => format!("{name}-{n}"),
                    }
                };
                Target::Exact(named)
            }
            None => {
                let slug = self.model.map_or("krea", |m| m.slug.as_str());
                let job8: String = self.job_id().simple().to_string().chars().take(8).collect();
                Target::Stem(format!("{}-{job8}-{n}", sanitize(slug)))
            }
        }
    }
}

/// What a downloaded file is called.
#[derive(Debug, Clone)]
enum Target {
    /// This stem, with the extension the content type gives.
    Stem(String),
    /// Exactly this name.
    Exact(String),
}

impl Target {
    fn stem(&self) -> &str {
        match self {
            Target::Stem(s) => s,
            Target::Exact(n) => n.rsplit_once('.').map_or(n.as_str(), |(s, _)| s),
        }
    }
}

/// Keeps `[A-Za-z0-9._-]`, folds the rest to `-`, trims dots (no `..`, no hidden files).
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(['.', '-']).replace("..", ".");
    if s.is_empty() { "file".into() } else { s }
}

/// The extension for a content type, else the URL's own if it is a known media extension.
pub fn extension(content_type: Option<&str>, url: &str) -> &'static str {
    if let Some(ext) = content_type.and_then(krea_gen::media::extension_for) {
        return ext;
    }
    let path_ext = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments()?.next_back().map(str::to_ascii_lowercase))
        .and_then(|last| last.rsplit_once('.').map(|(_, e)| e.to_string()));
    // The URL's own extension, spelled as its type is saved (`.jpeg` as `jpg`).
    path_ext
        .as_deref()
        .and_then(krea_gen::media::mime_for)
        .and_then(krea_gen::media::extension_for)
        .unwrap_or("bin")
}

/// `dir/stem.ext`, or `dir/stem-2.ext`, `-3`... when it exists and `overwrite` is off.
fn free_name(dir: &Path, stem: &str, ext: &str, overwrite: bool) -> PathBuf {
    let first = dir.join(format!("{stem}.{ext}"));
    if overwrite || !first.exists() {
        return first;
    }
    (2..)
        .map(|k| dir.join(format!("{stem}-{k}.{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

impl Krea {
    /// Downloads one file through the one request path: connection errors, 5xx and a
    /// truncated or stalled transfer start it again, within the call's deadline.
    async fn download(
        &self,
        url: &str,
        dir: &Path,
        target: Target,
        overwrite: bool,
        durable: bool,
    ) -> Result<PathBuf> {
        let shown = clean(without_query(url), None, MESSAGE_CHARS);
        let parsed = reqwest::Url::parse(url).map_err(|_| Error::Download {
            url: shown.clone(),
            reason: "not an absolute URL".into(),
            status: None,
        })?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(Error::Download {
                url: shown,
                reason: "only http(s) URLs are downloaded".into(),
                status: None,
            });
        }
        remove_stale_parts(dir, target.stem());
        let call = Call {
            class: Class::Download,
            method: Method::GET,
            url: parsed.to_string(),
            auth: false,
            body: Body::Empty,
            headers: Vec::new(),
            operation: format!("download {shown}"),
            last_sent: Default::default(),
            retry_rate_limited: true,
        };
        let target = Arc::new(target);
        let result = self
            .execute(&call, |response| {
                let target = target.clone();
                async move { save(response, dir, &target, overwrite, durable).await }
            })
            .await;
        result.map_err(|fault| match fault {
            Fault::Fatal(e) => e,
            Fault::Deadline => Error::DeadlineExceeded {
                operation: format!("download {shown}"),
            },
            other => Error::Download {
                url: shown.clone(),
                reason: other.detail(self.secret()),
                status: match other {
                    Fault::Status { status, .. } => Some(status),
                    _ => None,
                },
            },
        })
    }
}

/// Streams one answer to a temporary file, checks its length, renames it into place.
async fn save(
    response: reqwest::Response,
    dir: &Path,
    target: &Target,
    overwrite: bool,
    durable: bool,
) -> std::result::Result<PathBuf, Fault> {
    let expected = response.content_length();
    let ext = extension(
        response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        response.url().as_str(),
    );
    let tmp = Part {
        path: dir.join(format!(".{}.{}.part", target.stem(), fastrand::u64(..))),
        kept: false,
    };
    // Whatever ends this future (an error, the deadline dropping it), the part goes with it.
    let n = stream_to(response, &tmp.path, durable).await?;
    if let Some(expected) = expected.filter(|e| *e != n) {
        return Err(Fault::NoAnswer {
            detail: format!("got {n} of {expected} bytes"),
            source: None,
        });
    }
    let path = match target {
        Target::Stem(stem) => free_name(dir, stem, ext, overwrite),
        Target::Exact(name) => {
            let (stem, asked) = name.rsplit_once('.').unwrap_or((name, ""));
            let asked_norm = if asked.eq_ignore_ascii_case("jpeg") {
                "jpg"
            } else {
                asked
            };
            // The bytes decide: a PNG is not written under a .jpg name.
            let fixed = ext != "bin" && !asked_norm.eq_ignore_ascii_case(ext);
            let ext = if fixed || asked.is_empty() {
                ext
            } else {
                asked
            };
            let path = free_name(dir, stem, ext, overwrite);
            if fixed {
                // One sentence, no fields, naming the file actually written (a free name when
                // the corrected one is taken).
                tracing::warn!(
                    "{name} would hold a .{ext} file: written as {} instead",
                    path.file_name().map_or_else(
                        || path.display().to_string(),
                        |f| f.to_string_lossy().into_owned()
                    )
                );
            }
            path
        }
    };
    tracing::debug!(to = %path.display(), bytes = n, "downloaded");
    tokio::fs::rename(&tmp.path, &path)
        .await
        .map_err(|e| Fault::Fatal(Error::io(&path, e)))?;
    tmp.keep();
    if durable {
        // The rename itself must reach the disk too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(path)
}

/// A file being downloaded, removed when dropped unless it was renamed into place.
struct Part {
    path: PathBuf,
    kept: bool,
}

impl Part {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A URL without its query string (CDN URLs may carry signatures there).
fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Removes `.{stem}.*.part` files an interrupted earlier run left (a killed process cannot
/// clean up after itself). The stem names one job's file, so nothing else is touched.
fn remove_stale_parts(dir: &Path, stem: &str) {
    let prefix = format!(".{stem}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(std::result::Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Streams the body into `path` chunk by chunk (constant memory); returns the byte count. A
/// broken transfer is a retryable fault; a local write error is final.
async fn stream_to(
    mut response: reqwest::Response,
    path: &Path,
    durable: bool,
) -> std::result::Result<u64, Fault> {
    let local = |e: std::io::Error| Fault::Fatal(Error::io(path, e));
    let mut file = tokio::fs::File::create(path).await.map_err(local)?;
    let mut n = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                file.write_all(&bytes).await.map_err(local)?;
                n += bytes.len() as u64;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Fault::NoAnswer {
                    detail: format!("the transfer broke off after {n} bytes"),
                    source: Some(e),
                });
            }
        }
    }
    file.flush().await.map_err(local)?;
    if durable {
        file.sync_all().await.map_err(local)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("flux-1.1-pro"), "flux-1.1-pro");
        assert_eq!(sanitize("../../etc/passwd"), "etc-passwd");
        assert_eq!(sanitize("a\\b c"), "a-b-c");
        assert_eq!(sanitize(".."), "file");
    }

    #[test]
    fn extensions_come_from_the_content_type_then_a_known_url_suffix() {
        assert_eq!(extension(Some("image/png"), "https://x/y"), "png");
        assert_eq!(
            extension(Some("image/jpeg; charset=binary"), "https://x/y.png"),
            "jpg"
        );
        assert_eq!(extension(None, "https://cdn/x/result.JPEG"), "jpg");
        assert_eq!(
            extension(Some("application/octet-stream"), "https://cdn/x/run.sh"),
            "bin"
        );
        assert_eq!(extension(None, "https://cdn/x/..%2f..%2fetc"), "bin");
    }

    #[test]
    fn stale_temporaries_of_the_same_file_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("krea-parts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for name in [
            ".flux-1-dev-abcd1234-0.123.part",
            ".flux-1-dev-abcd1234-1.456.part",
            "flux-1-dev-abcd1234-0.png",
            ".other.part",
        ] {
            std::fs::write(dir.join(name), b"x").expect("write");
        }
        remove_stale_parts(&dir, "flux-1-dev-abcd1234-0");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".flux-1-dev-abcd1234-1.456.part",
                ".other.part",
                "flux-1-dev-abcd1234-0.png"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn existing_files_get_a_numbered_name_unless_overwriting() {
        let dir = std::env::temp_dir().join(format!("krea-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a.png"), b"x").expect("write");
        assert_eq!(free_name(&dir, "a", "png", false), dir.join("a-2.png"));
        assert_eq!(free_name(&dir, "a", "png", true), dir.join("a.png"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
