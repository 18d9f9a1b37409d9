//! The live progress as a person sees it: `krea` runs on a pseudo-terminal of a given size and
//! its output is fed to a terminal emulator (vt100), which is then read like a screen: the
//! elapsed time must tick while a job runs, no line may be wider than the pane (wrap), and a
//! run of more jobs than the pane has rows must leave each job once in the scrollback. Screens
//! are read where a terminal that honours synchronized output shows them.

use crate::support;

use std::io::Read;
use std::num::NonZeroU16;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::mpsc;

use krea_sim::Simulator;
use nix::pty::{Winsize, openpty};
use support::{command, env_scaled};

/// Runs `krea ARGS` on a `cols` x `rows` pseudo-terminal; returns everything it drew, in the
/// chunks it arrived in, and its exit code.
async fn on_terminal(e: &support::Env, args: &[&str], cols: u16, rows: u16) -> (Vec<Vec<u8>>, i32) {
    typing(e, args, cols, rows, b"").await
}

/// As [`on_terminal`], with `input` typed at the terminal as the command starts.
async fn typing(
    e: &support::Env,
    args: &[&str],
    cols: u16,
    rows: u16,
    input: &[u8],
) -> (Vec<Vec<u8>>, i32) {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).expect("a pseudo-terminal");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
    let mut cmd = command(e);
    cmd.args(args)
        .env("TERM", "xterm-256color")
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave));
    let mut child = cmd.spawn().expect("krea starts");
    drop(cmd);
    drop(pty.slave);
    let (tx, rx) = mpsc::channel();
    let mut master = std::fs::File::from(pty.master);
    if !input.is_empty() {
        use std::io::Write;
        // The terminal keeps what is typed until the program reads it.
        master.write_all(input).expect("typing");
    }
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // EIO once the child and every copy of the slave side are gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let status = tokio::task::spawn_blocking(move || child.wait().expect("krea ends"))
        .await
        .expect("join");
    reader.join().expect("reader");
    (rx.try_iter().collect(), status.code().unwrap_or(-1))
}

fn parser(cols: u16, rows: u16) -> vt100::Parser {
    let n = |v: u16| NonZeroU16::new(v).expect("size");
    vt100::Parser::new(n(rows), n(cols), 10_000)
}

/// Feeds everything `krea` drew to `term` as a terminal that honours synchronized output
/// (DEC mode 2026) shows it, calling `at_rest` with the screen after each synchronized update
/// and at the end. A pseudo-terminal hands writes over in pieces (line by line, buffer by
/// buffer), so only these moments are screens a person sees. Returns the number of updates.
fn replay(
    term: &mut vt100::Parser,
    chunks: &[Vec<u8>],
    mut at_rest: impl FnMut(&vt100::Parser),
) -> usize {
    const END: &[u8] = b"\x1b[?2026l";
    let stream = chunks.concat();
    let mut from = 0;
    let mut updates = 0;
    while let Some(at) = stream[from..].windows(END.len()).position(|w| w == END) {
        let to = from + at + END.len();
        term.process(&stream[from..to]);
        at_rest(term);
        updates += 1;
        from = to;
    }
    term.process(&stream[from..]);
    at_rest(term);
    updates
}

fn screen_rows(p: &vt100::Parser, cols: u16) -> Vec<String> {
    p.screen().rows(0, cols).collect()
}

/// Every line ever on the pane, scrollback first.
fn history(p: &mut vt100::Parser, cols: u16) -> Vec<String> {
    p.screen_mut().set_scrollback(usize::MAX);
    let back = p.screen().scrollback();
    let mut lines = Vec::new();
    for offset in (1..=back).rev() {
        p.screen_mut().set_scrollback(offset);
        lines.extend(p.screen().rows(0, cols).next());
    }
    p.screen_mut().set_scrollback(0);
    lines.extend(screen_rows(p, cols));
    lines
}

