-- Clickstream over HTTP into sessions in Redis: the web front ends POST click events
-- (NDJSON batches) to /ingest/clicks; each user's clicks less than 30 minutes apart
-- form a session, written to Redis as the hash session:<user>:<start> once the session
-- is over (the watermark passed its end), for the dashboards and the recommender.
--
--   INGEST_TOKEN=s3cret sluice run --http 0.0.0.0:8080 -D REDIS_URL=redis://localhost:6379/0 \
--     --checkpoint-dir chk examples/clickstream_http_sessions.sql
--   curl -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/x-ndjson' \
--     --data-binary @clicks.ndjson http://localhost:8080/ingest/clicks
CREATE TABLE clicks (
  user_id BIGINT, url STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
) WITH (
  'connector' = 'http', 'format' = 'json', 'auth.token' = '${INGEST_TOKEN}',
  'json.fail-on-missing-field' = 'true'
);

CREATE TABLE sessions (
  user_id BIGINT, session_start TIMESTAMP(3), session_end TIMESTAMP(3),
  clicks BIGINT, pages BIGINT,
  PRIMARY KEY (user_id, session_start) NOT ENFORCED
) WITH (
  'connector' = 'redis', 'url' = '${REDIS_URL}', 'sink.command' = 'hset',
  'key' = 'session:{user_id}:{session_start}', 'sink.ttl' = '7 d'
);

INSERT INTO sessions
SELECT user_id, window_start, window_end, COUNT(*), COUNT(DISTINCT url)
FROM TABLE(SESSION(TABLE clicks PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '30' MINUTE))
GROUP BY user_id, window_start, window_end;
