//! The `krea` command-line tool. It uses the `krea` library for everything; no HTTP here.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;
mod cmd_apps;
mod cmd_assets;
mod cmd_auth;
mod cmd_batch;
mod cmd_doctor;
mod cmd_generate;
mod cmd_jobs;
mod cmd_models;
mod cmd_pipeline;
mod cmd_sim;
mod cmd_styles;
mod confirm;
mod context;
mod exit;
mod job_json;
mod mcp;
mod output;
mod progress;
mod synced_term;

use cli::{Cli, Command};

async fn run(cli: &Cli) -> anyhow::Result<u8> {
    let out = output::Out {
        json: cli.global.json,
        quiet: cli.global.quiet,
        simulated: cli.global.sim,
        ask: false,
    };
    // Commands that need no client.
    match &cli.command {
        Command::Models(a) if !a.refresh => return cmd_models::run(&out, a),
        Command::Sim(a) => return cmd_sim::run(&out, a).await,
        Command::Auth(c) => return cmd_auth::run(&out, &cli.global, c).await,
        Command::Doctor => return cmd_doctor::run(&out, &cli.global).await,
        Command::Mcp(a) => return mcp::run(&cli.global, a).await,
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "krea", &mut buf);
            output::raw(&String::from_utf8_lossy(&buf));
            return Ok(exit::OK);
        }
        _ => {}
    }
    // A dry run sends nothing, so it needs no token.
    let dry_run = match &cli.command {
        Command::Image(a) => a.out.dry_run,
        Command::Video(a) => a.out.dry_run,
        Command::Enhance(a) => a.out.dry_run,
        Command::Run(a) => a.out.dry_run,
        Command::Batch(a) => a.dry_run,
        Command::Pipeline(a) => a.dry_run,
        _ => false,
    };
    let ctx = if dry_run && !cli.global.sim && context::find_token(&cli.global)?.is_none() {
        context::offline(&cli.global)?
    } else {
        context::connect(&cli.global).await?
    };
    match &cli.command {
        Command::Image(a) => cmd_generate::image(&ctx, a).await,
        Command::Video(a) => cmd_generate::video(&ctx, a).await,
        Command::Enhance(a) => cmd_generate::enhance(&ctx, a).await,
        Command::Run(a) => cmd_generate::run(&ctx, a).await,
        Command::Batch(a) => cmd_batch::batch(&ctx, a).await,
        Command::Pipeline(a) => cmd_pipeline::run(&ctx, a).await,
        Command::Jobs(c) => cmd_jobs::run(&ctx, c).await,
        Command::Assets(c) => cmd_assets::run(&ctx, c).await,
        Command::Styles(c) => cmd_styles::run(&ctx, c).await,
        Command::Apps(c) => cmd_apps::run(&ctx, c).await,
        Command::Models(a) => cmd_models::refresh_then_run(&ctx, a).await,
        Command::Sim(_)
        | Command::Completions { .. }
        | Command::Auth(_)
        | Command::Doctor
        | Command::Mcp(_) => Ok(exit::OK),
    }
}

