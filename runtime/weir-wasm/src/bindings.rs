//! Host-side bindings generated from `wit/plugin.wit`.

pub(crate) mod transform {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "transform",
        // Calls are async, so that a call blocked in a host call (a sleep, a socket) can be cut
        // off at its timeout by dropping it.
        exports: { default: async },
    });
}

pub(crate) mod filter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "filter",
        exports: { default: async },
        with: {
            "weir:plugin/types": super::transform::weir::plugin::types,
            "weir:plugin/host": super::transform::weir::plugin::host,
        },
    });
}

pub(crate) mod sql_udf {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sql-udf",
        exports: { default: async },
        with: {
            "weir:plugin/types": super::transform::weir::plugin::types,
            "weir:plugin/host": super::transform::weir::plugin::host,
        },
    });
}

pub use sql_udf::weir::plugin::sql::{
    Blobs, Column, DataType, Results, RowError, Signature, Texts, Values,
};
pub use transform::weir::plugin::types::{
    Attribute, Batch, Decision, Level, NewKey, Outcome, PartitionKey, SourceRun, SubSequence,
    Transformed,
};
