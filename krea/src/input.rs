//! Inputs a request can take: an image or video by URL, a local file, or bytes in memory. Local
//! ones are checked before anything is sent (exists, a type Krea accepts, at most 75 MB) and
//! uploaded as assets just before the request, which then carries their URLs.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use krea_gen::media::{ACCEPTED, MAX_UPLOAD_BYTES, image_dimensions, sniff};

use crate::client::Krea;
use crate::error::Result;
use crate::sizes::SourceImage;

/// An input image, video or audio file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// Already online: sent as is.
    Url(String),
    /// A local file, uploaded first.
    Path(PathBuf),
    /// Bytes in memory, uploaded first under this file name.
    Bytes {
        /// The content.
        bytes: Bytes,
        /// The name to upload it under.
        file_name: String,
    },
}

impl Input {
    /// A URL (http or https).
    pub fn url(url: impl Into<String>) -> Input {
        Input::Url(url.into())
    }

    /// A local file.
    pub fn path(path: impl Into<PathBuf>) -> Input {
        Input::Path(path.into())
    }

    /// Bytes in memory, uploaded as `file_name`.
    pub fn bytes(bytes: impl Into<Bytes>, file_name: impl Into<String>) -> Input {
        Input::Bytes {
            bytes: bytes.into(),
            file_name: file_name.into(),
        }
    }

    /// Whether it must be uploaded before use.
    pub fn is_local(&self) -> bool {
        !matches!(self, Input::Url(_))
    }

    /// A stand-in URL for checking a request before the upload happens.
    pub(crate) fn placeholder(&self) -> String {
        match self {
            Input::Url(u) => u.clone(),
            Input::Path(p) => format!(
                "https://uploads.invalid/{}",
                crate::download::sanitize(
                    &p.file_name().map_or("file".into(), |n| n.to_string_lossy())
                )
            ),
            Input::Bytes { file_name, .. } => {
                format!(
                    "https://uploads.invalid/{}",
                    crate::download::sanitize(file_name)
                )
            }
        }
    }

    /// What is wrong with it, if anything (read from disk for a file).
    pub(crate) fn problem(&self) -> Option<String> {
        let (name, size, head): (String, u64, Vec<u8>) = match self {
            Input::Url(u) => {
                return match reqwest::Url::parse(u) {
                    Ok(p) if matches!(p.scheme(), "https" | "http") => None,
                    _ => Some(format!("{u:?} is neither an http(s) URL nor a file")),
                };
            }
            Input::Path(p) => match std::fs::metadata(p) {
                Ok(m) if m.is_file() => match read_head(p) {
                    Ok(head) => (p.display().to_string(), m.len(), head),
                    Err(e) => return Some(format!("cannot read {}: {e}", p.display())),
                },
                Ok(_) => return Some(format!("{} is not a file", p.display())),
                Err(e) => return Some(format!("cannot read {}: {e}", p.display())),
            },
            Input::Bytes { bytes, file_name } => (
                file_name.clone(),
                bytes.len() as u64,
                bytes.iter().take(64).copied().collect(),
            ),
        };
        if size > MAX_UPLOAD_BYTES {
            return Some(format!(
                "{name} is {size} bytes; Krea accepts files up to 75 MB"
            ));
        }
        sniff(&head)
            .is_none()
            .then(|| format!("{name} is not a type Krea accepts ({ACCEPTED})"))
    }

    /// Its pixel size, for a local image whose header says.
    pub(crate) fn dimensions(&self) -> Option<SourceImage> {
        let head = match self {
            Input::Url(_) => return None,
            Input::Path(p) => std::fs::read(p).ok()?,
            Input::Bytes { bytes, .. } => bytes.to_vec(),
        };
        image_dimensions(&head).map(|(width, height)| SourceImage { width, height })
    }

    /// Its URL, uploading it first if it is local.
    pub(crate) async fn resolve(&self, krea: &Krea) -> Result<String> {
        match self {
            Input::Url(u) => Ok(u.clone()),
            Input::Path(p) => Ok(krea.assets().upload(p, None).await?.image_url),
            Input::Bytes { bytes, file_name } => Ok(krea
                .assets()
                .upload_bytes(bytes.clone(), file_name, None)
                .await?
                .image_url),
        }
    }
}

/// The first bytes of a file, which say its type. A file that cannot be opened or read is
/// an error of its own, not a file of the wrong type.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = vec![0u8; 64];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    head.truncate(n);
    Ok(head)
}

/// A URL when it looks like one, else a local path.
impl From<&str> for Input {
    fn from(s: &str) -> Input {
        if s.starts_with("https://") || s.starts_with("http://") {
            Input::Url(s.to_string())
        } else {
            Input::Path(PathBuf::from(s))
        }
    }
}

impl From<String> for Input {
    fn from(s: String) -> Input {
        Input::from(s.as_str())
    }
}

impl From<&Path> for Input {
    fn from(p: &Path) -> Input {
        Input::Path(p.to_path_buf())
    }
}

impl From<PathBuf> for Input {
    fn from(p: PathBuf) -> Input {
        Input::Path(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_urls_or_paths() {
        assert_eq!(
            Input::from("https://e.com/a.png"),
            Input::Url("https://e.com/a.png".into())
        );
        assert_eq!(Input::from("a.png"), Input::Path("a.png".into()));
        assert!(!Input::from("https://e.com/a.png").is_local());
    }

    #[test]
    fn local_inputs_are_checked_before_anything_is_sent() {
        assert!(Input::path("/nonexistent/a.png").problem().is_some());
        let not_an_image = Input::bytes(b"hello world".to_vec(), "a.txt");
        assert!(
            not_an_image
                .problem()
                .expect("refused")
                .contains("not a type")
        );
        let png = Input::bytes(krea_png(), "a.png");
        assert_eq!(png.problem(), None);
        assert_eq!(
            png.dimensions(),
            Some(SourceImage {
                width: 3,
                height: 2
            })
        );
        assert!(png.placeholder().starts_with("https://uploads.invalid/"));
        assert!(Input::url("ftp://x/y").problem().is_some());
    }

    /// A 3x2 PNG header (the size is all that is read).
    fn krea_png() -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        v.extend_from_slice(&3u32.to_be_bytes());
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0]);
        v
    }
}
