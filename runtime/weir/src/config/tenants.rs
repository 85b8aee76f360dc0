//! The tenants file (`weir run --tenants FILE`): who may run what, and how much of the machine
//! each tenant's pipelines may use together.
//!
//! ```toml
//! [tenant.acme]
//! memory = "64MiB"      # most memory one Wasm instance may hold (the steps' default cap)
//! fuel = 50_000_000     # most fuel one call may burn (the steps' default budget)
//! cpu = "250ms"         # processor time per second, across all the tenant's pipelines
//! instances = 4         # Wasm instances (steps) across its pipelines
//! pipelines = 2
//! ```
//!
//! Invariants: a pipeline names its tenant with `[pipeline] tenant`; one that names none
//! belongs to `default`. A tenant the file does not declare is an error, except `default`,
//! which has no quotas unless declared. A step may ask for less than its tenant's cap, never
//! more; a step that asks for nothing gets the cap.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{line_col, ConfigError, Location, PipelineFile, ProcessConfig};
use crate::units::{ByteSize, HumanDuration};

/// The tenant of pipelines that name none.
pub const DEFAULT: &str = "default";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    #[serde(default)]
    pub tenant: BTreeMap<String, TenantConfig>,
}

/// One tenant's quotas; an absent key is no limit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub memory: Option<ByteSize>,
    pub fuel: Option<u64>,
    pub cpu: Option<HumanDuration>,
    pub instances: Option<usize>,
    pub pipelines: Option<usize>,
}

impl TenantsFile {
    pub fn load(path: &Path) -> Result<TenantsFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<TenantsFile, ConfigError> {
        let file = Self::parse_only(path, text)?;
        if let Some((name, _)) = file
            .tenant
            .iter()
            .find(|(_, t)| t.cpu.is_some_and(|c| c.0.is_zero()))
        {
            let needle = format!("[tenant.{name}]");
            let line = text
                .lines()
                .position(|l| l.trim() == needle)
                .map_or(1, |i| i + 1);
            return Err(ConfigError::Invalid {
                location: Location {
                    path: path.to_owned(),
                    line,
                    column: 1,
                    key: Some(format!("tenant.{name}.cpu")),
                },
                message: "a CPU quota must be above zero (leave `cpu` out for no quota)".into(),
            });
        }
        Ok(file)
    }

    fn parse_only(path: &Path, text: &str) -> Result<TenantsFile, ConfigError> {
        let parsed = toml::Deserializer::parse(text)
            .map_err(|e| (e, String::new()))
            .and_then(|d| {
                serde_path_to_error::deserialize::<_, TenantsFile>(d).map_err(|e| {
                    let key = e.path().to_string();
                    (e.into_inner(), key)
                })
            });
        parsed.map_err(|(e, key)| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            ConfigError::Invalid {
                location: Location {
                    path: path.to_owned(),
                    line,
                    column,
                    key: (!key.is_empty() && key != ".").then_some(key),
                },
                message: e.message().trim().to_string(),
            }
        })
    }

    /// The quotas of `name`; `None` for a tenant that is not declared (an error, unless it is
    /// [`DEFAULT`]).
    pub fn get(&self, name: &str) -> Option<&TenantConfig> {
        self.tenant.get(name)
    }
}

