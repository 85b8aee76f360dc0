//! Object destinations (`file`, `s3`, and the file/S3 error outputs and backups): Firehose's
//! prefixes, dynamic partitioning, buffering hints, compression and record format.
//!
//! Every rule Firehose checks when a delivery stream is created is checked here, when the
//! pipeline file is read, so a bad prefix never reaches a running pipeline.

use crate::config::Refused;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use crate::config::component::{resolve, LocalPaths};
use crate::config::{validated, CheckError, Component};
use crate::config::{BufferConfig, Compression, Delimiter};
use crate::expr::jq::Query;
use crate::expr::prefix::{Prefix, PrefixKind};
use crate::units::ByteSize;

/// How records are written into objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    /// The records' bytes, as they are (with the delimiter).
    #[default]
    Json,
    /// JSON records converted to Parquet with this schema file.
    Parquet { schema: PathBuf },
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Parquet {
            schema: PathBuf,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Table { parquet: Parquet },
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                r#"expected "json" or { parquet = { schema = "schema.json" } }"#,
            )
        })? {
            Raw::Name(n) if n == "json" => Ok(Format::Json),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                r#"unknown format `{n}`, expected "json" or {{ parquet = {{ schema = "..." }} }}"#
            ))),
            Raw::Table { parquet } => Ok(Format::Parquet {
                schema: parquet.schema,
            }),
        }
    }
}

/// Validated object settings shared by every object destination.
#[derive(Debug, Clone)]
pub struct ObjectOptions {
    /// The records' prefix, as written.
    pub prefix_text: String,
    pub prefix: Arc<Prefix>,
    pub error_prefix: Arc<Prefix>,
    /// `partitionKeyFromQuery` keys and their jq queries.
    pub partition_keys: Vec<(String, Arc<Query>)>,
    /// Most partitions buffering at once; records of a new partition beyond it fail.
    pub max_partitions: usize,
    pub time_zone: chrono_tz::Tz,
    pub buffer: BufferConfig,
    pub compression: Compression,
    pub delimiter: Delimiter,
    pub format: Format,
}

/// The object keys of a destination table as written in a pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RawObjectKeys {
    pub prefix: String,
    pub error_prefix: Option<String>,
    pub partition_keys: BTreeMap<String, String>,
    pub max_partitions: Option<usize>,
    pub time_zone: Option<String>,
    pub buffer: BufferConfig,
    pub compression: Compression,
    pub delimiter: Delimiter,
    pub format: Format,
}

/// Firehose's default cap on active partitions.
pub const DEFAULT_MAX_PARTITIONS: usize = 500;

impl ObjectOptions {
    /// Validates a record destination; `default_error_prefix` is used when none is given.
    pub fn build(raw: RawObjectKeys, default_error_prefix: &str) -> Result<ObjectOptions, Refused> {
        let prefix = Prefix::parse(&raw.prefix, PrefixKind::Records)
            .map_err(|e| format!("prefix `{}`: {e}", raw.prefix))?;
        let error_prefix = match &raw.error_prefix {
            Some(text) => {
                let p = Prefix::parse(text, PrefixKind::Errors)
                    .map_err(|e| format!("error_prefix `{text}`: {e}"))?;
                let expressions =
                    Prefix::has_expressions(&raw.prefix) || Prefix::has_expressions(text);
                if expressions && !p.has_error_output_type() {
                    return Err(Refused::from(format!(
                        "error_prefix `{text}` must contain `!{{firehose:error-output-type}}` when prefix uses expressions (Firehose's rule)"
                    )));
                }
                p
            }
            None if Prefix::has_expressions(&raw.prefix) => {
                return Err(Refused::from(
                    "prefix uses expressions, so an error_prefix containing `!{firehose:error-output-type}` is required (Firehose's rule)"
                        .to_string(),
                ))
            }
            None => Prefix::parse(default_error_prefix, PrefixKind::Errors)
                .expect("the default error prefix is valid"),
        };
        let used: Vec<&str> = prefix.query_keys().collect();
        for key in &used {
            if !raw.partition_keys.contains_key(*key) {
                return Err(Refused::from(format!(
                    "prefix uses `!{{partitionKeyFromQuery:{key}}}` but partition_keys defines no `{key}`"
                )));
            }
        }
        let mut partition_keys = Vec::new();
        for (key, query) in &raw.partition_keys {
            if !used.contains(&key.as_str()) {
                return Err(Refused::from(format!(
                    "partition_keys.{key} is not used: add `!{{partitionKeyFromQuery:{key}}}` to prefix"
                )));
            }
            let q = Query::compile(query).map_err(|e| format!("partition_keys.{key}: {e}"))?;
            partition_keys.push((key.clone(), Arc::new(q)));
        }
        let time_zone = match &raw.time_zone {
            None => chrono_tz::UTC,
            Some(tz) => tz.parse().map_err(|_| {
                format!("unknown time_zone `{tz}`: use an IANA name such as \"Europe/Paris\" or \"UTC\"")
            })?,
        };
        check_buffer(&raw.buffer)?;
        if matches!(raw.format, Format::Parquet { .. }) && raw.compression != Compression::None {
            return Err(Refused::from("compression applies to JSON objects; Parquet files are compressed by the serializer (set `compression` in the schema file)".to_string()));
        }
        let max_partitions = raw.max_partitions.unwrap_or(DEFAULT_MAX_PARTITIONS);
        if max_partitions == 0 {
            return Err(Refused::from(
                "max_partitions must be at least 1".to_string(),
            ));
        }
        Ok(ObjectOptions {
            prefix_text: raw.prefix,
            prefix: Arc::new(prefix),
            error_prefix: Arc::new(error_prefix),
            partition_keys,
            max_partitions,
            time_zone,
            buffer: raw.buffer,
            compression: raw.compression,
            delimiter: raw.delimiter,
            format: raw.format,
        })
    }

