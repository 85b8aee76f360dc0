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
pub mod firehose;
pub mod http;
pub mod kinesis;
pub mod objects;
pub mod retry;
pub mod s3;

pub use objects::parquet;
pub use s3::s3_store;
pub use weir_core::sink::{
    keep_undelivered, BoxFuture, Collect, Delivered, ErrorSink, MemoryBudget, Sink, SinkContext,
    SinkError,
};

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::ack::Ack;
use crate::config::{BackupConfig, ErrorsConfig, ObjectOptions, SinkConfig};
use crate::record::{FailedRecord, Record};
use crate::stats::Stats;

impl Sink for SinkConfig {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Vec<Record>>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(run(*self, rx, ctx))
    }
}

impl Sink for BackupConfig {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Vec<Record>>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(run_backup(*self, rx, ctx))
    }
}

impl ErrorSink for ErrorsConfig {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Vec<FailedRecord>>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(run_errors(*self, rx, ctx))
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
            objects::run::run(o, rx, ctx).await
        }
        SinkConfig::S3(c) => {
            let store = objects::Store::S3(Arc::new(s3_store(&c).await));
            let o = objects_for(store, &c.objects, &ctx, false, true).await?;
            objects::run::run(o, rx, ctx).await
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
    objects::run::run(o, rx, ctx).await
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
            objects::run::run_errors(o, rx, ctx).await
        }
        ErrorsConfig::S3(c) => {
            let store = objects::Store::S3(Arc::new(s3_store(&c).await));
            let o = objects_for(store, &c.objects, &ctx, true, false).await?;
            objects::run::run_errors(o, rx, ctx).await
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
