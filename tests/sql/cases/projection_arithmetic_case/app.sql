CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4),
    price         DOUBLE,
    prev_price    DOUBLE,
    direction     VARCHAR(4),
    kind          VARCHAR(5),
    score         DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM ticker_symbol,
              price,
              price - change AS prev_price,
              CASE WHEN change > 0 THEN 'RISE'
                   WHEN change < 0 THEN 'FALL'
                   ELSE 'FLAT' END AS direction,
              CASE ticker_symbol WHEN 'AMZN' THEN 'store'
                                 WHEN 'MSFT' THEN 'cloud' END AS kind,
              price * 2 + change / 4 AS score
FROM "SOURCE_SQL_STREAM_001";
