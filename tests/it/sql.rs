//! The `sql` step end to end: a Kinesis Data Analytics application, as KDA took it, run by
//! `weir run` from a file to objects, with its checkpoint, its error output and a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{lines, objects, run_ok, weir, Running, Start};

/// The Developer Guide's tumbling-window application, on an event-time ROWTIME.
const APP: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    WINDOW_START TIMESTAMP, TICKER_SYMBOL VARCHAR(4), TICKER_COUNT INTEGER,
    MIN_PRICE DOUBLE, MAX_PRICE DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM STEP(s.ROWTIME BY INTERVAL '10' SECOND), TICKER_SYMBOL, COUNT(*),
        MIN(PRICE), MAX(PRICE)
    FROM "SOURCE_SQL_STREAM_001" AS s
    GROUP BY TICKER_SYMBOL, STEP(s.ROWTIME BY INTERVAL '10' SECOND);
"#;

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON",
        "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordEncoding": "UTF-8",
    "RecordColumns": [
        {"Name": "TICKER_SYMBOL", "Mapping": "$.ticker", "SqlType": "VARCHAR(4)"},
        {"Name": "PRICE", "Mapping": "$.price", "SqlType": "DOUBLE"},
        {"Name": "TS", "Mapping": "$.ts", "SqlType": "TIMESTAMP"}]}}]"#;

const TICKERS: [&str; 4] = ["AMZN", "MSFT", "NFLX", "ORCL"];

/// Record `i`: its JSON line, and its window's start (second) and ticker.
fn record(i: u64) -> (String, u64, &'static str, f64) {
    let ticker = TICKERS[(i * 7 % 4) as usize];
    let price = (i % 13) as f64 + 0.5;
    // Records 250 ms apart from 10:00:00: 40 a window.
    let ms = i * 250;
    let line = format!(
        r#"{{"ticker":"{ticker}","price":{price},"ts":"2024-05-01 10:{:02}:{:02}.{:03}"}}"#,
        ms / 60_000,
        ms / 1000 % 60,
        ms % 1000
    );
    (line, ms / 10_000 * 10, ticker, price)
}

/// What each (window, ticker) must come to: count, min and max price.
fn expected(range: std::ops::Range<u64>) -> BTreeMap<(String, String), (u64, f64, f64)> {
    let mut want: BTreeMap<(String, String), (u64, f64, f64)> = BTreeMap::new();
    for i in range {
        let (_, window, ticker, price) = record(i);
        let start = format!("2024-05-01 10:{:02}:{:02}.000", window / 60, window % 60);
        let e = want
            .entry((start, ticker.to_string()))
            .or_insert((0, f64::MAX, f64::MIN));
        e.0 += 1;
        e.1 = e.1.min(price);
        e.2 = e.2.max(price);
    }
    want
}

