-- The Developer Guide's HOTSPOTS application, with a window of 100 rows (KDA's smallest),
-- a scan radius of 0.5 and hotspots of at least 3 points, for a handful of rows; and with
-- SELECT STREAM where the guide's pump has SELECT (Weir's pumps select STREAM).
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    "x" DOUBLE,
    "y" DOUBLE,
    "is_hot" VARCHAR(4),
    HOTSPOTS_RESULT VARCHAR(10000)
);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM "x", "y", "is_hot", "HOTSPOTS_RESULT"
    FROM TABLE (
        HOTSPOTS(
            CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
            100,
            0.5,
            3)
    );
