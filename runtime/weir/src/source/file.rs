//! `file` and `stdin`: one record per line, raw or JSON.
//!
//! Records carry the 1-based line number as sequence number and partition key. With
//! `follow = true` the file source keeps reading what is appended until shutdown; a partial last
//! line waits for its newline. Without it, the source ends at end of file (a last line without a
//! newline still counts).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{SourceContext, SourceError};
use crate::config::{FileSourceConfig, LineFormat, StdinSourceConfig};
use crate::record::{ErrorOutputType, FailedRecord, Record};

/// Records per chunk sent downstream, at most.
const CHUNK: usize = 512;
/// How often a followed file is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

pub(super) async fn run_file(
    config: FileSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    let path = config.path.display().to_string();
    let file = tokio::fs::File::open(&config.path)
        .await
        .map_err(|source| SourceError::Open {
            path: path.clone(),
            source,
        })?;
    let reader = BufReader::with_capacity(64 * 1024, file);
    read_lines(
        reader,
        &format!("file:{path}"),
        config.format,
        config.follow,
        &ctx,
    )
    .await
}

pub(super) async fn run_stdin(
    config: StdinSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    let reader = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    read_lines(reader, "stdin", config.format, false, &ctx).await
}

async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    name: &str,
    format: LineFormat,
    follow: bool,
    ctx: &SourceContext,
) -> Result<(), SourceError> {
    let source: Arc<str> = name.into();
    let mut line_no: u64 = 0;
    let mut line = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut failed = Vec::new();
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let n = tokio::select! {
            n = reader.read_until(b'\n', &mut line) => n.map_err(|source| SourceError::Read {
                path: name.to_string(),
                source,
            })?,
            _ = ctx.shutdown.cancelled() => break,
        };
        let complete = line.last() == Some(&b'\n');
        if n == 0 || (!complete && follow) {
            // End of input for now: hand over what we have.
            ctx.fail(std::mem::take(&mut failed)).await;
            if !ctx
                .emit(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .await
            {
                return Ok(());
            }
            if !follow {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => continue,
                _ = ctx.shutdown.cancelled() => break,
            }
        }
        line_no += 1;
        let mut data = std::mem::take(&mut line);
        if complete {
            data.pop();
            if data.last() == Some(&b'\r') {
                data.pop();
            }
        }
        let arrival = ctx.clock.now_ms();
        let mut record = Record::new(data, source.clone(), arrival);
        record.sequence_number = Some(line_no.to_string());
        record.partition_key = line_no.to_string();
        match format {
            LineFormat::Lines => chunk.push(record),
            LineFormat::Json => {
                if record.data.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<serde::de::IgnoredAny>(&record.data) {
                    Ok(_) => chunk.push(record),
                    Err(e) => failed.push(FailedRecord {
                        record,
                        output_type: ErrorOutputType::SourceFailed,
                        code: "Source.InvalidJson".into(),
                        message: format!("{name} line {line_no}: not JSON: {e}"),
                        stage: "source".into(),
                        attempts: 1,
                        failed_at_ms: arrival,
                    }),
                }
            }
        }
        // Hand over a full chunk, or whatever is read when the reader would have to wait.
        if chunk.len() >= CHUNK || reader.buffer().is_empty() {
            ctx.fail(std::mem::take(&mut failed)).await;
            if !ctx
                .emit(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .await
            {
                return Ok(());
            }
        }
    }
    ctx.fail(failed).await;
    ctx.emit(chunk).await;
    Ok(())
}
