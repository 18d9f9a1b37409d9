//! A batch of 50 prompts: the limiter keeps as many jobs in flight as the account allows,
//! `wait_all` follows them with one `GET /jobs` page per round, and each file is downloaded as
//! its job completes.
//!
//! ```text
//! cargo run -p krea --example batch -- --sim [OUT_DIR]
//! ```
#![allow(clippy::print_stdout)]

mod common;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = common::session().await?;
    let subjects = [
        "lighthouse",
        "fox",
        "teapot",
        "glacier",
        "tram",
        "orchid",
        "robot",
        "harbour",
        "owl",
        "canyon",
    ];
    let styles = [
        "at dawn",
        "in the rain",
        "as a woodcut",
        "in neon light",
        "from above",
    ];
    let prompts: Vec<String> = subjects
        .iter()
        .flat_map(|s| styles.iter().map(move |st| format!("a {s} {st}")))
        .collect();
    let out = common::out_dir();
    let mut handles = Vec::new();
    for p in &prompts {
        handles.push(
            s.krea
                .image("nano banana 2")
                .prompt(p.clone())
                .output_dir(&out)
                .submit()
                .await?,
        );
    }
    println!("submitted {} jobs", handles.len());
    let results = s.krea.jobs().wait_all(&handles).await;
    let (mut ok, mut failed) = (0, 0);
    for (prompt, result) in prompts.iter().zip(results) {
        match result {
            Ok(done) => {
                let files = done.download().await?;
                ok += files.len();
                println!("{prompt:30} {}", files[0].display());
            }
            Err(e) => {
                failed += 1;
                println!("{prompt:30} {e}");
            }
        }
    }
    println!("{ok} files, {failed} failed");
    Ok(())
}
