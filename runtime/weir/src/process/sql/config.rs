//! The `sql` step's settings as a pipeline file writes them: a Kinesis Data Analytics SQL
//! application, moved over as it was.
//!
//! ```toml
//! [[process]]
//! type = "sql"
//! application = "describe-application.json"   # or: code = "app.sql" + inputs = "inputs.json"
//! rowtime = "TS"              # optional: ROWTIME from this column instead of arrival time
//! output = "DESTINATION_SQL_STREAM"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::component::{resolve, CheckError, LocalPaths};
use crate::config::Component;

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
    /// Local files for reference tables, by table name (not supported yet: refused).
    #[serde(default)]
    pub reference: toml::Table,
}

/// A compiled application, or why it does not compile (with the key at fault).
pub type Compiled = Result<weir_sql::Plan, CheckError>;

impl SqlStepConfig {
    /// Reads the files the step names and compiles the application.
    pub fn compile(&self) -> Compiled {
        let read = |key: &'static str, path: &Path| {
            std::fs::read_to_string(path).map_err(|e| CheckError {
                key,
                message: format!("{}: {e}", crate::config::show(path)),
            })
        };
        if !self.reference.is_empty() {
            return Err(CheckError {
                key: "reference",
                message: "reference data is not supported by Weir yet".into(),
            });
        }
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
        };
        weir_sql::compile(&code, &app, &options).map_err(|e| match e {
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
                    _ => config_key,
                };
                CheckError {
                    key,
                    message: format!("{}: {path}: {message}", crate::config::show(config_path)),
                }
            }
        })
    }

    /// The files the step reads (a reload that changes one restarts the step).
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.application, &self.code, &self.inputs]
            .into_iter()
            .flatten()
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
        out
    }

    fn check(&self) -> Result<(), CheckError> {
        self.compile().map(|_| ())
    }
}
