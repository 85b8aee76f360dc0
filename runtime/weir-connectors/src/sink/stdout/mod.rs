//! The `stdout` sink and the `stderr` error output: one line per record, flushed after every
//! batch.
//!
//! Invariant: printing is not delivering. Every printed record's ack is failed, so a source
//! checkpoint never moves past it, and the records are not counted as delivered.

pub mod config;

use std::io::Write;

use tokio::sync::mpsc;

use super::{BoxFuture, Delivered, ErrorSink, Sink, SinkContext, SinkError};
use crate::ack::Ack;
use crate::config::{ErrorsComponent, SinkComponent};
use crate::record::{FailedRecord, Record};
use crate::stats::Stats;
use config::{StderrConfig, StdoutSinkConfig};

impl Sink for StdoutSinkConfig {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<Vec<Record>>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(run_stream(rx, ctx, "stdout", |r, out| {
            out.extend_from_slice(&r.data)
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
        Box::pin(run_stream(rx, ctx, "stderr", move |f, out| {
            let line = f.to_json_line(&pipeline);
            out.extend_from_slice(&line[..line.len() - 1]);
        }))
    }
}

impl ErrorsComponent for StderrConfig {}

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
