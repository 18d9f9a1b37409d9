//! What an enhance job upscales: its `image_url`, where the simulator can reach it without the
//! network (an asset uploaded here, a result file of one of its jobs, or a `data:` URL). The
//! result is that picture scaled to the requested size (nearest neighbour, quick in any
//! build) and labelled as a simulated upscale. An input out of reach gets a stand-in picture,
//! and its label says so.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use uuid::Uuid;

use crate::render::{self, MAX_SIDE, Output};
use crate::state::Sim;

/// Largest input decoded, in pixels per side: beyond it the stand-in picture is used.
const MAX_INPUT_SIDE: u32 = 8192;

/// An enhance job's input, as captured when the job was created.
#[derive(Debug, Clone)]
pub enum Input {
    /// Encoded image bytes: an asset of this simulator, or a `data:` URL's payload.
    Encoded(Bytes),
    /// A result file of another job here, rendered when needed.
    Result {
        output: Output,
        fingerprint: u64,
        label: Vec<String>,
    },
}

/// The input `request["image_url"]` names, if the simulator can reach it.
pub fn resolve(sim: &Sim, request: &Value) -> Option<Input> {
    let url = request.get("image_url")?.as_str()?;
    if let Some(data) = url.strip_prefix("data:") {
        let (meta, payload) = data.split_once(',')?;
        if !meta.ends_with(";base64") {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .ok()?;
        return Some(Input::Encoded(bytes.into()));
    }
    let rest = url.strip_prefix(sim.files_url.as_str())?;
    let mut parts = rest.trim_start_matches('/').splitn(3, '/');
    let (area, id, file) = (parts.next()?, parts.next()?, parts.next()?);
    let id = Uuid::parse_str(id).ok()?;
    let st = sim.lock();
    match area {
        "assets" => st
            .assets
            .get(&id)
            .filter(|a| a.file_name == file)
            .map(|a| Input::Encoded(a.bytes.clone())),
        "files" => {
            let job = st.jobs.get(&id)?;
            let index: usize = file.split('.').next()?.parse().ok()?;
            let output = *job.outputs.get(index)?;
            matches!(output, Output::Image { .. }).then(|| Input::Result {
                output,
                fingerprint: job.fingerprint ^ index as u64,
                label: job.label(),
            })
        }
        _ => None,
    }
}

/// The upscaled file: `input` scaled to `output`'s size, labelled, in `output`'s format.
/// `None` when the input does not decode (the caller renders the stand-in instead). CPU work:
/// call it off the async workers.
pub fn render(input: &Input, output: Output, label: &[String]) -> Option<Vec<u8>> {
    let Output::Image {
        format,
        width,
        height,
    } = output
    else {
        return None;
    };
    let encoded = match input {
        Input::Encoded(bytes) => bytes.to_vec(),
        Input::Result {
            output,
            fingerprint,
            label,
        } => output.render(*fingerprint, label)?,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(encoded))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    reader.limits(limits);
    let source = reader.decode().ok()?.to_rgb8();
    let (width, height) = (width.clamp(1, MAX_SIDE), height.clamp(1, MAX_SIDE));
    let mut data = nearest(&source, width, height);
    render::draw_label(&mut data, width, height, label);
    Some(render::encode(format, width, height, data))
}

/// `source` scaled to `width` x `height` by nearest neighbour: one row built per source row
/// used, copied for each output row that maps to it.
fn nearest(source: &image::RgbImage, width: u32, height: u32) -> Vec<u8> {
    let (sw, sh) = source.dimensions();
    let columns: Vec<usize> = (0..width)
        .map(|x| (u64::from(x) * u64::from(sw) / u64::from(width)) as usize * 3)
        .collect();
    let raw = source.as_raw();
    let row_bytes = width as usize * 3;
    let mut data: Vec<u8> = Vec::with_capacity(row_bytes * height as usize);
    let mut previous: Option<u32> = None;
    for y in 0..height {
        let sy = (u64::from(y) * u64::from(sh) / u64::from(height)) as u32;
        if previous == Some(sy) {
            let start = data.len() - row_bytes;
            data.extend_from_within(start..);
            continue;
        }
        let line = &raw[sy as usize * sw as usize * 3..][..sw as usize * 3];
        for &c in &columns {
            data.extend_from_slice(&line[c..c + 3]);
        }
        previous = Some(sy);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_scales_each_pixel_into_a_block() {
        let mut source = image::RgbImage::new(2, 1);
        source.put_pixel(0, 0, image::Rgb([10, 20, 30]));
        source.put_pixel(1, 0, image::Rgb([200, 100, 0]));
        let scaled = nearest(&source, 4, 2);
        assert_eq!(
            scaled,
            [
                [10, 20, 30],
                [10, 20, 30],
                [200, 100, 0],
                [200, 100, 0],
                [10, 20, 30],
                [10, 20, 30],
                [200, 100, 0],
                [200, 100, 0]
            ]
            .concat()
        );
    }
}
