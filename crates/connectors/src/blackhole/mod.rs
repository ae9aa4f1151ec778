//! `'connector' = 'blackhole'`: a sink that discards every row (for benchmarks), as in
//! Flink. Sluice adds `sink.throttle.rows-per-second` to make it a deliberately slow
//! sink, which shows backpressure: the sources slow down, memory stays flat.

mod sink;

pub use sink::BlackholeConnector;
