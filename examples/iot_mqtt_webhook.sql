-- IoT sensors over MQTT, per-sensor anomaly alerts to a webhook: the scoring of
-- examples/iot_anomalies.sql on live data. Devices publish JSON readings to
-- sensors/<sensor_id>/reading (QoS 1); each 5-minute window sliding every 15 s scores
-- a sensor's latest reading against its recent history, and an anomalous one becomes
-- one POST to the incident system, with retries, a circuit breaker, and dead letters
-- if the endpoint stays down.
--
--   sluice run -D MQTT_URL=mqtt://localhost:1883 -D ALERT_URL=https://hooks.example/alerts \
--     --checkpoint-dir chk examples/iot_mqtt_webhook.sql
--
-- With checkpoints, readings are acknowledged to the broker only once the checkpoint
-- holding them completed: a crash loses and double-counts nothing.
CREATE TABLE readings (
  ts TIMESTAMP(3), temperature DOUBLE, humidity DOUBLE,
  topic STRING METADATA,
  WATERMARK FOR ts AS ts - INTERVAL '30' SECOND
) WITH (
  'connector' = 'mqtt', 'url' = '${MQTT_URL}', 'topic' = 'sensors/+/reading',
  'qos' = '1', 'client-id' = 'sluice-iot-alerts', 'format' = 'json'
);

CREATE TABLE alerts (
  sensor_id STRING, window_end TIMESTAMP(3), readings BIGINT, temperature DOUBLE,
  zscore DOUBLE, mad_score DOUBLE
) WITH (
  'connector' = 'webhook', 'url' = '${ALERT_URL}',
  'body.template' = '{"title": "{{sensor_id}}: anomalous temperature {{temperature}}", "window_end": "{{window_end}}", "zscore": {{zscore}}, "mad_score": {{mad_score}}}',
  'sink.max-retries' = '5', 'sink.retry.initial-backoff' = '200 ms'
);

INSERT INTO alerts
SELECT SPLIT_PART(topic, '/', 2), window_end, COUNT(*), LAST_VALUE(temperature),
       ROUND(ZSCORE(temperature, ts), 2), ROUND(MAD_SCORE(temperature, ts), 2)
FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '15' SECOND, INTERVAL '5' MINUTE))
GROUP BY SPLIT_PART(topic, '/', 2), window_start, window_end
HAVING COUNT(*) >= 10
   AND (ABS(ZSCORE(temperature, ts)) > 3 OR ABS(MAD_SCORE(temperature, ts)) > 3.5);
