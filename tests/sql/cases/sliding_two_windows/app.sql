CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol     VARCHAR(4),
    price             DOUBLE,
    average_last2rows DOUBLE,
    trades_last10s    BIGINT,
    max_price_last10s DOUBLE);

CREATE OR REPLACE PUMP "myPump" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM ticker_symbol,
              price,
              AVG(price) OVER last2rows,
              COUNT(*) OVER last10seconds,
              MAX(price) OVER last10seconds
FROM SOURCE_SQL_STREAM_001
WINDOW
    last2rows AS (PARTITION BY ticker_symbol ROWS 2 PRECEDING),
    last10seconds AS (RANGE INTERVAL '10' SECOND PRECEDING);
