//! The simulator's shared state. One mutex; no `.await` while it is held.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use krea_gen::catalog::{Kind, ModelSpec};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::{Fault, FaultRule, Overflow, SimConfig, default_seconds};
use crate::job::{Origin, SimJob};
use crate::render::{self, ImageFormat, Output, Placeholder};
use crate::rng;

/// What the simulator has seen. Read it with [`crate::Control::counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests per route (`"GET /jobs/{id}"`) and status (0 = connection closed, no answer).
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Jobs created (each paid for unless it failed or was cancelled).
    pub jobs_created: u64,
    /// Jobs per current state (`completed`, `failed`, `cancelled`, pending ones by name).
    pub jobs_by_state: BTreeMap<String, u64>,
    /// Requests to the file origin.
    pub file_requests: u64,
    /// Requests to the file origin that carried an `Authorization` header. Should stay 0.
    pub file_authorization_headers: u64,
    /// Webhook POSTs answered 2xx.
    pub webhooks_delivered: u64,
    /// Webhook deliveries given up after retries.
    pub webhooks_failed: u64,
    /// Webhooks accepted for a host that is neither loopback nor allowed: never sent.
    pub webhooks_undeliverable: u64,
    /// Connections closed by an injected reset.
    pub connections_reset: u64,
    /// Jobs another program on the same account created ([`crate::Fault::ForeignTwin`],
    /// [`crate::SimConfig::foreign_every`]): not in `jobs_created`.
    pub foreign_jobs_created: u64,
    /// The most generation requests (`POST /generate/...`) being handled at once: how
    /// concurrently a client sends paid requests.
    pub peak_concurrent_generations: u64,
    /// Generation requests being handled now.
    #[serde(skip)]
    pub concurrent_generations: u64,
}

impl Counters {
    /// All requests to `route`, whatever their status.
    pub fn requests_to(&self, route: &str) -> u64 {
        self.requests.get(route).map_or(0, |by| by.values().sum())
    }

    /// Requests to `route` answered `status`.
    pub fn responses(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|by| by.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to routes starting with `prefix` (`"POST /generate/"`).
    pub fn requests_with_prefix(&self, prefix: &str) -> u64 {
        self.requests
            .iter()
            .filter(|(r, _)| r.starts_with(prefix))
            .map(|(_, by)| by.values().sum::<u64>())
            .sum()
    }

    /// Requests anywhere on the API.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().flat_map(|by| by.values()).sum()
    }
}

/// An uploaded asset.
#[derive(Debug, Clone)]
pub struct Asset {
    pub id: Uuid,
    pub file_name: String,
    pub mime: &'static str,
    pub bytes: bytes::Bytes,
    pub description: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub dimensions: Option<(u32, u32)>,
}

/// A style (LoRA): built in, or trained through the API.
#[derive(Debug, Clone)]
pub struct Style {
    pub id: String,
    pub title: Option<String>,
    pub urls: Vec<String>,
    pub public: bool,
    pub cover_url: Option<String>,
    pub prompt: String,
    pub models: Vec<String>,
    /// Trained by this account (else a Krea-official style).
    pub owned: bool,
    pub created_at: DateTime<Utc>,
    /// The training job; the style exists once it has completed.
    pub training_job: Option<Uuid>,
    pub share_token: Option<String>,
    pub shared_with_workspace: bool,
}

/// Everything mutable.
#[derive(Debug)]
pub struct State {
    pub jobs: HashMap<Uuid, SimJob>,
    /// Job ids in the order of their `created_at` stamps (oldest first).
    pub order: Vec<Uuid>,
    last_created: Option<DateTime<Utc>>,
    /// The server's clock minus the real one.
    clock_skew: chrono::Duration,
    /// Backlog mode: when each concurrency slot frees up.
    slots: Vec<Instant>,
    pub credits: f64,
    /// Jobs that will fail and have not been refunded yet.
    pending_refunds: Vec<Uuid>,
    pub faults: Vec<FaultRule>,
    fault_draws: HashMap<usize, u64>,
    burst_left: HashMap<usize, u32>,
    pub assets: BTreeMap<Uuid, Asset>,
    pub styles: BTreeMap<String, Style>,
    pub counters: Counters,
    /// Seeds ids of things that are not jobs (assets, styles, share tokens).
    pub id_seq: u64,
}

/// The simulator: configuration, addresses, state.
#[derive(Debug)]
pub struct Sim {
    pub config: SimConfig,
    pub api_url: String,
    pub files_url: String,
    state: Mutex<State>,
    /// Delivers webhooks.
    pub http: reqwest::Client,
    /// What `GET /openapi.json` answers, serialized once.
    pub openapi_json: bytes::Bytes,
    /// The query parameters that document declares, checked on every request.
    pub query_rules: crate::api::query::QueryRules,
    /// Seeds ids: the seed when one was given, else a random one.
    id_seed: u64,
}

