-- A reference table with a numeric column, from a CSV with a header line: KDA read the header
-- as a row, NULL where it does not convert (as is ASD's bad weight), and the join goes on.
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), weighted DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
   SELECT STREAM ticker_symbol, price * w."Weight"
   FROM "SOURCE_SQL_STREAM_001" JOIN "Weights" AS w
   ON "SOURCE_SQL_STREAM_001".ticker_symbol = w."Ticker";
