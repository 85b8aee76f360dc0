//! The `file` and `stdin` sources' settings as a pipeline file writes them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::component::{resolve, LocalPaths};
use crate::config::{Component, SourceComponent};
use crate::units::ByteSize;

/// How a line-oriented source turns lines into records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// Each line is one JSON value; a line that is not goes to the error output.
    Json,
    /// Each line is a record, as is.
    #[default]
    Lines,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    #[serde(rename = "type")]
    _type: String,
    pub path: PathBuf,
    #[serde(default)]
    pub format: LineFormat,
    /// Keep reading lines appended to the file until shutdown (like `tail -f`).
    #[serde(default)]
    pub follow: bool,
    /// Remember how far the sink has the file, and resume there after a restart.
    #[serde(default)]
    pub checkpoint: bool,
    /// The longest line read as a record; a longer one goes to the error output
    /// (`Source.LineTooLong`) with its first `max_line` bytes.
    #[serde(default = "default_max_line")]
    pub max_line: ByteSize,
}

/// The default longest line: Firehose's record limit is 1,000 KiB, Kinesis's 10 MiB.
fn default_max_line() -> ByteSize {
    ByteSize(1 << 20)
}

impl FileSourceConfig {
    pub fn new(path: PathBuf, format: LineFormat) -> Self {
        FileSourceConfig {
            _type: "file".into(),
            path,
            format,
            follow: false,
            checkpoint: false,
            max_line: default_max_line(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    pub format: LineFormat,
    /// As for `file`.
    #[serde(default = "default_max_line")]
    pub max_line: ByteSize,
}

impl FileSourceConfig {
    fn shown(&self) -> String {
        crate::config::show(&self.path)
    }
}

impl Component for FileSourceConfig {
    fn describe(&self) -> String {
        format!("file {}", self.shown())
    }
    fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.path);
    }
    fn local_paths(&self) -> LocalPaths {
        vec![("path", self.path.clone())]
    }
}

impl SourceComponent for FileSourceConfig {
    fn checkpoints(&self) -> bool {
        self.checkpoint
    }
    fn not_restartable(&self) -> Option<&'static str> {
        (!self.checkpoint)
            .then_some("its file source keeps no checkpoint (set `checkpoint = true`)")
    }
}

impl Component for StdinSourceConfig {
    fn describe(&self) -> String {
        "stdin".into()
    }
}

impl SourceComponent for StdinSourceConfig {
    fn not_restartable(&self) -> Option<&'static str> {
        Some("its source (stdin) cannot be read again")
    }
    fn reads_stdin(&self) -> bool {
        true
    }
}
