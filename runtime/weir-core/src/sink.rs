//! What a sink is: the traits the engine runs (a sink of records, and an error output of
//! failed records), what they are given, what they report, and how they fail.
//!
//! Invariants:
//! - A sink returns only after every record it received is written, kept in the error output,
//!   or (at shutdown, its destination still failing) given up and reported in its error.
//! - Dropping a record releases its ack as delivered: a sink that gives records up sets the
//!   context's poison first, so that none of them counts as delivered.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::{Ack, Poison};
use crate::batch::Batch;
use crate::clock::Clock;
use crate::record::{FailedRecord, Record};
pub use crate::source::BoxFuture;
use crate::stats::{Health, Stats};

/// Where records go. The engine takes one as a trait object and runs it once, until its input
/// closes.
pub trait Sink: Send {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Batch>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>>;
}

/// Where failed records go: the error output.
pub trait ErrorSink: Send {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Vec<FailedRecord>>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>>;
}

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
    /// Counts an object of `records` records written at `path`.
    pub fn note(&mut self, path: String, records: u64) {
        self.object_count += 1;
        self.records += records;
        if self.objects.len() < 3 {
            self.objects.push(path);
        }
    }
}

/// A sink (or error output) that keeps what it receives in memory, for `weir test` and
/// benchmarks; [`Collect::take`] hands it over. Kept is delivered: acks are released at once,
/// as the source may wait for them before it ends.
pub struct Collect<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Collect<T> {
    fn clone(&self) -> Self {
        Collect(self.0.clone())
    }
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect(Arc::default())
    }
}

impl<T> Collect<T> {
    /// Everything kept so far.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn keep(&self, items: impl IntoIterator<Item = T>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(items);
    }
}

impl Sink for Collect<Record> {
    fn run(
        self: Box<Self>,
        mut rx: mpsc::Receiver<Batch>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        // Keep only the counters: the context's error sender must go now, or the error output
        // would wait for it forever.
        let stats = ctx.stats.clone();
        drop(ctx);
        Box::pin(async move {
            while let Some(batch) = rx.recv().await {
                Stats::add(&stats.records_out, batch.len() as u64);
                self.keep(batch.into_records().into_iter().map(|mut r| {
                    r.ack = Ack::none();
                    r
                }));
            }
            Ok(Delivered::default())
        })
    }
}

impl ErrorSink for Collect<FailedRecord> {
    fn run(
        self: Box<Self>,
        mut rx: mpsc::Receiver<Vec<FailedRecord>>,
        _ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(async move {
            while let Some(batch) = rx.recv().await {
                self.keep(batch.into_iter().map(|mut f| {
                    f.record.ack = Ack::none();
                    f
                }));
            }
            Ok(Delivered::default())
        })
    }
}
