-- Nexmark q5 (hot items, tests/nexmark/q5.sql) with each result's window end carried to
-- the sink as `window_end`, so that the event time -> emit latency of its results is
-- measured: `sluice bench nexmark --query bench/q5-latency.sql --rate N`. The join
-- and the windows are the suite's; only the names of the window columns are kept.

CREATE TABLE q5_latency (
  auction  BIGINT,
  num  BIGINT,
  window_end TIMESTAMP(3)
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO q5_latency
SELECT AuctionBids.auction, AuctionBids.num, AuctionBids.window_end
 FROM (
   SELECT
     auction,
     count(*) AS num,
     window_start,
     window_end
     FROM TABLE(
             HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
     GROUP BY auction, window_start, window_end
 ) AS AuctionBids
 JOIN (
   SELECT
     max(CountBids.num) AS maxn,
     CountBids.window_start,
     CountBids.window_end
   FROM (
     SELECT
       count(*) AS num,
       window_start,
       window_end
     FROM TABLE(
                HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
     GROUP BY auction, window_start, window_end
     ) AS CountBids
   GROUP BY CountBids.window_start, CountBids.window_end
 ) AS MaxBids
 ON AuctionBids.window_start = MaxBids.window_start AND
    AuctionBids.window_end = MaxBids.window_end AND
    AuctionBids.num >= MaxBids.maxn;
