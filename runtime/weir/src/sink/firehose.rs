//! `firehose`: writes records to an existing Firehose delivery stream with PutRecordBatch.
//!
//! Calls carry at most 500 records and 4 MiB, and a record at most 1,000 KiB, as Firehose
//! allows. Records reported in `FailedPutCount` (an `ErrorCode` in their response entry) and
//! calls that fail with a retryable error are retried with exponential back-off and jitter;
//! after `max_attempts`, or at once for errors that will not go away (no such delivery stream,
//! access denied, a record too large), the records go to the error output
//! (`delivery-failed`, code `Firehose.<error code>`).
//!
//! Acknowledgement: a record's ack is released once Firehose accepted it (it then owns
//! delivery), or handed to the error output with the record; never before.

use std::time::Duration;

use aws_sdk_firehose::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FirehoseRecord;
use rand::Rng;
use tokio::sync::mpsc;

use super::{Delivered, SinkContext, SinkError};
use crate::config::FirehoseSinkConfig;
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::stats::Stats;

const MAX_RECORDS: usize = 500;
const MAX_BYTES: usize = 4 << 20;
const MAX_RECORD: usize = 1000 << 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Pending {
    record: Record,
    attempts: u32,
}

pub(super) async fn run(
    config: FirehoseSinkConfig,
    mut rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let sdk =
        crate::source::kinesis::sdk_config(config.region.as_deref(), config.endpoint.as_deref())
            .await;
    let client = aws_sdk_firehose::Client::new(&sdk);
    let mut delivered = Delivered::default();
    while let Some(batch) = rx.recv().await {
        let mut pending = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        for record in batch {
            if record.data.len() > MAX_RECORD {
                failed.push(fail(
                    &ctx,
                    record,
                    0,
                    "Firehose.RecordTooLarge",
                    "a Firehose record is at most 1,000 KiB".into(),
                ));
            } else {
                pending.push(Pending {
                    record,
                    attempts: 0,
                });
            }
        }
        let mut backoff = FIRST_BACKOFF;
        while !pending.is_empty() {
            let rest = split_call(&mut pending);
            let call = std::mem::replace(&mut pending, rest);
            let (retry, done, gave_up) = put(&client, &config, call, &ctx).await;
            failed.extend(gave_up);
            Stats::add(&ctx.stats.records_out, done as u64);
            delivered.records += done as u64;
            if !retry.is_empty() {
                let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                let mut again = retry;
                again.extend(pending);
                pending = again;
            } else {
                backoff = FIRST_BACKOFF;
            }
        }
        if !failed.is_empty() {
            Stats::add(&ctx.stats.records_failed, failed.len() as u64);
            let sent = match &ctx.errors {
                Some(errors) => ctx.poison.send(errors, failed).await,
                None => false,
            };
            if !sent {
                return Err(SinkError::Stream {
                    what: "the error output",
                    source: std::io::Error::other("closed"),
                });
            }
        }
    }
    Ok(delivered)
}

fn fail(
    ctx: &SinkContext,
    record: Record,
    attempts: u32,
    code: &str,
    message: String,
) -> FailedRecord {
    FailedRecord {
        record,
        output_type: ErrorOutputType::DeliveryFailed,
        code: code.to_string(),
        message,
        stage: "sink:firehose".into(),
        attempts,
        failed_at_ms: ctx.clock.now_ms(),
    }
}

/// Leaves the next call's records (500 records, 4 MiB) in `pending`; returns the rest.
fn split_call(pending: &mut Vec<Pending>) -> Vec<Pending> {
    let mut bytes = 0;
    let mut n = 0;
    for p in pending.iter() {
        let size = p.record.data.len();
        if n == MAX_RECORDS || (n > 0 && bytes + size > MAX_BYTES) {
            break;
        }
        bytes += size;
        n += 1;
    }
    pending.split_off(n)
}

/// One PutRecordBatch call: the records to retry, how many were accepted, and the records
/// given up on.
async fn put(
    client: &aws_sdk_firehose::Client,
    config: &FirehoseSinkConfig,
    mut call: Vec<Pending>,
    ctx: &SinkContext,
) -> (Vec<Pending>, usize, Vec<FailedRecord>) {
    let records: Vec<FirehoseRecord> = call
        .iter()
        .map(|p| {
            FirehoseRecord::builder()
                .data(Blob::new(p.record.data.to_vec()))
                .build()
                .expect("data is set")
        })
        .collect();
    call.iter_mut().for_each(|p| p.attempts += 1);
    let attempts = call.iter().map(|p| p.attempts).max().unwrap_or(0);
    let give_up = |call: Vec<Pending>, code: &str, message: &str| -> Vec<FailedRecord> {
        call.into_iter()
            .map(|p| fail(ctx, p.record, p.attempts, code, message.to_string()))
            .collect()
    };
    let sent = client
        .put_record_batch()
        .delivery_stream_name(&config.delivery_stream)
        .set_records(Some(records))
        .send()
        .await;
    match sent {
        Ok(out) if out.request_responses().len() != call.len() => {
            tracing::warn!(
                sent = call.len(),
                answered = out.request_responses().len(),
                "PutRecordBatch answered for a different number of records; retrying them all"
            );
            if attempts < config.max_attempts {
                (call, 0, Vec::new())
            } else {
                let message = "PutRecordBatch answered for a different number of records";
                (
                    Vec::new(),
                    0,
                    give_up(call, "Firehose.MalformedResponse", message),
                )
            }
        }
        Ok(out) => {
            let mut retry = Vec::new();
            let mut failed = Vec::new();
            let mut done = 0;
            for (p, result) in call.into_iter().zip(out.request_responses()) {
                match result.error_code() {
                    // Accepted: the record's ack is released here, as `p` is dropped.
                    None => done += 1,
                    Some(code) if p.attempts < config.max_attempts => {
                        tracing::debug!(code, "PutRecordBatch entry failed; retrying");
                        retry.push(p);
                    }
                    Some(code) => {
                        let message = result.error_message().unwrap_or(code).to_string();
                        failed.push(fail(
                            ctx,
                            p.record,
                            p.attempts,
                            &format!("Firehose.{code}"),
                            message,
                        ));
                    }
                }
            }
            (retry, done, failed)
        }
        Err(e) => {
            let code = e.code().unwrap_or("TransportError").to_string();
            let message = format!("{}", DisplayErrorContext(&e));
            let transient = e.as_service_error().is_none()
                || matches!(
                    code.as_str(),
                    "ServiceUnavailableException" | "InternalFailure" | "ThrottlingException"
                );
            if transient && attempts < config.max_attempts {
                tracing::warn!(error = %message, "PutRecordBatch failed; retrying");
                (call, 0, Vec::new())
            } else {
                (
                    Vec::new(),
                    0,
                    give_up(call, &format!("Firehose.{code}"), &message),
                )
            }
        }
    }
}
