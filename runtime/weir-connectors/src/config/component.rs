//! What every component's settings do besides holding them, in one trait per table, so that
//! the code around pipeline files (path resolution, tenants' directories, run summaries,
//! reloads, building the running pipeline) asks the component instead of matching on every
//! kind. A new kind implements [`Component`] and its table's trait, and adds one line to that
//! table's [`registry!`](crate::registry) in [`crate::config`]; nothing else needs to know it. A
//! component's settings and these impls live in its folder (`source/kinesis/config.rs`,
//! `sink/http/config.rs`, ...; the `file` and `s3` sinks share `sink/objects/config.rs`).

use std::path::{Path, PathBuf};

use weir_core::sink::{ErrorSink, Sink};
use weir_core::source::Source;

use super::{ErrorsConfig, FileSinkConfig};

/// Local paths a component names, each with its key (relative to the component's table).
pub type LocalPaths = Vec<(&'static str, PathBuf)>;

/// Settings that read well but cannot be used: a file they name does not load, or this
/// release cannot honour them. Found by [`Component::check`], before any record moves.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct CheckError {
    /// The key at fault, relative to the component's table (`format.parquet.schema`).
    pub key: &'static str,
    pub message: String,
}

/// A component's settings.
pub trait Component: Send {
    /// Where it reads or writes, for logs and the run summary (no secrets).
    fn describe(&self) -> String;

    /// Makes its relative paths relative to `base`, the pipeline file's directory.
    fn resolve_paths(&mut self, _base: &Path) {}

    /// The local files and directories it reads or writes, each with the key (relative to its
    /// table) that names it: what a tenant's `allow.dirs` must hold.
    fn local_paths(&self) -> LocalPaths {
        Vec::new()
    }

    /// Checks what reading the table could not: files it names load, settings this release
    /// cannot honour are refused.
    fn check(&self) -> Result<(), CheckError> {
        Ok(())
    }

    /// Whether it prints records (stdout, stderr) rather than keeping them: printing never
    /// releases a checkpoint.
    fn prints(&self) -> bool {
        false
    }
}

/// A source's settings; running them is the source.
pub trait SourceComponent: Component + Source {
    /// Whether it keeps a checkpoint (so printed records never release one).
    fn checkpoints(&self) -> bool {
        false
    }

    /// Why draining and starting it again would lose or repeat records; `None` if it resumes.
    fn not_restartable(&self) -> Option<&'static str> {
        None
    }

    /// Whether it reads the process's standard input (only one pipeline of a run may).
    fn reads_stdin(&self) -> bool {
        false
    }
}

/// A sink's settings; running them is the sink.
pub trait SinkComponent: Component + Sink {
    /// Where its failed records go when the pipeline names no `[errors]`: by default, files
    /// under `errors_dir` in Firehose's error layout. Never stdout or stderr: a record printed
    /// is not kept.
    fn default_errors(&self, errors_dir: &Path) -> ErrorsConfig {
        ErrorsConfig::File(FileSinkConfig::default_errors(errors_dir.to_path_buf()))
    }
}

/// An error output's settings; running them is the error output.
pub trait ErrorsComponent: Component + ErrorSink {}

/// A backup's settings: source records as they came, never counted as the pipeline's output.
pub trait BackupComponent: Component {
    /// The backup, as a sink the engine runs.
    fn into_backup(self: Box<Self>) -> Box<dyn Sink>;
}

impl SourceComponent for super::SourceConfig {
    fn checkpoints(&self) -> bool {
        self.inner().checkpoints()
    }
    fn not_restartable(&self) -> Option<&'static str> {
        self.inner().not_restartable()
    }
    fn reads_stdin(&self) -> bool {
        self.inner().reads_stdin()
    }
}

impl Source for super::SourceConfig {
    fn run(
        self: Box<Self>,
        ctx: weir_core::source::SourceContext,
    ) -> weir_core::source::BoxFuture<Result<(), weir_core::source::SourceError>> {
        self.into_inner().run(ctx)
    }
}

impl SinkComponent for super::SinkConfig {
    fn default_errors(&self, errors_dir: &Path) -> ErrorsConfig {
        self.inner().default_errors(errors_dir)
    }
}

impl Sink for super::SinkConfig {
    fn run(
        self: Box<Self>,
        rx: tokio::sync::mpsc::Receiver<crate::batch::Batch>,
        ctx: weir_core::sink::SinkContext,
    ) -> weir_core::sink::BoxFuture<Result<weir_core::sink::Delivered, weir_core::sink::SinkError>>
    {
        self.into_inner().run(rx, ctx)
    }
}

impl ErrorsComponent for super::ErrorsConfig {}

impl ErrorSink for super::ErrorsConfig {
    fn run(
        self: Box<Self>,
        rx: tokio::sync::mpsc::Receiver<Vec<crate::record::FailedRecord>>,
        ctx: weir_core::sink::SinkContext,
    ) -> weir_core::sink::BoxFuture<Result<weir_core::sink::Delivered, weir_core::sink::SinkError>>
    {
        self.into_inner().run(rx, ctx)
    }
}

impl BackupComponent for super::BackupConfig {
    fn into_backup(self: Box<Self>) -> Box<dyn Sink> {
        self.into_inner().into_backup()
    }
}

/// Makes `p` relative to `base` (a pipeline file's directory) when it is relative.
pub fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = super::normalize(&base.join(&*p));
    }
}
