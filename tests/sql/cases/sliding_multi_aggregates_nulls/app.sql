CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4),
    trade_count   BIGINT,
    total_price   DOUBLE,
    min_price     DOUBLE,
    max_price     DOUBLE,
    avg_price     DOUBLE);

CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ticker_symbol,
        COUNT(*) OVER W1 AS trade_count,
        SUM(price) OVER W1 AS total_price,
        MIN(price) OVER W1 AS min_price,
        MAX(price) OVER W1 AS max_price,
        AVG(price) OVER W1 AS avg_price
    FROM "SOURCE_SQL_STREAM_001"
    WINDOW W1 AS (
        PARTITION BY ticker_symbol
        RANGE INTERVAL '5' SECOND PRECEDING);
