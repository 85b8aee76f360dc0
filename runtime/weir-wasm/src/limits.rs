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

/// Enforces the memory cap and remembers that it did, so that the resulting trap can be
/// reported as `Wasm.MemoryLimit` rather than a bare trap.
pub(crate) struct MemoryCap {
    pub(crate) max: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            wasmtime::bail!(
                "memory limit exceeded: the guest asked for {desired} bytes, the cap is {}",
                self.max
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far past any real guest.
        Ok(desired <= 1_000_000)
    }
}
