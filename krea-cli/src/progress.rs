//! Live progress on stderr with indicatif: one row per running job (short id, model, state,
//! its own elapsed time ticking every second, the time left from what such a job usually
//! takes), and a summary row when there are several. Rows are cut to the terminal's width
//! (never wrapped); no more rows than fit are shown, and a finished job leaves one plain line
//! above them, so the scrollback holds each job once. On a stderr that is not a terminal only
//! those plain lines are written; with -q or --json nothing is. Every frame and every line
//! drawn among live rows is one synchronized update ([`crate::synced_term`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use krea::JobStatus;
use uuid::Uuid;

use crate::output::Out;
use crate::synced_term::{self, SyncedStderr};

/// Rows kept on screen besides the summary, at most.
const MAX_ROWS: usize = 10;

/// A row says how long ago its state was confirmed once it is this old.
const SEEN_SHOWN_AFTER: Duration = Duration::from_secs(3);

/// When a row's state was last confirmed (read when the row is drawn).
type Seen = Arc<Mutex<Instant>>;

struct Row {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
    expected: Option<Duration>,
    status: JobStatus,
    /// First seen already ended (a job that finished while no command was waiting for it).
    ended_before: bool,
    seen: Seen,
}

/// What the summary row says, computed each time it is drawn (so its ETA counts down with the
/// rows, not only when a job changes state).
#[derive(Default)]
struct Tally {
    total: usize,
    done: usize,
    failed: usize,
    /// Each job not ended: when it started, how long such a job usually takes, its state.
    open: HashMap<Uuid, (Instant, Option<Duration>, JobStatus)>,
    /// The longest usual duration among every job seen.
    usual: Option<Duration>,
    seen: usize,
}

impl Tally {
    fn text(&self) -> String {
        let total = self.total.max(self.seen);
        // Jobs not ended, by the state their rows show (processing first).
        let mut states: Vec<(String, usize)> = Vec::new();
        for (_, _, status) in self.open.values() {
            let word = state_word(status);
            match states.iter_mut().find(|(w, _)| *w == word) {
                Some((_, n)) => *n += 1,
                None => states.push((word, 1)),
            }
        }
        states.sort_by_key(|(w, _)| (w != "processing", w.clone()));
        let mut text = format!("{}/{total} done", self.done);
        for (word, n) in states {
            let _ = write!(text, ", {n} {word}");
        }
        if self.failed > 0 {
            let _ = write!(text, ", {} failed", self.failed);
        }
        if let Some(eta) = eta(&self.open, self.usual, total - self.seen) {
            let _ = write!(text, ", ETA ~{}", span(eta));
        }
        text
    }
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
    tally: Arc<Mutex<Tally>>,
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

/// A live row: the label takes what width is left and is cut first; the state word and the
/// times are never cut.
fn row_style(expected: Option<Duration>, status: &JobStatus, seen: Seen) -> ProgressStyle {
    let timing = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let elapsed = state.elapsed();
        let _ = write!(w, "{}{}", span(elapsed), remaining(elapsed, expected));
        // The state shown is as of the last look at the job: say how old it is once that
        // matters (the client looks rarely while a job is far from its usual time).
        let age = seen.lock().map(|t| t.elapsed()).unwrap_or_default();
        if age >= SEEN_SHOWN_AFTER {
            let _ = write!(w, ", seen {} ago", span(age));
        }
    };
    let word = state_word(status);
    ProgressStyle::with_template("  {prefix} {wide_msg} {state} {timing}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("timing", timing)
        .with_key(
            "state",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&word);
            },
        )
}

/// A state as a person reads it (`timed out`, not `timed_out`).
fn state_word(status: &JobStatus) -> String {
    status.as_str().replace('_', " ")
}

impl Progress {
    /// Progress for `total` jobs (0 when not known in advance).
    pub fn new(out: &Out, total: usize) -> Progress {
        let live = out.live();
        let target = if live {
            ProgressDrawTarget::term_like_with_hz(Box::new(SyncedStderr), 4)
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
            tally: Arc::new(Mutex::new(Tally {
                total,
                ..Tally::default()
            })),
            // The summary row and the cursor's row stay free.
            max_rows: height.saturating_sub(3).clamp(1, MAX_ROWS),
        }
    }

