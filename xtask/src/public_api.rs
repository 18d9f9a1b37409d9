//! `cargo xtask public-api [--check]`: the `krea` crate's public API, one item a line, from
//! rustdoc's JSON output, written to `krea/public-api.txt`. Checked in, so every change to the
//! API shows in review; `--check` fails when the file is out of date.
//!
//! rustdoc's JSON output is unstable: it is produced with `RUSTC_BOOTSTRAP=1` and read
//! leniently (what is not understood prints as `_`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The snapshot's path, relative to the workspace root.
pub const SNAPSHOT: &str = "krea/public-api.txt";

/// Runs rustdoc on `krea` and renders its public API.
pub fn render(root: &Path) -> Result<String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        // Every feature: an item behind one (the PostgreSQL journal) is public API too.
        .args([
            "rustdoc",
            "-q",
            "-p",
            "krea",
            "--lib",
            "--all-features",
            "--",
        ])
        .args(["-Z", "unstable-options", "--output-format", "json"])
        .status()
        .context("run cargo rustdoc")?;
    if !status.success() {
        bail!("cargo rustdoc failed");
    }
    // Where cargo put it: CARGO_TARGET_DIR when set (relative to the workspace), else target/.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    let path = target.join("doc/krea.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).context("read rustdoc JSON")?)
        .context("rustdoc JSON")?;
    Ok(Api::new(&doc).render())
}

/// Writes the snapshot, or (`check`) compares it; returns what changed.
pub fn run(root: &Path, check: bool) -> Result<String> {
    let now = render(root)?;
    let file = root.join(SNAPSHOT);
    let before = std::fs::read_to_string(&file).unwrap_or_default();
    if before == now {
        return Ok(format!(
            "{SNAPSHOT}: up to date ({} lines)",
            now.lines().count()
        ));
    }
    let old: BTreeSet<&str> = before.lines().collect();
    let new: BTreeSet<&str> = now.lines().collect();
    let mut changes = String::new();
    for line in old.difference(&new) {
        changes.push_str(&format!("- {line}\n"));
    }
    for line in new.difference(&old) {
        changes.push_str(&format!("+ {line}\n"));
    }
    if check {
        bail!(
            "the public API of krea changed; review it and run `cargo xtask public-api`:\n{changes}"
        );
    }
    std::fs::write(&file, &now).with_context(|| format!("write {}", file.display()))?;
    Ok(format!("{SNAPSHOT} updated:\n{changes}"))
}

struct Api<'a> {
    index: &'a serde_json::Map<String, Value>,
    lines: BTreeSet<String>,
}

fn get<'v>(v: &'v Value, key: &str) -> &'v Value {
    v.get(key).unwrap_or(&Value::Null)
}

/// The attributes that are part of an item's contract, as a suffix (` #[non_exhaustive]`, so
/// lines still sort by path): dropping one must show in review like any other change.
fn attrs(item: &Value) -> String {
    let mut out = String::new();
    for a in get(item, "attrs").as_array().into_iter().flatten() {
        let name = match a {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.keys().next().map_or("", String::as_str),
            _ => "",
        };
        if matches!(name, "non_exhaustive" | "must_use" | "deprecated" | "repr") {
            out.push_str(&format!(" #[{name}]"));
        }
    }
    out
}

