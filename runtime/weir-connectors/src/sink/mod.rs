//! Sinks: where records are delivered, and the error output. A sink knows nothing of Wasm or
//! sources: it receives batches until its input closes, then flushes everything it buffers.
//! Each kind's settings implement [`Sink`] (and [`ErrorSink`] for an error output) in its
//! folder, and are registered in [`crate::config`].
//!
//! Invariants:
//! - A sink returns only after every record it received is written, kept in the error output,
//!   or (at shutdown, with its destination still failing) given up as described in [`retry`]
//!   and reported in the error it returns; `records_out` counts records once their object is
//!   durably written.
//! - Printing is not delivering: a record written to stdout or stderr never lets a source
//!   checkpoint move past it (its ack resolves as not delivered).
//! - A destination that fails as a whole is retried, never given up on record by record; see
//!   [`retry`].

mod batched;
pub mod compress;
pub mod file;
pub mod firehose;
pub mod http;
pub mod kinesis;
pub mod objects;
pub mod retry;
pub mod s3;
pub mod stdout;

pub use objects::parquet;
pub use s3::s3_store;
pub use weir_core::sink::{
    keep_undelivered, BoxFuture, Collect, Delivered, ErrorSink, MemoryBudget, Sink, SinkContext,
    SinkError,
};

/// The [`Sink`] impl of a sink whose run is `async fn $run(config, rx, ctx)`.
macro_rules! runs_as_sink {
    ($ty:ty, $run:path) => {
        impl $crate::sink::Sink for $ty {
            fn run(
                self: Box<Self>,
                rx: tokio::sync::mpsc::Receiver<$crate::batch::Batch>,
                ctx: $crate::sink::SinkContext,
            ) -> $crate::sink::BoxFuture<Result<$crate::sink::Delivered, $crate::sink::SinkError>>
            {
                Box::pin($run(*self, rx, ctx))
            }
        }
    };
}
pub(crate) use runs_as_sink;

/// Runs the pipeline's sink until its input closes.
pub async fn run(
    config: crate::config::SinkConfig,
    rx: tokio::sync::mpsc::Receiver<crate::batch::Batch>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    Box::new(config).run(rx, ctx).await
}