fn rows(out: &Path) -> Vec<serde_json::Value> {
    lines(&objects(out, Some("errors")))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The rows by (window, ticker). At least once: a row may come twice (after a restart, its
/// inputs are read again if they shared a checkpoint position with an open window's), but
/// never with different values, which would be a partial window.
fn got(rows: &[serde_json::Value]) -> BTreeMap<(String, String), (u64, f64, f64)> {
    let mut got = BTreeMap::new();
    for r in rows {
        let key = (
            r["WINDOW_START"].as_str().unwrap().to_string(),
            r["TICKER_SYMBOL"].as_str().unwrap().to_string(),
        );
        let value = (
            r["TICKER_COUNT"].as_u64().unwrap(),
            r["MIN_PRICE"].as_f64().unwrap(),
            r["MAX_PRICE"].as_f64().unwrap(),
        );
        if let Some(before) = got.insert(key.clone(), value) {
            assert_eq!(before, value, "{key:?} emitted twice, differently");
        }
    }
    got
}

fn setup(dir: &Path, follow: bool) -> std::path::PathBuf {
    std::fs::write(dir.join("app.sql"), APP).unwrap();
    std::fs::write(dir.join("inputs.json"), INPUTS).unwrap();
    let pipeline = dir.join("tickers.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[pipeline]\nbatch = {{ linger = \"10ms\" }}\n\
             [source]\ntype = \"file\"\npath = \"in.jsonl\"\ncheckpoint = true\nfollow = {follow}\n\
             [[process]]\ntype = \"sql\"\ncode = \"app.sql\"\ninputs = \"inputs.json\"\nrowtime = \"TS\"\n\
             [sink]\ntype = \"file\"\npath = \"out\"\nbuffer = {{ interval = \"0s\" }}\n"
        ),
    )
    .unwrap();
    pipeline
}

#[test]
fn a_kda_application_runs_unchanged_from_a_file_to_objects() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = setup(dir.path(), false);
    let mut input: Vec<String> = (0..400).map(|i| record(i).0).collect();
    // Two records that are not JSON: they go to the error output, the others still count.
    input.insert(17, "not json".into());
    input.insert(
        200,
        r#"{"ticker":"AMZN","price":"cheap","ts":"2024-05-01 10:00:50"}"#.into(),
    );
    std::fs::write(dir.path().join("in.jsonl"), input.join("\n") + "\n").unwrap();
    run_ok(
        weir()
            .args(["run", "--progress", "0s", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg(&pipeline),
    );
    let out = dir.path().join("out");
    assert_eq!(got(&rows(&out)), expected(0..400));
    let errors: Vec<serde_json::Value> = lines(&objects(&out.join("errors"), None))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e["errorCode"] == "SQL.TypeConversion"),
        "{errors:?}"
    );
    assert!(
        errors[1]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("cheap"),
        "{errors:?}"
    );
    // KDA's error_stream columns, beside the usual fields: the record's bytes in hex.
    let hex: String = "not json".bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(errors[0]["DATA_ROW"], hex.as_str(), "{errors:?}");
    assert_eq!(errors[0]["ERROR_NAME"], "Coercion error");
    assert_eq!(errors[0]["PUMP_NAME"], "null");
}

#[test]
fn a_stop_mid_window_emits_no_partial_window_and_the_restart_completes_it() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let pipeline = setup(dir.path(), true);
    let state = dir.path().join("state");
    let path = dir.path().join("in.jsonl");
    // Windows 10:00:00 and 10:00:10 whole, and the first half of 10:00:20.
    let first: Vec<String> = (0..100).map(|i| record(i).0).collect();
    std::fs::write(&path, first.join("\n") + "\n").unwrap();
    let running: Running = weir()
        .args(["run", "--progress", "0s", "--state-dir"])
        .arg(&state)
        .arg(&pipeline)
        .stderr(Stdio::piped())
        .start();
    let out = dir.path().join("out");
    let started = Instant::now();
    // The first two windows close (a row of the next one came); the third stays open.
    while got(&rows(&out)).len() < expected(0..80).len() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            rows(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    crate::common::stop(running);
    assert_eq!(
        got(&rows(&out)),
        expected(0..80),
        "no row of the open window"
    );

    // The rest of the third window and a fourth; this run reads to the end and stops.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let rest: Vec<String> = (100..160).map(|i| record(i).0).collect();
    f.write_all((rest.join("\n") + "\n").as_bytes()).unwrap();
    drop(f);
    let pipeline = setup(dir.path(), false);
    run_ok(
        weir()
            .args(["run", "--progress", "0s", "--state-dir"])
            .arg(&state)
            .arg(&pipeline),
    );
    // The third window's rows are whole: its first half was read again from the checkpoint.
    assert_eq!(got(&rows(&out)), expected(0..160));
}

#[test]
fn a_sql_mistake_is_reported_at_the_sql_files_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = setup(dir.path(), false);
    std::fs::write(
        dir.path().join("app.sql"),
        APP.replace("MIN(PRICE)", "MIN(PRICE_)"),
    )
    .unwrap();
    let out = weir().arg("validate").arg(&pipeline).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let at = format!("{}:7:13", dir.path().join("app.sql").display());
    assert!(stderr.contains(&at), "wanted {at} in: {stderr}");
    assert!(stderr.contains("process[0].code"), "{stderr}");
    assert!(stderr.contains("no column `PRICE_`"), "{stderr}");
}

