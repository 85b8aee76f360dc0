CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), change REAL, price REAL);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM ticker_symbol, change, price
FROM "SOURCE_SQL_STREAM_001"
-- AND binds tighter than OR: the last term is (sector IS NULL AND price IS NOT NULL)
WHERE (price >= 50 AND NOT (ticker_symbol = 'AMZN')) OR change < -1 OR sector IS NULL AND price IS NOT NULL;
