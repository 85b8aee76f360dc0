//! The three roles an object destination (`file`, `s3`) plays: the pipeline's sink, its error
//! output, and its backup. Each runs an [`Objects`] over the destination's store; they differ
//! in what they count (only the sink counts `records_out`) and in how records are laid out (the
//! error output writes Firehose's error records).

use tokio::sync::mpsc;

use super::{Objects, Store};
use crate::config::{ErrorsConfig, ObjectOptions};
use crate::record::FailedRecord;
use crate::sink::{BoxFuture, Delivered, Sink, SinkContext, SinkError};

/// A `file` or `s3` destination's settings.
pub(crate) trait Destination: Clone + Send + Sync + 'static {
    /// Where its objects go (an S3 client is built here).
    fn store(&self) -> BoxFuture<Store>;
    fn options(&self) -> &ObjectOptions;
    fn options_mut(&mut self) -> &mut ObjectOptions;
    /// Itself as an error output.
    fn into_errors(self) -> ErrorsConfig;
}

/// The object destination of a file or S3 configuration.
async fn objects<D: Destination>(
    d: &D,
    ctx: &SinkContext,
    errors: bool,
    count_out: bool,
) -> Result<Objects, SinkError> {
    let store = d.store().await;
    Objects::new(store, d.options().clone(), &ctx.pipeline, errors, count_out).map_err(|e| {
        // Records already queued for this sink are dropped with it: none may count as
        // delivered.
        ctx.poison.set();
        SinkError::Config(e)
    })
}

/// As the pipeline's sink: its records are its output.
pub(crate) async fn run_sink<D: Destination>(
    d: D,
    rx: mpsc::Receiver<crate::batch::Batch>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let o = objects(&d, &ctx, false, true).await?;
    super::run::run(o, rx, ctx).await
}

/// As the error output.
pub(crate) async fn run_errors<D: Destination>(
    d: D,
    rx: mpsc::Receiver<Vec<FailedRecord>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let o = objects(&d, &ctx, true, false).await?;
    super::run::run_errors(o, rx, ctx).await
}

/// The error output of a sink that names none: its own destination, under its error prefix
/// (as Firehose does), one JSON error record per line whatever the records' delimiter.
pub(crate) fn default_errors<D: Destination>(d: &D) -> ErrorsConfig {
    let mut d = d.clone();
    d.options_mut().delimiter = crate::config::Delimiter::Newline;
    d.into_errors()
}

/// As the backup: source records as they came, never counted as the pipeline's output.
pub(crate) struct Backup<D>(pub D);

impl<D: Destination> Sink for Backup<D> {
    fn run(
        self: Box<Self>,
        rx: mpsc::Receiver<crate::batch::Batch>,
        ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        let d = self.0;
        Box::pin(async move {
            let o = objects(&d, &ctx, false, false).await?;
            super::run::run(o, rx, ctx).await
        })
    }
}

/// The sink, error output and backup impls of an object destination.
macro_rules! object_destination {
    ($ty:ty) => {
        $crate::sink::runs_as_sink!($ty, $crate::sink::objects::roles::run_sink);

        impl $crate::config::SinkComponent for $ty {
            fn default_errors(&self, _: &std::path::Path) -> $crate::config::ErrorsConfig {
                $crate::sink::objects::roles::default_errors(self)
            }
        }

        impl $crate::sink::ErrorSink for $ty {
            fn run(
                self: Box<Self>,
                rx: tokio::sync::mpsc::Receiver<Vec<$crate::record::FailedRecord>>,
                ctx: $crate::sink::SinkContext,
            ) -> $crate::sink::BoxFuture<Result<$crate::sink::Delivered, $crate::sink::SinkError>>
            {
                Box::pin($crate::sink::objects::roles::run_errors(*self, rx, ctx))
            }
        }

        impl $crate::config::ErrorsComponent for $ty {}

        impl $crate::config::BackupComponent for $ty {
            fn into_backup(self: Box<Self>) -> Box<dyn $crate::sink::Sink> {
                Box::new($crate::sink::objects::roles::Backup(*self))
            }
        }
    };
}
pub(crate) use object_destination;
