//! Asking before spending: at a terminal, a run whose worst case passes a threshold
//! (`$KREA_CONFIRM_ABOVE_CU`, default 50 CU: the default video model costs 367) waits for a
//! yes. Nothing is asked with `--yes`, under `--sim` (nothing is paid), or when stdin is not a
//! terminal (scripts and pipes are never held up by a question).
#![allow(clippy::print_stderr)] // the question goes to the terminal, beside the progress

use std::io::{BufRead, IsTerminal, Write};

use crate::exit::Usage;
use crate::output::Out;

/// The environment variable that sets the threshold: compute units, or `never`.
pub const THRESHOLD_VAR: &str = "KREA_CONFIRM_ABOVE_CU";

/// Asked above this many compute units unless told otherwise.
pub const DEFAULT_THRESHOLD: f64 = 50.0;

/// The threshold: `None` when the user never wants to be asked.
fn threshold() -> anyhow::Result<Option<f64>> {
    let Ok(value) = std::env::var(THRESHOLD_VAR) else {
        return Ok(Some(DEFAULT_THRESHOLD));
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    match value.parse::<f64>() {
        Ok(cu) if cu.is_finite() && cu >= 0.0 => Ok(Some(cu)),
        _ => Err(Usage(format!(
            "{THRESHOLD_VAR}={value:?}: give a number of compute units, or `never`"
        ))
        .into()),
    }
}

/// Whether `answer` (a line typed) says yes.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// At a terminal, asks before sending `what` when its worst case passes the threshold; an
/// answer other than yes ends the command with nothing sent.
pub async fn spend(out: &Out, worst: krea::Estimate, what: &str) -> anyhow::Result<()> {
    if !out.ask || out.simulated || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    let Some(limit) = threshold()? else {
        return Ok(());
    };
    if worst.high <= limit {
        return Ok(());
    }
    {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "{what} may cost up to {worst} (asked above {limit} CU). Send? [y/N] "
        );
        let _ = stderr.flush();
    }
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await??;
    if is_yes(&answer) {
        return Ok(());
    }
    Err(Usage(format!(
        "not sent, nothing paid (--yes, or {THRESHOLD_VAR}=CU or never, skips the question)"
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_sends() {
        assert!(is_yes("y\n") && is_yes(" YES ") && is_yes("Yes"));
        assert!(!is_yes("\n") && !is_yes("n") && !is_yes("yep") && !is_yes(""));
    }
}
