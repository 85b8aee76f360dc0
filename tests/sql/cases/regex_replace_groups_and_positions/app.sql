CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    swapped      VARCHAR(32),
    second_digit VARCHAR(32),
    from_fourth  VARCHAR(32),
    from_row     VARCHAR(32));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM
        REGEX_REPLACE(S, '([A-Z]+)-([0-9]+)', '$2-$1', 1, 0),
        REGEX_REPLACE(S, '[0-9]', '#', 1, 2),
        REGEX_REPLACE(S, '[0-9]', '#', 4, 0),
        REGEX_REPLACE(S, P, R, 1, 0)
    FROM "SOURCE_SQL_STREAM_001";
