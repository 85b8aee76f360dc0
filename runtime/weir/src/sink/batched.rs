//! Record-by-record delivery to a batch API (Kinesis PutRecords, Firehose PutRecordBatch): the
//! retry logic the `kinesis` and `firehose` sinks share.
//!
//! Calls carry at most the API's record and byte limits. Records that fail inside a call
//! (throttling, internal failure) and calls that fail as a whole with a transient error are
//! retried with exponential back-off and jitter, retried records first so that a key's records
//! stay in order when they can; after `max_attempts`, or at once for errors that will not go
//! away, the records go to the error output (`delivery-failed`, code `<Service>.<error code>`).
//!
//! Acknowledgement: a record's ack is released when the service accepted it (the record is
//! dropped then), or handed to the error output with the record; never before.

use std::time::Duration;

use rand::Rng;

use super::{SinkContext, SinkError};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::stats::Stats;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
        transient: bool,
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

    /// From a failed call: transport errors and the service's `transient` codes are retried.
    pub fn failed(
        code: Option<&str>,
        service_error: bool,
        message: String,
        transient: &[&str],
    ) -> Answer {
        let code = code.unwrap_or("TransportError").to_string();
        Answer::Failed {
            transient: !service_error || transient.contains(&code.as_str()),
            message,
            code,
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
    pub max_attempts: u32,
    pub ctx: &'a SinkContext,
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
        }
    }

    /// Runs a sink: every batch from `rx` is keyed by `key` (which may refuse a record with an
    /// error code and message), sent by `call`, and what is refused or given up on goes to
    /// the error output.
    pub async fn run<F, Fut>(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<Vec<Record>>,
        key: impl Fn(&Record) -> Result<String, (&'static str, String)>,
        call: F,
    ) -> Result<super::Delivered, SinkError>
    where
        F: Fn(Vec<(bytes::Bytes, String)>) -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let mut delivered = super::Delivered::default();
        while let Some(batch) = rx.recv().await {
            let mut pending = Vec::with_capacity(batch.len());
            let mut failed = Vec::new();
            for record in batch {
                match key(&record) {
                    Ok(key) => pending.push(Pending {
                        record,
                        key,
                        attempts: 0,
                    }),
                    Err((code, message)) => failed.push(self.fail(record, 0, code, message)),
                }
            }
            let (accepted, gave_up) = self.deliver(pending, &call).await;
            delivered.records += accepted as u64;
            failed.extend(gave_up);
            self.to_errors(failed).await?;
        }
        Ok(delivered)
    }

    /// Sends every pending record, in calls within the limits, until each is accepted or given
    /// up on; returns how many were accepted and the ones given up on.
    /// `call` is given each call's records as (data, key) and owns them, so that its future
    /// borrows nothing (and the sink's future stays `Send`).
    pub async fn deliver<F, Fut>(
        &self,
        mut pending: Vec<Pending>,
        call: &F,
    ) -> (usize, Vec<FailedRecord>)
    where
        F: Fn(Vec<(bytes::Bytes, String)>) -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let mut accepted = 0;
        let mut failed = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        let oldest = pending.iter().map(|p| p.record.arrival_ms).min();
        while !pending.is_empty() {
            let rest = self.split_call(&mut pending);
            let mut batch = std::mem::replace(&mut pending, rest);
            batch.iter_mut().for_each(|p| p.attempts += 1);
            let entries = batch
                .iter()
                .map(|p| (p.record.data.clone(), p.key.clone()))
                .collect();
            let answer = call(entries).await;
            let retry = self.judge(batch, answer, &mut accepted, &mut failed);
            if retry.is_empty() {
                backoff = FIRST_BACKOFF;
                continue;
            }
            let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            let mut again = retry;
            again.append(&mut pending);
            pending = again;
        }
        Stats::add(&self.ctx.stats.records_out, accepted as u64);
        if let Some(oldest) = oldest.filter(|_| accepted > 0) {
            self.ctx.stats.delivered(oldest, self.ctx.clock.now_ms());
        }
        (accepted, failed)
    }

    /// Sorts a call's records by its answer; returns those to retry.
    fn judge(
        &self,
        batch: Vec<Pending>,
        answer: Answer,
        accepted: &mut usize,
        failed: &mut Vec<FailedRecord>,
    ) -> Vec<Pending> {
        // Whole-call failures are judged record by record: each has its own attempts.
        let per_record =
            |batch: Vec<Pending>, code: &str, message: String, failed: &mut Vec<FailedRecord>| {
                let (retry, spent): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .partition(|p| p.attempts < self.max_attempts);
                failed.extend(
                    spent
                        .into_iter()
                        .map(|p| self.fail(p.record, p.attempts, code, message.clone())),
                );
                retry
            };
        match answer {
            Answer::PerRecord(results) if results.len() != batch.len() => {
                // Never pair results with the wrong records: treat the call as failed.
                tracing::warn!(
                    operation = self.operation,
                    sent = batch.len(),
                    answered = results.len(),
                    "The answer is for a different number of records; retrying them"
                );
                let message = format!(
                    "{} answered for a different number of records",
                    self.operation
                );
                per_record(batch, "MalformedResponse", message, failed)
            }
            Answer::PerRecord(results) => {
                let mut retry = Vec::new();
                for (p, result) in batch.into_iter().zip(results) {
                    match result {
                        // Accepted: the record's ack is released here, as `p` is dropped.
                        None => *accepted += 1,
                        Some((code, _)) if p.attempts < self.max_attempts => {
                            tracing::debug!(
                                operation = self.operation,
                                code,
                                "Entry failed; retrying"
                            );
                            retry.push(p);
                        }
                        Some((code, message)) => {
                            failed.push(self.fail(p.record, p.attempts, &code, message))
                        }
                    }
                }
                retry
            }
            Answer::Failed {
                code,
                message,
                transient: true,
            } => {
                tracing::warn!(operation = self.operation, error = %message, "Call failed; retrying");
                per_record(batch, &code, message, failed)
            }
            Answer::Failed { code, message, .. } => {
                tracing::warn!(operation = self.operation, error = %message, records = batch.len(), "Call failed; records go to the error output");
                failed.extend(
                    batch
                        .into_iter()
                        .map(|p| self.fail(p.record, p.attempts, &code, message.clone())),
                );
                Vec::new()
            }
        }
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
    use std::sync::Arc;

    fn ctx() -> SinkContext {
        SinkContext {
            pipeline: "p".into(),
            clock: Arc::new(crate::clock::SystemClock),
            stats: Arc::new(Stats::default()),
            poison: crate::ack::Poison::default(),
            errors: None,
        }
    }

    fn api(ctx: &SinkContext) -> Api<'_> {
        Api {
            operation: "PutRecords",
            service: "Kinesis",
            stage: "sink:kinesis",
            max_records: 500,
            max_bytes: 5 << 20,
            max_attempts: 2,
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

    #[test]
    fn failed_entries_are_retried_until_max_attempts_then_given_up() {
        let ctx = ctx();
        let api = api(&ctx);
        let (mut accepted, mut failed) = (0, Vec::new());
        let mut batch = pending(3, 1);
        batch.iter_mut().for_each(|p| p.attempts = 1);
        let throttled = Some((
            "ProvisionedThroughputExceededException".to_string(),
            "slow down".to_string(),
        ));
        let retry = api.judge(
            batch,
            Answer::PerRecord(vec![None, throttled.clone(), None]),
            &mut accepted,
            &mut failed,
        );
        assert_eq!((accepted, retry.len(), failed.len()), (2, 1, 0));
        let mut again = retry;
        again[0].attempts = 2;
        let retry = api.judge(
            again,
            Answer::PerRecord(vec![throttled]),
            &mut accepted,
            &mut failed,
        );
        assert!(retry.is_empty());
        assert_eq!(
            failed[0].code,
            "Kinesis.ProvisionedThroughputExceededException"
        );
        assert_eq!(failed[0].attempts, 2);

        // An answer for the wrong number of records is never paired with them.
        let mut batch = pending(2, 1);
        batch.iter_mut().for_each(|p| p.attempts = 2);
        let retry = api.judge(
            batch,
            Answer::PerRecord(vec![None]),
            &mut accepted,
            &mut failed,
        );
        assert!(retry.is_empty());
        assert_eq!(failed.last().unwrap().code, "Kinesis.MalformedResponse");
        assert_eq!(accepted, 2, "nothing counted as accepted");

        // A permanent whole-call error is not retried.
        let mut batch = pending(1, 1);
        batch[0].attempts = 1;
        let answer = Answer::Failed {
            code: "ResourceNotFoundException".into(),
            message: "no stream".into(),
            transient: false,
        };
        assert!(api
            .judge(batch, answer, &mut accepted, &mut failed)
            .is_empty());
        assert_eq!(
            failed.last().unwrap().code,
            "Kinesis.ResourceNotFoundException"
        );
    }
}