/// A screen holds only whole lines of known kinds (a line too wide for the pane would leave a
/// fragment of itself on the next row) and no job on two live rows.
fn well_formed(rows: &[String]) -> Result<(), String> {
    let is_job_row = |r: &str| {
        r.len() > 11
            && r.starts_with("  ")
            && r[2..10].chars().all(|c| c.is_ascii_hexdigit())
            && &r[10..11] == " "
    };
    let mut live_ids = Vec::new();
    for row in rows.iter().map(|r| r.trim_end()).filter(|r| !r.is_empty()) {
        let known = is_job_row(row)
            || (row.starts_with("  ") && row.contains(" done, "))
            || row.starts_with("estimate: ")
            || row.starts_with("Generated with ")
            || row.starts_with("./");
        if !known {
            return Err(format!("a fragment on screen: {row:?}"));
        }
        if is_job_row(row) && !row.contains(" after ") {
            let id = &row[2..10];
            if live_ids.contains(&id) {
                return Err(format!("job {id} on two rows"));
            }
            live_ids.push(id);
        }
    }
    Ok(())
}

/// The elapsed-time field of a live row of `label` (`4s`, `1m02s`), if one is on screen.
fn elapsed_on_screen(rows: &[String], label: &str) -> Option<String> {
    let row = rows
        .iter()
        .find(|r| r.contains(label) && !r.contains(" after "))?;
    row.split_whitespace()
        .skip_while(|t| !t.contains(label))
        .skip(2) // the label and the state
        .map(|t| t.trim_end_matches(','))
        .find(|t| t.ends_with('s') && t.starts_with(|c: char| c.is_ascii_digit()))
        .map(String::from)
}

