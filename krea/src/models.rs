//! Finding a model by what people call it.
//!
//! Accepted: the id (`bfl/flux-1-dev`), the API path (`/generate/image/bfl/flux-1-dev`), the bare
//! slug (`flux-1-dev`), and the aliases below (those of the community skill this project grew
//! from, and a few more). Matching ignores case, spaces, `-`, `_` and `.`.

pub use krea_gen::catalog::{
    CostRow, FieldAlias, Kind, MODELS, ModelSpec, ParamSpec, ParamType, unlisted,
};

use crate::error::{Error, Result};

/// The image model used when none is named: Nano Banana 2.
pub const DEFAULT_MODEL: &str = "google/nano-banana-2";
/// The video model used when none is named: Veo 3.1 Fast.
pub const DEFAULT_VIDEO_MODEL: &str = "google/veo-3.1-fast";
/// The enhance model used when none is named: Topaz standard enhance.
pub const DEFAULT_ENHANCE_MODEL: &str = "topaz/standard-enhance";

/// The model used for `kind` when none is named.
///
/// ```
/// use krea::models::{Kind, default_for, resolve};
/// assert_eq!(resolve(default_for(Kind::Video))?.kind, Kind::Video);
/// # Ok::<(), krea::Error>(())
/// ```
pub fn default_for(kind: Kind) -> &'static str {
    match kind {
        Kind::Image => DEFAULT_MODEL,
        Kind::Video => DEFAULT_VIDEO_MODEL,
        Kind::Enhance => DEFAULT_ENHANCE_MODEL,
    }
}

/// Hand-written names on top of the catalog, alias -> model id.
pub const ALIASES: &[(&str, &str)] = &[
    ("nano banana 2", "google/nano-banana-2"),
    ("nano2", "google/nano-banana-2"),
    ("flash", "google/nano-banana-2"),
    ("default", "google/nano-banana-2"),
    // The skill's endpoint for Nano Banana 2; Krea's document calls it nano-banana-2.
    ("nano-banana-flash", "google/nano-banana-2"),
    ("google/nano-banana-flash", "google/nano-banana-2"),
    ("flux", "bfl/flux-1-dev"),
    ("flux-dev", "bfl/flux-1-dev"),
    ("bfl", "bfl/flux-1-dev"),
    ("imagen", "google/imagen-4-fast"),
    ("imagen4", "google/imagen-4-fast"),
    ("imagen-4", "google/imagen-4-fast"),
    ("google", "google/imagen-4-fast"),
    ("ideogram", "ideogram/ideogram-3"),
    ("ideogram3", "ideogram/ideogram-3"),
    ("ideogram-3", "ideogram/ideogram-3"),
    ("nano banana pro", "google/nano-banana-pro"),
    ("nano pro", "google/nano-banana-pro"),
    ("pro", "google/nano-banana-pro"),
    ("nano banana", "google/nano-banana"),
    ("nano", "google/nano-banana"),
    ("nano1", "google/nano-banana"),
    ("seedream", "bytedance/seedream-4"),
    ("bytedance", "bytedance/seedream-4"),
    ("gpt-image", "openai/gpt-image"),
    ("kontext", "bfl/flux-1-kontext-dev"),
    ("veo", "google/veo-3.1"),
    ("kling", "kling/kling-2.6"),
    ("hailuo", "minimax/hailuo-2.3"),
    ("wan", "alibaba/wan-2.5"),
    ("topaz", "topaz/standard-enhance"),
];

/// Models Krea has retired: names people still use -> (retired id, replacement id, date).
pub const RETIRED: &[(&str, &str, &str, &str)] = &[
    (
        "seedream3",
        "bytedance/seedream-3",
        "bytedance/seedream-4",
        "2026-05-13",
    ),
    (
        "seedream-3",
        "bytedance/seedream-3",
        "bytedance/seedream-4",
        "2026-05-13",
    ),
    (
        "bytedance/seedream-3",
        "bytedance/seedream-3",
        "bytedance/seedream-4",
        "2026-05-13",
    ),
    (
        "/generate/image/bytedance/seedream-3",
        "bytedance/seedream-3",
        "bytedance/seedream-4",
        "2026-05-13",
    ),
];

