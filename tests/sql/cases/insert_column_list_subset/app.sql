CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4),
    sector        VARCHAR(16),
    change        REAL,
    price         REAL,
    note          VARCHAR(8));
-- The column list names three of the five columns, in another order;
-- the other two are NULL in every row.
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM" (price, ticker_symbol, note)
SELECT STREAM price, ticker_symbol, 'checked'
FROM "SOURCE_SQL_STREAM_001"
WHERE change > 0;
