//! The tenants file (`weir run --tenants FILE`): who runs what, what they may reach, and how
//! much of the machine each tenant's pipelines may use together.
//!
//! ```toml
//! [tenant.acme]
//! paths = ["pipelines/acme/"]   # the pipeline files (or directories of them) that are acme's
//! memory = "64MiB"      # most memory one Wasm instance may hold (the steps' default cap)
//! fuel = 50_000_000     # most fuel one call may burn (the steps' default budget)
//! cpu = "250ms"         # processor time per second, across all the tenant's pipelines
//! instances = 4         # Wasm instances (steps) across its pipelines
//! pipelines = 2
//! allow = { dirs = ["/data/acme"], env = ["ACME_*"], hosts = ["api.acme.example:443"], network = false }
//! ```
//!
//! Invariants:
//! - The operator decides which tenant a pipeline belongs to: the tenant whose `paths` holds
//!   the pipeline's file (the deepest match wins; paths are relative to the tenants file). A
//!   file no tenant lists belongs to `default`. A pipeline file may say `[pipeline] tenant`,
//!   but only to assert what the operator decided: naming another tenant is an error.
//! - A tenant's steps may ask only for the grants its `allow` lists: directories under its
//!   `allow.dirs`, variables its `allow.env` matches (names or `PREFIX_*`), its `allow.hosts`,
//!   and `network` only with `allow.network`. `${VAR}` in its files expands only the variables
//!   `allow.env` matches. Without a tenants file (one user, one operator) every grant is
//!   allowed to `default`, and `${VAR}` expands what `weir run --allow-env` names; with one,
//!   `default` allows what `[tenant.default]` declares (nothing if it is not declared), plus
//!   the `--allow-env` variables.
//! - A step may ask for less than its tenant's cap, never more; a step that asks for nothing
//!   gets the cap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::component::LocalPaths;
use super::vars;
use super::{line_col, Component, ConfigError, Location, PipelineFile, ProcessConfig};
use crate::process::wasm::config::{GrantsConfig, LimitsConfig};
use crate::units::{ByteSize, HumanDuration};

/// The tenant of pipelines that name none.
pub const DEFAULT: &str = "default";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    #[serde(default)]
    pub tenant: BTreeMap<String, TenantConfig>,
    /// Whether a tenants file was given: then grants are checked against `allow` lists.
    #[serde(skip)]
    pub given: bool,
    /// Variables `--allow-env` names: `${VAR}` in `default`'s files may read them.
    #[serde(skip)]
    pub cli_env: Vec<String>,
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
    /// The pipeline files, and directories of them, that belong to this tenant.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub allow: Allow,
}

/// The grants a tenant's steps may ask for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// Directories (and everything under them) steps may be granted.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Environment variables (names or `PREFIX_*`) steps may read, and `${VAR}` may expand.
    #[serde(default)]
    pub env: Vec<String>,
    /// `host:port` addresses steps may connect to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Whether steps may be granted the whole network.
    #[serde(default)]
    pub network: bool,
}

/// A path as compared for membership: made absolute and resolved where it exists.
fn canonical(path: &Path) -> PathBuf {
    let absolute = if path.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    std::fs::canonicalize(&absolute).unwrap_or_else(|_| super::normalize(&absolute))
}

impl TenantsFile {
    /// No tenants file: one user, every grant allowed, `${VAR}` limited to `cli_env`.
    pub fn single_user(cli_env: Vec<String>) -> TenantsFile {
        TenantsFile {
            cli_env,
            ..TenantsFile::default()
        }
    }

