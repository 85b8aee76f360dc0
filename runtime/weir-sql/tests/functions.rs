//! The functions whose arguments are compiled: REGEX_REPLACE's and SIMILAR TO's patterns and
//! the date formats of TIMESTAMP_TO_CHAR and CHAR_TO_TIMESTAMP. A literal is compiled with the
//! plan, and a bad one refused with its line and column; one from the row is compiled per
//! row, and a bad one fails that row only. And MONOTONIC, which GROUP BY takes as its
//! argument; the functions that fail a row on a bad argument (LOG10, OVERLAY); and those of
//! the clock, which read the time the stage was first called with.

use weir_core::batch::{BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "S", "Mapping": "$.s", "SqlType": "VARCHAR(32)"},
                      {"Name": "P", "Mapping": "$.p", "SqlType": "VARCHAR(32)"}]}}]"#;

mod common;

fn app(columns: &str, select: &str) -> String {
    common::app(columns, select)
}

fn compile_error(sql: &str) -> String {
    common::compile_error(INPUTS, sql)
}

fn run<R: AsRef<str>>(sql: &str, records: &[R]) -> (Vec<String>, usize) {
    common::run(INPUTS, sql, records)
}

const FROM: &str = "FROM \"SOURCE_SQL_STREAM_001\"";

#[test]
fn a_bad_literal_is_refused_with_its_line_and_column() {
    let err = compile_error(&app(
        "X VARCHAR(32)",
        &format!("SELECT STREAM REGEX_REPLACE(S, '(a', 'b', 1, 0)\n{FROM}"),
    ));
    assert!(err.starts_with("line 3, column 32:"), "{err}");
    assert!(err.contains("regular expression"), "{err}");
    let err = compile_error(&app(
        "X VARCHAR(32)",
        &format!("SELECT STREAM S {FROM}\nWHERE S SIMILAR TO\n'[ab'"),
    ));
    assert!(err.starts_with("line 5, column 1:"), "{err}");
    assert!(err.contains("SIMILAR TO"), "{err}");
    let err = compile_error(&app(
        "X VARCHAR(32)",
        &format!("SELECT STREAM TIMESTAMP_TO_CHAR(\n'yyyy-MM-dd T', ROWTIME)\n{FROM}"),
    ));
    assert!(err.starts_with("line 4, column 1:"), "{err}");
    assert!(err.contains("date format"), "{err}");
    let err = compile_error(&app(
        "X TIMESTAMP",
        &format!("SELECT STREAM CHAR_TO_TIMESTAMP('\''yyyy', S)\n{FROM}"),
    ));
    assert!(err.contains("unterminated quote"), "{err}");
    let err = compile_error(&app(
        "X DATE",
        &format!("SELECT STREAM CHAR_TO_DATE(\n'yyyy-MM-dd T', S)\n{FROM}"),
    ));
    assert!(err.starts_with("line 4, column 1:"), "{err}");
    assert!(err.contains("date format"), "{err}");
    // REGEX_REPLACE takes its five arguments, as in KDA.
    let err = compile_error(&app(
        "X VARCHAR(32)",
        &format!("SELECT STREAM REGEX_REPLACE(S, 'a', 'b')\n{FROM}"),
    ));
    assert!(err.contains("does not take 3 argument"), "{err}");
}

