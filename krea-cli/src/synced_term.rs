//! Stderr as indicatif's draw target, one frame per write: a redraw (cursor moves, cleared
//! rows, new rows) is collected and written at once, between the markers of synchronized
//! output (DEC private mode 2026). A terminal that knows the mode shows the frame whole; one
//! that does not ignores the markers. Without them a frame reaches the terminal in pieces (a
//! tty hands a write over line by line and in buffer-sized runs), and a screen drawn mid-frame
//! shows half a row.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::TermLike;

/// Starts a synchronized update: the terminal holds its screen until [`END`].
pub const BEGIN: &str = "\x1b[?2026h";
/// Ends a synchronized update.
pub const END: &str = "\x1b[?2026l";

/// Stderr, written one whole frame at a time.
#[derive(Debug, Default)]
pub struct SyncedStderr;

/// What is drawn but not yet written: the frame being drawn, or every frame drawn while held.
/// There is one stderr, so one buffer.
static PENDING: Mutex<String> = Mutex::new(String::new());

/// Holds on this many [`Hold`]s: frames are kept, and written as one update when the last ends.
static HELD: AtomicUsize = AtomicUsize::new(0);

fn pending() -> std::sync::MutexGuard<'static, String> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// While it lives, what is drawn (frames, lines among the rows) reaches the terminal as one
/// synchronized update when it ends: a change shown in two places (a row and the summary) is
/// never seen half made.
pub struct Hold(());

/// Starts holding frames.
pub fn hold() -> Hold {
    HELD.fetch_add(1, Ordering::SeqCst);
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        if HELD.fetch_sub(1, Ordering::SeqCst) == 1 {
            let text = std::mem::take(&mut *pending());
            if !text.is_empty() {
                let _ = write_now(&text);
            }
        }
    }
}

impl SyncedStderr {
    fn push(&self, s: &str) {
        pending().push_str(s);
    }

    fn cursor(&self, n: usize, code: char) {
        if n > 0 {
            self.push(&format!("\x1b[{n}{code}"));
        }
    }
}

fn write_now(text: &str) -> io::Result<()> {
    let mut stderr = io::stderr().lock();
    stderr.write_all(format!("{BEGIN}{text}{END}").as_bytes())?;
    stderr.flush()
}

/// Writes `text` to stderr as one synchronized update (lines printed above live rows), or
/// with what is held.
pub fn write_whole(text: &str) -> io::Result<()> {
    if HELD.load(Ordering::SeqCst) > 0 {
        pending().push_str(text);
        return Ok(());
    }
    write_now(text)
}

fn size() -> Option<(u16, u16)> {
    terminal_size::terminal_size_of(io::stderr()).map(|(w, h)| (w.0, h.0))
}

impl TermLike for SyncedStderr {
    fn width(&self) -> u16 {
        size().map_or(80, |(w, _)| w)
    }

    fn height(&self) -> u16 {
        size().map_or(24, |(_, h)| h)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A');
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B');
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C');
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D');
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.push(s);
        self.push("\n");
        Ok(())
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.push(s);
        Ok(())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.push("\r\x1b[2K");
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        if HELD.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let frame = std::mem::take(&mut *pending());
        if frame.is_empty() {
            return Ok(());
        }
        write_now(&frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_collected_until_flushed() {
        let t = SyncedStderr;
        let held = hold();
        t.move_cursor_up(0).unwrap();
        t.move_cursor_up(2).unwrap();
        t.clear_line().unwrap();
        t.write_line("  row").unwrap();
        t.write_str("  last").unwrap();
        t.flush().unwrap();
        write_whole("\n  a line").unwrap();
        // Held: kept, in order, until the hold ends.
        let frame = pending().clone();
        assert_eq!(frame, "\x1b[2A\r\x1b[2K  row\n  last\n  a line");
        std::mem::take(&mut *pending());
        drop(held);
    }
}
