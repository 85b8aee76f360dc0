//! `kinesis`: writes records to a Kinesis data stream with PutRecords.
//!
//! Calls carry at most 500 records and 5 MiB (data plus partition keys), as Kinesis allows.
//! Retries are [`super::batched`]'s: a destination that fails (throttling, a server error,
//! credentials, a stream not found) is retried until it recovers; only a record too large, one
//! without a usable partition key, or one Kinesis calls invalid goes to the error output
//! (`delivery-failed`) with the reason.
//!
//! Acknowledgement: a record's ack is released when Kinesis accepted it, or handed to the error
//! output with the record; never before. Ordering: records of one partition key keep their order
//! unless some of them are retried while later ones were accepted (as with the KPL).

pub mod config;

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tokio::sync::mpsc;

use super::batched::{Answer, Api};
use super::{Delivered, SinkContext, SinkError};
use crate::aws::kinesis_client as client;
use crate::config::{KinesisSinkConfig, PartitionKeyFrom};
use crate::record::Record;

const MAX_RECORDS: usize = 500;
const MAX_BYTES: usize = 5 << 20;
const MAX_RECORD: usize = 1 << 20;

pub(super) async fn run(
    config: KinesisSinkConfig,
    rx: mpsc::Receiver<crate::batch::Batch>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let client = client(config.region.as_deref(), config.endpoint.as_deref()).await;
    let api = Api {
        operation: "PutRecords",
        service: "Kinesis",
        stage: "sink:kinesis",
        max_records: MAX_RECORDS,
        max_bytes: MAX_BYTES,
        ctx: &ctx,
    };
    let key = |record: &Record| match partition_key(&config.partition_key, record) {
        Ok(key) if record.data.len() + key.len() <= MAX_RECORD => Ok(key),
        Ok(_) => Err((
            "RecordTooLarge",
            "record and partition key exceed 1 MiB".to_string(),
        )),
        Err(reason) => Err(("NoPartitionKey", reason)),
    };
    api.run(rx, key, |entries| {
        put(client.clone(), config.stream.clone(), entries)
    })
    .await
}

/// The partition key a record is written with.
fn partition_key(from: &PartitionKeyFrom, record: &Record) -> Result<String, String> {
    let key = match from {
        PartitionKeyFrom::Source => record.partition_key.to_string(),
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

/// One PutRecords call to `stream` (a name or an ARN).
async fn put(
    client: aws_sdk_kinesis::Client,
    stream: String,
    entries: Vec<(bytes::Bytes, String)>,
) -> Answer {
    let entries: Vec<PutRecordsRequestEntry> = entries
        .into_iter()
        .map(|(data, key)| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(data.to_vec()))
                .partition_key(key)
                .build()
                .expect("data and partition key are set")
        })
        .collect();
    let mut req = client.put_records().set_records(Some(entries));
    req = if crate::aws::is_arn(&stream) {
        req.stream_arn(&stream)
    } else {
        req.stream_name(&stream)
    };
    match req.send().await {
        Ok(out) => Answer::entries(
            out.records()
                .iter()
                .map(|r| (r.error_code(), r.error_message())),
        ),
        Err(e) => Answer::failed(
            e.code(),
            e.as_service_error().is_some(),
            format!("{}", DisplayErrorContext(&e)),
        ),
    }
}

super::runs_as_sink!(KinesisSinkConfig, run);

/// Its failed records go to the default error output.
impl crate::config::SinkComponent for KinesisSinkConfig {}

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
}
