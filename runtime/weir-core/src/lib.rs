//! Weir's core: what every pipeline is made of, and the engine that runs one. It knows no AWS,
//! no Wasm and no SQL: sources, processors and sinks come in as trait objects.
//!
//! Layers, each knowing only those below it:
//! - [`units`], [`clock`], [`durable`]: sizes and durations as written in files, time (always
//!   injected), files written so that a crash leaves the old or the new content.
//! - [`record`], [`batch`], [`ack`]: records and failed records, the columnar batches records
//!   move in, and the acknowledgements that tell a source what was delivered.
//! - [`checkpoint`]: where sources keep positions, and the tracker that moves one only past
//!   delivered records.
//! - [`stats`], [`quota`]: counters and destination health; CPU budgets shared by pipelines.
//! - [`source`], [`process`], [`sink`]: the component traits and what each is given.
//! - [`engine`]: connects a source, processors and a sink with bounded channels; [`pool`]:
//!   the threads every pipeline's processors share.

pub mod ack;
pub mod batch;
pub mod checkpoint;
pub mod clock;
pub mod durable;
pub mod engine;
pub mod pool;
pub mod process;
pub mod quota;
pub mod record;
pub mod sink;
pub mod source;
pub mod stats;
pub mod units;