async fn a_ten_second_job_ticks(cols: u16) -> Vec<String> {
    // flux-1-dev's typical time, scaled to about 10 s of wall time.
    let typical = krea::models::resolve("flux")
        .ok()
        .and_then(|m| m.typical_seconds)
        .unwrap_or(20.0);
    let e = env_scaled("tty", Simulator::builder(), 10.0 / typical).await;
    let args = [
        "--poll",
        "0.5",
        "image",
        "a lighthouse at dusk",
        "-m",
        "flux",
    ];
    let (chunks, code) = on_terminal(&e, &args, cols, 30).await;
    assert_eq!(code, 0, "krea image exits 0");
    let mut term = parser(cols, 30);
    let mut seen: Vec<String> = Vec::new();
    let updates = replay(&mut term, &chunks, |term| {
        let rows = screen_rows(term, cols);
        if let Err(e) = well_formed(&rows) {
            panic!("{e} at {cols} columns: {rows:#?}");
        }
        if let Some(t) = elapsed_on_screen(&rows, "flux-1-dev")
            && seen.last() != Some(&t)
        {
            seen.push(t);
            // KREA_TERMINAL_CAPTURE=DIR keeps the screen as the 5th tick showed it.
            if seen.len() == 5
                && let Some(dir) = std::env::var_os("KREA_TERMINAL_CAPTURE")
            {
                let text = rows[..8].join("\n");
                std::fs::write(std::path::Path::new(&dir).join(format!("{cols}.txt")), text)
                    .expect("capture");
            }
        }
    });
    assert!(
        updates >= 5,
        "{updates} synchronized updates at {cols} columns"
    );
    assert!(
        seen.len() >= 5,
        "the elapsed time changed {} times on screen at {cols} columns: {seen:?}",
        seen.len()
    );
    history(&mut term, cols)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_elapsed_time_ticks_and_no_line_wraps_at_60_and_80_columns() {
    let (narrow, wide) = tokio::join!(a_ten_second_job_ticks(60), a_ten_second_job_ticks(80));
    for (cols, lines) in [(60, narrow), (80, wide)] {
        let finished: Vec<&String> = lines.iter().filter(|l| l.contains(" after ")).collect();
        assert_eq!(finished.len(), 1, "{cols} columns: {lines:#?}");
        assert!(finished[0].contains("completed"), "{finished:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fourteen_jobs_in_a_twelve_row_pane_leave_each_job_once_in_the_scrollback() {
    let e = env_scaled("tty14", Simulator::builder(), 0.05).await;
    let args = [
        "--poll",
        "0.1",
        "image",
        "a lighthouse",
        "-n",
        "14",
        "-m",
        "flux",
    ];
    let (chunks, code) = on_terminal(&e, &args, 80, 12).await;
    assert_eq!(code, 0);
    let mut term = parser(80, 12);
    let updates = replay(&mut term, &chunks, |term| {
        let rows = screen_rows(term, 80);
        if let Err(e) = well_formed(&rows) {
            panic!("{e}: {rows:#?}");
        }
    });
    // At least a frame per job and a line per finished job.
    assert!(updates >= 28, "{updates} synchronized updates");
    let lines = history(&mut term, 80);
    let ids = e.sim.control().job_ids();
    assert_eq!(ids.len(), 14);
    for id in ids {
        let short = &id.to_string()[..8];
        let rows: Vec<&String> = lines.iter().filter(|l| l.contains(short)).collect();
        // Its "completed after" line, and the file named after it (stdout).
        let finished = rows.iter().filter(|l| l.contains(" after ")).count();
        assert_eq!(finished, 1, "{short}: {rows:#?}\nall: {lines:#?}");
        let live = rows
            .iter()
            .filter(|l| !l.contains(" after ") && !l.contains(".png"))
            .count();
        assert_eq!(
            live, 0,
            "{short}: a progress row was left behind: {rows:#?}"
        );
    }
}

/// At a terminal, a run whose worst case passes the threshold waits for a yes: `n` sends
/// nothing, `y` sends it; `--yes`, a cheap run, or stdin that is not a terminal ask nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expensive_run_at_a_terminal_asks_first() {
    let e = env_scaled("confirm", Simulator::builder(), 0.001).await;
    let posts = |e: &support::Env| {
        let c = e.sim.control().counters();
        c.requests_to("POST /generate/video/kling/kling-2.5")
    };
    let video = ["video", "waves", "-m", "kling-2.5", "--no-wait"];
    let (drawn, code) = typing(&e, &video, 100, 24, b"n\n").await;
    let screen = String::from_utf8_lossy(&drawn.concat()).into_owned();
    assert!(screen.contains("may cost up to 200 CU"), "{screen}");
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("not sent, nothing paid"), "{screen}");
    assert_eq!(posts(&e), 0);

    let (drawn, code) = typing(&e, &video, 100, 24, b"y\n").await;
    let screen = String::from_utf8_lossy(&drawn.concat()).into_owned();
    assert_eq!(code, 0, "{screen}");
    assert_eq!(posts(&e), 1);

    let mut yes = video.to_vec();
    yes.push("--yes");
    let (drawn, code) = on_terminal(&e, &yes, 100, 24).await;
    let screen = String::from_utf8_lossy(&drawn.concat()).into_owned();
    assert!(code == 0 && !screen.contains("Send?"), "{screen}");
    assert_eq!(posts(&e), 2);

    // A 3 CU image is under the threshold; a script's stdin is not a terminal.
    let (drawn, code) = on_terminal(&e, &["image", "a fox", "-m", "flux"], 100, 24).await;
    let screen = String::from_utf8_lossy(&drawn.concat()).into_owned();
    assert!(code == 0 && !screen.contains("Send?"), "{screen}");
    let o = support::krea(&e, &video).await;
    assert_eq!(support::code(&o), 0, "{}", support::stderr(&o));
    assert_eq!(posts(&e), 3);
}

/// Two videos on a long model id at `cols` columns, about ten seconds each: on every screen
/// each live row shows its whole state word and its time, and the summary counts the rows'
/// states as the rows show them; its ETA counts down between state changes.
async fn two_videos_stay_consistent(cols: u16) {
    let typical = krea::models::resolve("veo-3.1-fast")
        .ok()
        .and_then(|m| m.typical_seconds)
        .unwrap_or(60.0);
    let e = env_scaled("tty-video", Simulator::builder(), 10.0 / typical).await;
    let args = ["--poll", "0.5", "video", "waves", "-n", "2", "--yes"];
    let (chunks, code) = on_terminal(&e, &args, cols, 30).await;
    assert_eq!(code, 0, "krea video exits 0");
    let mut term = parser(cols, 30);
    let mut etas: Vec<String> = Vec::new();
    let mut frames_with_rows = 0;
    replay(&mut term, &chunks, |term| {
        let rows = screen_rows(term, cols);
        if let Err(e) = well_formed(&rows) {
            panic!("{e} at {cols} columns: {rows:#?}");
        }
        let live: Vec<&String> = rows
            .iter()
            .filter(|r| r.len() > 11 && r[2..10].chars().all(|c| c.is_ascii_hexdigit()))
            .filter(|r| !r.contains(" after "))
            .collect();
        // Each live row: its short id, the model (cut first if need be), then a whole state
        // word and the time; counted by state.
        let mut states: std::collections::BTreeMap<String, usize> = Default::default();
        for row in &live {
            let words: Vec<&str> = row.split_whitespace().collect();
            let time = words
                .iter()
                .position(|w| {
                    w.trim_end_matches(',').ends_with('s')
                        && w.starts_with(|c: char| c.is_ascii_digit())
                })
                .unwrap_or_else(|| panic!("the time at {cols} columns: {row:?}"));
            let state = words[time - 1];
            assert!(
                [
                    "queued",
                    "scheduled",
                    "processing",
                    "sampling",
                    "intermediate-complete"
                ]
                .contains(&state),
                "a whole state word before the time at {cols} columns: {row:?}"
            );
            *states.entry(state.to_string()).or_default() += 1;
        }
        let Some(summary) = rows.iter().find(|r| r.contains(" done")) else {
            return;
        };
        if live.len() == 2 {
            frames_with_rows += 1;
            let said: std::collections::BTreeMap<String, usize> = summary
                .trim()
                .split(", ")
                .skip(1)
                .filter(|p| !p.starts_with("ETA"))
                .filter_map(|p| {
                    let (n, word) = p.split_once(' ')?;
                    Some((word.to_string(), n.parse().ok()?))
                })
                .collect();
            assert_eq!(
                said, states,
                "the summary agrees with the rows at {cols} columns: {rows:#?}"
            );
            if let Some(eta) = summary.split("ETA ~").nth(1)
                && etas.last().map(String::as_str) != Some(eta.trim())
            {
                etas.push(eta.trim().to_string());
            }
        }
    });
    assert!(
        frames_with_rows >= 5,
        "{frames_with_rows} frames at {cols} columns"
    );
    assert!(
        etas.len() >= 4,
        "the ETA counts down at {cols} columns: {etas:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn video_rows_and_the_summary_agree_every_second_at_60_and_80_columns() {
    tokio::join!(
        two_videos_stay_consistent(60),
        two_videos_stay_consistent(80)
    );
}

/// A batch's rows name each line by its number and prompt, aligned, cut to the pane: at 60
/// columns no line of the scrollback wraps, and each line ends once, as `N prompt...`.
#[tokio::test(flavor = "multi_thread")]
async fn batch_rows_show_numbered_prompts_cut_to_the_pane() {
    let e = env_scaled("tty-batch", Simulator::builder(), 0.05).await;
    let prompts: Vec<String> = (1..=11)
        .map(|i| format!("prompt number {i}: a lighthouse on a cliff at dusk, oil on canvas, wide"))
        .collect();
    std::fs::write(e.dir.join("p.txt"), prompts.join("\n")).expect("write");
    let args = ["--poll", "0.1", "batch", "p.txt", "-m", "flux", "-o", "out"];
    let (chunks, code) = on_terminal(&e, &args, 60, 30).await;
    assert_eq!(code, 0);
    let mut term = parser(60, 30);
    replay(&mut term, &chunks, |_| {});
    let lines = history(&mut term, 60);
    for i in 1..=11 {
        let ended: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(" after ") && l.contains(&format!(" {i:>2} prompt number {i}")))
            .collect();
        assert_eq!(ended.len(), 1, "line {i}: {lines:#?}");
        assert!(ended[0].trim_end().ends_with('s'), "{ended:?}");
    }
    // A wrapped line would leave its end on a row of its own.
    assert!(
        !lines
            .iter()
            .any(|l| l.trim_start().starts_with("oil") || l.trim_start().starts_with("wide")),
        "{lines:#?}"
    );
}

/// Between looks at a job its row says how old its state is: with a 4-second poll, rows say
/// `seen 3s ago` (or more) before the next look, and the state word stays whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_says_how_old_its_state_is_between_looks() {
    let typical = krea::models::resolve("veo-3.1-fast")
        .ok()
        .and_then(|m| m.typical_seconds)
        .unwrap_or(60.0);
    let e = env_scaled("tty-seen", Simulator::builder(), 12.0 / typical).await;
    let args = ["--poll", "4", "video", "waves", "--yes"];
    let (chunks, code) = on_terminal(&e, &args, 80, 20).await;
    assert_eq!(code, 0, "krea video exits 0");
    let mut term = parser(80, 20);
    let mut said = Vec::new();
    replay(&mut term, &chunks, |term| {
        for row in screen_rows(term, 80) {
            if let Some(at) = row.find(", seen ") {
                assert!(
                    ["queued", "scheduled", "processing", "sampling"]
                        .iter()
                        .any(|w| row.contains(&format!(" {w} "))),
                    "a whole state word: {row:?}"
                );
                said.push(row[at..].trim().to_string());
            }
        }
    });
    assert!(!said.is_empty(), "no row said how old its state was");
}
