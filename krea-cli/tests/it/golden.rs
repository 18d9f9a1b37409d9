//! Snapshots reviewed with every change: the whole `--help` tree and `krea models`.
//! Regenerate with `KREA_UPDATE_GOLDEN=1 cargo test -p krea-cli --test it golden`.

use std::path::PathBuf;
use std::process::Command;

/// A cache directory with nothing in it: listings do not depend on this machine's history.
fn empty_cache() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("krea-golden-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

fn krea(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_krea"))
        .args(args)
        .env("XDG_CACHE_HOME", empty_cache())
        .env_remove("KREA_API_TOKEN")
        .env_remove("KREA_BASE_URL")
        .output()
        .expect("run krea");
    assert!(
        out.status.success(),
        "krea {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Subcommand names listed under `Commands:` in a help page.
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|section| {
            section
                .lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                // A command line is indented by two; wrapped descriptions by more.
                .filter(|l| !l[2..].starts_with(' '))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|name| *name != "help")
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("KREA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} changed (first difference at line {}):\n  golden: {:?}\n  actual: {:?}\nreview it, then regenerate with KREA_UPDATE_GOLDEN=1",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

#[test]
fn the_help_tree_matches_its_snapshot() {
    let mut out = String::new();
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = krea(&args);
        out.push_str(&format!("$ krea {}\n{help}\n", args.join(" ")));
        let mut children: Vec<Vec<String>> = subcommands(&help)
            .into_iter()
            .map(|c| path.iter().cloned().chain([c]).collect())
            .collect();
        children.reverse();
        queue.extend(children);
    }
    assert!(out.contains("$ krea jobs resume --help"));
    // A command shows only the global options that apply to it.
    let sim = krea(&["sim", "--help"]);
    assert!(
        sim.contains("--time-scale") && sim.contains("--verbose"),
        "{sim}"
    );
    assert!(!sim.contains("--poll") && !sim.contains("--token"), "{sim}");
    assert!(krea(&["image", "--help"]).contains("--poll"));
    check("help.txt", &out);
}

/// `krea -h`, and `krea` alone, fit a screen and lead to the first thing to try.
#[test]
fn short_help_fits_forty_lines_and_shows_the_sim_example() {
    let short = krea(&["-h"]);
    assert!(
        short.lines().count() <= 40,
        "{} lines:\n{short}",
        short.lines().count()
    );
    assert!(short.contains("krea --sim image"), "{short}");
    assert!(
        !short.contains("--settle-grace"),
        "rare options wait for --help"
    );
    assert!(krea(&["--help"]).contains("--settle-grace"));
    let bare = Command::new(env!("CARGO_BIN_EXE_krea"))
        .output()
        .expect("run krea");
    let bare =
        String::from_utf8_lossy(&bare.stderr).into_owned() + &String::from_utf8_lossy(&bare.stdout);
    assert!(
        bare.lines().count() <= 40 && bare.contains("krea --sim image"),
        "{bare}"
    );
    // A command's short help leaves the rare global options out too.
    let image = krea(&["image", "-h"]);
    assert!(!image.contains("--settle-grace"), "{image}");
    check(
        "help-short.txt",
        &format!("$ krea -h\n{short}\n$ krea image -h\n{image}"),
    );
}

#[test]
fn the_model_table_matches_its_snapshot() {
    let table = krea(&["models"]);
    assert_eq!(table.lines().count(), 57, "a header and 56 models");
    check("models.txt", &table);
    let flux = krea(&["models", "flux"]);
    assert!(
        flux.contains("prompt") && flux.contains("required, up to 1800 characters"),
        "{flux}"
    );
    check("models-flux.txt", &flux);
}

#[test]
fn models_json_and_schema_parse() {
    let all: serde_json::Value =
        serde_json::from_str(&krea(&["--json", "models", "--kind", "video"])).expect("json");
    assert_eq!(all["models"].as_array().expect("models").len(), 31);
    let schema: serde_json::Value =
        serde_json::from_str(&krea(&["models", "veo", "--schema"])).expect("schema");
    assert!(schema["properties"]["prompt"].is_object(), "{schema}");
}

fn at_width(cols: u16, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_krea"))
        .args(args)
        .env("XDG_CACHE_HOME", empty_cache())
        .env("COLUMNS", cols.to_string())
        .env_remove("KREA_API_TOKEN")
        .env_remove("KREA_BASE_URL")
        .output()
        .expect("run krea");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The model list uses the width it has: at 200 columns no alias list is cut; no column is
/// shown cut to a stub at any width; no line is wider than the terminal.
#[test]
fn the_model_list_fits_each_width_without_stubs() {
    for cols in [60u16, 80, 120, 200] {
        let table = at_width(cols, &["models"]);
        for line in table.lines() {
            assert!(line.chars().count() <= cols as usize, "{cols}: {line:?}");
        }
        let header = table.lines().next().expect("a header");
        if cols >= 200 {
            assert!(
                !table.contains('…') || header.contains("PARAMETERS"),
                "{table}"
            );
            let imagen = table
                .lines()
                .find(|l| l.starts_with("google/imagen-4 "))
                .expect("imagen 4");
            assert!(
                !imagen
                    .split("  ")
                    .any(|c| c.contains("imagen") && c.ends_with('…')),
                "{imagen}"
            );
        }
        // A column cut to a handful of characters says nothing: shown cut only with 16 or more.
        if let Some(at) = header.find("PARAMETERS") {
            assert!(cols as usize - at >= 16, "{cols}: {header}");
        }
    }
    let flux = at_width(80, &["models", "flux"]);
    assert!(flux.lines().all(|l| l.chars().count() <= 80), "{flux}");
    assert!(
        !flux.contains("default 3317551338"),
        "a seed is not fixed by default"
    );
    let nano = at_width(80, &["models", "nano"]);
    assert!(
        nano.contains("Also matching \"nano\": google/nano-banana-2"),
        "{nano}"
    );
}

/// A model Krea publishes no time for shows the time this client measured, marked as such.
#[test]
fn a_measured_time_fills_the_listing_where_krea_gives_none() {
    let cache = std::env::temp_dir().join(format!("krea-golden-timed-{}", std::process::id()));
    std::fs::create_dir_all(cache.join("krea")).expect("cache dir");
    std::fs::write(
        cache.join("krea/timings.json"),
        r#"{"google/veo-3.1-fast": {"mean_seconds": 52.4, "samples": 3}}"#,
    )
    .expect("timings");
    let out = Command::new(env!("CARGO_BIN_EXE_krea"))
        .args(["models", "--kind", "video"])
        .env("XDG_CACHE_HOME", &cache)
        .env("COLUMNS", "80")
        .output()
        .expect("run krea");
    let table = String::from_utf8_lossy(&out.stdout);
    let veo = table
        .lines()
        .find(|l| l.starts_with("google/veo-3.1-fast "))
        .expect("veo 3.1 fast");
    assert!(veo.contains("~52s*"), "{veo}");
    assert!(table.contains("* measured by this client"), "{table}");
    let _ = std::fs::remove_dir_all(&cache);
}
