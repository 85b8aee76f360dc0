//! RANDOM_CUT_FOREST as the Developer Guide's anomaly-detection application uses it: scores
//! through a CURSOR into a stream, then an ORDER BY of each second by score. The scores are a
//! model's, not a table's, so what is checked is what a user relies on: every row comes out,
//! once, with its columns; the forest warms up (score 0) before scoring; clear outliers score
//! above every ordinary row; and each second's rows come out highest score first.
//! RANDOM_CUT_FOREST_WITH_EXPLANATION is the same forest, explained: every row's explanation
//! names each numeric column, its attributions add up to the score, spikes are HIGH or LOW
//! as they are, and the scores are the unexplained forest's.

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

// RANDOM_CUT_FOREST_WITH_EXPLANATION, as the Developer Guide's blood-pressure application
// calls it (without its ORDER BY, so that rows come out in the order they came).

const EXPLAINED: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
        "Systolic"                  INTEGER,
        "Diastolic"                 INTEGER,
        "BloodPressureLevel"        varchar(20),
        "ANOMALY_SCORE"             DOUBLE,
        "ANOMALY_EXPLANATION"       varchar(512));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM "Systolic", "Diastolic", "BloodPressureLevel", ANOMALY_SCORE, ANOMALY_EXPLANATION
      FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
              CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1, true));
"#;

/// The same forest without the explanation.
const SCORED: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
        "Systolic"                  INTEGER,
        "Diastolic"                 INTEGER,
        "BloodPressureLevel"        varchar(20),
        "ANOMALY_SCORE"             DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM "Systolic", "Diastolic", "BloodPressureLevel", ANOMALY_SCORE
      FROM TABLE(RANDOM_CUT_FOREST(
              CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1));
"#;

const PRESSURE: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordEncoding": "UTF-8",
    "RecordColumns": [
        {"Name": "Systolic", "Mapping": "$.Systolic", "SqlType": "INTEGER"},
        {"Name": "Diastolic", "Mapping": "$.Diastolic", "SqlType": "INTEGER"},
        {"Name": "BloodPressureLevel", "Mapping": "$.BloodPressureLevel", "SqlType": "VARCHAR(20)"}]}}]"#;

/// `n` blood pressures, ten a second: ordinary ones (systolic 90-120, diastolic 60-80), and
/// from the 1000th on, every 100th a spike, HIGH and LOW in turn, each further out than the
/// last of its kind (above, or below, every row before it).
fn pressures(n: usize) -> Vec<(i64, i64, &'static str)> {
    let mut x: u64 = 11;
    let mut out = Vec::new();
    let mut spikes = 0;
    for i in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if i >= 1000 && i % 100 == 0 {
            spikes += 1;
            if spikes % 2 == 1 {
                out.push((190 + spikes, 140 + spikes, "HIGH"));
            } else {
                out.push((50 - spikes, 30 - spikes, "LOW"));
            }
        } else {
            let systolic = 90 + ((x >> 33) % 31) as i64;
            let diastolic = 60 + ((x >> 45) % 21) as i64;
            out.push((systolic, diastolic, "NORMAL"));
        }
    }
    out
}

