//! What untrusted SQL cannot do: loop pumps, nest or chain expressions past the limit, or
//! overflow arithmetic on values from records. Each is refused (or fails the row), never a
//! crash of the process.

use weir_core::batch::{BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "A", "Mapping": "$.a", "SqlType": "BIGINT"}]}}]"#;

fn app(select: &str) -> String {
    format!(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (X BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM" {select};"#
    )
}

fn run(sql: &str, records: &[&str]) -> Result<(usize, usize), String> {
    let config = parse_app_json(INPUTS).unwrap();
    let plan = compile(sql, &config, &Options::default()).map_err(|e| e.to_string())?;
    let mut stage = SqlStage::new("limits", plan.into())?;
    let mut b = BatchBuilder::new();
    for (i, r) in records.iter().enumerate() {
        b.push(
            r.as_bytes(),
            Meta {
                arrival_ms: i as i64,
                ..Meta::default()
            },
        );
    }
    let p = stage.process(b.finish(), 0);
    let f = stage.flush(0);
    Ok((
        p.records.len() + f.records.len(),
        p.failed.len() + f.failed.len(),
    ))
}

#[test]
fn a_long_chain_runs_and_a_longer_one_is_refused() {
    let chain = |n: usize| {
        let terms: Vec<String> = (0..n).map(|i| format!("A = {i}")).collect();
        app(&format!(
            r#"SELECT STREAM A FROM "SOURCE_SQL_STREAM_001" WHERE {}"#,
            terms.join(" OR ")
        ))
    };
    assert_eq!(
        run(&chain(120), &[r#"{"a":119}"#, r#"{"a":120}"#]),
        Ok((1, 0))
    );
    let err = run(&chain(20_000), &[]).unwrap_err();
    assert!(err.contains("too long or nested too deeply"), "{err}");
    let sum: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let err = run(
        &app(&format!(
            r#"SELECT STREAM {} FROM "SOURCE_SQL_STREAM_001""#,
            sum.join(" + ")
        )),
        &[],
    )
    .unwrap_err();
    assert!(err.contains("too long"), "{err}");
}

#[test]
fn pumps_that_loop_are_refused() {
    let sql = r#"CREATE OR REPLACE STREAM "S1" (A BIGINT);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (A BIGINT);
CREATE OR REPLACE PUMP "IN" AS INSERT INTO "S1" SELECT STREAM A FROM "SOURCE_SQL_STREAM_001";
CREATE OR REPLACE PUMP "OUT" AS INSERT INTO "DESTINATION_SQL_STREAM" SELECT STREAM A FROM "S1";
CREATE OR REPLACE PUMP "BACK" AS INSERT INTO "S1" SELECT STREAM A FROM "DESTINATION_SQL_STREAM";"#;
    let err = run(sql, &[]).unwrap_err();
    assert!(err.contains("closes a loop"), "{err}");
    let own = app(r#"SELECT STREAM X FROM "DESTINATION_SQL_STREAM""#);
    assert!(run(&own, &[]).unwrap_err().contains("closes a loop"));
}

#[test]
fn a_stream_replaced_after_a_pump_uses_it_is_refused() {
    let sql = format!(
        "{}\nCREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (X BIGINT, Y BIGINT);",
        app(r#"SELECT STREAM A FROM "SOURCE_SQL_STREAM_001""#)
    );
    assert!(run(&sql, &[]).unwrap_err().contains("define streams first"));
}

#[test]
fn overflowing_arithmetic_fails_the_row_not_the_process() {
    let min = i64::MIN.to_string();
    let max = i64::MAX.to_string();
    let records = [format!(r#"{{"a":{min}}}"#), format!(r#"{{"a":{max}}}"#)];
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    for expr in [
        "STEP(A BY 1000)",
        "-A",
        "ABS(A)",
        "A + A",
        "A * 2",
        "A / -1",
        "MOD(A, -1)",
        "FLOOR(A)",
        "UNIX_TIMESTAMP(CAST(A AS TIMESTAMP))",
    ] {
        let sql = app(&format!(
            r#"SELECT STREAM {expr} FROM "SOURCE_SQL_STREAM_001""#
        ));
        let (ok, failed) = run(&sql, &records).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(ok + failed, 2, "{expr}: every record accounted for");
    }
    // Intervals and timestamps from records, too.
    for expr in [
        "UNIX_TIMESTAMP(TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '0.001' SECOND * A)",
        "UNIX_TIMESTAMP(FLOOR(TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '0.001' SECOND * A TO MINUTE))",
    ] {
        let sql = app(&format!(r#"SELECT STREAM {expr} FROM "SOURCE_SQL_STREAM_001""#));
        let (ok, failed) = run(&sql, &records).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(ok + failed, 2, "{expr}");
    }
    // A sliding sum whose rows cancel out, and a ROWS frame past any sense.
    let slide = app(r#"SELECT STREAM SUM(A) OVER (ROWS 1 PRECEDING) FROM "SOURCE_SQL_STREAM_001""#);
    let recs = [
        format!(r#"{{"a":-{max}}}"#),
        format!(r#"{{"a":{max}}}"#),
        format!(r#"{{"a":{max}}}"#),
    ];
    let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
    let (ok, failed) = run(&slide, &recs).unwrap();
    assert_eq!(ok + failed, 3);
    let huge = app(
        r#"SELECT STREAM COUNT(*) OVER (ROWS 18446744073709551615 PRECEDING) FROM "SOURCE_SQL_STREAM_001""#,
    );
    assert!(run(&huge, &[]).is_err());
}
