//! Pipeline files: one TOML file describes one pipeline.
//!
//! Invariants:
//! - Every key is known: a misspelled key, a wrong type or a bad value is an error naming the
//!   file, the line, the column and the key path (`source.pth`), never a silent default.
//! - `${VAR}` is replaced by the environment variable `VAR` before parsing, only for allowed
//!   variables and always as data (see [`vars`]); an unset or unallowed variable is an error at
//!   its line.
//! - Relative paths inside a pipeline file are resolved against the file's own directory, so a
//!   pipeline means the same thing whatever directory `weir` is started from.
//!
//! Parsing is two passes. The first reads only the `type` key of each component table; the second
//! deserializes each table straight into the struct for that type. This keeps toml's spans and
//! the key path intact (serde's internally tagged enums buffer the table and lose both).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::units::{ByteSize, HumanDuration};

pub mod component;
pub use crate::sink::objects::config as objects;
pub mod tenants;
pub mod vars;
pub use component::{Component, SourceComponent};
pub use objects::{FileSinkConfig, Format, ObjectOptions, S3SinkConfig};

/// A config error, already located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
}

/// `file:line:column`, with the key path when known.
#[derive(Debug, Clone)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        Ok(())
    }
}

/// A parsed pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    /// The file it came from.
    pub path: PathBuf,
    /// Its pipeline name: `[pipeline] name`, or the file name without `.toml`.
    pub name: String,
    pub spec: PipelineSpec,
    /// Lines of the `[pipeline]` table (1 when absent) and of each `[[process]]` step, for
    /// checks made after parsing (tenant quotas) to point at.
    pub lines: Lines,
    /// The tenant the pipeline runs under: the operator's choice (the tenants file's `paths`),
    /// set by [`tenants::apply`]; `default` until then.
    pub tenant: String,
}

#[derive(Debug, Clone, Default)]
pub struct Lines {
    pub pipeline: usize,
    pub process: Vec<usize>,
    pub source: usize,
    pub sink: usize,
    pub errors: usize,
    pub backup: usize,
}

impl PipelineFile {
    /// Where a key of this file is, for an error found after parsing: the line of the table
    /// that holds it.
    pub fn locate(&self, line: usize, key: impl Into<String>) -> Location {
        Location {
            path: self.path.clone(),
            line,
            column: 1,
            key: Some(key.into()),
        }
    }

    /// The tenant the pipeline belongs to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    #[serde(default)]
    pub pipeline: PipelineSection,
    pub source: SourceConfig,
    #[serde(default)]
    pub process: Vec<ProcessConfig>,
    pub sink: SinkConfig,
    #[serde(default)]
    pub errors: Option<ErrorsConfig>,
    /// A copy of every source record, before processing (Firehose's S3 backup, all data).
    #[serde(default)]
    pub backup: Option<BackupConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: Option<String>,
    /// The tenant the file expects to run under. The operator decides (the tenants file's
    /// `paths`); a file that names another tenant is refused.
    pub tenant: Option<String>,
    #[serde(default)]
    pub batch: BatchConfig,
    /// Bytes all buffers of the pipeline may hold together (object buffers of the sink, the
    /// error output and the backup; HTTP requests); past it the largest buffer is written.
    #[serde(default = "default_buffer_memory")]
    pub buffer_memory: ByteSize,
}

fn default_buffer_memory() -> ByteSize {
    ByteSize(256 << 20)
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            name: None,
            tenant: None,
            batch: BatchConfig::default(),
            buffer_memory: default_buffer_memory(),
        }
    }
}

pub use weir_core::engine::BatchConfig;

#[derive(Debug, Clone)]
pub enum SourceConfig {
    File(FileSourceConfig),
    Stdin(StdinSourceConfig),
    Generator(GeneratorConfig),
    Kinesis(KinesisSourceConfig),
}

pub use crate::sink::firehose::config::FirehoseSinkConfig;
pub use crate::sink::http::config::{ContentEncoding, HeaderText, HttpSinkConfig};
pub use crate::sink::kinesis::config::{KinesisSinkConfig, PartitionKeyFrom};
pub use crate::source::file::config::{FileSourceConfig, LineFormat, StdinSourceConfig};
pub use crate::source::generator::config::GeneratorConfig;
pub use crate::source::kinesis::config::{
    CheckpointsConfig, ConsumerMode, KinesisSourceConfig, StartPosition, StoreKind,
};

