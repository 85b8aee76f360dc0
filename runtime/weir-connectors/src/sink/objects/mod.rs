//! Firehose-style objects, shared by the `file` and `s3` sinks, the error outputs and the
//! backup: buffering hints, custom prefixes, dynamic partitioning, compression, Parquet, and
//! durable writes to a directory or an S3 bucket. [`run`] drives an [`Objects`] from a
//! channel; [`store`] writes objects where they go; [`parquet`] converts JSON records to rows.
//!
//! Object key: `<evaluated prefix><pipeline>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>`, where
//! the time is when the object's oldest record entered its buffer (in the configured time
//! zone, UTC by default).
//!
//! Invariants:
//! - One buffer per partition (the values of the prefix's partition keys, or the error output
//!   type); at most `max_partitions` buffer at once, and a record of a new partition beyond that
//!   goes to the error output.
//! - A record whose partition keys cannot be extracted, or that does not convert to Parquet,
//!   goes to the error output with the reason; its ack travels with it, so it still counts as
//!   delivered only once written somewhere.
//! - An object's acks are released only after the object is durably stored: a directory
//!   object is written to a hidden temporary file, synced and renamed (readers never see a
//!   partial object); an S3 object is stored once PutObject (or CompleteMultipartUpload)
//!   succeeds.

pub mod config;
pub mod parquet;
pub(crate) mod roles;
pub(crate) mod run;
mod store;

use crate::config::Refused;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::compress::compress;
use super::retry::{Backoff, Retrying};
use super::{Delivered, SinkContext, SinkError};
use crate::ack::{Ack, Held};
use crate::batch::Batch;
use crate::config::{show, BufferConfig, Delimiter, Format, ObjectOptions};
use crate::expr::prefix::{Prefix, Values};
use crate::record::{ErrorOutputType, FailedRecord};
use crate::stats::Stats;

use parquet::{Row, Schema};
pub use store::Store;

/// How a failed object write is retried: from 200 ms, doubling, up to 30 s apart, for as long
/// as the pipeline runs (see [`super::retry`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The buffered contents of one object.
enum Content {
    Bytes(Parts),
    Rows(Vec<Row>),
}

/// Records at least this large are kept as their own buffers rather than copied (see
/// [`Parts`]); below it a copy costs less than a slice of a vectored write.
const SHARED_FROM: usize = 4 << 10;

/// The size of the chunks small records are copied into (see [`Parts::room`]).
const TAIL_CHUNK: usize = 1 << 20;

/// An object's bytes as buffered, in order: small records copied together, large ones kept as
/// the records' own buffers, so a file object of large records is written from them with one
/// vectored write and its bytes are copied once (by the kernel), not twice.
#[derive(Default)]
struct Parts {
    parts: Vec<Bytes>,
    /// Copied bytes not yet closed into a part.
    tail: Vec<u8>,
}

impl Parts {
    fn copy(&mut self, data: &[u8]) {
        self.room(data.len());
        self.tail.extend_from_slice(data);
    }

    fn share(&mut self, data: Bytes) {
        if !self.tail.is_empty() {
            self.parts.push(Bytes::from(std::mem::take(&mut self.tail)));
        }
        self.parts.push(data);
    }

    /// Appends bytes (a record's, or a run of records') and, with `newline`, a delimiter.
    /// Large enough, they are kept as they are: a slice of the batch they came in, which keeps
    /// that batch's whole buffer alive until the object is written.
    fn push(&mut self, data: Bytes, newline: bool) {
        if data.len() >= SHARED_FROM {
            self.share(data);
            if newline {
                self.parts.push(Bytes::from_static(b"\n"));
            }
        } else {
            self.room(data.len() + usize::from(newline));
            self.tail.extend_from_slice(&data);
            if newline {
                self.tail.push(b'\n');
            }
        }
    }

    /// Makes room for `n` more copied bytes without moving those already copied: a tail
    /// without room is closed into a part, and the next one is twice as large (up to
    /// [`TAIL_CHUNK`]). So a large object is built in chunks of a MiB, never reallocated (each
    /// byte copied once), and its memory goes back to the allocator in pieces the next object
    /// reuses, rather than as one large mapping faulted in afresh each time; a small one (an
    /// error output's few lines) takes little.
    fn room(&mut self, n: usize) {
        let cap = self.tail.capacity();
        if cap - self.tail.len() >= n {
            return;
        }
        if !self.tail.is_empty() {
            self.parts.push(Bytes::from(std::mem::take(&mut self.tail)));
        }
        let next = (cap * 2).clamp(1 << 10, TAIL_CHUNK);
        self.tail = Vec::with_capacity(n.max(next));
    }

