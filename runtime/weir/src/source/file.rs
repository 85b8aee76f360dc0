//! `file` and `stdin`: one record per line, raw or JSON.
//!
//! Records carry the 1-based line number as sequence number and partition key. With
//! `follow = true` the file source keeps reading what is appended until shutdown; a partial last
//! line waits for its newline. Without it, the source ends at end of file (a last line without a
//! newline still counts).
//!
//! With `checkpoint = true` every chunk of lines carries an ack, and the file's checkpoint
//! (`{"offset":<bytes>,"line":<n>,"inode":<i>}` in the local store, key `file/<path>`) moves past
//! a chunk only once it and every earlier chunk are delivered. A restart resumes at the
//! checkpoint's offset if the file is the same one (same inode, at least that long); a replaced
//! or truncated file is read from its start.
//!
//! A followed file that is rotated (another file now at its path) while it is read: the old
//! file is read to its end (for one more poll after the change is seen), then the new one from
//! its start; line numbers start again at 1. A truncated file is read from its start at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use super::{SourceContext, SourceError};
use crate::ack::{Ack, Acker};
use crate::checkpoint::{LocalStore, Tracker};
use crate::config::{FileSourceConfig, LineFormat, StdinSourceConfig};
use crate::record::{ErrorOutputType, FailedRecord, Record};

/// Records per chunk sent downstream, at most.
const CHUNK: usize = 512;
/// How often a followed file is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Where a file resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    offset: u64,
    line: u64,
    inode: u64,
}

fn inode(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::ino(meta)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// The acks of a checkpointing file source: chunks are registered before they are emitted, and
/// a task saves the checkpoint as their acks resolve.
struct Checkpoints {
    acker: Acker,
    tracker: Arc<Mutex<Tracker<Position>>>,
    next: u64,
    inode: u64,
}

impl Checkpoints {
    fn ack(&mut self, offset: u64, line: u64) -> Ack {
        self.next += 1;
        self.tracker.lock().expect("tracker lock").push(
            self.next,
            Position {
                offset,
                line,
                inode: self.inode,
            },
        );
        self.acker.ack(self.next)
    }
}

pub(super) async fn run_file(
    config: FileSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    let path = config.path.display().to_string();
    let open_error = |source| SourceError::Open {
        path: path.clone(),
        source,
    };
    let mut file = tokio::fs::File::open(&config.path)
        .await
        .map_err(open_error)?;
    let meta = file.metadata().await.map_err(open_error)?;
    let name = format!("file:{path}");
    let mut ino = inode(&meta);
    let (mut offset, mut line) = (0, 0);
    let mut checkpoints = None;
    let mut saver = None;
    if config.checkpoint {
        let store = LocalStore::new(&ctx.state_dir, &ctx.pipeline);
        let key = format!("file/{path}");
        let saved: Option<Position> = store
            .load(&key)
            .map_err(|e| SourceError::Checkpoint(format!("cannot read checkpoint of {path}: {e}")))?
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    SourceError::Checkpoint(format!(
                        "checkpoint of {path} is unreadable ({e}): {t}"
                    ))
                })
            })
            .transpose()?;
        match saved {
            Some(p) if p.inode == ino && p.offset <= meta.len() => {
                (offset, line) = (p.offset, p.line)
            }
            Some(_) => {
                tracing::warn!(file = %path, "The file was replaced or truncated since its checkpoint; reading it from the start")
            }
            None => {}
        }
        let (ack_tx, mut acks) = mpsc::unbounded_channel::<crate::ack::Resolved>();
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        saver = Some({
            let (tracker, path) = (tracker.clone(), path.clone());
            let (stats, clock) = (ctx.stats.clone(), ctx.clock.clone());
            tokio::spawn(async move {
                while let Some(r) = acks.recv().await {
                    let position = tracker
                        .lock()
                        .expect("tracker lock")
                        .resolve(r.token, r.delivered);
                    if let Some(p) = position {
                        let text = serde_json::to_string(&p).expect("positions serialize");
                        store.save(&key, &text).map_err(|e| {
                            SourceError::Checkpoint(format!(
                                "cannot save checkpoint of {path}: {e}"
                            ))
                        })?;
                        stats.checkpointed(clock.now_ms());
                    }
                }
                Ok::<(), SourceError>(())
            })
        });
        checkpoints = Some(Checkpoints {
            acker: Acker::new(ack_tx, ctx.poison.clone()),
            tracker,
            next: 0,
            inode: ino,
        });
    }
    let read = async {
        loop {
            if offset > 0 {
                tracing::info!(file = %path, offset, line, "Resuming after the checkpoint");
                file.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(|source| SourceError::Read {
                        path: path.clone(),
                        source,
                    })?;
            }
            let reader = BufReader::with_capacity(64 * 1024, file);
            let watch = config.follow.then_some((config.path.as_path(), ino));
            let ended = read_lines(
                reader,
                &name,
                config.format,
                config.follow,
                &ctx,
                &mut checkpoints,
                offset,
                line,
                watch,
            )
            .await?;
            if ended == Ended::Done {
                return Ok(());
            }
            // Rotated or truncated: the new file, from its start.
            tracing::info!(file = %path, "The file was rotated or truncated; reading the new one from its start");
            file = tokio::fs::File::open(&config.path)
                .await
                .map_err(open_error)?;
            ino = inode(&file.metadata().await.map_err(open_error)?);
            if let Some(c) = checkpoints.as_mut() {
                c.inode = ino;
            }
            (offset, line) = (0, 0);
        }
    };
    let read: Result<(), SourceError> = read.await;
    // Let the pipeline drain: the last checkpoint is saved when the sink has the last chunk.
    drop(checkpoints);
    drop(ctx);
    let saved = match saver {
        Some(task) => task
            .await
            .unwrap_or_else(|e| Err(SourceError::Checkpoint(format!("checkpoint task: {e}")))),
        None => Ok(()),
    };
    read.and(saved)
}

