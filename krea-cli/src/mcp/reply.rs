//! Tool results: `structuredContent` for programs (a job in the same shape as `--json`, plus
//! the session's spend and what to do next), and for people one line of text, a resource link
//! per file and a small preview of an image. Every string that goes out is cleaned of control
//! characters and of the token.

use std::path::Path;

use rmcp::model::{CallToolResult, ContentBlock, Resource};
use serde_json::{Value, json};

use super::{Server, preview};
use crate::exit::{self, Voice};
use crate::job_json::JobOut;

/// Removes every null member of every object in `value` (array items stay in place).
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A job as the tools give it: `--json`'s shape, with its error an object like every tool's
/// (`{"message": ...}`), so one schema types both.
pub fn job_value(job: &JobOut) -> Value {
    let mut value = job.to_json();
    if let Some(message) = value.get("error").and_then(Value::as_str) {
        value["error"] = json!({ "message": message });
    }
    value
}

/// Longest text kept from any one string.
const MAX_CHARS: usize = 4000;

impl Server {
    /// `text` with control characters and the token removed, its lines kept.
    fn scrub(&self, text: &str) -> String {
        text.lines()
            .map(|line| krea::redact::clean(line, self.ctx.secret.as_deref(), MAX_CHARS))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.scrub(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.scrub_value(v)),
            _ => {}
        }
    }

    /// A result with `structured` content and `line` for people (both cleaned). Fields with
    /// nothing to say (null) are left out; under `--sim` the result says it is simulated.
    pub(super) fn reply(
        &self,
        mut structured: Value,
        line: &str,
        is_error: bool,
    ) -> CallToolResult {
        self.scrub_value(&mut structured);
        drop_nulls(&mut structured);
        if self.ctx.out.simulated
            && let Some(map) = structured.as_object_mut()
        {
            map.insert("simulated".into(), Value::Bool(true));
        }
        let content = vec![ContentBlock::text(self.scrub(line))];
        let mut result = if is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        result.structured_content = Some(structured);
        result
    }

    /// A tool's answer: its result, or the library error it stopped at, explained.
    pub(super) fn answer(
        &self,
        result: krea::Result<CallToolResult>,
    ) -> Result<CallToolResult, rmcp::ErrorData> {
        Ok(result.unwrap_or_else(|e| self.failed(&e)))
    }

    /// A refusal found before anything was sent (bad input, over a limit).
    pub(super) fn refused(&self, kind: &str, message: &str) -> CallToolResult {
        self.reply(
            json!({"error": {"kind": kind, "message": message, "job_id": null, "hints": []}}),
            message,
            true,
        )
    }

    /// A library error, with what to do next in tool terms.
    pub(super) fn failed(&self, e: &krea::Error) -> CallToolResult {
        let (head, hints) = exit::explain(e, Voice::Mcp);
        let mut line = head.clone();
        for h in &hints {
            line.push_str("\n- ");
            line.push_str(h);
        }
        self.reply(
            json!({"error": {
                "kind": e.kind(),
                "message": head,
                "job_id": e.job_id(),
                "hints": hints,
                "problems": crate::job_json::problems(e),
                "nothing_sent": e.nothing_sent(),
            }, "session_cu": self.money.spent()}),
            &line,
            true,
        )
    }

    /// A job: where it stands, its files (linked, the first image previewed), its cost and the
    /// session's, and `next` when something is left to do.
    pub(super) async fn job_reply(&self, job: JobOut, next: Option<String>) -> CallToolResult {
        let id = job.id.map(|i| i.to_string()).unwrap_or_default();
        let session = self.money.spent();
        let mut line = format!("{}: job {id} ({})", job.status, job.model);
        match job.files.len() {
            0 => {}
            1 => line.push_str(&format!(", file {}", job.files[0].display())),
            n => line.push_str(&format!(", {n} files in {}", parent(&job.files[0]))),
        }
        if let Some(cu) = job.cost_cu {
            line.push_str(&format!("; cost ~{} CU", number(cu)));
        }
        line.push_str(&format!(" (session {} CU)", number(session)));
        if let Some(error) = &job.error {
            line.push_str(&format!("; {error}"));
        }
        if let Some(next) = &next {
            line.push_str(&format!(". Next: {next}"));
        }
        let mut structured = job_value(&job);
        structured["session_cu"] = json!(session);
        structured["next"] = json!(next);
        let failed = matches!(job.status.as_str(), "failed" | "cancelled");
        let mut result = self.reply(structured, &line, failed);
        for file in &job.files {
            result.content.push(link(file));
        }
        let image = job
            .files
            .iter()
            .find(|f| mime_of(f).is_some_and(|m| m.starts_with("image/")));
        if let Some((data, mime)) = match image {
            Some(file) => preview::of(file).await,
            None => None,
        } {
            result.content.push(ContentBlock::image(data, mime));
        }
        result
    }
}

/// Where the files of a job are.
fn parent(file: &Path) -> String {
    file.parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `3`, `1.5`.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A `resource_link` to a local file.
fn link(file: &Path) -> ContentBlock {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut resource = Resource::new(file_uri(file), name);
    if let Some(m) = mime_of(file) {
        resource = resource.with_mime_type(m);
    }
    if let Ok(meta) = std::fs::metadata(file) {
        resource = resource.with_size(meta.len());
    }
    ContentBlock::resource_link(resource)
}

/// `file:///…`, with the characters a URI cannot hold escaped.
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' | b':' => {
                uri.push(byte as char)
            }
            b'\\' => uri.push('/'),
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    if !uri.starts_with("file:///") {
        // A Windows path (`C:/...`) takes a third slash.
        uri.insert(7, '/');
    }
    uri
}

/// The MIME type a file's extension says.
fn mime_of(path: &Path) -> Option<&'static str> {
    krea_gen::media::mime_for(path.extension()?.to_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_escape_what_a_uri_cannot_hold() {
        assert_eq!(
            file_uri(Path::new("/tmp/a cat/ü.png")),
            "file:///tmp/a%20cat/%C3%BC.png"
        );
    }
}
