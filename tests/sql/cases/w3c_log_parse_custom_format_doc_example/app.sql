-- SQL Reference, W3C_LOG_PARSE, "W3C Customized Formats" (the COMMON specifiers named, with
-- the reference's backslashed quotes, COLUMN1 to COLUMN6 selected) into a stream, then
-- Example 2's reduced view (CAST of the user, the address and the time) from it. The
-- reference's views and foreign streams are streams and pumps here.
CREATE OR REPLACE STREAM "WEBLOG" (
    COLUMN1 VARCHAR(32),
    COLUMN2 VARCHAR(32),
    COLUMN3 VARCHAR(32),
    COLUMN4 VARCHAR(32),
    COLUMN5 VARCHAR(64),
    COLUMN6 INTEGER);

CREATE OR REPLACE PUMP "WEBLOG_PUMP" AS INSERT INTO "WEBLOG"
    SELECT STREAM
        l.r.COLUMN1,
        l.r.COLUMN2,
        l.r.COLUMN3,
        l.r.COLUMN4,
        l.r.COLUMN5,
        l.r.COLUMN6
    FROM (SELECT STREAM W3C_LOG_PARSE(message, '%h %l %u %t \"%r\" %>s %b')
          FROM "SOURCE_SQL_STREAM_001") AS l(r);

CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    LOG_USER VARCHAR(5),
    ADDRESS VARCHAR(15),
    TIME_DATES VARCHAR(30));

CREATE OR REPLACE PUMP "REDUCED_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM CAST(s.COLUMN3 AS VARCHAR(5)) AS LOG_USER,
        CAST(s.COLUMN1 AS VARCHAR(15)) AS ADDRESS,
        CAST(s.COLUMN4 AS VARCHAR(30)) as TIME_DATES
    FROM "WEBLOG" s;
