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

/// The [`Source`] impl of a source whose run is `async fn $run(config, ctx)`.
macro_rules! runs_as_source {
    ($ty:ty, $run:path) => {
        impl $crate::source::Source for $ty {
            fn run(
                self: Box<Self>,
                ctx: $crate::source::SourceContext,
            ) -> $crate::source::BoxFuture<Result<(), $crate::source::SourceError>> {
                Box::pin($run(*self, ctx))
            }
        }
    };
}
use runs_as_source;
