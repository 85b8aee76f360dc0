//! SQL functions from Wasm modules of the `sql-udf` world, for the SQL stage.
//!
//! `weir-sql` knows no Wasm: it sees [`weir_sql::UdfSignature`]s and calls
//! [`weir_sql::Udfs`]. This adapter packs a call site's argument values into the world's
//! columns (one list per column, NULLs as a list of rows), calls the module once, and unpacks
//! its answer, checking it against the declared types.

use std::sync::OnceLock;

use weir_sql::value::Value;
use weir_sql::{UdfResult, UdfSignature, UdfType};
use weir_wasm::{Blobs, Column, DataType, Host, HostOptions, PluginKind, Runner, Texts, Values};

use super::config::UdfModuleConfig;

static CACHE_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Where the check host keeps compiled modules: the runtime's own cache (set before any
/// pipeline is checked), so a module is compiled once for both.
pub fn use_cache_dir(dir: std::path::PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

/// The host that checking a pipeline (`weir validate`, and every build) loads function modules
/// with, to learn their functions. Loading again from the same cache only reads the compiled
/// module back.
pub fn check_host() -> Result<&'static Host, String> {
    static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
    HOST.get_or_init(|| {
        let options = match CACHE_DIR.get() {
            Some(dir) => HostOptions {
                cache: Some(weir_wasm::CompileCache::new(dir.clone())),
            },
            None => HostOptions::default(),
        };
        Host::new(options).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Loads the modules and starts an instance of each: their functions' signatures, in the order
/// the calls index them, and what calls them.
pub fn load(
    modules: &[UdfModuleConfig],
    host: &Host,
    pipeline: &str,
) -> Result<(Vec<UdfSignature>, WasmUdfs), String> {
    let mut signatures = Vec::new();
    let mut udfs = WasmUdfs {
        runners: Vec::new(),
        functions: Vec::new(),
        abort: None,
    };
    for m in modules {
        let step = m.step();
        let shown = crate::config::show(&m.module);
        let plugin = host
            .load(&m.module, step.limits.fuel.is_some())
            .map_err(|e| e.to_string())?;
        if plugin.kind() != PluginKind::SqlUdf {
            return Err(format!(
                "{shown} implements the `{}` world; `udfs` takes modules of the `sql-udf` world",
                plugin.kind().world()
            ));
        }
        let settings =
            crate::process::wasm::settings(&step, pipeline).map_err(|e| e.to_string())?;
        let mut runner = plugin.runner(settings).map_err(|e| e.to_string())?;
        let functions = runner
            .functions()
            .map_err(|e| format!("{shown}: `functions` failed: {e}"))?;
        for f in functions {
            let ty = |t: DataType| match t {
                DataType::Boolean => UdfType::Boolean,
                DataType::Int64 => UdfType::Int64,
                DataType::Float64 => UdfType::Float64,
                DataType::Utf8 => UdfType::Utf8,
                DataType::Binary => UdfType::Binary,
                DataType::TimestampMs => UdfType::TimestampMs,
            };
            signatures.push(UdfSignature {
                name: f.name.to_uppercase(),
                args: f.args.iter().copied().map(ty).collect(),
                returns: ty(f.returns),
                origin: shown.clone(),
            });
            udfs.functions.push(Function {
                runner: udfs.runners.len(),
                name: f.name,
                args: f.args.iter().copied().map(ty).collect(),
                returns: ty(f.returns),
                origin: shown.clone(),
            });
        }
        udfs.runners.push(runner);
    }
    Ok((signatures, udfs))
}

/// A function of a loaded module.
struct Function {
    runner: usize,
    /// As the module spells it (the call passes it back).
    name: String,
    args: Vec<UdfType>,
    returns: UdfType,
    origin: String,
}

/// Calls functions of Wasm modules over batches of rows.
pub struct WasmUdfs {
    runners: Vec<Runner>,
    functions: Vec<Function>,
    /// Turns true when the pipeline stops: a call with no timeout gives up then.
    abort: Option<tokio::sync::watch::Receiver<bool>>,
}

/// The WIT type of a UDF type.
fn wit_type(t: UdfType) -> DataType {
    match t {
        UdfType::Boolean => DataType::Boolean,
        UdfType::Int64 => DataType::Int64,
        UdfType::Float64 => DataType::Float64,
        UdfType::Utf8 => DataType::Utf8,
        UdfType::Binary => DataType::Binary,
        UdfType::TimestampMs => DataType::TimestampMs,
    }
}

impl weir_sql::Udfs for WasmUdfs {
    fn set_abort(&mut self, abort: tokio::sync::watch::Receiver<bool>) {
        self.abort = Some(abort);
    }

    fn call(
        &mut self,
        function: usize,
        rows: usize,
        args: &[Vec<Value>],
    ) -> Result<Vec<UdfResult>, String> {
        let f = &self.functions[function];
        let upper = f.name.to_uppercase();
        let n = u32::try_from(rows).map_err(|_| format!("{upper}: too many rows in one call"))?;
        let columns: Vec<Column> = args
            .iter()
            .zip(&f.args)
            .map(|(values, ty)| pack(values, *ty))
            .collect();
        let answer = self.runners[f.runner]
            .call_udf(
                &f.name,
                n,
                &columns,
                wit_type(f.returns),
                self.abort.as_ref(),
            )
            .map_err(|e| format!("{upper} ({}): {e}", f.origin))?
            .map_err(|message| format!("{upper}: {message}"))?;
        let mut out = unpack(answer.column, f.returns, rows)
            .map_err(|e| format!("{upper} ({}): {e}", f.origin))?;
        for r in &mut out {
            if let Err(e) = r {
                *e = format!("{upper} ({}): {e}", f.origin);
            }
        }
        for e in answer.errors {
            // `call_udf` checked that every row it names exists.
            out[e.row as usize] = Err(format!("{upper}: {}", e.message));
        }
        Ok(out)
    }
}

/// A column of values (each NULL or of `ty`'s SQL type, as the SQL converted them).
fn pack(values: &[Value], ty: UdfType) -> Column {
    let mut nulls = Vec::new();
    let mut null_at = |i: usize| nulls.push(i as u32);
    let values = match ty {
        UdfType::Boolean => Values::Boolean(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Bool(b) => *b,
                    _ => {
                        null_at(i);
                        false
                    }
                })
                .collect(),
        ),
        UdfType::Int64 | UdfType::TimestampMs => {
            let list = values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Int(n) | Value::Timestamp(n) => *n,
                    _ => {
                        null_at(i);
                        0
                    }
                })
                .collect();
            if ty == UdfType::Int64 {
                Values::Int64(list)
            } else {
                Values::TimestampMs(list)
            }
        }
        UdfType::Float64 => Values::Float64(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Double(d) => *d,
                    Value::Int(n) => *n as f64,
                    _ => {
                        null_at(i);
                        0.0
                    }
                })
                .collect(),
        ),
        UdfType::Utf8 | UdfType::Binary => {
            let bytes: usize = values
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.len(),
                    _ => 0,
                })
                .sum();
            let mut data = String::with_capacity(bytes);
            let mut ends = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                match v {
                    Value::Str(s) => data.push_str(s),
                    _ => null_at(i),
                }
                ends.push(data.len() as u32);
            }
            if ty == UdfType::Utf8 {
                Values::Utf8(Texts { data, ends })
            } else {
                Values::Binary(Blobs {
                    data: data.into_bytes(),
                    ends,
                })
            }
        }
    };
    Column { nulls, values }
}

