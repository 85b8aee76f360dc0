-- FIXED_COLUMN_LOG_PARSE: SQLstream's "Simple example" (the KDA SQL Reference gives the syntax
-- and no example; KDA's SQL engine is SQLstream's), as a stream: '  1   true' read as an
-- INTEGER from 0 for 3 characters and a BOOLEAN from 4 to the end.
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (A INTEGER, B BOOLEAN);

CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM t.r.a, t.r.b
    FROM (SELECT STREAM FIXED_COLUMN_LOG_PARSE("line", 'a TYPE Integer START 0 FOR 3, b TYPE boolean START 4') AS r
          FROM "SOURCE_SQL_STREAM_001") AS t;
