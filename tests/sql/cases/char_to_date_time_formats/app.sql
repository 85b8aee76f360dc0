CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    the_day     DATE,
    the_time    TIME,
    day_long    VARCHAR(32),
    time_12h    VARCHAR(16),
    event_day   VARCHAR(24),
    event_clock VARCHAR(24));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM CHAR_TO_DATE('dd/MM/yyyy', DAY_TEXT),
        CHAR_TO_TIME('HH:mm:ss', CLOCK_TEXT),
        DATE_TO_CHAR('EEEE d MMMM yyyy', CHAR_TO_DATE('dd/MM/yyyy', DAY_TEXT)),
        TIME_TO_CHAR('h:mm:ss a', CHAR_TO_TIME('HH:mm:ss', CLOCK_TEXT)),
        DATE_TO_CHAR('yyyy-MM-dd HH:mm', CAST(EVENT_TIME AS DATE)),
        TIME_TO_CHAR('yyyy-MM-dd HH:mm:ss.SSS', CAST(EVENT_TIME AS TIME))
    FROM "SOURCE_SQL_STREAM_001";
