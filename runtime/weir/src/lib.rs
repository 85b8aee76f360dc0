//! Weir: a stream processor runtime extended with WebAssembly.
//!
//! Layers, each knowing only those below it (the core, [`weir_core`], below them all: records,
//! acks, checkpoints, the component traits and the engine):
//! - [`config`], [`units`], [`expr`]: pipeline files and the expressions inside them.
//! - [`source`], [`sink`]: where records come from and go to; they know nothing of Wasm.
//! - [`process`]: the processor trait, and the adapter from `weir-wasm` runners to it.
//! - [`app`]: turns parsed pipeline files into engine plans (what the `weir` binary runs).
//! - [`admin`]: the admin API and Prometheus metrics of a run.

pub mod admin;
pub mod app;
pub mod aws;
pub mod codes;
pub mod config;
pub mod expr;
pub mod process;
pub mod redact;
pub mod sink;
pub mod source;
pub mod supervisor;

// The core's modules, under the paths the rest of the runtime has always used.
pub use weir_core::{ack, checkpoint, clock, durable, engine, quota, record, stats, units};
