//! COUNT_DISTINCT_ITEMS_TUMBLING and HOTSPOTS through the stage, past what a golden case can
//! hold: a window of 30,000 distinct values (past the exact count), and the Developer Guide's
//! hotspot generator (1,000 points a hotspot, 20% of them in a unit square) with its
//! parameters. Both take KDA's parameters and refuse others, with their place.

use weir_core::batch::{BatchBuilder, Meta};
use weir_core::process::Processor;
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const TICKERS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "TICKER_SYMBOL", "Mapping": "$.t", "SqlType": "VARCHAR(16)"},
                      {"Name": "PRICE", "Mapping": "$.p", "SqlType": "DOUBLE"}]}}]"#;

fn distinct_app(args: &str) -> String {
    format!(
        r#"CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM (NUMBER_OF_DISTINCT_ITEMS BIGINT);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM *
      FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
          CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"){args}));"#
    )
}

/// Runs `sql` over `records` (JSON, arriving at the given milliseconds), then ends the input:
/// the output rows, with their ROWTIME.
fn run(inputs: &str, sql: &str, records: &[(i64, String)]) -> Vec<(i64, serde_json::Value)> {
    let config = parse_app_json(inputs).unwrap();
    let plan = compile(sql, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut stage = SqlStage::new("analytic", plan.into()).unwrap();
    let mut out = Vec::new();
    // In batches of 500, so that windows span batches.
    for chunk in records.chunks(500) {
        let mut b = BatchBuilder::new();
        for (at, data) in chunk {
            b.push(
                data.as_bytes(),
                Meta {
                    arrival_ms: *at,
                    ..Meta::default()
                },
            );
        }
        let p = stage.process(b.finish(), 0);
        assert!(p.failed.is_empty(), "{:?}", p.failed);
        for r in p.records.iter() {
            out.push((r.arrival_ms(), serde_json::from_slice(r.data()).unwrap()));
        }
    }
    let p = stage.flush(0);
    assert!(p.failed.is_empty(), "{:?}", p.failed);
    for r in p.records.iter() {
        out.push((r.arrival_ms(), serde_json::from_slice(r.data()).unwrap()));
    }
    out
}

const T0: i64 = 1_714_557_600_000; // 2024-05-01 10:00:00, on a minute

#[test]
fn distinct_items_are_counted_per_window_exactly_then_closely() {
    let mut records = Vec::new();
    // Minute 0: 30,000 distinct tickers, each twice; minute 1: exactly 10,000, three times
    // each, and rows without one; minute 3: one ticker.
    for i in 0..60_000i64 {
        records.push((T0 + i, format!(r#"{{"t":"T{}","p":1.0}}"#, i % 30_000)));
    }
    for i in 0..30_000i64 {
        records.push((
            T0 + 60_000 + i,
            format!(r#"{{"t":"U{}","p":1.0}}"#, i % 10_000),
        ));
        if i % 7 == 0 {
            records.push((T0 + 60_000 + i, r#"{"p":1.0}"#.to_string()));
        }
    }
    records.push((T0 + 180_000, r#"{"t":"ONE","p":1.0}"#.to_string()));
    let rows = run(TICKERS, &distinct_app(", 'TICKER_SYMBOL', 60"), &records);
    let counts: Vec<i64> = rows
        .iter()
        .map(|(_, r)| r["NUMBER_OF_DISTINCT_ITEMS"].as_i64().unwrap())
        .collect();
    assert_eq!(counts.len(), 3, "{counts:?}");
    let error = (counts[0] - 30_000).abs() as f64 / 30_000.0;
    assert!(
        error < 0.03,
        "30,000 distinct values counted as {}",
        counts[0]
    );
    assert_eq!(counts[1], 10_000, "exact up to 10,000");
    assert_eq!(counts[2], 1);
    // Each window's row has its end as ROWTIME.
    let times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [T0 + 60_000, T0 + 120_000, T0 + 240_000]);
}

#[test]
fn distinct_items_take_kda_parameters_and_refuse_others() {
    let config = parse_app_json(TICKERS).unwrap();
    let with = |args: &str| compile(&distinct_app(args), &config, &Options::default());
    assert!(with(", 'TICKER_SYMBOL', 1").is_ok());
    assert!(with(", 'PRICE', 3600").is_ok());
    for (args, says) in [
        (", 'TICKER_SYMBOL', 0", "from 1 to 3600"),
        (", 'TICKER_SYMBOL', 3601", "from 1 to 3600"),
        (", 'TICKER_SYMBOL'", "a window size in seconds"),
        (", 'TICKER_SYMBOL', 60, 2", "a window size in seconds"),
        (", TICKER_SYMBOL, 60", "the column's name in quotes"),
        (", 'NOPE', 60", "the cursor has no column `NOPE`"),
    ] {
        let err = with(args).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(says), "{args}: {err}");
    }
}

const POINTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "x", "Mapping": "$.x", "SqlType": "DOUBLE"},
                      {"Name": "y", "Mapping": "$.y", "SqlType": "DOUBLE"},
                      {"Name": "is_hot", "Mapping": "$.is_hot", "SqlType": "VARCHAR(4)"}]}}]"#;

/// The Developer Guide's hotspots application (app-hotspot-create-app.md), with `args` for its
/// parameters (and SELECT STREAM for its SELECT).
fn hotspots_app(args: &str) -> String {
    format!(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    "x" DOUBLE,
    "y" DOUBLE,
    "is_hot" VARCHAR(4),
    HOTSPOTS_RESULT VARCHAR(10000)
);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM "x", "y", "is_hot", "HOTSPOTS_RESULT"
    FROM TABLE (
        HOTSPOTS(
            CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"){args})
    );"#
    )
}

/// One hotspot of a result: its density, and its box.
struct Spot {
    density: f64,
    min: Vec<f64>,
    max: Vec<f64>,
}

fn spots(row: &serde_json::Value) -> Vec<Spot> {
    let text = row["HOTSPOTS_RESULT"].as_str().expect("a result");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    v["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Spot {
            density: h["density"].as_f64().unwrap(),
            min: numbers(&h["minValues"]),
            max: numbers(&h["maxValues"]),
        })
        .collect()
}

#[test]
fn the_developer_guide_hotspot_is_found_and_followed_when_it_moves() {
    // The Developer Guide's generator (app-hotspots-prepare.md): points in [0, 10)², each with
    // probability 0.2 from a unit square, which moves after every 1,000 points.
    let mut x: u64 = 5;
    let mut random = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let squares = [(2.0, 6.5), (7.0, 1.5)];
    let mut records = Vec::new();
    for (k, &(hx, hy)) in squares.iter().enumerate() {
        for i in 0..1000i64 {
            let (px, py, hot) = if random() < 0.2 {
                (hx + random(), hy + random(), "Y")
            } else {
                (random() * 10.0, random() * 10.0, "N")
            };
            let at = T0 + (k as i64 * 1000 + i) * 10;
            records.push((at, format!(r#"{{"x":{px},"y":{py},"is_hot":"{hot}"}}"#)));
        }
    }
    // A row without y: no point, and no result.
    records.push((T0 + 20_000, r#"{"x":1.0,"is_hot":"N"}"#.to_string()));
    let rows = run(POINTS, &hotspots_app(", 1000, 0.2, 17"), &records);
    assert_eq!(
        rows.len(),
        records.len(),
        "every row comes out once, at once"
    );
    assert!(rows.last().unwrap().1["HOTSPOTS_RESULT"].is_null());
    for (_, row) in &rows[..rows.len() - 1] {
        for s in spots(row) {
            assert!(s.density > 0.0 && s.density.is_finite());
            assert!(s.min.iter().zip(&s.max).all(|(a, b)| a <= b));
        }
    }
    // After each 1,000 points, the window holds just that square's points (the first square's
    // are forgotten): every hotspot is in the square (grown by about twice the scan radius,
    // for its border points), densest first, and the largest covers it, dense as the guide's
    // visualizer filters them (40).
    for (k, &(hx, hy)) in squares.iter().enumerate() {
        let row = &rows[k * 1000 + 999].1;
        let found = spots(row);
        assert!(!found.is_empty(), "square {k}: {row}");
        assert!(
            found.windows(2).all(|w| w[0].density >= w[1].density),
            "densest first: {row}"
        );
        let (lo, hi) = ([hx - 0.45, hy - 0.45], [hx + 1.45, hy + 1.45]);
        for s in &found {
            for d in 0..2 {
                assert!(s.min[d] >= lo[d] && s.max[d] <= hi[d], "square {k}: {row}");
            }
        }
        let area = |s: &Spot| (s.max[0] - s.min[0]) * (s.max[1] - s.min[1]);
        let largest = found
            .iter()
            .max_by(|a, b| area(a).total_cmp(&area(b)))
            .unwrap();
        assert!(largest.density >= 40.0, "square {k}: {row}");
        for d in 0..2 {
            assert!(
                largest.max[d] - largest.min[d] > 0.75,
                "square {k} covers its square: {row}"
            );
        }
    }
}

#[test]
fn hotspots_take_kda_parameters_and_refuse_others() {
    let config = parse_app_json(POINTS).unwrap();
    let with = |args: &str| compile(&hotspots_app(args), &config, &Options::default());
    assert!(with(", 100, 0.013, 20").is_ok());
    assert!(with(", 1000, 2, 1000").is_ok());
    for (args, says) in [
        (", 99, 0.2, 17", "from 100 to 1000"),
        (", 1001, 0.2, 17", "from 100 to 1000"),
        (", 100, 0, 17", "above 0"),
        (", 100, -0.5, 17", "above 0"),
        (", 100, 0.2, 1", "from 2 to 100"),
        (", 100, 0.2, 101", "from 2 to 100"),
        (", 100, 0.2", "HOTSPOTS takes the cursor"),
    ] {
        let err = with(args).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(says), "{args}: {err}");
    }
    // Only numeric columns are points; a cursor with none is refused.
    let sql = hotspots_app(", 100, 0.2, 17")
        .replace("SELECT STREAM * FROM", r#"SELECT STREAM "is_hot" FROM"#)
        .replace(
            r#"SELECT STREAM "x", "y", "is_hot","#,
            r#"SELECT STREAM "is_hot", "is_hot", "is_hot","#,
        );
    let err = compile(&sql, &config, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no numeric column"), "{err}");
}
