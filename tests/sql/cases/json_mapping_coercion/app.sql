CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    "customerName" VARCHAR(8),
    "city"         VARCHAR(16),
    "Name"         VARCHAR(16),
    "zip"          VARCHAR(8),
    "qty"          INTEGER,
    "vip"          BOOLEAN,
    "score"        DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT STREAM "customerName", "city", "Name", "zip", "qty", "vip", "score"
FROM "SOURCE_SQL_STREAM_001";
