//! Sources: where records come from. A source knows nothing of Wasm or sinks: it sends chunks of
//! records downstream and unreadable input to the error output, and stops when its input ends or
//! shutdown is signalled. Each kind's settings implement [`Source`] (in its folder), and are
//! registered in [`crate::config::SourceConfig`].
//!
//! Invariant: every line read becomes either a record or a failed record; none is skipped
//! silently (blank lines of JSON input are the one exception: JSON lines allow them).

pub mod file;
pub mod generator;
pub mod kinesis;

pub use weir_core::source::{BoxFuture, Source, SourceContext, SourceError};

pub use generator::Template;
