//! What every component's configuration does besides holding its settings, in one trait, so
//! that the code around pipeline files (path resolution, tenants' directories, run summaries,
//! reloads) asks the component instead of matching on every kind. A new kind implements
//! [`Component`] (and [`SourceComponent`] for a source) and adds its variant to the enum of its
//! table; nothing else needs to know it. A component's settings and their `Component` impl
//! live in its folder (`source/kinesis/config.rs`, `sink/http/config.rs`, ...), re-exported by
//! [`crate::config`] (the `file` and `s3` sinks share `sink/objects/config.rs`); what sinks of
//! several kinds share (buffering hints, compression) stays in `config`.

use std::path::{Path, PathBuf};

use super::{
    BackupConfig, ErrorsConfig, ProcessConfig, SinkConfig, SourceConfig, StdoutSinkConfig,
    WasmStepConfig,
};

/// Local paths a component names, each with its key (relative to the component's table).
pub type LocalPaths = Vec<(&'static str, PathBuf)>;

/// A component's configuration.
pub trait Component {
    /// Where it reads or writes, for logs and the run summary (no secrets).
    fn describe(&self) -> String;

    /// Makes its relative paths relative to `base`, the pipeline file's directory.
    fn resolve_paths(&mut self, _base: &Path) {}

    /// The local files and directories it reads or writes, each with the key (relative to its
    /// table) that names it: what a tenant's `allow.dirs` must hold.
    fn local_paths(&self) -> LocalPaths {
        Vec::new()
    }
}

/// A source's configuration.
pub trait SourceComponent: Component {
    /// Whether it keeps a checkpoint (so printed records never release one).
    fn checkpoints(&self) -> bool {
        false
    }

    /// Why draining and starting it again would lose or repeat records; `None` if it resumes.
    fn not_restartable(&self) -> Option<&'static str> {
        None
    }
}

pub(crate) fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = super::normalize(&base.join(&*p));
    }
}

/// Calls `$call` on the config inside any variant of a component enum.
macro_rules! each {
    ($value:expr, $c:ident => $call:expr, $($variant:path),+ $(,)?) => {
        match $value {
            $($variant($c) => $call,)+
        }
    };
}

impl Component for SourceConfig {
    fn describe(&self) -> String {
        each!(self, c => c.describe(), SourceConfig::File, SourceConfig::Stdin, SourceConfig::Generator, SourceConfig::Kinesis)
    }
    fn resolve_paths(&mut self, base: &Path) {
        each!(self, c => c.resolve_paths(base), SourceConfig::File, SourceConfig::Stdin, SourceConfig::Generator, SourceConfig::Kinesis)
    }
    fn local_paths(&self) -> LocalPaths {
        each!(self, c => c.local_paths(), SourceConfig::File, SourceConfig::Stdin, SourceConfig::Generator, SourceConfig::Kinesis)
    }
}

impl SourceComponent for SourceConfig {
    fn checkpoints(&self) -> bool {
        each!(self, c => c.checkpoints(), SourceConfig::File, SourceConfig::Stdin, SourceConfig::Generator, SourceConfig::Kinesis)
    }
    fn not_restartable(&self) -> Option<&'static str> {
        each!(self, c => c.not_restartable(), SourceConfig::File, SourceConfig::Stdin, SourceConfig::Generator, SourceConfig::Kinesis)
    }
}

impl Component for WasmStepConfig {
    fn describe(&self) -> String {
        format!("Wasm module {}", super::show(&self.module))
    }
    fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.module);
        for dir in &mut self.grants.dirs {
            resolve(base, dir);
        }
    }
}

impl Component for ProcessConfig {
    fn describe(&self) -> String {
        each!(self, c => c.describe(), ProcessConfig::Wasm)
    }
    fn resolve_paths(&mut self, base: &Path) {
        each!(self, c => c.resolve_paths(base), ProcessConfig::Wasm)
    }
    fn local_paths(&self) -> LocalPaths {
        each!(self, c => c.local_paths(), ProcessConfig::Wasm)
    }
}

impl Component for StdoutSinkConfig {
    fn describe(&self) -> String {
        "stdout".into()
    }
}

