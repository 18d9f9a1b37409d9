//! The command line, as clap derive structs. Each doc comment is the help text.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Shown under `krea -h`: the first thing to try.
pub const TRY_IT: &str = "Try it with no account:  krea --sim image \"a lighthouse at dusk\"
More options and the exit codes: krea --help";

/// Shown under every `--help`.
pub const EXIT_CODES: &str = "Exit codes:
  0  success
  1  a job failed (or a file could not be written)
  2  usage error or invalid request (nothing was sent)
  3  authentication or credits (token missing or refused, out of compute units)
  4  timeout (the job may still finish: `krea jobs wait ID` continues)
  5  network or API error
  130 interrupted (pending jobs keep running; `krea jobs resume` finishes them)";

/// Generate images and videos with the Krea API.
///
/// Run `krea --sim image "a lighthouse at dusk"` to try it without an account.
#[derive(Debug, Parser)]
#[command(
    name = "krea",
    version,
    after_help = TRY_IT,
    after_long_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// A model name: any text is taken (the library resolves ids, aliases, slugs and paths, and
/// says what is wrong); the ids and aliases are offered to shell completion.
#[derive(Debug, Clone, Copy)]
pub struct ModelName;

impl clap::builder::TypedValueParser for ModelName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        let ids = krea::models::all().map(|m| m.id.as_str());
        let aliases = krea::models::ALIASES.iter().map(|(alias, _)| *alias);
        Some(Box::new(
            ids.chain(aliases).map(clap::builder::PossibleValue::new),
        ))
    }
}