pub(super) async fn run_stdin(
    config: StdinSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    let reader = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    read_lines(
        reader,
        "stdin",
        config.format,
        false,
        &ctx,
        &mut None,
        0,
        0,
        None,
    )
    .await
    .map(|_| ())
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// End of input, shutdown, or the pipeline is gone.
    Done,
    /// A followed file was replaced (another inode at its path) or truncated.
    Rotated,
}

/// Whether the followed file at `path` is no longer the one being read (inode `ino`, read up to
/// `offset`): rotated away, or truncated under the reader.
fn replaced(path: &std::path::Path, ino: u64, offset: u64) -> Change {
    match std::fs::metadata(path) {
        Ok(m) if inode(&m) != ino => Change::Replaced,
        Ok(m) if m.len() < offset => Change::Truncated,
        _ => Change::None,
    }
}

/// What happened to a followed file's path.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    None,
    /// Another file is at the path: the old one may still get a few lines.
    Replaced,
    /// The same file, shorter than what was read: its old content is gone.
    Truncated,
}

/// Reads lines from `offset` (line `line_no` done) until the end, or shutdown when following.
#[allow(clippy::too_many_arguments)]
async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    name: &str,
    format: LineFormat,
    follow: bool,
    ctx: &SourceContext,
    checkpoints: &mut Option<Checkpoints>,
    mut offset: u64,
    mut line_no: u64,
    watch: Option<(&std::path::Path, u64)>,
) -> Result<Ended, SourceError> {
    let source: Arc<str> = name.into();
    let mut partial_at: Option<(u64, u64)> = None;
    let mut draining = false;
    // Hands a chunk (and the lines that failed in it) over, with one ack for both.
    let mut hand_over = async |chunk: &mut Vec<Record>,
                               failed: &mut Vec<FailedRecord>,
                               offset: u64,
                               line_no: u64|
           -> bool {
        if let Some(c) = checkpoints.as_mut() {
            if chunk.is_empty() && failed.is_empty() {
                return true;
            }
            let ack = c.ack(offset, line_no);
            chunk.iter_mut().for_each(|r| r.ack = ack.clone());
            failed.iter_mut().for_each(|f| f.record.ack = ack.clone());
        }
        ctx.fail(std::mem::take(failed)).await
            && ctx
                .emit(std::mem::replace(chunk, Vec::with_capacity(CHUNK)))
                .await
    };
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
        let mut rotated = false;
        if n == 0 || (!complete && follow) {
            // End of input for now: hand over what we have.
            let (at, at_line) = partial_at.unwrap_or((offset, line_no));
            if !hand_over(&mut chunk, &mut failed, at, at_line).await {
                return Ok(Ended::Done);
            }
            if !follow {
                break;
            }
            if !draining {
                let change = watch.map_or(Change::None, |(path, ino)| replaced(path, ino, offset));
                if change == Change::Truncated {
                    // Nothing more to read at this offset: start again at once.
                    return Ok(Ended::Rotated);
                }
                // Replaced: read what the writer still appends to the old file for one more
                // poll, then move on to the new one.
                draining = change == Change::Replaced;
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => continue,
                    _ = ctx.shutdown.cancelled() => break,
                }
            }
            if line.is_empty() {
                return Ok(Ended::Rotated);
            }
            // The old file ends with a line that will never get its newline: it still counts.
            rotated = true;
        }
        line_no += 1;
        if !complete {
            // A last line without its newline may still grow: the checkpoint stays before it,
            // so a later run reads it again, whole.
            partial_at = Some((offset, line_no - 1));
        }
        offset += line.len() as u64;
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
        if (chunk.len() >= CHUNK || reader.buffer().is_empty() || rotated)
            && !hand_over(
                &mut chunk,
                &mut failed,
                partial_at.map_or(offset, |p| p.0),
                partial_at.map_or(line_no, |p| p.1),
            )
            .await
        {
            return Ok(Ended::Done);
        }
        if rotated {
            return Ok(Ended::Rotated);
        }
    }
    let (offset, line_no) = partial_at.unwrap_or((offset, line_no));
    hand_over(&mut chunk, &mut failed, offset, line_no).await;
    Ok(Ended::Done)
}
