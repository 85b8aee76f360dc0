//! Sinks: where records are delivered, and the error output. A sink knows nothing of Wasm or
//! sources: it receives batches until its input closes, then flushes everything it buffers.
//!
//! Invariants:
//! - A sink returns only after every record it received is written, kept in the error output,
//!   or (at shutdown, with its destination still failing) given up as described in [`retry`]
//!   and reported in the error it returns; `records_out` counts records once their object is
//!   durably written.
//! - Printing is not delivering: a record written to stdout or stderr never lets a source
//!   checkpoint move past it (its ack resolves as not delivered).
//! - A destination that fails as a whole is retried, never given up on record by record; see
//!   [`retry`].

mod batched;
pub mod compress;
mod file;
mod firehose;
mod http;
mod kinesis;
pub mod objects;
pub mod parquet;
pub mod retry;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::{Ack, Poison};
use crate::clock::Clock;
use crate::config::{BackupConfig, ErrorsConfig, ObjectOptions, S3SinkConfig, SinkConfig};
use crate::record::{FailedRecord, Record};
use crate::stats::{Health, Stats};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot write object under {location}: {message}")]
    Object { location: String, message: String },
    #[error("{0}")]
    Config(String),
    #[error("cannot write to {what}: {source}")]
    Stream {
        what: &'static str,
        source: std::io::Error,
    },
    /// The pipeline stopped while the destination still failed: what could not be delivered
    /// is read again from the source's checkpoint, or kept where this says.
    #[error("{location} still failed when the pipeline stopped ({error}): {outcome}")]
    Undelivered {
        location: String,
        error: String,
        outcome: String,
    },
}

/// What a running sink is given.
#[derive(Clone)]
pub struct SinkContext {
    pub pipeline: String,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<Stats>,
    /// Set before a sink gives up, so that nothing it drops counts as delivered.
    pub poison: Poison,
    /// The error output, for sinks that give up on single records (none for the error output
    /// itself).
    pub errors: Option<mpsc::Sender<Vec<FailedRecord>>>,
    /// Cancelled when the pipeline stops: a failing destination then gets its last attempts.
    pub shutdown: CancellationToken,
    /// This output's destination health, for the status API and metrics.
    pub health: Arc<Health>,
    /// Bytes all buffers of the pipeline hold, against one budget.
    pub memory: Arc<MemoryBudget>,
    /// Where records nothing would read again are kept when their destination still fails at
    /// shutdown (`<state dir>/<pipeline>/undelivered/<output>`); `None` keeps nothing.
    pub undelivered: Option<PathBuf>,
}

impl SinkContext {
    /// A context for tests and benchmarks: a system clock, no error output, a large budget.
    pub fn standalone(pipeline: &str) -> SinkContext {
        SinkContext {
            pipeline: pipeline.into(),
            clock: Arc::new(crate::clock::SystemClock),
            stats: Arc::new(Stats::default()),
            poison: Poison::default(),
            errors: None,
            shutdown: CancellationToken::new(),
            health: Arc::default(),
            memory: Arc::new(MemoryBudget::new(u64::MAX)),
            undelivered: None,
        }
    }
}

/// One budget for the bytes every buffer of a pipeline holds (object buffers of the sink,
/// the error output and the backup, HTTP requests being built). A buffer that takes a record
/// while the budget is spent flushes its largest buffers first.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Self {
        MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub fn add(&self, n: u64) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(&self, n: u64) {
        // Never below zero, whatever the order of adds and subs across tasks.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub fn over(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// Keeps a body that could not be delivered under `dir/<name>`, durably; returns where.
pub fn keep_undelivered(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    crate::durable::write_atomic(&path, body, ".weir-")?;
    Ok(path)
}

/// Where a sink's output went, for the run summary.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    /// Where an object sink writes (a directory or `s3://bucket`).
    pub location: Option<String>,
    /// Objects written, in order (the first few are kept).
    pub objects: Vec<String>,
    pub object_count: u64,
    pub records: u64,
}

impl Delivered {
    fn note(&mut self, path: String, records: u64) {
        self.object_count += 1;
        self.records += records;
        if self.objects.len() < 3 {
            self.objects.push(path);
        }
    }
}

/// An S3 client for an S3 sink's region, endpoint and addressing style.
pub async fn s3_store(c: &S3SinkConfig) -> objects::S3Store {
    let sdk = crate::aws::sdk_config(c.region.as_deref(), c.endpoint.as_deref()).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(c.force_path_style)
        .build();
    objects::S3Store {
        client: aws_sdk_s3::Client::from_conf(conf),
        bucket: c.bucket.clone(),
        multipart_threshold: c.multipart_threshold,
        part_size: c.part_size,
    }
}

/// The object destination of a file or S3 configuration.
async fn objects_for(
    store: objects::Store,
    options: &ObjectOptions,
    ctx: &SinkContext,
    errors: bool,
    count_out: bool,
) -> Result<objects::Objects, SinkError> {
    objects::Objects::new(store, options.clone(), &ctx.pipeline, errors, count_out).map_err(|e| {
        // Records already queued for this sink are dropped with it: none may count as
        // delivered.
        ctx.poison.set();
        SinkError::Config(e)
    })
}

