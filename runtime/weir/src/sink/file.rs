//! `file`: Firehose-style objects in a local directory; also the file error output, which keeps
//! one buffer per error output type under `<path>/<type>/`.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::objects::{Buffer, ObjectWriter};
use super::{Delivered, SinkContext, SinkError};
use crate::clock::sleep_until;
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
    let Some(mut taken) = buffer.take() else {
        return Ok(());
    };
    let (bytes, records) = (taken.body.len() as u64, taken.records);
    let path = match writer.write(taken.body, taken.opened_at).await {
        Ok(path) => path,
        Err(source) => {
            ctx.poison.set();
            taken.acks.fail();
            return Err(SinkError::Write {
                dir: writer.dir.clone(),
                source,
            });
        }
    };
    // Durably written: now the sources may move their checkpoints past these records.
    taken.acks.release();
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
                    buffer.push(&record.data, &record.ack, &*ctx.clock);
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
                    b.push(&failed.to_json_line(&ctx.pipeline), &failed.record.ack, &*ctx.clock);
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

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::FixedClock;
    use crate::config::{BufferConfig, Compression};
    use crate::stats::Stats;
    use crate::units::{ByteSize, HumanDuration};

    fn objects(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn gunzip(path: &std::path::Path) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[tokio::test]
    async fn objects_are_cut_by_interval_by_size_and_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut config = FileSinkConfig::new(dir.path().to_owned());
        config.compression = Compression::Gzip;
        config.buffer = BufferConfig {
            size: ByteSize(20),
            interval: HumanDuration(Duration::from_millis(200)),
        };
        let ctx = SinkContext {
            pipeline: "p".into(),
            clock: Arc::new(FixedClock(at)),
            stats: Arc::new(Stats::default()),
            poison: Default::default(),
            errors: None,
        };
        let stats = ctx.stats.clone();
        let (tx, rx) = mpsc::channel(4);
        let sink = tokio::spawn(run(config, rx, ctx));
        let rec = |s: &str| Record::new(s.as_bytes().to_vec(), "t".into(), 0);

        // Under the size hint: delivered when the interval runs out, not before.
        tx.send(vec![rec("a"), rec("b")]).await.unwrap();
        assert!(objects(dir.path()).is_empty());
        let waited = std::time::Instant::now();
        while objects(dir.path()).is_empty() {
            assert!(waited.elapsed() < Duration::from_secs(5), "interval flush");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(waited.elapsed() >= Duration::from_millis(150));
        // 25 bytes: over the size hint, delivered at once; then a remainder flushed at shutdown.
        tx.send(vec![rec("0123456789"), rec("0123456789abcde"), rec("tail")])
            .await
            .unwrap();
        drop(tx);
        let delivered = sink.await.unwrap().unwrap();
        assert_eq!(delivered.object_count, 3);
        let files = objects(dir.path());
        let contents: Vec<String> = files.iter().map(|f| gunzip(f)).collect();
        let mut sorted = contents.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["0123456789\n0123456789abcde\n", "a\nb\n", "tail\n"]
        );
        for f in &files {
            let name = f.strip_prefix(dir.path()).unwrap().display().to_string();
            assert!(
                name.starts_with("2026/01/02/03/p-1-2026-01-02-03-04-05-"),
                "{name}"
            );
            assert!(name.ends_with(".gz"), "{name}");
        }
        assert_eq!(stats.snapshot().records_out, 5);
    }
}