    /// Validates an error output's settings: its `prefix` is an error prefix, and gets
    /// `!{firehose:error-output-type}/` appended when it does not name the type itself.
    pub fn build_errors(raw: RawObjectKeys) -> Result<ObjectOptions, Refused> {
        if !raw.partition_keys.is_empty() || raw.format != Format::Json {
            return Err(Refused::from(
                "an error output takes no partition_keys or format".to_string(),
            ));
        }
        let text = if raw.prefix.contains("!{firehose:error-output-type}") {
            raw.prefix.clone()
        } else {
            format!("{}!{{firehose:error-output-type}}/", raw.prefix)
        };
        let error_prefix = Prefix::parse(&text, PrefixKind::Errors)
            .map_err(|e| format!("prefix `{}`: {e}", raw.prefix))?;
        let mut options = ObjectOptions::build(
            RawObjectKeys {
                prefix: String::new(),
                error_prefix: None,
                ..raw
            },
            "!{firehose:error-output-type}/",
        )?;
        options.error_prefix = Arc::new(error_prefix);
        // One JSON error record per line, whatever the records' delimiter.
        options.delimiter = Delimiter::Newline;
        Ok(options)
    }

    pub fn defaults(default_error_prefix: &str) -> ObjectOptions {
        ObjectOptions::build(RawObjectKeys::default(), default_error_prefix)
            .expect("the defaults are valid")
    }
}

/// Firehose's ranges: size 1–128 MiB, interval 0–900 s.
pub fn check_buffer(b: &BufferConfig) -> Result<(), Refused> {
    if !(1 << 20..=128 << 20).contains(&b.size.0) {
        return Err(Refused::from(format!(
            "buffer.size must be 1MiB to 128MiB (Firehose's range), not {}",
            b.size
        )));
    }
    if b.interval.0 > std::time::Duration::from_secs(900) {
        return Err(Refused::from(format!(
            "buffer.interval must be 0s to 900s (Firehose's range), not {}",
            humantime::format_duration(b.interval.0)
        )));
    }
    Ok(())
}

macro_rules! object_keys_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(rename = "type")]
            pub(super) _type: String,
            $($(#[$fm])* pub $field: $ty,)*
            #[serde(default)]
            pub prefix: String,
            #[serde(default)]
            pub error_prefix: Option<String>,
            #[serde(default)]
            pub partition_keys: BTreeMap<String, String>,
            #[serde(default)]
            pub max_partitions: Option<usize>,
            #[serde(default)]
            pub time_zone: Option<String>,
            #[serde(default)]
            pub buffer: BufferConfig,
            #[serde(default)]
            pub compression: Compression,
            #[serde(default)]
            pub delimiter: Delimiter,
            #[serde(default)]
            pub format: Format,
        }

        impl $name {
            pub fn object_keys(&self) -> RawObjectKeys {
                RawObjectKeys {
                    prefix: self.prefix.clone(),
                    error_prefix: self.error_prefix.clone(),
                    partition_keys: self.partition_keys.clone(),
                    max_partitions: self.max_partitions,
                    time_zone: self.time_zone.clone(),
                    buffer: self.buffer,
                    compression: self.compression,
                    delimiter: self.delimiter,
                    format: self.format.clone(),
                }
            }
        }
    };
}

object_keys_struct! {
    /// `[sink] type = "file"` as written.
    RawFileSink {
        /// The directory objects are written under.
        path: PathBuf,
    }
}

