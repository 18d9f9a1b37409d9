//! Live progress on stderr with indicatif: one row per running job (short id, model, state,
//! its own elapsed time ticking every second, the time left from what such a job usually
//! takes), and a summary row when there are several. Rows are cut to the terminal's width
//! (never wrapped); no more rows than fit are shown, and a finished job leaves one plain line
//! above them, so the scrollback holds each job once. On a stderr that is not a terminal only
//! those plain lines are written; with -q or --json nothing is. Every frame and every line
//! drawn among live rows is one synchronized update ([`crate::synced_term`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use krea::JobStatus;
use uuid::Uuid;

use crate::output::Out;
use crate::synced_term::{self, SyncedStderr};

/// Rows kept on screen besides the summary, at most.
const MAX_ROWS: usize = 10;

struct Row {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
    expected: Option<Duration>,
    status: JobStatus,
}

/// The progress of one command's jobs.
pub struct Progress {
    out: Out,
    live: bool,
    multi: MultiProgress,
    summary: Option<ProgressBar>,
    rows: HashMap<Uuid, Row>,
    /// Jobs submitted but not yet given a row (more than fit).
    waiting: Vec<Uuid>,
    total: usize,
    done: usize,
    failed: usize,
    max_rows: usize,
}

/// `12s`, `3m05s`, `1h02m`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// What a row says after its elapsed time: the time left, or how far past the usual it is.
fn remaining(elapsed: Duration, expected: Option<Duration>) -> String {
    match expected {
        Some(e) if e > elapsed => format!(", ~{} left", span(e - elapsed)),
        Some(e) if e > Duration::ZERO => format!(", usual ~{}", span(e)),
        _ => String::new(),
    }
}

fn row_style(expected: Option<Duration>) -> ProgressStyle {
    let timing = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let elapsed = state.elapsed();
        let _ = write!(w, "{}{}", span(elapsed), remaining(elapsed, expected));
    };
    ProgressStyle::with_template("  {prefix} {wide_msg} {timing}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("timing", timing)
}