    pub fn load(path: &Path) -> Result<TenantsFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut file = Self::parse(path, &text)?;
        // Paths in the file are relative to it.
        let base = path.parent().unwrap_or(Path::new("."));
        for tenant in file.tenant.values_mut() {
            for p in tenant.paths.iter_mut().chain(tenant.allow.dirs.iter_mut()) {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(file)
    }

    /// The tenant a pipeline file belongs to, by the operator's `paths`.
    pub fn tenant_of(&self, pipeline: &Path) -> &str {
        // The directory is resolved, the file name is kept: a symbolic link in a tenant's
        // directory stays that tenant's, wherever it points.
        let file = match (pipeline.parent(), pipeline.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                canonical(dir).join(name)
            }
            _ => canonical(pipeline),
        };
        let mut best: Option<(&str, usize)> = None;
        for (name, tenant) in &self.tenant {
            for p in &tenant.paths {
                let p = canonical(p);
                if file.starts_with(&p) {
                    let depth = p.components().count();
                    if best.is_none_or(|(_, d)| depth > d) {
                        best = Some((name, depth));
                    }
                }
            }
        }
        best.map_or(DEFAULT, |(name, _)| name)
    }

    /// The variables `${VAR}` may expand in a tenant's files.
    pub fn allowed_env(&self, tenant: &str) -> Vec<String> {
        let mut allowed = self
            .tenant
            .get(tenant)
            .map(|t| t.allow.env.clone())
            .unwrap_or_default();
        if tenant == DEFAULT {
            allowed.extend(self.cli_env.iter().cloned());
        }
        allowed
    }

    /// Reads a pipeline file as its tenant may: `${VAR}` limited to the tenant's variables,
    /// then the tenant's caps and allowances applied.
    pub fn load_pipeline(&self, path: &Path) -> Result<PipelineFile, ConfigError> {
        let allowed = self.allowed_env(self.tenant_of(path));
        let mut file = super::load(path, &allowed)?;
        apply(&mut file, self)?;
        Ok(file)
    }

