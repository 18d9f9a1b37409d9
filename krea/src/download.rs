//! Downloading results: a client with no credentials, each file streamed to a temporary file in
//! the destination directory, its length checked, then renamed into place. File names are
//! chosen here (`{slug}-{job8}-{n}.{ext}`, the extension from the content type), never taken
//! from the server, so a hostile URL cannot write outside the directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::Finished;
use crate::journal::Entry;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DownloadOptions {
    /// Replace an existing file of the same name (else a numbered name is chosen).
    pub overwrite: bool,
    /// `fsync` each file (and its directory) before reporting it, so it survives a power loss,
    /// not only a crash of this process (renaming into place already guarantees that). Costs
    /// about a fifth of the throughput on large files.
    pub durable: bool,
}

impl Finished {
    /// Downloads every result file into `dir` (created if needed); returns the paths in URL
    /// order.
    pub async fn download_to(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let overwrite = self.output.as_ref().is_some_and(|o| o.overwrite);
        let durable = self.krea.inner.durable_downloads;
        self.download_with(dir.as_ref(), DownloadOptions { overwrite, durable })
            .await
    }

    /// Downloads into the directory planned at submission (`output_dir`).
    pub async fn download(&self) -> Result<Vec<PathBuf>> {
        let Some(plan) = &self.output else {
            return Err(Error::Config(
                "this job has no output directory: use download_to(dir)".into(),
            ));
        };
        self.download_with(
            &plan.dir,
            DownloadOptions {
                overwrite: plan.overwrite,
                durable: self.krea.inner.durable_downloads,
            },
        )
        .await
    }

    /// Downloads into `dir` with `options`, at most the client's download concurrency at once.
    pub async fn download_with(
        &self,
        dir: &Path,
        options: DownloadOptions,
    ) -> Result<Vec<PathBuf>> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        let slug = self.model.map_or("krea", |m| m.slug);
        let job8: String = self.job_id().simple().to_string().chars().take(8).collect();
        let concurrency = self.krea.inner.download_concurrency;
        let paths: Vec<PathBuf> = futures_util::stream::iter(self.urls().iter().enumerate())
            .map(|(n, url)| {
                let stem = format!("{}-{job8}-{n}", sanitize(slug));
                async move { self.krea.download(url, dir, &stem, options).await }
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        if let Some(journal) = self.krea.journal() {
            let entry = Entry::Finished {
                at: chrono::Utc::now(),
                job_id: self.job_id(),
                status: "completed".into(),
                files: paths.clone(),
            };
            if let Err(e) = journal.append(&entry) {
                tracing::warn!(job_id = %self.job_id(), error = %e, "could not write the job journal");
            }
        }
        Ok(paths)
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
    let mime = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "image/png" => return "png",
        "image/jpeg" | "image/jpg" => return "jpg",
        "image/webp" => return "webp",
        "image/gif" => return "gif",
        "image/heic" => return "heic",
        "video/mp4" => return "mp4",
        "video/quicktime" => return "mov",
        "video/webm" => return "webm",
        "audio/mpeg" => return "mp3",
        "audio/wav" | "audio/x-wav" => return "wav",
        "model/gltf-binary" => return "glb",
        _ => {}
    }
    let path_ext = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments()?.next_back().map(str::to_ascii_lowercase))
        .and_then(|last| last.rsplit_once('.').map(|(_, e)| e.to_string()));
    const KNOWN: [&str; 11] = [
        "png", "jpg", "jpeg", "webp", "gif", "heic", "mp4", "mov", "webm", "mp3", "wav",
    ];
    match path_ext.as_deref() {
        Some(e) => KNOWN
            .iter()
            .find(|k| **k == e)
            .copied()
            .map(|e| if e == "jpeg" { "jpg" } else { e })
            .unwrap_or("bin"),
        None => "bin",
    }
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
    /// Downloads one file with retries (transport errors, 5xx, truncation restart it).
    async fn download(
        &self,
        url: &str,
        dir: &Path,
        stem: &str,
        options: DownloadOptions,
    ) -> Result<PathBuf> {
        remove_stale_parts(dir, stem);
        let policy = &self.inner.retry;
        let mut backoff = policy.backoff(policy.max_retries);
        loop {
            match self.download_once(url, dir, stem, options).await {
                Ok(path) => return Ok(path),
                Err(Attempt::Retry(reason)) => match backoff.next() {
                    Some(wait) => {
                        tracing::debug!(
                            url = without_query(url),
                            reason,
                            "download failed; retrying"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    None => {
                        return Err(Error::Download {
                            url: url.into(),
                            reason,
                        });
                    }
                },
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn download_once(
        &self,
        url: &str,
        dir: &Path,
        stem: &str,
        options: DownloadOptions,
    ) -> std::result::Result<PathBuf, Attempt> {
        let parsed = reqwest::Url::parse(url).map_err(|_| {
            Attempt::Fatal(Error::Download {
                url: url.into(),
                reason: "not an absolute URL".into(),
            })
        })?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(Attempt::Fatal(Error::Download {
                url: url.into(),
                reason: "only http(s) URLs are downloaded".into(),
            }));
        }
        let response = self
            .inner
            .downloads
            .get(parsed)
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("the file server answered {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Attempt::Retry(reason)
            } else {
                Attempt::Fatal(Error::Download {
                    url: url.into(),
                    reason,
                })
            });
        }
        let expected = response.content_length();
        let ext = extension(
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            url,
        );
        let tmp = dir.join(format!(".{stem}.{}.part", fastrand::u64(..)));
        let written = stream_to(response, &tmp, options.durable).await;
        let fail = |reason: String| {
            let _ = std::fs::remove_file(&tmp);
            Attempt::Retry(reason)
        };
        let n = match written {
            Ok(n) => n,
            Err(reason) => return Err(fail(reason)),
        };
        if let Some(expected) = expected.filter(|e| *e != n) {
            return Err(fail(format!("got {n} of {expected} bytes")));
        }
        let path = free_name(dir, stem, ext, options.overwrite);
        tracing::debug!(from = %without_query(url), to = %path.display(), bytes = n, "downloaded");
        tokio::fs::rename(&tmp, &path).await.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Attempt::Fatal(Error::io(&path, e))
        })?;
        if options.durable {
            // The rename itself must reach the disk too.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(path)
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
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

enum Attempt {
    Retry(String),
    Fatal(Error),
}

/// Streams the body into `path` chunk by chunk (constant memory); returns the byte count.
async fn stream_to(
    mut response: reqwest::Response,
    path: &Path,
    durable: bool,
) -> std::result::Result<u64, String> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut n = 0u64;
    let idle = Duration::from_secs(300);
    loop {
        let chunk = tokio::time::timeout(idle, response.chunk())
            .await
            .map_err(|_| "the transfer stalled".to_string())?;
        match chunk {
            Ok(Some(bytes)) => {
                file.write_all(&bytes)
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                n += bytes.len() as u64;
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the transfer broke off after {n} bytes: {e}")),
        }
    }
    file.flush().await.map_err(|e| e.to_string())?;
    if durable {
        file.sync_all().await.map_err(|e| e.to_string())?;
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
