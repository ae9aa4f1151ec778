-- Quickstart: 20,000 Nexmark events from the built-in generator, the expensive bids
-- converted to euros, printed as Flink prints them. Run: sluice run examples/quickstart.sql
CREATE TABLE bids (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  dateTime TIMESTAMP(3), extra STRING
) WITH (
  'connector' = 'nexmark',
  'table' = 'bid',
  'events.num' = '20000',
  'base-time' = '2024-01-01 12:00:00'
);

CREATE TABLE big_bids (
  auction BIGINT, bidder BIGINT, euros DECIMAL(23, 3), channel STRING, at_time STRING
) WITH ('connector' = 'print');

INSERT INTO big_bids
SELECT auction, bidder, 0.908 * price, channel, DATE_FORMAT(dateTime, 'HH:mm:ss.SSS')
FROM bids
WHERE price > 90000000;