    fn finish(mut self) -> Vec<Bytes> {
        if !self.tail.is_empty() {
            self.parts.push(Bytes::from(self.tail));
        }
        self.parts
    }
}

/// Records waiting to become one object.
pub struct Buffer {
    hints: BufferConfig,
    delimiter: Delimiter,
    content: Content,
    /// Bytes of record data, before delimiters and compression (what the size hint counts).
    data_bytes: u64,
    records: u64,
    /// The oldest record's arrival (ms since the epoch), and when the buffer opened.
    opened: Option<(i64, tokio::time::Instant)>,
    acks: Held,
    /// Bytes the buffer holds in memory (Parquet rows at their in-memory size), counted
    /// against the pipeline's [`super::MemoryBudget`].
    mem: u64,
}

impl Buffer {
    fn new(hints: BufferConfig, delimiter: Delimiter, rows: bool) -> Self {
        Buffer {
            hints,
            delimiter,
            content: if rows {
                Content::Rows(Vec::new())
            } else {
                Content::Bytes(Parts::default())
            },
            data_bytes: 0,
            records: 0,
            opened: None,
            acks: Held::default(),
            mem: 0,
        }
    }

    /// Counts a record in; `arrival_ms` is when it entered the pipeline: the object's time
    /// (prefix and name) is that of its oldest record, as Firehose's.
    fn open(&mut self, data_len: usize, ack: &Ack, arrival_ms: i64) {
        self.acks.hold(ack);
        match &mut self.opened {
            None => self.opened = Some((arrival_ms, tokio::time::Instant::now())),
            Some((oldest, _)) if arrival_ms < *oldest => *oldest = arrival_ms,
            Some(_) => {}
        }
        self.data_bytes += data_len as u64;
        self.records += 1;
    }

    /// Adds a record's bytes; returns the bytes of memory it took.
    fn push(&mut self, data: &[u8], ack: &Ack, arrival_ms: i64) -> u64 {
        self.open(data.len(), ack, arrival_ms);
        let mut added = data.len() as u64;
        if let Content::Bytes(body) = &mut self.content {
            body.copy(data);
            if self.delimiter == Delimiter::Newline {
                body.copy(b"\n");
                added += 1;
            }
        }
        self.mem += added;
        added
    }

    /// Adds the records of `batch` from `from` on, in order, until the size hint is reached or
    /// they run out; returns how many it took and the bytes of memory they took. Nothing is
    /// done per record but the copy (and its delimiter): the batch's columns give the sizes,
    /// and its acks and arrival times are taken per run and per column.
    fn extend(&mut self, batch: &Batch, from: usize) -> (usize, u64) {
        let Content::Bytes(body) = &mut self.content else {
            return (0, 0);
        };
        let newline = self.delimiter == Delimiter::Newline;
        let room = self.hints.size.0.saturating_sub(self.data_bytes);
        let o = batch.offsets();
        // The records up to the one that reaches the hint (it is taken whole).
        let reach = u64::from(o[from]) + room;
        let end =
            (from + 1 + o[from + 1..].partition_point(|e| u64::from(*e) < reach)).min(batch.len());
        let wanted = u64::from(o[end] - o[from]);
        let count = end - from;
        let added = wanted + if newline { count as u64 } else { 0 };
        let data = batch.data();
        if !newline {
            // Back to back, the records' bytes are one run of the batch's buffer.
            body.push(data.slice(o[from] as usize..o[end] as usize), false);
        } else {
            // One reservation for the copies; records large enough to share are not copied
            // (and not reserved for: the tail is closed into a part at each of them).
            let copied: usize = (from..end)
                .map(|i| (o[i + 1] - o[i]) as usize)
                .filter(|n| *n < SHARED_FROM)
                .map(|n| n + 1)
                .sum();
            body.room(copied);
            for i in from..end {
                let (a, b) = (o[i] as usize, o[i + 1] as usize);
                if b - a >= SHARED_FROM {
                    body.push(data.slice(a..b), true);
                } else {
                    body.tail.extend_from_slice(&data[a..b]);
                    body.tail.push(b'\n');
                }
            }
        }
        batch.hold_acks_of(from..end, &mut self.acks);
        if let Some(oldest) = batch.arrival_column()[from..end].iter().copied().min() {
            match &mut self.opened {
                None => self.opened = Some((oldest, tokio::time::Instant::now())),
                Some((o, _)) => *o = (*o).min(oldest),
            }
        }
        self.data_bytes += wanted;
        self.records += count as u64;
        self.mem += added;
        (count, added)
    }

