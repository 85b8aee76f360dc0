//! Processors: the stages between source and sink. The engine only sees this trait, so it
//! knows nothing of Wasm (or of SQL): an adapter outside the core implements it.
//!
//! Invariant: every input record is accounted for in the result: it became output records, was
//! dropped on purpose, failed (and goes to the error output), or was abandoned at shutdown
//! with its ack failed (and is read again).

use crate::record::{FailedRecord, Record};

/// What a processor made of a batch.
#[derive(Debug, Default)]
pub struct Processed {
    pub records: Vec<Record>,
    pub failed: Vec<FailedRecord>,
    pub dropped: usize,
    /// Records given up because the pipeline stopped while the stage held them (a step
    /// without a timeout, cut off): their acks resolve as not delivered, so a checkpointing
    /// source reads them again. Records no source would read again go to `failed` instead.
    pub abandoned: usize,
    /// Fuel the guest burned on this batch (0 when no fuel budget is set).
    pub fuel_used: u64,
}

/// A stage that takes a whole batch at a time. Runs on its own thread, so it may block.
pub trait Processor: Send + 'static {
    /// Names the stage in logs and in the error output.
    fn name(&self) -> &str;
    fn process(&mut self, batch: Vec<Record>, now_ms: i64) -> Processed;
    /// Gives the stage a switch that turns true when the pipeline can no longer wait for it
    /// (it stops, and the stage has no timeout of its own): a call blocked then should end at
    /// once, failing its records.
    fn set_abort(&mut self, _abort: tokio::sync::watch::Receiver<bool>) {}
}
