//! User-defined scalar functions: what the SQL sees of them.
//!
//! This crate knows no WebAssembly. A host (the `weir` binary, over Wasm modules of the
//! `sql-udf` world) describes each function with a [`UdfSignature`] at compile time and calls
//! them through [`Udfs`] while the stage runs.
//!
//! Invariants:
//! - A function is called over a batch of rows, never once per input row: the rows a pump
//!   receives in one batch of input are held until the batch's end, then every call site of
//!   the pump is evaluated over all of them, one call per site (a nested call's inner site
//!   first). A site that reads a window's keys or aggregates (`group`) is called once for the
//!   rows a tumbling or stagger window emits when it ends, and once for each row of a sliding
//!   window.
//! - Arguments arrive converted to the declared types (or NULL); a result is converted from
//!   the declared type to its SQL type. A row whose call fails fails alone (its record goes to
//!   the error output and `error_stream`); a call that fails as a whole fails all its rows.

use crate::value::{SqlType, Value};

/// A UDF argument's or result's type, as the `sql-udf` world declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdfType {
    Boolean,
    Int64,
    Float64,
    Utf8,
    /// Passed as a VARCHAR's UTF-8 bytes; a result must be UTF-8 and becomes a VARCHAR.
    Binary,
    TimestampMs,
}

impl UdfType {
    /// The SQL type values of this type have in the stage.
    pub fn sql_type(self) -> SqlType {
        match self {
            UdfType::Boolean => SqlType::Boolean,
            UdfType::Int64 => SqlType::Bigint,
            UdfType::Float64 => SqlType::Double,
            UdfType::Utf8 | UdfType::Binary => SqlType::Varchar(u32::MAX),
            UdfType::TimestampMs => SqlType::Timestamp,
        }
    }
}

/// A function some module provides.
#[derive(Debug, Clone, PartialEq)]
pub struct UdfSignature {
    /// As SQL calls it, upper-cased (unquoted identifiers are).
    pub name: String,
    pub args: Vec<UdfType>,
    pub returns: UdfType,
    /// Where it comes from, for messages (a module's path).
    pub origin: String,
}

/// One answer of a function for one row.
pub type UdfResult = Result<Value, String>;

/// Calls the functions the plan was compiled with.
pub trait Udfs: Send {
    /// A switch that turns true when the pipeline stops: a call with no time limit of its own
    /// should then give up (its rows fail).
    fn set_abort(&mut self, _abort: tokio::sync::watch::Receiver<bool>) {}

    /// Evaluates function `function` (its index among the signatures given to
    /// [`crate::Options::udfs`]) over `rows` rows. `args[i]` holds the `rows` values of
    /// argument `i`, each NULL or of the declared type's SQL type. The answer holds one result
    /// per row; `Err` fails every row with its message.
    fn call(
        &mut self,
        function: usize,
        rows: usize,
        args: &[Vec<Value>],
    ) -> Result<Vec<UdfResult>, String>;
}

/// A call site of a pump: `function` over `args`, evaluated for each row of a batch (`group`:
/// for each row a window emits instead, as its arguments read the window's keys or
/// aggregates). Arguments may read earlier sites' results.
#[derive(Debug, Clone, PartialEq)]
pub struct UdfSite {
    pub function: usize,
    pub args: Vec<crate::eval::CExpr>,
    pub group: bool,
}