    /// Adds a converted row; returns the bytes of memory it took (its in-memory size, which
    /// is larger than the JSON it came from).
    fn push_row(&mut self, row: Row, data_len: usize, ack: &Ack, arrival_ms: i64) -> u64 {
        self.open(data_len, ack, arrival_ms);
        let added = super::parquet::row_size(&row) as u64;
        if let Content::Rows(rows) = &mut self.content {
            rows.push(row);
        }
        self.mem += added;
        added
    }

    fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The size hint is reached. (An interval of zero is handled per batch: see
    /// [`Objects::flush_immediate`].)
    fn is_full(&self) -> bool {
        !self.is_empty() && self.data_bytes >= self.hints.size.0
    }

    /// When the interval hint runs out, if anything is buffered.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        self.opened.map(|(_, at)| at + self.hints.interval.0)
    }
}

/// What distinguishes one partition's buffer from another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PartitionId {
    query: BTreeMap<String, String>,
    lambda: BTreeMap<String, String>,
    error_type: Option<&'static str>,
}

/// A record that could not be placed in an object.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub output_type: ErrorOutputType,
    pub code: &'static str,
    pub message: String,
}

/// Objects being built for one destination.
pub struct Objects {
    pub store: Store,
    options: ObjectOptions,
    /// The prefix objects are named with: the records' or the error prefix.
    prefix: Arc<Prefix>,
    schema: Option<Arc<Schema>>,
    pipeline: String,
    version: u32,
    partitions: HashMap<PartitionId, Buffer>,
    pub delivered: Delivered,
    /// Whether written records count as the pipeline's output (not for errors and backups).
    count_out: bool,
    /// What was given up at shutdown because the store still failed (see [`super::retry`]):
    /// records, where they went, and the last error.
    given_up: Option<GivenUp>,
}

/// Objects given up on at shutdown.
#[derive(Debug, Default)]
struct GivenUp {
    error: String,
    /// Records left to the source's replay (their acks resolve as not delivered).
    replayed: u64,
    /// Records of objects kept under the undelivered directory, and where.
    kept: u64,
    kept_at: Vec<String>,
    /// Records that could not be kept either.
    lost: u64,
}

impl Objects {
    /// Objects named with the records' prefix (`errors = false`) or the error prefix.
    pub fn new(
        store: Store,
        options: ObjectOptions,
        pipeline: &str,
        errors: bool,
        count_out: bool,
    ) -> Result<Objects, String> {
        let schema = match &options.format {
            Format::Json => None,
            Format::Parquet { schema } => Some(Arc::new(Schema::load(schema).map_err(|e| e.0)?)),
        };
        let prefix = if errors {
            options.error_prefix.clone()
        } else {
            options.prefix.clone()
        };
        Ok(Objects {
            delivered: Delivered {
                location: Some(store.location()),
                ..Delivered::default()
            },
            store,
            options,
            prefix,
            schema: if errors { None } else { schema },
            pipeline: pipeline.to_string(),
            version: 1,
            partitions: HashMap::new(),
            count_out,
            given_up: None,
        })
    }

    /// Refuses a destination whose keys would be too long whatever the records hold: a
    /// prefix without partition keys, and the generated name, already pass the store's limits.
    pub fn check_keys(&self) -> Result<(), Refused> {
        if self.prefix.has_partition_keys() {
            return Ok(());
        }
        let id = PartitionId {
            query: BTreeMap::new(),
            lambda: BTreeMap::new(),
            // The longest error output type.
            error_type: self
                .prefix
                .has_error_output_type()
                .then_some(ErrorOutputType::FormatConversionFailed.as_str()),
        };
        let key = self.key(&id, Utc::now())?;
        match self.store.refuses(&key) {
            Some(why) => Err(Refused::from(format!(
                "{why}: shorten the prefix or the pipeline's name"
            ))),
            None => Ok(()),
        }
    }

