CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
                         ticker_symbol VARCHAR(10),
                         Min_Price     double,
                         Max_Price     double,
                         Avg_Price     double);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
     SELECT STREAM ticker_symbol,
         MIN(Price) OVER (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING) AS Min_Price,
         MAX(Price) OVER (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING) AS Max_Price,
         AVG(Price) OVER (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING) AS Avg_Price
     FROM   "SOURCE_SQL_STREAM_001";
