//! What the components' settings share, and the registry of component kinds.
//!
//! A pipeline file's tables (`[source]`, `[sink]`, `[errors]`, `[backup]`, `[[process]]`) each
//! hold one component, chosen by its `type` key. Each table's kinds are declared once, in a
//! [`registry!`](crate::registry) below: one line per kind names its `type` value, its enum
//! variant and its settings struct (which lives in the component's folder and implements the
//! table's trait from [`component`]). Everything else (reading, path resolution, tenants'
//! checks, run summaries, building the running component) goes through that trait, so a new
//! kind is one folder and one line here.
//!
//! Tables are read in two passes by the pipeline-file parser (in the `weir` crate): the first
//! reads each table's `type`, and hands them to [`with_kinds`]; the second deserializes each
//! table straight into the struct of its kind, which keeps toml's spans and key paths intact
//! (serde's internally tagged enums buffer the table and lose both).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::units::{ByteSize, HumanDuration};

pub mod component;
pub use crate::sink::objects::config as objects;
pub use component::{
    BackupComponent, CheckError, Component, ErrorsComponent, LocalPaths, SinkComponent,
    SourceComponent,
};
pub use objects::{FileSinkConfig, Format, ObjectOptions, S3SinkConfig};

pub use crate::sink::firehose::config::FirehoseSinkConfig;
pub use crate::sink::http::config::{ContentEncoding, HeaderText, HttpSinkConfig};
pub use crate::sink::kinesis::config::{KinesisSinkConfig, PartitionKeyFrom};
pub use crate::sink::stdout::config::{StderrConfig, StdoutSinkConfig};
pub use crate::source::file::config::{FileSourceConfig, LineFormat, StdinSourceConfig};
pub use crate::source::generator::config::GeneratorConfig;
pub use crate::source::kinesis::config::{
    CheckpointsConfig, ConsumerMode, KinesisSourceConfig, StartPosition, StoreKind,
};

crate::registry! {
    /// What a `[source]` table holds.
    pub enum SourceConfig: SourceComponent = "source" {
        "file" => File(FileSourceConfig),
        "stdin" => Stdin(StdinSourceConfig),
        "generator" => Generator(GeneratorConfig),
        "kinesis" => Kinesis(KinesisSourceConfig),
    }
}

crate::registry! {
    /// What a `[sink]` table holds.
    pub enum SinkConfig: SinkComponent = "sink" {
        "file" => File(FileSinkConfig) via objects::read_file_sink,
        "s3" => S3(S3SinkConfig) via objects::read_s3_sink,
        "stdout" => Stdout(StdoutSinkConfig),
        "kinesis" => Kinesis(KinesisSinkConfig),
        "firehose" => Firehose(FirehoseSinkConfig),
        "http" => Http(HttpSinkConfig) via crate::sink::http::config::read,
    }
}

crate::registry! {
    /// Where failed records go: an `[errors]` table.
    pub enum ErrorsConfig: ErrorsComponent = "errors" {
        "file" => File(FileSinkConfig) via objects::read_file_errors,
        "s3" => S3(S3SinkConfig) via objects::read_s3_errors,
        "stderr" => Stderr(StderrConfig),
    }
}

crate::registry! {
    /// Where the backup copy of every source record goes: a `[backup]` table.
    pub enum BackupConfig: BackupComponent = "backup" {
        "file" => File(FileSinkConfig) via objects::read_file_backup,
        "s3" => S3(S3SinkConfig) via objects::read_s3_backup,
    }
}

