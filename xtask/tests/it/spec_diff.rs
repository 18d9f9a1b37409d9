//! `cargo xtask spec diff` on two small hand-made documents: a model removed, a parameter added,
//! an enum value added, a field made required, a deprecated alias added.

use std::process::Command;

fn xtask(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OLD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/old.json");
const NEW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/new.json");

#[test]
fn prints_each_change_between_the_fixtures() {
    let (ok, stdout, stderr) = xtask(&["spec", "diff", OLD, NEW]);
    assert!(ok, "{stderr}");
    for line in [
        "- operation POST /generate/video/acme/mover",
        "- model acme/mover",
        "~ model acme/painter",
        "    parameter added: negative_prompt (string, optional)",
        "    parameter now required: seed",
        "    enum values added to aspect_ratio: \"9:16\"",
        "    deprecated alias added: aspectRatio -> aspect_ratio (until 2026-06-19)",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing `{line}` in:\n{stdout}"
        );
    }
}

#[test]
fn json_output_lists_the_same_changes() {
    let (ok, stdout, stderr) = xtask(&["spec", "diff", OLD, NEW, "--json"]);
    assert!(ok, "{stderr}");
    let diff: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(diff["models_removed"], serde_json::json!(["acme/mover"]));
    let changes: Vec<&str> = diff["models_changed"]["acme/painter"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["change"].as_str())
        .collect();
    for kind in [
        "param_added",
        "now_required",
        "enum_values_added",
        "alias_added",
    ] {
        assert!(changes.contains(&kind), "{kind} not in {changes:?}");
    }
}

#[test]
fn the_same_document_has_no_changes() {
    let (ok, stdout, _) = xtask(&["spec", "diff", OLD, OLD]);
    assert!(ok);
    assert_eq!(stdout, "no API changes\n");
}

#[test]
fn a_missing_file_fails_with_its_path() {
    let (ok, _, stderr) = xtask(&["spec", "diff", OLD, "/nonexistent/new.json"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/new.json"), "{stderr}");
}
