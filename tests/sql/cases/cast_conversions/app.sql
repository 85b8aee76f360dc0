CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    qty_plus_one INTEGER,
    qty_label    VARCHAR(16),
    qty_quarter  DOUBLE,
    event_ts     TIMESTAMP,
    flag         BOOLEAN);
-- No column list: the select items go to the stream's columns by position.
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM CAST(QTY_TEXT AS INTEGER) + 1,
              CAST(QTY AS VARCHAR(8)) || ' units',
              CAST(QTY AS DOUBLE) / 4,
              CAST(TS_TEXT AS TIMESTAMP),
              CAST(FLAG_TEXT AS BOOLEAN)
FROM "SOURCE_SQL_STREAM_001";
