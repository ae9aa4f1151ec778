-- Trades over WebSocket into per-symbol 1-minute OHLC bars: the feed at FEED_URL
-- streams trades as JSON text frames once subscribed; each symbol's trades of a minute
-- become one bar (open, high, low, close, volume, trades) when the watermark passes
-- the minute's end, written as JSON lines under BARS_PATH (files appear at each
-- checkpoint).
--
--   sluice run -D FEED_URL=wss://feed.example.com/ws -D BARS_PATH=/data/bars \
--     --checkpoint-dir chk --checkpoint-interval 10s examples/trades_websocket_ohlc.sql
--
-- The source reconnects with backoff and subscribes again after every connect; a live
-- feed keeps no history, so trades sent while it is down are not seen.
CREATE TABLE trades (
  symbol STRING, price DOUBLE, qty DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'websocket', 'url' = '${FEED_URL}',
  'subscribe.message' = '{"op": "subscribe", "channel": "trades"}',
  'format' = 'json'
);

CREATE TABLE bars (
  symbol STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
  open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, trades BIGINT
) WITH ('connector' = 'filesystem', 'path' = '${BARS_PATH}', 'format' = 'json');

INSERT INTO bars
SELECT symbol, window_start, window_end,
       FIRST_VALUE(price), MAX(price), MIN(price), LAST_VALUE(price), SUM(qty), COUNT(*)
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY symbol, window_start, window_end;
