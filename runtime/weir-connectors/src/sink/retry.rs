//! How a sink retries a destination that fails as a whole (down, unreachable, refusing the
//! credentials, throttling, answering with a code this release does not know): with
//! exponential back-off and jitter, for as long as the pipeline runs, never by giving its
//! records up. A record goes to the error output only for a reason of its own (too large,
//! refused for its content); see each sink.
//!
//! While a destination fails, its [`Health`] says so (status API and metrics), and the
//! records stay unacknowledged, so the source's checkpoint does not move and bounded channels
//! slow the source down.
//!
//! At shutdown a failing destination gets [`LAST_ATTEMPTS`] more attempts for the delivery under
//! way (later deliveries to a destination that was given up on get none), then the sink gives
//! up what it holds: records a source checkpoint covers are released *undelivered*
//! (the source reads them again after the restart); records nothing would read again are kept
//! durably (the error output, or files under the state directory's `undelivered/`), never
//! dropped.

use std::time::Duration;

use rand::Rng;

use super::{SinkContext, SinkError};
use crate::record::Record;
use crate::stats::Stats;

/// Attempts a failing destination still gets once the pipeline stops.
pub const LAST_ATTEMPTS: u32 = 2;
/// The longest wait between attempts once the pipeline stops.
const LAST_WAIT: Duration = Duration::from_secs(1);

/// Exponential back-off with jitter: waits of `first`, `2 × first`, ... up to `max`, each
/// multiplied by a random factor from `jitter`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    jitter: (f64, f64),
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, jitter: (f64, f64)) -> Self {
        Backoff {
            first,
            max,
            next: first,
            jitter,
        }
    }

    /// The next wait.
    pub fn step(&mut self) -> Duration {
        let wait = self
            .next
            .mul_f64(rand::rng().random_range(self.jitter.0..=self.jitter.1))
            .min(self.max);
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Retries of one delivery (an object, a call, a request).
pub struct Retrying<'a> {
    ctx: &'a SinkContext,
    backoff: Backoff,
    /// Attempts made after the pipeline began to stop.
    after_stop: u32,
    /// What is retried, for the log: `PutRecords`, an object key...
    what: &'a str,
}

impl<'a> Retrying<'a> {
    pub fn new(ctx: &'a SinkContext, backoff: Backoff, what: &'a str) -> Self {
        Retrying {
            ctx,
            backoff,
            after_stop: 0,
            what,
        }
    }

    /// After an attempt that failed as a whole: records the failure, waits the back-off and
    /// returns `true` to try again, or `false` to give up (the pipeline failed elsewhere, or
    /// it is stopping and the last attempts are spent).
    pub async fn failed(&mut self, error: &str) -> bool {
        self.ctx.health.failed(error, self.ctx.clock.now_ms());
        if self.ctx.poison.is_set() {
            return false;
        }
        let mut wait = self.backoff.step();
        if self.ctx.shutdown.is_cancelled() {
            if self.after_stop >= LAST_ATTEMPTS || self.ctx.health.gave_up() {
                tracing::warn!(destination = %self.what, error, "The pipeline is stopping and the destination still fails; giving up what it holds");
                self.ctx.health.give_up();
                return false;
            }
            self.after_stop += 1;
            wait = wait.min(LAST_WAIT);
        }
        tracing::warn!(destination = %self.what, error, retry_in = ?wait, "Delivery failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            // Another stage failed: nothing counts as delivered any more.
            _ = self.ctx.poison.wait() => false,
            // Stopping: the next attempt comes at once, and is one of the last.
            _ = self.ctx.shutdown.cancelled(), if !self.ctx.shutdown.is_cancelled() => {
                self.after_stop += 1;
                true
            }
        }
    }

    pub fn succeeded(&mut self) {
        self.backoff.reset();
        if self.ctx.health.recovered() {
            tracing::info!(destination = %self.what, "The destination works again");
        }
    }
}

/// Records of a record-by-record sink given up at shutdown, their destination still failing.
#[derive(Debug, Default)]
pub struct GivenUp {
    /// The destination's last error.
    pub error: Option<String>,
    replayed: u64,
    kept: u64,
}

impl GivenUp {
    /// Sorts one record given up: one a source checkpoint covers is released undelivered (read
    /// again after the restart); any other is returned, for the error output to keep.
    pub fn sort(&mut self, record: Record, stats: &Stats) -> Option<Record> {
        Stats::add(&stats.records_undelivered, 1);
        if record.ack.is_none() {
            self.kept += 1;
            Some(record)
        } else {
            record.ack.fail();
            self.replayed += 1;
            None
        }
    }

    /// After the last delivery: an error saying what was given up at `location`, if anything.
    pub fn finish(self, location: &str) -> Result<(), SinkError> {
        let Some(error) = self.error else {
            return Ok(());
        };
        Err(SinkError::Undelivered {
            location: location.to_string(),
            error,
            outcome: format!(
                "{} record(s) not delivered, read again from the source's checkpoint at the next start; {} record(s) kept in the error output ({})",
                self.replayed,
                self.kept,
                crate::codes::DESTINATION_UNAVAILABLE
            ),
        })
    }
}
