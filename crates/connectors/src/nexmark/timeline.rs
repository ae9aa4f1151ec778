//! Event time of the Nexmark stream: when event number n happens, relative to the base
//! time.
//!
//! Owns: the rate model (a constant rate, or Nexmark's square/sine shapes made of
//! constant-rate steps that repeat every epoch). Everything is integer arithmetic, so the
//! time of an event never depends on which subtask computes it. Does not own the base
//! time (the source resolves it) or wall-clock throttling (`source.rs`).

use super::config::{NexmarkConfig, RateShape};

/// Steps of the sine shape per period, as in Nexmark.
const SINE_STEPS: u32 = 10;

/// Maps event numbers to event-time offsets in milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    /// Events per second in each step; one entry means a constant rate.
    rates: Vec<u64>,
    /// Length of a step in ms.
    step_ms: u64,
    /// Events in one pass over all steps.
    epoch_events: u64,
}

impl Timeline {
    /// The timeline of `config`'s rate options.
    pub(crate) fn new(config: &NexmarkConfig) -> Self {
        let first = config.first_event_rate.max(1);
        let next = config.next_event_rate.max(1);
        let rates = if first == next {
            vec![first]
        } else {
            match config.rate_shape {
                RateShape::Square => vec![first, next],
                RateShape::Sine => {
                    let mid = (first as f64 + next as f64) / 2.0;
                    let amp = (first as f64 - next as f64) / 2.0;
                    (0..SINE_STEPS)
                        .map(|i| {
                            let r =
                                2.0 * std::f64::consts::PI * f64::from(i) / f64::from(SINE_STEPS);
                            (mid + amp * r.cos()).round().max(1.0) as u64
                        })
                        .collect()
                }
            }
        };
        let steps = rates.len() as u64;
        let period_s = config.rate_period.as_secs().max(1);
        let step_s = period_s.div_ceil(steps).max(1);
        let epoch_events = rates
            .iter()
            .map(|r| r.saturating_mul(step_s))
            .fold(0u64, u64::saturating_add);
        Timeline {
            rates,
            step_ms: step_s * 1000,
            epoch_events: epoch_events.max(1),
        }
    }

    /// Milliseconds between event 0 and event `n`.
    pub(crate) fn offset_ms(&self, n: u64) -> i64 {
        if let [rate] = self.rates.as_slice() {
            // u64 arithmetic (much faster than u128) while n * 1000 cannot overflow.
            return match n.checked_mul(1000) {
                Some(ms) => i64::try_from(ms / rate).unwrap_or(i64::MAX),
                None => clamp(u128::from(n) * 1000 / u128::from(*rate)),
            };
        }
        let epoch = n / self.epoch_events;
        let mut rest = n % self.epoch_events;
        let epoch_ms = u128::from(self.step_ms) * self.rates.len() as u128;
        let mut ms = u128::from(epoch) * epoch_ms;
        for rate in &self.rates {
            let step_events = rate * (self.step_ms / 1000);
            if rest < step_events {
                return clamp(ms + u128::from(rest) * 1000 / u128::from(*rate));
            }
            rest -= step_events;
            ms += u128::from(self.step_ms);
        }
        clamp(ms)
    }

    /// The first event whose offset is greater than `ms`, searching `[lo, hi)`; `hi` when
    /// none is.
    pub(crate) fn first_after(&self, ms: i64, lo: u64, hi: u64) -> u64 {
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.offset_ms(mid) <= ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

fn clamp(v: u128) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
