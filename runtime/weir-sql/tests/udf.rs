//! User-defined functions as the SQL sees them: resolved by name with their declared types,
//! called once per batch and call site (never per row), and failing only the rows they fail.

use std::sync::{Arc, Mutex};

use weir_core::batch::{Batch, BatchBuilder, Meta};
use weir_core::process::{Processed, Processor};
use weir_sql::value::Value;
use weir_sql::{
    compile, parse_app_json, Options, SqlError, SqlStage, UdfResult, UdfSignature, UdfType, Udfs,
};

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "TICKER", "Mapping": "$.ticker", "SqlType": "VARCHAR(8)"},
                      {"Name": "PRICE", "Mapping": "$.price", "SqlType": "INTEGER"}]}}]"#;

fn signatures() -> Vec<UdfSignature> {
    let sig = |name: &str, args: Vec<UdfType>, returns| UdfSignature {
        name: name.into(),
        args,
        returns,
        origin: "test.wasm".into(),
    };
    vec![
        sig("TWICE", vec![UdfType::Float64], UdfType::Float64),
        sig("SHOUT", vec![UdfType::Utf8], UdfType::Utf8),
        sig("BROKEN", vec![UdfType::Int64], UdfType::Int64),
    ]
}

/// Native stand-ins for a module's functions, logging every call (function, rows).
struct Fake {
    calls: Arc<Mutex<Vec<(usize, usize)>>>,
}

impl Udfs for Fake {
    fn call(
        &mut self,
        function: usize,
        rows: usize,
        args: &[Vec<Value>],
    ) -> Result<Vec<UdfResult>, String> {
        self.calls.lock().unwrap().push((function, rows));
        let col = &args[0];
        assert_eq!(col.len(), rows, "one value per row");
        Ok(match function {
            0 => col
                .iter()
                .map(|v| match v {
                    Value::Double(d) => Ok(Value::Double(d * 2.0)),
                    Value::Null => Ok(Value::Null),
                    other => Err(format!("TWICE got {other:?}")),
                })
                .collect(),
            1 => col
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(Value::Str(s.to_uppercase())),
                    _ => Ok(Value::Null),
                })
                .collect(),
            // Fails the odd numbers, and the whole call for 13.
            _ => {
                if col.contains(&Value::Int(13)) {
                    return Err("BROKEN: unlucky batch".into());
                }
                col.iter()
                    .map(|v| match v {
                        Value::Int(n) if n % 2 == 1 => Err(format!("BROKEN: {n} is odd")),
                        v => Ok(v.clone()),
                    })
                    .collect()
            }
        })
    }
}

type Calls = Arc<Mutex<Vec<(usize, usize)>>>;

fn try_stage(sql: &str) -> Result<(SqlStage, Calls), SqlError> {
    let config = parse_app_json(INPUTS).unwrap();
    let options = Options {
        udfs: signatures(),
        ..Options::default()
    };
    let plan = compile(sql, &config, &options)?;
    let calls: Calls = Arc::default();
    let stage = SqlStage::new("udf", plan.into())
        .unwrap()
        .with_udfs(Box::new(Fake {
            calls: calls.clone(),
        }));
    Ok((stage, calls))
}

fn stage(sql: &str) -> (SqlStage, Calls) {
    try_stage(sql).unwrap_or_else(|e| panic!("{e}"))
}

