//! Processors: the stages between source and sink. The engine only sees this trait; the Wasm
//! adapter that implements it lives in [`wasm`] and the SQL stage in [`sql`] (over the
//! `weir-sql` crate), so sources, sinks and the engine stay free of Wasm and SQL.
//!
//! Invariant: every input record is accounted for in the result: it became output records, was
//! dropped on purpose, failed (and goes to the error output), or was abandoned at shutdown
//! with its ack failed (and is read again).

pub mod sql;
pub mod wasm;

pub use weir_core::process::{Processed, Processor};
