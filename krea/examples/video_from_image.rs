//! A video from a start image (a URL; upload local files with `krea.assets()` first), with
//! progress as it runs.
//!
//! ```text
//! cargo run -p krea --example video_from_image -- --sim [OUT_DIR]
//! ```
#![allow(clippy::print_stdout)]

mod common;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = common::session().await?;
    let job = s
        .krea
        .video("kling/kling-2.1")
        .prompt("the waves roll in as the sun sets")
        .image_url("https://images.example.com/beach.png")
        .duration(5)
        .submit()
        .await?;
    let done = job
        .wait_with(|u| eprintln!("  {} after {:.1} s", u.status, u.elapsed.as_secs_f64()))
        .await?;
    for path in done.download_to(common::out_dir()).await? {
        println!(
            "{} -> {}",
            done.model_id().unwrap_or("an unknown model"),
            path.display()
        );
    }
    Ok(())
}
