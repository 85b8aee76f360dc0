//! Stream-to-stream joins: each side over a window of ROWTIME or of rows (the current ROWTIME
//! only when it names none), a joined row when a row of either side meets the other side's
//! window, and an outer join's unmatched rows once they leave their window.

use weir_core::batch::{Batch, BatchBuilder, Meta};
use weir_core::process::{Processed, Processor};
use weir_sql::{compile, parse_app_json, Options, SqlStage};

const INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "KIND", "Mapping": "$.kind", "SqlType": "VARCHAR(8)"},
                      {"Name": "ORDER_ID", "Mapping": "$.order", "SqlType": "INTEGER"},
                      {"Name": "AMOUNT", "Mapping": "$.amount", "SqlType": "INTEGER"}]}}]"#;

/// Orders and trades, split from the one input into two streams.
const STREAMS: &str = r#"
CREATE OR REPLACE STREAM "ORDERS" (ORDER_ID INTEGER, AMOUNT INTEGER);
CREATE OR REPLACE STREAM "TRADES" (ORDER_ID INTEGER, AMOUNT INTEGER);
CREATE OR REPLACE PUMP "O" AS INSERT INTO "ORDERS"
    SELECT STREAM ORDER_ID, AMOUNT FROM "SOURCE_SQL_STREAM_001" WHERE KIND = 'order';
CREATE OR REPLACE PUMP "T" AS INSERT INTO "TRADES"
    SELECT STREAM ORDER_ID, AMOUNT FROM "SOURCE_SQL_STREAM_001" WHERE KIND = 'trade';
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    AT TIMESTAMP, ORDER_ID INTEGER, ORDER_AMOUNT INTEGER, TRADE_AMOUNT INTEGER, TRADED TIMESTAMP);
"#;

fn stage(join: &str) -> SqlStage {
    let config = parse_app_json(INPUTS).unwrap();
    let sql = format!("{STREAMS}{join}");
    let plan = compile(&sql, &config, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    SqlStage::new("joins", plan.into()).unwrap()
}

/// `(seconds, kind, order, amount)` records.
fn batch(records: &[(i64, &str, i64, i64)]) -> Batch {
    let mut b = BatchBuilder::new();
    for (s, kind, order, amount) in records {
        b.push(
            format!(r#"{{"kind":"{kind}","order":{order},"amount":{amount}}}"#).as_bytes(),
            Meta {
                arrival_ms: s * 1000,
                ..Meta::default()
            },
        );
    }
    b.finish()
}

fn rows(p: &Processed) -> Vec<String> {
    p.records
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.data()).unwrap();
            let t = |k: &str| {
                v[k].as_str()
                    .map_or("-".to_string(), |s| s[17..19].to_string())
            };
            format!(
                "{} {} {} {} {}",
                t("AT"),
                v["ORDER_ID"],
                v["ORDER_AMOUNT"],
                v["TRADE_AMOUNT"],
                t("TRADED")
            )
        })
        .collect()
}

const INNER: &str = r#"CREATE OR REPLACE PUMP "J" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ROWTIME, o.ORDER_ID, o.AMOUNT, t.AMOUNT, t.ROWTIME
    FROM "ORDERS" AS o JOIN "TRADES" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS t
    ON o.ORDER_ID = t.ORDER_ID;"#;

#[test]
fn an_order_joins_the_trades_of_the_minute_before_it() {
    let mut s = stage(INNER);
    // Trades first: the order at 30 s meets the trades of the minute before it, not later ones.
    let out = s.process(
        batch(&[
            (0, "trade", 1, 5),
            (10, "trade", 2, 7),
            (20, "trade", 1, 6),
            (30, "order", 1, 100),
            (40, "trade", 1, 9),
        ]),
        0,
    );
    assert_eq!(rows(&out), ["30 1 100 5 00", "30 1 100 6 20"]);
    // 100 s: the trade at 20 s has left the window; the one at 40 s is still in it.
    let out = s.process(batch(&[(100, "order", 1, 200)]), 0);
    assert_eq!(rows(&out), ["40 1 200 9 40"]);
}

#[test]
fn a_left_join_lets_an_unmatched_order_go_on_once_it_leaves_its_window() {
    let mut s = stage(&INNER.replace("JOIN \"TRADES\"", "LEFT JOIN \"TRADES\""));
    let out = s.process(batch(&[(0, "order", 3, 50), (5, "trade", 1, 5)]), 0);
    // The order's window is its own ROWTIME: it has left it once a row of 5 s comes, and
    // goes on at its own ROWTIME.
    assert_eq!(rows(&out), ["00 3 50 null -"]);
    let out = s.process(batch(&[(6, "order", 1, 60)]), 0);
    assert_eq!(rows(&out), ["06 1 60 5 05"]);
    // The end of input lets the last order out too (it matched, so nothing more comes).
    assert!(rows(&s.flush(0)).is_empty());
}

#[test]
fn a_full_join_keeps_unmatched_rows_of_both_sides_and_rows_windows_count_rows() {
    let mut s = stage(
        r#"CREATE OR REPLACE PUMP "J" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ROWTIME, o.ORDER_ID, o.AMOUNT, t.AMOUNT, t.ROWTIME
    FROM "ORDERS" OVER (ROWS 1 PRECEDING) AS o FULL JOIN "TRADES" OVER (ROWS 1 PRECEDING) AS t
    ON o.ORDER_ID = t.ORDER_ID;"#,
    );
    let mut got = rows(&s.process(
        batch(&[
            (0, "order", 1, 10),
            (1, "order", 2, 20),
            // Order 1 leaves the two-row window of orders here, unmatched.
            (2, "order", 3, 30),
            (3, "trade", 2, 7),
            (4, "trade", 9, 8),
            // Trade 2 leaves the trades' window here; it matched.
            (5, "trade", 3, 9),
        ]),
        0,
    ));
    got.extend(rows(&s.flush(0)));
    assert_eq!(
        got,
        [
            "02 1 10 null -",
            "03 2 20 7 03",
            "05 3 30 9 05",
            // Left at the end: order 2 and 3 matched, trade 9 did not.
            "04 null null 8 04"
        ]
    );
}

#[test]
fn equalities_find_their_rows_and_the_rest_of_on_still_decides() {
    // ORDER_ID = ORDER_ID finds the candidates; AMOUNT > 5 is still checked on each.
    let mut s = stage(
        r#"CREATE OR REPLACE PUMP "J" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ROWTIME, o.ORDER_ID, o.AMOUNT, t.AMOUNT, t.ROWTIME
    FROM "ORDERS" AS o JOIN "TRADES" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS t
    ON o.ORDER_ID = t.ORDER_ID AND t.AMOUNT > 5;"#,
    );
    let mut b = BatchBuilder::new();
    let records = [
        (0, r#"{"kind":"trade","order":1,"amount":9}"#),
        (1, r#"{"kind":"trade","order":1,"amount":3}"#),
        (2, r#"{"kind":"trade","order":2,"amount":8}"#),
        // No order id: it equals nothing, not even another NULL.
        (3, r#"{"kind":"trade","amount":7}"#),
        (4, r#"{"kind":"order","order":1,"amount":100}"#),
        (5, r#"{"kind":"order","amount":200}"#),
        (6, r#"{"kind":"order","order":2.0,"amount":300}"#),
    ];
    for (s, json) in records {
        b.push(
            json.as_bytes(),
            Meta {
                arrival_ms: s * 1000,
                ..Meta::default()
            },
        );
    }
    let out = s.process(b.finish(), 0);
    assert_eq!(rows(&out), ["04 1 100 9 00", "06 2 300 8 02"]);
}
