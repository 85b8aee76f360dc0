//! What the function tests share: an application of one pump, compiled against their inputs
//! and run on records a second apart.

use weir_core::batch::{BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

/// An application of one output stream and one pump; the pump's select starts on line 3.
pub fn app(columns: &str, select: &str) -> String {
    format!(
        "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" ({columns});\n\
         CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n\
         {select};"
    )
}

/// Why `sql` does not compile against `inputs` (it must not).
pub fn compile_error(inputs: &str, sql: &str) -> String {
    let config = parse_app_json(inputs).unwrap();
    match compile(sql, &config, &Options::default()) {
        Ok(_) => panic!("compiled: {sql}"),
        Err(e) => e.to_string(),
    }
}

/// Runs an application on records arriving a second apart: the rows out (JSON) and how many
/// records failed.
pub fn run<R: AsRef<str>>(inputs: &str, sql: &str, records: &[R]) -> (Vec<String>, usize) {
    let config = parse_app_json(inputs).unwrap();
    let plan = compile(sql, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut stage = SqlStage::new("test", plan.into()).unwrap();
    let mut b = BatchBuilder::new();
    for (i, r) in records.iter().enumerate() {
        b.push(
            r.as_ref().as_bytes(),
            Meta {
                arrival_ms: 1_000 * i as i64,
                ..Meta::default()
            },
        );
    }
    let p = stage.process(b.finish(), 0);
    let f = stage.flush(0);
    let rows = p
        .records
        .iter()
        .chain(f.records.iter())
        .map(|r| String::from_utf8_lossy(r.data()).into_owned())
        .collect();
    (rows, p.failed.len() + f.failed.len())
}