    pub fn parse(path: &Path, text: &str) -> Result<TenantsFile, ConfigError> {
        let mut file = Self::parse_only(path, text)?;
        file.given = true;
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

/// Gives a pipeline its tenant (the operator's choice) and applies the tenant's per-instance
/// caps and allowances to its steps: fills in the steps that set no cap, and refuses a step
/// that asks for more than the tenant allows.
pub fn apply(file: &mut PipelineFile, tenants: &TenantsFile) -> Result<(), ConfigError> {
    let name = tenants.tenant_of(&file.path).to_string();
    if let Some(claimed) = &file.spec.pipeline.tenant {
        if *claimed != name {
            return Err(ConfigError::Invalid {
                location: file.locate(file.lines.pipeline, "pipeline.tenant"),
                message: format!(
                    "the file says tenant `{claimed}`, but it belongs to tenant `{name}`{}: \
                     a pipeline cannot choose its tenant (the operator lists its file under \
                     the tenant's `paths` in the tenants file)",
                    if tenants.given {
                        ""
                    } else {
                        " (no tenants file was given)"
                    }
                ),
            });
        }
    }
    file.tenant = name.clone();
    let tenant = tenants.get(&name).cloned();
    if tenants.given {
        let allow = tenant
            .as_ref()
            .map(|t| t.allow.dirs.clone())
            .unwrap_or_default();
        let allowed: Vec<PathBuf> = allow.iter().map(|a| canonical(a)).collect();
        for (line, key, path) in local_paths(file) {
            if !within(&allowed, &path) {
                return Err(ConfigError::Invalid {
                    location: file.locate(line, key),
                    message: format!(
                        "tenant `{name}` may not use {}: it is outside the tenant's `allow.dirs` \
                         (add a directory that holds it to `allow.dirs` of [tenant.{name}] in the \
                         tenants file)",
                        path.display()
                    ),
                });
            }
        }
    }
    let mut problems: Vec<(usize, String, String)> = Vec::new();
    for (i, step) in file.spec.process.iter_mut().enumerate() {
        // A wasm step's module, or each of a sql step's function modules (`udfs[j].`): each
        // runs in the sandbox, with the grants and limits its tenant allows.
        let modules: Vec<(String, &mut GrantsConfig, &mut LimitsConfig)> = match step {
            ProcessConfig::Wasm(w) => vec![(String::new(), &mut w.grants, &mut w.limits)],
            ProcessConfig::Sql(s) => s
                .udfs
                .iter_mut()
                .enumerate()
                .map(|(j, u)| (format!("udfs[{j}]."), &mut u.grants, &mut u.limits))
                .collect(),
        };
        for (prefix, grants, limits) in modules {
            let key = |k: &str| format!("{prefix}{k}");
            if tenants.given {
                let allow = tenant.as_ref().map(|t| t.allow.clone()).unwrap_or_default();
                let fix = |what: &str| {
                    format!("add it to `allow.{what}` of [tenant.{name}] in the tenants file")
                };
                let allowed: Vec<PathBuf> = allow.dirs.iter().map(|a| canonical(a)).collect();
                for dir in &grants.dirs {
                    if !within(&allowed, dir) {
                        problems.push((
                            i,
                            key("grants.dirs"),
                            format!(
                                "tenant `{name}` may not grant directory {}: {}",
                                dir.display(),
                                fix("dirs")
                            ),
                        ));
                    }
                }
                for var in &grants.env {
                    if !allow.env.iter().any(|p| vars::matches(p, var)) {
                        problems.push((
                            i,
                            key("grants.env"),
                            format!(
                                "tenant `{name}` may not grant variable `{var}`: {}",
                                fix("env")
                            ),
                        ));
                    }
                }
                for host in &grants.hosts {
                    if !allow.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                        problems.push((
                            i,
                            key("grants.hosts"),
                            format!(
                                "tenant `{name}` may not grant host `{host}`: {}",
                                fix("hosts")
                            ),
                        ));
                    }
                }
                if grants.network && !allow.network {
                    problems.push((
                    i,
                    key("grants.network"),
                    format!(
                        "tenant `{name}` may not grant the network: set `allow.network = true` of [tenant.{name}] in the tenants file"
                    ),
                ));
                }
            }
            let Some(tenant) = &tenant else { continue };
            if let Some(cap) = tenant.memory {
                match limits.memory {
                    Some(asked) if asked > cap => problems.push((
                        i,
                        key("limits.memory"),
                        format!(
                            "{} bytes is over tenant `{name}`'s cap of {} bytes per instance",
                            asked.0, cap.0
                        ),
                    )),
                    Some(_) => {}
                    None => limits.memory = Some(cap),
                }
            }
            // The CPU quota is charged after each call: a call must end for it to be charged.
            if tenant.cpu.is_some() && limits.timeout.is_some_and(|t| t.0.is_zero()) {
                problems.push((
                    i,
                    key("limits.timeout"),
                    format!(
                        "tenant `{name}` has a CPU quota, so its steps need a timeout above zero"
                    ),
                ));
            }
            if let Some(cap) = tenant.fuel {
                match limits.fuel {
                    Some(asked) if asked > cap => problems.push((
                        i,
                        key("limits.fuel"),
                        format!("{asked} is over tenant `{name}`'s cap of {cap} fuel per call"),
                    )),
                    Some(_) => {}
                    None => limits.fuel = Some(cap),
                }
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

/// Whether `path` (resolved, so `..` and links cannot leave) is under one of `allowed`. A path
/// that does not exist yet (an output directory) is resolved through its nearest existing
/// ancestor.
fn within(allowed: &[PathBuf], path: &Path) -> bool {
    let mut existing = canonical(path);
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut resolved = canonical(&existing);
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    allowed.iter().any(|a| resolved.starts_with(a))
}

/// The local files and directories a pipeline reads or writes, with the line and key that
/// name them: what a tenant's `allow.dirs` must hold.
fn local_paths(file: &PipelineFile) -> Vec<(usize, String, PathBuf)> {
    let (spec, lines) = (&file.spec, &file.lines);
    let mut tables: Vec<(usize, &str, LocalPaths)> = vec![
        (lines.source, "source", spec.source.local_paths()),
        (lines.sink, "sink", spec.sink.local_paths()),
    ];
    if let Some(backup) = &spec.backup {
        tables.push((lines.backup, "backup", backup.local_paths()));
    }
    if let Some(errors) = &spec.errors {
        tables.push((lines.errors, "errors", errors.local_paths()));
    }
    let mut out = Vec::new();
    for (line, table, paths) in tables {
        for (key, path) in paths {
            out.push((line, format!("{table}.{key}"), path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(text: &str) -> PipelineFile {
        super::super::parse(
            Path::new("p.toml"),
            text,
            &super::super::Vars {
                allowed: &[],
                lookup: &|_| None,
            },
        )
        .unwrap()
    }

    const TENANTS: &str = r#"
[tenant.acme]
paths = ["p.toml"]
memory = "32MiB"
fuel = 1000
cpu = "250ms"
instances = 2
pipelines = 1
allow = { env = ["ACME_*"], dirs = ["/srv/acme"] }
"#;

    const BASE: &str = "[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\n";

    #[test]
    fn the_operator_decides_the_tenant_not_the_pipeline_file() {
        let tenants = TenantsFile::parse(Path::new("tenants.toml"), TENANTS).unwrap();
        let mut file = pipeline(BASE);
        apply(&mut file, &tenants).unwrap();
        assert_eq!(file.tenant(), "acme", "listed under acme's paths");
        let mut claims = pipeline(&format!("[pipeline]\ntenant = \"globex\"\n{BASE}"));
        let err = apply(&mut claims, &tenants).unwrap_err().to_string();
        assert!(
            err.starts_with("p.toml:1:1: key `pipeline.tenant`: the file says tenant `globex`, but it belongs to tenant `acme`"),
            "{err}"
        );
        let elsewhere = PipelineFile {
            path: PathBuf::from("other/q.toml"),
            ..pipeline(BASE)
        };
        assert_eq!(tenants.tenant_of(&elsewhere.path), DEFAULT);
    }

    #[test]
    fn steps_get_the_tenants_caps_and_may_not_exceed_them_or_its_allowances() {
        let tenants = TenantsFile::parse(Path::new("tenants.toml"), TENANTS).unwrap();
        let mut file = pipeline(&format!(
            "{BASE}[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\ngrants = {{ env = [\"ACME_KEY\"], dirs = [\"/srv/acme/lookup\"] }}\n"
        ));
        apply(&mut file, &tenants).unwrap();
        let ProcessConfig::Wasm(w) = &file.spec.process[0] else {
            panic!("a wasm step")
        };
        assert_eq!(w.limits.memory, Some(ByteSize(32 << 20)));
        assert_eq!(w.limits.fuel, Some(1000));

        let mut greedy = pipeline(&format!(
            "{BASE}\n[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\nlimits = {{ memory = \"1GiB\" }}\n"
        ));
        let err = apply(&mut greedy, &tenants).unwrap_err().to_string();
        assert!(
            err.starts_with("p.toml:6:1: key `process[0].limits.memory`: 1073741824 bytes is over tenant `acme`'s cap"),
            "{err}"
        );
        for (grants, key) in [
            ("env = [\"HOME\"]", "grants.env"),
            ("dirs = [\"/etc\"]", "grants.dirs"),
            ("hosts = [\"evil.example:443\"]", "grants.hosts"),
            ("network = true", "grants.network"),
        ] {
            let mut nosy = pipeline(&format!(
                "{BASE}[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\ngrants = {{ {grants} }}\n"
            ));
            let err = apply(&mut nosy, &tenants).unwrap_err().to_string();
            assert!(
                err.contains(&format!("key `process[0].{key}`: tenant `acme` may not")),
                "{err}"
            );
        }
        // A sql step's function modules are sandboxed the same way, each under its own key.
        let sql = |udf: &str| {
            pipeline(&format!(
                "{BASE}[[process]]\ntype = \"sql\"\ncode = \"app.sql\"\ninputs = \"in.json\"\nudfs = [{{ module = \"a.wasm\" }}, {udf}]\n"
            ))
        };
        let mut capped = sql("{ module = \"b.wasm\" }");
        apply(&mut capped, &tenants).unwrap();
        let ProcessConfig::Sql(s) = &capped.spec.process[0] else {
            panic!("a sql step")
        };
        assert!(s
            .udfs
            .iter()
            .all(|u| u.limits.memory == Some(ByteSize(32 << 20))));
        for (udf, key) in [
            (
                "{ module = \"b.wasm\", grants = { network = true } }",
                "udfs[1].grants.network",
            ),
            (
                "{ module = \"b.wasm\", grants = { env = [\"HOME\"] } }",
                "udfs[1].grants.env",
            ),
            (
                "{ module = \"b.wasm\", limits = { memory = \"1GiB\" } }",
                "udfs[1].limits.memory",
            ),
        ] {
            let err = apply(&mut sql(udf), &tenants).unwrap_err().to_string();
            assert!(err.contains(&format!("key `process[0].{key}`")), "{err}");
        }
        // Without a tenants file, one user runs everything: grants are theirs to give.
        let mut mine = pipeline(&format!(
            "{BASE}[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\ngrants = {{ network = true }}\n"
        ));
        apply(&mut mine, &TenantsFile::single_user(Vec::new())).unwrap();
    }

    #[test]
    fn a_tenants_files_and_directories_stay_under_its_allowed_dirs() {
        let root = tempfile::tempdir().unwrap();
        let acme = root.path().join("acme");
        std::fs::create_dir_all(acme.join("in")).unwrap();
        let tenants = format!(
            "[tenant.acme]\npaths = [\"p.toml\"]\nallow = {{ dirs = [\"{}\"] }}\n",
            acme.display()
        );
        let tenants = TenantsFile::parse(Path::new("tenants.toml"), &tenants).unwrap();
        let ok = format!(
            "[source]\ntype = \"file\"\npath = \"{0}/in/a.log\"\n[sink]\ntype = \"file\"\npath = \"{0}/out/new\"\n",
            acme.display()
        );
        apply(&mut pipeline(&ok), &tenants).unwrap();
        for (text, key, line) in [
            (
                "[source]\ntype = \"file\"\npath = \"/etc/passwd\"\n[sink]\ntype = \"stdout\"\n".to_string(),
                "source.path",
                1,
            ),
            (
                format!("[source]\ntype = \"stdin\"\n\n[sink]\ntype = \"file\"\npath = \"{}/../elsewhere\"\n", acme.display()),
                "sink.path",
                4,
            ),
            (
                format!("[source]\ntype = \"stdin\"\n[sink]\ntype = \"file\"\npath = \"{}/out\"\n[errors]\ntype = \"file\"\npath = \"/tmp/x\"\n", acme.display()),
                "errors.path",
                6,
            ),
        ] {
            let err = apply(&mut pipeline(&text), &tenants).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("p.toml:{line}:1: key `{key}`: tenant `acme` may not use")),
                "{err}"
            );
        }
        // A link inside the allowed directory that leads out of it is outside.
        std::os::unix::fs::symlink("/etc", acme.join("etc")).unwrap();
        let linked = format!(
            "[source]\ntype = \"file\"\npath = \"{}/etc/passwd\"\n[sink]\ntype = \"stdout\"\n",
            acme.display()
        );
        assert!(apply(&mut pipeline(&linked), &tenants).is_err());
        // Without a tenants file, one user reads and writes where they like.
        apply(
            &mut pipeline(&linked),
            &TenantsFile::single_user(Vec::new()),
        )
        .unwrap();
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
        let mut endless = pipeline(&format!(
            "{BASE}[[process]]\ntype = \"wasm\"\nmodule = \"m.wasm\"\nlimits = {{ timeout = \"0s\" }}\n"
        ));
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
