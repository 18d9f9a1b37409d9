//! One cheap authenticated request, for `krea doctor` and `krea auth`: is the token accepted,
//! how long does the API take to answer, and what time does it say it is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::DATE;

use crate::client::Krea;
use crate::error::Result;
use crate::send::{Call, Class, read_capped};

/// What [`Krea::probe`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Probe {
    /// From sending the request to reading its answer (retries included).
    pub latency: Duration,
    /// The answer's `Date` header, if it had a readable one.
    pub server_time: Option<DateTime<Utc>>,
}

impl Probe {
    /// How far this machine's clock is ahead of the API's (negative: behind), if the API
    /// gave its time. The `Date` header has whole seconds, so differences under a second or
    /// two mean nothing.
    pub fn clock_skew(&self, local: DateTime<Utc>) -> Option<chrono::Duration> {
        self.server_time.map(|server| local - server)
    }
}

impl Krea {
    /// Sends `GET /jobs?limit=1` (it needs the token and costs nothing): an `Ok` means the
    /// API is reachable and accepts the token.
    ///
    /// ```no_run
    /// # async fn f(krea: krea::Krea) -> krea::Result<()> {
    /// let probe = krea.probe().await?;
    /// println!("token accepted; the API answered in {:?}", probe.latency);
    /// # Ok(()) }
    /// ```
    pub async fn probe(&self) -> Result<Probe> {
        let operation = "GET /jobs";
        let call = Call::api(self, Class::Read, Method::GET, "/jobs?limit=1", operation);
        let limit = self.inner.max_answer_bytes;
        let started = std::time::Instant::now();
        let server_time = self
            .execute(&call, |response| async move {
                let date = response
                    .headers()
                    .get(DATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                read_capped(response, limit).await.map(|_| date)
            })
            .await
            .map_err(|f| self.error(f, operation))?;
        Ok(Probe {
            latency: started.elapsed(),
            server_time,
        })
    }
}
