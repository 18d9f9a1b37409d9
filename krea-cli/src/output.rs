//! Everything the CLI prints goes through here. Results go to stdout (a broken pipe ends the
//! program quietly: `krea jobs list | head` is not an error); notes and progress go to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the one place that prints

use std::fmt::Display;
use std::io::{IsTerminal, Write};

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// JSON on stdout instead of lines.
    pub json: bool,
    /// No notes or progress on stderr.
    pub quiet: bool,
    /// Results come from the simulator.
    pub simulated: bool,
    /// Ask at a terminal before spending past the threshold (no `--yes`).
    pub ask: bool,
}

fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = written
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        // The reader went away (e.g. `| head`): stop quietly.
        std::process::exit(0);
    }
}

impl Out {
    /// A result line on stdout (ignored in JSON mode: the JSON document carries it).
    pub fn line(&self, line: impl Display) {
        if !self.json {
            write_stdout(&format!("{line}\n"));
        }
    }

    /// The JSON document on stdout (JSON mode only), in the envelope every document has.
    pub fn json(&self, value: &serde_json::Value) {
        if self.json {
            json_always(value);
        }
    }

    /// The jobs of a command, in the one shape (`crate::job_json`), with `extra` fields beside.
    pub fn jobs(&self, jobs: &[crate::job_json::JobOut], extra: serde_json::Value) {
        if self.json {
            let mut doc = match extra {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            doc.insert(
                "jobs".into(),
                jobs.iter().map(crate::job_json::JobOut::to_json).collect(),
            );
            self.json(&serde_json::Value::Object(doc));
        }
    }

    /// A note on stderr (not with -q or --json).
    pub fn note(&self, note: impl Display) {
        if !self.quiet && !self.json {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{note}");
        }
    }

    /// A warning on stderr: shown even with -q or --json (it is about money or safety).
    pub fn warn(&self, warning: impl Display) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "WARN {warning}");
    }

    /// Whether live progress lines may be drawn.
    pub fn live(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }

    /// " (simulated)" when talking to the simulator.
    pub fn sim_tag(&self) -> &'static str {
        if self.simulated { " (simulated)" } else { "" }
    }
}

/// The version of the `--json` documents' shape (`krea-cli/schema/output-v1.json`); it changes
/// only when a document changes in a way that could break a reader.
pub const JSON_VERSION: u32 = 1;

/// What every `--json` document starts with: the command and whether it was simulated.
static ENVELOPE: std::sync::OnceLock<(String, bool)> = std::sync::OnceLock::new();

/// Sets the envelope, once, when the command line is parsed.
pub fn envelope(command: String, simulated: bool) {
    let _ = ENVELOPE.set((command, simulated));
}

/// `value`'s members after `krea_json` (the shape's version), `command` and `simulated`.
fn enveloped(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let (command, simulated) = ENVELOPE.get().cloned().unwrap_or_default();
    let mut doc = serde_json::Map::new();
    doc.insert("krea_json".into(), Value::from(JSON_VERSION));
    doc.insert("command".into(), Value::String(command));
    doc.insert("simulated".into(), Value::Bool(simulated));
    match value {
        Value::Object(members) => {
            for (k, v) in members {
                if !doc.contains_key(k) {
                    doc.insert(k.clone(), v.clone());
                }
            }
        }
        other => {
            doc.insert("result".into(), other.clone());
        }
    }
    Value::Object(doc)
}

/// A JSON document on stdout whatever the mode (the error object of `--json`).
pub fn json_always(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(&enveloped(value)).unwrap_or_else(|_| "null".into());
    write_stdout(&format!("{text}\n"));
}

/// A path as people read it: `./name` under the current directory, else as it is.
pub fn shown(path: &std::path::Path) -> String {
    let relative = std::env::current_dir().ok().and_then(|cwd| {
        path.strip_prefix(cwd)
            .ok()
            .map(std::path::Path::to_path_buf)
    });
    match relative {
        Some(r) => format!("./{}", r.display()),
        None => path.display().to_string(),
    }
}