/// Applies a tenant's per-instance caps to a pipeline's steps: fills in the steps that set no
/// cap, and refuses a step that asks for more than the tenant allows.
pub fn apply(file: &mut PipelineFile, tenants: &TenantsFile) -> Result<(), ConfigError> {
    let name = file.tenant().to_string();
    let tenant = match tenants.get(&name) {
        Some(t) => t.clone(),
        None if name == DEFAULT => return Ok(()),
        None => {
            return Err(ConfigError::Invalid {
                location: file.locate(file.lines.pipeline, "pipeline.tenant"),
                message: format!(
                    "tenant `{name}` is not declared{}",
                    if tenants.tenant.is_empty() {
                        " (declare tenants in a file given with `weir run --tenants FILE`)".into()
                    } else {
                        format!(
                            "; declared: {}",
                            tenants
                                .tenant
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            })
        }
    };
    let mut problems = Vec::new();
    for (i, step) in file.spec.process.iter_mut().enumerate() {
        let ProcessConfig::Wasm(w) = step;
        if let Some(cap) = tenant.memory {
            match w.limits.memory {
                Some(asked) if asked > cap => problems.push((
                    i,
                    "limits.memory",
                    format!(
                        "{} bytes is over tenant `{name}`'s cap of {} bytes per instance",
                        asked.0, cap.0
                    ),
                )),
                Some(_) => {}
                None => w.limits.memory = Some(cap),
            }
        }
        // The CPU quota is charged after each call: a call must end for it to be charged.
        if tenant.cpu.is_some() && w.limits.timeout.is_some_and(|t| t.0.is_zero()) {
            problems.push((
                i,
                "limits.timeout",
                format!("tenant `{name}` has a CPU quota, so its steps need a timeout above zero"),
            ));
        }
        if let Some(cap) = tenant.fuel {
            match w.limits.fuel {
                Some(asked) if asked > cap => problems.push((
                    i,
                    "limits.fuel",
                    format!("{asked} is over tenant `{name}`'s cap of {cap} fuel per call"),
                )),
                Some(_) => {}
                None => w.limits.fuel = Some(cap),
            }
        }
    }
    match problems.into_iter().next() {
        None => Ok(()),
        Some((i, key, message)) => Err(ConfigError::Invalid {
            location: file.locate(
                file.lines.process.get(i).copied().unwrap_or(1),
                format!("process[{i}].{key}"),
            ),
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(text: &str) -> PipelineFile {
        super::super::parse(Path::new("p.toml"), text, &|_| None).unwrap()
    }

    const TENANTS: &str = r#"
[tenant.acme]
memory = "32MiB"
fuel = 1000
cpu = "250ms"
instances = 2
pipelines = 1
"#;

    #[test]
    fn steps_get_the_tenants_caps_and_may_not_exceed_them() {
        let tenants = TenantsFile::parse(Path::new("tenants.toml"), TENANTS).unwrap();
        let base = "[pipeline]\ntenant = \"acme\"\n[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\n";
        let mut file = pipeline(&format!(
            "{base}[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\n"
        ));
        apply(&mut file, &tenants).unwrap();
        let ProcessConfig::Wasm(w) = &file.spec.process[0];
        assert_eq!(w.limits.memory, Some(ByteSize(32 << 20)));
        assert_eq!(w.limits.fuel, Some(1000));

        let mut greedy = pipeline(&format!(
            "{base}\n[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\nlimits = {{ memory = \"1GiB\" }}\n"
        ));
        let err = apply(&mut greedy, &tenants).unwrap_err().to_string();
        assert!(
            err.starts_with("p.toml:8:1: key `process[0].limits.memory`: 1073741824 bytes is over tenant `acme`'s cap"),
            "{err}"
        );

        let mut stranger = pipeline(
            "[pipeline]\ntenant = \"globex\"\n[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\n",
        );
        let err = apply(&mut stranger, &tenants).unwrap_err().to_string();
        assert!(err.contains("p.toml:1:1: key `pipeline.tenant`: tenant `globex` is not declared; declared: acme"), "{err}");
    }

    #[test]
    fn a_cpu_quota_must_be_positive_and_needs_finite_timeouts() {
        let err = TenantsFile::parse(Path::new("t.toml"), "\n[tenant.acme]\ncpu = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.toml:2:1: key `tenant.acme.cpu`: a CPU quota must be above zero"),
            "{err}"
        );
        let tenants = TenantsFile::parse(Path::new("tenants.toml"), TENANTS).unwrap();
        let mut endless = pipeline(
            "[pipeline]\ntenant = \"acme\"\n[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\n[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\nlimits = { timeout = \"0s\" }\n",
        );
        let err = apply(&mut endless, &tenants).unwrap_err().to_string();
        assert!(
            err.contains("key `process[0].limits.timeout`: tenant `acme` has a CPU quota"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelled_quota_names_its_line_and_key() {
        let err = TenantsFile::parse(Path::new("t.toml"), "[tenant.acme]\nmemroy = \"1MiB\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:2:1"), "{err}");
        assert!(err.contains("memroy"), "{err}");
    }
}