/// Options for every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// API token; never printed. Else KREA_API_TOKEN, else the one `krea auth login` stored
    /// (create one at https://krea.ai/settings/api-tokens)
    #[arg(hide_short_help = true, long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Which stored token `krea auth` and every command use
    #[arg(
        long,
        global = true,
        env = "KREA_PROFILE",
        default_value = krea::credentials::DEFAULT_PROFILE,
        value_name = "NAME",
        hide_short_help = true
    )]
    pub profile: String,
    /// API base URL (https; http only for loopback)
    #[arg(
        hide_short_help = true,
        long,
        global = true,
        env = "KREA_BASE_URL",
        value_name = "URL"
    )]
    pub base_url: Option<String>,
    /// Run against an in-process simulator (no account, no network)
    ///
    /// Output says it is simulated.
    #[arg(long, global = true)]
    pub sim: bool,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only results (no progress or notes on stderr)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log to stderr (-v info, -vv debug, -vvv trace); never the token
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// End the whole command within SECONDS; running jobs are not lost
    ///
    /// Whatever the server does. Default: waits end after 600 s for images, 1800 s for videos;
    /// jobs still running then are journaled (`krea jobs resume` finishes them).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Time for one request to the API (default 60); a paid request with no answer by then is
    /// settled, never blindly resent
    #[arg(hide_short_help = true, long, global = true, value_name = "SECONDS")]
    pub request_timeout: Option<f64>,
    /// How long after a lost answer its job may still appear in the listing (default 15: Krea
    /// may create it 10 s late and list it 5 s later); such a request is sent again only once
    /// this has passed with no job of it
    #[arg(hide_short_help = true, long, global = true, value_name = "SECONDS")]
    pub settle_grace: Option<f64>,
    /// Compute units to count for one job of a model Krea publishes no price for (the Topaz
    /// upscalers) against --max-cu and MCP budgets (default: the dearest published price of
    /// the same kind, 179 for an image)
    #[arg(hide_short_help = true, long, global = true, value_name = "CU")]
    pub assume_cu: Option<f64>,
    /// Where the job journal is kept: a file, or a PostgreSQL database shared by several
    /// machines (postgres://USER:PASSWORD@HOST:PORT/DB). Default: journal.jsonl in the user's
    /// state directory
    #[arg(
        hide_short_help = true,
        long,
        global = true,
        env = "KREA_JOURNAL",
        hide_env_values = true,
        value_name = "FILE|postgres://..."
    )]
    pub journal: Option<String>,
    /// How to poll: `auto` (near the expected time, then every 0.5-2 s) or a fixed interval in seconds
    #[arg(
        long,
        global = true,
        default_value = "auto",
        value_name = "auto|SECONDS",
        hide_short_help = true
    )]
    pub poll: String,
    /// On Ctrl-C, cancel the pending jobs instead of leaving them running
    #[arg(hide_short_help = true, long, global = true)]
    pub cancel_on_interrupt: bool,
    /// Do not ask before a run that may cost more than $KREA_CONFIRM_ABOVE_CU (default 50) at
    /// a terminal (nothing is asked when stdin is not a terminal)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate images from a prompt (default model: Nano Banana 2)
    #[command(after_help = "Examples:
  krea image \"a fox in the snow\" -m flux
  krea image \"a fox in the snow\" --aspect-ratio 16:9 -n 4 -o foxes/
  krea image \"the same fox, in ink\" --image fox.png --dry-run")]
    Image(ImageArgs),
    /// Generate a video from a prompt and optional frames (default model: Veo 3.1 Fast)
    #[command(after_help = "Examples:
  krea video \"waves at dusk\" -m kling-2.5 --duration 5
  krea video \"the fox turns its head\" --start-image fox.png --no-wait")]
    Video(VideoArgs),
    /// Upscale or enhance an image (default model: Topaz)
    #[command(after_help = "Examples:
  krea enhance photo.jpg --scale 4
  krea enhance photo.jpg -m topaz/generative-enhance --dry-run")]
    Enhance(EnhanceArgs),
    /// Call any generation endpoint with raw parameters
    Run(RunArgs),
    /// Run many prompts from a file: resumable, with a manifest and a contact sheet
    ///
    /// Concurrency adapts to the account's limit; an interrupted batch resumes where it stopped,
    /// never paying twice for a line.
    #[command(after_help = "Examples:
  krea batch prompts.txt -m flux -o out/ --dry-run
  krea batch prompts.txt -m flux -o out/ --max-cu 50
  krea batch prompts.txt -m flux -o out/ --resume  (after an interruption: pays nothing twice)
  krea batch prompts.jsonl -o more/  (a JSON object per line: prompt, model, any parameter)")]
    Batch(BatchArgs),
    /// Run a pipeline file: steps feeding each other, priced first, resumable
    ///
    /// Steps feed each other (image -> enhance -> video); the run is priced before anything is
    /// sent, resumes where it stopped, and writes a report.
    #[command(after_help = "Examples:
  krea pipeline animals.json --dry-run
  krea pipeline animals.json -o animals --max-cu 1700
  krea pipeline animals.json -o animals --resume  (after Ctrl-C, a crash or kill -9)
Pipeline files: https://github.com/krea-rs/krea#pipelines")]
    Pipeline(PipelineArgs),
    /// List, inspect, wait for, cancel, delete and resume jobs
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Upload and manage assets (images, videos, audio, 3D models)
    #[command(subcommand)]
    Assets(AssetsCommand),
    /// Train and manage styles (LoRAs)
    #[command(subcommand)]
    Styles(StylesCommand),
    /// Inspect and run node apps
    #[command(subcommand)]
    Apps(AppsCommand),
    /// List the models, or show one model's parameters
    Models(ModelsArgs),
    /// Run the Krea API simulator in the foreground (for tests and demos)
    Sim(SimArgs),
    /// Serve the API to assistants over MCP (stdio, or HTTP with --http)
    ///
    /// Generate, wait and resume, all journaled; reads and writes bounded; spend held to a
    /// budget.
    Mcp(McpArgs),
    /// Store, show or forget the API token (kept in a file only you can read)
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Check the token, API, clock, catalog, journal and output directory
    ///
    /// Says how to fix whatever is wrong.
    Doctor,
    /// Print a shell completion script
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Read a token (hidden prompt, or the first line of stdin), check it with one free request,
    /// and store it for the profile
    Login,
    /// Which token would be used and where it comes from (masked), and whether the API accepts it
    Status,
    /// Forget the profile's stored token
    Logout,
}

