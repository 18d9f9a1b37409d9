//! The journal in PostgreSQL, for several machines sharing one account: every host's intents,
//! answers and settlements in one table, ordered by a sequence, read by each host from where it
//! last read.
//!
//! - Appends happen in a transaction holding a transaction-level advisory lock on the scope
//!   (API origin and account): the exclusive section. Within a scope, rows are therefore
//!   committed in sequence order, and a reader that reads `seq > cursor` never skips one.
//! - A run's liveness is a session-level advisory lock held by the connection of the process
//!   that runs it; PostgreSQL releases it when the connection ends (the process killed, its
//!   machine gone). Another host asks `pg_locks`.
//! - The driver is async (tokio-postgres); the journal's interface is not, so the connection
//!   lives on a thread of its own with a small runtime, and every call waits for its answer
//!   no later than the caller's deadline. A call that fails or runs out of time drops the
//!   connection (the server rolls back what it held) and the next call connects again.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::compaction::{Compaction, Kind};

mod claims;
use super::entry::{Entry, Scope};
use super::index::{Damaged, Index};
use crate::error::{Error, Result};

/// The schema versions this build knows, in order: each one's statements, run once per
/// database in a transaction. Never edit a released one; add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE krea_journal (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        origin text NOT NULL,
        account text NOT NULL,
        event text NOT NULL,
        key uuid,
        job_id uuid,
        written_at timestamptz NOT NULL DEFAULT now(),
        entry json NOT NULL
    );
    CREATE INDEX krea_journal_scope_seq ON krea_journal (origin, account, seq);
    CREATE INDEX krea_journal_job ON krea_journal (job_id) WHERE job_id IS NOT NULL;",
    ),
    (
        2,
        "CREATE TABLE krea_batches (
            origin text NOT NULL,
            account text NOT NULL,
            batch text NOT NULL,
            fingerprint text NOT NULL,
            lines integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (origin, account, batch)
        );
        CREATE TABLE krea_batch_lines (
            origin text NOT NULL,
            account text NOT NULL,
            batch text NOT NULL,
            line integer NOT NULL,
            worker uuid,
            worker_key bigint,
            lease_until timestamptz,
            claims integer NOT NULL DEFAULT 0,
            done boolean NOT NULL DEFAULT false,
            job_id uuid,
            PRIMARY KEY (origin, account, batch, line)
        );",
    ),
    (
        3,
        "ALTER TABLE krea_batch_lines ADD COLUMN status text, ADD COLUMN urls text[];",
    ),
];

/// The advisory lock key migrations are serialized on (any value no scope hashes to is
/// fine; scopes' keys are hashes, so collisions are as unlikely as any 64-bit one).
const MIGRATION_LOCK: i64 = 0x6b72_6561_6d69_6772; // "kreamigr"

/// Rows read per query when catching up.
const PAGE: i64 = 5_000;

