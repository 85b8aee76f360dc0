//! Records as they move through a pipeline, and records that failed.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;

use crate::ack::Ack;

/// One record on its own. Records move between stages in [`crate::batch::Batch`]es, column by
/// column; a `Record` is what a failed record carries, what `weir test` collects, and what a
/// component that keeps records one by one (a sink that retries them singly) takes out of a
/// batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The payload. `Bytes`, so that the records a transform returns share the one buffer
    /// they crossed the Wasm boundary in, and cloning a record does not copy its data.
    pub data: Bytes,
    /// Shared, not copied: the user records of a KPL aggregate point at one key table.
    pub partition_key: Arc<str>,
    /// Decimal sequence number (Kinesis) or line number (files); `None` when the source has none.
    pub sequence_number: Option<String>,
    /// Position inside a KPL aggregate.
    pub sub_sequence_number: Option<u64>,
    /// When the source saw the record, in milliseconds since the Unix epoch.
    pub arrival_ms: i64,
    /// Where the record came from, e.g. `file:data/clicks.jsonl`.
    pub source: Arc<str>,
    pub attributes: Vec<(String, String)>,
    /// Dynamic-partitioning keys returned by a transform (`metadata.partitionKeys`).
    pub partition_values: Vec<(String, String)>,
    /// Tells the source when the record is safe (see [`crate::ack`]).
    pub ack: Ack,
}

/// The empty partition key, shared: a record made without one costs no allocation for it.
pub(crate) fn no_key() -> Arc<str> {
    static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from("")).clone()
}

impl Record {
    pub fn new(data: impl Into<Bytes>, source: Arc<str>, arrival_ms: i64) -> Self {
        Record {
            data: data.into(),
            partition_key: no_key(),
            sequence_number: None,
            sub_sequence_number: None,
            arrival_ms,
            source,
            attributes: Vec::new(),
            partition_values: Vec::new(),
            ack: Ack::none(),
        }
    }

    /// Names the record in messages: its source and sequence number.
    pub fn describe(&self) -> String {
        match &self.sequence_number {
            Some(seq) => format!("{} #{seq}", self.source),
            None => self.source.to_string(),
        }
    }
}

/// The error output category, as Firehose names them in `!{firehose:error-output-type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOutputType {
    /// A processor (Wasm guest) failed the record.
    ProcessingFailed,
    /// The source could not read the record in its declared format (e.g. a line that is not JSON).
    SourceFailed,
    /// A sink gave up delivering it.
    DeliveryFailed,
    /// It could not be converted to the destination's record format (Parquet).
    FormatConversionFailed,
    /// The HTTP endpoint refused it, or kept failing until the retry duration ran out.
    HttpEndpointFailed,
}

impl ErrorOutputType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOutputType::ProcessingFailed => "processing-failed",
            ErrorOutputType::SourceFailed => "source-failed",
            ErrorOutputType::DeliveryFailed => "delivery-failed",
            ErrorOutputType::FormatConversionFailed => "format-conversion-failed",
            ErrorOutputType::HttpEndpointFailed => "http-endpoint-failed",
        }
    }
}

/// A record that could not go on, with the reason. It is written to the error output with its
/// original data, never dropped.
#[derive(Debug, Clone)]
pub struct FailedRecord {
    pub record: Record,
    pub output_type: ErrorOutputType,
    pub code: String,
    pub message: String,
    /// The stage that failed it, e.g. the module path.
    pub stage: String,
    pub attempts: u32,
    pub failed_at_ms: i64,
    /// Fields the stage adds to the record's line in the error output, beside the usual ones
    /// (the SQL stage writes KDA's `error_stream` columns here).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl FailedRecord {
    /// One line of the error output, in Firehose's error record layout plus Weir's own fields
    /// naming the record (`source`, `sequenceNumber`, `partitionKey`) and the failed stage.
    pub fn to_json_line(&self, pipeline: &str) -> Vec<u8> {
        let r = &self.record;
        let mut value = serde_json::json!({
            "attemptsMade": self.attempts,
            "arrivalTimestamp": r.arrival_ms,
            "errorCode": self.code,
            "errorMessage": self.message,
            "attemptEndingTimestamp": self.failed_at_ms,
            "rawData": base64::engine::general_purpose::STANDARD.encode(&r.data),
            "pipeline": pipeline,
            "stage": self.stage,
            "source": &*r.source,
            "partitionKey": &*r.partition_key,
        });
        if let Some(seq) = &r.sequence_number {
            value["sequenceNumber"] = seq.clone().into();
        }
        if let Some(sub) = r.sub_sequence_number {
            value["subSequenceNumber"] = sub.into();
        }
        if let (Some(details), Some(line)) = (&self.details, value.as_object_mut()) {
            for (k, v) in details {
                line.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut line = serde_json::to_vec(&value).expect("JSON values serialize");
        line.push(b'\n');
        line
    }
}
