-- IoT anomalies: temperature readings of five sensors (every 15 s for 20 minutes) scored
-- against each sensor's last 5 minutes; the windows whose latest reading is anomalous
-- are printed as alerts. Run from the repository root: sluice run examples/iot_anomalies.sql
--
-- A 5-minute window sliding every 15 s makes every reading the latest of one window.
-- ZSCORE and MAD_SCORE score that latest reading; MAD_SCORE is robust to earlier
-- outliers in the window, so it still flags the second of two spikes in a row. Windows
-- with fewer than 10 readings (the first minutes) are skipped: too little history.
-- examples/data/sensor_readings.csv has four injected anomalies: sensor-2 (a fridge) at
-- 10:06:03 and 10:06:18, sensor-4 (a server room) at 10:13:39, sensor-5 (a freezer) at
-- 10:17:42.
CREATE TABLE readings (
  sensor_id STRING, ts TIMESTAMP(3), temperature DOUBLE, humidity DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '30' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = 'examples/data/sensor_readings.csv',
  'format' = 'csv'
);

CREATE TABLE alerts (
  sensor_id STRING, window_end TIMESTAMP(3), readings BIGINT, avg_temp DOUBLE,
  zscore DOUBLE, mad_score DOUBLE, ewma DOUBLE
) WITH ('connector' = 'print');

INSERT INTO alerts
SELECT sensor_id, window_end, COUNT(*), ROUND(AVG(temperature), 2),
       ROUND(ZSCORE(temperature, ts), 2), ROUND(MAD_SCORE(temperature, ts), 2),
       ROUND(EWMA(temperature, ts, 0.3), 2)
FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '15' SECOND, INTERVAL '5' MINUTE))
GROUP BY sensor_id, window_start, window_end
HAVING COUNT(*) >= 10
   AND (ABS(ZSCORE(temperature, ts)) > 3 OR ABS(MAD_SCORE(temperature, ts)) > 3.5);