/// The journal's database, and this process's run in it.
pub(super) struct PgStore {
    config: tokio_postgres::Config,
    /// The address for people: host, port and database, no user or password.
    location: String,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    runtime: Runtime,
    /// The connection (`None` until made, or after a failure), held for a whole operation:
    /// a transaction must not see another caller's statements.
    conn: Mutex<Option<Arc<Client>>>,
    run: Uuid,
    scope_key: i64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// A thread with a current-thread runtime, driving the connection and running each call.
struct Runtime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Runtime {
    fn start() -> std::io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("krea-journal-pg".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Runtime {
            handle,
            stop: Some(stop),
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // The runtime ends on its thread: its connections close, and the run lock with them.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the journal's database did not answer {what} by the deadline"),
    )
}

fn db_error(e: tokio_postgres::Error) -> std::io::Error {
    // The server's own words, when it gave any (a refused password, a missing database).
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    std::io::Error::other(format!("PostgreSQL: {text}"))
}

/// A 64-bit advisory lock key from `bytes` (the first 8 of their sha256).
fn lock_key(bytes: &[u8]) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

fn run_key(run: Uuid) -> i64 {
    lock_key(run.as_bytes())
}

/// The address without credentials, for messages.
fn location_of(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("postgres://{host}:{port}/{db}")
}

impl PgStore {
    /// Connects to `url`, migrates the schema and takes this process's run lock, by
    /// `deadline`. Every failure here comes before anything is paid.
    pub fn open(url: &str, scope: &Scope, deadline: Instant) -> Result<PgStore> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::Config(format!(
                "the journal's PostgreSQL address does not parse ({e}); write it as \
                 postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        let location = location_of(&config);
        let tls = krea_gen::net::rustls_config(&[b"postgresql"])
            .map(tokio_postgres_rustls::MakeRustlsConnect::new);
        let runtime = Runtime::start().map_err(|e| Error::Config(format!("{e}")))?;
        let store = PgStore {
            config,
            location,
            tls,
            runtime,
            conn: Mutex::new(None),
            run: Uuid::new_v4(),
            scope_key: lock_key(format!("{}\n{}", scope.origin, scope.account).as_bytes()),
        };
        let fail = |e: std::io::Error| Error::Journal {
            path: store.location.clone().into(),
            job_id: None,
            source: e,
        };
        let mut conn = store.conn();
        let client = store.connect(&mut conn, deadline).map_err(fail)?;
        let migrated = store
            .call(deadline, "the schema check", migrate(client))
            .map_err(|e| {
                *conn = None;
                fail(e)
            })?;
        if let Err(newer) = migrated {
            return Err(Error::Config(format!(
                "the journal's database {}: {newer}",
                store.location
            )));
        }
        drop(conn);
        Ok(store)
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn run_id(&self) -> Uuid {
        self.run
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Option<Arc<Client>>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `fut` on the connection's thread and waits for it until `deadline`.
    fn call<T: Send + 'static>(
        &self,
        deadline: Instant,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send + 'static,
    ) -> std::io::Result<T> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.handle.spawn(async move {
            let _ = tx.send(tokio::time::timeout(wait, fut).await);
        });
        match rx.recv_timeout(wait + Duration::from_millis(200)) {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(db_error(e)),
            Ok(Err(_)) | Err(_) => Err(timed_out(what)),
        }
    }

    /// The connection, made (and this run's lock taken on it) if there is none.
    fn connect(
        &self,
        conn: &mut Option<Arc<Client>>,
        deadline: Instant,
    ) -> std::io::Result<Arc<Client>> {
        if let Some(c) = conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *conn = None;
        let mut config = self.config.clone();
        let wait = deadline.saturating_duration_since(Instant::now());
        if config.get_connect_timeout().is_none_or(|t| *t > wait) {
            config.connect_timeout(wait.max(Duration::from_millis(1)));
        }
        let tls = self.tls.clone();
        let run = run_key(self.run);
        let client = self.call(deadline, "the connection", async move {
            let client = match tls {
                Some(tls) => {
                    let (client, connection) = config.connect(tls).await?;
                    tokio::spawn(connection);
                    client
                }
                None => {
                    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                    tokio::spawn(connection);
                    client
                }
            };
            client
                .execute("SELECT pg_advisory_lock($1)", &[&run])
                .await?;
            Ok(Arc::new(client))
        })?;
        *conn = Some(client.clone());
        Ok(client)
    }

    /// Runs `op` with the connection; a failure drops it (the next call connects again).
    fn with_conn<T>(
        &self,
        deadline: Instant,
        op: impl FnOnce(&Self, Arc<Client>) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut conn = self.conn();
        let client = self.connect(&mut conn, deadline)?;
        let result = op(self, client);
        if result.is_err() {
            *conn = None;
        }
        result
    }

    /// Whether run `run`'s process still holds its lock (asked of `pg_locks`). When that
    /// cannot be asked, it is taken to run: its requests are then left to it, never guessed.
    pub fn run_alive(&self, run: Uuid) -> bool {
        let key = run_key(run);
        let (classid, objid) = ((key as u64 >> 32) as u32, key as u64 as u32);
        let deadline = super::limit(None).min(Instant::now() + Duration::from_secs(10));
        self.with_conn(deadline, |s, client| {
            s.call(deadline, "whether a run is alive", async move {
                let rows = client
                    .query_typed(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks
                         WHERE locktype = 'advisory' AND objsubid = 1
                           AND classid = $1 AND objid = $2 AND granted
                           AND database = (SELECT oid FROM pg_database
                                           WHERE datname = current_database()))",
                        &[(&classid, Type::OID), (&objid, Type::OID)],
                    )
                    .await?;
                Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
            })
        })
        .unwrap_or(true)
    }

    /// Reads the rows of `scope` appended since the last read.
    pub fn refresh(
        &self,
        index: &mut Index,
        scope: &Scope,
        deadline: Instant,
    ) -> std::io::Result<()> {
        self.with_conn(deadline, |s, client| {
            s.catch_up(&client, index, scope, deadline, None)
        })
    }

