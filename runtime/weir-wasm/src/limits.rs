//! The sandbox a guest runs in: its budget per call and the capabilities it is granted.

use std::path::PathBuf;
use std::time::Duration;

/// Resource caps for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) per call; `None` for no fuel budget.
    pub fuel: Option<u64>,
    /// Most bytes of linear memory (and table space) the instance may hold.
    pub memory: u64,
    /// Wall-clock budget per call; `None` for none. Enforced by epoch interruption, so the
    /// actual cut-off lands within one tick ([`crate::host::TICK`]) after it.
    pub timeout: Option<Duration>,
    /// Most bytes of record data one call may return; more fails the batch. Keeps a guest
    /// that inflates records from filling the sink's buffers.
    pub output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: None,
            memory: 64 << 20,
            timeout: Some(Duration::from_secs(1)),
            output: 32 << 20,
        }
    }
}

/// Capabilities granted to a guest. The default grants nothing: no files, no environment, no
/// network. Clocks and random numbers are always available.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    /// Environment variables passed through, as (name, value).
    pub env: Vec<(String, String)>,
    /// Host directories made readable to the guest, each at the same path inside the guest.
    pub dirs: Vec<(PathBuf, String)>,
    /// Outgoing network access to any address (TCP/UDP and name lookup).
    pub network: bool,
    /// Outgoing TCP/UDP to these addresses only (resolved when an instance starts), with name
    /// lookup. Ignored when `network` grants everything.
    pub hosts: Vec<String>,
}

/// Enforces the memory cap over everything an instance allocates (every linear memory and
/// every table of every core instance of the component, together) and remembers that it did,
/// so that the resulting trap can be reported as `Wasm.MemoryLimit` rather than a bare trap.
pub(crate) struct MemoryCap {
    pub(crate) max: usize,
    /// Bytes of memories and tables held now.
    pub(crate) used: usize,
    pub(crate) hit: bool,
}

/// What one table element costs the host: a pointer, as wasmtime documents (a funcref table
/// entry may take more; this errs on the side of the guest).
const TABLE_ELEMENT: usize = std::mem::size_of::<usize>();
/// Caps on how many core instances, memories and tables one component instance may create.
/// wasmtime's defaults (10,000 each) would let a component reserve thousands of memories; the
/// largest real guests (Python through componentize-py) use a few dozen instances.
pub(crate) const MAX_INSTANCES: usize = 256;
pub(crate) const MAX_MEMORIES: usize = 32;
pub(crate) const MAX_TABLES: usize = 64;

impl MemoryCap {
    fn grow(&mut self, what: &str, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let used = self.used - current.min(self.used) + desired;
        if used > self.max {
            self.hit = true;
            wasmtime::bail!(
                "memory limit exceeded: growing a {what} would bring the instance to {used} bytes of memories and tables, the cap is {}",
                self.max
            );
        }
        self.used = used;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("memory", current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            "table",
            current.saturating_mul(TABLE_ELEMENT),
            desired.saturating_mul(TABLE_ELEMENT),
        )
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with many memories and a large table, each under the cap on its own.
    const HOG: &str = r#"(module
        (memory 16) (memory 16) (memory 16) (memory 16) (memory 16) (memory 16)
        (table 100000 funcref))"#;

    fn instantiate(cap: usize) -> (Result<(), String>, MemoryCap) {
        let mut config = wasmtime::Config::new();
        config.wasm_multi_memory(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(&engine, wat::parse_str(HOG).unwrap()).unwrap();
        let mut store = wasmtime::Store::new(
            &engine,
            MemoryCap {
                max: cap,
                used: 0,
                hit: false,
            },
        );
        store.limiter(|c| c);
        let result = wasmtime::Instance::new(&mut store, &module, &[])
            .map(|_| ())
            .map_err(|e| format!("{e:#}"));
        (result, store.into_data())
    }

    #[test]
    fn memories_and_tables_count_together_against_one_cap() {
        // Six memories of 1 MiB and a table of 800 KB: 6.8 MB in all.
        let (ok, cap) = instantiate(8 << 20);
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(cap.used, 6 * (16 << 16) + 100_000 * TABLE_ELEMENT);
        // Each one fits 4 MiB, all together do not.
        let (refused, cap) = instantiate(4 << 20);
        assert!(refused.unwrap_err().contains("memory limit exceeded"));
        assert!(cap.hit);
    }
}