/// The Developer Guide's reference-data application, moved with its describe-application
/// JSON: the reference table is read from S3 (moto) at start, or from a local file instead.
#[test]
fn reference_data_comes_from_s3_or_a_local_file() {
    let (_moto, endpoint) = crate::common::moto();
    let dir = tempfile::tempdir().unwrap();
    let csv = "Ticker, Company\nAMZN,Amazon\nASD, SomeCompanyA\n";
    crate::common::runtime().block_on(async {
        let s3 = crate::common::s3(&endpoint).await;
        s3.create_bucket().bucket("kda-ref").send().await.unwrap();
        s3.put_object()
            .bucket("kda-ref")
            .key("TickerReference.csv")
            .body(csv.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    });
    let code = r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Company" varchar(20), price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
   SELECT STREAM ticker_symbol, "c"."Company", price
   FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" as "c"
   ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker";"#;
    let detail = serde_json::json!({"ApplicationDetail": {
        "ApplicationName": "ticker", "ApplicationStatus": "READY", "ApplicationVersionId": 7,
        "ApplicationCode": code,
        "InputDescriptions": [{"InputId": "1.1", "NamePrefix": "SOURCE_SQL_STREAM",
            "InAppStreamNames": ["SOURCE_SQL_STREAM_001"],
            "InputSchema": {"RecordFormat": {"RecordFormatType": "JSON",
                "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
                "RecordEncoding": "UTF-8",
                "RecordColumns": [
                    {"Name": "TICKER_SYMBOL", "Mapping": "$.TICKER_SYMBOL", "SqlType": "VARCHAR(4)"},
                    {"Name": "PRICE", "Mapping": "$.PRICE", "SqlType": "REAL"}]}}],
        "ReferenceDataSourceDescriptions": [{"ReferenceId": "2.1", "TableName": "CompanyName",
            "S3ReferenceDataSourceDescription": {"BucketARN": "arn:aws:s3:::kda-ref",
                "FileKey": "TickerReference.csv",
                "ReferenceRoleARN": "arn:aws:iam::012345678901:role/read"},
            "ReferenceSchema": {"RecordFormat": {"RecordFormatType": "CSV",
                "MappingParameters": {"CSVMappingParameters":
                    {"RecordRowDelimiter": "\n", "RecordColumnDelimiter": ","}}},
                "RecordEncoding": "UTF-8",
                "RecordColumns": [{"Name": "Ticker", "SqlType": "VARCHAR(4)"},
                                  {"Name": "Company", "SqlType": "VARCHAR(20)"}]}}],
        "OutputDescriptions": [{"OutputId": "3.1", "Name": "DESTINATION_SQL_STREAM",
            "DestinationSchema": {"RecordFormatType": "JSON"}}]}});
    std::fs::write(dir.path().join("ticker.json"), detail.to_string()).unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"TICKER_SYMBOL\":\"AMZN\",\"PRICE\":84.5}\n{\"TICKER_SYMBOL\":\"QXZ\",\"PRICE\":1.5}\n{\"TICKER_SYMBOL\":\"ASD\",\"PRICE\":2.25}\n",
    )
    .unwrap();
    let run = |name: &str, extra: &str| {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n\
                 [[process]]\ntype = \"sql\"\napplication = \"ticker.json\"\n{extra}\n\
                 [sink]\ntype = \"file\"\npath = \"out-{name}\"\n"
            ),
        )
        .unwrap();
        run_ok(
            weir()
                .args(["run", "--progress", "0s", "--state-dir"])
                .arg(dir.path().join("state"))
                .arg(dir.path().join(format!("{name}.toml")))
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test"),
        );
        lines(&objects(
            &dir.path().join(format!("out-{name}")),
            Some("errors"),
        ))
    };
    let from_s3 = run(
        "s3",
        &format!("region = \"us-east-1\"\nendpoint = \"{endpoint}\""),
    );
    assert_eq!(
        from_s3,
        [
            r#"{"TICKER_SYMBOL":"AMZN","Company":"Amazon","PRICE":84.5}"#,
            r#"{"TICKER_SYMBOL":"QXZ","Company":null,"PRICE":1.5}"#,
            r#"{"TICKER_SYMBOL":"ASD","Company":" SomeCompanyA","PRICE":2.25}"#,
        ]
    );
    // A local copy instead (the S3 endpoint is not even given).
    std::fs::write(dir.path().join("companies.csv"), "QXZ,Quux\n").unwrap();
    let local = run("local", "reference = { CompanyName = \"companies.csv\" }");
    assert_eq!(
        local,
        [
            r#"{"TICKER_SYMBOL":"AMZN","Company":null,"PRICE":84.5}"#,
            r#"{"TICKER_SYMBOL":"QXZ","Company":"Quux","PRICE":1.5}"#,
            r#"{"TICKER_SYMBOL":"ASD","Company":null,"PRICE":2.25}"#,
        ]
    );
}

