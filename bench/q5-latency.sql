-- Nexmark q5 (hot items, tests/nexmark/q5.sql) with each result's window end carried to
-- the sink as `window_end`, so that the event time -> emit latency of its results is
-- measured: `sluice bench nexmark --query bench/q5-latency.sql --rate N`. Apart from
-- that column the query is the suite's, word for word.

CREATE TABLE q5_latency (
  auction  BIGINT,
  num  BIGINT,
  window_end TIMESTAMP(3)
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO q5_latency
SELECT AuctionBids.auction, AuctionBids.num, AuctionBids.endtime AS window_end
 FROM (
   SELECT
     auction,
     count(*) AS num,
     window_start AS starttime,
     window_end AS endtime
     FROM TABLE(
             HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
     GROUP BY auction, window_start, window_end
 ) AS AuctionBids
 JOIN (
   SELECT
     max(CountBids.num) AS maxn,
     CountBids.starttime,
     CountBids.endtime
   FROM (
     SELECT
       count(*) AS num,
       window_start AS starttime,
       window_end AS endtime
     FROM TABLE(
                HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
     GROUP BY auction, window_start, window_end
     ) AS CountBids
   GROUP BY CountBids.starttime, CountBids.endtime
 ) AS MaxBids
 ON AuctionBids.starttime = MaxBids.starttime AND
    AuctionBids.endtime = MaxBids.endtime AND
    AuctionBids.num >= MaxBids.maxn;
