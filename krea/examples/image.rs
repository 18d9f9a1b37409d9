//! One image: submit, wait, download.
//!
//! ```text
//! KREA_API_TOKEN=... cargo run -p krea --example image [OUT_DIR]
//! cargo run -p krea --example image -- --sim [OUT_DIR]
//! ```
#![allow(clippy::print_stdout)]

mod common;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = common::session().await?;
    let job = s
        .krea
        .image("flux")
        .prompt("a lighthouse at dusk, oil painting")
        .width(1024)
        .height(768)
        .submit()
        .await?;
    println!(
        "submitted job {} to {}",
        job.id(),
        job.model().map_or("?", |m| m.id.as_str())
    );
    let done = job.wait().await?;
    for path in done.download_to(common::out_dir()).await? {
        println!(
            "{} -> {}",
            done.model_id().unwrap_or("an unknown model"),
            path.display()
        );
    }
    Ok(())
}
