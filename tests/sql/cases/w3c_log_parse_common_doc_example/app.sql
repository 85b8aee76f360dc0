-- SQL Reference, W3C_LOG_PARSE, Example 1 (the COMMON format: its input and its output), in the
-- Developer Guide's form (examples-transforming-strings-w3clogparse: INSERT INTO, and
-- FROM (SELECT STREAM W3C_LOG_PARSE("log", 'COMMON') FROM "SOURCE_SQL_STREAM_001") AS l(r)).
-- The reference's DDL reads a foreign stream and inserts nowhere; the guide's VARCHAR(16)
-- columns are too short for the time and the request, so these are wider.
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    column1 VARCHAR(16),
    column2 VARCHAR(16),
    column3 VARCHAR(16),
    column4 VARCHAR(32),
    column5 VARCHAR(64),
    column6 INTEGER,
    column7 BIGINT);

CREATE OR REPLACE PUMP "myPUMP" AS
INSERT INTO "DESTINATION_SQL_STREAM"
        SELECT STREAM
            l.r.COLUMN1,
            l.r.COLUMN2,
            l.r.COLUMN3,
            l.r.COLUMN4,
            l.r.COLUMN5,
            l.r.COLUMN6,
            l.r.COLUMN7
        FROM (SELECT STREAM W3C_LOG_PARSE("log", 'COMMON')
              FROM "SOURCE_SQL_STREAM_001") AS l(r);
