//! A small look at a generated image for the assistant: downscaled and re-encoded as JPEG,
//! under 1 MB of base64, so it can see what it made without its context filling up. Decoding is
//! bounded (a hostile file cannot make it allocate without limit) and runs off the async
//! threads.

use std::io::Cursor;
use std::path::Path;

use base64::Engine;
use image::{ImageFormat, ImageReader, Limits};

/// The most base64 a preview may take.
pub const MAX_BASE64: usize = 1_000_000;

/// Longest sides tried, largest first, until the preview fits.
const SIDES: [u32; 3] = [512, 384, 256];

/// `(base64 JPEG, "image/jpeg")` for the image at `path`, or `None` when it is not an image
/// this build decodes (PNG, JPEG, WebP).
pub async fn of(path: &Path) -> Option<(String, &'static str)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || make(&path))
        .await
        .ok()
        .flatten()
}

fn make(path: &Path) -> Option<(String, &'static str)> {
    let mut reader = ImageReader::open(path).ok()?.with_guessed_format().ok()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().ok()?;
    for side in SIDES {
        let small = image.thumbnail(side, side).into_rgb8();
        let mut jpeg = Cursor::new(Vec::new());
        small.write_to(&mut jpeg, ImageFormat::Jpeg).ok()?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(jpeg.get_ref());
        if encoded.len() < MAX_BASE64 {
            return Some((encoded, "image/jpeg"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_png_becomes_a_small_jpeg_and_other_files_none() {
        let dir = std::env::temp_dir().join(format!("krea-preview-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("as set up");
        let png = dir.join("big.png");
        let noisy = image::RgbImage::from_fn(2048, 1536, |x, y| {
            let v = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) as u8;
            image::Rgb([v, v.wrapping_mul(3), v.wrapping_add(y as u8)])
        });
        noisy.save(&png).expect("as set up");
        let (b64, mime) = make(&png).expect("a preview");
        assert_eq!(mime, "image/jpeg");
        assert!(b64.len() < MAX_BASE64, "{} bytes", b64.len());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .expect("as set up");
        let back = image::load_from_memory(&bytes).expect("as set up");
        assert!(back.width() <= 512 && back.height() <= 512);
        assert_eq!(back.width(), 512, "the longer side is kept at 512");
        let text = dir.join("notes.txt");
        std::fs::write(&text, "not an image").expect("as set up");
        assert!(make(&text).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
