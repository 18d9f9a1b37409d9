//! A batch of 50 prompts: every request checked first and priced, a window of pending jobs
//! that adapts to the account's concurrency cap, one wait loop for all, each file downloaded as
//! its job completes, a manifest that lets an interrupted run resume without paying twice.
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
    let mut batch = s.krea.batch().dir(&out).resume(true);
    for p in &prompts {
        batch = batch.item(p.clone(), s.krea.image("nano banana 2").prompt(p.clone()));
    }
    let (estimate, unpriced) = batch.estimate()?;
    println!(
        "{} prompts, about {estimate} ({unpriced} unpriced)",
        prompts.len()
    );
    let report = batch.run(|_| {}).await?;
    for item in &report.items {
        match item.files.first() {
            Some(file) => println!("{:30} {}", item.label, file.display()),
            None => println!(
                "{:30} {:?}: {}",
                item.label,
                item.status,
                item.error.as_deref().unwrap_or("")
            ),
        }
    }
    println!("{} of {} completed", report.completed(), report.items.len());
    Ok(())
}
