//! The batch file format, one request per line: a plain prompt (for the default model), or a
//! JSON object with `prompt`, `model` and `params` (any other key is a parameter too). Blank
//! lines and lines starting with `#` are skipped. Parameters given for the whole file come
//! first; a line's own override them.

use serde_json::{Map, Value};

use crate::models;

/// One request of a batch file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchLine {
    /// Its line number in the file, from 1.
    pub number: usize,
    /// The prompt (empty when the line gives none, e.g. an upscale).
    pub prompt: String,
    /// The model's id (aliases resolved).
    pub model: String,
    /// Parameters besides the prompt: the file's, then the line's own.
    pub params: Map<String, Value>,
}

impl BatchLine {
    /// The request body: the parameters and, when there is one, the prompt.
    pub fn body(&self) -> Value {
        let mut body = self.params.clone();
        if !self.prompt.is_empty() {
            body.insert("prompt".into(), Value::String(self.prompt.clone()));
        }
        Value::Object(body)
    }

    /// The label its batch item carries (`line N`).
    pub fn label(&self) -> String {
        format!("line {}", self.number)
    }
}

/// What is wrong with one line (or one item of a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineProblem {
    /// The line number in the file, from 1 (for a batch item: its position, from 1).
    pub line: usize,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

/// A batch file, read: the lines that parse and name a known model, and the problems of the
/// others (every one, not only the first).
///
/// ```
/// use krea::BatchFile;
/// let text = "# cats\na cat on a sofa\n{\"prompt\": \"a dog\", \"model\": \"flux\", \"params\": {\"steps\": 20}}\n{oops\n";
/// let file = BatchFile::parse(text, "flux", &serde_json::Map::new());
/// assert_eq!(file.lines.len(), 2);
/// assert_eq!(file.lines[1].model, "bfl/flux-1-dev");
/// assert_eq!(file.problems[0].line, 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BatchFile {
    /// The requests, in file order.
    pub lines: Vec<BatchLine>,
    /// Lines that could not be read, in file order.
    pub problems: Vec<LineProblem>,
}

impl BatchFile {
    /// Reads `text`: `default_model` for lines that name none, `common` parameters under
    /// every line's own.
    pub fn parse(text: &str, default_model: &str, common: &Map<String, Value>) -> BatchFile {
        let mut file = BatchFile::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = parse_line(line, default_model).and_then(|(prompt, model, own)| {
                let model = models::resolve(&model).map_err(|e| e.to_string())?;
                let mut params = common.clone();
                params.extend(own);
                Ok(BatchLine {
                    number: i + 1,
                    prompt,
                    model: model.id.to_string(),
                    params,
                })
            });
            match parsed {
                Ok(l) => file.lines.push(l),
                Err(message) => file.problems.push(LineProblem {
                    line: i + 1,
                    message,
                }),
            }
        }
        file
    }
}

fn parse_line(
    line: &str,
    default_model: &str,
) -> Result<(String, String, Map<String, Value>), String> {
    if !line.starts_with('{') {
        return Ok((line.to_string(), default_model.to_string(), Map::new()));
    }
    let Value::Object(mut obj) = serde_json::from_str(line)
        .map_err(|e| format!("not valid JSON (column {})", e.column()))?
    else {
        return Err("expected a JSON object".into());
    };
    let prompt = match obj.remove("prompt") {
        Some(Value::String(p)) => p,
        None => String::new(),
        Some(_) => return Err("prompt must be a string".into()),
    };
    let model = match obj.remove("model") {
        Some(Value::String(m)) => m,
        None => default_model.to_string(),
        Some(_) => return Err("model must be a string".into()),
    };
    let mut own = match obj.remove("params") {
        Some(Value::Object(p)) => p,
        None => Map::new(),
        Some(_) => return Err("params must be an object".into()),
    };
    own.extend(obj);
    Ok((prompt, model, own))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn common() -> Map<String, Value> {
        json!({"aspect_ratio": "16:9"})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn plain_and_json_lines_with_comments_and_common_params() {
        let text = "# a comment\n\na cat\n{\"prompt\": \"a dog\", \"model\": \"flux\", \"steps\": 20, \"aspect_ratio\": \"1:1\"}\n";
        let file = BatchFile::parse(text, "nano-banana-2", &common());
        assert!(file.problems.is_empty(), "{:?}", file.problems);
        assert_eq!(file.lines.len(), 2);
        assert_eq!(file.lines[0].number, 3);
        assert_eq!(
            file.lines[0].body(),
            json!({"prompt": "a cat", "aspect_ratio": "16:9"})
        );
        assert_eq!(file.lines[1].model, "bfl/flux-1-dev");
        assert_eq!(
            file.lines[1].body(),
            json!({"prompt": "a dog", "steps": 20, "aspect_ratio": "1:1"}),
            "a line's own parameters win"
        );
        assert_eq!(file.lines[1].label(), "line 4");
    }

    #[test]
    fn every_bad_line_is_a_problem_naming_its_line() {
        let text = "{bad json\n{\"prompt\": \"x\", \"model\": 5}\n{\"prompt\": 3}\n{\"model\": \"no-such-model\"}\n{\"params\": 1}\nfine\n";
        let file = BatchFile::parse(text, "flux", &Map::new());
        let lines: Vec<usize> = file.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
        assert!(file.problems[0].message.contains("not valid JSON"));
        assert!(file.problems[3].message.contains("no-such-model"));
        assert_eq!(file.lines.len(), 1);
        assert_eq!(file.lines[0].number, 6);
    }
}