fn batch(records: &[(i64, &str, i64)]) -> Batch {
    let mut b = BatchBuilder::new();
    for (at, ticker, price) in records {
        b.push(
            format!(r#"{{"ticker":"{ticker}","price":{price}}}"#).as_bytes(),
            Meta {
                arrival_ms: *at,
                ..Meta::default()
            },
        );
    }
    b.finish()
}

fn rows(p: &Processed) -> Vec<String> {
    p.records
        .iter()
        .map(|r| String::from_utf8(r.data().to_vec()).unwrap())
        .collect()
}

const MAP: &str = r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (T VARCHAR(8), P DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM shout(TICKER), TWICE(PRICE) FROM "SOURCE_SQL_STREAM_001" WHERE PRICE > 10;"#;

#[test]
fn each_call_site_is_called_once_per_batch_with_the_rows_that_pass_the_filter() {
    let (mut s, calls) = stage(MAP);
    let out = s.process(
        batch(&[(0, "amzn", 20), (1, "msft", 5), (2, "goog", 30)]),
        0,
    );
    assert_eq!(
        rows(&out),
        [r#"{"T":"AMZN","P":40.0}"#, r#"{"T":"GOOG","P":60.0}"#]
    );
    // SHOUT and TWICE, once each, over the two rows the WHERE let through.
    let mut got = calls.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, [(0, 2), (1, 2)]);
}

#[test]
fn a_row_the_function_fails_goes_to_the_error_output_and_the_others_go_on() {
    let (mut s, _) = stage(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (P BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM BROKEN(PRICE) FROM "SOURCE_SQL_STREAM_001";"#,
    );
    let out = s.process(batch(&[(0, "a", 2), (1, "b", 3), (2, "c", 4)]), 0);
    assert_eq!(rows(&out), [r#"{"P":2}"#, r#"{"P":4}"#]);
    assert_eq!(out.failed.len(), 1);
    assert!(
        out.failed[0].message.contains("3 is odd"),
        "{}",
        out.failed[0].message
    );
    // A call that fails as a whole fails each of its rows.
    let out = s.process(batch(&[(3, "a", 2), (4, "b", 13)]), 0);
    assert!(rows(&out).is_empty());
    assert_eq!(out.failed.len(), 2);
    assert!(out
        .failed
        .iter()
        .all(|f| f.message.contains("unlucky batch")));
}

#[test]
fn nested_calls_and_calls_in_a_window_row_see_their_arguments() {
    let (mut s, calls) = stage(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (T VARCHAR(8), P DOUBLE, Q DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM SHOUT(TICKER), TWICE(TWICE(SUM(PRICE))), MAX(TWICE(PRICE))
    FROM "SOURCE_SQL_STREAM_001"
    GROUP BY TICKER, FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND);"#,
    );
    let mut out = rows(&s.process(batch(&[(0, "x", 1), (10, "x", 2), (20, "y", 5)]), 0));
    // TWICE(PRICE) ran once for the three rows, before the window closed.
    assert_eq!(calls.lock().unwrap().as_slice(), [(0, 3)]);
    out.extend(rows(&s.flush(0)));
    out.sort();
    assert_eq!(
        out,
        [
            r#"{"T":"X","P":12.0,"Q":4.0}"#,
            r#"{"T":"Y","P":20.0,"Q":10.0}"#
        ]
    );
    // The window's two rows: each of TWICE(TWICE(SUM)) called once for both, and SHOUT too.
    let mut calls = calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls, [(0, 2), (0, 2), (0, 3), (1, 2)]);
}

#[test]
fn a_pump_after_a_window_calls_its_functions_on_the_windows_rows() {
    let (mut s, calls) = stage(
        r#"CREATE OR REPLACE STREAM "W" (T VARCHAR(8), N BIGINT);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (T VARCHAR(8), N BIGINT);
CREATE OR REPLACE PUMP "COUNTER" AS INSERT INTO "W"
    SELECT STREAM TICKER, COUNT(*) FROM "SOURCE_SQL_STREAM_001"
    GROUP BY TICKER, FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND);
CREATE OR REPLACE PUMP "NAMER" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM SHOUT(T), N FROM "W";"#,
    );
    assert!(rows(&s.process(batch(&[(0, "a", 1), (1, "b", 1), (2, "a", 1)]), 0)).is_empty());
    // The next second's row closes the first second: its two rows go through SHOUT at once.
    let mut got = rows(&s.process(batch(&[(1000, "c", 1)]), 0));
    got.sort();
    assert_eq!(got, [r#"{"T":"A","N":2}"#, r#"{"T":"B","N":1}"#]);
    assert_eq!(calls.lock().unwrap().as_slice(), [(1, 2)]);
}

#[test]
fn unknown_functions_wrong_arity_and_taken_names_are_compile_errors() {
    let err = |sql: &str| match try_stage(sql) {
        Ok(_) => panic!("compiled: {sql}"),
        Err(e) => e.to_string(),
    };
    let e = err(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (P DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM THRICE(PRICE) FROM "SOURCE_SQL_STREAM_001";"#,
    );
    assert!(e.contains("unknown function `THRICE`"), "{e}");
    assert!(e.contains("TWICE, SHOUT, BROKEN"), "{e}");
    let e = err(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (P DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM TWICE(PRICE, 2) FROM "SOURCE_SQL_STREAM_001";"#,
    );
    assert!(e.contains("takes 1 argument(s), not 2"), "{e}");
    assert!(e.contains("line 3, column 19"), "names the line: {e}");

    let config = parse_app_json(INPUTS).unwrap();
    let mut udfs = signatures();
    udfs[0].name = "UPPER".into();
    let e = compile(
        MAP,
        &config,
        &Options {
            udfs,
            ..Options::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`UPPER` has the name of a SQL function"), "{e}");
}
