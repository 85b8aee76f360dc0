CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol     VARCHAR(4),
    price             DOUBLE,
    rows_in_window    BIGINT,
    sum_price         DOUBLE,
    avg_price         DOUBLE);

CREATE OR REPLACE PUMP "myPump" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM ticker_symbol,
              price,
              COUNT(*) OVER last2rows,
              SUM(price) OVER last2rows,
              AVG(price) OVER last2rows
FROM SOURCE_SQL_STREAM_001
WINDOW
    last2rows AS (PARTITION BY ticker_symbol ROWS 2 PRECEDING);
