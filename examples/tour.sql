-- The README's tour pipeline (run by the tests).
SET 'parallelism.default' = '2';

CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
  date_time TIMESTAMP(3), extra VARCHAR,
  price_eur AS 0.908 * price,                       -- computed column
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'tests/data/bids.json', 'format' = 'json');

CREATE VIEW big AS SELECT * FROM bid WHERE price > 1000000;

CREATE TABLE alerts (auction BIGINT, euros DECIMAL(23, 3), channel STRING, hour_of_day BIGINT)
WITH ('connector' = 'print');

INSERT INTO alerts
SELECT auction, price_eur, upper(channel), HOUR(date_time) FROM big
WHERE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) IS NULL;
