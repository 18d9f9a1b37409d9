//! A local, stateful Krea-compatible API server for tests, benchmarks, demos and offline use.
//!
//! It answers every operation of Krea's OpenAPI document on 127.0.0.1, validates requests with
//! the same generated types and model catalog the client uses, moves jobs through Krea's states
//! over seeded, scalable durations, serves real result files from a second origin, charges
//! compute units, delivers webhooks, paginates `GET /jobs`, and injects faults on request.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use krea_sim::Simulator;
//!
//! let sim = Simulator::builder().time_scale(0.001).seed(7).start().await?;
//! let http = krea_gen::net::client_builder().build().expect("http client");
//! let job: serde_json::Value = http
//!     .post(format!("{}/generate/image/bfl/flux-1-dev", sim.api_url()))
//!     .bearer_auth(sim.token())
//!     .json(&serde_json::json!({"prompt": "a lighthouse at dusk"}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(job["status"], "queued");
//! assert_eq!(sim.control().counters().jobs_created, 1);
//! # Ok(()) }
//! ```
//!
//! Behaviour worth knowing:
//! - Durations: the model's catalog time (else image 20 s, enhance 30 s, video 120 s, style
//!   training 600 s) times a seeded factor in [0.75, 1.25), times `time_scale`.
//! - `DELETE /jobs/{id}` cancels a pending job (no charge, webhook sent) and deletes an ended one.
//! - Deprecated camelCase fields are accepted until their sunset date, then rejected as unknown.
//! - `created_at` is strictly increasing (by at least 1 µs) so cursors never tie.
//! - Webhooks are only delivered to loopback URLs; others are refused with 400.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

mod api;
mod config;
mod files;
pub mod hostile;
mod job;
mod render;
mod rng;
mod server;
mod state;
mod upscale;
mod video;
mod webhook;

pub use api::generate::FOREIGN_PROMPT;
pub use api::node_apps::DEMO_APP;
pub use config::{
    DEFAULT_TOKEN, Fault, FaultRule, Overflow, Retirement, SimConfig, Unreadable,
    seedream_3_retirement,
};
pub use job::FAILURE_REASON;
pub use render::{MAX_SIDE, image_size, png as render_png};
pub use state::Counters;

use state::Sim;

/// A running simulator. Dropping it stops the listeners.
#[derive(Debug)]
pub struct Simulator {
    sim: Arc<Sim>,
    tasks: Vec<JoinHandle<()>>,
}

/// Configures a [`Simulator`]; every setting has a default (see [`SimConfig::default`]).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SimBuilder {
    config: SimConfig,
}

