//! `{{...}}` in a step's parameters: a variable (`{{style}}`, from `vars`, a fan-out or the
//! upstream instance), every output of another step (`{{steps.ID.outputs}}`: the step runs once
//! per output), or one of them (`{{steps.ID.outputs[N]}}`, 0-based, in the order the step's
//! jobs were listed).

use serde_json::Value;

/// What a `{{...}}` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ref {
    /// A variable.
    Var(String),
    /// Each output of a step, one instance per output.
    Each(String),
    /// The `n`-th output of a step.
    Nth(String, usize),
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ref::Var(name) => write!(f, "{{{{{name}}}}}"),
            Ref::Each(step) => write!(f, "{{{{steps.{step}.outputs}}}}"),
            Ref::Nth(step, n) => write!(f, "{{{{steps.{step}.outputs[{n}]}}}}"),
        }
    }
}

/// The inside of one `{{...}}`.
fn parse_ref(inner: &str) -> Result<Ref, String> {
    let inner = inner.trim();
    if let Some(rest) = inner.strip_prefix("steps.") {
        let shape = || {
            format!(
                "{{{{{inner}}}}}: write {{{{steps.ID.outputs}}}} (each output) or {{{{steps.ID.outputs[N]}}}} (one)"
            )
        };
        let (step, what) = rest.split_once('.').ok_or_else(shape)?;
        if what == "outputs" {
            return Ok(Ref::Each(step.to_string()));
        }
        let n = what
            .strip_prefix("outputs[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
            .ok_or_else(shape)?;
        return Ok(Ref::Nth(step.to_string(), n));
    }
    let valid = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(Ref::Var(inner.to_string()))
    } else {
        Err(format!(
            "{{{{{inner}}}}} is not a variable name (letters, digits, _ and -) or a step output"
        ))
    }
}

/// The `{{...}}` of one string, in order: `(start, end, ref)` byte ranges.
fn scan(text: &str) -> Result<Vec<(usize, usize, Ref)>, String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| i + from) {
        let close = text[open + 2..]
            .find("}}")
            .map(|i| i + open + 2)
            .ok_or_else(|| format!("{text:?} opens {{{{ without closing it"))?;
        found.push((open, close + 2, parse_ref(&text[open + 2..close])?));
        from = close + 2;
    }
    Ok(found)
}

/// Every reference in `value` (strings inside arrays and objects too).
pub(crate) fn refs(value: &Value) -> Result<Vec<Ref>, String> {
    let mut out = Vec::new();
    match value {
        Value::String(s) => out.extend(scan(s)?.into_iter().map(|(_, _, r)| r)),
        Value::Array(items) => {
            for v in items {
                out.extend(refs(v)?);
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                out.extend(refs(v)?);
            }
        }
        _ => {}
    }
    Ok(out)
}

/// `value` with every reference replaced by what `lookup` gives. A string that is a single
/// reference takes the value as it is (a number stays a number); inside text, strings are
/// inserted as they are and other values as JSON.
pub(crate) fn render(
    value: &Value,
    lookup: &dyn Fn(&Ref) -> Result<Value, String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let found = scan(s)?;
            match found.as_slice() {
                [] => value.clone(),
                [(0, end, r)] if *end == s.len() => lookup(r)?,
                _ => {
                    let mut text = String::with_capacity(s.len());
                    let mut at = 0;
                    for (start, end, r) in &found {
                        text.push_str(&s[at..*start]);
                        match lookup(r)? {
                            Value::String(v) => text.push_str(&v),
                            other => text.push_str(&other.to_string()),
                        }
                        at = *end;
                    }
                    text.push_str(&s[at..]);
                    Value::String(text)
                }
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render(v, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render(v, lookup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_parse_and_render() {
        let v = json!({"prompt": "a {{animal}} in {{ style }}", "seed": "{{seed}}",
                       "image": "{{steps.draw.outputs}}", "end": ["{{steps.draw.outputs[1]}}"]});
        let found = refs(&v).expect("refs");
        assert!(found.contains(&Ref::Var("animal".into())));
        assert!(found.contains(&Ref::Each("draw".into())));
        assert!(found.contains(&Ref::Nth("draw".into(), 1)));
        let lookup = |r: &Ref| -> Result<Value, String> {
            Ok(match r {
                Ref::Var(n) if n == "seed" => json!(7),
                Ref::Var(n) => json!(n.to_uppercase()),
                Ref::Each(_) => json!("https://x/0.png"),
                Ref::Nth(_, n) => json!(format!("https://x/{n}.png")),
            })
        };
        let out = render(&v, &lookup).expect("render");
        assert_eq!(out["prompt"], "a ANIMAL in STYLE");
        assert_eq!(out["seed"], 7, "a lone reference keeps its type");
        assert_eq!(out["image"], "https://x/0.png");
        assert_eq!(out["end"][0], "https://x/1.png");
    }

    #[test]
    fn malformed_references_say_how_to_write_them() {
        assert!(
            refs(&json!("{{steps.draw}}"))
                .unwrap_err()
                .contains("steps.ID.outputs")
        );
        assert!(refs(&json!("{{steps.draw.outputs[x]}}")).is_err());
        assert!(refs(&json!("a {{b c}}")).unwrap_err().contains("variable"));
        assert!(
            refs(&json!("a {{open"))
                .unwrap_err()
                .contains("without closing")
        );
    }
}
