//! `file`: Firehose-style objects in a local directory; also the file error output, which keeps
//! one buffer per error output type under `<path>/<type>/`.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::objects::{Buffer, ObjectWriter};
use super::{Delivered, SinkContext, SinkError};
use crate::config::{Delimiter, FileSinkConfig};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::stats::Stats;

fn writer(config: &FileSinkConfig, ctx: &SinkContext, prefix: String) -> ObjectWriter {
    ObjectWriter {
        dir: config.path.clone(),
        prefix,
        pipeline: ctx.pipeline.clone(),
        version: 1,
        compression: config.compression,
        clock: ctx.clock.clone(),
    }
}

async fn flush(
    writer: &ObjectWriter,
    buffer: &mut Buffer,
    delivered: &mut Delivered,
    ctx: &SinkContext,
    count_out: bool,
) -> Result<(), SinkError> {
    let Some((body, records, opened_at)) = buffer.take() else {
        return Ok(());
    };
    let bytes = body.len() as u64;
    let path = writer
        .write(body, opened_at)
        .await
        .map_err(|source| SinkError::Write {
            dir: writer.dir.clone(),
            source,
        })?;
    tracing::debug!(path = %path.display(), records, "Delivered object");
    delivered.note(path, records);
    Stats::add(&ctx.stats.objects_written, 1);
    if count_out {
        Stats::add(&ctx.stats.records_out, records);
        Stats::add(&ctx.stats.bytes_out, bytes);
    }
    Ok(())
}

pub(super) async fn run(
    config: FileSinkConfig,
    mut rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let writer = writer(&config, &ctx, config.prefix.clone());
    let mut buffer = Buffer::new(config.buffer, config.delimiter);
    let mut delivered = Delivered {
        dir: Some(config.path.clone()),
        ..Delivered::default()
    };
    loop {
        let deadline = buffer.deadline();
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                for record in &batch {
                    buffer.push(&record.data, &*ctx.clock);
                    if buffer.over_size() {
                        flush(&writer, &mut buffer, &mut delivered, &ctx, true).await?;
                    }
                }
                if buffer.is_full() {
                    flush(&writer, &mut buffer, &mut delivered, &ctx, true).await?;
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                flush(&writer, &mut buffer, &mut delivered, &ctx, true).await?;
            }
        }
    }
    flush(&writer, &mut buffer, &mut delivered, &ctx, true).await?;
    Ok(delivered)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn run_errors(
    config: FileSinkConfig,
    mut rx: mpsc::Receiver<Vec<FailedRecord>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let mut parts: HashMap<ErrorOutputType, (ObjectWriter, Buffer)> = HashMap::new();
    let mut delivered = Delivered {
        dir: Some(config.path.clone()),
        ..Delivered::default()
    };
    loop {
        let deadline = parts.values().filter_map(|(_, b)| b.deadline()).min();
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                for failed in &batch {
                    let (w, b) = parts.entry(failed.output_type).or_insert_with(|| {
                        let prefix = format!("{}{}/", config.prefix, failed.output_type.as_str());
                        // Error lines carry their own newline.
                        (writer(&config, &ctx, prefix), Buffer::new(config.buffer, Delimiter::None))
                    });
                    b.push(&failed.to_json_line(&ctx.pipeline), &*ctx.clock);
                    if b.is_full() {
                        flush(w, b, &mut delivered, &ctx, false).await?;
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let now = tokio::time::Instant::now();
                for (w, b) in parts.values_mut() {
                    if b.deadline().is_some_and(|d| d <= now) {
                        flush(w, b, &mut delivered, &ctx, false).await?;
                    }
                }
            }
        }
    }
    for (w, b) in parts.values_mut() {
        flush(w, b, &mut delivered, &ctx, false).await?;
    }
    Ok(delivered)
}