impl SimBuilder {
    /// Seeds durations, ids, fault draws and image pixels. Without it, durations, faults and
    /// pixels follow a fixed seed and ids a random one.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self.config.seeded = true;
        self
    }

    /// Multiplies job durations (0.01: a 20 s image takes 0.2 s; 0: jobs end at once).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.config.time_scale = scale.max(0.0);
        self
    }

    /// At most `cap` jobs run at once; beyond it, `overflow` decides.
    pub fn concurrency(mut self, cap: usize, overflow: Overflow) -> Self {
        self.config.concurrency = Some(cap);
        self.config.overflow = overflow;
        self
    }

    /// Starting balance in compute units.
    pub fn credits(mut self, units: f64) -> Self {
        self.config.credits = units;
        self
    }

    /// The bearer token the API accepts.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.token = token.into();
        self
    }

    /// Injects `fault` on `route` (`"GET /jobs/{id}"`, `"POST /generate/*"`, `"*"`) at `rate`.
    pub fn fault(mut self, route: impl Into<String>, fault: Fault, rate: f64) -> Self {
        self.config.faults.push(FaultRule {
            route: route.into(),
            fault,
            rate,
            body_contains: None,
        });
        self
    }

    /// Injects `fault` on every request to `route` whose body contains `text` (one line of a
    /// batch, say).
    pub fn fault_when(
        mut self,
        route: impl Into<String>,
        fault: Fault,
        text: impl Into<String>,
    ) -> Self {
        self.config.faults.push(FaultRule {
            route: route.into(),
            fault,
            rate: 1.0,
            body_contains: Some(text.into()),
        });
        self
    }

    /// Retires the model at `path` at `sunset` in favour of `replacement` (a model id).
    pub fn retire(
        mut self,
        path: impl Into<String>,
        sunset: chrono::DateTime<chrono::Utc>,
        replacement: impl Into<String>,
    ) -> Self {
        self.config.retirements.push(Retirement {
            path: path.into(),
            sunset,
            replacement: replacement.into(),
        });
        self
    }

    /// Videos as placeholder payloads of `bytes` each (an MP4 header and filler, streamed)
    /// instead of short playable MP4 files: for download tests and benchmarks.
    pub fn video_bytes(mut self, bytes: u64) -> Self {
        self.config.video_bytes = Some(bytes);
        self
    }

    /// Binds the API to this port (0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.config.ports.0 = port;
        self
    }

    /// Serves `document` at `GET /openapi.json` instead of the vendored description (e.g. an
    /// upstream document Krea published).
    pub fn openapi_document(mut self, document: serde_json::Value) -> Self {
        self.config.openapi = Some(std::sync::Arc::new(document));
        self
    }

    /// Pins the date the simulator believes it is (field sunsets, model retirements).
    pub fn today(mut self, date: chrono::NaiveDate) -> Self {
        self.config.today = Some(date);
        self
    }

    /// Also delivers webhooks to `host` (loopback always is).
    pub fn webhook_host(mut self, host: impl Into<String>) -> Self {
        self.config.webhook_hosts.push(host.into());
        self
    }

    /// Adds a network round trip to every answer (half each way).
    pub fn latency(mut self, round_trip: Duration) -> Self {
        self.config.latency = round_trip;
        self
    }

    /// Runs the server's clock `skew` off the real one (every stamp and `Date` header).
    pub fn clock_skew(mut self, skew: chrono::Duration) -> Self {
        self.config.clock_skew = skew;
        self
    }

    /// Writes job stamps in whole seconds.
    pub fn whole_second_stamps(mut self, yes: bool) -> Self {
        self.config.whole_second_stamps = yes;
        self
    }

    /// Stamps and commits a job `delay` after its request arrived (default 3 ms; zero for a
    /// backend that inserts at once).
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.config.commit_delay = delay;
        self
    }

    /// New jobs show in `GET /jobs` only `lag` after their creation.
    pub fn listing_lag(mut self, lag: Duration) -> Self {
        self.config.listing_lag = lag;
        self
    }

    /// Another program on the account creates a Flux job every `period`.
    pub fn foreign_every(mut self, period: Duration) -> Self {
        self.config.foreign_every = Some(period).filter(|p| !p.is_zero());
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// Binds 127.0.0.1 and starts serving.
    pub async fn start(self) -> std::io::Result<Simulator> {
        let api_listener = TcpListener::bind(("127.0.0.1", self.config.ports.0)).await?;
        let files_listener = TcpListener::bind(("127.0.0.1", self.config.ports.1)).await?;
        let api_url = format!("http://{}", api_listener.local_addr()?);
        let files_url = format!("http://{}", files_listener.local_addr()?);
        let sim = Sim::new(self.config, api_url, files_url);
        let api = api::router(sim.clone());
        let files = files::router(sim.clone(), api.clone());
        let mut tasks = vec![
            tokio::spawn(server::serve(api_listener, api)),
            tokio::spawn(server::serve(files_listener, files)),
        ];
        if let Some(period) = sim.config.foreign_every {
            tasks.push(tokio::spawn(another_program(sim.clone(), period)));
        }
        Ok(Simulator { sim, tasks })
    }
}

/// Another program on the same account: a Flux job every `period`.
async fn another_program(sim: Arc<Sim>, period: Duration) {
    let Some(flux) = krea_gen::catalog::model("bfl/flux-1-dev") else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        api::generate::create_foreign(&sim, flux, chrono::Duration::zero());
    }
}

/// The document a simulator serves at `GET /openapi.json` unless given another: the vendored
/// description it was built from, hand-written operations included. Tests derive variants from
/// it (a model added, a field changed) for [`SimBuilder::openapi_document`].
pub fn default_openapi_document() -> serde_json::Value {
    serde_json::from_str(krea_gen::OPENAPI_DOCUMENT)
        .map(|doc| krea_openapi::publish::served(&doc))
        .unwrap_or_default()
}

impl Simulator {
    /// A builder with the defaults.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    /// The API base URL (`http://127.0.0.1:PORT`).
    pub fn api_url(&self) -> &str {
        &self.sim.api_url
    }

    /// The file origin's base URL (another port: another origin).
    pub fn files_url(&self) -> &str {
        &self.sim.files_url
    }