fn run_pressures(app: &str, rows: &[(i64, i64, &str)]) -> Vec<serde_json::Value> {
    let config = parse_app_json(PRESSURE).unwrap();
    let plan = compile(app, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut stage = SqlStage::new("rcf", plan.into()).unwrap();
    let mut b = BatchBuilder::new();
    for (i, (s, d, level)) in rows.iter().enumerate() {
        let data = format!(r#"{{"Systolic":{s},"Diastolic":{d},"BloodPressureLevel":"{level}"}}"#);
        b.push(
            data.as_bytes(),
            Meta {
                arrival_ms: 1_714_557_600_000 + i as i64 * 100,
                ..Meta::default()
            },
        );
    }
    let mut out = Vec::new();
    for p in [stage.process(b.finish(), 0), stage.flush(0)] {
        assert!(p.failed.is_empty(), "{:?}", p.failed);
        for r in p.records.iter() {
            out.push(serde_json::from_slice(r.data()).unwrap());
        }
    }
    out
}

/// A row's explanation, per column: its fields, each a number as a string (checked).
fn explanation(row: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let text = row["ANOMALY_EXPLANATION"].as_str().expect("an explanation");
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    v.as_object().expect("an object").clone()
}

fn field(column: &serde_json::Value, name: &str) -> f64 {
    let text = column[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {column}"));
    // KDA's: a number with four decimals, as a string.
    assert_eq!(text.split('.').nth(1).map(str::len), Some(4), "{text}");
    text.parse().unwrap()
}

#[test]
fn each_row_is_explained_column_by_column_and_spikes_by_their_direction() {
    let input = pressures(2000);
    let rows = run_pressures(EXPLAINED, &input);
    assert_eq!(rows.len(), input.len(), "every row comes out once");
    let score = |r: &serde_json::Value| r["ANOMALY_SCORE"].as_f64().unwrap();
    // The learning phase: 0, with an explanation of zeros, LOW.
    assert_eq!(score(&rows[0]), 0.0);
    for (name, column) in explanation(&rows[0]) {
        assert_eq!(column["DIRECTION"], "LOW", "{name}");
        assert_eq!(field(&column, "STRENGTH"), 0.0);
        assert_eq!(field(&column, "ATTRIBUTION_SCORE"), 0.0);
    }
    for (row, (s, d, level)) in rows.iter().zip(&input) {
        assert_eq!(row["Systolic"], *s);
        assert_eq!(row["Diastolic"], *d);
        assert_eq!(row["BloodPressureLevel"], *level);
        let columns = explanation(row);
        let mut names: Vec<&str> = columns.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["Diastolic", "Systolic"],
            "the numeric columns, only"
        );
        let mut sum = 0.0;
        for column in columns.values() {
            assert!(["HIGH", "LOW"].contains(&column["DIRECTION"].as_str().unwrap()));
            assert!(field(column, "STRENGTH") >= 0.0);
            sum += field(column, "ATTRIBUTION_SCORE");
        }
        // The columns' attributions add up to the score (each rounded to four decimals).
        let total = score(row);
        assert!(
            (sum - total).abs() <= 0.0002 + total * 1e-4,
            "attributions {sum} for a score of {total}"
        );
    }
    let top_normal = rows[1000..]
        .iter()
        .filter(|r| r["BloodPressureLevel"] == "NORMAL")
        .map(score)
        .fold(0.0, f64::max);
    let mut spikes = 0;
    for row in rows[1000..]
        .iter()
        .filter(|r| r["BloodPressureLevel"] != "NORMAL")
    {
        spikes += 1;
        assert!(
            score(row) > top_normal,
            "{row} above every ordinary row ({top_normal})"
        );
        // Above (or below) everything the forest has seen, in both columns.
        let want = if row["BloodPressureLevel"] == "HIGH" {
            "HIGH"
        } else {
            "LOW"
        };
        for (name, column) in explanation(row) {
            assert_eq!(column["DIRECTION"], want, "{name} of {row}");
            assert!(field(&column, "STRENGTH") > 1.0, "{name} of {row}");
        }
    }
    assert_eq!(spikes, 10);
    // The explanation reads the forest: it changes none of its scores.
    let scored = run_pressures(SCORED, &input);
    for (a, b) in rows.iter().zip(&scored) {
        assert!(
            (score(a) - score(b)).abs() <= 1e-9 * score(b).max(1.0),
            "{a} / {b}"
        );
    }
}

#[test]
fn without_directionality_and_with_shingles_each_column_has_its_attribution() {
    let input = pressures(400);
    let cases = [
        ("", false),
        (", 50, 128, 1000, 4, false", false),
        (", 50, 128, 1000, 4, true", true),
    ];
    for (args, directional) in cases {
        let app = EXPLAINED.replace(", 100, 256, 100000, 1, true))", &format!("{args}))"));
        let rows = run_pressures(&app, &input);
        assert_eq!(rows.len(), input.len());
        for row in &rows {
            let columns = explanation(row);
            assert_eq!(columns.len(), 2, "{row}");
            let mut sum = 0.0;
            for column in columns.values() {
                let object = column.as_object().unwrap();
                let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
                fields.sort_unstable();
                if directional {
                    assert_eq!(fields, ["ATTRIBUTION_SCORE", "DIRECTION", "STRENGTH"]);
                } else {
                    assert_eq!(fields, ["ATTRIBUTION_SCORE"]);
                }
                sum += field(column, "ATTRIBUTION_SCORE");
            }
            // A shingle's positions of a column add up to the column's part.
            let total = row["ANOMALY_SCORE"].as_f64().unwrap();
            assert!((sum - total).abs() <= 0.0002 + total * 1e-4, "{row}");
        }
        assert!(rows
            .iter()
            .any(|r| r["ANOMALY_SCORE"].as_f64().unwrap() > 0.0));
    }
}

#[test]
fn the_explained_forest_takes_kda_parameters_and_refuses_others() {
    let config = parse_app_json(PRESSURE).unwrap();
    let with = |args: &str| {
        let sql = EXPLAINED.replace(", 100, 256, 100000, 1, true))", &format!("{args}))"));
        compile(&sql, &config, &Options::default()).map(|_| ())
    };
    assert!(with("").is_ok());
    assert!(with(", 50").is_ok());
    assert!(with(", 50, 128, 1000, 4, FALSE").is_ok());
    let err = with(", 100, 256, 100000, 1, true, 1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 5 parameters"), "{err}");
    let err = with(", 100, 256, 100000, 1, 1").unwrap_err().to_string();
    assert!(err.contains("TRUE or FALSE"), "{err}");
    let err = with(", 100, 5").unwrap_err().to_string();
    assert!(err.contains("from 10 to 1000"), "{err}");
    // KDA's limit: up to 30 numeric columns.
    let many: Vec<String> = (0..31).map(|i| format!(r#""Systolic" AS c{i}"#)).collect();
    let sql = EXPLAINED.replace(
        r#"SELECT STREAM * FROM "SOURCE_SQL_STREAM_001""#,
        &format!(
            r#"SELECT STREAM "Diastolic", {} FROM "SOURCE_SQL_STREAM_001""#,
            many.join(", ")
        ),
    );
    let err = compile(&sql, &config, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("up to 30 numeric columns"), "{err}");
}
