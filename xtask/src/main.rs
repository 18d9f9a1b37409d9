//! `cargo xtask`: maintainer tasks.
//!
//! ```text
//! cargo xtask spec refresh [--from URL|PATH]
//! cargo xtask spec check
//! cargo xtask spec generate
//! cargo xtask spec diff OLD NEW [--json]
//! cargo xtask public-api [--check]
//! ```
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its output

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use xtask::{generate, spec};

const USAGE: &str = "usage:
  cargo xtask spec refresh [--from URL|PATH]   vendor Krea's document (default: the live one), print the API changelog
  cargo xtask spec check                       check the vendored description (and that it reproduces) and the generated code, print counts
  cargo xtask spec generate                    write krea-gen's generated code from the vendored description
  cargo xtask spec diff OLD NEW [--json]       what changed in the API between two documents (upstream or vendored)
  cargo xtask public-api [--check]             krea's public API to krea/public-api.txt (--check: fail if it changed)
  cargo xtask bench [--quick] [SCENARIO...]    benchmarks against krea-sim (release build)";

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == flag) {
        Some(i) if i + 1 < args.len() => {
            let value = args.remove(i + 1);
            args.remove(i);
            Ok(Some(value))
        }
        Some(_) => bail!("{flag} needs a value\n{USAGE}"),
        None => Ok(None),
    }
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let words: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
    match words.as_slice() {
        ["spec", "check"] => {
            print!("{}", spec::check(&root)?);
            let stale = generate::stale(&root)?;
            if !stale.is_empty() {
                bail!(
                    "krea-gen's generated code is not what the vendored description gives ({}): run `cargo xtask spec generate`",
                    stale
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            println!(
                "generated code ok: {} matches the vendored description",
                generate::DIR
            );
            Ok(())
        }
        ["spec", "generate"] => {
            let changed = generate::write(&root)?;
            println!(
                "{} generated file(s) changed in {}",
                changed.len(),
                generate::DIR
            );
            Ok(())
        }
        ["spec", "refresh"] => {
            let from = take_flag(&mut args, "--from")?;
            let outcome = spec::refresh(&root, from.as_deref())?;
            print!("{outcome}");
            let changed = generate::write(&root)?;
            println!(
                "{} generated file(s) changed in {}",
                changed.len(),
                generate::DIR
            );
            Ok(())
        }
        ["spec", "diff"] => {
            let json = args.iter().any(|a| a == "--json");
            let files: Vec<&String> = args[2..].iter().filter(|a| *a != "--json").collect();
            let [old, new] = files.as_slice() else {
                bail!("spec diff needs OLD and NEW\n{USAGE}")
            };
            let diff = spec::diff_files(old.as_ref(), new.as_ref())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&diff).context("serialize diff")?
                );
            } else {
                print!("{diff}");
            }
            Ok(())
        }
        ["public-api", ..] => {
            let check = args.iter().any(|a| a == "--check");
            println!("{}", xtask::public_api::run(&root, check)?);
            Ok(())
        }
        ["bench", ..] => {
            // The benchmarks live in their own crate (they need the generated client, which
            // xtask must not: `spec refresh` must build even when the vendored file does not).
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            // The overhead and download scenarios run the simulator as a separate process, the
            // MCP one the `krea` binary.
            let built = std::process::Command::new(&cargo)
                .args([
                    "build",
                    "--release",
                    "--quiet",
                    "-p",
                    "krea-sim",
                    "--bin",
                    "krea-sim",
                    "-p",
                    "krea-cli",
                    "--bin",
                    "krea",
                ])
                .current_dir(&root)
                .status()
                .context("build krea-sim")?;
            if !built.success() {
                bail!("building the simulator failed");
            }
            let status = std::process::Command::new(&cargo)
                .args(["run", "--release", "--quiet", "-p", "krea-bench", "--"])
                .args(&args[1..])
                .current_dir(&root)
                .status()
                .context("run cargo")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}