#[test]
fn a_bad_pattern_or_format_from_the_row_fails_that_row() {
    let records = [
        r#"{"s": "abc", "p": "b"}"#,
        r#"{"s": "abc", "p": "("}"#,
        r#"{"s": "abc"}"#,
    ];
    let (rows, failed) = run(
        &app(
            "X VARCHAR(32)",
            &format!("SELECT STREAM REGEX_REPLACE(S, P, 'x', 1, 0) {FROM}"),
        ),
        &records,
    );
    assert_eq!(rows, [r#"{"X":"axc"}"#, r#"{"X":null}"#]);
    assert_eq!(failed, 1);
    let (rows, failed) = run(
        &app(
            "X BOOLEAN",
            &format!("SELECT STREAM S SIMILAR TO '%' || P || '%' {FROM}"),
        ),
        &records,
    );
    assert_eq!(rows, [r#"{"X":true}"#, r#"{"X":null}"#]);
    assert_eq!(failed, 1);
    let (rows, failed) = run(
        &app(
            "X TIMESTAMP",
            &format!("SELECT STREAM CHAR_TO_TIMESTAMP(P, S) {FROM}"),
        ),
        &[
            r#"{"s": "2024-05-01 10:30", "p": "yyyy-MM-dd HH:mm"}"#,
            r#"{"s": "1 May 2024", "p": "yyyy-MM-dd"}"#,
            r#"{"s": "01/05/2024", "p": "dd/MM/yyyy"}"#,
        ],
    );
    assert_eq!(
        rows,
        [
            r#"{"X":"2024-05-01 10:30:00.000"}"#,
            r#"{"X":"2024-05-01 00:00:00.000"}"#
        ]
    );
    assert_eq!(failed, 1);
}

#[test]
fn timestamps_go_to_text_and_back() {
    let (rows, failed) = run(
        &app(
            "T VARCHAR(32), BACK TIMESTAMP, MS BIGINT",
            &format!(
                "SELECT STREAM TIMESTAMP_TO_CHAR('yyyy-MM-dd''T''HH:mm:ss.SSS', ROWTIME),
                 CHAR_TO_TIMESTAMP('yyyy-MM-dd''T''HH:mm:ss.SSS',
                     TIMESTAMP_TO_CHAR('yyyy-MM-dd''T''HH:mm:ss.SSS', ROWTIME)),
                 TSDIFF(ROWTIME, ROWTIME + INTERVAL '1' SECOND)
                 {FROM}"
            ),
        ),
        &[r#"{"s": "a"}"#, r#"{"s": "b"}"#],
    );
    assert_eq!(failed, 0);
    assert_eq!(
        rows,
        [
            r#"{"T":"1970-01-01T00:00:00.000","BACK":"1970-01-01 00:00:00.000","MS":1000}"#,
            r#"{"T":"1970-01-01T00:00:01.000","BACK":"1970-01-01 00:00:01.000","MS":1000}"#
        ]
    );
}

#[test]
fn monotonic_is_its_argument_to_group_by() {
    let records: Vec<String> = (0..12).map(|i| format!(r#"{{"s": "r{i}"}}"#)).collect();
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    let window = "STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '10' SECOND)";
    for (item, key) in [
        (
            format!("MONOTONIC({window})"),
            format!("MONOTONIC({window})"),
        ),
        (window.to_string(), format!("MONOTONIC({window})")),
        (format!("MONOTONIC({window})"), window.to_string()),
    ] {
        let (rows, failed) = run(
            &app(
                "W TIMESTAMP, N BIGINT",
                &format!("SELECT STREAM {item}, COUNT(*) {FROM} GROUP BY {key}"),
            ),
            &records,
        );
        assert_eq!(failed, 0);
        assert_eq!(
            rows,
            [
                r#"{"W":"1970-01-01 00:00:00.000","N":10}"#,
                r#"{"W":"1970-01-01 00:00:10.000","N":2}"#
            ],
            "{item} / {key}"
        );
    }
    // A column declared monotonic is the window when there is none of ROWTIME: a group per
    // run of equal values, out when the next value comes.
    let (rows, failed) = run(
        &app(
            "S VARCHAR(32), N BIGINT",
            &format!("SELECT STREAM MONOTONIC(S), COUNT(*) {FROM} GROUP BY MONOTONIC(S)"),
        ),
        &[r#"{"s": "a"}"#, r#"{"s": "a"}"#, r#"{"s": "b"}"#],
    );
    assert_eq!(failed, 0);
    assert_eq!(rows, [r#"{"S":"a","N":2}"#, r#"{"S":"b","N":1}"#]);
    // A plain column is not: a group of it would never end.
    let err = compile_error(&app(
        "S VARCHAR(32), N BIGINT",
        &format!("SELECT STREAM S, COUNT(*) {FROM} GROUP BY S"),
    ));
    assert!(err.contains("window of ROWTIME"), "{err}");
}

#[test]
fn log10_and_overlay_fail_only_the_rows_they_cannot_take() {
    let (rows, failed) = run(
        &app(
            "X DOUBLE",
            &format!("SELECT STREAM LOG10(CAST(S AS DOUBLE)) {FROM}"),
        ),
        &[
            r#"{"s": "100"}"#,
            r#"{"s": "0"}"#,
            r#"{"s": "-5"}"#,
            r#"{}"#,
        ],
    );
    assert_eq!(rows, [r#"{"X":2.0}"#, r#"{"X":null}"#]);
    assert_eq!(failed, 2);
    let (rows, failed) = run(
        &app(
            "X VARCHAR(32)",
            &format!("SELECT STREAM OVERLAY(S PLACING 'x' FROM 2 FOR CAST(P AS INTEGER)) {FROM}"),
        ),
        &[
            r#"{"s": "abc", "p": "1"}"#,
            r#"{"s": "abc", "p": "-1"}"#,
            r#"{"s": "ñandú", "p": "3"}"#,
            r#"{"s": "abc"}"#,
        ],
    );
    assert_eq!(rows, [r#"{"X":"axc"}"#, r#"{"X":"ñxú"}"#, r#"{"X":null}"#]);
    assert_eq!(failed, 1);
}

/// A record `{"s": "a"}` arriving at `at`.
fn one(at: i64) -> weir_core::batch::Batch {
    let mut b = BatchBuilder::new();
    b.push(
        r#"{"s": "a"}"#.as_bytes(),
        Meta {
            arrival_ms: at,
            ..Meta::default()
        },
    );
    b.finish()
}

fn rows_of(p: weir_core::process::Processed) -> Vec<String> {
    p.records
        .iter()
        .map(|r| String::from_utf8_lossy(r.data()).into_owned())
        .collect()
}

#[test]
fn the_clock_functions_read_the_time_the_application_started() {
    let config = parse_app_json(INPUTS).unwrap();
    let sql = app(
        "TS TIMESTAMP, LTS TIMESTAMP, D DATE, T TIME, LT TIME, SAME BOOLEAN, ROW_TIME TIMESTAMP",
        &format!(
            "SELECT STREAM CURRENT_TIMESTAMP, LOCALTIMESTAMP, CURRENT_DATE, CURRENT_TIME,
                 LOCALTIME, CURRENT_DATE = CAST(CURRENT_TIMESTAMP AS DATE)
                     AND CURRENT_TIME = CAST(LOCALTIMESTAMP AS TIME),
                 CURRENT_ROW_TIMESTAMP
             {FROM}"
        ),
    );
    let start = weir_sql::value::parse_timestamp("2024-05-01 10:11:12.345").unwrap();
    let want = |row_time: &str| {
        format!(
            r#"{{"TS":"2024-05-01 10:11:12.345","LTS":"2024-05-01 10:11:12.345","D":"2024-05-01 00:00:00.000","T":"1970-01-01 10:11:12.345","LT":"1970-01-01 10:11:12.345","SAME":true,"ROW_TIME":"{row_time}"}}"#
        )
    };
    let stage = || {
        let plan = compile(&sql, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
        SqlStage::new("clock", plan.into()).unwrap()
    };
    let mut s = stage();
    assert_eq!(
        rows_of(s.process(one(1_000), start)),
        [want("1970-01-01 00:00:01.000")]
    );
    // "LOCALTIMESTAMP, LOCALTIME, CURRENT_DATE, and CURRENT_TIMESTAMP all produce results
    // which are set to values at the time the query first executes": a day later, the same;
    // CURRENT_ROW_TIMESTAMP is each row's.
    assert_eq!(
        rows_of(s.process(one(2_000), start + 86_400_000)),
        [want("1970-01-01 00:00:02.000")]
    );
    // The first call may be a tick.
    let mut s = stage();
    assert!(rows_of(s.tick(start, i64::MIN)).is_empty());
    assert_eq!(
        rows_of(s.process(one(start + 5_000), start + 5_000)),
        [want("2024-05-01 10:11:17.345")]
    );
}
