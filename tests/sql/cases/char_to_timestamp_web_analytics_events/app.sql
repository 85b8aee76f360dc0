-- The "Events" pump of the AWS solution Real-Time Web Analytics with Kinesis Data Analytics
-- (aws-solutions/real-time-web-analytics-with-kinesis, deployment/real-time-web-analytics-with-kinesis.yaml),
-- with its outer SELECT 'event_count', UNIX_TIMESTAMP(eventTimestamp), event, event_count
-- FROM (SELECT STREAM ...) folded into the inner select (Weir takes no GROUP BY in a FROM
-- subquery yet).
CREATE STREAM "EVENT_STREAM"(
    MetricType VARCHAR(16),
    EventTimestamp BIGINT,
    MetricItem VARCHAR(1024),
    UnitValueInt BIGINT);
CREATE OR REPLACE PUMP "SHARED_EVENT_PUMP" AS
INSERT INTO "EVENT_STREAM" ( MetricType, EventTimestamp, MetricItem, UnitValueInt)
SELECT STREAM 'event_count',
    UNIX_TIMESTAMP(STEP (CHAR_TO_TIMESTAMP('dd/MMM/yyyy:HH:mm:ss z',weblogs."datetime") by INTERVAL '10' SECOND)),
    weblogs."event",
    count(*)
FROM "WASA_001" weblogs
WHERE weblogs."event" is not NULL
GROUP BY
    weblogs."event",
    STEP (weblogs.ROWTIME BY INTERVAL '10' SECOND),
    STEP (CHAR_TO_TIMESTAMP('dd/MMM/yyyy:HH:mm:ss z',weblogs."datetime") by INTERVAL '10' SECOND);
