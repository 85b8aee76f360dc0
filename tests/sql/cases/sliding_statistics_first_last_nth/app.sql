CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4),
    price         DOUBLE,
    var_samp      DOUBLE,
    stddev_pop    DOUBLE,
    first_price   DOUBLE,
    last_price    DOUBLE,
    second_price  DOUBLE);

CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM ticker_symbol, price,
        ROUND(VAR_SAMP(price) OVER w, 4), ROUND(STDDEV_POP(price) OVER w, 4),
        FIRST_VALUE(price) OVER w, LAST_VALUE(price) OVER w, NTH_VALUE(price, 2) OVER w
    FROM "SOURCE_SQL_STREAM_001"
    WINDOW w AS (
        PARTITION BY ticker_symbol
        RANGE INTERVAL '10' SECOND PRECEDING);
