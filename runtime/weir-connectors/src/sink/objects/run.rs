//! The object sinks (`file`, `s3`), the object error outputs and the backup: each runs an
//! [`Objects`] until its input closes, then writes every buffer.

use tokio::sync::mpsc;

use super::{failed, Objects};
use crate::batch::Batch;
use crate::clock::sleep_until;
use crate::record::FailedRecord;
use crate::sink::{Delivered, SinkContext, SinkError};

/// Records to objects. Records that cannot be placed go to the error output.
pub(crate) async fn run(
    mut objects: Objects,
    mut rx: mpsc::Receiver<Batch>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    checked(&objects, &ctx)?;
    loop {
        let deadline = objects.deadline();
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                let mut rejected = Vec::new();
                if objects.plain() {
                    if let Err((r, from)) = objects.push_plain(&batch, &ctx).await? {
                        rejected.extend(batch.iter().skip(from).map(|record| failed(record.to_record(), r.clone(), &ctx)));
                    }
                    reject(rejected, &ctx).await?;
                    objects.flush_immediate(&ctx).await?;
                    continue;
                }
                for record in batch.iter() {
                    let lambda: Vec<(&str, &str)> = record.partition_values().collect();
                    let placed = objects
                        .push(record.data(), record.ack(), record.arrival_ms(), &lambda, None, &ctx)
                        .await?;
                    if let Err(r) = placed {
                        rejected.push(failed(record.to_record(), r, &ctx));
                    }
                }
                reject(rejected, &ctx).await?;
                objects.flush_immediate(&ctx).await?;
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                objects.flush_due(&ctx).await?;
            }
        }
    }
    objects.flush_all(&ctx).await?;
    objects.finish()?;
    Ok(objects.delivered)
}

/// Refuses to start a destination whose every key would be too long for its store.
fn checked(objects: &Objects, ctx: &SinkContext) -> Result<(), SinkError> {
    objects.check_keys().map_err(|message| {
        // Records already queued for it are dropped with it: none may count as delivered.
        ctx.poison.set();
        SinkError::Object {
            location: objects.store.location(),
            message: message.0,
        }
    })
}

/// Sends records the sink could not place to the error output.
async fn reject(rejected: Vec<FailedRecord>, ctx: &SinkContext) -> Result<(), SinkError> {
    if rejected.is_empty() {
        return Ok(());
    }
    crate::stats::Stats::add(&ctx.stats.records_failed, rejected.len() as u64);
    match &ctx.errors {
        Some(errors) if ctx.poison.send(errors, rejected).await => Ok(()),
        _ => Err(SinkError::Object {
            location: "the error output".into(),
            message: "it stopped, so rejected records cannot be kept".into(),
        }),
    }
}

/// Failed records to objects, one partition per error output type.
pub(crate) async fn run_errors(
    mut objects: Objects,
    mut rx: mpsc::Receiver<Vec<FailedRecord>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    checked(&objects, &ctx)?;
    loop {
        let deadline = objects.deadline();
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                for f in &batch {
                    let line = f.to_json_line(&ctx.pipeline);
                    // Error lines carry their own newline (the error output's delimiter).
                    let placed = objects
                        .push(&line[..line.len() - 1], &f.record.ack, f.record.arrival_ms, &[], Some(f.output_type), &ctx)
                        .await?;
                    if let Err(r) = placed {
                        // Nowhere left to keep it: stop rather than drop it.
                        ctx.poison.set();
                        f.record.ack.fail();
                        return Err(SinkError::Object {
                            location: objects.store.location(),
                            message: format!("cannot keep a failed record: {}", r.message),
                        });
                    }
                }
                objects.flush_immediate(&ctx).await?;
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                objects.flush_due(&ctx).await?;
            }
        }
    }
    objects.flush_all(&ctx).await?;
    objects.finish()?;
    Ok(objects.delivered)
}
