//! Simulated videos: short MP4 files any player plays, showing the labelled picture with its
//! stripes moving. H.264 from `less-avc` (every frame intra, PCM macroblocks: large per frame,
//! so the videos are small and short), muxed by `muxide`.

use less_avc::ycbcr_image::{DataPlane, Planes, YCbCrImage};
use less_avc::{BitDepth, LessEncoder};
use muxide::api::{MuxerBuilder, VideoCodec};
use serde_json::Value;

use crate::render;

/// Frames per second.
pub const FPS: f64 = 12.0;
/// Frames in a video (two seconds).
pub const FRAMES: u32 = 24;
/// The longer side, in pixels.
const LONG_SIDE: u32 = 256;

/// The video's size for a request: its aspect ratio (16:9 when it gives none), the longer
/// side 256 px, both sides multiples of 16 (whole macroblocks).
pub fn size(request: &Value) -> (u32, u32) {
    let ratio = request
        .get("aspect_ratio")
        .and_then(Value::as_str)
        .and_then(|r| r.split_once(':'))
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| *a > 0.0 && *b > 0.0)
        .unwrap_or((16.0, 9.0));
    let short = |a: f64, b: f64| {
        let side = (f64::from(LONG_SIDE) * b / a / 16.0).round() * 16.0;
        (side as u32).clamp(16, LONG_SIDE)
    };
    match ratio {
        (a, b) if a >= b => (LONG_SIDE, short(a, b)),
        (a, b) => (short(b, a), LONG_SIDE),
    }
}

/// RGB to 8-bit YCbCr 4:2:0 (BT.601, studio range): the Y plane, then Cb and Cr.
fn ycbcr(rgb: &[u8], width: usize, height: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let px = |x: usize, y: usize| {
        let i = (y * width + x) * 3;
        (
            f64::from(rgb[i]),
            f64::from(rgb[i + 1]),
            f64::from(rgb[i + 2]),
        )
    };
    let mut luma = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = px(x, y);
            luma.push((16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0).round() as u8);
        }
    }
    let (mut cb, mut cr) = (Vec::new(), Vec::new());
    for y in (0..height).step_by(2) {
        for x in (0..width).step_by(2) {
            let quad = [px(x, y), px(x + 1, y), px(x, y + 1), px(x + 1, y + 1)];
            let (r, g, b) = quad.iter().fold((0.0, 0.0, 0.0), |s, p| {
                (s.0 + p.0 / 4.0, s.1 + p.1 / 4.0, s.2 + p.2 / 4.0)
            });
            cb.push((128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0).round() as u8);
            cr.push((128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0).round() as u8);
        }
    }
    (luma, cb, cr)
}

/// The MP4 for `fingerprint`, `width` x `height` (multiples of 16), labelled with `lines`.
pub fn mp4(width: u32, height: u32, fingerprint: u64, lines: &[String]) -> Result<Vec<u8>, String> {
    let (w, h) = (width as usize, height as usize);
    let frame = |n: u32| {
        let rgb = render::picture(width, height, fingerprint, lines, n * 8);
        ycbcr(&rgb, w, h)
    };
    let mut out = Vec::new();
    let mut muxer = MuxerBuilder::new(&mut out)
        .video(VideoCodec::H264, width, height, FPS)
        .build()
        .map_err(|e| e.to_string())?;
    let mut encoder: Option<LessEncoder> = None;
    for n in 0..FRAMES {
        let (y, cb, cr) = frame(n);
        let plane = |data, stride| DataPlane {
            data,
            stride,
            bit_depth: BitDepth::Depth8,
        };
        let image = YCbCrImage {
            planes: Planes::YCbCr((plane(&y, w), plane(&cb, w / 2), plane(&cr, w / 2))),
            width,
            height,
        };
        let annex_b = match encoder.as_mut() {
            None => {
                let (initial, e) = LessEncoder::new(&image).map_err(|e| format!("{e:?}"))?;
                encoder = Some(e);
                [initial.sps, initial.pps, initial.frame]
                    .iter()
                    .flat_map(|nal| nal.to_annex_b_data())
                    .collect::<Vec<u8>>()
            }
            Some(e) => e
                .encode(&image)
                .map_err(|e| format!("{e:?}"))?
                .to_annex_b_data(),
        };
        muxer
            .write_video(f64::from(n) / FPS, &annex_b, true)
            .map_err(|e| e.to_string())?;
    }
    muxer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The boxes at one level of an ISO-BMFF file: (type, payload).
    fn boxes(data: &[u8]) -> Vec<(String, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
            let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
            assert!(
                size >= 8 && at + size <= data.len(),
                "box {kind} of {size} bytes"
            );
            out.push((kind, &data[at + 8..at + size]));
            at += size;
        }
        assert_eq!(at, data.len(), "boxes fill their parent");
        out
    }

    fn find<'a>(data: &'a [u8], path: &[&str]) -> &'a [u8] {
        let mut here = data;
        for name in path {
            here = boxes(here)
                .into_iter()
                .find(|(k, _)| k == name)
                .unwrap_or_else(|| panic!("no {name} box"))
                .1;
        }
        here
    }

    #[test]
    fn sizes_follow_the_aspect_ratio_in_whole_macroblocks() {
        assert_eq!(size(&json!({})), (256, 144));
        assert_eq!(size(&json!({"aspect_ratio": "9:16"})), (144, 256));
        assert_eq!(size(&json!({"aspect_ratio": "1:1"})), (256, 256));
        assert_eq!(size(&json!({"aspect_ratio": "4:3"})), (256, 192));
    }

    #[test]
    fn a_simulated_video_is_an_mp4_of_h264_intra_frames() {
        let label = [
            "SIMULATED by krea-sim".to_string(),
            "google/veo-3.1-fast".into(),
        ];
        let file = mp4(256, 144, 7, &label).expect("mp4");
        assert_eq!(
            file,
            mp4(256, 144, 7, &label).expect("mp4"),
            "deterministic"
        );
        let top: Vec<String> = boxes(&file).into_iter().map(|(k, _)| k).collect();
        assert_eq!(top.first().map(String::as_str), Some("ftyp"));
        assert!(top.contains(&"moov".to_string()) && top.contains(&"mdat".to_string()));
        let stbl = find(&file, &["moov", "trak", "mdia", "minf", "stbl"]);
        // stsd: version/flags, entry count, then the avc1 sample entry with width and height.
        let stsd = find(stbl, &["stsd"]);
        assert_eq!(&stsd[12..16], b"avc1");
        let avc1 = &stsd[16..];
        assert_eq!(u16::from_be_bytes([avc1[24], avc1[25]]), 256);
        assert_eq!(u16::from_be_bytes([avc1[26], avc1[27]]), 144);
        assert!(
            avc1.windows(4).any(|w| w == b"avcC"),
            "decoder configuration"
        );
        // stsz: version/flags, uniform size, sample count.
        let stsz = find(stbl, &["stsz"]);
        assert_eq!(
            u32::from_be_bytes(stsz[8..12].try_into().expect("4")),
            FRAMES
        );
        // The first sample holds a coded slice (length-prefixed NAL units, type 5 or 1).
        let mdat = find(&file, &["mdat"]);
        let mut at = 0;
        let mut types = Vec::new();
        while at + 4 < mdat.len() && types.len() < 4 {
            let len = u32::from_be_bytes(mdat[at..at + 4].try_into().expect("4")) as usize;
            types.push(mdat[at + 4] & 0x1f);
            at += 4 + len;
        }
        assert!(types.iter().any(|t| *t == 5 || *t == 1), "{types:?}");
    }
}
