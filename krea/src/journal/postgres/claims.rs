//! Lines of a batch shared by several workers: registered once, claimed one at a time with a
//! lease (`FOR UPDATE SKIP LOCKED`, so workers never wait on each other), renewed while the
//! worker runs, marked done with their job. A claim is free again when its lease ran out or
//! its worker's run lock is gone (the process ended, its connection closed); the request for a
//! line is written down only while its worker holds the claim (checked in the same
//! transaction, [`super::PgStore::write_if`]), so a line taken over is never sent twice.

use std::time::{Duration, Instant};

use tokio_postgres::types::{ToSql, Type};

use super::{PgStore, run_key};
use crate::journal::{LineEnd, Scope, SharedLine};

/// The run locks held now, as the 64-bit keys `pg_advisory_lock(bigint)` took.
const LIVE: &str = "live AS (SELECT (classid::bigint << 32) | objid::bigint AS key FROM pg_locks
                             WHERE locktype = 'advisory' AND objsubid = 1 AND granted)";

/// The scope and batch, owned (for a query run on the connection's thread).
fn owned(scope: &Scope, batch: &str) -> (String, String, String) {
    (
        scope.origin.clone(),
        scope.account.clone(),
        batch.to_owned(),
    )
}

impl PgStore {
    /// Registers batch `batch` (`lines` lines, content `fingerprint`), or checks that the one
    /// registered under that name is the same. `Err(text)`: it is not.
    pub fn batch_open(
        &self,
        scope: &Scope,
        batch: &str,
        fingerprint: &str,
        lines: u32,
        deadline: Instant,
    ) -> std::io::Result<std::result::Result<(), String>> {
        let (origin, account, batch, fingerprint) = (
            scope.origin.clone(),
            scope.account.clone(),
            batch.to_owned(),
            fingerprint.to_owned(),
        );
        let lines = lines as i32;
        self.with_conn(deadline, |s, c| {
            s.call(deadline, "registering the batch", async move {
                c.batch_execute("BEGIN").await?;
                c.execute(
                    "INSERT INTO krea_batches (origin, account, batch, fingerprint, lines)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&origin, &account, &batch, &fingerprint, &lines],
                )
                .await?;
                let row = c
                    .query_one(
                        "SELECT fingerprint, lines FROM krea_batches
                         WHERE origin = $1 AND account = $2 AND batch = $3",
                        &[&origin, &account, &batch],
                    )
                    .await?;
                let (theirs, their_lines): (String, i32) = (row.get(0), row.get(1));
                if theirs != fingerprint || their_lines != lines {
                    c.batch_execute("ROLLBACK").await?;
                    return Ok(Err(format!(
                        "the journal's database already holds a batch named {batch:?} with \
                         other lines ({their_lines}, this one has {lines}): give this one \
                         another name"
                    )));
                }
                c.execute(
                    "INSERT INTO krea_batch_lines (origin, account, batch, line)
                     SELECT $1, $2, $3, g FROM generate_series(0, $4 - 1) g
                     ON CONFLICT DO NOTHING",
                    &[&origin, &account, &batch, &lines],
                )
                .await?;
                c.batch_execute("COMMIT").await?;
                Ok(Ok(()))
            })
        })
    }

    /// Claims the first line nobody holds (not done; unclaimed, or its claim lapsed; not one
    /// of `skip`), for `lease`. `None`: there is none now.
    pub fn claim_line(
        &self,
        scope: &Scope,
        batch: &str,
        lease: Duration,
        skip: &[u32],
        deadline: Instant,
    ) -> std::io::Result<Option<u32>> {
        let (origin, account, batch) = owned(scope, batch);
        let (run, key, lease) = (self.run, run_key(self.run), lease.as_secs_f64());
        let skip: Vec<i32> = skip.iter().map(|l| *l as i32).collect();
        self.with_conn(deadline, |s, c| {
            s.call(deadline, "claiming a line", async move {
                let rows = c
                    .query_typed(
                        &format!(
                            "WITH {LIVE},
                             free AS (
                                 SELECT line FROM krea_batch_lines
                                 WHERE origin = $1 AND account = $2 AND batch = $3 AND NOT done
                                   AND worker IS DISTINCT FROM $4
                                   AND NOT (line = ANY($7))
                                   AND (worker IS NULL OR lease_until < now()
                                        OR worker_key NOT IN (SELECT key FROM live))
                                 ORDER BY line LIMIT 1 FOR UPDATE SKIP LOCKED)
                             UPDATE krea_batch_lines l
                             SET worker = $4, worker_key = $5,
                                 lease_until = now() + make_interval(secs => $6),
                                 claims = l.claims + 1
                             FROM free
                             WHERE l.origin = $1 AND l.account = $2 AND l.batch = $3
                               AND l.line = free.line
                             RETURNING l.line"
                        ),
                        &[
                            (&origin, Type::TEXT),
                            (&account, Type::TEXT),
                            (&batch, Type::TEXT),
                            (&run, Type::UUID),
                            (&key, Type::INT8),
                            (&lease, Type::FLOAT8),
                            (&skip, Type::INT4_ARRAY),
                        ],
                    )
                    .await?;
                Ok(rows.first().map(|r| r.get::<_, i32>(0) as u32))
            })
        })
    }