/// A module's answer as SQL values: `rows` of them, of the declared type.
fn unpack(column: Column, ty: UdfType, rows: usize) -> Result<Vec<UdfResult>, String> {
    let mut out: Vec<UdfResult> = match (column.values, ty) {
        (Values::Boolean(v), UdfType::Boolean) => {
            v.into_iter().map(|b| Ok(Value::Bool(b))).collect()
        }
        (Values::Int64(v), UdfType::Int64) => v.into_iter().map(|n| Ok(Value::Int(n))).collect(),
        (Values::TimestampMs(v), UdfType::TimestampMs) => {
            v.into_iter().map(|n| Ok(Value::Timestamp(n))).collect()
        }
        (Values::Float64(v), UdfType::Float64) => {
            v.into_iter().map(|d| Ok(Value::Double(d))).collect()
        }
        (Values::Utf8(t), UdfType::Utf8) => {
            let mut start = 0usize;
            t.ends
                .iter()
                .map(|&end| {
                    // `call_udf` checked the offsets (and their character boundaries).
                    let s = t.data[start..end as usize].to_string();
                    start = end as usize;
                    Ok(Value::Str(s))
                })
                .collect()
        }
        (Values::Binary(b), UdfType::Binary) => {
            let mut start = 0usize;
            b.ends
                .iter()
                .map(|&end| {
                    let bytes = &b.data[start..end as usize];
                    start = end as usize;
                    std::str::from_utf8(bytes)
                        .map(|s| Value::Str(s.to_string()))
                        .map_err(|_| "its binary result is not UTF-8".to_string())
                })
                .collect()
        }
        // `call_udf` refused an answer of another type than the declared one.
        _ => return Err(format!("an answer of another type than {ty:?}")),
    };
    debug_assert_eq!(out.len(), rows, "call_udf checked the count");
    for n in column.nulls {
        out[n as usize] = Ok(Value::Null);
    }
    Ok(out)
}