object_keys_struct! {
    /// `[sink] type = "s3"` as written.
    RawS3Sink {
        bucket: String,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default)]
        force_path_style: bool,
        #[serde(default)]
        multipart_threshold: Option<ByteSize>,
        #[serde(default)]
        part_size: Option<ByteSize>,
    }
}

/// A directory of objects.
#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    pub path: PathBuf,
    pub objects: ObjectOptions,
}

/// The default error prefix of a file destination: an `errors/` directory beside the objects.
pub const FILE_ERROR_PREFIX: &str = "errors/!{firehose:error-output-type}/";
/// The default error prefix of an S3 destination, as Firehose's.
pub const S3_ERROR_PREFIX: &str = "!{firehose:error-output-type}/";

impl FileSinkConfig {
    pub fn new(path: PathBuf) -> Self {
        FileSinkConfig {
            path,
            objects: ObjectOptions::defaults(FILE_ERROR_PREFIX),
        }
    }
}

impl TryFrom<RawFileSink> for FileSinkConfig {
    type Error = Refused;
    fn try_from(raw: RawFileSink) -> Result<Self, Refused> {
        Ok(FileSinkConfig {
            objects: ObjectOptions::build(raw.object_keys(), FILE_ERROR_PREFIX)?,
            path: raw.path,
        })
    }
}

/// An S3 bucket (AWS or any S3-compatible store).
#[derive(Debug, Clone)]
pub struct S3SinkConfig {
    pub bucket: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    /// Objects at least this big go up by multipart upload (default 16MiB).
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (default 8MiB, at least S3's 5MiB).
    pub part_size: u64,
    pub objects: ObjectOptions,
}

impl TryFrom<RawS3Sink> for S3SinkConfig {
    type Error = Refused;
    fn try_from(raw: RawS3Sink) -> Result<Self, Refused> {
        let part_size = raw.part_size.map_or(8 << 20, |b| b.0);
        if part_size < 5 << 20 {
            return Err(Refused::from(
                "part_size must be at least 5MiB (S3's smallest part)".to_string(),
            ));
        }
        let multipart_threshold = raw.multipart_threshold.map_or(16 << 20, |b| b.0);
        Ok(S3SinkConfig {
            objects: ObjectOptions::build(raw.object_keys(), S3_ERROR_PREFIX)?,
            bucket: raw.bucket,
            region: raw.region,
            endpoint: raw.endpoint,
            force_path_style: raw.force_path_style,
            multipart_threshold: multipart_threshold.max(part_size),
            part_size,
        })
    }
}

impl FileSinkConfig {
    /// The error output of sinks that have no object store of their own: files under `path`
    /// (the pipeline's state directory), error prefix `<error-output-type>/yyyy/MM/dd/HH/`,
    /// written within a minute.
    pub fn default_errors(path: PathBuf) -> Self {
        let raw = RawObjectKeys {
            buffer: BufferConfig {
                interval: crate::units::HumanDuration(std::time::Duration::from_secs(60)),
                ..BufferConfig::default()
            },
            ..RawObjectKeys::default()
        };
        FileSinkConfig {
            path,
            objects: ObjectOptions::build_errors(raw).expect("the default error output is valid"),
        }
    }

    pub fn errors_from(raw: RawFileSink) -> Result<Self, Refused> {
        Ok(FileSinkConfig {
            objects: ObjectOptions::build_errors(raw.object_keys())?,
            path: raw.path,
        })
    }
}

impl S3SinkConfig {
    pub fn errors_from(raw: RawS3Sink) -> Result<Self, Refused> {
        let mut c = S3SinkConfig::try_from(RawS3Sink {
            prefix: String::new(),
            error_prefix: None,
            ..raw.clone()
        })?;
        c.objects = ObjectOptions::build_errors(raw.object_keys())?;
        Ok(c)
    }
}

impl ObjectOptions {
    fn resolve_paths(&mut self, base: &Path) {
        if let Format::Parquet { schema } = &mut self.format {
            resolve(base, schema);
        }
    }
    fn local_paths(&self) -> LocalPaths {
        match &self.format {
            Format::Parquet { schema } => vec![("format.schema", schema.clone())],
            _ => Vec::new(),
        }
    }
}

impl Component for FileSinkConfig {
    fn describe(&self) -> String {
        format!("files under {}", crate::config::show(&self.path))
    }
    fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.path);
        self.objects.resolve_paths(base);
    }
    fn local_paths(&self) -> LocalPaths {
        let mut out = self.objects.local_paths();
        out.push(("path", self.path.clone()));
        out
    }
    fn check(&self) -> Result<(), CheckError> {
        self.objects.check()
    }
}

