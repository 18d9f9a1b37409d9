//! The refresh cycle maintainers go through when Krea publishes a new document: `spec refresh
//! --from <copy>` rewrites the vendored description and the lock and prints the API changelog;
//! the file changes only where the API did. Runs in a scratch workspace so the real files are
//! untouched, on small upstream-form fixtures (and on Krea's real document when a copy is at
//! hand, as in CI).

use std::path::{Path, PathBuf};

use krea_openapi::{LOCK_PATH, VENDORED_PATH, read_lock, sha256_hex};
use serde_json::{Value, json};

fn real_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An empty scratch workspace (`<tmp>/ws`) and a place for upstream copies beside it, all
/// removed when the first value drops.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("krea-xtask-{name}-"))
        .tempdir()
        .expect("scratch");
    let base = dir.path().to_path_buf();
    let root = base.join("ws");
    std::fs::create_dir_all(&root).expect("mkdir");
    (dir, root, base)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of `new` that differ from `old` once their common first and last lines are set
/// aside: for a change in one place, exactly what `git diff` shows as added.
fn changed_lines(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    b[prefix..b.len() - suffix]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

fn write_json(path: &Path, v: &Value) -> Vec<u8> {
    let bytes = serde_json::to_vec_pretty(v).expect("serialize");
    std::fs::write(path, &bytes).expect("write");
    bytes
}

#[test]
fn refresh_vendors_the_document_records_it_and_prints_the_changelog() {
    let (_dir, root, _) = scratch("cycle");
    let first = xtask::spec::refresh(&root, Some(fixture("old.json").to_str().expect("utf-8")))
        .expect("refresh from old.json");
    assert!(first.changes.is_none(), "nothing to compare the first time");
    let vendored = read(&root.join(VENDORED_PATH));
    assert!(vendored.contains("\"x-krea-title\": \"M\""), "{vendored}");
    assert!(!vendored.contains("A model."), "no prose: {vendored}");
    assert_eq!(
        read_lock(&root).expect("lock").sha256,
        sha256_hex(&std::fs::read(fixture("old.json")).expect("fixture"))
    );

    let second = xtask::spec::refresh(&root, Some(fixture("new.json").to_str().expect("utf-8")))
        .expect("refresh from new.json");
    let changelog = second.to_string();
    for line in [
        "- model acme/mover",
        "parameter added: negative_prompt (string, optional)",
        "parameter now required: seed",
    ] {
        assert!(
            changelog.contains(line),
            "missing {line:?} in:\n{changelog}"
        );
    }
    assert_eq!(
        read_lock(&root).expect("lock").sha256,
        sha256_hex(&std::fs::read(fixture("new.json")).expect("fixture"))
    );
}

#[test]
fn a_refresh_changes_the_file_only_where_the_api_changed() {
    let (_dir, root, base) = scratch("minimal");
    let mut doc: Value = serde_json::from_str(&read(&fixture("old.json"))).expect("json");
    let before = base.join("before.json");
    write_json(&before, &doc);
    xtask::spec::refresh(&root, Some(before.to_str().expect("utf-8"))).expect("refresh");
    let old = read(&root.join(VENDORED_PATH));

    // Krea adds one parameter, and reorders keys and rewords prose on the way.
    doc["paths"]["/generate/image/acme/painter"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["style_strength"] =
        json!({"type": "number", "minimum": 0, "maximum": 1, "description": "new words"});
    doc["paths"]["/generate/image/acme/painter"]["post"]["description"] =
        json!("Reworded entirely.\n| Compute Units |\n|---|\n| 10 |\n");
    let after = base.join("after.json");
    write_json(&after, &doc);
    let outcome =
        xtask::spec::refresh(&root, Some(after.to_str().expect("utf-8"))).expect("refresh");
    assert!(
        outcome
            .to_string()
            .contains("parameter added: style_strength (number, optional)"),
        "{outcome}"
    );
    let changed: Vec<String> = changed_lines(&old, &read(&root.join(VENDORED_PATH)))
        .iter()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(
        changed,
        [
            "},",
            "\"style_strength\": {",
            "\"maximum\": 1,",
            "\"minimum\": 0,",
            "\"type\": \"number\"",
        ],
        "only the new parameter changed"
    );
}

#[test]
fn refresh_refuses_what_the_build_could_not_use_and_touches_nothing() {
    let (_dir, root, base) = scratch("refuse");
    xtask::spec::refresh(&root, Some(fixture("old.json").to_str().expect("utf-8")))
        .expect("refresh");
    let (lock_before, file_before) = (read(&root.join(LOCK_PATH)), read(&root.join(VENDORED_PATH)));
    let junk = base.join("junk.json");
    std::fs::write(&junk, b"{\"hello\": 1}").expect("write");
    let err =
        xtask::spec::refresh(&root, Some(junk.to_str().expect("utf-8"))).expect_err("not openapi");
    assert!(err.to_string().contains("not an OpenAPI document"), "{err}");
    let vendored = root.join(VENDORED_PATH);
    let err = xtask::spec::refresh(&root, Some(vendored.to_str().expect("utf-8")))
        .expect_err("a vendored description is not an upstream document");
    assert!(
        err.to_string().contains("not an upstream document"),
        "{err}"
    );
    assert_eq!(
        read(&root.join(LOCK_PATH)),
        lock_before,
        "the lock is untouched"
    );
    assert_eq!(
        read(&root.join(VENDORED_PATH)),
        file_before,
        "the file is untouched"
    );
}

#[test]
fn check_counts_the_real_vendored_description() {
    let report = xtask::spec::check(&real_root()).expect("check");
    let text = report.to_string();
    assert!(
        text.contains("72 operations, 56 models, 71 generated + 1 hand-written (POST /assets)"),
        "{text}"
    );
    assert!(text.contains("canonical, no prose"), "{text}");
}

#[test]
fn check_refuses_a_hand_edited_description() {
    let (_dir, root, _) = scratch("edited");
    std::fs::create_dir_all(root.join("krea-gen/spec")).expect("mkdir");
    std::fs::copy(real_root().join(LOCK_PATH), root.join(LOCK_PATH)).expect("lock");
    let text = read(&real_root().join(VENDORED_PATH));
    let edited = text.replacen(
        "\"x-krea-title\": \"Flux\"",
        "\"x-krea-title\": \"Flux\",\n\"description\": \"Some words someone pasted.\"",
        1,
    );
    std::fs::write(root.join(VENDORED_PATH), edited).expect("write");
    let err = xtask::spec::check(&root).expect_err("edited");
    assert!(err.to_string().contains("edited by hand"), "{err}");
}

/// On Krea's real document (when a copy sits at ../shared, as in CI): a modified copy with one
/// model removed and one parameter added is vendored, and the changelog names both.
#[test]
fn refresh_on_a_modified_copy_of_the_real_document() {
    let Ok(upstream) = krea_openapi::load_pinned(&real_root()) else {
        eprintln!("no upstream copy matching the lock beside the workspace: skipped");
        return;
    };
    let (_dir, root, base) = scratch("real");
    std::fs::create_dir_all(root.join("krea-gen/spec")).expect("mkdir");
    std::fs::copy(real_root().join(VENDORED_PATH), root.join(VENDORED_PATH)).expect("copy");
    let mut doc = upstream.document;
    doc["paths"]
        .as_object_mut()
        .expect("paths")
        .remove("/generate/image/ideogram/ideogram-2-turbo");
    doc["paths"]["/generate/image/bfl/flux-1-dev"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["negative_prompt"] = json!({"type": "string"});
    let copy = base.join("modified.json");
    write_json(&copy, &doc);
    let outcome =
        xtask::spec::refresh(&root, Some(copy.to_str().expect("utf-8"))).expect("refresh");
    let changelog = outcome.to_string();
    for line in [
        "- model ideogram/ideogram-2-turbo",
        "- operation POST /generate/image/ideogram/ideogram-2-turbo",
        "parameter added: negative_prompt (string, optional)",
    ] {
        assert!(
            changelog.contains(line),
            "missing {line:?} in:\n{changelog}"
        );
    }
}
