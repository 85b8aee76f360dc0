-- SYS_LOG_PARSE: the SQL Reference gives its format ('Mon DD HH:MM:SS server message') and
-- its two columns (COLUMN1 a TIMESTAMP, COLUMN2 the text after it) and no example; the lines
-- are RFC 3164's examples, which it points to, and a line as a Linux syslog file holds it.
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (LOGGED_AT TIMESTAMP, MESSAGE VARCHAR(256));

CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM t.r.COLUMN1, t.r.COLUMN2
    FROM (SELECT STREAM SYS_LOG_PARSE("line") AS r FROM "SOURCE_SQL_STREAM_001") AS t;