    /// Reads what was appended since `index` last read. With `begin` (statements that open a
    /// transaction and take a lock), those go out first in the same round trip: the server
    /// runs them in order, so the read sees everything committed before the lock was granted.
    fn catch_up(
        &self,
        client: &Arc<Client>,
        index: &mut Index,
        scope: &Scope,
        deadline: Instant,
        mut begin: Option<String>,
    ) -> std::io::Result<()> {
        loop {
            let (c, origin, account, after, first) = (
                client.clone(),
                scope.origin.clone(),
                scope.account.clone(),
                index.offset as i64,
                begin.take(),
            );
            let rows = self.call(deadline, "reading the journal", async move {
                let begun = async {
                    match &first {
                        Some(sql) => c.batch_execute(sql).await,
                        None => Ok(()),
                    }
                };
                let params: [(&(dyn ToSql + Sync), Type); 4] = [
                    (&origin, Type::TEXT),
                    (&account, Type::TEXT),
                    (&after, Type::INT8),
                    (&PAGE, Type::INT8),
                ];
                let read = c.query_typed(
                    "SELECT seq, entry::text FROM krea_journal
                     WHERE origin = $1 AND account = $2 AND seq > $3
                     ORDER BY seq LIMIT $4",
                    &params,
                );
                let ((), rows) = futures_util::future::try_join(begun, read).await?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>())
            })?;
            let full = rows.len() as i64 == PAGE;
            for (seq, text) in rows {
                apply_row(index, scope, seq, &text);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// In a transaction holding the scope's advisory lock, with `index` brought up to date:
    /// inserts `entries` if `decide` allows, and commits. Returns whether they were written.
    pub fn write_if(
        &self,
        index: &mut Index,
        scope: &Scope,
        entries: &[Entry],
        deadline: Instant,
        decide: impl FnOnce(&Index) -> bool,
    ) -> std::io::Result<bool> {
        let rows = entries
            .iter()
            .map(|e| row_of(e, scope))
            .collect::<std::io::Result<Vec<_>>>()?;
        self.with_conn(deadline, |s, client| {
            let begin = s.begin_sql(deadline);
            s.catch_up(&client, index, scope, deadline, Some(begin))?;
            if !decide(index) {
                let c = client.clone();
                s.call(deadline, "the rollback", async move {
                    c.batch_execute("ROLLBACK").await
                })?;
                return Ok(false);
            }
            let c = client.clone();
            let run = s.run;
            let last = s.call(deadline, "the append", async move {
                // A shared batch's line is sent only by the worker holding its claim: checked
                // here, in the transaction that writes the request down, with the line's row
                // locked, so a takeover comes wholly before this (and this fails) or after
                // (and sees this request).
                for r in &rows {
                    let Some((batch, line)) = &r.line else {
                        continue;
                    };
                    let holder: Option<Uuid> = c
                        .query_typed(
                            "SELECT worker FROM krea_batch_lines
                             WHERE origin = $1 AND account = $2 AND batch = $3 AND line = $4
                             FOR UPDATE",
                            &[
                                (&r.origin, Type::TEXT),
                                (&r.account, Type::TEXT),
                                (batch, Type::TEXT),
                                (line, Type::INT4),
                            ],
                        )
                        .await?
                        .first()
                        .and_then(|row| row.get(0));
                    if holder != Some(run) {
                        c.batch_execute("ROLLBACK").await?;
                        return Ok(Err(format!(
                            "line {line} of batch {batch:?} is claimed by another worker now: \
                             not sent"
                        )));
                    }
                }
                // The inserts and the commit go out together (one round trip): a failed insert
                // aborts the transaction, and the COMMIT after it then rolls back.
                let c = &c;
                let inserts = futures_util::future::try_join_all(rows.iter().map(|r| async move {
                    c.query_typed(
                        "INSERT INTO krea_journal (origin, account, event, key, job_id, entry)
                         VALUES ($1, $2, $3, $4, $5, ($6::text)::json) RETURNING seq",
                        &[
                            (&r.origin, Type::TEXT),
                            (&r.account, Type::TEXT),
                            (&r.event, Type::TEXT),
                            (&r.key, Type::UUID),
                            (&r.job_id, Type::UUID),
                            (&r.entry, Type::TEXT),
                        ],
                    )
                    .await
                }));
                let (inserted, ()) =
                    futures_util::future::try_join(inserts, c.batch_execute("COMMIT")).await?;
                let last = inserted
                    .iter()
                    .filter_map(|rows| rows.first().map(|r| r.get::<_, i64>(0)))
                    .max()
                    .unwrap_or_default();
                Ok(Ok(last))
            })?;
            let last = last
                .map_err(|lost| std::io::Error::new(std::io::ErrorKind::PermissionDenied, lost))?;
            // Committed under the lock: nothing of this scope came between, so what was just
            // written is these entries, and the cursor moves past them.
            for entry in entries {
                index.lines += 1;
                index.apply(entry.clone(), scope);
            }
            index.offset = last as u64;
            Ok(true)
        })
    }

    /// The statements that open a transaction and take the scope's lock in it, waiting no
    /// later than `deadline` (the server gives up at the same time). The key is a number of
    /// ours, not text from outside, so it is written into the statement (one round trip).
    fn begin_sql(&self, deadline: Instant) -> String {
        let ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .max(1);
        format!(
            "BEGIN; SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; \
             SELECT pg_advisory_xact_lock({})",
            self.scope_key
        )
    }

    /// Opens a transaction holding the scope's lock ([`PgStore::begin_sql`]).
    fn begin_locked(&self, client: &Arc<Client>, deadline: Instant) -> std::io::Result<()> {
        let (c, sql) = (client.clone(), self.begin_sql(deadline));
        self.call(deadline, "the journal's lock", async move {
            c.batch_execute(&sql).await
        })
    }

    /// Deletes the rows of `scope` a compaction drops (the file journal's rules), then reads
    /// what is left again. Returns the rows before and after.
    pub fn compact(&self, index: &mut Index, scope: &Scope) -> std::io::Result<(usize, usize)> {
        let deadline = super::limit(None);
        self.with_conn(deadline, |s, client| {
            s.begin_locked(&client, deadline)?;
            let (c, origin, account) =
                (client.clone(), scope.origin.clone(), scope.account.clone());
            let rows = s.call(deadline, "reading the journal", async move {
                let rows = c
                    .query(
                        "SELECT seq, event, key, job_id FROM krea_journal
                         WHERE origin = $1 AND account = $2 ORDER BY seq",
                        &[&origin, &account],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let kind = Kind::of_event(
                            r.get::<_, &str>(1),
                            r.get::<_, Option<Uuid>>(2),
                            r.get::<_, Option<Uuid>>(3),
                        );
                        (r.get::<_, i64>(0), kind)
                    })
                    .collect::<Vec<_>>())
            })?;
            let mut plan = Compaction::default();
            rows.iter().for_each(|(_, k)| plan.note(k));
            let drop: Vec<i64> = rows
                .iter()
                .filter(|(_, k)| !plan.keeps(k))
                .map(|(seq, _)| *seq)
                .collect();
            let before = rows.len();
            let after = before - drop.len();
            let c = client.clone();
            s.call(deadline, "the compaction", async move {
                c.execute("DELETE FROM krea_journal WHERE seq = ANY($1)", &[&drop])
                    .await?;
                c.batch_execute("COMMIT").await
            })?;
            *index = Index::default();
            s.catch_up(&client, index, scope, deadline, None)?;
            Ok((before, after))
        })
    }
}

/// Creates or updates the tables, one version at a time, serialized between hosts. `Err`:
/// the tables are newer than this build.
async fn migrate(
    client: Arc<Client>,
) -> std::result::Result<std::result::Result<(), String>, tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS krea_schema (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let current: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM krea_schema", &[])
        .await?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        client.batch_execute("ROLLBACK").await?;
        return Ok(Err(format!(
            "its tables are at schema version {current}, newer than this krea knows \
             ({known}); upgrade krea"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        client.batch_execute(sql).await?;
        client
            .execute("INSERT INTO krea_schema (version) VALUES ($1)", &[version])
            .await?;
    }
    client.batch_execute("COMMIT").await?;
    Ok(Ok(()))
}

/// One row to insert.
struct Row {
    origin: String,
    account: String,
    event: String,
    key: Option<Uuid>,
    job_id: Option<Uuid>,
    entry: String,
    /// The shared batch line a `sending` is for: its claim must be this run's.
    line: Option<(String, i32)>,
}

fn row_of(entry: &Entry, scope: &Scope) -> std::io::Result<Row> {
    let value = serde_json::to_value(entry).map_err(std::io::Error::other)?;
    let event = value
        .get("event")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let key = value
        .get("key")
        .and_then(|v| v.as_str())
        .and_then(|k| k.parse().ok());
    Ok(Row {
        origin: scope.origin.clone(),
        account: scope.account.clone(),
        event,
        key,
        job_id: entry.job_id(),
        entry: value.to_string(),
        line: match entry {
            Entry::Sending { line: Some(l), .. } => Some((l.batch.clone(), l.line as i32)),
            _ => None,
        },
    })
}

/// Applies a row read back: an entry, or a damaged one (written by a newer version, or by
/// hand) reported with the job it mentions.
fn apply_row(index: &mut Index, scope: &Scope, seq: i64, text: &str) {
    index.lines += 1;
    index.offset = seq as u64;
    match serde_json::from_str::<Entry>(text) {
        Ok(entry) => index.apply(entry, scope),
        Err(_) => index.damaged.push(Damaged {
            line: seq as usize,
            job_id: crate::send::job_id_in(text).or_else(|| super::first_uuid(text)),
            excerpt: crate::redact::clean(text, None, 120),
        }),
    }
}
