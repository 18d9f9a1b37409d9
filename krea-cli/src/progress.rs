//! One live line per job on stderr (state and elapsed time), redrawn in place. Only when
//! stderr is a terminal and neither -q nor --json is given.

use std::io::Write;
use std::time::Instant;

use krea::JobStatus;
use uuid::Uuid;

pub struct Progress {
    live: bool,
    started: Instant,
    rows: Vec<(Uuid, String, JobStatus)>,
    drawn: usize,
}

impl Progress {
    pub fn new(live: bool) -> Progress {
        Progress {
            live,
            started: Instant::now(),
            rows: Vec::new(),
            drawn: 0,
        }
    }

    /// Adds a job line.
    pub fn add(&mut self, id: Uuid, label: String, status: JobStatus) {
        self.rows.push((id, label, status));
        self.draw();
    }

    /// Updates a job's state.
    pub fn set(&mut self, id: Uuid, status: JobStatus) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.0 == id) {
            row.2 = status;
        }
        self.draw();
    }

    fn draw(&mut self) {
        if !self.live {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.drawn > 0 {
            let _ = write!(err, "\x1b[{}A", self.drawn);
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        // Long batches: the last 20 lines.
        let skip = self.rows.len().saturating_sub(20);
        for (id, label, status) in &self.rows[skip..] {
            let short: String = id.to_string().chars().take(8).collect();
            let _ = writeln!(
                err,
                "\x1b[2K  {short}  {:<22} {label}  {elapsed:>6.1}s",
                status.as_str()
            );
        }
        self.drawn = self.rows.len() - skip;
        let _ = err.flush();
    }
}
