//! What a source is: the trait the engine runs, what it is given, how it fails.
//!
//! Invariant: every record a source reads becomes either a record sent downstream or a failed
//! record sent to the error output; none is skipped silently. A source stops when its input
//! ends or its shutdown token is cancelled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::Poison;
use crate::batch::Batch;
use crate::clock::Clock;
use crate::record::FailedRecord;
use crate::stats::Stats;

/// A boxed future that may move between threads: what the component traits return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where records come from. The engine takes one as a trait object and runs it once.
pub trait Source: Send {
    /// Reads until the input ends or `ctx.shutdown` is cancelled.
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>>;
}

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
    /// A remote service failed in a way retries do not mend: its name, and what it said.
    #[error("{0}: {1}")]
    Service(&'static str, String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// What a running source is given.
#[derive(Clone)]
pub struct SourceContext {
    pub pipeline: String,
    pub out: mpsc::Sender<Batch>,
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
    pub async fn emit(&self, chunk: Batch) -> bool {
        if chunk.is_empty() {
            return true;
        }
        Stats::add(&self.stats.records_in, chunk.len() as u64);
        Stats::add(&self.stats.bytes_in, chunk.data_len() as u64);
        self.poison.send(&self.out, chunk).await
    }

    /// Sends failed records to the error output; `false` when it is gone.
    pub async fn fail(&self, failed: Vec<FailedRecord>) -> bool {
        if failed.is_empty() {
            return true;
        }
        Stats::add(&self.stats.records_in, failed.len() as u64);
        Stats::add(&self.stats.records_failed, failed.len() as u64);
        self.poison.send(&self.errors, failed).await
    }
}
