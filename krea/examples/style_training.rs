//! Train a style (LoRA) from a few image URLs, then generate with it.
//!
//! ```text
//! cargo run -p krea --example style_training -- --sim [OUT_DIR]
//! ```
#![allow(clippy::print_stdout)]

mod common;

use krea::StyleTraining;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = common::session().await?;
    let training = StyleTraining::new(
        "ink sketches",
        (1..=4).map(|i| format!("https://images.example.com/sketch-{i}.png")),
    )
    .trigger_word("inksketch")
    .max_train_steps(500);
    let job = s.krea.styles().train(&training).await?;
    println!("training job {}", job.id());
    let trained = job.wait().await?;
    let style_id = trained
        .style_id()
        .ok_or("the training finished without a style id")?
        .to_string();
    println!("style {style_id} is ready");
    let done = s
        .krea
        .image("flux")
        .prompt("inksketch of a harbour")
        .style(&style_id, 1.0)
        .submit()
        .await?
        .wait()
        .await?;
    for path in done.download_to(common::out_dir()).await? {
        println!(
            "{} with style {style_id} -> {}",
            done.model_id().unwrap_or("an unknown model"),
            path.display()
        );
    }
    Ok(())
}
