-- About 1 GB of window state for scripts/bench-checkpoints.sh: ${ROWS} rows, each its own
-- group (a unique id and a 40-character tag) in a one-day window that fires only when
-- the input ends, so the state grows until then (a whole checkpoint copies all of it; an
-- incremental one only the groups that came since the last).
CREATE TABLE ev (
  id BIGINT,
  tag STRING,
  v INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '100000000',
  'number-of-rows' = '${ROWS}',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '1',
  'fields.id.end' = '${ROWS}',
  'fields.tag.length' = '40',
  'fields.v.min' = '0',
  'fields.v.max' = '1000',
  'fields.ts.max-past' = '1s',
  'seed' = '7'
);
CREATE TABLE out (id BIGINT, tag STRING, n BIGINT, total BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out
SELECT id, tag, COUNT(*), SUM(v)
FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' DAY))
GROUP BY id, tag, window_start, window_end;
