//! Upload a local image as an asset, then edit it with Flux Kontext.
//!
//! ```text
//! cargo run -p krea --example upload_image_to_image -- --sim [OUT_DIR]
//! ```
#![allow(clippy::print_stdout)]

mod common;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = common::session().await?;
    let out = common::out_dir();
    std::fs::create_dir_all(&out)?;
    // A stand-in for your own photo: a small PNG.
    let input = out.join("input.png");
    std::fs::write(&input, krea_sim::render_png(512, 512, 42))?;
    let asset = s
        .krea
        .assets()
        .upload(&input, Some("example input"))
        .await?;
    println!("uploaded {} as asset {}", input.display(), asset.id);
    let done = s
        .krea
        .image("bfl/flux-1-kontext-dev")
        .prompt("turn the scene into a snowy night")
        .image_url(asset.image_url.clone())
        .submit()
        .await?
        .wait()
        .await?;
    for path in done.download_to(&out).await? {
        println!(
            "{} -> {}",
            done.model_id().unwrap_or("an unknown model"),
            path.display()
        );
    }
    Ok(())
}