#[derive(Debug, Clone)]
pub enum ProcessConfig {
    Wasm(WasmStepConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmStepConfig {
    #[serde(rename = "type")]
    _type: String,
    /// Path to the component (`.wasm`).
    pub module: PathBuf,
    /// Handed to the guest as JSON through `host.config`.
    #[serde(default)]
    pub config: Option<toml::Table>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub grants: GrantsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Fuel per batch call; no fuel budget when absent.
    pub fuel: Option<u64>,
    /// Memory cap per instance (default 64MiB).
    pub memory: Option<ByteSize>,
    /// Wall-clock budget per batch call (default 1s); `"0s"` for none.
    pub timeout: Option<HumanDuration>,
    /// Most bytes of records one call may return (default 32MiB).
    pub output: Option<ByteSize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsConfig {
    /// Environment variables the guest may read.
    #[serde(default)]
    pub env: Vec<String>,
    /// Directories the guest may read, visible inside the guest at the path written here.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Outgoing network access to any address.
    #[serde(default)]
    pub network: bool,
    /// Outgoing network access to these `host:port` addresses only.
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum SinkConfig {
    File(FileSinkConfig),
    S3(S3SinkConfig),
    Stdout(StdoutSinkConfig),
    Kinesis(KinesisSinkConfig),
    Firehose(FirehoseSinkConfig),
    Http(HttpSinkConfig),
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    #[serde(rename = "type")]
    _type: String,
}

impl StdoutSinkConfig {
    pub fn new() -> Self {
        StdoutSinkConfig {
            _type: "stdout".into(),
        }
    }
}

impl Default for StdoutSinkConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Where failed records go.
#[derive(Debug, Clone)]
pub enum ErrorsConfig {
    File(FileSinkConfig),
    S3(S3SinkConfig),
    Stderr(StdoutSinkConfig),
}

/// Where the backup copy of every source record goes.
#[derive(Debug, Clone)]
pub enum BackupConfig {
    File(FileSinkConfig),
    S3(S3SinkConfig),
}

// ---------------------------------------------------------------------------------------------
// Two-pass parsing: the first pass records each component's `type`; the `Deserialize` impls of
// the component enums then read it back from this thread-local while the second pass runs.

#[derive(Default)]
struct Kinds {
    single: HashMap<&'static str, String>,
    process: VecDeque<String>,
}

thread_local! {
    static KINDS: RefCell<Option<Kinds>> = const { RefCell::new(None) };
}

fn take_kind<E: serde::de::Error>(slot: &'static str) -> Result<String, E> {
    KINDS.with(|k| {
        let mut k = k.borrow_mut();
        let kinds = k
            .as_mut()
            .ok_or_else(|| E::custom("pipeline config must be parsed with config::parse"))?;
        let kind = if slot == "process" {
            kinds.process.pop_front()
        } else {
            kinds.single.remove(slot)
        };
        kind.ok_or_else(|| E::custom(format!("[{slot}] needs a `type` key")))
    })
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_kind::<D::Error>("source")?.as_str() {
            "file" => FileSourceConfig::deserialize(d).map(SourceConfig::File),
            "stdin" => StdinSourceConfig::deserialize(d).map(SourceConfig::Stdin),
            "generator" => GeneratorConfig::deserialize(d).map(SourceConfig::Generator),
            "kinesis" => KinesisSourceConfig::deserialize(d).map(SourceConfig::Kinesis),
            other => Err(serde::de::Error::custom(format!(
                "unknown source type `{other}`"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for ProcessConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_kind::<D::Error>("process")?.as_str() {
            "wasm" => WasmStepConfig::deserialize(d).map(ProcessConfig::Wasm),
            other => Err(serde::de::Error::custom(format!(
                "unknown process type `{other}`"
            ))),
        }
    }
}

/// Reads a table as `R` and validates it into `C`; a validation error is reported at the table.
fn validated<'de, D, R, C>(d: D, build: impl FnOnce(R) -> Result<C, String>) -> Result<C, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
{
    R::deserialize(d).and_then(|raw| build(raw).map_err(serde::de::Error::custom))
}

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_kind::<D::Error>("sink")?.as_str() {
            "file" => validated(d, |r: objects::RawFileSink| FileSinkConfig::try_from(r))
                .map(SinkConfig::File),
            "s3" => {
                validated(d, |r: objects::RawS3Sink| S3SinkConfig::try_from(r)).map(SinkConfig::S3)
            }
            "stdout" => StdoutSinkConfig::deserialize(d).map(SinkConfig::Stdout),
            "kinesis" => KinesisSinkConfig::deserialize(d).map(SinkConfig::Kinesis),
            "firehose" => FirehoseSinkConfig::deserialize(d).map(SinkConfig::Firehose),
            "http" => validated(d, |c: HttpSinkConfig| c.check().map(|()| c)).map(SinkConfig::Http),
            other => Err(serde::de::Error::custom(format!(
                "unknown sink type `{other}`"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorsConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_kind::<D::Error>("errors")?.as_str() {
            "file" => validated(d, FileSinkConfig::errors_from).map(ErrorsConfig::File),
            "s3" => validated(d, S3SinkConfig::errors_from).map(ErrorsConfig::S3),
            "stderr" => StdoutSinkConfig::deserialize(d).map(ErrorsConfig::Stderr),
            other => Err(serde::de::Error::custom(format!(
                "unknown errors type `{other}`"
            ))),
        }
    }
}

/// The backup holds source records as they came: nothing to partition or convert.
fn plain(keys: objects::RawObjectKeys) -> Result<(), String> {
    if !keys.partition_keys.is_empty()
        || keys.prefix.contains("!{partitionKeyFrom")
        || keys.format != Format::Json
    {
        return Err(
            "a backup takes source records as they came: no partition keys and no format".into(),
        );
    }
    Ok(())
}

impl<'de> Deserialize<'de> for BackupConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match take_kind::<D::Error>("backup")?.as_str() {
            "file" => validated(d, |r: objects::RawFileSink| {
                plain(r.object_keys())?;
                FileSinkConfig::try_from(r)
            })
            .map(BackupConfig::File),
            "s3" => validated(d, |r: objects::RawS3Sink| {
                plain(r.object_keys())?;
                S3SinkConfig::try_from(r)
            })
            .map(BackupConfig::S3),
            other => Err(serde::de::Error::custom(format!(
                "unknown backup type `{other}`"
            ))),
        }
    }
}

/// The known `type` values of each component table, for the first pass's messages.
const SOURCE_TYPES: &[&str] = &["file", "stdin", "generator", "kinesis"];
const PROCESS_TYPES: &[&str] = &["wasm"];
const SINK_TYPES: &[&str] = &["file", "s3", "stdout", "kinesis", "firehose", "http"];
const ERRORS_TYPES: &[&str] = &["file", "s3", "stderr"];
const BACKUP_TYPES: &[&str] = &["file", "s3"];

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: Option<toml::Spanned<String>>,
}

#[derive(Deserialize)]
struct FirstPass {
    pipeline: Option<toml::Spanned<toml::Table>>,
    source: Option<toml::Spanned<TypeOnly>>,
    sink: Option<toml::Spanned<TypeOnly>>,
    errors: Option<toml::Spanned<TypeOnly>>,
    backup: Option<toml::Spanned<TypeOnly>>,
    #[serde(default)]
    process: Vec<toml::Spanned<TypeOnly>>,
}

pub use vars::Vars;

/// Reads and parses a pipeline file; `${VAR}` may read the variables `allowed` names.
pub fn load(path: &Path, allowed: &[String]) -> Result<PipelineFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let lookup = |name: &str| std::env::var(name).ok();
    parse(
        path,
        &text,
        &Vars {
            allowed,
            lookup: &lookup,
        },
    )
}

/// Parses pipeline text; `path` is used for messages and to resolve relative paths, `vars`
/// says which `${VAR}` references may expand and looks them up.
pub fn parse(path: &Path, text: &str, vars: &Vars) -> Result<PipelineFile, ConfigError> {
    let text = vars::interpolate(path, text, vars)?;
    let invalid = |offset: usize, key: Option<String>, message: String| {
        let (line, column) = line_col(&text, offset);
        ConfigError::Invalid {
            location: Location {
                path: path.to_owned(),
                line,
                column,
                key,
            },
            message,
        }
    };
    let toml_err = |e: toml::de::Error, key: Option<String>| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        invalid(offset, key, e.message().trim().to_string())
    };

    let first: FirstPass = toml::from_str(&text).map_err(|e| toml_err(e, None))?;
    let mut kinds = Kinds::default();
    let check = |slot: &'static str,
                 table: &toml::Spanned<TypeOnly>,
                 known: &[&str]|
     -> Result<String, ConfigError> {
        let Some(kind) = &table.get_ref().kind else {
            return Err(invalid(
                table.span().start,
                Some(format!("{slot}.type")),
                format!("[{slot}] needs a `type` key, one of: {}", known.join(", ")),
            ));
        };
        if !known.contains(&kind.get_ref().as_str()) {
            return Err(invalid(
                kind.span().start,
                Some(format!("{slot}.type")),
                format!(
                    "unknown {slot} type `{}`, expected one of: {}",
                    kind.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        Ok(kind.get_ref().clone())
    };
    match &first.source {
        Some(t) => {
            kinds
                .single
                .insert("source", check("source", t, SOURCE_TYPES)?);
        }
        None => return Err(invalid(0, None, "missing [source] table".into())),
    }
    match &first.sink {
        Some(t) => {
            kinds.single.insert("sink", check("sink", t, SINK_TYPES)?);
        }
        None => return Err(invalid(0, None, "missing [sink] table".into())),
    }
    if let Some(t) = &first.errors {
        kinds
            .single
            .insert("errors", check("errors", t, ERRORS_TYPES)?);
    }
    if let Some(t) = &first.backup {
        kinds
            .single
            .insert("backup", check("backup", t, BACKUP_TYPES)?);
    }
    for t in &first.process {
        kinds.process.push_back(check("process", t, PROCESS_TYPES)?);
    }

    KINDS.with(|k| *k.borrow_mut() = Some(kinds));
    let second = serde_path_to_error::deserialize::<_, PipelineSpec>(
        toml::Deserializer::parse(&text).map_err(|e| toml_err(e, None))?,
    );
    KINDS.with(|k| *k.borrow_mut() = None);
    let mut spec = second.map_err(|e| {
        let key = e.path().to_string();
        toml_err(e.into_inner(), (key != ".").then_some(key))
    })?;

    let base = path.parent().unwrap_or(Path::new("."));
    resolve_paths(&mut spec, base);
    let name = spec.pipeline.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into())
    });
    if name.is_empty()
        || name.chars().count() > MAX_NAME
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            0,
            Some("pipeline.name".into()),
            format!(
                "pipeline name `{}` must have 1 to {MAX_NAME} characters, none of them a slash or a control character",
                name.escape_debug()
            ),
        ));
    }
    let lines = Lines {
        pipeline: first
            .pipeline
            .as_ref()
            .map_or(1, |t| line_col(&text, t.span().start).0),
        process: first
            .process
            .iter()
            .map(|t| line_col(&text, t.span().start).0)
            .collect(),
        source: first
            .source
            .as_ref()
            .map_or(1, |t| line_col(&text, t.span().start).0),
        sink: first
            .sink
            .as_ref()
            .map_or(1, |t| line_col(&text, t.span().start).0),
        errors: first
            .errors
            .as_ref()
            .map_or(1, |t| line_col(&text, t.span().start).0),
        backup: first
            .backup
            .as_ref()
            .map_or(1, |t| line_col(&text, t.span().start).0),
    };
    Ok(PipelineFile {
        path: path.to_owned(),
        name,
        spec,
        lines,
        tenant: tenants::DEFAULT.to_string(),
    })
}

/// The longest pipeline name: it appears in object names, which have their limits.
pub const MAX_NAME: usize = 128;

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
pub(crate) fn normalize(path: &Path) -> PathBuf {
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

fn resolve_paths(spec: &mut PipelineSpec, base: &Path) {
    spec.source.resolve_paths(base);
    for step in &mut spec.process {
        step.resolve_paths(base);
    }
    spec.sink.resolve_paths(base);
    if let Some(backup) = &mut spec.backup {
        backup.resolve_paths(base);
    }
    if let Some(errors) = &mut spec.errors {
        errors.resolve_paths(base);
    }
}

pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Finds the pipeline files among `paths`: files as given, and the `*.toml` files of
/// directories (not recursive), sorted by name.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml") && f.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<PipelineFile, ConfigError> {
        let allowed = ["TOKEN".to_string(), "NOPE".to_string()];
        parse(
            Path::new("dir/p.toml"),
            text,
            &Vars {
                allowed: &allowed,
                lookup: &|n| (n == "TOKEN").then(|| "s3cret".to_string()),
            },
        )
    }

    const GOOD: &str = r#"
[pipeline]
name = "clicks"
batch = { records = 100, bytes = "1MiB", linger = "50ms" }

[source]
type = "file"
path = "data/clicks.jsonl"
format = "json"

[[process]]
type = "wasm"
module = "../guests/dist/redact.wasm"
config = { fields = ["email"], token = "${TOKEN}" }
limits = { fuel = 50_000_000, memory = "64MiB", timeout = "200ms" }

[sink]
type = "file"
path = "out/"
buffer = { size = "5MiB", interval = "60s" }
compression = "gzip"
"#;

    #[test]
    fn parses_a_full_pipeline_and_resolves_paths_against_the_file() {
        let p = parse_str(GOOD).unwrap();
        assert_eq!(p.name, "clicks");
        assert_eq!(p.spec.pipeline.batch.records, 100);
        let SourceConfig::File(f) = &p.spec.source else {
            panic!("file source")
        };
        assert_eq!(f.path, PathBuf::from("dir/data/clicks.jsonl"));
        assert_eq!(f.format, LineFormat::Json);
        let ProcessConfig::Wasm(w) = &p.spec.process[0];
        assert_eq!(w.module, PathBuf::from("guests/dist/redact.wasm"));
        assert_eq!(w.limits.memory, Some(ByteSize(64 << 20)));
        assert_eq!(w.config.as_ref().unwrap()["token"].as_str(), Some("s3cret"));
        let SinkConfig::File(s) = &p.spec.sink else {
            panic!("file sink")
        };
        assert_eq!(s.objects.compression, Compression::Gzip);
        assert_eq!(
            s.objects.buffer.interval.0,
            std::time::Duration::from_secs(60)
        );
    }

    #[test]
    fn a_misspelled_key_names_file_line_and_key() {
        let text = GOOD.replace("format = \"json\"", "formatt = \"json\"");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("dir/p.toml:9:1: key `source.formatt`"),
            "{err}"
        );
        assert!(err.contains("unknown field `formatt`"), "{err}");
    }