    /// The bearer token the API accepts.
    pub fn token(&self) -> &str {
        &self.sim.config.token
    }

    /// Counters, faults and credits, from outside the HTTP API.
    pub fn control(&self) -> Control {
        Control {
            sim: self.sim.clone(),
        }
    }

    /// Stops serving.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A handle on a running simulator's state. Also served, read-only, at `GET /_sim/counters`.
#[derive(Debug, Clone)]
pub struct Control {
    sim: Arc<Sim>,
}

impl Control {
    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.sim.lock().counters(Instant::now())
    }

    /// Zeroes the request and delivery counters (jobs stay).
    pub fn reset_counters(&self) {
        self.sim.lock().counters = Counters::default();
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        let mut st = self.sim.lock();
        st.faults = faults;
    }

    /// The balance in compute units.
    pub fn credits(&self) -> f64 {
        let mut st = self.sim.lock();
        st.settle(Instant::now());
        st.credits
    }

    /// Sets the balance in compute units.
    pub fn set_credits(&self, units: f64) {
        self.sim.lock().credits = units;
    }

    /// Every job id but other programs' ([`Control::foreign_job_ids`]), in the order of
    /// their stamps.
    pub fn job_ids(&self) -> Vec<Uuid> {
        let st = self.sim.lock();
        st.order
            .iter()
            .filter(|id| st.jobs.get(id).is_some_and(|j| !j.foreign))
            .copied()
            .collect()
    }

    /// The jobs another program on the account created ([`Fault::ForeignTwin`],
    /// [`SimBuilder::foreign_every`]).
    pub fn foreign_job_ids(&self) -> Vec<Uuid> {
        let st = self.sim.lock();
        st.order
            .iter()
            .filter(|id| st.jobs.get(id).is_some_and(|j| j.foreign))
            .copied()
            .collect()
    }

    /// When job `id` reached (or will reach) its terminal state, as a `std` instant; `None` if
    /// unknown or never. Benchmarks measure a client's lag against it.
    pub fn finish_instant(&self, id: Uuid) -> Option<std::time::Instant> {
        let st = self.sim.lock();
        let job = st.jobs.get(&id)?;
        job.cancelled
            .map(|(at, _)| at)
            .or(job.finish)
            .map(Instant::into_std)
    }

    /// Every job's request body but other programs', in the order of their stamps (tests
    /// check that no request was sent twice).
    pub fn requests(&self) -> Vec<(Uuid, serde_json::Value)> {
        let st = self.sim.lock();
        st.order
            .iter()
            .filter_map(|id| st.jobs.get(id).filter(|j| !j.foreign))
            .map(|j| (j.id, j.request.clone()))
            .collect()
    }

    /// The state of job `id` now (`None` if unknown).
    pub fn status(&self, id: Uuid) -> Option<String> {
        let st = self.sim.lock();
        st.jobs
            .get(&id)
            .map(|j| j.status(Instant::now()).to_string())
    }

    /// How long job `id` runs (start to finish, not counting time in the backlog); `None` if
    /// unknown or never finishing.
    pub fn run_time(&self, id: Uuid) -> Option<Duration> {
        let st = self.sim.lock();
        let job = st.jobs.get(&id)?;
        Some(job.finish?.duration_since(job.start))
    }

    /// The bytes of result file `n` of job `id`, as the file origin serves them (for tests
    /// that compare downloads); `None` before completion.
    pub fn result_bytes(&self, id: Uuid, n: usize) -> Option<Vec<u8>> {
        let (output, fingerprint, label) = {
            let st = self.sim.lock();
            let job = st.jobs.get(&id)?;
            (
                *job.outputs.get(n)?,
                job.fingerprint ^ n as u64,
                job.label(),
            )
        };
        match output {
            render::Output::Placeholder { format, bytes } => Some(render::placeholder_chunk(
                format,
                fingerprint,
                bytes,
                0,
                usize::try_from(bytes).ok()?,
            )),
            rendered => rendered.render(fingerprint, &label),
        }
    }

    /// Waits until every job created so far has ended, or `timeout` passes.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let latest = {
                let st = self.sim.lock();
                let now = Instant::now();
                st.jobs
                    .values()
                    .filter(|j| j.ended(now).is_none())
                    .filter_map(|j| j.finish)
                    .max()
            };
            match latest {
                None => return true,
                Some(_) if Instant::now() >= deadline => return false,
                Some(at) => tokio::time::sleep_until(at.min(deadline)).await,
            }
        }
    }
}
