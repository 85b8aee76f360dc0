-- Developer Guide, examples-transforming-strings-regexlogparse.md: REGEX_LOG_PARSE of a web
-- log entry. The guide's columns are VARCHAR(24), shorter than the entry and its matches, so
-- these are wider.
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (logentry VARCHAR(256), match1 VARCHAR(128), match2 VARCHAR(128));

CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM T.LOGENTRY, T.REC.COLUMN1, T.REC.COLUMN2
    FROM
         (SELECT STREAM LOGENTRY,
             REGEX_LOG_PARSE(LOGENTRY, '(\w.+) (\d.+) (\w.+) (\w.+)') AS REC
             FROM SOURCE_SQL_STREAM_001) AS T;
