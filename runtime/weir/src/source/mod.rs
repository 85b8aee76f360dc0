//! Sources: where records come from. A source knows nothing of Wasm or sinks: it sends chunks of
//! records downstream and unreadable input to the error output, and stops when its input ends or
//! shutdown is signalled.
//!
//! Invariant: every line read becomes either a record or a failed record; none is skipped
//! silently (blank lines of JSON input are the one exception: JSON lines allow them).

pub mod file;
pub mod generator;
pub mod kinesis;

use crate::config::SourceConfig;

pub use weir_core::source::{BoxFuture, Source, SourceContext, SourceError};

pub use generator::Template;

impl Source for SourceConfig {
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(run(*self, ctx))
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