/// `weir sql discover` proposes the schema of sample records; an application written against
/// it runs on them.
#[test]
fn a_discovered_schema_runs_the_records_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"ticker\":\"AMZN\",\"price\":84.5,\"at\":\"2024-05-01 10:00:00\"}\n{\"ticker\":\"INTC\",\"price\":7,\"at\":\"2024-05-01 10:00:01\"}\n",
    )
    .unwrap();
    let out = run_ok(weir().args(["sql", "discover", "--input"]).arg(&input));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = schema["RecordColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ticker", "price", "at"], "in the records' order");
    let inputs = serde_json::json!([{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": schema}]);
    std::fs::write(dir.path().join("inputs.json"), inputs.to_string()).unwrap();
    std::fs::write(
        dir.path().join("app.sql"),
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (T VARCHAR(4), P DOUBLE, AT TIMESTAMP);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM "ticker", "price" * 2, "at" FROM "SOURCE_SQL_STREAM_001";"#,
    )
    .unwrap();
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n[[process]]\ntype = \"sql\"\ncode = \"app.sql\"\ninputs = \"inputs.json\"\n[sink]\ntype = \"file\"\npath = \"out\"\n",
    )
    .unwrap();
    run_ok(
        weir()
            .args(["run", "--progress", "0s", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg(&pipeline),
    );
    assert_eq!(
        lines(&objects(&dir.path().join("out"), Some("errors"))),
        [
            r#"{"T":"AMZN","P":169.0,"AT":"2024-05-01 10:00:00.000"}"#,
            r#"{"T":"INTC","P":14.0,"AT":"2024-05-01 10:00:01.000"}"#,
        ]
    );
}

fn guest(name: &str) -> String {
    let path = crate::common::root()
        .join("guests/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the guests with guests/build.sh (scripts/test does)",
        path.display()
    );
    path.display().to_string()
}

/// SQL that calls functions of a Rust module and a Python one.
const UDF_APP: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    TRIP VARCHAR(32), KM DOUBLE, MS BIGINT, WORDS BIGINT, LOUD VARCHAR(32));
CREATE OR REPLACE PUMP "TRIPS" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM slugify(NAME), haversine_km(LAT1, LON1, LAT2, LON2), PARSE_DURATION(TOOK),
        WORD_COUNT(NAME), UPPER_UDF(NAME)
    FROM "SOURCE_SQL_STREAM_001" WHERE LAT1 IS NOT NULL;
"#;

const UDF_INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON",
        "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [
        {"Name": "NAME", "Mapping": "$.name", "SqlType": "VARCHAR(32)"},
        {"Name": "LAT1", "Mapping": "$.from[0]", "SqlType": "DOUBLE"},
        {"Name": "LON1", "Mapping": "$.from[1]", "SqlType": "DOUBLE"},
        {"Name": "LAT2", "Mapping": "$.to[0]", "SqlType": "DOUBLE"},
        {"Name": "LON2", "Mapping": "$.to[1]", "SqlType": "DOUBLE"},
        {"Name": "TOOK", "Mapping": "$.took", "SqlType": "VARCHAR(16)"}]}}]"#;

fn udf_pipeline(dir: &Path, udfs: &[String]) -> std::path::PathBuf {
    std::fs::write(dir.join("app.sql"), UDF_APP).unwrap();
    std::fs::write(dir.join("inputs.json"), UDF_INPUTS).unwrap();
    let modules: Vec<String> = udfs
        .iter()
        .map(|m| format!("{{ module = {m:?} }}"))
        .collect();
    let pipeline = dir.join("trips.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n\
             [[process]]\ntype = \"sql\"\ncode = \"app.sql\"\ninputs = \"inputs.json\"\n\
             udfs = [{}]\n\
             [sink]\ntype = \"file\"\npath = \"out\"\nbuffer = {{ interval = \"0s\" }}\n",
            modules.join(", ")
        ),
    )
    .unwrap();
    pipeline
}

