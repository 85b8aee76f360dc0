//! The `stdout` sink and the `stderr` error output: one line per record, flushed after every
//! batch.
//!
//! Invariant: printing is not delivering. Every printed record's ack is failed, so a source
//! checkpoint never moves past it, and the records are not counted as delivered.

pub mod config;

use std::io::Write;

use tokio::sync::mpsc;

use super::{BoxFuture, Delivered, ErrorSink, Sink, SinkContext, SinkError};
use crate::batch::Batch;
use crate::config::{ErrorsComponent, SinkComponent};
use crate::record::FailedRecord;
use crate::stats::Stats;
use config::{StderrConfig, StdoutSinkConfig};

impl Sink for StdoutSinkConfig {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Batch>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(run_stream(rx, ctx, "stdout", |batch, out| {
            for r in batch.iter() {
                out.extend_from_slice(r.data());
                out.push(b'\n');
            }
        }))
    }
}

impl SinkComponent for StdoutSinkConfig {}

impl ErrorSink for StderrConfig {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Vec<FailedRecord>>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        let pipeline = ctx.pipeline.clone();
        Box::pin(run_stream(rx, ctx, "stderr", move |failed, out| {
            for f in failed {
                out.extend_from_slice(&f.to_json_line(&pipeline));
            }
        }))
    }
}

impl ErrorsComponent for StderrConfig {}

/// What is printed: a batch of records, or of failed records.
trait Printed: Send + 'static {
    const IS_ERROR: bool;
    fn count(&self) -> usize;
    fn fail_acks(&self);
}
impl Printed for Batch {
    const IS_ERROR: bool = false;
    fn count(&self) -> usize {
        self.len()
    }
    fn fail_acks(&self) {
        Batch::fail_acks(self)
    }
}
impl Printed for Vec<FailedRecord> {
    const IS_ERROR: bool = true;
    fn count(&self) -> usize {
        self.len()
    }
    fn fail_acks(&self) {
        self.iter().for_each(|f| f.record.ack.fail());
    }
}

/// stdout / stderr: one line per record, flushed after every batch. The records' acks are
/// failed: a checkpoint never moves past a printed record.
async fn run_stream<T: Printed>(
    mut rx: mpsc::Receiver<T>,
    ctx: SinkContext,
    what: &'static str,
    write_lines: impl Fn(&T, &mut Vec<u8>) + Send + 'static,
) -> Result<Delivered, SinkError> {
    let mut delivered = Delivered::default();
    while let Some(batch) = rx.recv().await {
        let mut out = Vec::new();
        write_lines(&batch, &mut out);
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
        batch.fail_acks();
        if let Err(source) = result {
            ctx.poison.set();
            return Err(SinkError::Stream { what, source });
        }
        delivered.records += batch.count() as u64;
        if !T::IS_ERROR {
            Stats::add(&ctx.stats.records_out, batch.count() as u64);
        }
    }
    Ok(delivered)
}
