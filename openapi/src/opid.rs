//! Operation ids synthesized from method + path.
//!
//! Krea's document has no `operationId`s; progenitor needs one per operation and typify derives
//! type names from them (`{OpId}Body`), so they must be stable, readable and collision-free after
//! PascalCase conversion (typify silently merges types that share a name).

use std::collections::BTreeMap;

/// The operation id for `method` on `path`.
///
/// - `POST /generate/{kind}/{provider}/{model}` -> `generate_{kind}_{provider}_{model}`
/// - a collection (`/jobs`): `GET` -> `list_jobs`, `POST` -> `create_job`
/// - an item (`/jobs/{id}`): `get_job`, `delete_job`, `update_job` (PATCH), `replace_job` (PUT)
/// - an action on a collection (`POST /styles/train`) -> `train_style`
/// - a sub-resource of an item (`/styles/{id}/share/link`): the verb, the singular resource, then
///   the tail (`get_style_share_link`); `POST` uses the first tail word as the verb
///   (`POST /styles/{id}/share/workspace` -> `share_style_workspace`,
///   `POST /node-apps/{id}/execute` -> `execute_node_app`).
pub fn synthesize(method: &str, path: &str) -> String {
    let method = method.to_ascii_lowercase();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first() == Some(&"generate") {
        return std::iter::once("generate")
            .chain(segments[1..].iter().copied())
            .map(snake)
            .collect::<Vec<_>>()
            .join("_");
    }
    let resource = segments.first().copied().unwrap_or("root");
    let plural = snake(resource);
    let singular = singularize(&plural);
    let param_at = segments.iter().position(|s| s.starts_with('{'));
    let tail: Vec<String> = match param_at {
        Some(i) => segments[i + 1..].iter().map(|s| snake(s)).collect(),
        None => segments[1..].iter().map(|s| snake(s)).collect(),
    };
    let verb = match method.as_str() {
        "get" => "get",
        "delete" => "delete",
        "patch" => "update",
        "put" => "replace",
        "post" => "create",
        other => other,
    };
    match (param_at.is_some(), tail.is_empty()) {
        (false, true) if method == "get" => format!("list_{plural}"),
        (false, true) | (true, true) => format!("{verb}_{singular}"),
        (false, false) if method == "post" => format!("{}_{singular}", tail.join("_")),
        (_, false) if method == "post" => {
            let rest = &tail[1..];
            let mut id = format!("{}_{singular}", tail[0]);
            for part in rest {
                id.push('_');
                id.push_str(part);
            }
            id
        }
        (_, false) => format!("{verb}_{singular}_{}", tail.join("_")),
    }
}

/// `kling-2.1` -> `kling_2_1`: every run of non-alphanumerics becomes one `_`.
pub fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// What typify does to an operation id to name its types (`get_job` -> `GetJob`).
pub fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn singularize(plural: &str) -> String {
    plural.strip_suffix('s').unwrap_or(plural).to_string()
}

/// Operation ids that map to the same PascalCase name (and so to the same typify type names).
/// Returns each clashing name with the ids that produce it; empty when all are distinct.
pub fn collisions<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<(String, Vec<String>)> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in ids {
        by_name.entry(pascal(id)).or_default().push(id.to_string());
    }
    by_name
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_job_operations_like_a_person_would() {
        assert_eq!(synthesize("get", "/jobs"), "list_jobs");
        assert_eq!(synthesize("get", "/jobs/{id}"), "get_job");
        assert_eq!(synthesize("delete", "/jobs/{id}"), "delete_job");
        assert_eq!(synthesize("post", "/assets"), "create_asset");
        assert_eq!(synthesize("patch", "/styles/{id}"), "update_style");
    }

    #[test]
    fn names_actions_and_sub_resources() {
        assert_eq!(synthesize("post", "/styles/train"), "train_style");
        assert_eq!(
            synthesize("get", "/styles/{id}/share/link"),
            "get_style_share_link"
        );
        assert_eq!(
            synthesize("post", "/styles/{id}/share/workspace"),
            "share_style_workspace"
        );
        assert_eq!(
            synthesize("delete", "/styles/{id}/share/workspace"),
            "delete_style_share_workspace"
        );
        assert_eq!(
            synthesize("post", "/node-apps/{id}/execute"),
            "execute_node_app"
        );
        assert_eq!(synthesize("get", "/node-apps/{id}"), "get_node_app");
    }

    #[test]
    fn names_generation_endpoints_from_the_whole_path() {
        assert_eq!(
            synthesize("post", "/generate/image/bfl/flux-1-dev"),
            "generate_image_bfl_flux_1_dev"
        );
        assert_eq!(
            synthesize("post", "/generate/video/google/veo-3.1-fast"),
            "generate_video_google_veo_3_1_fast"
        );
    }

    #[test]
    fn finds_ids_that_collide_after_pascal_case() {
        let clash = collisions([
            "generate_video_kling_2_1",
            "generate_video_kling_21",
            "get_job",
        ]);
        assert_eq!(clash.len(), 1);
        assert_eq!(clash[0].0, "GenerateVideoKling21");
        assert!(collisions(["get_job", "list_jobs"]).is_empty());
    }
}
