//! The `sql` step's settings as a pipeline file writes them: a Kinesis Data Analytics SQL
//! application, moved over as it was.
//!
//! ```toml
//! [[process]]
//! type = "sql"
//! application = "describe-application.json"   # or: code = "app.sql" + inputs = "inputs.json"
//! rowtime = "TS"              # optional: ROWTIME from this column instead of arrival time
//! output = "DESTINATION_SQL_STREAM"
//! udfs = [{ module = "guests/dist/sql-functions.wasm" }]   # optional: Wasm SQL functions
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::component::{resolve, CheckError, LocalPaths};
use crate::config::Component;
use crate::process::wasm::config::{GrantsConfig, LimitsConfig, WasmStepConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStepConfig {
    #[serde(rename = "type")]
    _type: String,
    /// What `aws kinesisanalytics describe-application` printed: code and configuration.
    pub application: Option<PathBuf>,
    /// The application's SQL (instead of, or over, the application's `ApplicationCode`).
    pub code: Option<PathBuf>,
    /// The inputs as CreateApplication took them (with `code`, instead of `application`).
    pub inputs: Option<PathBuf>,
    /// ROWTIME from this input column (a TIMESTAMP) instead of the records' arrival time.
    pub rowtime: Option<String>,
    /// The in-application stream whose rows go on (default: the application's one output,
    /// else `DESTINATION_SQL_STREAM`).
    pub output: Option<String>,
    /// Local files for reference tables, by table name, instead of their S3 objects.
    #[serde(default)]
    pub reference: std::collections::BTreeMap<String, PathBuf>,
    /// Where the S3 reference data is read: the region and an S3-compatible endpoint (the
    /// standard credential chain applies).
    pub region: Option<String>,
    pub endpoint: Option<String>,
    /// Modules of the `sql-udf` world whose functions the SQL may call.
    #[serde(default)]
    pub udfs: Vec<UdfModuleConfig>,
}

/// A module of SQL functions, sandboxed as a `wasm` step's module is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdfModuleConfig {
    pub module: PathBuf,
    /// Handed to the module as JSON through `host.config`.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// Per call: a call evaluates one function over a batch of rows.
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub grants: GrantsConfig,
}

impl UdfModuleConfig {
    /// As the settings of a `wasm` step.
    pub fn step(&self) -> WasmStepConfig {
        WasmStepConfig::for_module(
            self.module.clone(),
            self.config.clone(),
            self.limits.clone(),
            self.grants.clone(),
        )
    }
}

/// A compiled application, or why it does not compile (with the key at fault).
pub type Compiled = Result<weir_sql::Plan, CheckError>;

