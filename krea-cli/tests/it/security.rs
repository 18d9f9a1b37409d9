//! Security: the token stays secret at every verbosity, never reaches another origin, and bad
//! URLs and uploads are refused before anything is sent.

use crate::support;

use krea_sim::{Fault, Simulator};
use support::{code, command, env, files_in, krea, stderr, stdout};

const SENTINEL: &str = "sentinel-token-7f3a9c1e5b";

async fn run(e: &support::Env, token: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = command(e);
    cmd.env("KREA_API_TOKEN", token)
        .args(["--poll", "0.02"])
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_never_appears_in_output_or_the_most_verbose_logs() {
    let sim = Simulator::builder()
        .token(SENTINEL)
        .seed(3)
        .fault("GET /jobs/{id}", Fault::Status(503), 0.3)
        .fault(
            "POST /generate/image/google/imagen-4",
            Fault::ResetAfterBody,
            1.0,
        );
    let e = env("token", sim).await;
    let runs = [
        run(
            &e,
            SENTINEL,
            &["-vvv", "image", "a lighthouse", "-o", "out"],
        )
        .await,
        run(&e, SENTINEL, &["-vvv", "--json", "jobs", "list"]).await,
        run(
            &e,
            SENTINEL,
            &[
                "-vvv",
                "jobs",
                "get",
                "00000000-0000-0000-0000-000000000000",
            ],
        )
        .await,
        run(
            &e,
            SENTINEL,
            // A short grace: the lost answer is settled at the most verbose level too.
            &[
                "-vvv",
                "--settle-grace",
                "2",
                "image",
                "a cat",
                "-m",
                "google/imagen-4",
            ],
        )
        .await,
        run(&e, SENTINEL, &["-vvv", "--help"]).await,
        run(
            &e,
            "wrong-but-secret-token-123",
            &["-vvv", "image", "a cat"],
        )
        .await,
    ];
    assert_eq!(code(&runs[0]), 0, "{}", stderr(&runs[0]));
    assert!(
        stderr(&runs[0]).contains("DEBUG") || stderr(&runs[0]).contains("TRACE"),
        "verbose logs were on"
    );
    // The reset after sending left the outcome unknown; the run settled it (adopted the job).
    assert_eq!(code(&runs[3]), 0, "{}", stderr(&runs[3]));
    assert!(stderr(&runs[3]).contains("Adopted"), "{}", stderr(&runs[3]));
    assert_eq!(code(&runs[5]), 3, "a refused token: {}", stderr(&runs[5]));
    for (i, o) in runs.iter().enumerate() {
        for secret in [SENTINEL, "wrong-but-secret-token-123"] {
            assert!(
                !stdout(o).contains(secret),
                "run {i} printed the token on stdout"
            );
            assert!(
                !stderr(o).contains(secret),
                "run {i} printed the token on stderr"
            );
        }
    }
    let journal =
        std::fs::read_to_string(e.dir.join("state/krea/journal.jsonl")).unwrap_or_default();
    assert!(
        !journal.is_empty() && !journal.contains(SENTINEL),
        "the journal holds no token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_origin_never_sees_the_token_even_after_a_redirect() {
    let e = env(
        "redirect",
        // Every poll, by listing or one by one, is sent to the other origin.
        Simulator::builder().fault("GET /jobs*", Fault::RedirectToOtherHost, 1.0),
    )
    .await;
    let o = krea(&e, &["image", "a lighthouse", "-n", "3"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let c = e.sim.control().counters();
    // Three downloads, plus the polls the redirect sent to the file origin.
    assert!(
        c.file_requests > 3,
        "the redirected polls reached the file origin: {c:?}"
    );
    assert_eq!(c.file_authorization_headers, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_is_refused() {
    let e = env("http", Simulator::builder()).await;
    let mut cmd = command(&e);
    cmd.env("KREA_BASE_URL", "http://api.krea.example")
        .args(["image", "a cat"]);
    let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("refusing the http:// base URL"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_result_urls_only_ever_write_inside_the_output_dir() {
    let e = env(
        "hostile",
        Simulator::builder().fault("POST /generate/*", Fault::HostileUrls, 1.0),
    )
    .await;
    std::fs::create_dir_all(e.dir.join("work/out")).expect("dirs");
    let mut cmd = command(&e);
    cmd.current_dir(e.dir.join("work")).args([
        "--poll",
        "0.02",
        "image",
        "a lighthouse",
        "-n",
        "8",
        "-o",
        "out",
    ]);
    let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    // Some hostile URLs resolve to paths the file origin does not serve: those jobs fail to
    // download; the rest are written under our own names.
    let written = files_in(&e.dir.join("work/out"), "png");
    assert!(!written.is_empty(), "{}", stderr(&o));
    for f in &written {
        assert!(
            f.file_name()
                .expect("name")
                .to_string_lossy()
                .starts_with("nano-banana-2-"),
            "{f:?}"
        );
    }
    let mut stray = Vec::new();
    let mut stack = vec![e.dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("dir").filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("escape")
                || (p.extension().is_some_and(|x| x == "png")
                    && !p.starts_with(e.dir.join("work/out")))
            {
                stray.push(p);
            }
        }
    }
    assert!(stray.is_empty(), "files outside the output dir: {stray:?}");
    assert!(!std::path::Path::new("/etc/escape.png").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_urls_are_checked_before_sending() {
    let e = env("webhook", Simulator::builder()).await;
    for bad in [
        "http://hooks.example.com/krea",
        "ftp://127.0.0.1/hook",
        "not-a-url",
    ] {
        let o = krea(&e, &["image", "a cat", "--webhook", bad]).await;
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("webhook"), "{}", stderr(&o));
    }
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_unsupported_uploads_are_refused_before_sending() {
    let e = env("uploads", Simulator::builder()).await;
    let big = e.dir.join("big.png");
    let mut header = krea_sim::render_png(8, 8, 1);
    header.truncate(64);
    std::fs::write(&big, &header).expect("write");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .expect("open")
        .set_len(76 * 1024 * 1024)
        .expect("grow");
    std::fs::write(e.dir.join("doc.pdf"), b"%PDF-1.7 hello").expect("write");
    for args in [
        vec!["image", "a cat", "--image", "big.png"],
        vec!["image", "a cat", "--image", "doc.pdf"],
        vec!["assets", "upload", "big.png"],
        vec!["assets", "upload", "doc.pdf"],
    ] {
        let o = krea(&e, &args).await;
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("75 MB") || stderr(&o).contains("not a type Krea accepts"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}
