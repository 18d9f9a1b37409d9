//! The typed options a front end offers (the CLI's flags, the MCP tools' arguments), applied to
//! a request in one place, so that a flag and a tool argument of the same name always mean the
//! same request.

use serde_json::{Map, Value};

use crate::{GenerationRequest, Input};

/// Options for [`GenerationRequest::with_options`]: every field left empty adds nothing.
/// Each one is the builder method of the same name (so a ratio given to a model that takes a
/// size becomes a size, an image goes to the field the model takes, and so on); `params` come
/// last and are sent as given, so they win over the typed options.
///
/// ```
/// let krea = krea::Krea::builder().token("t").build()?;
/// let mut options = krea::GenerationOptions::default();
/// options.aspect_ratio = Some("16:9".into());
/// options.seed = Some(7);
/// let request = krea.image("flux").prompt("a lighthouse").with_options(options);
/// let checked = request.check()?;
/// assert_eq!(checked.body["seed"], 7);
/// assert_eq!(checked.body["width"], 1344); // Flux takes a size: 16:9 at its usual area
/// # Ok::<(), krea::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GenerationOptions {
    /// Input images ([`GenerationRequest::image`]).
    pub images: Vec<Input>,
    /// A video's first frame.
    pub start_image: Option<Input>,
    /// A video's last frame.
    pub end_image: Option<Input>,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// `W:H`, e.g. `16:9`.
    pub aspect_ratio: Option<String>,
    /// E.g. `2K`, `1080p`.
    pub resolution: Option<String>,
    /// For repeatable results.
    pub seed: Option<u64>,
    /// Sampling steps.
    pub steps: Option<u32>,
    /// E.g. `high`.
    pub quality: Option<String>,
    /// Seconds (videos).
    pub duration: Option<u32>,
    /// A sound track with the video.
    pub audio: Option<bool>,
    /// Upscale factor (enhancers).
    pub scale: Option<f64>,
    /// Trained styles by id, with their strengths.
    pub styles: Vec<(String, f64)>,
    /// Any other body members, sent as given.
    pub params: Map<String, Value>,
}

impl GenerationRequest {
    /// This request with `options` applied (see [`GenerationOptions`]).
    pub fn with_options(self, options: GenerationOptions) -> GenerationRequest {
        let GenerationOptions {
            images,
            start_image,
            end_image,
            width,
            height,
            aspect_ratio,
            resolution,
            seed,
            steps,
            quality,
            duration,
            audio,
            scale,
            styles,
            params,
        } = options;
        let mut r = self;
        for input in images {
            r = r.image(input);
        }
        if let Some(input) = start_image {
            r = r.start_image(input);
        }
        if let Some(input) = end_image {
            r = r.end_image(input);
        }
        // A size given is kept; a ratio then only fills what is missing.
        if let Some(v) = width {
            r = r.width(v);
        }
        if let Some(v) = height {
            r = r.height(v);
        }
        if let Some(v) = aspect_ratio {
            r = r.aspect_ratio(v);
        }
        if let Some(v) = resolution {
            r = r.resolution(v);
        }
        if let Some(v) = seed {
            r = r.seed(v);
        }
        if let Some(v) = steps {
            r = r.steps(v);
        }
        if let Some(v) = quality {
            r = r.quality(v);
        }
        if let Some(v) = duration {
            r = r.duration(v);
        }
        if let Some(v) = audio {
            r = r.audio(v);
        }
        if let Some(v) = scale {
            r = r.scale(v);
        }
        for (id, strength) in styles {
            r = r.style(id, strength);
        }
        for (key, value) in params {
            r = r.param(&key, value);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(options: GenerationOptions) -> Value {
        let krea = crate::Krea::builder().token("t").build().expect("client");
        krea.image("flux")
            .prompt("x")
            .with_options(options)
            .check()
            .expect("checked")
            .body
    }

    #[test]
    fn a_size_given_wins_over_a_ratio_and_params_win_over_both() {
        let b = body(GenerationOptions {
            width: Some(1024),
            aspect_ratio: Some("16:9".into()),
            ..GenerationOptions::default()
        });
        assert_eq!(b["width"], 1024, "the width given is kept");
        assert!(b["height"].as_u64().is_some_and(|h| h < 1024), "{b}");

        let mut o = GenerationOptions {
            seed: Some(7),
            ..GenerationOptions::default()
        };
        o.params.insert("seed".into(), json!(8));
        assert_eq!(body(o)["seed"], 8);
    }

    #[test]
    fn nothing_given_adds_nothing() {
        let b = body(GenerationOptions::default());
        assert_eq!(b, json!({"prompt": "x"}));
    }
}