/// Ctrl-C: say which jobs are still running and how to finish them (or cancel them).
async fn interrupted(cancel: bool, simulated: bool) -> u8 {
    let ids: Vec<uuid::Uuid> = context::pending()
        .lock()
        .map(|p| p.iter().copied().collect())
        .unwrap_or_default();
    if ids.is_empty() {
        output::error("interrupted");
        return exit::INTERRUPTED;
    }
    if simulated {
        // The simulator lived in this process: its jobs end with it, and cost nothing.
        output::error(format!(
            "interrupted; the {} simulated job(s) ended with this process (nothing was charged, nothing to resume)",
            ids.len()
        ));
        return exit::INTERRUPTED;
    }
    if cancel {
        if let Some(krea) = context::client().get() {
            for id in &ids {
                match krea.jobs().cancel(*id).await {
                    Ok(_) => output::hint(format!("cancelled {id} (not charged)")),
                    Err(e) => output::hint(format!("could not cancel {id}: {e}")),
                }
            }
        }
        output::error(format!(
            "interrupted; {} pending job(s) cancelled",
            ids.len()
        ));
    } else {
        output::error(format!(
            "interrupted; {} job(s) are still running and will be charged:",
            ids.len()
        ));
        for id in &ids {
            output::hint(id);
        }
        let batch = context::batch_in_progress()
            .lock()
            .ok()
            .and_then(|b| b.clone());
        match &batch {
            Some((dir, resume)) => {
                if cmd_batch::write_contact_sheet(dir).is_ok() {
                    output::hint(format!(
                        "the contact sheet so far: {}",
                        dir.join("index.html").display()
                    ));
                }
                output::hint(format!(
                    "`{resume}` waits for them, downloads their files and sends the remaining lines (none twice)"
                ));
            }
            None => output::hint(
                "they are in the journal: `krea jobs resume` waits for them and downloads their files",
            ),
        }
        output::hint(
            "(or `krea jobs wait ID`; next time, --cancel-on-interrupt cancels them instead)",
        );
    }
    exit::INTERRUPTED
}

fn init_tracing(verbose: u8, quiet: bool) {
    if quiet && verbose == 0 {
        return;
    }
    if verbose == 0 {
        // The library's warnings (a damaged journal line, a model's retirement announced) are
        // for people: shown plainly.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("off,krea=warn"))
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .try_init();
        return;
    }
    let level = match verbose {
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // Our crates at the chosen level; dependencies one level quieter.
    let filter = format!("warn,krea={level},krea_cli={level},krea_gen={level},krea_sim={level}");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour only for a person: never escape codes into a pipe or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The command as typed, without its options: `image`, `jobs list`.
fn command_name(matches: &clap::ArgMatches) -> String {
    let mut parts = Vec::new();
    let mut at = matches;
    while let Some((name, sub)) = at.subcommand() {
        parts.push(name);
        at = sub;
    }
    parts.join(" ")
}

/// One thread runs everything: the work is waiting on the network, and on a thread of its
/// own each answer wakes the task that awaits it directly, where tokio's default (the command
/// on the main thread, connections on a worker per core) hands every answer across threads.
/// Measured by `cargo xtask bench overhead`: about 40% less CPU per job. What could hold the
/// thread (image previews, terminal prompts) runs on tokio's blocking pool.
fn main() -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli_main()),
        Err(e) => {
            eprintln!("krea: could not start its runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn cli_main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, matches)) => {
            // Simulated: --sim, or an API on this machine's loopback (a `krea sim` server), the
            // rule the contact sheet and the pipeline report follow too.
            let local_api = cli
                .global
                .base_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .is_some_and(|u| krea_gen::net::is_loopback_host(u.host_str()));
            output::envelope(command_name(&matches), cli.global.sim || local_api);
            cli
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            // `krea sim --help` and the like: without the options that mean nothing there.
            let args: Vec<String> = std::env::args().skip(1).collect();
            let command = args.iter().find(|a| !a.starts_with('-'));
            match command.and_then(|c| cli::help_for(c)) {
                Some(help) => {
                    output::raw(&help);
                    return ExitCode::SUCCESS;
                }
                None => e.exit(),
            }
        }
        Err(e) => e.exit(),
    };
    init_tracing(cli.global.verbose, cli.global.quiet);
    let code = tokio::select! {
        result = run(&cli) => match result {
            Ok(code) => code,
            Err(e) => {
                exit::report(&e);
                if cli.global.json {
                    output::json_always(&job_json::error(&e));
                }
                exit::code(&e)
            }
        },
        _ = tokio::signal::ctrl_c() => interrupted(cli.global.cancel_on_interrupt, cli.global.sim).await,
    };
    ExitCode::from(code)
}