impl<'a> Api<'a> {
    fn new(doc: &'a Value) -> Api<'a> {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> =
            std::sync::OnceLock::new();
        let index = doc
            .get("index")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new));
        let mut api = Api {
            index,
            lines: BTreeSet::new(),
        };
        if let Some(root) = doc.get("root").map(|r| r.to_string()) {
            api.module(&root, "krea", 0);
        }
        api
    }

    fn render(self) -> String {
        let mut out = String::new();
        for line in self.lines {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    fn item(&self, id: &str) -> Option<&'a Value> {
        self.index.get(id)
    }

    fn public(item: &Value) -> bool {
        get(item, "visibility") == "public"
    }

    fn module(&mut self, id: &str, path: &str, depth: usize) {
        let Some(m) = self.item(id) else { return };
        let items: Vec<String> = get(get(get(m, "inner"), "module"), "items")
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        for child in items {
            let Some(item) = self.item(&child) else {
                continue;
            };
            if !Api::public(item) {
                continue;
            }
            let name = get(item, "name").as_str().unwrap_or("_").to_string();
            let inner = get(item, "inner");
            if let Some(u) = inner.get("use") {
                let alias = get(u, "name").as_str().unwrap_or("_");
                let target = get(u, "id").to_string();
                match self.item(&target) {
                    Some(t) if depth < 4 && get(u, "is_glob") != true => {
                        self.named(&target, t, &format!("{path}::{alias}"), depth)
                    }
                    _ => {
                        let source = get(u, "source").as_str().unwrap_or("_");
                        self.lines
                            .insert(format!("pub use {path}::{alias} = {source}"));
                    }
                }
            } else {
                self.named(&child, item, &format!("{path}::{name}"), depth);
            }
        }
    }

    fn named(&mut self, id: &str, item: &Value, path: &str, depth: usize) {
        let inner = get(item, "inner");
        let Some((kind, body)) = inner.as_object().and_then(|o| o.iter().next()) else {
            return;
        };
        match kind.as_str() {
            "module" => {
                self.lines.insert(format!("pub mod {path}"));
                self.module(id, path, depth + 1);
            }
            "struct" => {
                self.lines.insert(format!(
                    "pub struct {path}{}{}",
                    self.generics(get(body, "generics")),
                    attrs(item)
                ));
                let fields = get(get(get(body, "kind"), "plain"), "fields");
                for f in fields.as_array().into_iter().flatten() {
                    if let Some(field) = self.item(&f.to_string()).filter(|f| Api::public(f)) {
                        self.lines.insert(format!(
                            "pub field {path}::{}: {}",
                            get(field, "name").as_str().unwrap_or("_"),
                            self.ty(get(get(field, "inner"), "struct_field"))
                        ));
                    }
                }
                self.impls(get(body, "impls"), path);
            }
            "enum" => {
                self.lines.insert(format!(
                    "pub enum {path}{}{}",
                    self.generics(get(body, "generics")),
                    attrs(item)
                ));
                for v in get(body, "variants").as_array().into_iter().flatten() {
                    if let Some(variant) = self.item(&v.to_string()) {
                        self.lines.insert(format!(
                            "pub variant {path}::{}{}{}",
                            get(variant, "name").as_str().unwrap_or("_"),
                            self.variant(get(get(variant, "inner"), "variant")),
                            attrs(variant)
                        ));
                    }
                }
                self.impls(get(body, "impls"), path);
            }
            "function" => {
                self.lines.insert(format!(
                    "pub {} {path}{}{}",
                    Api::fn_kind(body),
                    self.signature(body),
                    attrs(item)
                ));
            }
            "trait" => {
                self.lines.insert(format!("pub trait {path}"));
                for i in get(body, "items").as_array().into_iter().flatten() {
                    if let Some(it) = self.item(&i.to_string()) {
                        let name = get(it, "name").as_str().unwrap_or("_");
                        match get(it, "inner").as_object().and_then(|o| o.iter().next()) {
                            Some((k, b)) if k == "function" => {
                                self.lines.insert(format!(
                                    "trait fn {path}::{name}{}",
                                    self.signature(b)
                                ));
                            }
                            Some((k, b)) => {
                                let ty = b.get("type").map(|t| self.ty(t)).unwrap_or_default();
                                self.lines.insert(format!("trait {k} {path}::{name} {ty}"));
                            }
                            None => {}
                        }
                    }
                }
            }
            "constant" => {
                self.lines
                    .insert(format!("pub const {path}: {}", self.ty(get(body, "type"))));
            }
            "static" => {
                self.lines
                    .insert(format!("pub static {path}: {}", self.ty(get(body, "type"))));
            }
            "type_alias" => {
                self.lines.insert(format!(
                    "pub type {path}{} = {}",
                    self.generics(get(body, "generics")),
                    self.ty(get(body, "type"))
                ));
            }
            "macro" => {
                self.lines.insert(format!("pub macro {path}"));
            }
            other => {
                self.lines.insert(format!("pub {other} {path}"));
            }
        }
    }

    fn impls(&mut self, impls: &Value, path: &str) {
        for i in impls.as_array().into_iter().flatten() {
            let Some(imp) = self.item(&i.to_string()) else {
                continue;
            };
            let body = get(get(imp, "inner"), "impl");
            if get(body, "is_synthetic") == true || !get(body, "blanket_impl").is_null() {
                continue;
            }
            match body.get("trait").filter(|t| !t.is_null()) {
                Some(t) => {
                    let name = get(t, "path").as_str().unwrap_or("_");
                    let name = name.rsplit("::").next().unwrap_or(name);
                    self.lines.insert(format!(
                        "impl {name}{} for {path}",
                        self.args(get(t, "args"))
                    ));
                }
                None => {
                    for m in get(body, "items").as_array().into_iter().flatten() {
                        let Some(method) = self.item(&m.to_string()).filter(|m| Api::public(m))
                        else {
                            continue;
                        };
                        let name = get(method, "name").as_str().unwrap_or("_");
                        if let Some(f) = get(method, "inner").get("function") {
                            self.lines.insert(format!(
                                "pub {} {path}::{name}{}{}",
                                Api::fn_kind(f),
                                self.signature(f),
                                attrs(method)
                            ));
                        }
                    }
                }
            }
        }
    }

    fn variant(&self, v: &Value) -> String {
        let kind = get(v, "kind");
        if let Some(fields) = kind.get("tuple").and_then(Value::as_array) {
            let tys: Vec<String> = fields
                .iter()
                .map(|f| {
                    self.item(&f.to_string())
                        .map(|f| self.ty(get(get(f, "inner"), "struct_field")))
                        .unwrap_or_else(|| "_".into())
                })
                .collect();
            return format!("({})", tys.join(", "));
        }
        if let Some(fields) = kind.get("struct").map(|s| get(s, "fields")) {
            let fs: Vec<String> = fields
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| self.item(&f.to_string()))
                .map(|f| {
                    format!(
                        "{}: {}",
                        get(f, "name").as_str().unwrap_or("_"),
                        self.ty(get(get(f, "inner"), "struct_field"))
                    )
                })
                .collect();
            return format!(" {{ {} }}", fs.join(", "));
        }
        String::new()
    }

    /// `fn` or `async fn`.
    fn fn_kind(f: &Value) -> &'static str {
        if get(get(f, "header"), "is_async") == true {
            "async fn"
        } else {
            "fn"
        }
    }

    fn signature(&self, f: &Value) -> String {
        let sig = get(f, "sig");
        let inputs: Vec<String> = get(sig, "inputs")
            .as_array()
            .into_iter()
            .flatten()
            .map(|pair| {
                let name = pair[0].as_str().unwrap_or("_");
                let ty = self.ty(&pair[1]);
                if name == "self" {
                    match ty.as_str() {
                        "Self" => "self".to_string(),
                        "&Self" => "&self".to_string(),
                        "&mut Self" => "&mut self".to_string(),
                        other => format!("self: {other}"),
                    }
                } else {
                    format!("{name}: {ty}")
                }
            })
            .collect();
        let output = match sig.get("output").filter(|o| !o.is_null()) {
            Some(o) => format!(" -> {}", self.ty(o)),
            None => String::new(),
        };
        format!(
            "{}({}){output}",
            self.generics(get(f, "generics")),
            inputs.join(", ")
        )
    }

    fn generics(&self, g: &Value) -> String {
        let params: Vec<String> = get(g, "params")
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                // Elided lifetimes and `impl Trait` arguments add nothing to read.
                get(get(p, "kind"), "type").get("is_synthetic") != Some(&Value::Bool(true))
            })
            .map(|p| {
                let name = get(p, "name").as_str().unwrap_or("_").to_string();
                let bounds = get(get(get(p, "kind"), "type"), "bounds");
                let b = self.bounds(bounds);
                if b.is_empty() {
                    name
                } else {
                    format!("{name}: {b}")
                }
            })
            .collect();
        if params.is_empty() {
            String::new()
        } else {
            format!("<{}>", params.join(", "))
        }
    }

    fn bounds(&self, bounds: &Value) -> String {
        let parts: Vec<String> = bounds
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| match b.get("trait_bound") {
                Some(tb) => {
                    let t = get(tb, "trait");
                    let name = get(t, "path").as_str().unwrap_or("_");
                    format!(
                        "{}{}",
                        name.rsplit("::").next().unwrap_or(name),
                        self.args(get(t, "args"))
                    )
                }
                None => b
                    .get("outlives")
                    .and_then(Value::as_str)
                    .unwrap_or("_")
                    .to_string(),
            })
            .collect();
        parts.join(" + ")
    }

    fn args(&self, args: &Value) -> String {
        if let Some(ab) = args.get("angle_bracketed") {
            let mut parts: Vec<String> = get(ab, "args")
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    if let Some(t) = a.get("type") {
                        self.ty(t)
                    } else if let Some(l) = a.get("lifetime").and_then(Value::as_str) {
                        l.to_string()
                    } else {
                        "_".into()
                    }
                })
                .collect();
            for c in get(ab, "constraints").as_array().into_iter().flatten() {
                let name = get(c, "name").as_str().unwrap_or("_");
                let binding = get(c, "binding");
                let value = binding
                    .get("equality")
                    .map(|e| self.ty(get(e, "type")))
                    .or_else(|| binding.get("constraint").map(|b| self.bounds(b)))
                    .unwrap_or_default();
                parts.push(format!("{name} = {value}"));
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("<{}>", parts.join(", "))
            }
        } else if let Some(p) = args.get("parenthesized") {
            let inputs: Vec<String> = get(p, "inputs")
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| self.ty(t))
                .collect();
            let output = p
                .get("output")
                .filter(|o| !o.is_null())
                .map(|o| format!(" -> {}", self.ty(o)))
                .unwrap_or_default();
            format!("({}){output}", inputs.join(", "))
        } else {
            String::new()
        }
    }

    fn ty(&self, t: &Value) -> String {
        let Some((kind, v)) = t.as_object().and_then(|o| o.iter().next()) else {
            return "_".into();
        };
        match kind.as_str() {
            "resolved_path" => {
                let path = get(v, "path").as_str().unwrap_or("_");
                format!(
                    "{}{}",
                    path.rsplit("::").next().unwrap_or(path),
                    self.args(get(v, "args"))
                )
            }
            "generic" | "primitive" => v.as_str().unwrap_or("_").to_string(),
            "borrowed_ref" => format!(
                "&{}{}{}",
                get(v, "lifetime")
                    .as_str()
                    .map(|l| format!("{l} "))
                    .unwrap_or_default(),
                if get(v, "is_mutable") == true {
                    "mut "
                } else {
                    ""
                },
                self.ty(get(v, "type"))
            ),
            "tuple" => {
                let items: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| self.ty(t))
                    .collect();
                format!("({})", items.join(", "))
            }
            "slice" => format!("[{}]", self.ty(v)),
            "array" => format!(
                "[{}; {}]",
                self.ty(get(v, "type")),
                get(v, "len").as_str().unwrap_or("_")
            ),
            "impl_trait" => format!("impl {}", self.bounds(v)),
            "dyn_trait" => {
                let traits: Vec<String> = get(v, "traits")
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let t = get(p, "trait");
                        let name = get(t, "path").as_str().unwrap_or("_");
                        format!(
                            "{}{}",
                            name.rsplit("::").next().unwrap_or(name),
                            self.args(get(t, "args"))
                        )
                    })
                    .collect();
                format!("dyn {}", traits.join(" + "))
            }
            "qualified_path" => format!(
                "<{} as _>::{}",
                self.ty(get(v, "self_type")),
                get(v, "name").as_str().unwrap_or("_")
            ),
            "raw_pointer" => format!(
                "*{} {}",
                if get(v, "is_mutable") == true {
                    "mut"
                } else {
                    "const"
                },
                self.ty(get(v, "type"))
            ),
            "function_pointer" => "fn(..)".into(),
            _ => "_".into(),
        }
    }
}
