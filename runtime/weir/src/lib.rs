//! Weir: a stream processor runtime extended with WebAssembly.
//!
//! Layers, each knowing only those below it:
//! - [`config`], [`units`], [`expr`]: pipeline files and the expressions inside them.
//! - [`source`], [`sink`]: where records come from and go to; they know nothing of Wasm.
//! - [`process`]: the processor trait, and the adapter from `weir-wasm` runners to it.
//! - [`engine`]: connects a source, processors and a sink with bounded channels.
//! - [`app`]: turns parsed pipeline files into engine plans (what the `weir` binary runs).
//! - [`admin`]: the admin API and Prometheus metrics of a run.

pub mod ack;
pub mod admin;
pub mod app;
pub mod aws;
pub mod checkpoint;
pub mod clock;
pub mod codes;
pub mod config;
pub mod durable;
pub mod engine;
pub mod expr;
pub mod process;
pub mod quota;
pub mod record;
pub mod redact;
pub mod sink;
pub mod source;
pub mod stats;
pub mod supervisor;
pub mod units;
