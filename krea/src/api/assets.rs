//! `krea.assets()`: upload (multipart, checked before sending), list, get, delete.

use std::path::Path;

use bytes::Bytes;
use futures_util::Stream;
use krea_gen::media::{ACCEPTED, MAX_UPLOAD_BYTES, sniff};
use reqwest::Method;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::next_cursor;
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::send::{Body, Call, Class};
use crate::types::Asset;

const OP: &str = "POST /assets";

/// The assets API.
#[derive(Debug, Clone)]
pub struct Assets {
    pub(crate) krea: Krea,
}

/// The file as a whole cannot be uploaded.
fn invalid(problem: String) -> Error {
    Error::InvalidRequest {
        subject: OP.into(),
        problems: vec![crate::Problem::at("file", problem)],
    }
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Asset>,
    #[serde(default)]
    next_cursor: Option<String>,
}

impl Assets {
    /// Uploads the file at `path` (JPEG, PNG, WebP, HEIC, MP4, MOV, WebM, GLB, WAV, MP3; at most
    /// 75 MB). Its type and size are checked before anything is sent.
    pub async fn upload(&self, path: impl AsRef<Path>, description: Option<&str>) -> Result<Asset> {
        let path = path.as_ref();
        if let Some(problem) = crate::input::Input::path(path).problem() {
            return Err(invalid(problem));
        }
        let name = path
            .file_name()
            .map_or("upload".into(), |n| n.to_string_lossy().into_owned());
        // Read once; the upload is at most 75 MB and a retry must send the same bytes.
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        self.upload_bytes(bytes, &name, description).await
    }

    /// Uploads `bytes` as a file called `file_name`, with the same checks as [`Assets::upload`].
    pub async fn upload_bytes(
        &self,
        bytes: impl Into<Bytes>,
        file_name: &str,
        description: Option<&str>,
    ) -> Result<Asset> {
        let bytes: Bytes = bytes.into();
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
        // Checked once here, so building the form for each attempt cannot fail.
        reqwest::multipart::Part::bytes(Vec::new())
            .mime_str(mime)
            .map_err(|e| invalid(e.to_string()))?;
        let (name, description) = (file_name.to_string(), description.map(String::from));
        let form = move || {
            let part = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::from(bytes.clone()),
                bytes.len() as u64,
            )
            .file_name(name.clone());
            let part = part.mime_str(mime).unwrap_or_else(|_| {
                reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.clone())
            });
            let form = reqwest::multipart::Form::new().part("file", part);
            match &description {
                Some(d) => form.text("description", d.clone()),
                None => form,
            }
        };
        // An upload stores something: like a generation, it is repeated only where nothing
        // can have been stored.
        let call = Call {
            body: Body::Multipart(Box::new(form)),
            ..Call::api(&self.krea, Class::Create, Method::POST, "/assets", OP)
        };
        self.krea
            .json_call(&call)
            .await
            .map_err(|f| self.krea.error(f, OP))
    }

    /// Every asset, newest first.
    pub fn list(&self) -> impl Stream<Item = Result<Asset>> + Send + 'static {
        let state = (
            self.krea.clone(),
            None::<chrono::DateTime<chrono::Utc>>,
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
            let mut path = "/assets?limit=100".to_string();
            if let Some(c) = cursor {
                path.push_str(&format!(
                    "&cursor={}",
                    c.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ));
            }
            let page: Result<Page> = krea.read(Method::GET, &path, "GET /assets").await;
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
        self.krea
            .read(Method::GET, &format!("/assets/{id}"), "GET /assets/{id}")
            .await
    }

    /// Deletes an asset.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        let op = "DELETE /assets/{id}";
        let call = Call::api(
            &self.krea,
            Class::Read,
            Method::DELETE,
            &format!("/assets/{id}"),
            op,
        );
        self.krea
            .ignore_answer(&call)
            .await
            .map_err(|f| self.krea.error(f, op))
    }
}
