-- SQL Reference, REGEX_REPLACE, Example 1: "Replace All String Values in a Source String
-- with a New Value". (The reference's text has a `;` after the call where a `,` belongs.)
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4),
    SECTOR VARCHAR(24),
    CHANGE REAL,
    PRICE REAL);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM TICKER_SYMBOL,
        REGEX_REPLACE(SECTOR, 'TECHNOLOGY', 'INFORMATION TECHNOLOGY', 1, 0),
        CHANGE,
        PRICE
    FROM "SOURCE_SQL_STREAM_001";