/// Why a generation was not accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// 402: the balance is below the cost.
    Credits { cost: f64, balance: f64 },
    /// 429: the concurrency cap is reached (reject mode).
    Capacity { cap: usize },
}

impl Sim {
    /// The time the simulator believes it is: its (possibly skewed) clock, on the pinned date
    /// if one is set.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        let now = Utc::now() + self.config.clock_skew;
        match self.config.today {
            Some(day) => day.and_time(now.time()).and_utc(),
            None => now,
        }
    }

    /// Whether a webhook to `url` is really delivered (loopback, or an allowed host).
    pub fn delivers_to(&self, url: &str) -> bool {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(String::from));
        krea_gen::net::is_loopback_host(host.as_deref())
            || host.is_some_and(|h| self.config.webhook_hosts.contains(&h))
    }

    pub fn new(config: SimConfig, api_url: String, files_url: String) -> Arc<Sim> {
        let http = krea_gen::net::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let state = State {
            jobs: HashMap::new(),
            order: Vec::new(),
            last_created: None,
            clock_skew: config.clock_skew,
            slots: vec![Instant::now(); config.concurrency.unwrap_or(0)],
            credits: config.credits,
            pending_refunds: Vec::new(),
            faults: config.faults.clone(),
            fault_draws: HashMap::new(),
            burst_left: HashMap::new(),
            assets: BTreeMap::new(),
            styles: crate::api::styles::builtin_styles(),
            counters: Counters::default(),
            id_seq: 0,
        };
        let mut document = match &config.openapi {
            Some(doc) => doc.as_ref().clone(),
            None => crate::default_openapi_document(),
        };
        // Clients that follow `servers` must reach this simulator, not api.krea.ai.
        if let Some(doc) = document.as_object_mut() {
            doc.insert("servers".into(), serde_json::json!([{ "url": api_url }]));
        }
        let openapi_json = serde_json::to_vec(&document).unwrap_or_default().into();
        let query_rules = crate::api::query::QueryRules::from_document(&document);
        let id_seed = match config.seeded {
            true => config.seed,
            false => Uuid::new_v4().as_u64_pair().0,
        };
        Arc::new(Sim {
            id_seed,
            config,
            api_url,
            files_url,
            state: Mutex::new(state),
            http,
            openapi_json,
            query_rules,
        })
    }

    /// The state, even if a handler panicked while holding it.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The id of the `n`th thing of `stream`: the same for the same seed.
    pub fn uuid(&self, stream: &str, n: u64) -> Uuid {
        let hi = rng::draw(self.id_seed, rng::hash(stream.as_bytes()), n);
        let lo = rng::draw(self.id_seed, rng::hash(stream.as_bytes()) ^ 1, n);
        uuid::Builder::from_random_bytes(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
            .into_uuid()
    }

    fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.config.time_scale).max(0.0))
    }
}

impl State {
    /// Decides whether a fault of one of `kinds` hits this request on `route`.
    pub fn draw_fault(
        &mut self,
        seed: u64,
        route: &str,
        wanted: fn(&Fault) -> bool,
    ) -> Option<Fault> {
        self.draw_fault_for(seed, route, None, wanted)
    }

    /// [`State::draw_fault`] for a request with `body` (rules limited to some bodies apply).
    pub fn draw_fault_for(
        &mut self,
        seed: u64,
        route: &str,
        body: Option<&[u8]>,
        wanted: fn(&Fault) -> bool,
    ) -> Option<Fault> {
        for (i, rule) in self.faults.iter().enumerate() {
            if !wanted(&rule.fault) || !rule.matches(route) || !rule.takes_body(body) {
                continue;
            }
            if let Some(left) = self.burst_left.get_mut(&i).filter(|l| **l > 0) {
                *left -= 1;
                return Some(rule.fault.clone());
            }
            let n = self.fault_draws.entry(i).or_default();
            *n += 1;
            if rng::unit(seed, 0xfa017 + i as u64, *n) < rule.rate {
                if let Fault::RateLimitBurst { burst, .. } = rule.fault {
                    self.burst_left.insert(i, burst.saturating_sub(1));
                }
                return Some(rule.fault.clone());
            }
        }
        None
    }

    /// Whether a rule limited to some bodies targets `route` (the body is then read first).
    pub fn wants_body(&self, route: &str) -> bool {
        self.faults
            .iter()
            .any(|r| r.body_contains.is_some() && r.matches(route))
    }

