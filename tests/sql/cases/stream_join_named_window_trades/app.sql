-- The Developer Guide's stream join (Example 1), written with its WINDOW clause. One input stream
-- carries orders (no tradeId) and trades (with a tradeId); two pumps split them into
-- OrderStream and TradeStream.
CREATE OR REPLACE STREAM "ORDERSTREAM" (orderId INTEGER, ticker VARCHAR(4), amount INTEGER);
CREATE OR REPLACE PUMP "ORDER_PUMP" AS INSERT INTO "ORDERSTREAM"
    SELECT STREAM orderId, ticker, amount
    FROM "SOURCE_SQL_STREAM_001" WHERE tradeId IS NULL;

CREATE OR REPLACE STREAM "TRADESTREAM" (tradeId INTEGER, orderId INTEGER, ticker VARCHAR(4), amount INTEGER);
CREATE OR REPLACE PUMP "TRADE_PUMP" AS INSERT INTO "TRADESTREAM"
    SELECT STREAM tradeId, orderId, ticker, amount
    FROM "SOURCE_SQL_STREAM_001" WHERE tradeId IS NOT NULL;

-- The guide writes "JOIN TradeStream OVER t ON o.orderId = t.orderId WINDOW t AS (...)",
-- using t as a qualifier it never declares; here the window is named lastMinute and t is the alias.
CREATE OR REPLACE STREAM "OUTPUT_STREAM" (resulttime TIMESTAMP, orderId INTEGER, ticker VARCHAR(4), orderAmount INTEGER, tradeAmount INTEGER);
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS INSERT INTO "OUTPUT_STREAM"
SELECT STREAM
    ROWTIME,
    o.orderId, o.ticker, o.amount AS orderAmount,
    t.amount AS tradeAmount
FROM OrderStream AS o
JOIN TradeStream OVER lastMinute AS t
ON o.orderId = t.orderId
WINDOW lastMinute AS
    (RANGE INTERVAL '1' MINUTE PRECEDING);
