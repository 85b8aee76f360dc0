//! Weir's connectors: the sources and sinks, their settings, and what they share (AWS SDK
//! setup, object stores, prefix and jq expressions). They know no Wasm, no SQL and no pipeline
//! files: the `weir` crate reads pipeline files into the settings declared here
//! ([`config`]'s registries) and hands the running components to [`weir_core`]'s engine.
//!
//! Layers, each knowing only those below it:
//! - [`weir_core`]: records, acks, checkpoints, the component traits and the engine.
//! - [`aws`], [`expr`], [`redact`], [`codes`]: what several components share.
//! - [`config`]: each table's registry of component kinds and the traits they implement.
//! - [`source`], [`sink`]: one folder per component kind, with its settings (`config.rs`).

pub mod aws;
pub mod codes;
pub mod config;
pub mod expr;
pub mod redact;
pub mod sink;
pub mod source;

// The core's modules, under the paths the connectors have always used.
pub use weir_core::{ack, batch, checkpoint, clock, durable, engine, quota, record, stats, units};