/// An error on stderr, always (even with -q).
pub fn error(message: impl Display) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {message}");
}

/// A hint under an error.
pub fn hint(message: impl Display) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "  {message}");
}

/// Raw text to stdout (help, completions, tables).
pub fn raw(text: &str) {
    write_stdout(text);
}

/// The width listings fit: the terminal's, else `COLUMNS`, else 80.
pub fn listing_width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| w.0 as usize)
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(80)
        .max(40)
}

/// `text` in at most `width` characters (`…` marks a cut).
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        text.chars().take(width - 1).collect::<String>() + "…"
    }
}

/// A column of a listing: its heading, its width (the last column shown takes what is left),
/// and whether it is right-aligned.
pub struct Column {
    pub head: &'static str,
    pub width: usize,
    pub right: bool,
}

/// Which columns a listing shows at a given width, and how wide each is: columns are shown
/// in order while they fit; the last column, or the first that does not fit, takes the rest of
/// the line (cut) if at least 8 characters are left, and the others are left out.
pub struct Layout {
    shown: Vec<(usize, usize, bool)>,
}

impl Layout {
    pub fn new(columns: &[Column], width: usize) -> Layout {
        let mut shown = Vec::new();
        let mut used = 0;
        for (i, c) in columns.iter().enumerate() {
            let gap = if shown.is_empty() { 0 } else { 2 };
            let left = width.saturating_sub(used + gap);
            if c.width <= left && i + 1 < columns.len() {
                shown.push((i, c.width, c.right));
                used += gap + c.width;
            } else {
                if left >= 8 {
                    shown.push((i, left, c.right));
                }
                break;
            }
        }
        Layout { shown }
    }

    /// One line of `cells` (indexed like the columns), ending in a newline.
    pub fn line(&self, cells: &[String]) -> String {
        let mut out = String::new();
        for (n, (i, w, right)) in self.shown.iter().enumerate() {
            if n > 0 {
                out.push_str("  ");
            }
            let text = cut(cells.get(*i).map_or("", String::as_str), *w);
            if *right {
                out.push_str(&format!("{text:>w$}"));
            } else {
                out.push_str(&format!("{text:<w$}"));
            }
        }
        out.trim_end().to_string() + "\n"
    }

    /// The headings line.
    pub fn header(&self, columns: &[Column]) -> String {
        let heads: Vec<String> = columns.iter().map(|c| c.head.to_string()).collect();
        self.line(&heads)
    }
}

impl Layout {
    /// The layout for known `rows`: each column as wide as its widest cell (at most its
    /// `width`, when not 0); columns in order while they fit whole; then one more, cut, if
    /// at least `min_cut` characters are left for it (a column cut to a few characters says
    /// nothing).
    pub fn fit(columns: &[Column], rows: &[Vec<String>], width: usize, min_cut: usize) -> Layout {
        let mut shown = Vec::new();
        let mut used = 0;
        for (i, c) in columns.iter().enumerate() {
            let natural = rows
                .iter()
                .map(|r| r.get(i).map_or(0, |t| t.chars().count()))
                .chain([c.head.chars().count()])
                .max()
                .unwrap_or(0);
            let natural = if c.width > 0 {
                natural.min(c.width)
            } else {
                natural
            };
            let gap = if shown.is_empty() { 0 } else { 2 };
            let left = width.saturating_sub(used + gap);
            if natural <= left {
                shown.push((i, natural, c.right));
                used += gap + natural;
            } else {
                if left >= min_cut.min(natural) {
                    shown.push((i, left, c.right));
                }
                break;
            }
        }
        Layout { shown }
    }
}

/// Rows under headings, in at most `width` characters a line (see [`Layout::fit`]).
pub fn table(columns: &[Column], rows: &[Vec<String>], width: usize) -> String {
    let layout = Layout::fit(columns, rows, width, 16);
    let mut out = layout.header(columns);
    for row in rows {
        out.push_str(&layout.line(row));
    }
    out
}