    /// The earliest interval deadline of any buffer.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.partitions.values().filter_map(Buffer::deadline).min()
    }

    /// Adds a record to its partition's buffer (writing the buffer if that fills it).
    /// `lambda` holds the partition keys a transform returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn push(
        &mut self,
        data: &[u8],
        ack: &Ack,
        arrival_ms: i64,
        lambda: &[(&str, &str)],
        error_type: Option<ErrorOutputType>,
        ctx: &SinkContext,
    ) -> Result<Result<(), Rejected>, SinkError> {
        let reject = |output_type, code, message| {
            Ok(Err(Rejected {
                output_type,
                code,
                message,
            }))
        };
        let mut id = PartitionId {
            query: BTreeMap::new(),
            lambda: BTreeMap::new(),
            error_type: error_type.map(ErrorOutputType::as_str),
        };
        // Error records are partitioned by their error output type only.
        if error_type.is_none() && !self.options.partition_keys.is_empty() {
            let value = match serde_json::from_slice(data) {
                Ok(v) => crate::expr::jq::Query::input(v),
                Err(e) => {
                    return reject(
                        ErrorOutputType::ProcessingFailed,
                        crate::codes::PARTITION_EXTRACTION_FAILED,
                        format!(
                            "the record is not JSON ({e}), so partition keys cannot be queried"
                        ),
                    )
                }
            };
            for (key, query) in &self.options.partition_keys {
                match query.eval(&value) {
                    Ok(v) => {
                        id.query.insert(key.clone(), v);
                    }
                    Err(e) => {
                        return reject(
                            ErrorOutputType::ProcessingFailed,
                            crate::codes::PARTITION_EXTRACTION_FAILED,
                            format!("partition key `{key}`: {e}"),
                        )
                    }
                }
            }
        }
        for key in self.prefix.lambda_keys() {
            match lambda.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => {
                    id.lambda.insert(key.to_string(), v.to_string());
                }
                None => {
                    return reject(
                        ErrorOutputType::ProcessingFailed,
                        crate::codes::PARTITION_EXTRACTION_FAILED,
                        format!("the transform returned no partition key `{key}`"),
                    )
                }
            }
        }
        let row = match &self.schema {
            Some(schema) => match schema.convert(data) {
                Ok(row) => Some(row),
                Err(e) => {
                    return reject(
                        ErrorOutputType::FormatConversionFailed,
                        crate::codes::FORMAT_CONVERSION_FAILED,
                        e.0,
                    )
                }
            },
            None => None,
        };
        if !self.partitions.contains_key(&id) {
            if let Err(r) = self.open_partition(&id, ctx) {
                return Ok(Err(r));
            }
        }
        let buffer = self.partitions.get_mut(&id).expect("opened above");
        let added = match row {
            Some(row) => buffer.push_row(row, data.len(), ack, arrival_ms),
            None => buffer.push(data, ack, arrival_ms),
        };
        ctx.memory.add(added);
        if buffer.is_full() {
            self.flush(&id, ctx).await?;
        }
        self.within_budget(ctx).await?;
        Ok(Ok(()))
    }

    /// Whether every record goes to the one partition as it is: no partition keys, none from
    /// the transform, no Parquet. Then [`Objects::push_plain`] takes whole batches.
    pub(crate) fn plain(&self) -> bool {
        self.options.partition_keys.is_empty()
            && self.prefix.lambda_keys().next().is_none()
            && self.schema.is_none()
    }

    /// As [`Objects::push`] for each record in turn, when [`Objects::plain`]: one partition
    /// lookup per object rather than per record, and the bytes appended in one pass. A record
    /// refused (its partition cannot open) is refused with every record after it, for the same
    /// reason: `Err((reason, index of the first refused))`. The memory budget is looked at
    /// after each object's share of the batch, so the buffers may pass it by up to one batch.
    pub(crate) async fn push_plain(
        &mut self,
        records: &Batch,
        ctx: &SinkContext,
    ) -> Result<Result<(), (Rejected, usize)>, SinkError> {
        let id = PartitionId {
            query: BTreeMap::new(),
            lambda: BTreeMap::new(),
            error_type: None,
        };
        let mut done = 0;
        while done < records.len() {
            if !self.partitions.contains_key(&id) {
                if let Err(r) = self.open_partition(&id, ctx) {
                    return Ok(Err((r, done)));
                }
            }
            let buffer = self.partitions.get_mut(&id).expect("opened above");
            let (taken, added) = buffer.extend(records, done);
            done += taken;
            ctx.memory.add(added);
            if buffer.is_full() {
                self.flush(&id, ctx).await?;
            }
            self.within_budget(ctx).await?;
        }
        Ok(Ok(()))
    }

    /// Opens the buffer of a partition not buffering yet, once the object it would make is
    /// known to be writable: within `max_partitions`, its prefix valid, its key short enough.
    fn open_partition(&mut self, id: &PartitionId, ctx: &SinkContext) -> Result<(), Rejected> {
        let reject = |output_type, code, message| {
            Err(Rejected {
                output_type,
                code,
                message,
            })
        };
        if self.partitions.len() >= self.options.max_partitions {
            return reject(
                ErrorOutputType::ProcessingFailed,
                crate::codes::PARTITION_LIMIT,
                format!(
                    "{} partitions are already buffering (max_partitions)",
                    self.partitions.len()
                ),
            );
        }
        // The prefix must evaluate (keys present, at most 512 characters) before a record is
        // accepted into a buffer that would otherwise fail as a whole.
        let checked = self
            .render(id, ctx.clock.now())
            .and_then(|p| self.check_key(&p));
        if let Err(e) = checked {
            return reject(
                ErrorOutputType::ProcessingFailed,
                crate::codes::PARTITION_INVALID_PREFIX,
                e,
            );
        }
        // The whole key (prefix and generated name) must fit the store, or the object could
        // never be written and would stop the sink.
        let refused = self
            .key(id, ctx.clock.now())
            .map(|key| self.store.refuses(&key));
        if let Ok(Some(why)) = refused {
            return reject(
                ErrorOutputType::ProcessingFailed,
                crate::codes::OBJECT_KEY_TOO_LONG,
                why,
            );
        }
        let rows = self.schema.is_some();
        self.partitions.insert(
            id.clone(),
            Buffer::new(self.options.buffer, self.options.delimiter, rows),
        );
        Ok(())
    }

    /// While the pipeline's buffers hold more than its budget, writes this destination's
    /// largest buffer.
    async fn within_budget(&mut self, ctx: &SinkContext) -> Result<(), SinkError> {
        while ctx.memory.over() {
            let largest = self
                .partitions
                .iter()
                .max_by_key(|(_, b)| b.mem)
                .map(|(id, _)| id.clone());
            let Some(id) = largest else { break };
            tracing::debug!(
                used = ctx.memory.used(),
                "Buffer memory budget spent; writing the largest buffer"
            );
            self.flush(&id, ctx).await?;
        }
        Ok(())
    }

    /// A directory store takes keys as relative paths: values from records must not climb out
    /// of it, or name what a file system cannot hold.
    fn check_key(&self, prefix: &str) -> Result<(), String> {
        if !matches!(self.store, Store::Dir(_)) {
            return Ok(());
        }
        if prefix.starts_with('/') || prefix.contains('\0') || prefix.contains('\\') {
            return Err(format!(
                "the evaluated prefix `{prefix}` is not a relative path"
            ));
        }
        for part in prefix.split('/') {
            if part == ".." || part == "." {
                return Err(format!("the evaluated prefix `{prefix}` contains `{part}`"));
            }
            if part.len() > 255 {
                return Err(format!(
                    "the evaluated prefix `{prefix}` has a path component over 255 bytes"
                ));
            }
        }
        Ok(())
    }

    /// With a buffering interval of zero, writes what each batch brought at the end of it.
    pub async fn flush_immediate(&mut self, ctx: &SinkContext) -> Result<(), SinkError> {
        if self.options.buffer.interval.0.is_zero() {
            self.flush_all(ctx).await?;
        }
        Ok(())
    }

    fn render(&self, id: &PartitionId, time: DateTime<Utc>) -> Result<String, String> {
        self.prefix
            .render(&Values {
                time,
                zone: self.options.time_zone,
                error_output_type: id.error_type,
                query: &id.query,
                lambda: &id.lambda,
            })
            .map_err(|e| e.0)
    }

    /// The object's key.
    fn key(&self, id: &PartitionId, opened_at: DateTime<Utc>) -> Result<String, String> {
        let ext = if self.schema.is_some() {
            ".parquet"
        } else {
            self.options.compression.extension()
        };
        let local = opened_at.with_timezone(&self.options.time_zone);
        Ok(format!(
            "{}{}-{}-{}-{}{}",
            self.render(id, opened_at)?,
            self.pipeline,
            self.version,
            local.format("%Y-%m-%d-%H-%M-%S"),
            uuid::Uuid::new_v4(),
            ext
        ))
    }

    async fn flush(&mut self, id: &PartitionId, ctx: &SinkContext) -> Result<(), SinkError> {
        let Some(buffer) = self.partitions.remove(id) else {
            return Ok(());
        };
        ctx.memory.sub(buffer.mem);
        let Some((oldest_ms, _)) = buffer.opened else {
            return Ok(());
        };
        let opened_at = DateTime::from_timestamp_millis(oldest_ms).unwrap_or_else(Utc::now);
        let mut acks = buffer.acks;
        let records = buffer.records;
        let fail = |acks: &mut Held, message: String| {
            ctx.poison.set();
            acks.fail();
            SinkError::Object {
                location: self.store.location(),
                message,
            }
        };
        let key = match self.key(id, opened_at) {
            Ok(k) => k,
            Err(e) => return Err(fail(&mut acks, e)),
        };
        let compression = self.options.compression;
        let schema = self.schema.clone();
        let content = buffer.content;
        let entry = key
            .rsplit('/')
            .next()
            .unwrap_or(&key)
            .trim_end_matches(".zip")
            .to_string();
        // An upload takes one buffer: join the parts here, once, rather than keep both the
        // parts and their join through the upload's retries.
        let join = matches!(self.store, Store::S3(_));
        let encoded = tokio::task::spawn_blocking(move || match content {
            // Uncompressed objects are written from the buffer itself, without a copy.
            Content::Bytes(body) if compression == crate::config::Compression::None => {
                let parts = body.finish();
                Ok(if join && parts.len() > 1 {
                    vec![Bytes::from(parts.concat())]
                } else {
                    parts
                })
            }
            Content::Bytes(body) => compress(&body.finish().concat(), compression, &entry)
                .map(|b| vec![Bytes::from(b)])
                .map_err(|e| e.to_string()),
            Content::Rows(rows) => schema
                .expect("rows have a schema")
                .write(&rows)
                .map(|b| vec![Bytes::from(b)])
                .map_err(|e| e.0),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let body = match encoded {
            Ok(parts) => parts,
            Err(e) => return Err(fail(&mut acks, e)),
        };
        let bytes: u64 = body.iter().map(|p| p.len() as u64).sum();
        let encoding = if self.schema.is_some() {
            None
        } else {
            compression.content_encoding()
        };
        let what = self.store.object_location(&key);
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF, (0.5, 1.0));
        let mut retry = Retrying::new(ctx, backoff, &what);
        let location = match self
            .store
            .put(&key, body.clone(), encoding, &mut retry)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                self.give_up(acks, records, &key, &body.concat(), e, ctx);
                return Ok(());
            }
        };
        // Durably stored: now the sources may move their checkpoints past these records.
        acks.release();
        tracing::debug!(object = %location, records, "Delivered object");
        self.delivered.note(location, records);
        Stats::add(&ctx.stats.objects_written, 1);
        if self.count_out {
            Stats::add(&ctx.stats.records_out, records);
            Stats::add(&ctx.stats.bytes_out, bytes);
            ctx.stats.delivered(oldest_ms, ctx.clock.now_ms());
        }
        Ok(())
    }

    /// An object the store still refused when the pipeline stopped (or failed): records a
    /// source checkpoint covers are released undelivered, to be read again; an object nothing
    /// would read again is kept under the undelivered directory.
    fn give_up(
        &mut self,
        mut acks: Held,
        records: u64,
        key: &str,
        body: &[u8],
        error: String,
        ctx: &SinkContext,
    ) {
        Stats::add(&ctx.stats.records_undelivered, records);
        let given_up = self.given_up.get_or_insert_with(GivenUp::default);
        given_up.error = error;
        if !acks.is_empty() {
            acks.fail();
            given_up.replayed += records;
            return;
        }
        let kept = match &ctx.undelivered {
            Some(dir) => super::keep_undelivered(dir, key, body).map_err(|e| e.to_string()),
            None => Err("no directory to keep it in".into()),
        };
        match kept {
            Ok(path) => {
                tracing::warn!(records, kept_at = %path.display(), "The destination still fails: the object is kept here instead");
                given_up.kept += records;
                if given_up.kept_at.len() < 3 {
                    given_up.kept_at.push(show(&path));
                }
            }
            Err(e) => {
                tracing::error!(records, error = %e, "The destination still fails and the object cannot be kept either");
                given_up.lost += records;
            }
        }
    }

    /// After the last flush: an error saying what was given up, if anything was.
    pub fn finish(&mut self) -> Result<(), SinkError> {
        let Some(g) = self.given_up.take() else {
            return Ok(());
        };
        let mut outcome = Vec::new();
        if g.replayed > 0 {
            outcome.push(format!(
                "{} record(s) not delivered, read again from the source's checkpoint at the next start",
                g.replayed
            ));
        }
        if g.kept > 0 {
            outcome.push(format!(
                "{} record(s) kept in {}",
                g.kept,
                g.kept_at.join(", ")
            ));
        }
        if g.lost > 0 {
            outcome.push(format!("{} record(s) could not be kept", g.lost));
        }
        Err(SinkError::Undelivered {
            location: self.store.location(),
            error: g.error,
            outcome: outcome.join("; "),
        })
    }

    /// Writes every buffer whose interval ran out.
    pub async fn flush_due(&mut self, ctx: &SinkContext) -> Result<(), SinkError> {
        let now = tokio::time::Instant::now();
        let due: Vec<PartitionId> = self
            .partitions
            .iter()
            .filter(|(_, b)| b.deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.flush(&id, ctx).await?;
        }
        Ok(())
    }

    /// Writes every buffer (at the end of the input).
    pub async fn flush_all(&mut self, ctx: &SinkContext) -> Result<(), SinkError> {
        let mut all: Vec<PartitionId> = self.partitions.keys().cloned().collect();
        all.sort();
        for id in all {
            self.flush(&id, ctx).await?;
        }
        Ok(())
    }
}

