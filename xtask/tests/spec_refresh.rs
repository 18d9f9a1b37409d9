//! The pin cycle maintainers go through when Krea publishes a new document: a modified copy is
//! refused with a message naming both hashes and the fix; `spec refresh --from <copy>` prints
//! what changed and re-pins, after which the copy is accepted. Runs in a scratch workspace so
//! the real lock is untouched.

use std::path::{Path, PathBuf};

use krea_openapi::{LOCK_PATH, load_checked, read_lock, sha256_hex};

fn real_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

struct Scratch {
    root: PathBuf,
    spec: PathBuf,
}

/// `<tmp>/ws/openapi/krea-api.lock` (the real pin) and `<tmp>/shared/openapi/<document>`.
fn scratch(name: &str) -> Scratch {
    let base = std::env::temp_dir().join(format!("krea-xtask-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("ws");
    std::fs::create_dir_all(root.join("openapi")).expect("mkdir");
    std::fs::copy(real_root().join(LOCK_PATH), root.join(LOCK_PATH)).expect("copy lock");
    let spec = base.join("shared/openapi/krea-api-openapi.json");
    std::fs::create_dir_all(spec.parent().expect("parent")).expect("mkdir");
    let upstream = krea_openapi::load_pinned(&real_root()).expect("the real pinned document");
    std::fs::copy(&upstream.path, &spec).expect("copy upstream outside the repository");
    Scratch { root, spec }
}

#[test]
fn a_modified_copy_is_refused_then_accepted_after_refresh() {
    let s = scratch("cycle");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&s.spec).expect("read")).expect("json");
    // The modification: Krea drops Ideogram 2 Turbo and gives Flux a new parameter.
    doc["paths"]
        .as_object_mut()
        .expect("paths")
        .remove("/generate/image/ideogram/ideogram-2-turbo");
    doc["paths"]["/generate/image/bfl/flux-1-dev"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["negative_prompt"] = serde_json::json!({"type": "string"});
    let copy = s.root.parent().expect("base").join("modified.json");
    let bytes = serde_json::to_vec(&doc).expect("serialize");
    std::fs::write(&copy, &bytes).expect("write copy");

    // What the build reports for KREA_OPENAPI_SPEC=<copy>.
    let lock = read_lock(&s.root).expect("lock");
    let pinned_hash = lock.sha256.clone();
    let err = load_checked(&copy, lock)
        .expect_err("a modified copy must not match the pin")
        .to_string();
    assert!(err.contains(&copy.display().to_string()), "{err}");
    assert!(
        err.contains(&pinned_hash) && err.contains(&sha256_hex(&bytes)),
        "{err}"
    );
    assert!(err.contains("cargo xtask spec refresh"), "{err}");

    let outcome = xtask::spec::refresh(
        &s.root,
        Some(copy.to_str().expect("utf-8 path")),
        Some(&s.spec),
    )
    .expect("refresh");
    let changelog = outcome.to_string();
    assert!(
        changelog.contains("- model ideogram/ideogram-2-turbo"),
        "{changelog}"
    );
    assert!(
        changelog.contains("parameter added: negative_prompt (string, optional)"),
        "{changelog}"
    );
    assert!(
        changelog.contains("- operation POST /generate/image/ideogram/ideogram-2-turbo"),
        "{changelog}"
    );

    let lock = read_lock(&s.root).expect("new lock");
    assert_eq!(lock.sha256, sha256_hex(&bytes));
    assert!(
        load_checked(&copy, lock.clone()).is_ok(),
        "the copy now matches the pin"
    );
    assert!(
        load_checked(&s.spec, lock).is_ok(),
        "and it was written to the spec location"
    );
}

#[test]
fn refresh_refuses_to_write_the_document_into_the_repository() {
    let s = scratch("inside");
    let inside = s.root.join("openapi/krea-api-openapi.json");
    let err = xtask::spec::refresh(
        &s.root,
        Some(s.spec.to_str().expect("utf-8")),
        Some(&inside),
    )
    .expect_err("inside the repo");
    assert!(err.to_string().contains("never committed"), "{err}");
    assert!(!inside.exists());
}

#[test]
fn refresh_refuses_a_file_that_is_not_openapi() {
    let s = scratch("notapi");
    let junk = s.root.parent().expect("base").join("junk.json");
    std::fs::write(&junk, b"{\"hello\": 1}").expect("write");
    let before = std::fs::read_to_string(s.root.join(LOCK_PATH)).expect("lock");
    let err = xtask::spec::refresh(&s.root, Some(junk.to_str().expect("utf-8")), Some(&s.spec))
        .expect_err("not openapi");
    assert!(err.to_string().contains("not an OpenAPI document"), "{err}");
    assert_eq!(
        std::fs::read_to_string(s.root.join(LOCK_PATH)).expect("lock"),
        before,
        "the pin is untouched"
    );
}

#[test]
fn check_counts_the_real_document() {
    let report = xtask::spec::check(&real_root()).expect("check");
    let text = report.to_string();
    assert!(
        text.contains("72 operations, 56 models, 71 generated + 1 hand-written (POST /assets)"),
        "{text}"
    );
}
