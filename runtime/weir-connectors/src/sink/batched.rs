//! Record-by-record delivery to a batch API (Kinesis PutRecords, Firehose PutRecordBatch): the
//! retry logic the `kinesis` and `firehose` sinks share.
//!
//! Calls carry at most the API's record and byte limits. What goes wrong is judged by whose
//! fault it is:
//! - **The destination's** (a call that fails as a whole: throttling, a server error, a
//!   connection that fails, lapsed or missing credentials, AccessDenied, a stream that does not
//!   exist, a code this release does not know; or entries refused inside an accepted call, which
//!   these APIs only do for throughput and server errors): retried with exponential back-off
//!   and jitter, the failed entries first so that a key's records stay in order when they can,
//!   for as long as the pipeline runs ([`super::retry`]). Never a reason to give a record up.
//! - **The records'** (a call refused as invalid, `ValidationException` or
//!   `InvalidArgumentException`): the call is split in halves until the records at fault are
//!   alone; each of those goes to the error output (`delivery-failed`, code
//!   `<Service>.<error code>`). Records the sink can judge before sending (too large, no usable
//!   partition key) go there at once.
//!
//! Acknowledgement: a record's ack is released when the service accepted it (the record is
//! dropped then), or handed to the error output with the record; never before. At shutdown,
//! records a failing destination still holds are given up as [`super::retry`] describes.

use std::collections::VecDeque;
use std::time::Duration;

use super::retry::{Backoff, GivenUp, Retrying};
use super::{SinkContext, SinkError};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::stats::Stats;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A record on its way, with the key it is sent with (empty for APIs without keys).
pub(super) struct Pending {
    pub record: Record,
    pub key: String,
    pub attempts: u32,
}

/// What one call said.
pub(super) enum Answer {
    /// One entry per record sent, in order: `None` accepted, `Some((code, message))` failed.
    PerRecord(Vec<Option<(String, String)>>),
    /// The call failed as a whole.
    Failed {
        code: String,
        message: String,
        /// The service called the request invalid: some record in it is at fault.
        invalid: bool,
    },
}

impl Answer {
    /// From a successful call's entries, `(error code, error message)` per record.
    pub fn entries<'a>(
        entries: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) -> Answer {
        Answer::PerRecord(
            entries
                .map(|(code, message)| {
                    code.map(|c| (c.to_string(), message.unwrap_or(c).to_string()))
                })
                .collect(),
        )
    }

    /// From a failed call: only a service error whose code says the request is invalid is
    /// the records' fault; every other failure is the destination's.
    pub fn failed(code: Option<&str>, service_error: bool, message: String) -> Answer {
        let invalid = service_error && crate::aws::invalid_request(code);
        Answer::Failed {
            code: code.unwrap_or("TransportError").to_string(),
            message,
            invalid,
        }
    }
}

/// A batch API and its limits.
pub(super) struct Api<'a> {
    /// The operation, for logs: `PutRecords`.
    pub operation: &'static str,
    /// The prefix of error codes: `Kinesis`.
    pub service: &'static str,
    pub stage: &'static str,
    pub max_records: usize,
    pub max_bytes: usize,
    pub ctx: &'a SinkContext,
}

/// What delivering some records came to.
#[derive(Default)]
pub(super) struct Outcome {
    pub accepted: usize,
    /// Refused for reasons of their own: for the error output.
    pub failed: Vec<FailedRecord>,
    /// Still pending when the sink had to stop (shutdown with the destination failing, or
    /// the pipeline failed elsewhere), with the last error.
    pub given_up: Vec<Pending>,
    pub last_error: Option<String>,
}

