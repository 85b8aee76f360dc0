//! Sinks: where records are delivered, and the error output. A sink knows nothing of Wasm or
//! sources: it receives batches until its input closes, then flushes everything it buffers.
//!
//! Invariant: a sink returns only after every record it received is written (or it reports an
//! error); `records_out` counts records once their object is durably written.

mod file;
mod kinesis;
pub mod objects;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::ack::{Ack, Poison};
use crate::clock::Clock;
use crate::config::{ErrorsConfig, FileSinkConfig, SinkConfig, StdoutSinkConfig};
use crate::record::{FailedRecord, Record};
use crate::stats::Stats;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot write object under {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to {what}: {source}")]
    Stream {
        what: &'static str,
        source: std::io::Error,
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
}

/// Where a sink's output went, for the run summary.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    /// The sink's directory, for file sinks.
    pub dir: Option<PathBuf>,
    /// Objects written, in order (the first few are kept).
    pub objects: Vec<PathBuf>,
    pub object_count: u64,
    pub records: u64,
}

impl Delivered {
    fn note(&mut self, path: PathBuf, records: u64) {
        self.object_count += 1;
        self.records += records;
        if self.objects.len() < 3 {
            self.objects.push(path);
        }
    }
}

/// Runs the pipeline's sink until its input closes.
pub async fn run(
    config: SinkConfig,
    rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    match config {
        SinkConfig::File(c) => file::run(c, rx, ctx).await,
        SinkConfig::Stdout(_) => {
            run_stream(rx, ctx, "stdout", |r, out| out.extend_from_slice(&r.data)).await
        }
        SinkConfig::Kinesis(c) => kinesis::run(c, rx, ctx).await,
    }
}

/// Runs the error output until every sender is gone.
pub async fn run_errors(
    config: ErrorsConfig,
    rx: mpsc::Receiver<Vec<FailedRecord>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let pipeline = ctx.pipeline.clone();
    match config {
        ErrorsConfig::File(c) => file::run_errors(c, rx, ctx).await,
        ErrorsConfig::Stderr(_) => {
            run_stream(rx, ctx, "stderr", move |f, out| {
                let line = f.to_json_line(&pipeline);
                out.extend_from_slice(&line[..line.len() - 1]);
            })
            .await
        }
    }
}

/// The default error output: next to a file sink's objects, else stderr.
pub fn default_errors(sink: &SinkConfig) -> ErrorsConfig {
    match sink {
        SinkConfig::File(f) => {
            let mut errors = FileSinkConfig::new(f.path.join("errors"));
            errors.buffer = f.buffer;
            errors.compression = f.compression;
            ErrorsConfig::File(errors)
        }
        SinkConfig::Stdout(s) => ErrorsConfig::Stderr(s.clone()),
        SinkConfig::Kinesis(_) => ErrorsConfig::Stderr(StdoutSinkConfig::new()),
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

/// stdout / stderr: one line per record, flushed after every batch.
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
        if let Err(source) = result {
            ctx.poison.set();
            batch.iter().for_each(|item| item.ack().fail());
            return Err(SinkError::Stream { what, source });
        }
        delivered.records += batch.len() as u64;
        if !T::IS_ERROR {
            Stats::add(&ctx.stats.records_out, batch.len() as u64);
        }
    }
    Ok(delivered)
}