impl Component for SinkConfig {
    fn describe(&self) -> String {
        each!(self, c => c.describe(), SinkConfig::File, SinkConfig::S3, SinkConfig::Stdout, SinkConfig::Kinesis, SinkConfig::Firehose, SinkConfig::Http)
    }
    fn resolve_paths(&mut self, base: &Path) {
        each!(self, c => c.resolve_paths(base), SinkConfig::File, SinkConfig::S3, SinkConfig::Stdout, SinkConfig::Kinesis, SinkConfig::Firehose, SinkConfig::Http)
    }
    fn local_paths(&self) -> LocalPaths {
        each!(self, c => c.local_paths(), SinkConfig::File, SinkConfig::S3, SinkConfig::Stdout, SinkConfig::Kinesis, SinkConfig::Firehose, SinkConfig::Http)
    }
}

impl Component for ErrorsConfig {
    fn describe(&self) -> String {
        match self {
            ErrorsConfig::Stderr(_) => "stderr (printed: never moves a checkpoint)".into(),
            ErrorsConfig::File(c) => c.describe(),
            ErrorsConfig::S3(c) => c.describe(),
        }
    }
    fn resolve_paths(&mut self, base: &Path) {
        each!(self, c => c.resolve_paths(base), ErrorsConfig::File, ErrorsConfig::S3, ErrorsConfig::Stderr)
    }
    fn local_paths(&self) -> LocalPaths {
        each!(self, c => c.local_paths(), ErrorsConfig::File, ErrorsConfig::S3, ErrorsConfig::Stderr)
    }
}

impl Component for BackupConfig {
    fn describe(&self) -> String {
        each!(self, c => c.describe(), BackupConfig::File, BackupConfig::S3)
    }
    fn resolve_paths(&mut self, base: &Path) {
        each!(self, c => c.resolve_paths(base), BackupConfig::File, BackupConfig::S3)
    }
    fn local_paths(&self) -> LocalPaths {
        each!(self, c => c.local_paths(), BackupConfig::File, BackupConfig::S3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, PipelineFile, Vars};

    fn file(text: &str) -> PipelineFile {
        parse(
            Path::new("/srv/pipes/p.toml"),
            text,
            &Vars {
                allowed: &[],
                lookup: &|_| None,
            },
        )
        .unwrap()
    }

    #[test]
    fn each_source_says_whether_a_restart_resumes_and_whether_it_checkpoints() {
        let cases = [
            (
                "[source]\ntype = \"file\"\npath = \"in.log\"\ncheckpoint = true\n",
                None,
                true,
                "file /srv/pipes/in.log",
            ),
            (
                "[source]\ntype = \"file\"\npath = \"in.log\"\n",
                Some("its file source keeps no checkpoint (set `checkpoint = true`)"),
                false,
                "file /srv/pipes/in.log",
            ),
            (
                "[source]\ntype = \"stdin\"\n",
                Some("its source (stdin) cannot be read again"),
                false,
                "stdin",
            ),
            (
                "[source]\ntype = \"generator\"\ntemplate = \"x\"\ncount = 5\n",
                Some("its generator has a `count` and would make its records again"),
                false,
                "generator (5 records)",
            ),
            (
                "[source]\ntype = \"generator\"\ntemplate = \"x\"\n",
                None,
                false,
                "generator",
            ),
            (
                "[source]\ntype = \"kinesis\"\nstream = \"clicks\"\n",
                None,
                true,
                "Kinesis stream clicks",
            ),
        ];
        for (source, restart, checkpoints, shown) in cases {
            let f = file(&format!("{source}[sink]\ntype = \"stdout\"\n"));
            assert_eq!(f.spec.source.not_restartable(), restart, "{source}");
            assert_eq!(f.spec.source.checkpoints(), checkpoints, "{source}");
            assert_eq!(f.spec.source.describe(), shown, "{source}");
        }
    }

    #[test]
    fn paths_resolve_against_the_pipeline_file_and_are_listed_with_their_keys() {
        let f = file(
            "[source]\ntype = \"file\"\npath = \"../data/in.log\"\n\
             [sink]\ntype = \"file\"\npath = \"out\"\nformat = { parquet = { schema = \"s.json\" } }\n\
             [errors]\ntype = \"file\"\npath = \"/var/errors\"\n",
        );
        assert_eq!(
            f.spec.source.local_paths(),
            [("path", PathBuf::from("/srv/data/in.log"))]
        );
        assert_eq!(
            f.spec.sink.local_paths(),
            [
                ("format.schema", PathBuf::from("/srv/pipes/s.json")),
                ("path", PathBuf::from("/srv/pipes/out"))
            ]
        );
        assert_eq!(f.spec.sink.describe(), "files under /srv/pipes/out");
        let errors = f.spec.errors.as_ref().unwrap();
        assert_eq!(
            errors.local_paths(),
            [("path", PathBuf::from("/var/errors"))]
        );
    }
}
