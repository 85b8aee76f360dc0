//! Kinesis Data Analytics SQL applications on Weir.
//!
//! An application (its SQL and its input/output configuration, as KDA took them) is parsed
//! ([`parse`]), compiled against its configuration ([`plan::compile`]) and run as a stage
//! ([`stage::SqlStage`], a [`weir_core::process::Processor`]). The crate depends on the core
//! only: nothing else in the build pays for it, and it knows no AWS, Wasm or files (the
//! caller reads the SQL and the JSON and hands over their text).
//!
//! The dialect is the KDA SQL Reference's. What Weir takes today: streams, pumps (chained,
//! several, with or without a column list), filters and projections with the reference's
//! scalar functions, tumbling windows (GROUP BY a window of ROWTIME), sliding windows (OVER,
//! in [`slide`]) and stagger windows, with COUNT, SUM, MIN, MAX and AVG, HAVING and DISTINCT
//! aggregates, joins with reference tables and between streams, the analytic table functions
//! (RANDOM_CUT_FOREST with or without explanation, TOP_K_ITEMS_TUMBLING, and, in
//! [`analytic`], COUNT_DISTINCT_ITEMS_TUMBLING and HOTSPOTS), the log parsers ([`logparse`])
//! with FROM subqueries, and user-defined functions ([`udf`]). What it does not take yet is
//! refused at
//! compile time with the line and column, never run wrongly.

pub mod analytic;
pub mod app;
pub mod ast;
pub mod datefmt;
pub mod discover;
pub mod error;
pub mod eval;
pub mod fastregex;
pub mod input;
pub mod jsonpath;
pub mod lex;
pub mod logparse;
pub mod parse;
pub mod pattern;
pub mod plan;
pub mod slide;
pub mod stage;
pub mod udf;
pub mod value;

pub use app::{parse_app_json, AppConfig};
pub use error::SqlError;
pub use plan::{compile, Options, Plan};
pub use stage::SqlStage;
pub use udf::{UdfResult, UdfSignature, UdfType, Udfs};
