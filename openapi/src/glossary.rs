//! The project's own one-line help for request parameters, and the order they are listed in.
//!
//! The vendored description carries no prose from Krea's document, so every word shown about a
//! parameter (`krea models MODEL`, rustdoc, JSON schemas handed to assistants) comes from here.
//! A parameter missing from this table is shown with its type, range, values and default only.

/// `(name, help)`, in the order parameters are listed (names not here come after, sorted).
/// Nested names are written `parent.child` (array items and object properties alike).
const ENTRIES: &[(&str, &str)] = &[
    ("prompt", "What to generate, in words."),
    ("negative_prompt", "What to keep out of the result."),
    (
        "multi_prompt",
        "Several prompts, each for its own stretch of the video.",
    ),
    ("multi_prompt.prompt", "The text for this stretch."),
    (
        "multi_prompt.duration",
        "How long this stretch lasts, in seconds.",
    ),
    (
        "image_url",
        "URL of an input image (edit, restyle or upscale).",
    ),
    (
        "image_urls",
        "URLs of input images the result should draw on.",
    ),
    ("init_image_url", "URL of a first-frame image."),
    ("start_image", "URL of the video's first frame."),
    ("end_image", "URL of the video's last frame."),
    ("start_video", "URL of a video to continue from."),
    ("end_video", "URL of a video to lead into."),
    ("init_video", "URL of the video to transform."),
    ("edit_video", "URL of a video to edit."),
    ("audio_url", "URL of an audio track to use."),
    ("width", "Output width in pixels."),
    ("height", "Output height in pixels."),
    ("aspect_ratio", "Output shape as width:height."),
    ("ratio", "Output size as width:height in pixels."),
    ("resolution", "Output resolution class."),
    ("duration", "Video length in seconds."),
    ("num_frames", "Number of video frames to render."),
    ("frame_num", "Number of video frames to render."),
    ("loop", "Make the video loop seamlessly."),
    ("generate_audio", "Also generate a sound track."),
    (
        "seed",
        "Fixes the randomness: the same seed and inputs repeat a result.",
    ),
    ("steps", "Denoising steps: more is slower, often finer."),
    (
        "num_inference_steps",
        "Denoising steps: more is slower, often finer.",
    ),
    ("guidance_scale_flux", "How literally to follow the prompt."),
    ("cfg_scale", "How literally to follow the prompt."),
    ("guide_scale", "How literally to follow the prompt."),
    (
        "strength",
        "How far the result may move away from the input image (0 keeps it).",
    ),
    (
        "denoising_strength",
        "How far the result may move away from the input image.",
    ),
    (
        "quality",
        "Quality tier: higher costs more and takes longer.",
    ),
    ("mode", "Quality mode of the model."),
    ("model", "Which variant of the upscaler to run."),
    ("style", "A preset look."),
    ("raw", "Less processed, more natural-looking output."),
    ("output_format", "File format of the result."),
    ("styles", "Trained styles (LoRAs) to apply."),
    ("styles.id", "The style's id."),
    (
        "styles.strength",
        "How strongly to apply it (negative values push away).",
    ),
    (
        "style_images",
        "Images whose look the result should borrow.",
    ),
    ("style_images.url", "URL of the style image."),
    ("style_images.strength", "How strongly to follow it."),
    (
        "image_style_references",
        "Images whose look the result should borrow.",
    ),
    ("image_style_references.url", "URL of the reference image."),
    (
        "image_style_references.strength",
        "How strongly to follow it.",
    ),
    (
        "style_references",
        "Images whose look the video should borrow.",
    ),
    ("style_references.url", "URL of the reference image."),
    (
        "style_references.tag",
        "A name to refer to it by in the prompt.",
    ),
    (
        "reference_images",
        "Images of subjects or looks to carry into the result.",
    ),
    ("reference_images.url", "URL of the reference image."),
    (
        "reference_images.tag",
        "A name to refer to it by in the prompt.",
    ),
    (
        "character_reference_images",
        "Images of a character to keep consistent.",
    ),
    (
        "element_references",
        "Groups of images, each showing one element to include.",
    ),
    (
        "element_references.images",
        "URLs of images of this element.",
    ),
    (
        "element_references.tag",
        "A name to refer to it by in the prompt.",
    ),
    ("video_reference", "A video to take motion or content from."),
    ("video_reference.url", "URL of the reference video."),
    (
        "video_reference.tag",
        "A name to refer to it by in the prompt.",
    ),
    ("references", "Reference media for the transformation."),
    ("references.uri", "URL of the reference."),
    ("references.type", "What kind of reference it is."),
    ("subjects", "Subjects to keep consistent across the video."),
    ("subjects.image", "URL of an image of the subject."),
    ("subjects.type", "What kind of subject it is."),
    ("camera_control", "A scripted camera move."),
    ("camera_control.type", "The kind of move."),
    (
        "camera_control.config",
        "Amounts for a custom move (only with the custom type).",
    ),
    (
        "expand_prompt",
        "Let the service rewrite the prompt with more detail.",
    ),
    (
        "enable_prompt_expansion",
        "Let the service rewrite the prompt with more detail.",
    ),
    (
        "skip_prompt_expansion",
        "Use the prompt exactly as written.",
    ),
    ("web_search", "Let the model look things up before drawing."),
    ("has_lora", "Whether a LoRA is applied."),
    (
        "image_scaling_factor",
        "How many times larger the output is.",
    ),
    (
        "upscaling_activated",
        "Enlarge the image, not only refine it.",
    ),
    (
        "crop_to_fill",
        "Crop instead of padding to reach the target shape.",
    ),
    ("creativity", "How much new detail may be invented."),
    ("texture", "How much fine texture to add."),
    ("detail", "How much fine detail to add."),
    ("sharpen", "How much to sharpen."),
    ("denoise", "How much noise to remove."),
    (
        "fix_compression",
        "How much to repair compression artefacts.",
    ),
    (
        "subject_detection",
        "Which part of the image to treat as the subject.",
    ),
    ("face_enhancement", "Also restore faces."),
    (
        "face_enhancement_creativity",
        "How freely faces may be redrawn.",
    ),
    (
        "face_enhancement_strength",
        "How strongly faces are restored.",
    ),
    ("face_preservation", "Keep faces as they are."),
    ("color_preservation", "Keep the original colours."),
];

/// The project's help line for parameter `path` (`prompt`, `styles.strength`).
pub fn describe(path: &str) -> Option<&'static str> {
    ENTRIES.iter().find(|(n, _)| *n == path).map(|(_, h)| *h)
}

/// Sort key for listing parameters: glossary order first, then the rest by name.
pub fn rank(name: &str) -> (usize, String) {
    let position = ENTRIES.iter().position(|(n, _)| *n == name);
    (position.unwrap_or(ENTRIES.len()), name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lines_are_short() {
        let mut names: Vec<&str> = ENTRIES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ENTRIES.len(), "a name is listed twice");
        for (name, help) in ENTRIES {
            assert!(help.len() <= 80, "{name}: keep help to one short line");
            assert!(help.ends_with('.'), "{name}");
        }
    }

    #[test]
    fn common_parameters_come_first() {
        assert!(rank("prompt") < rank("width"));
        assert!(rank("width") < rank("height"));
        assert!(rank("height") < rank("zzz_unknown"));
        assert!(rank("aaa_unknown") < rank("zzz_unknown"));
    }
}
