CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    "tx_minute"    TIMESTAMP NOT NULL,
    "sector"       VARCHAR(16),
    "total_nb_trx" BIGINT,
    "nb_with_fee"  BIGINT,
    "total_fee"    BIGINT,
    "min_fee"      INTEGER,
    "max_fee"      INTEGER);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM
        FLOOR(s.ROWTIME TO MINUTE),
        s.SECTOR,
        COUNT(*),
        COUNT(s.FEE),
        SUM(s.FEE),
        MIN(s.FEE),
        MAX(s.FEE)
        FROM "SOURCE_SQL_STREAM_001" AS s
        GROUP BY s.SECTOR, FLOOR(s.ROWTIME TO MINUTE);
