//! Exit codes by error class (listed in `--help`), and the one- or two-line error report.

use crate::output;

/// Success.
pub const OK: u8 = 0;
/// A job failed.
pub const JOB_FAILED: u8 = 1;
/// Usage error or invalid request: nothing was sent.
pub const USAGE: u8 = 2;
/// Token missing or refused, or out of credits.
pub const AUTH: u8 = 3;
/// A job did not finish in time.
pub const TIMEOUT: u8 = 4;
/// Network or API trouble.
pub const NETWORK: u8 = 5;
/// Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// A problem with what the user typed, found before any request.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The message when no token is configured.
pub const MISSING_TOKEN: &str = "Krea API token not configured: run `krea auth login`, or set KREA_API_TOKEN (create a token at https://krea.ai/settings/api-tokens); or try everything with --sim";

/// The exit code for an error.
pub fn code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<Usage>().is_some() {
        return USAGE;
    }
    e.downcast_ref::<krea::Error>().map_or(JOB_FAILED, code_of)
}

/// The exit code for a client error (the library's one table).
pub fn code_of(k: &krea::Error) -> u8 {
    k.exit_class().code()
}

/// The exit code for a batch item: the same as its error met directly (the library's table).
pub fn code_of_item(item: &krea::ItemState) -> u8 {
    item.exit_class().code()
}

/// Prints why a batch item did not complete, with what to do.
pub fn report_item(item: &krea::ItemState) {
    let error = item.error.as_deref().unwrap_or("not finished");
    // A job that ran past the deadline (not one whose files could not be fetched: that
    // error is said as it is).
    let ran_on = matches!(
        item.error_kind,
        None | Some(krea::ErrorKind::Timeout | krea::ErrorKind::DeadlineExceeded)
    );
    if let (krea::ItemStatus::TimedOut, Some(id), true) = (item.status, item.job_id, ran_on) {
        // The job id once, in the command that continues it.
        output::error(format!(
            "{}: its job did not finish in time and runs on (not cancelled)",
            item.label
        ));
        output::hint(format!("continue with: krea jobs wait {id}"));
        return;
    }
    let what = match item.job_id {
        Some(id) if !error.contains(&id.to_string()) => format!("{} (job {id})", item.label),
        _ => item.label.clone(),
    };
    output::error(format!("{what}: {error}"));
    match (item.status, item.job_id) {
        (krea::ItemStatus::TimedOut, Some(id)) => {
            output::hint(format!("continue with: krea jobs wait {id}"))
        }
        (krea::ItemStatus::Unknown, _) => output::hint(
            "its answer was lost and settling had not decided by the deadline; `krea jobs resume` finishes it (it is never sent again while it may have created a job)",
        ),
        _ => {}
    }
}

/// Notes the lines whose lost answers were settled with doubt: their files may be another
/// line's (or another program's).
pub fn report_uncertain(out: &output::Out, items: &[krea::ItemState]) {
    for item in items {
        if let Some(why) = &item.uncertain {
            out.warn(format!(
                "{}: which job is its own is uncertain ({}); its file may be another line's",
                item.label,
                krea::redact::for_display(why)
            ));
        }
    }
}

/// Prints `e` in one or two lines that say what to do.
pub fn report(e: &anyhow::Error) {
    match e.downcast_ref::<krea::Error>() {
        Some(k) => report_error(k),
        None => output::error(format!("{e:#}")),
    }
}

/// Who is told what to do next: a person at a terminal (commands) or an assistant over MCP
/// (tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    Cli,
    Mcp,
}

/// A client error as one line, then the hints that say what to do next.
pub fn explain(e: &krea::Error, voice: Voice) -> (String, Vec<String>) {
    let wait = |id: &uuid::Uuid| match voice {
        Voice::Cli => format!("continue with: krea jobs wait {id}"),
        Voice::Mcp => format!(
            "the job runs on (nothing was cancelled): call wait_job with job_id {id} to keep waiting"
        ),
    };
    match e {
        krea::Error::MissingToken => (MISSING_TOKEN.to_string(), Vec::new()),
        // A job the API does not know: in our words, not the route's.
        krea::Error::Api {
            status: 404,
            operation,
            ..
        } if operation.contains(" /jobs/") => (
            "the API knows no such job for this token (404)".to_string(),
            vec![match voice {
                Voice::Cli => "`krea jobs list` shows this account's jobs".to_string(),
                Voice::Mcp => "list_jobs shows this account's jobs".to_string(),
            }],
        ),
        krea::Error::InvalidRequest {
            subject: model,
            problems,
        } => {
            let mut hints: Vec<String> = problems.iter().map(ToString::to_string).collect();
            // Where to read the parameters, when a problem is with one of them.
            let about_a_parameter = |m: &krea::models::ModelSpec| {
                problems.iter().any(|p| {
                    let field = p.field.as_deref().unwrap_or_default();
                    let first = field.split(['.', '[', ',']).next().unwrap_or_default();
                    m.parameter(first).is_some()
                })
            };
            let exists = problems
                .iter()
                .any(|p| p.field.as_deref() == Some("output") && p.message.contains(" exists "));
            if exists && voice == Voice::Cli {
                hints.push("--force replaces the existing file".into());
            }
            if krea::models::resolve(model).is_ok_and(about_a_parameter) {
                hints.push(match voice {
                    Voice::Cli => format!("`krea models {model}` lists its parameters"),
                    Voice::Mcp => {
                        format!("get_model_schema with model {model:?} lists its parameters")
                    }
                });
            }
            (
                format!("invalid request for {model} (nothing was sent):"),
                hints,
            )
        }
        krea::Error::Timeout { job_id, .. } | krea::Error::Polling { job_id, .. } => {
            (e.report(), vec![wait(job_id)])
        }
        krea::Error::OutcomeUnknown(u) => {
            let hint = match (u.job_id, voice) {
                (Some(id), Voice::Cli) => format!("its job: krea jobs wait {id}"),
                (Some(id), Voice::Mcp) => wait(&id),
                (None, Voice::Cli) => {
                    "find out whether it created a job (nothing is paid twice): krea jobs settle"
                        .to_string()
                }
                (None, Voice::Mcp) => "call resume_jobs: it finds out whether the request created a job, and finishes it (nothing is paid twice); do not send the request again".to_string(),
            };
            (e.report(), vec![hint])
        }
        other => (other.report(), Vec::new()),
    }
}

/// Prints a client error in one or two lines that say what to do.
pub fn report_error(e: &krea::Error) {
    let (head, hints) = explain(e, Voice::Cli);
    output::error(head);
    hints.into_iter().for_each(output::hint);
}