    /// A job was submitted: `label` names it (the model, or a batch line), `expected` is how
    /// long such a job usually takes.
    pub fn add(&mut self, id: Uuid, label: String, expected: Option<Duration>) {
        // The row, the summary and any line printed reach the terminal as one update.
        let _held = synced_term::hold();
        self.rows.insert(
            id,
            Row {
                bar: None,
                label,
                started: Instant::now(),
                expected,
                status: JobStatus::Queued,
                ended_before: false,
                seen: Arc::new(Mutex::new(Instant::now())),
            },
        );
        self.waiting.push(id);
        if let Ok(mut t) = self.tally.lock() {
            t.seen += 1;
            t.usual = t.usual.max(expected);
            t.open
                .insert(id, (Instant::now(), expected, JobStatus::Queued));
        }
        // The summary counts the job before its row is drawn, so no frame shows a row the
        // summary does not count.
        self.refresh_summary();
        self.show_waiting();
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
            if status.is_terminal()
                && let Some(row) = self.rows.get_mut(&id)
            {
                // Ended before this command looked: how long it took is not known here.
                row.ended_before = true;
            }
        }
        self.set(id, status);
    }

    /// A job's state changed.
    pub fn set(&mut self, id: Uuid, status: JobStatus) {
        // The row, the summary and any line printed reach the terminal as one update.
        let _held = synced_term::hold();
        let Some(row) = self.rows.get_mut(&id) else {
            return;
        };
        row.status = status.clone();
        if let Ok(mut t) = row.seen.lock() {
            *t = Instant::now();
        }
        if status.is_terminal() {
            self.finish(id);
        } else {
            // The row and the summary are redrawn within the caller's hold: the terminal gets
            // both in one update (the summary below).
            if let Ok(mut t) = self.tally.lock()
                && let Some(open) = t.open.get_mut(&id)
            {
                open.2 = status.clone();
            }
            if let Some(bar) = &row.bar {
                bar.set_style(row_style(row.expected, &status, row.seen.clone()));
                bar.force_draw();
            }
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
            krea::BatchEvent::Seen { update, .. } => {
                if let Some(Ok(mut t)) = self.rows.get(&update.job_id).map(|r| r.seen.lock()) {
                    *t = Instant::now();
                }
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
        // The row, the summary and any line printed reach the terminal as one update.
        let _held = synced_term::hold();
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
        // One line in the scrollback, never wrapped: the label is cut first.
        let tail = if row.ended_before {
            format!("  {} before this run", state_word(&row.status))
        } else {
            format!(
                "  {} after {}",
                state_word(&row.status),
                span(row.started.elapsed())
            )
        };
        let head = format!("  {} ", short(id));
        let label = match console_width() {
            Some(w) if self.live => crate::output::cut(
                &row.label,
                w.saturating_sub(head.chars().count() + tail.chars().count()),
            ),
            _ => row.label.clone(),
        };
        let line = format!("{head}{label}{tail}");
        if let Some(bar) = row.bar.take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if let Ok(mut t) = self.tally.lock() {
            t.done += 1;
            if row.status != JobStatus::Completed {
                t.failed += 1;
            }
            t.open.remove(&id);
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
                .with_style(row_style(row.expected, &row.status, row.seen.clone()))
                .with_prefix(short(id))
                .with_message(row.label.clone())
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
        if let Some(bar) = &self.summary {
            // Drawn again now (not at the next tick): a frame shows the rows and a summary of
            // those same rows.
            bar.force_draw();
            return;
        }
        let seen = self.tally.lock().map(|t| t.total.max(t.seen)).unwrap_or(0);
        if !self.live || seen < 2 {
            return;
        }
        let tally = self.tally.clone();
        let text = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            if let Ok(t) = tally.lock() {
                let _ = w.write_str(&t.text());
            }
        };
        let bar = self.multi.add(ProgressBar::hidden());
        bar.set_style(
            ProgressStyle::with_template("  {summary}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .with_key("summary", text),
        );
        bar.enable_steady_tick(Duration::from_secs(1));
        self.summary = Some(bar);
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

/// The time until every job is expected to be done: the longest time left of a job not
/// ended, plus one usual duration per wave of jobs not yet submitted.
fn eta(
    open: &HashMap<Uuid, (Instant, Option<Duration>, JobStatus)>,
    usual: Option<Duration>,
    not_submitted: usize,
) -> Option<Duration> {
    let usual = usual?;
    let left = open
        .values()
        .filter_map(|(started, expected, _)| expected.map(|e| e.saturating_sub(started.elapsed())))
        .max()
        .unwrap_or_default();
    let window = open.len().max(1);
    let waves = not_submitted.div_ceil(window) as u32;
    Some(left + usual * waves)
}

/// The first 8 characters of a job id, as file names show it (`krea jobs get` takes it).
pub fn short(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

fn console_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stderr()).map(|(w, _)| w.0 as usize)
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