    #[test]
    fn a_bad_prefix_names_the_file_the_sink_table_and_the_rule() {
        let text = GOOD.replace(
            "compression = \"gzip\"",
            "compression = \"gzip\"\nprefix = \"c/!{partitionKeyFromQuery:customer}/\"",
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("dir/p.toml:"), "{err}");
        assert!(err.contains("key `sink`"), "{err}");
        assert!(err.contains("error_prefix"), "{err}");
        let text = GOOD.replace(
            "compression = \"gzip\"",
            "prefix = \"!{timestamp:yyyy/QQ}/\"",
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("`QQ` is not supported"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_line_and_key() {
        let text = GOOD.replace("timeout = \"200ms\"", "timeout = \"soon\"");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("dir/p.toml:15:"), "{err}");
        assert!(err.contains("process[0].limits.timeout"), "{err}");
        assert!(err.contains("invalid duration `soon`"), "{err}");
        let text = GOOD.replace("records = 100", "records = \"many\"");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("dir/p.toml:4:"), "{err}");
        assert!(err.contains("pipeline.batch.records"), "{err}");
    }

    #[test]
    fn unknown_types_and_unset_variables_are_located() {
        let err = parse_str(&GOOD.replace(
            "type = \"file\"\npath = \"data",
            "type = \"fiel\"\npath = \"data",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("dir/p.toml:7:8: key `source.type`: unknown source type `fiel`"),
            "{err}"
        );
        let err = parse_str(&GOOD.replace("${TOKEN}", "${NOPE}"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("dir/p.toml:14:"), "{err}");
        assert!(err.contains("`NOPE` is not set"), "{err}");
        let p = parse_str(&GOOD.replace("${TOKEN}", "$${TOKEN}")).unwrap();
        let ProcessConfig::Wasm(w) = &p.spec.process[0];
        assert_eq!(
            w.config.as_ref().unwrap()["token"].as_str(),
            Some("${TOKEN}")
        );
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let p = parse_str("[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\n").unwrap();
        assert_eq!(p.name, "p");
        assert!(p.spec.process.is_empty());
    }
}
