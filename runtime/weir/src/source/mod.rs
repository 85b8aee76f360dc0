//! Sources: where records come from. A source knows nothing of Wasm or sinks: it sends chunks of
//! records downstream and unreadable input to the error output, and stops when its input ends or
//! shutdown is signalled.
//!
//! Invariant: every line read becomes either a record or a failed record; none is skipped
//! silently (blank lines of JSON input are the one exception: JSON lines allow them).

mod file;
mod generator;
pub mod kinesis;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::Poison;
use crate::clock::Clock;
use crate::config::SourceConfig;
use crate::record::{FailedRecord, Record};
use crate::stats::Stats;

pub use generator::Template;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("generator template: {0}")]
    Template(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("kinesis: {0}")]
    Kinesis(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// What a running source is given.
#[derive(Clone)]
pub struct SourceContext {
    pub pipeline: String,
    pub out: mpsc::Sender<Vec<Record>>,
    pub errors: mpsc::Sender<Vec<FailedRecord>>,
    pub clock: Arc<dyn Clock>,
    pub shutdown: CancellationToken,
    pub stats: Arc<Stats>,
    /// For the acks of a source that checkpoints (see [`crate::ack::Acker`]).
    pub poison: Poison,
    /// Where checkpointing sources keep their checkpoints.
    pub state_dir: std::path::PathBuf,
}

impl SourceContext {
    /// Sends a chunk downstream; `false` when the pipeline is gone.
    async fn emit(&self, chunk: Vec<Record>) -> bool {
        if chunk.is_empty() {
            return true;
        }
        let bytes: usize = chunk.iter().map(|r| r.data.len()).sum();
        Stats::add(&self.stats.records_in, chunk.len() as u64);
        Stats::add(&self.stats.bytes_in, bytes as u64);
        self.poison.send(&self.out, chunk).await
    }

    /// Sends failed records to the error output; `false` when it is gone.
    async fn fail(&self, failed: Vec<FailedRecord>) -> bool {
        if failed.is_empty() {
            return true;
        }
        Stats::add(&self.stats.records_in, failed.len() as u64);
        Stats::add(&self.stats.records_failed, failed.len() as u64);
        self.poison.send(&self.errors, failed).await
    }
}

/// Runs a source until its input ends or shutdown.
pub async fn run(config: SourceConfig, ctx: SourceContext) -> Result<(), SourceError> {
    match config {
        SourceConfig::File(c) => file::run_file(c, ctx).await,
        SourceConfig::Stdin(c) => file::run_stdin(c, ctx).await,
        SourceConfig::Generator(c) => generator::run(c, ctx).await,
        SourceConfig::Kinesis(c) => kinesis::run(c, ctx).await,
    }
}
