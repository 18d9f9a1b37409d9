//! Reading the account's jobs over a stretch of Krea's clock, whatever their order or paging.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::api::jobs::{JobQuery, Jobs};
use crate::error::Result;

/// Most jobs read in one scan; past it the scan is incomplete and decides nothing.
const MAX_LISTED: usize = 50_000;
/// Stamps are compared with this slack (whole-second stamps).
const SLACK: TimeDelta = TimeDelta::seconds(1);

/// The jobs stamped within a stretch, and whether the whole stretch was read.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    pub jobs: Vec<(Uuid, DateTime<Utc>)>,
    pub complete: bool,
    /// The account's oldest job, when the listing was read to its end (a young account's
    /// history is no longer than that).
    pub first: Option<DateTime<Utc>>,
}

/// Reads pages newest first until a whole page is older than `lo` (one out-of-order old job
/// does not end the scan: a page ends it only when none of its jobs is in or after the
/// stretch), or the listing ends.
pub(crate) async fn scan(jobs: &Jobs, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Result<Listed> {
    let query = JobQuery::all().page_size(1000);
    let mut out = Listed::default();
    let mut cursor = None;
    let mut seen = 0usize;
    loop {
        let crate::Page { items, next } = jobs.page(&query, cursor).await?;
        seen += items.len();
        let newest = items.iter().map(|j| j.created_at).max();
        out.jobs.extend(
            items
                .iter()
                .filter(|j| j.created_at + SLACK >= lo && j.created_at - SLACK <= hi)
                .map(|j| (j.id, j.created_at)),
        );
        let past = newest.is_none_or(|n| n + SLACK < lo);
        match next {
            _ if past => break,
            None => {
                out.first = items.iter().map(|j| j.created_at).min();
                break;
            }
            Some(_) if seen >= MAX_LISTED => return Ok(out),
            Some(c) => cursor = Some(c),
        }
    }
    out.complete = true;
    Ok(out)
}