fn haversine(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * a.sqrt().asin()
}

#[test]
fn wasm_functions_in_rust_and_python_run_in_the_sql_and_a_row_they_fail_goes_to_the_error_output() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = udf_pipeline(dir.path(), &[guest("sql-functions"), guest("sql-text")]);
    let trips = [
        (
            "Paris to Berlin",
            [48.8566, 2.3522],
            [52.52, 13.405],
            "1h30m",
        ),
        (
            "Lisbon -- Madrid!",
            [38.7223, -9.1393],
            [40.4168, -3.7038],
            "55m",
        ),
        ("broken clock", [0.0, 0.0], [0.0, 1.0], "soon"),
        (
            "Zürich to Wien",
            [47.3769, 8.5417],
            [48.2082, 16.3738],
            "250ms",
        ),
    ];
    let mut input: Vec<String> = trips
        .iter()
        .map(|(name, from, to, took)| {
            serde_json::json!({"name": name, "from": from, "to": to, "took": took}).to_string()
        })
        .collect();
    // Filtered out before any function sees it.
    input.push(r#"{"name":"nowhere","took":"x"}"#.into());
    std::fs::write(dir.path().join("in.jsonl"), input.join("\n") + "\n").unwrap();
    run_ok(weir().args(["run", "--progress", "0s"]).arg(&pipeline));
    let out = dir.path().join("out");
    let got = rows(&out);
    assert_eq!(got.len(), 3, "{got:?}");
    let want = [
        ("paris-to-berlin", 0, 5_400_000, 3, "PARIS TO BERLIN"),
        // Words are what whitespace separates.
        ("lisbon-madrid", 1, 3_300_000, 3, "LISBON -- MADRID!"),
        ("zürich-to-wien", 3, 250, 3, "ZÜRICH TO WIEN"),
    ];
    for (row, (slug, i, ms, words, loud)) in got.iter().zip(want) {
        let (_, from, to, _) = trips[i];
        let km = row["KM"].as_f64().unwrap();
        assert!(
            (km - haversine(from[0], from[1], to[0], to[1])).abs() < 1e-6,
            "{row}"
        );
        assert_eq!(row["MS"], ms, "{row}");
        assert_eq!(row["WORDS"], words, "{row}");
        assert_eq!(row["LOUD"], loud, "{row}");
        // SLUGIFY keeps letters and digits (Unicode's), lower-cased.
        assert_eq!(row["TRIP"], slug, "{row}");
    }
    let errors: Vec<serde_json::Value> = lines(&objects(&out.join("errors"), None))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["errorMessage"].as_str().unwrap();
    assert_eq!(errors[0]["errorCode"], "SQL.Evaluation", "{errors:?}");
    assert!(
        message.contains("PARSE_DURATION") && message.contains("soon"),
        "{message}"
    );
    assert_eq!(errors[0]["PUMP_NAME"], "TRIPS", "{errors:?}");
}

#[test]
fn validate_names_the_functions_a_module_offers_and_refuses_a_module_of_another_world() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = udf_pipeline(dir.path(), &[guest("sql-functions"), guest("sql-text")]);
    run_ok(weir().arg("validate").arg(&pipeline));
    std::fs::write(
        dir.path().join("app.sql"),
        UDF_APP.replace("WORD_COUNT(NAME)", "WORDCOUNT(NAME)"),
    )
    .unwrap();
    let out = weir().arg("validate").arg(&pipeline).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("app.sql:6:9"), "{stderr}");
    assert!(stderr.contains("unknown function `WORDCOUNT`"), "{stderr}");
    assert!(
        stderr.contains("WORD_COUNT"),
        "lists what the modules provide: {stderr}"
    );

    let pipeline = udf_pipeline(dir.path(), &[guest("redact")]);
    let out = weir().arg("validate").arg(&pipeline).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("process[0].udfs"), "{stderr}");
    assert!(stderr.contains("`transform` world"), "{stderr}");
}