    /// Extends to `lease` from now the claim of every line this worker holds in `batch`.
    pub fn renew_claims(
        &self,
        scope: &Scope,
        batch: &str,
        lease: Duration,
        deadline: Instant,
    ) -> std::io::Result<()> {
        self.update_claims(
            scope,
            batch,
            deadline,
            "UPDATE krea_batch_lines SET lease_until = now() + make_interval(secs => $5)
             WHERE origin = $1 AND account = $2 AND batch = $3 AND worker = $4 AND NOT done",
            Some(lease),
        )
    }

    /// Frees every line this worker holds in `batch` and has not finished (it stops).
    pub fn release_claims(
        &self,
        scope: &Scope,
        batch: &str,
        deadline: Instant,
    ) -> std::io::Result<()> {
        self.update_claims(
            scope,
            batch,
            deadline,
            "UPDATE krea_batch_lines SET worker = NULL, worker_key = NULL, lease_until = NULL
             WHERE origin = $1 AND account = $2 AND batch = $3 AND worker = $4 AND NOT done",
            None,
        )
    }

    /// Frees line `line` of `batch` if this worker holds it and it is not done (the worker
    /// leaves it to others: its job's files could not be fetched, its request was refused).
    pub fn release_line(
        &self,
        scope: &Scope,
        batch: &str,
        line: u32,
        deadline: Instant,
    ) -> std::io::Result<()> {
        let (origin, account, batch) = owned(scope, batch);
        let (run, line) = (self.run, line as i32);
        self.with_conn(deadline, |s, c| {
            s.call(deadline, "releasing a line", async move {
                c.query_typed(
                    "UPDATE krea_batch_lines SET worker = NULL, worker_key = NULL,
                         lease_until = NULL
                     WHERE origin = $1 AND account = $2 AND batch = $3 AND worker = $4
                       AND line = $5 AND NOT done",
                    &[
                        (&origin, Type::TEXT),
                        (&account, Type::TEXT),
                        (&batch, Type::TEXT),
                        (&run, Type::UUID),
                        (&line, Type::INT4),
                    ],
                )
                .await
                .map(drop)
            })
        })
    }

    fn update_claims(
        &self,
        scope: &Scope,
        batch: &str,
        deadline: Instant,
        sql: &'static str,
        lease: Option<Duration>,
    ) -> std::io::Result<()> {
        let (origin, account, batch) = owned(scope, batch);
        let run = self.run;
        self.with_conn(deadline, |s, c| {
            s.call(deadline, "renewing claims", async move {
                let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
                    (&origin, Type::TEXT),
                    (&account, Type::TEXT),
                    (&batch, Type::TEXT),
                    (&run, Type::UUID),
                ];
                let lease = lease.map(|l| l.as_secs_f64());
                if let Some(lease) = &lease {
                    params.push((lease, Type::FLOAT8));
                }
                c.query_typed(sql, &params).await.map(drop)
            })
        })
    }

    /// Marks a line done (its job ended and was handled), whoever holds it, with how it ended
    /// (what a later step of a shared pipeline reads).
    pub fn line_done(
        &self,
        scope: &Scope,
        batch: &str,
        line: u32,
        end: &LineEnd,
        deadline: Instant,
    ) -> std::io::Result<()> {
        let (origin, account, batch) = owned(scope, batch);
        let line = line as i32;
        let LineEnd {
            job_id,
            status,
            urls,
        } = end.clone();
        self.with_conn(deadline, |s, c| {
            s.call(deadline, "marking a line done", async move {
                c.query_typed(
                    "UPDATE krea_batch_lines
                     SET done = true, job_id = $5, status = $6, urls = $7, worker = NULL,
                         worker_key = NULL, lease_until = NULL
                     WHERE origin = $1 AND account = $2 AND batch = $3 AND line = $4",
                    &[
                        (&origin, Type::TEXT),
                        (&account, Type::TEXT),
                        (&batch, Type::TEXT),
                        (&line, Type::INT4),
                        (&job_id, Type::UUID),
                        (&status, Type::TEXT),
                        (&urls, Type::TEXT_ARRAY),
                    ],
                )
                .await
                .map(drop)
            })
        })
    }

    /// Every line of `batch` and where it is.
    pub fn batch_lines(
        &self,
        scope: &Scope,
        batch: &str,
        deadline: Instant,
    ) -> std::io::Result<Vec<SharedLine>> {
        let (origin, account, batch) = owned(scope, batch);
        let run = self.run;
        self.with_conn(deadline, |s, c| {
            s.call(deadline, "reading the batch's lines", async move {
                let rows = c
                    .query_typed(
                        &format!(
                            "WITH {LIVE}
                             SELECT line, done, job_id,
                                    coalesce(worker IS DISTINCT FROM $4 AND worker IS NOT NULL
                                             AND lease_until >= now()
                                             AND worker_key IN (SELECT key FROM live), false),
                                    status, coalesce(urls, '{{}}')
                             FROM krea_batch_lines
                             WHERE origin = $1 AND account = $2 AND batch = $3
                             ORDER BY line"
                        ),
                        &[
                            (&origin, Type::TEXT),
                            (&account, Type::TEXT),
                            (&batch, Type::TEXT),
                            (&run, Type::UUID),
                        ],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| SharedLine {
                        line: r.get::<_, i32>(0) as u32,
                        done: r.get(1),
                        held_elsewhere: r.get(3),
                        // Lines done by a build before schema 3 have no status.
                        end: r.get::<_, Option<String>>(4).map(|status| LineEnd {
                            job_id: r.get(2),
                            status,
                            urls: r.get(5),
                        }),
                        job_id: r.get(2),
                    })
                    .collect())
            })
        })
    }
}
