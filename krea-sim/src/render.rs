//! Result files, rendered deterministically from the request (same request, same bytes) and
//! labelled as simulated: real PNG, JPEG or WebP images (as the request's `output_format`
//! asks), and short playable MP4 videos ([`crate::video`]).
//!
//! Images are the requested `width` x `height`; else `aspect_ratio` (and `resolution` 1K/2K/4K)
//! around a 1024 px long side; else 1024 x 1024. Sides are capped at 4096 px to keep memory
//! bounded. With `SimConfig::video_bytes` set, videos are instead a placeholder of that size
//! (an MP4 header and seeded filler bytes, streamed: for download tests and benchmarks).

use serde_json::Value;

use crate::rng;

/// Largest side rendered, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// A file format served as a placeholder payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `video/mp4`
    Mp4,
}

impl Placeholder {
    fn header(self) -> &'static [u8] {
        match self {
            Placeholder::Mp4 => b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41",
        }
    }
}

/// An image encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

/// What a result file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// An image.
    Image {
        format: ImageFormat,
        width: u32,
        height: u32,
    },
    /// A short MP4 video.
    Video { width: u32, height: u32 },
    /// A placeholder payload of this many bytes.
    Placeholder { format: Placeholder, bytes: u64 },
}

impl Output {
    /// The `Content-Type` it is served with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Output::Image {
                format: ImageFormat::Png,
                ..
            } => "image/png",
            Output::Image {
                format: ImageFormat::Jpeg,
                ..
            } => "image/jpeg",
            Output::Image {
                format: ImageFormat::Webp,
                ..
            } => "image/webp",
            Output::Video { .. }
            | Output::Placeholder {
                format: Placeholder::Mp4,
                ..
            } => "video/mp4",
        }
    }

    /// The file's bytes (placeholders are streamed instead: `None`). Images and videos are
    /// CPU work: call this off the async workers.
    pub fn render(&self, fingerprint: u64, label: &[String]) -> Option<Vec<u8>> {
        match *self {
            Output::Image {
                format,
                width,
                height,
            } => Some(image_labeled(format, width, height, fingerprint, label)),
            Output::Video { width, height } => crate::video::mp4(width, height, fingerprint, label)
                .map_err(|e| tracing::error!("rendering a video: {e}"))
                .ok(),
            Output::Placeholder { .. } => None,
        }
    }

    /// The file extension in its URL.
    pub fn extension(&self) -> &'static str {
        match self {
            Output::Image {
                format: ImageFormat::Png,
                ..
            } => "png",
            Output::Image {
                format: ImageFormat::Jpeg,
                ..
            } => "jpg",
            Output::Image {
                format: ImageFormat::Webp,
                ..
            } => "webp",
            Output::Video { .. }
            | Output::Placeholder {
                format: Placeholder::Mp4,
                ..
            } => "mp4",
        }
    }
}

fn side(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_f64)
        .filter(|f| *f >= 1.0)
        .map(|f| (f as u32).min(MAX_SIDE))
}

/// The pixel size an image request asks for.
pub fn image_size(request: &Value) -> (u32, u32) {
    if let (Some(w), Some(h)) = (side(request.get("width")), side(request.get("height"))) {
        return (w, h);
    }
    let long = match request.get("resolution").and_then(Value::as_str) {
        Some("2K") => 2048.0,
        Some("4K") => 4096.0,
        _ => 1024.0,
    };
    let ratio = request
        .get("aspect_ratio")
        .and_then(Value::as_str)
        .and_then(|r| r.split_once(':'))
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| *a > 0.0 && *b > 0.0);
    match ratio {
        Some((a, b)) if a >= b => (long as u32, ((long * b / a).round() as u32).max(1)),
        Some((a, b)) => (((long * a / b).round() as u32).max(1), long as u32),
        None => match (side(request.get("width")), side(request.get("height"))) {
            (Some(w), None) => (w, w),
            (None, Some(h)) => (h, h),
            _ => (1024, 1024),
        },
    }
}

/// Renders a PNG of `width` x `height` whose pixels depend only on `fingerprint`.
pub fn png(width: u32, height: u32, fingerprint: u64) -> Vec<u8> {
    png_labeled(width, height, fingerprint, &[])
}