impl SqlStepConfig {
    /// Reads the files the step names and compiles the application, which may call `udfs`.
    pub fn compile(&self, udfs: Vec<weir_sql::UdfSignature>) -> Compiled {
        let read = |key: &'static str, path: &Path| {
            std::fs::read_to_string(path).map_err(|e| CheckError {
                key,
                message: format!("{}: {e}", crate::config::show(path)),
            })
        };
        let (config, config_key, config_path) = match (&self.application, &self.inputs) {
            (Some(_), Some(_)) => {
                return Err(CheckError {
                    key: "inputs",
                    message: "give `application` or `inputs`, not both".into(),
                })
            }
            (Some(p), None) => (read("application", p)?, "application", p),
            (None, Some(p)) => (read("inputs", p)?, "inputs", p),
            (None, None) => {
                return Err(CheckError {
                    key: "application",
                    message: "a sql step needs `application` (describe-application's JSON) \
                              or `code` and `inputs`"
                        .into(),
                })
            }
        };
        let app = weir_sql::parse_app_json(&config).map_err(|e| CheckError {
            key: config_key,
            message: format!("{}: {e}", crate::config::show(config_path)),
        })?;
        let (code, code_key, where_) = match (&self.code, &app.code) {
            (Some(p), _) => (read("code", p)?, "code", crate::config::show(p)),
            (None, Some(c)) => (
                c.clone(),
                config_key,
                format!("{} (ApplicationCode)", crate::config::show(config_path)),
            ),
            (None, None) => {
                return Err(CheckError {
                    key: "code",
                    message: format!(
                        "{} holds no ApplicationCode: name the SQL with `code`",
                        crate::config::show(config_path)
                    ),
                })
            }
        };
        let options = weir_sql::Options {
            output: self.output.clone(),
            rowtime: self.rowtime.clone(),
            udfs,
        };
        let plan = weir_sql::compile(&code, &app, &options).map_err(|e| match e {
            weir_sql::SqlError::Sql {
                line,
                column,
                message,
                ..
            } => CheckError {
                key: code_key,
                message: format!("{where_}:{line}:{column}: {message}"),
            },
            weir_sql::SqlError::Config { path, message } => {
                let key = match path.as_str() {
                    "output" => "output",
                    "rowtime" => "rowtime",
                    "udfs" => "udfs",
                    _ => config_key,
                };
                CheckError {
                    key,
                    message: format!("{}: {path}: {message}", crate::config::show(config_path)),
                }
            }
        })?;
        for (table, path) in &self.reference {
            if !plan.tables.iter().any(|t| &t.name == table) {
                return Err(CheckError {
                    key: "reference",
                    message: format!(
                        "the application has no reference table `{table}` (it has: {})",
                        plan.tables
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            if !path.is_file() {
                return Err(CheckError {
                    key: "reference",
                    message: format!("{table}: {} is not a file", crate::config::show(path)),
                });
            }
        }
        for t in &plan.tables {
            let local = self.reference.contains_key(&t.name);
            if !local && t.reference.file_key.is_none() {
                return Err(CheckError {
                    key: "reference",
                    message: format!(
                        "reference table `{}` has no S3 object: give a local file, \
                         reference = {{ {} = \"path\" }}",
                        t.name, t.name
                    ),
                });
            }
        }
        Ok(plan)
    }

    /// The bytes of each of the plan's reference tables: the local file when `reference`
    /// names one, else its S3 object.
    pub fn reference_data(&self, plan: &weir_sql::Plan) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        for t in &plan.tables {
            if let Some(path) = self.reference.get(&t.name) {
                out.push(std::fs::read(path).map_err(|e| {
                    format!(
                        "reference table {}: {}: {e}",
                        t.name,
                        crate::config::show(path)
                    )
                })?);
                continue;
            }
            let (Some(bucket), Some(key)) = (&t.reference.bucket_arn, &t.reference.file_key) else {
                return Err(format!("reference table {} has no S3 object", t.name));
            };
            let (region, endpoint) = (self.region.clone(), self.endpoint.clone());
            let (bucket, key) = (bucket.clone(), key.clone());
            // Its own thread and runtime: building a pipeline may happen on a runtime's
            // thread, where blocking on a future is not allowed.
            let bytes = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?
                    .block_on(weir_connectors::aws::s3_object(
                        region.as_deref(),
                        endpoint.as_deref(),
                        &bucket,
                        &key,
                    ))
            })
            .join()
            .map_err(|_| "reading reference data panicked".to_string())?
            .map_err(|e| format!("reference table {}: {e}", t.name))?;
            out.push(bytes);
        }
        Ok(out)
    }

    /// The files the step reads (a reload that changes one restarts the step).
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.application, &self.code, &self.inputs]
            .into_iter()
            .flatten()
            .chain(self.reference.values())
            .chain(self.udfs.iter().map(|u| &u.module))
            .cloned()
            .collect()
    }
}

impl Component for SqlStepConfig {
    fn describe(&self) -> String {
        match (&self.application, &self.code) {
            (_, Some(code)) => format!("SQL application {}", crate::config::show(code)),
            (Some(app), None) => format!("SQL application {}", crate::config::show(app)),
            (None, None) => "SQL application".into(),
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.application, &mut self.code, &mut self.inputs]
            .into_iter()
            .flatten()
        {
            resolve(base, p);
        }
        for p in self.reference.values_mut() {
            resolve(base, p);
        }
        for u in &mut self.udfs {
            resolve(base, &mut u.module);
            for dir in &mut u.grants.dirs {
                resolve(base, dir);
            }
        }
    }

    fn local_paths(&self) -> LocalPaths {
        let mut out: LocalPaths = Vec::new();
        for (key, p) in [
            ("application", &self.application),
            ("code", &self.code),
            ("inputs", &self.inputs),
        ] {
            if let Some(p) = p {
                out.push((key, p.clone()));
            }
        }
        out.extend(self.reference.values().map(|p| ("reference", p.clone())));
        out.extend(self.udfs.iter().map(|u| ("udfs", u.module.clone())));
        out
    }

    fn check(&self) -> Result<(), CheckError> {
        let udfs = if self.udfs.is_empty() {
            Vec::new()
        } else {
            // Which functions the SQL may call, and their types, only the modules can say.
            let host = super::udf::check_host().map_err(|message| CheckError {
                key: "udfs",
                message,
            })?;
            super::udf::load(&self.udfs, host, "validate")
                .map_err(|message| CheckError {
                    key: "udfs",
                    message,
                })?
                .0
        };
        self.compile(udfs).map(|_| ())
    }
}
