CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4),
    price         DOUBLE,
    rising_count  BIGINT,
    rising_total  DOUBLE,
    rising_avg    DOUBLE);

CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ticker_symbol, price,
        COUNT(*) OVER W1,
        SUM(price) OVER W1,
        AVG(price) OVER W1
    FROM "SOURCE_SQL_STREAM_001"
    WHERE change > 0
    WINDOW W1 AS (
        PARTITION BY ticker_symbol
        RANGE INTERVAL '10' SECOND PRECEDING);
