//! The `wasm` step's settings as a pipeline file writes them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::component::resolve;
use crate::config::Component;
use crate::units::{ByteSize, HumanDuration};

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

impl WasmStepConfig {
    /// The settings of a module that another step runs (the SQL step's functions), as a
    /// step of its own would have them.
    pub fn for_module(
        module: PathBuf,
        config: Option<toml::Table>,
        limits: LimitsConfig,
        grants: GrantsConfig,
    ) -> WasmStepConfig {
        WasmStepConfig {
            _type: "wasm".into(),
            module,
            config,
            limits,
            grants,
        }
    }
}

impl Component for WasmStepConfig {
    fn describe(&self) -> String {
        format!("Wasm module {}", crate::config::show(&self.module))
    }
    fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.module);
        for dir in &mut self.grants.dirs {
            resolve(base, dir);
        }
    }
}