impl Component for S3SinkConfig {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.objects.prefix_text)
    }
    fn resolve_paths(&mut self, base: &Path) {
        self.objects.resolve_paths(base);
    }
    fn local_paths(&self) -> LocalPaths {
        self.objects.local_paths()
    }
    fn check(&self) -> Result<(), CheckError> {
        self.objects.check()
    }
}

impl ObjectOptions {
    /// A Parquet schema must load before any record moves.
    fn check(&self) -> Result<(), CheckError> {
        match &self.format {
            Format::Parquet { schema } => crate::sink::parquet::Schema::load(schema)
                .map(drop)
                .map_err(|e| CheckError {
                    key: "format.parquet.schema",
                    message: e.to_string(),
                }),
            Format::Json => Ok(()),
        }
    }
}

/// The backup holds source records as they came: nothing to partition or convert.
fn plain(keys: RawObjectKeys) -> Result<(), Refused> {
    if !keys.partition_keys.is_empty()
        || keys.prefix.contains("!{partitionKeyFrom")
        || keys.format != Format::Json
    {
        return Err(Refused::from(
            "a backup takes source records as they came: no partition keys and no format"
                .to_string(),
        ));
    }
    Ok(())
}

/// `[sink] type = "file"`.
pub fn read_file_sink<'de, D: Deserializer<'de>>(d: D) -> Result<FileSinkConfig, D::Error> {
    validated(d, |r: RawFileSink| FileSinkConfig::try_from(r))
}

/// `[sink] type = "s3"`.
pub fn read_s3_sink<'de, D: Deserializer<'de>>(d: D) -> Result<S3SinkConfig, D::Error> {
    validated(d, |r: RawS3Sink| S3SinkConfig::try_from(r))
}

/// `[errors] type = "file"`.
pub fn read_file_errors<'de, D: Deserializer<'de>>(d: D) -> Result<FileSinkConfig, D::Error> {
    validated(d, FileSinkConfig::errors_from)
}

/// `[errors] type = "s3"`.
pub fn read_s3_errors<'de, D: Deserializer<'de>>(d: D) -> Result<S3SinkConfig, D::Error> {
    validated(d, S3SinkConfig::errors_from)
}

/// `[backup] type = "file"`.
pub fn read_file_backup<'de, D: Deserializer<'de>>(d: D) -> Result<FileSinkConfig, D::Error> {
    validated(d, |r: RawFileSink| {
        plain(r.object_keys())?;
        FileSinkConfig::try_from(r)
    })
}

/// `[backup] type = "s3"`.
pub fn read_s3_backup<'de, D: Deserializer<'de>>(d: D) -> Result<S3SinkConfig, D::Error> {
    validated(d, |r: RawS3Sink| {
        plain(r.object_keys())?;
        S3SinkConfig::try_from(r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(prefix: &str, error_prefix: Option<&str>, keys: &[(&str, &str)]) -> RawObjectKeys {
        RawObjectKeys {
            prefix: prefix.into(),
            error_prefix: error_prefix.map(str::to_string),
            partition_keys: keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..RawObjectKeys::default()
        }
    }

    #[test]
    fn firehose_prefix_rules_are_enforced() {
        let ok = ObjectOptions::build(
            raw(
                "c/!{partitionKeyFromQuery:customer}/",
                Some("e/!{firehose:error-output-type}/"),
                &[("customer", ".customer")],
            ),
            S3_ERROR_PREFIX,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let err = |r| ObjectOptions::build(r, S3_ERROR_PREFIX).unwrap_err();
        assert!(err(raw("c/!{timestamp:yyyy}/", None, &[])).contains("error_prefix"));
        assert!(err(raw("c/!{timestamp:yyyy}/", Some("e/"), &[])).contains("error-output-type"));
        assert!(err(raw(
            "c/!{partitionKeyFromQuery:customer}/",
            Some("e/!{firehose:error-output-type}/"),
            &[]
        ))
        .contains("defines no `customer`"));
        assert!(err(raw("c/", None, &[("customer", ".customer")])).contains("not used"));
        assert!(err(raw(
            "c/!{partitionKeyFromQuery:customer}/",
            Some("e/!{firehose:error-output-type}/"),
            &[("customer", ".customer[")]
        ))
        .contains("partition_keys.customer"));
        let mut tz = raw("c/", None, &[]);
        tz.time_zone = Some("Mars/Olympus".into());
        assert!(err(tz).contains("unknown time_zone"));
        let mut big = raw("c/", None, &[]);
        big.buffer.size = ByteSize(256 << 20);
        assert!(err(big).contains("1MiB to 128MiB"));
    }
}