/// `"Nano Banana-2"` -> `"nanobanana2"`.
pub(crate) fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The model `name` refers to.
///
/// ```
/// let m = krea::models::resolve("Flux")?;
/// assert_eq!(m.id, "bfl/flux-1-dev");
/// assert_eq!(krea::models::resolve("/generate/video/google/veo-3.1-fast")?.id, "google/veo-3.1-fast");
/// assert!(matches!(krea::models::resolve("seedream-3"), Err(krea::Error::ModelRetired { .. })));
/// # Ok::<(), krea::Error>(())
/// ```
pub fn resolve(name: &str) -> Result<&'static ModelSpec> {
    let trimmed = name.trim();
    let folded = fold(trimmed.trim_start_matches('/'));
    if let Some(&(_, id, replacement, date)) = RETIRED
        .iter()
        .find(|r| fold(r.0.trim_start_matches('/')) == folded)
    {
        return Err(Error::ModelRetired {
            model: id.into(),
            replacement: replacement.into(),
            sunset: Some(date.into()),
        });
    }
    let by_path = trimmed.strip_prefix('/').unwrap_or(trimmed);
    if let Some(m) = krea_gen::catalog::all()
        .find(|m| m.path.trim_start_matches('/') == by_path || m.id.eq_ignore_ascii_case(trimmed))
    {
        return Ok(m);
    }
    if let Some((_, id)) = ALIASES.iter().find(|(alias, _)| fold(alias) == folded) {
        return krea_gen::catalog::model(id).ok_or_else(|| unknown(name));
    }
    let matches: Vec<&'static ModelSpec> = krea_gen::catalog::all()
        .filter(|m| {
            fold(&m.id) == folded
                || fold(&m.slug) == folded
                || fold(m.path.trim_start_matches('/')) == folded
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        // A generation path whose last part is a slug or alias the catalog knows
        // (`/generate/image/google/nano-banana-flash`).
        [] if trimmed.contains('/') => {
            // The part before it names the vendor, and a vendor that does not match is a
            // different model: `openai/flux` must not become Black Forest Labs' Flux.
            let mut parts = trimmed.trim_end_matches('/').rsplit('/');
            let last = parts.next().unwrap_or_default();
            let vendor = fold(parts.next().unwrap_or_default());
            match resolve(last) {
                Ok(m) if !last.is_empty() && fold(vendor_of(m)) == vendor => Ok(m),
                _ => Err(unknown(name)),
            }
        }
        [] => Err(unknown(name)),
        several => Err(Error::UnknownModel {
            name: name.into(),
            suggestions: several.iter().map(|m| m.id.to_string()).collect(),
        }),
    }
}

/// The models whose id, title or an alias contains `text`, ignoring case, spaces and
/// punctuation (`"nano banana"` finds every Nano Banana), in catalog order; every model for
/// an empty `text`.
///
/// ```
/// let found: Vec<_> = krea::models::search("veo 3.1").map(|m| m.id.as_str()).collect();
/// assert!(found.contains(&"google/veo-3.1-fast"));
/// assert!(found.iter().all(|id| id.contains("veo-3.1")));
/// ```
pub fn search(text: &str) -> impl Iterator<Item = &'static ModelSpec> {
    let folded = fold(text);
    all().filter(move |m| {
        folded.is_empty()
            || [m.id.as_str(), m.title.as_str()]
                .into_iter()
                .chain(aliases_of(&m.id))
                .any(|n| fold(n).contains(&folded))
    })
}

/// The model `name` resolves to when it is not of `kind`: a request for it through an
/// operation of that kind is refused (before anything is sent) and pointed to the right one.
/// `None` when it is of that kind, or resolves to nothing (that error comes when checking).
///
/// ```
/// use krea::models::{Kind, of_another_kind};
/// assert_eq!(of_another_kind("veo-3.1-fast", Kind::Image).map(|m| m.kind), Some(Kind::Video));
/// assert!(of_another_kind("flux", Kind::Image).is_none());
/// ```
pub fn of_another_kind(name: &str, kind: Kind) -> Option<&'static ModelSpec> {
    resolve(name).ok().filter(|m| m.kind != kind)
}

/// `"an image"`, `"a video"`, `"an enhance"`: a kind in a sentence.
pub fn kind_with_article(kind: Kind) -> &'static str {
    match kind {
        Kind::Image => "an image",
        Kind::Video => "a video",
        Kind::Enhance => "an enhance",
    }
}

/// The aliases that lead to model `id`.
pub fn aliases_of(id: &str) -> Vec<&'static str> {
    ALIASES
        .iter()
        .filter(|(_, target)| *target == id)
        .map(|(alias, _)| *alias)
        .collect()
}

/// Every model of a kind: the built-in ones in id order, then any added at run time (see
/// [`crate::Krea::refresh_catalog`]).
pub fn of_kind(kind: Kind) -> impl Iterator<Item = &'static ModelSpec> {
    all().filter(move |m| m.kind == kind)
}

/// Every model: built in ([`MODELS`]), then added at run time from a newer document.
pub fn all() -> impl Iterator<Item = &'static ModelSpec> {
    krea_gen::catalog::all()
}

/// The vendor part of a model's id (`bfl` of `bfl/flux-1-dev`).
fn vendor_of(m: &ModelSpec) -> &str {
    m.id.split('/').next().unwrap_or_default()
}

