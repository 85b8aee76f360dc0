CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM"
    ("ingest_time"   timestamp,
    "ticker_symbol"  VARCHAR(12),
    "symbol_count"   integer,
    "total_price"    DOUBLE,
    "avg_price"      DOUBLE);

CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '10' SECOND) AS "ingest_time",
        "TICKER_SYMBOL",
        COUNT(*) AS "symbol_count",
        SUM(PRICE) AS "total_price",
        AVG(PRICE) AS "avg_price"
    FROM "SOURCE_SQL_STREAM_001"
    GROUP BY "TICKER_SYMBOL",
        STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '10' SECOND);
