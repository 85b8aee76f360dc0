//! `file` and `stdin`: one record per line, raw or JSON.
//!
//! Records carry the 1-based line number as sequence number and partition key. With
//! `follow = true` the file source keeps reading what is appended until shutdown; a partial last
//! line waits for its newline. Without it, the source ends at end of file (a last line without a
//! newline still counts). A line longer than `max_line` bytes is never held whole: its first
//! `max_line` bytes go to the error output (`Source.LineTooLong`), the rest is skipped.
//!
//! With `checkpoint = true` every chunk of lines carries an ack, and the file's checkpoint
//! (`{"offset":<bytes>,"line":<n>,"inode":<i>}` in the local store, key `file/<path>`) moves past
//! a chunk only once it and every earlier chunk are delivered. A restart resumes at the
//! checkpoint's offset if the file is the same one (same inode, at least that long); a replaced
//! or truncated file is read from its start. A checkpoint that cannot be saved stops the
//! pipeline with the error: a checkpoint never freezes silently.
//!
//! A followed file that is rotated (another file now at its path) while it is read: the old
//! file is read to its end (for one more poll after the change is seen), then the new one from
//! its start; line numbers start again at 1. A truncated file (`copytruncate`) is read from its
//! start at once, and offset 0 is saved at once: chunks of the old content still in flight can
//! no longer move the checkpoint (they belong to an older *epoch*), so a crash right after the
//! truncation resumes at the start of the new content, never at the old offset inside it.

pub mod config;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use super::{SourceContext, SourceError};
use crate::ack::{Ack, Acker};
use crate::batch::{BatchBuilder, Meta};
use crate::checkpoint::{LocalStore, Tracker};
use crate::config::{FileSourceConfig, LineFormat, StdinSourceConfig};
use crate::record::{ErrorOutputType, FailedRecord, Record};

/// Records per chunk sent downstream, at most: the default batch size, so that with default
/// settings each chunk goes on as one batch, not copied into the next (see the engine's
/// batcher).
const CHUNK: usize = 500;
/// Bytes of record data per chunk, at most (one longer line still makes a chunk); the default
/// batch size in bytes, likewise.
const CHUNK_BYTES: usize = 4 << 20;
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

/// The checkpoint of one file: the tracker of its chunks and the store, behind one lock, so
/// that a truncation's save and an ack's save never interleave.
struct Saver {
    store: LocalStore,
    key: String,
    path: String,
    /// Chunks in flight, with the epoch they were read in.
    tracker: Tracker<(u64, Position)>,
    /// Bumped by every truncation: positions of an older epoch are never saved.
    epoch: u64,
}

impl Saver {
    fn save(&self, p: &Position) -> Result<(), SourceError> {
        let text = serde_json::to_string(p).expect("positions serialize");
        self.store.save(&self.key, &text).map_err(|e| {
            SourceError::Checkpoint(format!(
                "cannot save the checkpoint of {} in {}: {e}",
                self.path,
                self.store.path(&self.key).display()
            ))
        })
    }
}

/// The acks of a checkpointing file source: chunks are registered before they are emitted, and
/// a task saves the checkpoint as their acks resolve.
struct Checkpoints {
    acker: Acker,
    saver: Arc<Mutex<Saver>>,
    next: u64,
    inode: u64,
}

impl Checkpoints {
    fn ack(&mut self, offset: u64, line: u64) -> Ack {
        self.next += 1;
        let mut saver = lock(&self.saver);
        let epoch = saver.epoch;
        saver.tracker.push(
            self.next,
            (
                epoch,
                Position {
                    offset,
                    line,
                    inode: self.inode,
                },
            ),
        );
        self.acker.ack(self.next)
    }

    /// The file was truncated: its new content is read from the start, and the checkpoint
    /// says so at once.
    fn truncated(&mut self) -> Result<(), SourceError> {
        let mut saver = lock(&self.saver);
        saver.epoch += 1;
        saver.save(&Position {
            offset: 0,
            line: 0,
            inode: self.inode,
        })
    }
}

