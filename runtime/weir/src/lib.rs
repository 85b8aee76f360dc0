//! Weir: a stream processor runtime extended with WebAssembly. This crate is what the `weir`
//! binary runs: pipeline files, the Wasm step, the supervisor and the admin API.
//!
//! Layers, each knowing only those below it:
//! - [`weir_core`]: records, acks, checkpoints, the component traits and the engine.
//! - [`weir_connectors`]: sources and sinks and their settings; they know nothing of Wasm.
//! - `weir_wasm`: the sandboxed Wasm host.
//! - [`config`]: pipeline files (and the tenants file) read into the connectors' settings.
//! - [`process`]: the adapter from `weir-wasm` runners to the core's processor trait.
//! - [`app`]: turns parsed pipeline files into engine plans.
//! - [`supervisor`], [`admin`]: running many pipelines, reloading them, and the admin API.

pub mod admin;
pub mod app;
pub mod config;
pub mod process;
pub mod supervisor;

// The connectors' and the core's modules, under the paths the runtime has always used.
pub use weir_connectors::{aws, codes, expr, redact, sink, source};
pub use weir_core::{
    ack, batch, checkpoint, clock, durable, engine, pool, quota, record, stats, units,
};