    /// Applies refunds for jobs that have failed by `now`.
    pub fn settle(&mut self, now: Instant) {
        let jobs = &mut self.jobs;
        let mut refunded = 0.0;
        self.pending_refunds.retain(|id| match jobs.get_mut(id) {
            Some(job) if job.ended(now).is_some() => {
                if !job.refunded {
                    job.refunded = true;
                    refunded += job.cost;
                }
                false
            }
            Some(_) => true,
            None => false,
        });
        self.credits += refunded;
    }

    /// Cancels job `id` at `now` (refunding it). `false` if it had already ended.
    pub fn cancel(&mut self, id: Uuid, now: Instant) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        if job.ended(now).is_some() {
            return false;
        }
        job.cancelled = Some((now, Utc::now() + self.clock_skew));
        if !job.refunded {
            job.refunded = true;
            self.credits += job.cost;
        }
        // Free the slot if this job was the one holding it.
        if let (Some(slot), Some(finish)) = (job.slot, job.finish)
            && self.slots.get(slot) == Some(&finish)
        {
            self.slots[slot] = now;
        }
        true
    }

    /// Counts a finished request.
    pub fn count(&mut self, route: &str, status: u16) {
        *self
            .counters
            .requests
            .entry(route.to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// A snapshot of the counters with per-state job counts for `now`.
    pub fn counters(&self, now: Instant) -> Counters {
        let mut c = self.counters.clone();
        for job in self.jobs.values() {
            *c.jobs_by_state
                .entry(job.status(now).as_str().to_string())
                .or_default() += 1;
        }
        c
    }

    /// The server's wall clock (skewed as configured).
    pub fn wall_now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_skew
    }

    fn next_created_at(&mut self) -> DateTime<Utc> {
        // Cursor pagination needs distinct timestamps: at least 1 µs after the previous job.
        let now = self.wall_now();
        let at = match self.last_created {
            Some(last) if now <= last => last + chrono::Duration::microseconds(1),
            _ => now,
        };
        self.last_created = Some(at);
        at
    }

    /// Puts `job` into the jobs and into `order` by its stamp (nudged by 1 µs until no other
    /// job has it, so cursors never tie).
    fn insert(&mut self, mut job: SimJob) -> SimJob {
        loop {
            let at = self.order.partition_point(|id| {
                self.jobs
                    .get(id)
                    .is_some_and(|j| j.created_at <= job.created_at)
            });
            let tie = at > 0
                && self
                    .jobs
                    .get(&self.order[at - 1])
                    .is_some_and(|j| j.created_at == job.created_at);
            if tie {
                job.created_at += chrono::Duration::microseconds(1);
                continue;
            }
            self.order.insert(at, job.id);
            break;
        }
        self.last_created = self.last_created.max(Some(job.created_at));
        self.jobs.insert(job.id, job.clone());
        job
    }
}

/// What to create.
#[derive(Debug)]
pub struct NewJob {
    pub origin: Origin,
    pub request: Value,
    /// Typical duration in seconds, before the time scale.
    pub seconds: f64,
    pub cost: f64,
    pub outputs: Vec<Output>,
    pub webhook: Option<String>,
    pub fails: bool,
    pub stuck: bool,
    pub hostile: bool,
    /// Another program's job (not counted in `jobs_created`), stamped this far from now.
    pub foreign: Option<chrono::Duration>,
    /// An enhance job's input, where the simulator could reach it.
    pub input: Option<crate::upscale::Input>,
}

impl Sim {
    /// Typical seconds for a model: the catalog's figure, else the kind's default.
    pub fn model_seconds(model: &ModelSpec) -> f64 {
        model
            .typical_seconds
            .unwrap_or_else(|| default_seconds(model.kind))
    }

    /// The outputs a generation request produces.
    pub fn outputs_for(&self, model: &ModelSpec, request: &Value) -> Vec<Output> {
        let count = ["num_images", "batch_size", "n", "number_of_images"]
            .iter()
            .find_map(|k| request.get(*k).and_then(Value::as_u64))
            .unwrap_or(1)
            .clamp(1, 4) as usize;
        let format = request
            .get("output_format")
            .and_then(Value::as_str)
            .or_else(|| model.parameter("output_format")?.default.as_ref()?.as_str());
        let image = |format| {
            let (width, height) = render::image_size(request);
            Output::Image {
                format,
                width,
                height,
            }
        };
        let one = match (model.kind, format) {
            (Kind::Video, _) => match self.config.video_bytes {
                Some(bytes) => Output::Placeholder {
                    format: Placeholder::Mp4,
                    bytes,
                },
                None => {
                    let (width, height) = crate::video::size(request);
                    Output::Video { width, height }
                }
            },
            (_, Some("jpg" | "jpeg")) => image(ImageFormat::Jpeg),
            (_, Some("webp")) => image(ImageFormat::Webp),
            (Kind::Image | Kind::Enhance, _) => image(ImageFormat::Png),
        };
        vec![one; count]
    }

