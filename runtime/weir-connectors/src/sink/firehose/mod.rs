//! `firehose`: writes records to an existing Firehose delivery stream with PutRecordBatch.
//!
//! Calls carry at most 500 records and 4 MiB, and a record at most 1,000 KiB, as Firehose
//! allows. Retries are [`super::batched`]'s: records reported in `FailedPutCount` and calls
//! that fail (throttling, a server error, credentials, a delivery stream not found) are retried
//! until the destination recovers; only a record too large or one Firehose calls invalid goes
//! to the error output (`delivery-failed`, code `Firehose.<error code>`).
//!
//! Acknowledgement: a record's ack is released once Firehose accepted it (it then owns
//! delivery), or handed to the error output with the record; never before.

pub mod config;

use aws_sdk_firehose::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FirehoseRecord;
use tokio::sync::mpsc;

use super::batched::{Answer, Api};
use super::{Delivered, SinkContext, SinkError};
use crate::config::FirehoseSinkConfig;
use crate::record::Record;

const MAX_RECORDS: usize = 500;
const MAX_BYTES: usize = 4 << 20;
const MAX_RECORD: usize = 1000 << 10;

pub(super) async fn run(
    config: FirehoseSinkConfig,
    rx: mpsc::Receiver<crate::batch::Batch>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let sdk = crate::aws::sdk_config(config.region.as_deref(), config.endpoint.as_deref()).await;
    let client = aws_sdk_firehose::Client::new(&sdk);
    let api = Api {
        operation: "PutRecordBatch",
        service: "Firehose",
        stage: "sink:firehose",
        max_records: MAX_RECORDS,
        max_bytes: MAX_BYTES,
        ctx: &ctx,
    };
    let key = |record: &Record| match record.data.len() {
        n if n > MAX_RECORD => Err((
            "RecordTooLarge",
            "a Firehose record is at most 1,000 KiB".to_string(),
        )),
        _ => Ok(String::new()),
    };
    api.run(rx, key, |entries| {
        put(client.clone(), config.delivery_stream.clone(), entries)
    })
    .await
}

/// One PutRecordBatch call to `delivery_stream`.
async fn put(
    client: aws_sdk_firehose::Client,
    delivery_stream: String,
    entries: Vec<(bytes::Bytes, String)>,
) -> Answer {
    let records: Vec<FirehoseRecord> = entries
        .into_iter()
        .map(|(data, _)| {
            FirehoseRecord::builder()
                .data(Blob::new(data.to_vec()))
                .build()
                .expect("data is set")
        })
        .collect();
    let sent = client
        .put_record_batch()
        .delivery_stream_name(&delivery_stream)
        .set_records(Some(records))
        .send()
        .await;
    match sent {
        Ok(out) => Answer::entries(
            out.request_responses()
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

super::runs_as_sink!(FirehoseSinkConfig, run);

/// Its failed records go to the default error output.
impl crate::config::SinkComponent for FirehoseSinkConfig {}