/// What happens to submitted jobs and their files.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Submit COUNT jobs (the API has no batch size)
    #[arg(short = 'n', long, default_value_t = 1, value_name = "COUNT")]
    pub count: u32,
    /// Where files go: a directory, or a file name for a single result (default: the current directory)
    #[arg(short, long, value_name = "DIR|FILE")]
    pub output: Option<PathBuf>,
    /// Replace existing files (default: in a directory a numbered name is chosen; an
    /// existing -o FILE is refused)
    #[arg(long)]
    pub force: bool,
    /// Print the job ids and return without waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Wait, then print the result URLs instead of downloading
    #[arg(long)]
    pub no_download: bool,
    /// Krea POSTs each finished job to this URL (https, or http on loopback)
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Any model parameter, as key=value (numbers, booleans and JSON are parsed; `krea models MODEL` lists them)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Check the request and print its body and estimated cost; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse to send if the run may cost more than this many compute units in all
    #[arg(long, value_name = "CU")]
    pub max_cu: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// What to draw
    pub prompt: String,
    /// Model id, alias or slug (`krea models --kind image` lists them)
    #[arg(short, long, default_value = krea::models::DEFAULT_MODEL, value_parser = ModelName, hide_possible_values = true)]
    pub model: String,
    /// Width in pixels
    #[arg(long)]
    pub width: Option<u32>,
    /// Height in pixels
    #[arg(long)]
    pub height: Option<u32>,
    /// Aspect ratio, e.g. 16:9
    #[arg(long, value_name = "W:H")]
    pub aspect_ratio: Option<String>,
    /// Resolution, e.g. 1K, 2K, 4K
    #[arg(long)]
    pub resolution: Option<String>,
    /// Seed, for repeatable results
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sampling steps (Flux)
    #[arg(long)]
    pub steps: Option<u32>,
    /// Quality, e.g. high (GPT Image)
    #[arg(long)]
    pub quality: Option<String>,
    /// An input image: a URL, or a local file (uploaded as an asset first); repeatable
    #[arg(long = "image", value_name = "URL|FILE")]
    pub images: Vec<String>,
    /// A trained style to apply, with an optional strength (default 1.0); repeatable
    #[arg(long = "style", value_name = "ID[:STRENGTH]")]
    pub styles: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct VideoArgs {
    /// What happens in the video
    pub prompt: String,
    /// Model id, alias or slug (`krea models --kind video` lists them)
    #[arg(short, long, default_value = krea::models::DEFAULT_VIDEO_MODEL, value_parser = ModelName, hide_possible_values = true)]
    pub model: String,
    /// The first frame: a URL or a local file
    #[arg(long, value_name = "URL|FILE")]
    pub start_image: Option<String>,
    /// The last frame: a URL or a local file
    #[arg(long, value_name = "URL|FILE")]
    pub end_image: Option<String>,
    /// Duration in seconds (allowed values depend on the model)
    #[arg(long)]
    pub duration: Option<u32>,
    /// Aspect ratio, e.g. 16:9
    #[arg(long, value_name = "W:H")]
    pub aspect_ratio: Option<String>,
    /// Resolution, e.g. 720p, 1080p
    #[arg(long)]
    pub resolution: Option<String>,
    /// Generate audio with the video
    #[arg(long)]
    pub audio: bool,
    /// Seed, for repeatable results
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct EnhanceArgs {
    /// The image to enhance: a URL or a local file
    pub image: String,
    /// Model id, alias or slug (`krea models --kind enhance` lists them)
    #[arg(short, long, default_value = krea::models::DEFAULT_ENHANCE_MODEL, value_parser = ModelName, hide_possible_values = true)]
    pub model: String,
    /// Output width in pixels
    #[arg(long)]
    pub width: Option<u32>,
    /// Output height in pixels
    #[arg(long)]
    pub height: Option<u32>,
    /// Scale a local input's size by this factor (default 2); for a URL give --width and
    /// --height
    #[arg(long)]
    pub scale: Option<f64>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Model id, alias, slug or path
    #[arg(value_parser = ModelName, hide_possible_values = true)]
    pub model: String,
    /// The whole request body as JSON, or @FILE to read it from a file
    #[arg(long, value_name = "JSON|@FILE")]
    pub body: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// One prompt a line, or JSON Lines: {"prompt": ..., "model": ..., "params": {...}}
    pub file: PathBuf,
    /// Model for lines that do not name one
    #[arg(short, long, default_value = krea::models::DEFAULT_MODEL, value_parser = ModelName, hide_possible_values = true)]
    pub model: String,
    /// Parameters for every line, as key=value (a line's own params win)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Output directory (files, manifest.json, index.html)
    #[arg(short, long, default_value = "krea-batch")]
    pub output: PathBuf,
    /// Most jobs running at once (the client also adapts to the account's limit)
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Continue a previous run in the same output directory: finished lines are kept, submitted
    /// jobs waited for, and a line whose request got no answer is sent again only once it is
    /// known to have created nothing
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub sharing: SharingArgs,
    /// Check and price every line; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse to start if the lines may cost more than this many compute units in all
    #[arg(long, value_name = "CU")]
    pub max_cu: Option<f64>,
}

/// Working one run with other processes, for `batch` and `pipeline`.
#[derive(Debug, Args)]
pub struct SharingArgs {
    /// Work the run together with other processes or machines running the same file on the
    /// same --journal postgres://...: each job is claimed by one worker and paid for once,
    /// a dead worker's jobs are taken over; known by NAME, else by the file's content
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub shared: Option<String>,
    /// With --shared: how long a job this worker claimed stays its own without renewal, so a
    /// worker that hangs loses its jobs (one that dies loses them at once)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        requires = "shared"
    )]
    pub lease: f64,
}