fn unknown(name: &str) -> Error {
    Error::UnknownModel {
        name: name.into(),
        suggestions: suggest(name),
    }
}

/// Up to three names close to `name` (edit distance on folded names, or containing it).
pub fn suggest(name: &str) -> Vec<String> {
    let folded = fold(name);
    if folded.is_empty() {
        return Vec::new();
    }
    let candidates = all()
        .flat_map(|m| {
            [
                (m.id.as_str(), m.id.as_str()),
                (m.slug.as_str(), m.id.as_str()),
            ]
        })
        .chain(ALIASES.iter().map(|(a, id)| (*a, *id)));
    let mut scored: Vec<(usize, String)> = candidates
        .filter_map(|(candidate, id)| {
            let c = fold(candidate);
            let d = strsim::levenshtein(&folded, &c);
            let close =
                d <= (folded.len() / 3).max(2) || (folded.len() >= 3 && c.contains(&folded));
            close.then(|| {
                (
                    d,
                    if candidate == id {
                        id.to_string()
                    } else {
                        format!("{candidate} ({id})")
                    },
                )
            })
        })
        .collect();
    scored.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, s) in scored {
        if !out.contains(&s) {
            out.push(s);
        }
        if out.len() == 3 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_points_at_a_catalog_model() {
        for (alias, id) in ALIASES {
            assert_eq!(
                resolve(alias).map(|m| m.id.as_str()).ok(),
                Some(*id),
                "{alias}"
            );
        }
    }

    #[test]
    fn ids_paths_and_slugs_resolve_ignoring_case_and_punctuation() {
        for m in MODELS.iter() {
            assert_eq!(
                resolve(&m.id).map(|r| r.id.as_str()).ok(),
                Some(m.id.as_str())
            );
            assert_eq!(
                resolve(&m.path).map(|r| r.id.as_str()).ok(),
                Some(m.id.as_str())
            );
            assert_eq!(
                resolve(&m.id.to_uppercase()).map(|r| r.id.as_str()).ok(),
                Some(m.id.as_str())
            );
        }
        assert_eq!(
            resolve("flux 1 dev").map(|m| m.id.as_str()).ok(),
            Some("bfl/flux-1-dev")
        );
        assert_eq!(
            resolve("VEO_3.1_FAST").map(|m| m.id.as_str()).ok(),
            Some("google/veo-3.1-fast")
        );
    }

    #[test]
    fn folded_names_do_not_collide() {
        let mut folded: Vec<String> = MODELS.iter().map(|m| fold(&m.id)).collect();
        folded.sort();
        folded.dedup();
        assert_eq!(folded.len(), MODELS.len());
    }

    #[test]
    fn unknown_names_get_suggestions() {
        match resolve("fluxx") {
            Err(Error::UnknownModel { suggestions, .. }) => assert!(
                suggestions.iter().any(|s| s.contains("bfl/flux-1-dev")),
                "{suggestions:?}"
            ),
            other => panic!("{other:?}"),
        }
        match resolve("ideogramm") {
            Err(Error::UnknownModel { suggestions, .. }) => assert!(
                suggestions.iter().any(|s| s.contains("ideogram")),
                "{suggestions:?}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seedream_3_is_retired_not_silently_replaced() {
        for name in [
            "seedream3",
            "seedream-3",
            "Seedream 3",
            "bytedance/seedream-3",
            "/generate/image/bytedance/seedream-3",
        ] {
            match resolve(name) {
                Err(Error::ModelRetired { replacement, .. }) => {
                    assert_eq!(replacement, "bytedance/seedream-4")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_vendor_that_does_not_match_never_resolves_to_another_vendor() {
        for name in [
            "openai/flux",
            "kling/veo-3.1-fast",
            "/generate/image/openai/flux-1-dev",
        ] {
            assert!(
                matches!(resolve(name), Err(Error::UnknownModel { .. })),
                "{name}: {:?}",
                resolve(name).map(|m| &m.id)
            );
        }
        // The vendor that does match still finds the model by its slug or alias.
        assert_eq!(
            resolve("google/veo-3.1-fast").map(|m| m.id.as_str()).ok(),
            Some("google/veo-3.1-fast")
        );
        assert_eq!(
            resolve("bfl/flux").map(|m| m.id.as_str()).ok(),
            Some("bfl/flux-1-dev")
        );
    }

    #[test]
    fn each_kinds_default_is_a_model_of_that_kind() {
        for kind in [Kind::Image, Kind::Video, Kind::Enhance] {
            assert_eq!(resolve(default_for(kind)).map(|m| m.kind).ok(), Some(kind));
        }
    }

    #[test]
    fn the_default_model_is_nano_banana_2() {
        assert_eq!(
            resolve(DEFAULT_MODEL).map(|m| m.title.as_str()).ok(),
            Some("Nano Banana 2")
        );
    }
}
