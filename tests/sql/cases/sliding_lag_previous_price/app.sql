CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol     VARCHAR(4),
    price             REAL,
    previous_price    REAL,
    two_back          REAL,
    last_known        REAL,
    change_since      REAL);

CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM ticker_symbol,
              price,
              LAG(price, 1, 0) OVER W1,
              LAG(price, 2) OVER W1,
              LAG(price) IGNORE NULLS OVER W1,
              price - LAG(price, 1, price) RESPECT NULLS OVER W1
FROM "SOURCE_SQL_STREAM_001"
WINDOW W1 AS (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING);
