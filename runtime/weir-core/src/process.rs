//! Processors: the stages between source and sink. The engine only sees this trait, so it
//! knows nothing of Wasm (or of SQL): an adapter outside the core implements it.
//!
//! Invariant: every input record is accounted for in the result: it became output records, was
//! dropped on purpose, failed (and goes to the error output), or was abandoned at shutdown
//! with its ack failed (and is read again).

use crate::batch::Batch;
use crate::record::FailedRecord;

/// What a processor made of a batch.
#[derive(Debug, Default)]
pub struct Processed {
    pub records: Batch,
    pub failed: Vec<FailedRecord>,
    pub dropped: usize,
    /// Records given up because the pipeline stopped while the stage held them (a step
    /// without a timeout, cut off): their acks resolve as not delivered, so a checkpointing
    /// source reads them again. Records no source would read again go to `failed` instead.
    pub abandoned: usize,
    /// Fuel the guest burned on this batch (0 when no fuel budget is set).
    pub fuel_used: u64,
}

/// A stage that takes a whole batch at a time. Its calls run on a thread of the step pool
/// ([`crate::pool`]), so it may block; one blocked for long is set aside, not waited for.
pub trait Processor: Send + 'static {
    /// Names the stage in logs and in the error output.
    fn name(&self) -> &str;
    fn process(&mut self, batch: Batch, now_ms: i64) -> Processed;
    /// Gives the stage a switch that turns true when the pipeline can no longer wait for it
    /// (it stops, and the stage has no timeout of its own): a call blocked then should end at
    /// once, failing its records.
    fn set_abort(&mut self, _abort: tokio::sync::watch::Receiver<bool>) {}

    /// How often the stage wants to be told the time while no batch comes (a window that must
    /// close on time, whether or not records arrive); `None`, the default, for never.
    fn tick_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Time passed: it is `now_ms`, and the watermark is `watermark_ms` (the latest arrival
    /// time of the records this stage was given, which never goes back). What the stage
    /// returns goes on as if it had come from a batch: records emitted without input, such as
    /// the rows of windows that closed.
    fn tick(&mut self, _now_ms: i64, _watermark_ms: i64) -> Processed {
        Processed::default()
    }

    /// The input ended by itself (a file read to its end, a generator's count): return every
    /// record the stage still holds. Not called when the pipeline stops (shutdown, reload):
    /// then the stage is dropped, and must fail the acks of what it holds (see
    /// [`Ack::fail`](crate::ack::Ack::fail)) so that the source reads those records again.
    fn flush(&mut self, _now_ms: i64) -> Processed {
        Processed::default()
    }

    /// Whether the stage keeps state across batches (windows, aggregates). A reload never
    /// swaps such a stage in place, which would lose the state: it restarts the pipeline, so
    /// that what the stage held is read again from the source's checkpoint.
    fn stateful(&self) -> bool {
        false
    }
}