/// Declares the kinds one table of a pipeline file may hold, one line per kind:
/// `"type" => Variant(Settings)`, or `"type" => Variant(Settings) via read` when the table is
/// read through `read` (`fn<'de, D: Deserializer<'de>>(D) -> Result<Settings, D::Error>`,
/// typically: read a raw shape, then check it). `Settings` implements the table's trait (its
/// second argument), which names everything else the runtime asks of a component.
///
/// It generates the enum, its `TYPES` (the `type` values, for messages), its `Deserialize`
/// (which reads the `type` the first pass found, see [`with_kinds`]), its [`Component`] impl and
/// `inner`/`into_inner` to reach the settings as the table's trait.
#[macro_export]
macro_rules! registry {
    ($(#[$meta:meta])* $vis:vis enum $name:ident: $trait:ident = $slot:literal {
        $($kind:literal => $variant:ident($ty:ty) $(via $read:path)?),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis enum $name {
            $($variant($ty),)+
        }

        impl $name {
            /// The table this enum is read from.
            pub const SLOT: &'static str = $slot;
            /// The `type` values this table accepts.
            pub const TYPES: &'static [&'static str] = &[$($kind),+];

            /// The settings inside, whatever their kind.
            pub fn inner(&self) -> &dyn $trait {
                match self {
                    $(Self::$variant(c) => c,)+
                }
            }

            /// The settings inside, whatever their kind.
            pub fn inner_mut(&mut self) -> &mut dyn $trait {
                match self {
                    $(Self::$variant(c) => c,)+
                }
            }

            /// The settings inside, boxed, to run them.
            pub fn into_inner(self) -> Box<dyn $trait> {
                match self {
                    $(Self::$variant(c) => Box::new(c),)+
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                match $crate::config::take_kind::<D::Error>($slot)?.as_str() {
                    $($kind => $crate::registry!(@read d, $ty $(, $read)?).map(Self::$variant),)+
                    other => Err(serde::de::Error::custom(format!(
                        "unknown {} type `{other}`, expected one of: {}",
                        $slot,
                        Self::TYPES.join(", ")
                    ))),
                }
            }
        }

        impl $crate::config::Component for $name {
            fn describe(&self) -> String {
                self.inner().describe()
            }
            fn resolve_paths(&mut self, base: &std::path::Path) {
                self.inner_mut().resolve_paths(base)
            }
            fn local_paths(&self) -> $crate::config::LocalPaths {
                self.inner().local_paths()
            }
            fn check(&self) -> Result<(), $crate::config::CheckError> {
                self.inner().check()
            }
            fn prints(&self) -> bool {
                self.inner().prints()
            }
        }
    };
    (@read $d:ident, $ty:ty) => {
        <$ty as serde::Deserialize>::deserialize($d)
    };
    (@read $d:ident, $ty:ty, $read:path) => {
        $read($d)
    };
}

/// The `type` of each component table, as the first pass found them, in file order per table.
#[derive(Debug, Default)]
pub struct Kinds(HashMap<&'static str, VecDeque<String>>);

impl Kinds {
    /// Records the `type` of the next table of `slot`.
    pub fn push(&mut self, slot: &'static str, kind: String) {
        self.0.entry(slot).or_default().push_back(kind);
    }
}

thread_local! {
    static KINDS: RefCell<Option<Kinds>> = const { RefCell::new(None) };
}

/// Runs the second pass, `f`, with the `type`s the first pass found: the component enums'
/// `Deserialize` impls take them in order.
pub fn with_kinds<R>(kinds: Kinds, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            KINDS.with(|k| *k.borrow_mut() = None);
        }
    }
    KINDS.with(|k| *k.borrow_mut() = Some(kinds));
    let _reset = Reset;
    f()
}

/// The `type` of the next table of `slot` (for [`registry!`](crate::registry)).
#[doc(hidden)]
pub fn take_kind<E: serde::de::Error>(slot: &'static str) -> Result<String, E> {
    KINDS.with(|k| {
        let mut k = k.borrow_mut();
        let kinds = k
            .as_mut()
            .ok_or_else(|| E::custom("component tables must be read inside config::with_kinds"))?;
        kinds
            .0
            .get_mut(slot)
            .and_then(VecDeque::pop_front)
            .ok_or_else(|| E::custom(format!("[{slot}] needs a `type` key")))
    })
}

/// Why a setting, an expression or a record was refused: a message for a person. Whoever
/// reports it adds where (the file, line and key; or the record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl From<String> for Refused {
    fn from(message: String) -> Self {
        Refused(message)
    }
}

impl std::ops::Deref for Refused {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Reads a table as `R` and checks it into `C`; an error is reported at the table.
pub fn validated<'de, D, R, C, E>(
    d: D,
    build: impl FnOnce(R) -> Result<C, E>,
) -> Result<C, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
    E: std::fmt::Display,
{
    R::deserialize(d).and_then(|raw| build(raw).map_err(serde::de::Error::custom))
}

/// A key that was removed: a file that still sets it gets this error at its line, rather than
/// "unknown field", so that its author learns what changed.
#[derive(Debug, Clone)]
pub struct Removed<W>(std::marker::PhantomData<W>);

/// Why a removed key went.
pub trait Why {
    const WHY: &'static str;
}

#[derive(Debug, Clone)]
pub struct MaxAttempts;

impl Why for MaxAttempts {
    const WHY: &'static str = "`max_attempts` was removed: a destination that fails as a whole \
        (throttling, credentials, a server error) is retried until it recovers, and only records \
        refused for reasons of their own go to the error output";
}

impl<'de, W: Why> Deserialize<'de> for Removed<W> {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(W::WHY))
    }
}

/// Compression of delivered objects (Firehose's spellings are accepted too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    #[serde(alias = "UNCOMPRESSED")]
    None,
    #[serde(alias = "GZIP")]
    Gzip,
    #[serde(alias = "ZIP")]
    Zip,
    /// The Snappy framing format.
    #[serde(alias = "Snappy")]
    Snappy,
    /// Hadoop's Snappy block framing.
    #[serde(alias = "HADOOP_SNAPPY")]
    HadoopSnappy,
}

/// What separates records inside a delivered object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delimiter {
    /// A newline after every record (JSON lines).
    #[default]
    Newline,
    /// Records back to back, as Firehose writes them by default.
    None,
}

/// Firehose buffering hints: an object is delivered when either is reached.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Bytes of record data before compression (default 5MiB).
    #[serde(default = "default_buffer_size")]
    pub size: ByteSize,
    /// Age of the oldest buffered record (default 300s; `"0s"` delivers every batch at once).
    #[serde(default = "default_buffer_interval")]
    pub interval: HumanDuration,
}

fn default_buffer_size() -> ByteSize {
    ByteSize(5 << 20)
}
fn default_buffer_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            size: default_buffer_size(),
            interval: default_buffer_interval(),
        }
    }
}

/// A path as a user reads it: relative to the working directory when under it.
pub fn show(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Removes `.` and `..` components lexically (`pipelines/../out` becomes `out`), so messages
/// show paths as a user would write them. Symlinks are not resolved.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}