    /// The backend's work before it inserts a job ([`SimConfig::commit_delay`]).
    pub async fn commit_pause(&self) {
        if !self.config.commit_delay.is_zero() {
            tokio::time::sleep(self.config.commit_delay).await;
        }
    }

    /// Creates a job, or says why not (402, 429). Charges it.
    pub fn create_job(&self, new: NewJob) -> Result<SimJob, Refusal> {
        let now = Instant::now();
        let mut st = self.lock();
        st.settle(now);
        if st.credits < new.cost {
            return Err(Refusal::Credits {
                cost: new.cost,
                balance: st.credits,
            });
        }
        let seq = st.order.len() as u64;
        let running_cap = self.config.concurrency;
        let mut start = now;
        let mut slot = None;
        if let Some(cap) = running_cap.filter(|c| *c > 0) {
            match self.config.overflow {
                Overflow::Reject => {
                    let running = st.jobs.values().filter(|j| j.is_running(now)).count();
                    if running >= cap {
                        return Err(Refusal::Capacity { cap });
                    }
                }
                Overflow::Backlog => {
                    let (i, free) = st
                        .slots
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, t)| **t)
                        .map(|(i, t)| (i, *t))
                        .unwrap_or((0, now));
                    start = free.max(now);
                    slot = Some(i);
                }
            }
        }
        // Around the typical time: a seeded factor in [0.75, 1.25).
        let factor = 0.75 + 0.5 * rng::unit(self.config.seed, 0xd0a7, seq);
        let finish = (!new.stuck).then(|| start + self.scaled(new.seconds * factor));
        if let Some(i) = slot {
            st.slots[i] = finish.unwrap_or(now + Duration::from_secs(86_400 * 365));
        }
        let id = self.uuid(
            if new.foreign.is_some() {
                "foreign-job"
            } else {
                "job"
            },
            seq,
        );
        let fingerprint = rng::hash(
            format!(
                "{}|{}|{}",
                self.config.seed,
                job_model_id(&new.origin),
                rng::canonical(&new.request)
            )
            .as_bytes(),
        );
        let created_at = match new.foreign {
            Some(offset) => st.wall_now() + offset,
            None => st.next_created_at(),
        };
        let job = SimJob {
            id,
            origin: new.origin,
            request: new.request,
            hostile: new.hostile,
            created_at,
            created: now,
            visible_at: now + self.config.listing_lag,
            whole_seconds: self.config.whole_second_stamps,
            foreign: new.foreign.is_some(),
            start,
            finish,
            fails: new.fails,
            cancelled: None,
            cost: new.cost,
            refunded: false,
            outputs: new.outputs,
            fingerprint,
            webhook: new.webhook,
            input: new.input,
            deleted: false,
            slot,
        };
        st.credits -= new.cost;
        if new.fails {
            st.pending_refunds.push(id);
        }
        if job.foreign {
            st.counters.foreign_jobs_created += 1;
        } else {
            st.counters.jobs_created += 1;
        }
        Ok(st.insert(job))
    }
}

fn job_model_id(origin: &Origin) -> &str {
    match origin {
        Origin::Generation(m) => &m.id,
        Origin::StyleTraining { .. } => "style-training",
        Origin::NodeApp { app_id } => app_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(hosts: &[&str]) -> Arc<Sim> {
        let config = SimConfig {
            webhook_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..SimConfig::default()
        };
        Sim::new(
            config,
            "http://127.0.0.1:1".into(),
            "http://127.0.0.1:2".into(),
        )
    }

    #[test]
    fn webhooks_go_to_loopback_and_allowed_hosts_only() {
        let plain = sim(&[]);
        assert!(plain.delivers_to("http://127.0.0.1:9/hook"));
        assert!(plain.delivers_to("http://[::1]:9/hook"));
        assert!(!plain.delivers_to("https://hooks.example.com/x"));
        let allowed = sim(&["hooks.example.com"]);
        assert!(allowed.delivers_to("https://hooks.example.com/x"));
        assert!(!allowed.delivers_to("https://other.example.com/x"));
    }

    #[test]
    fn the_pinned_date_is_the_simulators_today() {
        let config = SimConfig {
            today: chrono::NaiveDate::from_ymd_opt(2026, 6, 19),
            ..SimConfig::default()
        };
        let sim = Sim::new(config, String::new(), String::new());
        assert_eq!(sim.now().date_naive().to_string(), "2026-06-19");
    }
}