fn lock(saver: &Mutex<Saver>) -> std::sync::MutexGuard<'_, Saver> {
    saver.lock().unwrap_or_else(|e| e.into_inner())
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
    let mut saver_task = None;
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
        let saver = Arc::new(Mutex::new(Saver {
            store,
            key,
            path: path.clone(),
            tracker: Tracker::default(),
            epoch: 0,
        }));
        saver_task = Some({
            let saver = saver.clone();
            let (stats, clock, stop) = (ctx.stats.clone(), ctx.clock.clone(), ctx.shutdown.clone());
            tokio::spawn(async move {
                while let Some(r) = acks.recv().await {
                    let mut saver = lock(&saver);
                    let position = saver.tracker.resolve(r.token, r.delivered);
                    match position {
                        Some((epoch, p)) if epoch == saver.epoch => {
                            if let Err(e) = saver.save(&p) {
                                // A checkpoint that cannot move stops the pipeline, rather
                                // than freezing while records keep flowing.
                                tracing::error!(error = %e, "Stopping the pipeline: its checkpoint cannot be saved");
                                stop.cancel();
                                return Err(e);
                            }
                            stats.checkpointed(clock.now_ms());
                        }
                        // Read before a truncation: the truncation's checkpoint supersedes it.
                        Some(_) | None => {}
                    }
                }
                Ok::<(), SourceError>(())
            })
        });
        checkpoints = Some(Checkpoints {
            acker: Acker::new(ack_tx, ctx.poison.clone()),
            saver,
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
                Lines {
                    format: config.format,
                    follow: config.follow,
                    max_line: config.max_line.0 as usize,
                },
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
            file = tokio::fs::File::open(&config.path)
                .await
                .map_err(open_error)?;
            ino = inode(&file.metadata().await.map_err(open_error)?);
            if let Some(c) = checkpoints.as_mut() {
                c.inode = ino;
                if ended == Ended::Truncated {
                    c.truncated()?;
                }
            }
            tracing::info!(file = %path, how = ?ended, "The file was rotated or truncated; reading the new content from its start");
            (offset, line) = (0, 0);
        }
    };
    let read: Result<(), SourceError> = read.await;
    // Let the pipeline drain: the last checkpoint is saved when the sink has the last chunk.
    drop(checkpoints);
    drop(ctx);
    let saved = match saver_task {
        Some(task) => task
            .await
            .unwrap_or_else(|e| Err(SourceError::Checkpoint(format!("checkpoint task: {e}")))),
        None => Ok(()),
    };
    // A failed save is the cause when both failed: reading stopped because of it.
    saved.and(read)
}

pub(super) async fn run_stdin(
    config: StdinSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    let reader = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    read_lines(
        reader,
        "stdin",
        Lines {
            format: config.format,
            follow: false,
            max_line: config.max_line.0 as usize,
        },
        &ctx,
        &mut None,
        0,
        0,
        None,
    )
    .await
    .map(|_| ())
}

/// How lines are read.
#[derive(Debug, Clone, Copy)]
struct Lines {
    format: LineFormat,
    follow: bool,
    /// The most bytes of a line kept as a record.
    max_line: usize,
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// End of input, shutdown, or the pipeline is gone.
    Done,
    /// A followed file was replaced (another inode at its path).
    Rotated,
    /// A followed file was truncated under the reader.
    Truncated,
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

/// A line being read: at most `max` bytes of it are kept, the rest only counted.
#[derive(Default)]
struct LineBuf {
    kept: Vec<u8>,
    /// Bytes of the line past `max`, read and thrown away.
    skipped: u64,
    /// The line's newline was read.
    complete: bool,
}

impl LineBuf {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.skipped == 0
    }

    /// Ready for the next line, keeping the buffer.
    fn clear(&mut self) {
        self.kept.clear();
        self.skipped = 0;
        self.complete = false;
    }

    /// Bytes of the file the line takes, its newline included.
    fn consumed(&self) -> u64 {
        self.kept.len() as u64 + self.skipped + u64::from(self.complete)
    }
}