/// `word` as a POSIX shell reads it back: as is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._/:@%+=,-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl SharingArgs {
    /// The name given (`""`: known by content), when shared.
    pub fn name(&self) -> Option<&str> {
        self.shared.as_deref().map(str::trim)
    }

    /// The flags that rejoin the same shared run (for a resume hint), or nothing.
    pub fn flags(&self) -> String {
        let lease = match self.lease {
            30.0 => String::new(),
            l => format!(" --lease {l}"),
        };
        match self.name() {
            None => String::new(),
            Some("") => format!(" --shared{lease}"),
            Some(name) => format!(" --shared {}{lease}", shell_word(name)),
        }
    }

    /// `--lease` checked.
    pub fn lease(&self) -> anyhow::Result<std::time::Duration> {
        Ok(crate::context::seconds("--lease", Some(self.lease))?.unwrap_or_default())
    }
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline file (JSON: vars and steps; https://github.com/krea-rs/krea#pipelines)
    pub file: PathBuf,
    /// Output directory (a directory per step, pipeline.json, index.html; default: the file's
    /// name without its extension)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Set a variable, over the file's vars (a JSON value, else text)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Most jobs running at once in a step (the client also adapts to the account's limit)
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Continue a previous run in the same output directory: finished jobs are kept, submitted
    /// ones waited for, none sent twice
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub sharing: SharingArgs,
    /// Check every step and price the whole run; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse to start if the run may cost more than this many compute units in all
    #[arg(long, value_name = "CU")]
    pub max_cu: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first
    List {
        /// Only jobs in this state (queued, processing, completed, failed...)
        #[arg(long)]
        status: Option<String>,
        /// How many (default 20)
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Every job, page after page
        #[arg(long)]
        all: bool,
    },
    /// Show one job
    Get {
        /// Job id, or its first 6+ characters
        id: String,
    },
    /// Wait for jobs and download their results
    Wait {
        /// Job ids, or their first 6+ characters
        #[arg(required = true)]
        ids: Vec<String>,
        /// Where files go (default: where the journal says, else the current directory)
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Print the result URLs instead of downloading
        #[arg(long)]
        no_download: bool,
    },
    /// Cancel a pending job (not charged)
    Cancel {
        /// Job id, or its first 6+ characters
        id: String,
    },
    /// Delete a job
    Delete {
        /// Job id, or its first 6+ characters
        id: String,
    },
    /// Finish what interrupted runs left: settle requests whose outcome is unknown, wait for
    /// journaled jobs and download their files (no new request creates a job)
    Resume,
    /// Find out whether requests that got no answer created jobs: adopt each job found, or
    /// record that none was created (nothing is sent)
    Settle,
}