/// A record the sink could not place, for the error output.
pub fn failed(record: crate::record::Record, r: Rejected, ctx: &SinkContext) -> FailedRecord {
    FailedRecord {
        record,
        output_type: r.output_type,
        code: r.code.into(),
        message: r.message,
        stage: "sink".into(),
        attempts: 1,
        failed_at_ms: ctx.clock.now_ms(),
        details: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::objects::{ObjectOptions, RawObjectKeys, S3_ERROR_PREFIX};
    use crate::record::Record;

    fn ctx(at: DateTime<Utc>) -> SinkContext {
        SinkContext {
            clock: Arc::new(FixedClock(at)),
            ..SinkContext::standalone("clicks")
        }
    }

    /// The objects under `dir` (at any depth), each as its bytes, in order of their contents.
    fn bodies(dir: &std::path::Path) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    found.push(std::fs::read(&p).unwrap());
                }
            }
        }
        // Names end in a random id: order by what the objects hold.
        found.sort();
        found
    }

    #[tokio::test]
    async fn a_whole_batch_makes_the_same_objects_as_record_by_record() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ctx = ctx(at);
        // 300 KiB records against the smallest size hint, 1 MiB: the fourth reaches it. One
        // small record among them is copied where the large ones are shared.
        let records: Vec<Record> = (0..8u8)
            .map(|i| {
                let len = if i == 5 { 100 } else { 300 << 10 };
                Record::new(vec![b'a' + i; len], "t".into(), 1_000 + i64::from(i))
            })
            .collect();
        let batch = Batch::from(records.clone());
        let mut made = Vec::new();
        for (delimiter, whole) in [
            (Delimiter::Newline, true),
            (Delimiter::Newline, false),
            (Delimiter::None, true),
            (Delimiter::None, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let options = ObjectOptions::build(
                RawObjectKeys {
                    buffer: BufferConfig {
                        size: crate::units::ByteSize(1 << 20),
                        ..BufferConfig::default()
                    },
                    delimiter,
                    ..RawObjectKeys::default()
                },
                S3_ERROR_PREFIX,
            )
            .unwrap();
            let mut objects =
                Objects::new(Store::Dir(dir.path().into()), options, "p", false, true).unwrap();
            assert!(objects.plain());
            if whole {
                objects.push_plain(&batch, &ctx).await.unwrap().unwrap();
            } else {
                for r in &records {
                    objects
                        .push(&r.data, &r.ack, r.arrival_ms, &[], None, &ctx)
                        .await
                        .unwrap()
                        .unwrap();
                }
            }
            // The first object was written when the hint was reached, before the end.
            assert_eq!(objects.delivered.records, 4, "whole batch: {whole}");
            objects.flush_all(&ctx).await.unwrap();
            assert_eq!(objects.delivered.records, 8);
            made.push(bodies(dir.path()));
        }
        assert_eq!(made[0].len(), 2);
        assert_eq!(made[0][0].len(), 4 * ((300 << 10) + 1));
        assert_eq!(made[0], made[1]);
        assert_eq!(made[2].len(), 2);
        assert_eq!(made[2], made[3]);
        // Without a delimiter an object is its records' bytes back to back.
        let last: Vec<u8> = records[4..].iter().flat_map(|r| r.data.to_vec()).collect();
        assert!(made[2].contains(&last));
    }

    #[tokio::test]
    async fn golden_object_keys_with_an_injected_clock() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T23:59:58Z")
            .unwrap()
            .with_timezone(&Utc);
        let dir = tempfile::tempdir().unwrap();
        let options = ObjectOptions::build(
            RawObjectKeys {
                prefix: "c=!{partitionKeyFromQuery:c}/!{timestamp:yyyy/MM/dd/HH}/".into(),
                error_prefix: Some("e/!{firehose:error-output-type}/".into()),
                partition_keys: [("c".to_string(), ".c".to_string())].into(),
                time_zone: Some("Asia/Tokyo".into()),
                compression: crate::config::Compression::Gzip,
                ..RawObjectKeys::default()
            },
            S3_ERROR_PREFIX,
        )
        .unwrap();
        let mut objects = Objects::new(
            Store::Dir(dir.path().into()),
            options,
            "clicks",
            false,
            true,
        )
        .unwrap();
        let ctx = ctx(at);
        for data in [&br#"{"c":"a"}"#[..], br#"{"c":"b"}"#, br#"{"c":"a"}"#] {
            assert!(objects
                .push(data, &Ack::none(), at.timestamp_millis(), &[], None, &ctx)
                .await
                .unwrap()
                .is_ok());
        }
        let rejected = objects
            .push(b"{}", &Ack::none(), 0, &[], None, &ctx)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            rejected.code,
            "DynamicPartitioning.MetadataExtractionFailed"
        );
        objects.flush_all(&ctx).await.unwrap();
        let mut keys: Vec<String> = objects
            .delivered
            .objects
            .iter()
            .map(|o| {
                let rel = o.rsplit_once("/c=").unwrap().1;
                // The uuid varies: compare the rest.
                format!(
                    "c={}",
                    &rel[..rel.len() - "00000000-0000-0000-0000-000000000000.gz".len()]
                )
            })
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "c=a/2026/11/27/08/clicks-1-2026-11-27-08-59-58-",
                "c=b/2026/11/27/08/clicks-1-2026-11-27-08-59-58-",
            ]
        );
        assert_eq!(objects.delivered.records, 3);
    }

    #[tokio::test]
    async fn partitions_beyond_the_cap_and_unsafe_paths_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let options = ObjectOptions::build(
            RawObjectKeys {
                prefix: "!{partitionKeyFromQuery:c}/".into(),
                error_prefix: Some("e/!{firehose:error-output-type}/".into()),
                partition_keys: [("c".to_string(), ".c".to_string())].into(),
                max_partitions: Some(2),
                ..RawObjectKeys::default()
            },
            S3_ERROR_PREFIX,
        )
        .unwrap();
        let mut objects =
            Objects::new(Store::Dir(dir.path().into()), options, "p", false, true).unwrap();
        let ctx = ctx(Utc::now());
        let mut push = async |data: &[u8]| {
            objects
                .push(data, &Ack::none(), 0, &[], None, &ctx)
                .await
                .unwrap()
                .map_err(|r| r.code)
        };
        assert_eq!(push(br#"{"c":"a"}"#).await, Ok(()));
        assert_eq!(
            push(br#"{"c":".."}"#).await,
            Err("DynamicPartitioning.InvalidPrefix"),
            "no climbing out of the directory"
        );
        assert_eq!(
            push(br#"{"c":"/etc"}"#).await,
            Err("DynamicPartitioning.InvalidPrefix")
        );
        assert_eq!(push(br#"{"c":"b"}"#).await, Ok(()));
        assert_eq!(push(br#"{"c":"a"}"#).await, Ok(()), "an open partition");
        assert_eq!(
            push(br#"{"c":"z"}"#).await,
            Err("DynamicPartitioning.ActivePartitionsLimitExceeded")
        );
    }
}