impl Progress {
    /// Progress for `total` jobs (0 when not known in advance).
    pub fn new(out: &Out, total: usize) -> Progress {
        let live = out.live();
        let target = if live {
            ProgressDrawTarget::term_like_with_hz(Box::new(SyncedStderr::default()), 4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let height = console_height().unwrap_or(24);
        Progress {
            out: *out,
            live,
            multi: MultiProgress::with_draw_target(target),
            summary: None,
            rows: HashMap::new(),
            waiting: Vec::new(),
            total,
            done: 0,
            failed: 0,
            // The summary row and the cursor's row stay free.
            max_rows: height.saturating_sub(3).clamp(1, MAX_ROWS),
        }
    }

    /// A job was submitted: `label` names it (the model, or a batch line), `expected` is how
    /// long such a job usually takes.
    pub fn add(&mut self, id: Uuid, label: String, expected: Option<Duration>) {
        self.rows.insert(
            id,
            Row {
                bar: None,
                label,
                started: Instant::now(),
                expected,
                status: JobStatus::Queued,
            },
        );
        self.waiting.push(id);
        self.show_waiting();
        self.refresh_summary();
    }

    /// A job's state, adding its row the first time it is seen (waits on jobs this process
    /// did not submit: `jobs wait`, `jobs resume`).
    pub fn observe(
        &mut self,
        id: Uuid,
        label: impl FnOnce() -> (String, Option<Duration>),
        status: JobStatus,
    ) {
        if !self.rows.contains_key(&id) {
            let (label, expected) = label();
            self.add(id, label, expected);
        }
        self.set(id, status);
    }

    /// A job's state changed.
    pub fn set(&mut self, id: Uuid, status: JobStatus) {
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        row.status = status.clone();
        if status.is_terminal() {
            self.finish(id);
        } else if let Some(bar) = &row.bar {
            bar.set_message(message(&row.label, &status));
        }
        self.refresh_summary();
    }

    /// Follows a batch run: a row per submitted job (labelled and timed by `label`), its state
    /// changes, its end; the jobs are tracked for Ctrl-C while they run.
    pub fn follow(
        &mut self,
        event: &krea::BatchEvent<'_>,
        label: impl FnOnce(&krea::ItemState) -> (String, Option<Duration>),
    ) {
        match event {
            krea::BatchEvent::Submitted { item } => {
                if let Some(id) = item.job_id {
                    crate::context::track(id);
                    let (text, expected) = label(item);
                    self.add(id, text, expected);
                }
            }
            krea::BatchEvent::Update { update, .. } => {
                self.set(update.job_id, update.status.clone());
            }
            krea::BatchEvent::Ended { item } => {
                if let Some(id) = item.job_id {
                    self.end(id, &item_word(item.status).replace('_', " "));
                    // A job that timed out still runs: Ctrl-C still reports it.
                    if item.status != krea::ItemStatus::TimedOut {
                        crate::context::untrack(id);
                    }
                }
            }
            _ => {}
        }
    }

    /// A job ended without a final state seen (a batch item that failed to be waited for).
    pub fn end(&mut self, id: Uuid, status: &str) {
        if let Some(row) = self.rows.get_mut(&id)
            && !row.status.is_terminal()
        {
            row.status = JobStatus::Other(status.to_string());
            self.finish(id);
            self.refresh_summary();
        }
    }

    fn finish(&mut self, id: Uuid) {
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        let line = format!(
            "  {} {}  {} after {}",
            short(id),
            row.label,
            row.status.as_str(),
            span(row.started.elapsed())
        );
        if let Some(bar) = row.bar.take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.done += 1;
        if row.status != JobStatus::Completed {
            self.failed += 1;
        }
        self.waiting.retain(|w| *w != id);
        if self.live {
            // Above the rows, as an ordinary line ending in a newline (println would pad it to
            // the full width and leave the cursor at its end).
            self.multi
                .suspend(|| synced_term::write_whole(&format!("{line}\n")).ok());
        } else {
            self.out.note(line.trim_start());
        }
        self.show_waiting();
    }

    /// Gives rows to waiting jobs while there is room.
    fn show_waiting(&mut self) {
        if !self.live {
            self.waiting.clear();
            return;
        }
        let shown = self.rows.values().filter(|r| r.bar.is_some()).count();
        let room = self.max_rows.saturating_sub(shown);
        let take: Vec<Uuid> = self.waiting.drain(..room.min(self.waiting.len())).collect();
        for id in take {
            let Some(row) = self.rows.get_mut(&id) else {
                continue;
            };
            let bar = ProgressBar::hidden()
                .with_style(row_style(row.expected))
                .with_prefix(short(id))
                .with_message(message(&row.label, &row.status))
                .with_elapsed(row.started.elapsed());
            let bar = match &self.summary {
                Some(s) => self.multi.insert_before(s, bar),
                None => self.multi.add(bar),
            };
            bar.enable_steady_tick(Duration::from_secs(1));
            row.bar = Some(bar);
        }
    }

    fn refresh_summary(&mut self) {
        if !self.live || self.total.max(self.rows.len()) < 2 {
            return;
        }
        let summary = self.summary.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::hidden());
            bar.set_style(
                ProgressStyle::with_template("  {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_secs(1));
            bar
        });
        let total = self.total.max(self.rows.len());
        let running = self.rows.len() - self.done;
        let mut text = format!("{}/{total} done, {running} running", self.done);
        if self.failed > 0 {
            let _ = write!(text, ", {} failed", self.failed);
        }
        if let Some(eta) = eta(&self.rows, total - self.rows.len()) {
            let _ = write!(text, ", ETA ~{}", span(eta));
        }
        summary.set_message(text);
    }

    /// Clears the rows (before the command prints its results).
    pub fn clear(&mut self) {
        for row in self.rows.values_mut() {
            if let Some(bar) = row.bar.take() {
                bar.finish_and_clear();
            }
        }
        if let Some(s) = self.summary.take() {
            s.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The time until every job is expected to be done: the longest time left of a running job,
/// plus one usual duration per wave of jobs not yet submitted.
fn eta(rows: &HashMap<Uuid, Row>, not_submitted: usize) -> Option<Duration> {
    let running: Vec<&Row> = rows.values().filter(|r| !r.status.is_terminal()).collect();
    let usual = rows.values().filter_map(|r| r.expected).max()?;
    let left = running
        .iter()
        .filter_map(|r| r.expected.map(|e| e.saturating_sub(r.started.elapsed())))
        .max()
        .unwrap_or_default();
    let window = running.len().max(1);
    let waves = not_submitted.div_ceil(window) as u32;
    Some(left + usual * waves)
}

fn message(label: &str, status: &JobStatus) -> String {
    format!("{label}  {}", status.as_str())
}

/// The first 8 characters of a job id, as file names show it (`krea jobs get` takes it).
pub fn short(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

fn console_height() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stderr()).map(|(_, h)| h.0 as usize)
}

/// A batch item's state as a word (`timed_out`, `error`...), as `--json` spells it.
pub fn item_word(status: krea::ItemStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| "ended".into())
}