/// Reads on up to and including the next newline, keeping at most `max` bytes of the line.
/// Returns the bytes read by this call (0 at the end of the input).
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut LineBuf,
    max: usize,
) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(read);
        }
        let (take, newline) = match memchr(buf) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        let room = max.saturating_sub(line.kept.len()).min(take);
        line.kept.extend_from_slice(&buf[..room]);
        line.skipped += (take - room) as u64;
        let used = take + usize::from(newline);
        reader.consume(used);
        read += used;
        if newline {
            line.complete = true;
            return Ok(read);
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Reads lines from `offset` (line `line_no` done) until the end, or shutdown when following.
#[allow(clippy::too_many_arguments)]
async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    name: &str,
    how: Lines,
    ctx: &SourceContext,
    checkpoints: &mut Option<Checkpoints>,
    mut offset: u64,
    mut line_no: u64,
    watch: Option<(&std::path::Path, u64)>,
) -> Result<Ended, SourceError> {
    let source: Arc<str> = name.into();
    let mut partial_at: Option<(u64, u64)> = None;
    let mut draining = false;
    let new_chunk = || {
        let mut b = BatchBuilder::with_capacity(CHUNK, CHUNK * 128);
        b.set_source(source.clone());
        b
    };
    // Hands a chunk (and the lines that failed in it) over, with one ack for both.
    let mut hand_over = async |chunk: &mut BatchBuilder,
                               failed: &mut Vec<FailedRecord>,
                               offset: u64,
                               line_no: u64|
           -> bool {
        let mut batch = std::mem::replace(chunk, new_chunk()).finish();
        if let Some(c) = checkpoints.as_mut() {
            if batch.is_empty() && failed.is_empty() {
                return true;
            }
            let ack = c.ack(offset, line_no);
            failed.iter_mut().for_each(|f| f.record.ack = ack.clone());
            batch.set_ack(ack);
        }
        ctx.fail(std::mem::take(failed)).await && ctx.emit(batch).await
    };
    let mut line = LineBuf::default();
    let mut seq = String::new();
    let mut chunk = new_chunk();
    let mut failed = Vec::new();
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let n = tokio::select! {
            n = read_line(&mut reader, &mut line, how.max_line) => n.map_err(|source| SourceError::Read {
                path: name.to_string(),
                source,
            })?,
            _ = ctx.shutdown.cancelled() => break,
        };
        let complete = line.complete;
        let mut rotated = false;
        if n == 0 || (!complete && how.follow) {
            // End of input for now: hand over what we have.
            let (at, at_line) = partial_at.unwrap_or((offset, line_no));
            if !hand_over(&mut chunk, &mut failed, at, at_line).await {
                return Ok(Ended::Done);
            }
            if !how.follow {
                break;
            }
            if !draining {
                let change = watch.map_or(Change::None, |(path, ino)| replaced(path, ino, offset));
                if change == Change::Truncated {
                    // Nothing more to read at this offset: start again at once.
                    return Ok(Ended::Truncated);
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
        offset += line.consumed();
        // The line buffer (and the line number's text) is read in place and kept for the next
        // line: no allocation per line.
        let skipped = line.skipped;
        let mut data: &[u8] = &line.kept;
        if complete && skipped == 0 && data.last() == Some(&b'\r') {
            data = &data[..data.len() - 1];
        }
        let arrival = ctx.clock.now_ms();
        seq.clear();
        let _ = write!(seq, "{line_no}");
        let failure = |code: &str, message: String| {
            let mut record = Record::new(data.to_vec(), source.clone(), arrival);
            record.sequence_number = Some(seq.clone());
            record.partition_key = seq.as_str().into();
            FailedRecord {
                record,
                output_type: ErrorOutputType::SourceFailed,
                code: code.into(),
                message,
                stage: "source".into(),
                attempts: 1,
                failed_at_ms: arrival,
                details: None,
            }
        };
        let good = if skipped > 0 {
            let total = data.len() as u64 + skipped;
            let message = format!(
                "{name} line {line_no}: the line is {total} bytes, over max_line ({} bytes); rawData holds its first {} bytes",
                how.max_line,
                data.len()
            );
            failed.push(failure(crate::codes::SOURCE_LINE_TOO_LONG, message));
            false
        } else {
            match how.format {
                LineFormat::Lines => true,
                LineFormat::Json => {
                    if data.iter().all(u8::is_ascii_whitespace) {
                        line.clear();
                        continue;
                    }
                    match serde_json::from_slice::<serde::de::IgnoredAny>(data) {
                        Ok(_) => true,
                        Err(e) => {
                            let message = format!("{name} line {line_no}: not JSON: {e}");
                            failed.push(failure(crate::codes::SOURCE_INVALID_JSON, message));
                            false
                        }
                    }
                }
            }
        };
        if good {
            chunk.push(
                data,
                Meta {
                    key: &seq,
                    sequence_number: Some(&seq),
                    sub_sequence_number: None,
                    arrival_ms: arrival,
                },
            );
        }
        // A partial line read while following stays in the buffer and grows; a whole one is
        // done with.
        line.clear();
        // Hand over a full chunk, or whatever is read when the reader would have to wait.
        let full = chunk.len() >= CHUNK || chunk.data_len() >= CHUNK_BYTES;
        if full || reader.buffer().is_empty() || rotated {
            let (at, at_line) = (
                partial_at.map_or(offset, |p| p.0),
                partial_at.map_or(line_no, |p| p.1),
            );
            if !hand_over(&mut chunk, &mut failed, at, at_line).await {
                return Ok(Ended::Done);
            }
        }
        if rotated {
            return Ok(Ended::Rotated);
        }
    }
    let (offset, line_no) = partial_at.unwrap_or((offset, line_no));
    hand_over(&mut chunk, &mut failed, offset, line_no).await;
    Ok(Ended::Done)
}

super::runs_as_source!(FileSourceConfig, run_file);

super::runs_as_source!(StdinSourceConfig, run_stdin);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_over_the_cap_is_kept_short_and_counted_whole() {
        let text = format!("short\n{}\nafter", "x".repeat(100));
        let mut reader = BufReader::with_capacity(16, text.as_bytes());
        let mut line = LineBuf::default();
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 6);
        assert_eq!((line.kept.as_slice(), line.complete), (&b"short"[..], true));
        let mut line = LineBuf::default();
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 101);
        assert_eq!(line.kept, b"xxxxxxxxxx");
        assert_eq!((line.skipped, line.consumed()), (90, 101));
        let mut line = LineBuf::default();
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 5);
        assert!(!line.complete, "the last line has no newline");
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 0);
    }
}