/// Runs the pipeline's sink until its input closes.
pub async fn run(
    config: SinkConfig,
    rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    match config {
        SinkConfig::File(c) => {
            let store = objects::Store::Dir(c.path.clone());
            let o = objects_for(store, &c.objects, &ctx, false, true).await?;
            file::run(o, rx, ctx).await
        }
        SinkConfig::S3(c) => {
            let store = objects::Store::S3(Arc::new(s3_store(&c).await));
            let o = objects_for(store, &c.objects, &ctx, false, true).await?;
            file::run(o, rx, ctx).await
        }
        SinkConfig::Stdout(_) => {
            run_stream(rx, ctx, "stdout", |r, out| out.extend_from_slice(&r.data)).await
        }
        SinkConfig::Kinesis(c) => kinesis::run(c, rx, ctx).await,
        SinkConfig::Firehose(c) => firehose::run(c, rx, ctx).await,
        SinkConfig::Http(c) => http::run(c, rx, ctx).await,
    }
}

/// Runs the backup copy until its input closes: source records as they came, never counted
/// as the pipeline's output.
pub async fn run_backup(
    config: BackupConfig,
    rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let o = match &config {
        BackupConfig::File(c) => {
            objects_for(
                objects::Store::Dir(c.path.clone()),
                &c.objects,
                &ctx,
                false,
                false,
            )
            .await?
        }
        BackupConfig::S3(c) => {
            let store = objects::Store::S3(Arc::new(s3_store(c).await));
            objects_for(store, &c.objects, &ctx, false, false).await?
        }
    };
    file::run(o, rx, ctx).await
}

/// Runs the error output until every sender is gone.
pub async fn run_errors(
    config: ErrorsConfig,
    rx: mpsc::Receiver<Vec<FailedRecord>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let pipeline = ctx.pipeline.clone();
    match config {
        ErrorsConfig::File(c) => {
            let store = objects::Store::Dir(c.path.clone());
            let o = objects_for(store, &c.objects, &ctx, true, false).await?;
            file::run_errors(o, rx, ctx).await
        }
        ErrorsConfig::S3(c) => {
            let store = objects::Store::S3(Arc::new(s3_store(&c).await));
            let o = objects_for(store, &c.objects, &ctx, true, false).await?;
            file::run_errors(o, rx, ctx).await
        }
        ErrorsConfig::Stderr(_) => {
            run_stream(rx, ctx, "stderr", move |f, out| {
                let line = f.to_json_line(&pipeline);
                out.extend_from_slice(&line[..line.len() - 1]);
            })
            .await
        }
    }
}

/// The default error output: an object sink's own destination, under its error prefix (as
/// Firehose does); for the other sinks, files under `errors_dir` (the pipeline's
/// `<state dir>/<pipeline>/errors`), in Firehose's error layout. Never stdout or stderr: a
/// record printed is not kept.
pub fn default_errors(sink: &SinkConfig, errors_dir: &Path) -> ErrorsConfig {
    match sink {
        // One JSON error record per line, whatever the records' delimiter.
        SinkConfig::File(f) => {
            let mut f = f.clone();
            f.objects.delimiter = crate::config::Delimiter::Newline;
            ErrorsConfig::File(f)
        }
        SinkConfig::S3(s) => {
            let mut s = s.clone();
            s.objects.delimiter = crate::config::Delimiter::Newline;
            ErrorsConfig::S3(s)
        }
        SinkConfig::Stdout(_)
        | SinkConfig::Kinesis(_)
        | SinkConfig::Firehose(_)
        | SinkConfig::Http(_) => ErrorsConfig::File(crate::config::FileSinkConfig::default_errors(
            errors_dir.to_path_buf(),
        )),
    }
}

trait Counted {
    const IS_ERROR: bool;
    fn ack(&self) -> &Ack;
}
impl Counted for Record {
    const IS_ERROR: bool = false;
    fn ack(&self) -> &Ack {
        &self.ack
    }
}
impl Counted for FailedRecord {
    const IS_ERROR: bool = true;
    fn ack(&self) -> &Ack {
        &self.record.ack
    }
}

/// stdout / stderr: one line per record, flushed after every batch. The records' acks are
/// failed: a checkpoint never moves past a printed record.
async fn run_stream<T: Counted + Send + 'static>(
    mut rx: mpsc::Receiver<Vec<T>>,
    ctx: SinkContext,
    what: &'static str,
    write_line: impl Fn(&T, &mut Vec<u8>) + Send + 'static,
) -> Result<Delivered, SinkError> {
    let mut delivered = Delivered::default();
    while let Some(batch) = rx.recv().await {
        let mut out = Vec::new();
        for item in &batch {
            write_line(item, &mut out);
            out.push(b'\n');
        }
        let result = tokio::task::spawn_blocking(move || {
            if T::IS_ERROR {
                let mut e = std::io::stderr().lock();
                e.write_all(&out).and_then(|_| e.flush())
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(&out).and_then(|_| o.flush())
            }
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        // Printed is not delivered: the source's checkpoint never moves past these records.
        batch.iter().for_each(|item| item.ack().fail());
        if let Err(source) = result {
            ctx.poison.set();
            return Err(SinkError::Stream { what, source });
        }
        delivered.records += batch.len() as u64;
        if !T::IS_ERROR {
            Stats::add(&ctx.stats.records_out, batch.len() as u64);
        }
    }
    Ok(delivered)
}