/// Writes `lines` (ASCII; others shown as `?`) in white on a darkened band at the bottom of an
/// RGB image, in an 8x8 bitmap font scaled to the image, each line cut to fit the width.
pub(crate) fn draw_label(data: &mut [u8], width: u32, height: u32, lines: &[String]) {
    if lines.is_empty() || width < 16 || height < 16 {
        return;
    }
    let scale = (width.min(height) / 320).clamp(1, 6);
    let glyph = 8 * scale;
    let margin = glyph / 2;
    let line_height = glyph + 2 * scale;
    let band = (line_height * lines.len() as u32 + 2 * margin).min(height);
    let columns = ((width - 2 * margin.min(width / 4)) / glyph) as usize;
    let top = height - band;
    for px in &mut data[top as usize * width as usize * 3..] {
        *px /= 4;
    }
    for (row, line) in lines.iter().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let shown: Vec<char> = if chars.len() > columns {
            chars[..columns.saturating_sub(3)]
                .iter()
                .copied()
                .chain("...".chars())
                .collect()
        } else {
            chars
        };
        let y0 = top + margin + row as u32 * line_height;
        for (col, c) in shown.into_iter().enumerate() {
            let c = if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            };
            let bits = font8x8::legacy::BASIC_LEGACY[c as usize];
            let x0 = margin + col as u32 * glyph;
            for (gy, bits_row) in bits.iter().enumerate() {
                for gx in 0..8u32 {
                    if bits_row & (1 << gx) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (x, y) = (x0 + gx * scale + dx, y0 + gy as u32 * scale + dy);
                            if x < width && y < height {
                                let i = (y as usize * width as usize + x as usize) * 3;
                                data[i..i + 3].copy_from_slice(&[255, 255, 255]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The RGB pixels of a labelled picture; `phase` moves its stripes (video frames).
pub fn picture(width: u32, height: u32, fingerprint: u64, lines: &[String], phase: u32) -> Vec<u8> {
    let width = width.clamp(1, MAX_SIDE);
    let height = height.clamp(1, MAX_SIDE);
    // Two colours and a stripe frequency from the fingerprint: a diagonal gradient with bands.
    let c = |i: u64| (rng::draw(fingerprint, 0xc010, i) & 0xff) as i32;
    let (a, b) = ([c(0), c(1), c(2)], [c(3), c(4), c(5)]);
    let bands = 4 + (rng::draw(fingerprint, 0xba4d, 0) % 12) as u32;
    let span = (width + height).max(1);
    // Every pixel on a diagonal (same x + y) has the same colour, plus the band's lift: one
    // row of colours per lift, indexed by x + y, and each image row copied from them in runs
    // of one band (a handful of copies per row: fast even in an unoptimized build).
    let diagonal = |lift: i32| -> Vec<u8> {
        (0..width + height)
            .flat_map(|d| {
                let t = (d * 255 / span) as i32;
                (0..3).map(move |ch| (a[ch] + (b[ch] - a[ch]) * t / 255 + lift).clamp(0, 255) as u8)
            })
            .collect()
    };
    let (plain, lifted) = (diagonal(0), diagonal(24));
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        let mut x = 0;
        while x < width {
            let u = x + 2 * y + phase;
            let k = u * bands / span;
            // The first u past this band: the smallest with u * bands / span > k.
            let next = ((k + 1) * span).div_ceil(bands);
            let end = (x + (next - u)).min(width);
            let source = if k.is_multiple_of(2) { &plain } else { &lifted };
            data.extend_from_slice(&source[(x + y) as usize * 3..(end + y) as usize * 3]);
            x = end;
        }
    }
    draw_label(&mut data, width, height, lines);
    data
}

/// As [`png`], with `lines` written on it (the simulator labels what it renders: the word
/// "simulated", the model and the prompt, so nobody mistakes it for a real result).
pub fn png_labeled(width: u32, height: u32, fingerprint: u64, lines: &[String]) -> Vec<u8> {
    image_labeled(ImageFormat::Png, width, height, fingerprint, lines)
}

/// The labelled picture in `format`.
pub fn image_labeled(
    format: ImageFormat,
    width: u32,
    height: u32,
    fingerprint: u64,
    lines: &[String],
) -> Vec<u8> {
    let (width, height) = (width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE));
    let data = picture(width, height, fingerprint, lines, 0);
    encode(format, width, height, data)
}

/// RGB pixels (`width` x `height`, as many bytes as that takes) encoded in `format`.
pub(crate) fn encode(format: ImageFormat, width: u32, height: u32, data: Vec<u8>) -> Vec<u8> {
    let encoding = match format {
        ImageFormat::Png => {
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Fast);
            // Writing to a Vec cannot fail; the header and data sizes agree by construction.
            if let Ok(mut writer) = encoder.write_header() {
                let _ = writer.write_image_data(&data);
            }
            return out;
        }
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Webp => image::ImageFormat::WebP,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    // The buffer matches the size by construction, and writing to memory does not fail.
    if let Some(rgb) = image::RgbImage::from_raw(width, height, data) {
        let _ = rgb.write_to(&mut out, encoding);
    }
    out.into_inner()
}

/// Byte `offset..offset+len` of the placeholder for `fingerprint` (`total` bytes long), so
/// large placeholders stream without being held in memory.
pub fn placeholder_chunk(
    format: Placeholder,
    fingerprint: u64,
    total: u64,
    offset: u64,
    len: usize,
) -> Vec<u8> {
    let header = format.header();
    let mut out = Vec::with_capacity(len);
    let end = (offset + len as u64).min(total);
    let mut i = offset;
    while i < end {
        if (i as usize) < header.len() {
            out.push(header[i as usize]);
            i += 1;
            continue;
        }
        // Eight filler bytes per draw.
        let word = rng::draw(fingerprint, 0x3d4, i / 8).to_le_bytes();
        let start = (i % 8) as usize;
        let take = ((8 - start) as u64).min(end - i) as usize;
        out.extend_from_slice(&word[start..start + take]);
        i += take as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The picture pixel by pixel, as its definition reads.
    fn picture_by_pixel(width: u32, height: u32, fingerprint: u64, phase: u32) -> Vec<u8> {
        let c = |i: u64| (rng::draw(fingerprint, 0xc010, i) & 0xff) as i32;
        let (a, b) = ([c(0), c(1), c(2)], [c(3), c(4), c(5)]);
        let bands = 4 + (rng::draw(fingerprint, 0xba4d, 0) % 12) as u32;
        let span = width + height;
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                let t = ((x + y) * 255 / span) as i32;
                let lift = if ((x + 2 * y + phase) * bands / span).is_multiple_of(2) {
                    0
                } else {
                    24
                };
                for ch in 0..3 {
                    data.push((a[ch] + (b[ch] - a[ch]) * t / 255 + lift).clamp(0, 255) as u8);
                }
            }
        }
        data
    }

    #[test]
    fn the_picture_copied_in_runs_is_the_picture_pixel_by_pixel() {
        for (w, h, fp, phase) in [
            (1, 1, 1, 0),
            (7, 3, 2, 5),
            (64, 32, 3, 0),
            (333, 517, 4, 41),
            (1024, 768, 5, 9),
        ] {
            assert!(
                picture(w, h, fp, &[], phase) == picture_by_pixel(w, h, fp, phase),
                "{w}x{h} fingerprint {fp} phase {phase}"
            );
        }
    }

    #[test]
    fn sizes_come_from_width_height_or_aspect_ratio() {
        assert_eq!(
            image_size(&json!({"width": 640, "height": 480})),
            (640, 480)
        );
        assert_eq!(image_size(&json!({"aspect_ratio": "16:9"})), (1024, 576));
        assert_eq!(
            image_size(&json!({"aspect_ratio": "9:16", "resolution": "2K"})),
            (1152, 2048)
        );
        assert_eq!(image_size(&json!({"prompt": "x"})), (1024, 1024));
        assert_eq!(
            image_size(&json!({"width": 100000, "height": 10})),
            (MAX_SIDE, 10)
        );
    }

    #[test]
    fn pngs_are_real_deterministic_and_the_right_size() {
        let a = png(64, 32, 42);
        assert_eq!(a, png(64, 32, 42));
        assert_ne!(a, png(64, 32, 43));
        assert_eq!(krea_gen::media::image_dimensions(&a), Some((64, 32)));
        let decoder = png::Decoder::new(std::io::Cursor::new(&a));
        let reader = decoder.read_info().expect("a decodable PNG");
        assert_eq!((reader.info().width, reader.info().height), (64, 32));
    }

    /// The RGB pixels of a PNG.
    fn pixels(bytes: &[u8]) -> Vec<u8> {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a decodable PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        buf.truncate(info.buffer_size());
        buf
    }

    #[test]
    fn rendered_results_say_they_are_simulated() {
        let label = ["SIMULATED by krea-sim".to_string(), "bfl/flux-1-dev".into()];
        let (plain, labeled) = (png(640, 480, 7), png_labeled(640, 480, 7, &label));
        let white = |px: &[u8]| px.chunks(3).filter(|p| *p == [255, 255, 255]).count();
        let (plain, labeled) = (pixels(&plain), pixels(&labeled));
        // The text is white on a darkened band along the bottom; the top is untouched.
        let band = 640 * 3 * 400;
        assert_eq!(plain[..band], labeled[..band]);
        assert!(white(&labeled[band..]) > 500, "{}", white(&labeled[band..]));
        assert_eq!(white(&plain), 0);
    }

    #[test]
    fn jpeg_and_webp_outputs_are_real_images_of_the_asked_size() {
        let label = ["SIMULATED by krea-sim".to_string()];
        for (format, expected) in [
            (ImageFormat::Jpeg, image::ImageFormat::Jpeg),
            (ImageFormat::Webp, image::ImageFormat::WebP),
        ] {
            let bytes = image_labeled(format, 300, 200, 5, &label);
            assert_eq!(image::guess_format(&bytes).ok(), Some(expected));
            let decoded = image::load_from_memory(&bytes).expect("decodes");
            assert_eq!((decoded.width(), decoded.height()), (300, 200));
        }
    }

    #[test]
    fn placeholder_chunks_concatenate_to_the_whole() {
        let chunk = |offset, len| placeholder_chunk(Placeholder::Mp4, 9, 100, offset, len);
        let whole = chunk(0, 100);
        assert_eq!(whole.len(), 100);
        assert_eq!(&whole[4..8], b"ftyp");
        let parts = [chunk(0, 13), chunk(13, 50), chunk(63, 64)].concat();
        assert_eq!(parts, whole);
    }
}
