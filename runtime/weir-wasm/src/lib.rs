//! Weir's sandboxed WebAssembly host.
//!
//! This crate owns everything about running plugin components: the wasmtime engine, the on-disk
//! cache of compiled components, the sandbox (CPU budget, memory cap, capabilities) and the
//! bindings to the `weir:plugin` WIT contract in `wit/`. It knows nothing of Kinesis, files or
//! pipelines: callers hand it packed batches and get outcomes back.
//!
//! Invariants:
//! - A guest never takes the host down. Every failure inside a call (trap, panic, timeout, fuel
//!   or memory exhaustion, malformed answer) comes back as a [`GuestError`] for that batch only.
//! - An instance that failed is never entered again: the [`Runner`] drops it and builds a fresh
//!   one from the pre-instantiated component before the next batch.
//! - A component is compiled at most once per content hash and engine configuration; later loads
//!   deserialize the cached artifact.

mod bindings;
mod cache;
mod error;
mod host;
mod limits;
mod stderr;

pub use bindings::{
    Attribute, Batch, Blobs, Column, DataType, Decision, Level, NewKey, Outcome, PartitionKey,
    Results, RowError, Signature, SourceRun, SubSequence, Texts, Transformed, Values,
};
pub use cache::CompileCache;
pub use error::{Error, GuestError, GuestErrorKind};
pub use host::{Host, HostOptions, Plugin, PluginKind, Runner, Settings, Verdicts};
pub use limits::{Grants, Limits};
