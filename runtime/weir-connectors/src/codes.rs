//! The stable error codes written into the error output (`errorCode`), in one place.
//!
//! A code names why a record could not go on; it never changes meaning once released, so
//! that alerts and queries over error outputs keep working. Codes of the Wasm sandbox
//! (`Wasm.Timeout`, `Wasm.Trap`, ...) are defined by `weir-wasm` (`GuestErrorKind::code`);
//! codes a remote service reports are passed through with its prefix (`Kinesis.<code>`,
//! `Firehose.<code>`, `HttpEndpoint.<status>`).

/// A line of a `json` source that is not JSON.
pub const SOURCE_INVALID_JSON: &str = "Source.InvalidJson";
/// A line longer than the source's `max_line`; the error record holds its first bytes.
pub const SOURCE_LINE_TOO_LONG: &str = "Source.LineTooLong";
/// A KPL aggregate whose checksum or protobuf does not check out.
pub const KINESIS_CORRUPT_AGGREGATE: &str = "Kinesis.CorruptAggregate";
/// A KPL aggregate that expands past Weir's limits (user records, expanded bytes, key length).
pub const KINESIS_AGGREGATE_LIMIT: &str = "Kinesis.AggregateLimitExceeded";
/// A record the Kinesis sink cannot key.
pub const KINESIS_NO_PARTITION_KEY: &str = "Kinesis.NoPartitionKey";
/// A record (with its key) over the Kinesis sink's 1 MiB.
pub const KINESIS_RECORD_TOO_LARGE: &str = "Kinesis.RecordTooLarge";
/// A record over Firehose's 1,000 KiB.
pub const FIREHOSE_RECORD_TOO_LARGE: &str = "Firehose.RecordTooLarge";
/// The partition keys of a record cannot be extracted.
pub const PARTITION_EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";
/// The evaluated prefix is too long or not a safe path.
pub const PARTITION_INVALID_PREFIX: &str = "DynamicPartitioning.InvalidPrefix";
/// The record would open a partition beyond `max_partitions`.
pub const PARTITION_LIMIT: &str = "DynamicPartitioning.ActivePartitionsLimitExceeded";
/// The object the record would go into would have a key the store cannot hold.
pub const OBJECT_KEY_TOO_LONG: &str = "ObjectKey.TooLong";
/// The record does not convert to the Parquet schema.
pub const FORMAT_CONVERSION_FAILED: &str = "DataFormatConversion.InvalidRecord";
/// The HTTP endpoint answered 413: the request's records are too large for it.
pub const HTTP_TOO_LARGE: &str = "HttpEndpoint.RequestEntityTooLarge";
/// The HTTP endpoint answered 200 without echoing the request id and a timestamp.
pub const HTTP_MALFORMED_RESPONSE: &str = "HttpEndpoint.MalformedResponse";
/// No answer within `request_timeout`.
pub const HTTP_TIMEOUT: &str = "HttpEndpoint.Timeout";
/// The connection failed (refused, reset, TLS).
pub const HTTP_CONNECTION_FAILED: &str = "HttpEndpoint.ConnectionFailed";
/// The answer could not be read, or was over the size Weir reads back.
pub const HTTP_RESPONSE_FAILED: &str = "HttpEndpoint.ResponseFailed";
/// A request that could not be built (a header value refused at send time).
pub const HTTP_INVALID_REQUEST: &str = "HttpEndpoint.InvalidRequest";
/// A destination was still failing when the pipeline stopped, for a record that no source
/// checkpoint will replay: it is kept here instead.
pub const DESTINATION_UNAVAILABLE: &str = "Delivery.DestinationUnavailable";
