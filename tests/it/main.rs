//! The integration tests, in one binary (each test binary links the whole runtime, so one
//! links once): every module runs the `weir` binary on real pipeline files against real peers
//! on 127.0.0.1, started by the helpers in `common`. `cargo test --test it kinesis::` runs one
//! module.

mod common;
mod delivery;
mod e2e;
mod hardening;
mod kinesis;
mod reload;
mod sql;
