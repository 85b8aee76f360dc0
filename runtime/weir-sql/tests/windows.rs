//! Windows across batches and time: a MONOTONIC key's group lasts until its value changes
//! (whatever the batches), a row that fails leaves a window as it was, and a stream join's
//! unmatched rows come out when time passes with no input.

use weir_core::batch::{Batch, BatchBuilder, Meta};
use weir_core::process::{Processed, Processor};
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "K", "Mapping": "$.k", "SqlType": "INTEGER"},
                      {"Name": "S", "Mapping": "$.s", "SqlType": "VARCHAR(8)"}]}}]"#;

fn stage(sql: &str) -> SqlStage {
    let config = parse_app_json(INPUTS).unwrap();
    let plan = compile(sql, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    SqlStage::new("windows", plan.into()).unwrap()
}

fn batch(records: &[(i64, &str)]) -> Batch {
    let mut b = BatchBuilder::new();
    for (at, json) in records {
        b.push(
            json.as_bytes(),
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

#[test]
fn a_monotonic_keys_group_spans_batches_and_quiet_time() {
    let mut s = stage(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (K INTEGER, N BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM MONOTONIC(K), COUNT(*) FROM "SOURCE_SQL_STREAM_001" GROUP BY MONOTONIC(K);"#,
    );
    let mut got = Vec::new();
    for (i, k) in [1, 1, 1, 2].into_iter().enumerate() {
        let at = i as i64 * 1000;
        got.extend(rows(
            &s.process(batch(&[(at, &format!(r#"{{"k":{k}}}"#))]), at),
        ));
        // Time passing closes no group of a column.
        got.extend(rows(&s.tick(at + 60_000, at)));
    }
    assert_eq!(got, [r#"{"K":1,"N":3}"#]);
    assert_eq!(rows(&s.flush(0)), [r#"{"K":2,"N":1}"#]);
}

#[test]
fn a_row_that_fails_one_aggregate_leaves_the_others_as_they_were() {
    let mut s = stage(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (HIGH INTEGER, SOME_TRUE BOOLEAN);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM MAX(K) OVER w, ANY(S) OVER w FROM "SOURCE_SQL_STREAM_001"
    WINDOW w AS (RANGE INTERVAL '1' MINUTE PRECEDING);"#,
    );
    // ANY of a string fails the row; its K must not stay in MAX's window.
    let out = s.process(
        batch(&[
            (0, r#"{"k":1}"#),
            (1, r#"{"k":99,"s":"yes"}"#),
            (2, r#"{"k":2}"#),
        ]),
        0,
    );
    assert_eq!(out.failed.len(), 1);
    assert_eq!(
        rows(&out),
        [
            r#"{"HIGH":1,"SOME_TRUE":null}"#,
            r#"{"HIGH":2,"SOME_TRUE":null}"#
        ]
    );
}

#[test]
fn a_left_joins_unmatched_row_comes_out_when_time_passes_without_input() {
    let mut s = stage(
        r#"CREATE OR REPLACE STREAM "A" (K INTEGER);
CREATE OR REPLACE STREAM "B" (K INTEGER);
CREATE OR REPLACE PUMP "PA" AS INSERT INTO "A"
    SELECT STREAM K FROM "SOURCE_SQL_STREAM_001" WHERE S = 'a';
CREATE OR REPLACE PUMP "PB" AS INSERT INTO "B"
    SELECT STREAM K FROM "SOURCE_SQL_STREAM_001" WHERE S = 'b';
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (K INTEGER, M INTEGER);
CREATE OR REPLACE PUMP "J" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM a.K, b.K FROM "A" AS a
    LEFT JOIN "B" OVER (RANGE INTERVAL '5' SECOND PRECEDING) AS b ON a.K = b.K;"#,
    );
    assert!(
        s.tick_interval().is_some(),
        "a join holds rows across batches"
    );
    assert!(s.stateful());
    assert!(rows(&s.process(batch(&[(0, r#"{"k":7,"s":"a"}"#)]), 0)).is_empty());
    // No more input: once the clock is past the order's ROWTIME (and the quiet time), it goes.
    assert_eq!(rows(&s.tick(10_000, 0)), [r#"{"K":7,"M":null}"#]);
}
