//! When rows come out: a window closes as soon as ROWTIME passes its end, whatever rows pass
//! its filter, and the end of input lets every row out, in whatever order pumps were created.

use weir_core::batch::{Batch, BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "PRICE", "Mapping": "$.price", "SqlType": "DOUBLE"}]}}]"#;

fn stage(sql: &str) -> SqlStage {
    let config = parse_app_json(INPUTS).unwrap();
    let plan = compile(sql, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    SqlStage::new("timing", plan.into()).unwrap()
}

/// Records `{"price": p}` arriving at the given milliseconds.
fn batch(records: &[(i64, f64)]) -> Batch {
    let mut b = BatchBuilder::new();
    for (at, price) in records {
        b.push(
            format!(r#"{{"price":{price}}}"#).as_bytes(),
            Meta {
                arrival_ms: *at,
                ..Meta::default()
            },
        );
    }
    b.finish()
}

fn rows(p: weir_core::process::Processed) -> Vec<String> {
    p.records
        .iter()
        .map(|r| String::from_utf8(r.data().to_vec()).unwrap())
        .collect()
}

#[test]
fn a_window_closes_when_rowtime_passes_it_even_if_no_later_row_passes_its_filter() {
    let mut s = stage(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (N BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM COUNT(*) FROM "SOURCE_SQL_STREAM_001" WHERE PRICE > 100
    GROUP BY FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND);"#,
    );
    assert!(rows(s.process(batch(&[(100, 500.0), (200, 600.0)]), 0)).is_empty());
    // Cheap records of the next second: none passes the filter, but the first second is over.
    assert_eq!(
        rows(s.process(batch(&[(1100, 1.0), (1200, 2.0)]), 0)),
        [r#"{"N":2}"#]
    );
}

#[test]
fn the_end_of_input_lets_out_rows_a_later_created_pump_hands_an_earlier_one() {
    // SORTER is created before COUNTER, whose window rows it sorts.
    let mut s = stage(
        r#"CREATE OR REPLACE STREAM "W" (N BIGINT);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (N BIGINT);
CREATE OR REPLACE PUMP "SORTER" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM N FROM "W" ORDER BY FLOOR("W".ROWTIME TO MINUTE), N DESC;
CREATE OR REPLACE PUMP "COUNTER" AS INSERT INTO "W"
    SELECT STREAM COUNT(*) FROM "SOURCE_SQL_STREAM_001"
    GROUP BY FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND);"#,
    );
    let mut got = rows(s.process(batch(&[(0, 1.0), (1000, 1.0), (1500, 1.0)]), 0));
    got.extend(rows(s.flush(0)));
    // Both seconds' counts, in the minute's order: highest first.
    assert_eq!(got, [r#"{"N":2}"#, r#"{"N":1}"#]);
}

#[test]
fn a_descending_order_puts_null_last() {
    let mut s = stage(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (P DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM PRICE FROM "SOURCE_SQL_STREAM_001"
    ORDER BY FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND), PRICE DESC;"#,
    );
    let mut b = BatchBuilder::new();
    for (at, data) in [(0, r#"{"price":1.5}"#), (1, "{}"), (2, r#"{"price":2.5}"#)] {
        b.push(
            data.as_bytes(),
            Meta {
                arrival_ms: at,
                ..Meta::default()
            },
        );
    }
    let mut got = rows(s.process(b.finish(), 0));
    got.extend(rows(s.flush(0)));
    assert_eq!(got, [r#"{"P":2.5}"#, r#"{"P":1.5}"#, r#"{"P":null}"#]);
}