#[derive(Debug, Subcommand)]
pub enum AssetsCommand {
    /// Upload a file (JPEG, PNG, WebP, HEIC, MP4, MOV, WebM, GLB, WAV, MP3; at most 75 MB)
    Upload {
        /// The file
        file: PathBuf,
        /// A description
        #[arg(long)]
        description: Option<String>,
    },
    /// List assets, newest first
    List,
    /// Show one asset
    Get {
        /// Asset id
        id: uuid::Uuid,
    },
    /// Delete an asset
    Delete {
        /// Asset id
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum StylesCommand {
    /// Train a style from images (URLs or local files) and print its id when done
    Train {
        /// The style's name
        #[arg(long)]
        name: String,
        /// A training image: URL or local file; repeatable
        #[arg(long = "image", required = true, value_name = "URL|FILE")]
        images: Vec<String>,
        /// Base model: flux_dev (default), flux_schnell, wan, wan22, qwen, z-image
        #[arg(long = "base")]
        base: Option<String>,
        /// Style, Object, Character or Default
        #[arg(long = "type")]
        kind: Option<String>,
        /// The word that invokes the style in prompts
        #[arg(long)]
        trigger_word: Option<String>,
        /// Training steps (1-2000)
        #[arg(long)]
        steps: Option<u32>,
        /// Print the job id and return without waiting
        #[arg(long)]
        no_wait: bool,
    },
    /// List styles
    List {
        /// all, user, shared, krea, community, public...
        #[arg(long, default_value = "all")]
        filter: String,
        /// How many (default 50)
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one style
    Get {
        /// Style id
        id: String,
    },
    /// Change a style you own
    Update {
        /// Style id
        id: String,
        /// New title
        #[arg(long)]
        title: Option<String>,
        /// Make it public
        #[arg(long, conflicts_with = "private")]
        public: bool,
        /// Make it private
        #[arg(long)]
        private: bool,
        /// New cover image URL
        #[arg(long)]
        cover_url: Option<String>,
    },
    /// Share a style with your workspace (and print a share link)
    Share {
        /// Style id
        id: String,
    },
    /// Stop sharing a style with your workspace
    Unshare {
        /// Style id
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Show a node app version and its inputs
    Get {
        /// App version id
        id: String,
    },
    /// Run a node app and download its results
    Run {
        /// App version id
        id: String,
        /// An input, as key=value; repeatable
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Where files go
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Print the job ids and return without waiting
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Only image, video or enhance models
    #[arg(long)]
    pub kind: Option<KindArg>,
    /// Show this model's parameters
    pub model: Option<String>,
    /// With a model: print the JSON Schema of its request body
    #[arg(long, requires = "model")]
    pub schema: bool,
    /// Fetch the API's current model list first (kept in the cache directory), so models Krea
    /// added after this build can be used
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Image,
    Video,
    Enhance,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port for the API (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Job durations are multiplied by this (0.01: a 20 s image takes 0.2 s)
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Most jobs running at once; beyond it generations get 429
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seed for durations, ids and images (default: random ids, so runs never share a job id)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Serve this OpenAPI document at /openapi.json (default: the one krea was built from)
    #[arg(long, value_name = "FILE")]
    pub openapi: Option<std::path::PathBuf>,
    /// The date the simulator believes it is, for sunsets and retirements (default: today)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub today: Option<chrono::NaiveDate>,
    /// Also deliver webhooks to this host (loopback always is; others are accepted and counted)
    #[arg(long, value_name = "HOST")]
    pub webhook_host: Vec<String>,
    /// Add a network round trip of MS milliseconds to every answer
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,
    /// Run the server's clock SECONDS off (stamps and Date headers; negative: behind)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub clock_skew: f64,
    /// Write job stamps in whole seconds
    #[arg(long)]
    pub whole_second_stamps: bool,
    /// List new jobs only MS milliseconds after their creation
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub listing_lag: u64,
    /// Another program on the account creates a job every MS milliseconds
    #[arg(long, value_name = "MS")]
    pub foreign_every: Option<u64>,
    /// Inject a fault: ROUTE=KIND[:ARG...][@RATE], e.g. 'POST /generate/*=commit-after:504:2000@0.1'
    /// (kinds: status, rate-limit, reset-before-body, reset-after-body, status-after, slow,
    /// redirect, truncate, fail, stuck, hostile-urls, commit-after, unreadable, out-of-order,
    /// foreign-twin)
    #[arg(long, value_name = "RULE")]
    pub fault: Vec<String>,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Where generated files are written (default: a `krea` folder in your pictures directory,
    /// else the current directory)
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Refuse any call estimated above this many compute units (before anything is sent)
    #[arg(long, value_name = "CU")]
    pub max_cu_per_call: Option<f64>,
    /// Refuse calls once this session's estimated spend would pass this many compute units
    #[arg(long, value_name = "CU")]
    pub budget_cu: Option<f64>,
    /// Let the assistant read local files (inputs, uploads, pipeline files) under DIR too;
    /// repeatable. Without it, only files under the output directory
    #[arg(long = "allow-read", value_name = "DIR")]
    pub allow_read: Vec<std::path::PathBuf>,
    /// Serve over Streamable HTTP at ADDR (default 127.0.0.1:8931; endpoint /mcp) instead of
    /// stdio. Clients send `Authorization: Bearer TOKEN`: $KREA_MCP_TOKEN when set, else one
    /// made at start and printed once on stderr
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8931")]
    pub http: Option<std::net::SocketAddr>,
    /// With --http: also accept requests addressed to NAME (this machine's name on your
    /// network; loopback names are always accepted); repeatable
    #[arg(long = "allow-host", value_name = "NAME", requires = "http")]
    pub allow_host: Vec<String>,
    /// With --http: also accept calls from web pages of ORIGIN (scheme://host:port; pages on
    /// this machine's loopback are always accepted); repeatable
    #[arg(long = "allow-origin", value_name = "ORIGIN", requires = "http")]
    pub allow_origin: Vec<String>,
    /// Publish each tool's output schema in the tool list, for clients that check or type
    /// results (about 11 KB more, which some assistants carry in their context)
    #[arg(long)]
    pub output_schemas: bool,
}

/// Global options that mean nothing to a command, hidden from its help (still accepted).
const NOT_FOR: &[(&str, &[&str])] = &[
    (
        "sim",
        &[
            "token",
            "profile",
            "base_url",
            "sim",
            "json",
            "timeout",
            "request_timeout",
            "poll",
            "cancel_on_interrupt",
        ],
    ),
    (
        "completions",
        &[
            "token",
            "profile",
            "base_url",
            "sim",
            "json",
            "timeout",
            "request_timeout",
            "poll",
            "cancel_on_interrupt",
        ],
    ),
];

/// The help of command `name` without the global options that mean nothing to it, or `None`
/// for a command that takes them all. (Only for showing: a command changed after clap built it
/// does not parse.)
pub fn help_for(name: &str) -> Option<String> {
    use clap::CommandFactory;
    let hidden = NOT_FOR.iter().find(|(n, _)| *n == name)?.1;
    let mut cmd = Cli::command();
    // Global options reach subcommands when the command is built; hide them after that.
    cmd.build();
    let sub = cmd.find_subcommand_mut(name)?;
    let mut built = std::mem::take(sub);
    for id in hidden {
        built = built.mut_arg(*id, |a| a.hide(true));
    }
    Some(built.render_help().to_string())
}
