CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    trimmed       VARCHAR(32),
    no_leading_x  VARCHAR(32),
    no_trailing_x VARCHAR(32),
    no_y          VARCHAR(32),
    len           INTEGER,
    trimmed_len   INTEGER);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM TRIM(S),
              TRIM(LEADING 'x' FROM S),
              TRIM(TRAILING 'x' FROM S),
              TRIM(BOTH 'y' FROM S),
              CHAR_LENGTH(S),
              CHAR_LENGTH(TRIM(BOTH FROM S))
FROM "SOURCE_SQL_STREAM_001";
