//! RANDOM_CUT_FOREST as the Developer Guide's anomaly-detection application uses it: scores
//! through a CURSOR into a stream, then an ORDER BY of each second by score. The scores are a
//! model's, not a table's, so what is checked is what a user relies on: every row comes out,
//! once, with its columns; the forest warms up (score 0) before scoring; clear outliers score
//! above every ordinary row; and each second's rows come out highest score first.

use weir_core::batch::{BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const APP: &str = r#"
CREATE OR REPLACE STREAM "TEMP_STREAM" (
        "heartRate"        INTEGER,
        "rateType"         varchar(20),
        "ANOMALY_SCORE"    DOUBLE);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
        "heartRate"        INTEGER,
        "rateType"         varchar(20),
        "ANOMALY_SCORE"    DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "TEMP_STREAM"
      SELECT STREAM "heartRate", "rateType", ANOMALY_SCORE
      FROM TABLE(RANDOM_CUT_FOREST(
              CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001")));
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM * FROM "TEMP_STREAM"
      ORDER BY FLOOR("TEMP_STREAM".ROWTIME TO SECOND), ANOMALY_SCORE DESC;
"#;

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordEncoding": "UTF-8",
    "RecordColumns": [
        {"Name": "heartRate", "Mapping": "$.heartRate", "SqlType": "INTEGER"},
        {"Name": "rateType", "Mapping": "$.rateType", "SqlType": "VARCHAR(20)"}]}}]"#;

#[test]
fn outliers_score_highest_and_each_second_comes_out_by_score() {
    let config = parse_app_json(INPUTS).unwrap();
    let plan = compile(APP, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut stage = SqlStage::new("rcf", plan.into()).unwrap();
    // 2,000 ordinary heart rates (60-80), ten a second, and a spike of 180 every 200 rows.
    let mut x: u64 = 7;
    let mut b = BatchBuilder::new();
    let mut spikes = 0;
    for i in 0..2000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (rate, kind) = if i >= 1000 && i % 200 == 0 {
            spikes += 1;
            (180, "HIGH")
        } else {
            (60 + (x >> 59) as i64 + ((x >> 40) % 5) as i64, "NORMAL")
        };
        let data = format!(r#"{{"heartRate":{rate},"rateType":"{kind}"}}"#);
        b.push(
            data.as_bytes(),
            Meta {
                arrival_ms: 1_714_557_600_000 + i as i64 * 100,
                ..Meta::default()
            },
        );
    }
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for p in [stage.process(b.finish(), 0), stage.flush(0)] {
        assert!(p.failed.is_empty(), "{:?}", p.failed);
        for r in p.records.iter() {
            rows.push(serde_json::from_slice(r.data()).unwrap());
        }
    }
    assert_eq!(rows.len(), 2000, "every row comes out once");
    let score = |r: &serde_json::Value| r["ANOMALY_SCORE"].as_f64().unwrap();
    // The forest warms up on the first rows: they score 0.
    assert_eq!(score(&rows[0]), 0.0);
    let (high, normal): (Vec<_>, Vec<_>) =
        rows[1000..].iter().partition(|r| r["rateType"] == "HIGH");
    assert_eq!(high.len(), spikes);
    let top_normal = normal.iter().map(|r| score(r)).fold(0.0, f64::max);
    let low_high = high.iter().map(|r| score(r)).fold(f64::MAX, f64::min);
    assert!(
        low_high > top_normal,
        "every spike ({low_high}) above every ordinary row ({top_normal})"
    );
    // Ten rows a second, each second's highest score first.
    for second in rows.chunks(10) {
        let scores: Vec<f64> = second.iter().map(score).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }
}

#[test]
fn the_forest_takes_kda_parameters_and_refuses_others() {
    let config = parse_app_json(INPUTS).unwrap();
    let with = |args: &str| {
        let sql = APP.replace(
            r#"CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"))"#,
            &format!(r#"CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"){args})"#),
        );
        compile(&sql, &config, &Options::default()).map(|_| ())
    };
    assert!(with(", 50, 128, 1000, 4").is_ok());
    let err = with(", 5000").unwrap_err().to_string();
    assert!(err.contains("from 1 to 1000"), "{err}");
    let err = with(", 1, 256, 100, 1, 9").unwrap_err().to_string();
    assert!(err.contains("at most 4 parameters"), "{err}");
}
