//! `kinesis`: writes records to a Kinesis data stream with PutRecords.
//!
//! Calls carry at most 500 records and 5 MiB (data plus partition keys), as Kinesis allows.
//! Records that fail inside a call (throttling, internal failure) and calls that fail as a whole
//! with a retryable error are retried with exponential back-off and jitter; after `max_attempts`
//! attempts, or at once for errors that will not go away (no such stream, access denied, a
//! record too large), the records go to the error output (`delivery-failed`) with the error.
//!
//! Acknowledgement: a record's ack is released when Kinesis accepted it, or handed to the error
//! output with the record; never before. Ordering: records of one partition key keep their order
//! unless some of them are retried while later ones were accepted (as with the KPL).

use std::time::Duration;

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use rand::Rng;
use tokio::sync::mpsc;

use super::{Delivered, SinkContext, SinkError};
use crate::config::{KinesisSinkConfig, PartitionKeyFrom};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::source::kinesis::client;
use crate::stats::Stats;

const MAX_RECORDS: usize = 500;
const MAX_BYTES: usize = 5 << 20;
const MAX_RECORD: usize = 1 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Pending {
    record: Record,
    key: String,
    attempts: u32,
}

pub(super) async fn run(
    config: KinesisSinkConfig,
    mut rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let client = client(config.region.as_deref(), config.endpoint.as_deref()).await;
    let mut delivered = Delivered::default();
    while let Some(batch) = rx.recv().await {
        let mut pending = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        for record in batch {
            match partition_key(&config.partition_key, &record) {
                Ok(key) if record.data.len() + key.len() <= MAX_RECORD => pending.push(Pending {
                    record,
                    key,
                    attempts: 0,
                }),
                Ok(_) => failed.push(fail(
                    &ctx,
                    record,
                    0,
                    "Kinesis.RecordTooLarge",
                    "record and partition key exceed 1 MiB".into(),
                )),
                Err(reason) => failed.push(fail(&ctx, record, 0, "Kinesis.NoPartitionKey", reason)),
            }
        }
        let mut backoff = FIRST_BACKOFF;
        while !pending.is_empty() {
            let (call, rest) = split_call(pending);
            pending = rest;
            let (retry, done, gave_up) = put(&client, &config, call, &ctx).await;
            failed.extend(gave_up);
            Stats::add(&ctx.stats.records_out, done as u64);
            delivered.records += done as u64;
            if !retry.is_empty() {
                let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Retried records go first, so that a key's records stay in order if they can.
                let mut again = retry;
                again.extend(pending);
                pending = again;
            } else {
                backoff = FIRST_BACKOFF;
            }
        }
        if !failed.is_empty() {
            Stats::add(&ctx.stats.records_failed, failed.len() as u64);
            if let Some(errors) = &ctx.errors {
                if !ctx.poison.send(errors, failed).await {
                    return Err(SinkError::Stream {
                        what: "the error output",
                        source: std::io::Error::other("closed"),
                    });
                }
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
        stage: "sink:kinesis".into(),
        attempts,
        failed_at_ms: ctx.clock.now_ms(),
    }
}

/// The partition key a record is written with.
fn partition_key(from: &PartitionKeyFrom, record: &Record) -> Result<String, String> {
    let key = match from {
        PartitionKeyFrom::Source => record.partition_key.clone(),
        PartitionKeyFrom::Value(v) => v.clone(),
        PartitionKeyFrom::Field(path) => {
            let value: serde_json::Value = serde_json::from_slice(&record.data)
                .map_err(|e| format!("partition key field `{path}`: record is not JSON: {e}"))?;
            let found = path
                .split('.')
                .try_fold(&value, |v, k| v.as_object().and_then(|o| o.get(k)))
                .ok_or_else(|| format!("partition key field `{path}` is missing"))?;
            match found {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(format!(
                        "partition key field `{path}` is not a string, number or boolean"
                    ))
                }
            }
        }
    };
    if key.is_empty() || key.chars().count() > 256 {
        return Err(format!(
            "partition key `{key}` must have 1 to 256 characters"
        ));
    }
    Ok(key)
}

/// Takes the records of the next call (500 records, 5 MiB) off the front.
fn split_call(mut pending: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut bytes = 0;
    let mut n = 0;
    for p in &pending {
        let size = p.record.data.len() + p.key.len();
        if n == MAX_RECORDS || (n > 0 && bytes + size > MAX_BYTES) {
            break;
        }
        bytes += size;
        n += 1;
    }
    let rest = pending.split_off(n);
    (pending, rest)
}

/// One PutRecords call: returns the records to retry, how many were accepted, and the records
/// given up on.
async fn put(
    client: &aws_sdk_kinesis::Client,
    config: &KinesisSinkConfig,
    mut call: Vec<Pending>,
    ctx: &SinkContext,
) -> (Vec<Pending>, usize, Vec<FailedRecord>) {
    let entries: Vec<PutRecordsRequestEntry> = call
        .iter()
        .map(|p| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(p.record.data.to_vec()))
                .partition_key(&p.key)
                .build()
                .expect("data and partition key are set")
        })
        .collect();
    call.iter_mut().for_each(|p| p.attempts += 1);
    let mut req = client.put_records().set_records(Some(entries));
    req = if config.stream.starts_with("arn:") {
        req.stream_arn(&config.stream)
    } else {
        req.stream_name(&config.stream)
    };
    let give_up = |call: Vec<Pending>, code: &str, message: &str| -> Vec<FailedRecord> {
        call.into_iter()
            .map(|p| fail(ctx, p.record, p.attempts, code, message.to_string()))
            .collect()
    };
    match req.send().await {
        Ok(out) if out.records().len() != call.len() => {
            // Never pair results with the wrong records: treat the call as failed.
            tracing::warn!(
                sent = call.len(),
                answered = out.records().len(),
                "PutRecords answered for a different number of records; retrying them all"
            );
            let attempts = call.iter().map(|p| p.attempts).max().unwrap_or(0);
            if attempts < config.max_attempts {
                (call, 0, Vec::new())
            } else {
                (
                    Vec::new(),
                    0,
                    give_up(
                        call,
                        "Kinesis.MalformedResponse",
                        "PutRecords answered for a different number of records",
                    ),
                )
            }
        }
        Ok(out) => {
            let mut retry = Vec::new();
            let mut failed = Vec::new();
            let mut done = 0;
            for (p, result) in call.into_iter().zip(out.records()) {
                match result.error_code() {
                    // Accepted: the record's ack is released here, as `p` is dropped.
                    None => done += 1,
                    Some(code) if p.attempts < config.max_attempts => {
                        tracing::debug!(code, "PutRecords entry failed; retrying");
                        retry.push(p);
                    }
                    Some(code) => {
                        let message = result.error_message().unwrap_or(code).to_string();
                        failed.push(fail(
                            ctx,
                            p.record,
                            p.attempts,
                            &format!("Kinesis.{code}"),
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
                    "ProvisionedThroughputExceededException"
                        | "InternalFailure"
                        | "InternalFailureException"
                        | "ServiceUnavailable"
                        | "KMSThrottlingException"
                );
            let attempts = call.iter().map(|p| p.attempts).max().unwrap_or(0);
            if transient && attempts < config.max_attempts {
                tracing::warn!(error = %message, "PutRecords failed; retrying");
                (call, 0, Vec::new())
            } else {
                tracing::warn!(error = %message, records = call.len(), "PutRecords failed; records go to the error output");
                (
                    Vec::new(),
                    0,
                    give_up(call, &format!("Kinesis.{code}"), &message),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(data: &str, key: &str) -> Record {
        let mut r = Record::new(data.as_bytes().to_vec(), "t".into(), 0);
        r.partition_key = key.into();
        r
    }

    #[test]
    fn partition_keys_come_from_a_field_a_value_or_the_source() {
        let r = rec(r#"{"user":{"id":42},"name":"x"}"#, "src");
        assert_eq!(partition_key(&PartitionKeyFrom::Source, &r).unwrap(), "src");
        assert_eq!(
            partition_key(&PartitionKeyFrom::Value("v".into()), &r).unwrap(),
            "v"
        );
        assert_eq!(
            partition_key(&PartitionKeyFrom::Field("user.id".into()), &r).unwrap(),
            "42"
        );
        assert!(partition_key(&PartitionKeyFrom::Field("nope".into()), &r)
            .unwrap_err()
            .contains("missing"));
        assert!(partition_key(&PartitionKeyFrom::Source, &rec("x", "")).is_err());
    }

    #[test]
    fn calls_hold_at_most_500_records_and_5_mib() {
        let many: Vec<Pending> = (0..1200)
            .map(|i| Pending {
                record: rec("x", "k"),
                key: i.to_string(),
                attempts: 0,
            })
            .collect();
        let (call, rest) = split_call(many);
        assert_eq!((call.len(), rest.len()), (500, 700));
        let big: Vec<Pending> = (0..8)
            .map(|_| Pending {
                record: Record::new(vec![b'x'; (1 << 20) - 10], "t".into(), 0),
                key: "k".into(),
                attempts: 0,
            })
            .collect();
        let (call, rest) = split_call(big);
        assert_eq!((call.len(), rest.len()), (5, 3));
    }
}
