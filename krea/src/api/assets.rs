//! `krea.assets()`: upload (multipart, checked before sending), list, get, delete.

use std::path::Path;

use futures_util::Stream;
use krea_gen::media::{ACCEPTED, MAX_UPLOAD_BYTES, sniff};
use krea_gen::types::Asset;
use reqwest::Method;
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use crate::api::next_cursor;
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::retry::{Class, Fault, retry_after};

const OP: &str = "POST /assets";

/// The assets API.
#[derive(Debug, Clone)]
pub struct Assets {
    pub(crate) krea: Krea,
}

fn invalid(problem: String) -> Error {
    Error::InvalidRequest {
        model: OP.into(),
        problems: vec![problem],
    }
}

impl Assets {
    /// Uploads the file at `path` (JPEG, PNG, WebP, HEIC, MP4, MOV, WebM, GLB, WAV, MP3; at most
    /// 75 MB). Its type and size are checked before anything is sent.
    pub async fn upload(&self, path: impl AsRef<Path>, description: Option<&str>) -> Result<Asset> {
        let path = path.as_ref();
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(invalid(format!("{} is not a file", path.display())));
        }
        if meta.len() > MAX_UPLOAD_BYTES {
            return Err(invalid(format!(
                "{} is {} bytes; Krea accepts files up to 75 MB",
                path.display(),
                meta.len()
            )));
        }
        let mut head = [0u8; 16];
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        let n = file.read(&mut head).await.map_err(|e| Error::io(path, e))?;
        let Some(mime) = sniff(&head[..n]) else {
            return Err(invalid(format!(
                "{} is not a type Krea accepts ({ACCEPTED})",
                path.display()
            )));
        };
        let name = path
            .file_name()
            .map_or("upload".into(), |n| n.to_string_lossy().into_owned());
        // Read once; the upload is at most 75 MB and a retry must send the same bytes.
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        self.send(bytes, &name, mime, description).await
    }

    /// Uploads `bytes` as a file called `file_name`, with the same checks as [`Assets::upload`].
    pub async fn upload_bytes(
        &self,
        bytes: Vec<u8>,
        file_name: &str,
        description: Option<&str>,
    ) -> Result<Asset> {
        if bytes.len() as u64 > MAX_UPLOAD_BYTES {
            return Err(invalid(format!(
                "{file_name} is {} bytes; Krea accepts files up to 75 MB",
                bytes.len()
            )));
        }
        let Some(mime) = sniff(&bytes) else {
            return Err(invalid(format!(
                "{file_name} is not a type Krea accepts ({ACCEPTED})"
            )));
        };
        self.send(bytes, file_name, mime, description).await
    }

    async fn send(
        &self,
        bytes: Vec<u8>,
        file_name: &str,
        mime: &str,
        description: Option<&str>,
    ) -> Result<Asset> {
        let policy = &self.krea.inner.retry;
        let mut backoff = policy.backoff(policy.max_retries);
        let bytes = bytes::Bytes::from(bytes);
        loop {
            let part = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::from(bytes.clone()),
                bytes.len() as u64,
            )
            .file_name(file_name.to_string())
            .mime_str(mime)
            .map_err(|e| invalid(e.to_string()))?;
            let mut form = reqwest::multipart::Form::new().part("file", part);
            if let Some(d) = description {
                form = form.text("description", d.to_string());
            }
            let fault = match self
                .krea
                .api_request(Method::POST, "/assets")
                .multipart(form)
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status();
                    let ra = retry_after(response.headers());
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| Error::Transport(e.to_string()))?;
                    if status.is_success() {
                        return serde_json::from_slice(&body).map_err(|e| Error::Decode {
                            message: e.to_string(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                    }
                    Fault::Status {
                        status: status.as_u16(),
                        retry_after: ra,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    }
                }
                Err(e) => Fault::from_reqwest(&e),
            };
            // An upload is not idempotent: retry only when nothing can have been stored.
            match backoff
                .next()
                .filter(|_| fault.retryable(Class::Generation))
            {
                Some(wait) => tokio::time::sleep(policy.delay(&fault, wait)).await,
                None => return Err(fault.into_error(Class::Idempotent, OP)),
            }
        }
    }

    /// Every asset, newest first.
    pub fn list(&self) -> impl Stream<Item = Result<Asset>> + Send + 'static {
        let state = (
            self.krea.clone(),
            None,
            std::collections::VecDeque::new(),
            false,
        );
        futures_util::stream::unfold(state, |(krea, cursor, mut buffer, done)| async move {
            if let Some(a) = buffer.pop_front() {
                return Some((Ok(a), (krea, cursor, buffer, done)));
            }
            if done {
                return None;
            }
            let raw = krea.raw();
            let page = krea
                .call("list_assets", || {
                    let mut b = raw
                        .list_assets()
                        .limit(std::num::NonZeroU64::new(100).unwrap_or(std::num::NonZeroU64::MIN));
                    if let Some(c) = cursor {
                        b = b.cursor(c);
                    }
                    b.send()
                })
                .await;
            match page {
                Ok(page) => {
                    let next = next_cursor(page.next_cursor.as_deref());
                    let mut buffer: std::collections::VecDeque<Asset> = page.items.into();
                    let first = buffer.pop_front()?;
                    Some((Ok(first), (krea, next, buffer, next.is_none())))
                }
                Err(e) => Some((Err(e), (krea, cursor, buffer, true))),
            }
        })
    }

    /// One asset.
    pub async fn get(&self, id: Uuid) -> Result<Asset> {
        let raw = self.krea.raw();
        self.krea
            .call("get_asset", || raw.get_asset().id(id).send())
            .await
    }

    /// Deletes an asset.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        let raw = self.krea.raw();
        self.krea
            .call("delete_asset", || raw.delete_asset().id(id).send())
            .await
            .map(drop)
    }
}
