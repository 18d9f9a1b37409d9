//! `krea mcp`: the library's calls as Model Context Protocol tools for assistants, over stdio
//! or Streamable HTTP (rmcp). Inputs are checked and priced before anything is sent; waits are bounded and end in
//! `pending` with the job id, never in a cancel; every job is journaled, so `wait_job` and
//! `resume_jobs` finish what a wait, a disconnect or a restart left running. Files are written
//! on this machine, and every result says where.

mod args;
mod bounds;
mod catalog;
mod generate;
mod http;
mod jobs;
mod listing;
mod money;
mod outputs;
mod pipeline;
mod preview;
mod reply;
mod wait;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{Peer, RoleServer, ServerHandler, ServiceExt, tool_handler};
use uuid::Uuid;

use crate::cli::{Global, McpArgs};
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};

/// The server: one client for every tool, the session's spending, and the jobs some call is
/// waiting for right now.
#[derive(Clone)]
pub struct Server {
    ctx: Arc<Ctx>,
    money: krea::Budget,
    /// What the assistant may read and write.
    bounds: Arc<bounds::Bounds>,
    /// Reservations of requests whose outcome is not known yet.
    unsettled: Arc<money::Unsettled>,
    active: Arc<Mutex<HashSet<Uuid>>>,
    runs: pipeline::Runs,
    tool_router: ToolRouter<Server>,
}

/// How long a client has to list its roots.
const ROOTS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const INSTRUCTIONS: &str = "Krea image, video and upscaling models through a local client. \
Files are saved on this machine; results give their paths and cost in compute units (CU). \
estimate_cost prices a call without sending it. A generation that outlasts its wait answers \
status `pending` with a job id: call wait_job with it (never submit again, that pays twice). \
resume_jobs finishes every job a wait or a restart left behind.";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("krea", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

impl Server {
    fn new(ctx: Ctx, bounds: bounds::Bounds, money: krea::Budget, schemas: bool) -> Server {
        Server {
            ctx: Arc::new(ctx),
            bounds: Arc::new(bounds),
            money,
            unsettled: Arc::default(),
            active: Arc::default(),
            runs: Arc::default(),
            tool_router: {
                let mut router = Self::catalog_router()
                    + Self::generate_router()
                    + Self::jobs_router()
                    + Self::pipeline_router();
                if schemas {
                    outputs::publish(&mut router);
                }
                listing::compact(&mut router);
                router
            },
        }
    }

    /// `path` resolved, if this session may read it: under the output directory, an
    /// `--allow-read` directory, or a root the client declares (asked only when the others do
    /// not allow it, and only of a client that declared roots). Else why not.
    // Roots leave the protocol with SEP-2577 (2026-07-28); clients of the versions before it
    // still declare them, and for those they are the user's word on what may be read.
    #[allow(deprecated)]
    async fn readable(&self, path: &str, peer: &Peer<RoleServer>) -> Result<PathBuf, String> {
        let refused = match self.bounds.readable(path, &[]) {
            Ok(p) => return Ok(p),
            Err(why) => why,
        };
        let declares_roots = peer
            .peer_info()
            .is_some_and(|info| info.capabilities.roots.is_some());
        if !declares_roots {
            return Err(refused);
        }
        let asked = tokio::time::timeout(ROOTS_WAIT, peer.list_roots()).await;
        match asked {
            Ok(Ok(list)) => {
                let roots = bounds::root_dirs(list.roots.iter().map(|r| r.uri.as_str()));
                self.bounds.readable(path, &roots)
            }
            _ => Err(refused),
        }
    }

    /// Marks `id` as waited for until the guard drops.
    fn waiting_for(&self, id: Uuid) -> Active {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        Active {
            set: self.active.clone(),
            id,
        }
    }

    fn is_active(&self, id: Uuid) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }
}

/// A job some call is waiting for; forgotten when the call ends, however it ends.
struct Active {
    set: Arc<Mutex<HashSet<Uuid>>>,
    id: Uuid,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Where files go: `--output-dir`, else `krea` in the pictures directory, else here.
fn output_dir(a: &McpArgs) -> anyhow::Result<PathBuf> {
    let dir = match &a.output_dir {
        Some(d) => d.clone(),
        None => match dirs::picture_dir() {
            Some(p) => p.join("krea"),
            None => std::env::current_dir()?,
        },
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        Usage(format!(
            "cannot use {} for the generated files ({e}): give another with --output-dir",
            dir.display()
        ))
    })?;
    Ok(std::path::absolute(&dir)?)
}

/// A compute-unit limit from an option.
fn limit(flag: &str, value: Option<f64>) -> anyhow::Result<Option<f64>> {
    match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => {
            Err(Usage(format!("{flag} takes a number of compute units, not {v}")).into())
        }
        v => Ok(v),
    }
}

/// `krea mcp`: serves until the client closes stdin, or with `--http` until Ctrl-C or SIGTERM.
pub async fn run(g: &Global, a: &McpArgs) -> anyhow::Result<u8> {
    let money = krea::Budget::new(
        limit("--max-cu-per-call", a.max_cu_per_call)?,
        limit("--budget-cu", a.budget_cu)?,
    );
    let out_dir = output_dir(a)?;
    let bounds = bounds::Bounds::new(&out_dir, &a.allow_read).map_err(Usage)?;
    // With --sim the simulator lives as long as this process, and so does its journal.
    let scratch = g
        .sim
        .then(|| std::env::temp_dir().join(format!("krea-mcp-sim-{}", std::process::id())));
    let ctx = context::connect_with(g, scratch.as_ref().map(|d| d.join("journal.jsonl"))).await?;
    let server = Server::new(ctx, bounds, money, a.output_schemas);
    let served = match a.http {
        Some(addr) => http::serve(server, addr, a).await,
        None => {
            async {
                let service = server.serve(rmcp::transport::stdio()).await?;
                service.waiting().await?;
                anyhow::Ok(())
            }
            .await
        }
    };
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    served?;
    Ok(exit::OK)
}
