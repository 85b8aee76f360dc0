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

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::units::ByteSize;

pub mod tenants;
pub mod vars;
// The components' settings and their registries: each table's kinds are declared there.
pub use weir_connectors::config::*;

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

pub use crate::process::sql::config::SqlStepConfig;
pub use crate::process::wasm::config::{GrantsConfig, LimitsConfig, WasmStepConfig};

weir_connectors::registry! {
    /// What a `[[process]]` table holds.
    pub enum ProcessConfig: Component = "process" {
        "wasm" => Wasm(WasmStepConfig),
        "sql" => Sql(SqlStepConfig),
    }
}

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
    let Some(source) = &first.source else {
        return Err(invalid(0, None, "missing [source] table".into()));
    };
    kinds.push("source", check("source", source, SourceConfig::TYPES)?);
    let Some(sink) = &first.sink else {
        return Err(invalid(0, None, "missing [sink] table".into()));
    };
    kinds.push("sink", check("sink", sink, SinkConfig::TYPES)?);
    if let Some(t) = &first.errors {
        kinds.push("errors", check("errors", t, ErrorsConfig::TYPES)?);
    }
    if let Some(t) = &first.backup {
        kinds.push("backup", check("backup", t, BackupConfig::TYPES)?);
    }
    for t in &first.process {
        kinds.push("process", check("process", t, ProcessConfig::TYPES)?);
    }

    let tables = toml::Deserializer::parse(&text).map_err(|e| toml_err(e, None))?;
    let second = with_kinds(kinds, || {
        serde_path_to_error::deserialize::<_, PipelineSpec>(tables)
    });
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
        let ProcessConfig::Wasm(w) = &p.spec.process[0] else {
            panic!("a wasm step")
        };
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
        let ProcessConfig::Wasm(w) = &p.spec.process[0] else {
            panic!("a wasm step")
        };
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

/// What each component says of itself, through the registries.
#[cfg(test)]
mod component_tests {
    use super::*;

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
