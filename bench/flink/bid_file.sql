-- Nexmark BID source over the newline-delimited JSON written by
-- /work/shared/peers/nexmark_gen.py (date_time as 'YYYY-MM-DD HH:MM:SS.sss').
-- ${INPUT} is replaced by flink_sql_run.py with the input path.
-- The view `bid` has the columns of the suite's ddl_views.sql `bid` view, so the
-- suite's qN.sql text runs unchanged on top of it.
CREATE TABLE bid_file (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  url STRING,
  date_time TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT}',
  'format' = 'json'
);

CREATE VIEW bid AS
SELECT auction, bidder, price, channel, url, date_time AS `dateTime`, extra
FROM bid_file;