impl Api<'_> {
    pub fn fail(&self, record: Record, attempts: u32, code: &str, message: String) -> FailedRecord {
        FailedRecord {
            record,
            output_type: ErrorOutputType::DeliveryFailed,
            code: format!("{}.{code}", self.service),
            message,
            stage: self.stage.into(),
            attempts,
            failed_at_ms: self.ctx.clock.now_ms(),
            details: None,
        }
    }

    /// Runs a sink: every batch from `rx` is keyed by `key` (which may refuse a record with an
    /// error code and message), sent by `call`, and what is refused goes to the error output.
    pub async fn run<F, Fut>(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<crate::batch::Batch>,
        key: impl Fn(&Record) -> Result<String, (&'static str, String)>,
        call: F,
    ) -> Result<super::Delivered, SinkError>
    where
        F: Fn(Vec<(bytes::Bytes, String)>) -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let mut delivered = super::Delivered::default();
        let mut given_up = GivenUp::default();
        while let Some(batch) = rx.recv().await {
            let mut pending = Vec::with_capacity(batch.len());
            let mut failed = Vec::new();
            // Records are retried and refused one by one: the batch is taken apart here.
            for record in batch.into_records() {
                match key(&record) {
                    Ok(key) => pending.push(Pending {
                        record,
                        key,
                        attempts: 0,
                    }),
                    Err((code, message)) => failed.push(self.fail(record, 0, code, message)),
                }
            }
            let outcome = self.deliver(pending, &call).await;
            delivered.records += outcome.accepted as u64;
            failed.extend(outcome.failed);
            if let Some(e) = outcome.last_error.filter(|_| !outcome.given_up.is_empty()) {
                let message = format!(
                    "{} still failed when the pipeline stopped: {e}",
                    self.operation
                );
                for p in outcome.given_up {
                    let attempts = p.attempts;
                    if let Some(record) = given_up.sort(p.record, &self.ctx.stats) {
                        let mut f = self.fail(record, attempts, "", message.clone());
                        f.code = crate::codes::DESTINATION_UNAVAILABLE.into();
                        failed.push(f);
                    }
                }
                given_up.error = Some(e);
            }
            self.to_errors(failed).await?;
        }
        given_up.finish(self.operation)?;
        Ok(delivered)
    }

    /// Sends every pending record, in calls within the limits, until each is accepted, refused
    /// for a reason of its own, or given up at shutdown.
    /// `call` is given each call's records as (data, key) and owns them, so that its future
    /// borrows nothing (and the sink's future stays `Send`).
    pub async fn deliver<F, Fut>(&self, pending: Vec<Pending>, call: &F) -> Outcome
    where
        F: Fn(Vec<(bytes::Bytes, String)>) -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let mut out = Outcome::default();
        let oldest = pending.iter().map(|p| p.record.arrival_ms).min();
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF, (0.5, 1.0));
        let mut retry = Retrying::new(self.ctx, backoff, self.operation);
        // Groups of records to send, in order; a group larger than one call is split first.
        let mut queue: VecDeque<Vec<Pending>> = VecDeque::from([pending]);
        while let Some(mut group) = queue.pop_front() {
            if group.is_empty() {
                continue;
            }
            let rest = self.split_call(&mut group);
            if !rest.is_empty() {
                queue.push_front(rest);
            }
            group.iter_mut().for_each(|p| p.attempts += 1);
            let entries = group
                .iter()
                .map(|p| (p.record.data.clone(), p.key.clone()))
                .collect();
            let answer = call(entries).await;
            let failure = match answer {
                Answer::PerRecord(results) if results.len() != group.len() => {
                    // Never pair results with the wrong records: the answer is the service's
                    // fault, and the whole call is sent again.
                    let message = format!(
                        "{} answered for {} records of {}",
                        self.operation,
                        results.len(),
                        group.len()
                    );
                    Some((group, message))
                }
                Answer::PerRecord(results) => {
                    let mut again = Vec::new();
                    let mut reason = None;
                    for (p, result) in group.into_iter().zip(results) {
                        match result {
                            // Accepted: the record's ack is released here, as `p` is dropped.
                            None => out.accepted += 1,
                            Some((code, message)) => {
                                reason.get_or_insert_with(|| format!("{code}: {message}"));
                                again.push(p);
                            }
                        }
                    }
                    match reason {
                        None => {
                            retry.succeeded();
                            None
                        }
                        // Entries refused for throughput or a server error: the destination's
                        // fault, retried after a back-off.
                        Some(reason) => Some((again, reason)),
                    }
                }
                Answer::Failed {
                    code,
                    message,
                    invalid: true,
                } => {
                    if group.len() > 1 {
                        // Find the records at fault: each half is sent on its own.
                        let second = group.split_off(group.len() / 2);
                        queue.push_front(second);
                        queue.push_front(group);
                    } else {
                        tracing::warn!(
                            operation = self.operation,
                            code,
                            "A record was refused as invalid; it goes to the error output"
                        );
                        out.failed.extend(
                            group
                                .into_iter()
                                .map(|p| self.fail(p.record, p.attempts, &code, message.clone())),
                        );
                    }
                    None
                }
                Answer::Failed { code, message, .. } => Some((group, format!("{code}: {message}"))),
            };
            let Some((again, reason)) = failure else {
                continue;
            };
            out.last_error = Some(reason.clone());
            if retry.failed(&reason).await {
                queue.push_front(again);
            } else {
                out.given_up.extend(again);
                out.given_up.extend(queue.drain(..).flatten());
            }
        }
        Stats::add(&self.ctx.stats.records_out, out.accepted as u64);
        if let Some(oldest) = oldest.filter(|_| out.accepted > 0) {
            self.ctx.stats.delivered(oldest, self.ctx.clock.now_ms());
        }
        out
    }

    /// Leaves the next call's records in `pending`; returns the rest.
    fn split_call(&self, pending: &mut Vec<Pending>) -> Vec<Pending> {
        let mut bytes = 0;
        let mut n = 0;
        for p in pending.iter() {
            let size = p.record.data.len() + p.key.len();
            if n == self.max_records || (n > 0 && bytes + size > self.max_bytes) {
                break;
            }
            bytes += size;
            n += 1;
        }
        pending.split_off(n)
    }

    /// Hands records given up on to the error output.
    pub async fn to_errors(&self, failed: Vec<FailedRecord>) -> Result<(), SinkError> {
        if failed.is_empty() {
            return Ok(());
        }
        Stats::add(&self.ctx.stats.records_failed, failed.len() as u64);
        let sent = match &self.ctx.errors {
            Some(errors) => self.ctx.poison.send(errors, failed).await,
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(SinkError::Stream {
                what: "the error output",
                source: std::io::Error::other("closed"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn ctx() -> SinkContext {
        SinkContext::standalone("p")
    }

    fn api(ctx: &SinkContext) -> Api<'_> {
        Api {
            operation: "PutRecords",
            service: "Kinesis",
            stage: "sink:kinesis",
            max_records: 500,
            max_bytes: 5 << 20,
            ctx,
        }
    }

    fn pending(n: usize, size: usize) -> Vec<Pending> {
        (0..n)
            .map(|i| Pending {
                record: Record::new(vec![b'x'; size], "t".into(), 0),
                key: i.to_string(),
                attempts: 0,
            })
            .collect()
    }

    #[test]
    fn calls_hold_at_most_the_record_and_byte_limits() {
        let ctx = ctx();
        let mut many = pending(1200, 1);
        let rest = api(&ctx).split_call(&mut many);
        assert_eq!((many.len(), rest.len()), (500, 700));
        let mut big = pending(8, (1 << 20) - 10);
        let rest = api(&ctx).split_call(&mut big);
        assert_eq!((big.len(), rest.len()), (5, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_destination_is_retried_until_it_recovers_never_given_up_record_by_record() {
        let ctx = ctx();
        let api = api(&ctx);
        let calls = Arc::new(AtomicUsize::new(0));
        // 30 calls refused as a whole (expired credentials, say), then accepted: far more than
        // any attempt limit, and not one record goes to the error output.
        let call = |entries: Vec<(bytes::Bytes, String)>| {
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, Ordering::Relaxed) < 30 {
                    Answer::failed(Some("ExpiredTokenException"), true, "expired".into())
                } else {
                    Answer::PerRecord(vec![None; entries.len()])
                }
            }
        };
        let out = api.deliver(pending(3, 1), &call).await;
        assert_eq!(
            (out.accepted, out.failed.len(), out.given_up.len()),
            (3, 0, 0)
        );
        assert_eq!(calls.load(Ordering::Relaxed), 31);
        assert_eq!(ctx.health.read().down_since_ms, None, "recovered");
        assert_eq!(ctx.health.read().failures, 30);
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_call_is_split_until_the_record_at_fault_is_alone() {
        let ctx = ctx();
        let api = api(&ctx);
        // Record "3" makes any call holding it invalid; the others are accepted.
        let call = |entries: Vec<(bytes::Bytes, String)>| async move {
            if entries.iter().any(|(_, k)| k == "3") {
                Answer::failed(Some("ValidationException"), true, "bad record".into())
            } else {
                Answer::PerRecord(vec![None; entries.len()])
            }
        };
        let out = api.deliver(pending(8, 1), &call).await;
        assert_eq!(out.accepted, 7);
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].code, "Kinesis.ValidationException");
        // Entries refused inside a call are retried; an answer for the wrong number of
        // records is never paired with them.
        let flaky = Arc::new(AtomicUsize::new(0));
        let call = |entries: Vec<(bytes::Bytes, String)>| {
            let flaky = flaky.clone();
            async move {
                match flaky.fetch_add(1, Ordering::Relaxed) {
                    0 => Answer::PerRecord(vec![None]),
                    1 => Answer::PerRecord(
                        entries
                            .iter()
                            .enumerate()
                            .map(|(i, _)| {
                                (i == 0).then(|| {
                                    (
                                        "ProvisionedThroughputExceededException".into(),
                                        "slow".into(),
                                    )
                                })
                            })
                            .collect(),
                    ),
                    _ => Answer::PerRecord(vec![None; entries.len()]),
                }
            }
        };
        let out = api.deliver(pending(2, 1), &call).await;
        assert_eq!((out.accepted, out.failed.len()), (2, 0));
        assert_eq!(flaky.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn at_shutdown_a_failing_destination_gives_its_records_up_after_the_last_attempts() {
        let ctx = ctx();
        ctx.shutdown.cancel();
        let api = api(&ctx);
        let call = |_: Vec<(bytes::Bytes, String)>| async {
            Answer::failed(None, false, "connection refused".into())
        };
        let out = api.deliver(pending(4, 1), &call).await;
        assert_eq!(out.given_up.len(), 4);
        assert_eq!(
            out.given_up[0].attempts,
            1 + super::super::retry::LAST_ATTEMPTS
        );
        assert!(out.last_error.unwrap().contains("connection refused"));
    }
}
