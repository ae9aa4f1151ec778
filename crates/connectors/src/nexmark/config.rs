//! The `WITH (...)` options of the `nexmark` connector, parsed into [`NexmarkConfig`].
//!
//! Owns: option names, defaults and validation (unknown options are errors through
//! [`Options::finish`]). Does not own: the event model (`generator.rs`) or timing
//! (`timeline.rs`, `source.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

use super::generator::EventKind;
use crate::{Options, Result};

/// Default `first-event.rate` (events per second of event time), as in Nexmark.
pub const DEFAULT_RATE: u64 = 10_000;
/// Default `batch-size` (events per generated batch).
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// How the event rate moves between `first-event.rate` and `next-event.rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateShape {
    /// Alternates between the two rates, each for half of `rate.period`.
    Square,
    /// Follows a cosine from the first rate to the next and back over `rate.period`
    /// (in 10 steps).
    Sine,
}

/// Everything that decides which events the Nexmark generator makes and how fast.
///
/// Two configs that are equal (with the same resolved `base_time`) produce identical
/// events, whatever the parallelism.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    /// `first-event.rate`: events per second of event time (and of wall-clock time when
    /// throttled).
    pub first_event_rate: u64,
    /// `next-event.rate`: the second rate of the rate shape (equal to the first when unset).
    pub next_event_rate: u64,
    /// `rate.shape`.
    pub rate_shape: RateShape,
    /// `rate.period`: the period of the rate shape.
    pub rate_period: Duration,
    /// Whether the source sleeps so that it emits at the configured rate. True when
    /// `first-event.rate` is given (unless `rate.limited` = 'false') or `rate.limited` =
    /// 'true'.
    pub throttle: bool,
    /// `events.num`: total events over all subtasks; `None` (or 0) is unbounded.
    pub events: Option<u64>,
    /// `person.proportion`.
    pub person_proportion: u64,
    /// `auction.proportion`.
    pub auction_proportion: u64,
    /// `bid.proportion`.
    pub bid_proportion: u64,
    /// `bid.hot-ratio.auctions`: a bid is for a hot auction with probability 1 - 1/ratio.
    pub hot_auction_ratio: u64,
    /// `bid.hot-ratio.bidders`: a bid is by a hot bidder with probability 1 - 1/ratio.
    pub hot_bidder_ratio: u64,
    /// `auction.hot-ratio.sellers`: an auction is by a hot seller with probability
    /// 1 - 1/ratio.
    pub hot_seller_ratio: u64,
    /// `person.avg-size`: average person size in bytes (padding goes to `extra`).
    pub person_avg_size: usize,
    /// `auction.avg-size`: average auction size in bytes.
    pub auction_avg_size: usize,
    /// `bid.avg-size`: average bid size in bytes.
    pub bid_avg_size: usize,
    /// `out-of-order-group-size`: events are permuted within groups of this many.
    pub out_of_order_group_size: u64,
    /// `base-time`: event time of event 0 in ms since the epoch; `None` means the
    /// wall-clock time when the table is planned.
    pub base_time: Option<i64>,
    /// `table`: emit only this kind of event, in the flat layout.
    pub table: Option<EventKind>,
    /// `seed`: changes every random choice; the same seed gives the same events.
    pub seed: u64,
    /// `batch-size`: consecutive event numbers per batch (the unit of parallel split).
    pub batch_size: usize,
    /// `max-events-per-subtask`: a subtask ends after emitting this many events.
    pub max_events_per_subtask: Option<u64>,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            first_event_rate: DEFAULT_RATE,
            next_event_rate: DEFAULT_RATE,
            rate_shape: RateShape::Square,
            rate_period: Duration::from_secs(600),
            throttle: false,
            events: None,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            hot_auction_ratio: 2,
            hot_bidder_ratio: 4,
            hot_seller_ratio: 4,
            person_avg_size: 200,
            auction_avg_size: 500,
            bid_avg_size: 100,
            out_of_order_group_size: 1,
            base_time: None,
            table: None,
            seed: 0,
            batch_size: DEFAULT_BATCH_SIZE,
            max_events_per_subtask: None,
        }
    }
}

impl NexmarkConfig {
    /// Parses a table's `WITH` options (`connector` included or not); unknown options
    /// are errors. `table` names the table in messages.
    pub fn from_options(table: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let mut opts = Options::new(table, "nexmark", options);
        let config = Self::take_from(&mut opts)?;
        opts.finish()?;
        Ok(config)
    }

    /// Takes every nexmark option out of `opts` (the caller calls `finish`).
    pub(crate) fn take_from(opts: &mut Options) -> Result<Self> {
        let d = NexmarkConfig::default();
        let first = positive(
            opts,
            "first-event.rate",
            "a positive number of events per second",
        )?;
        let next = positive(
            opts,
            "next-event.rate",
            "a positive number of events per second",
        )?;
        let rate_shape = match opts.take("rate.shape") {
            None => d.rate_shape,
            Some(v) if v.trim().eq_ignore_ascii_case("square") => RateShape::Square,
            Some(v) if v.trim().eq_ignore_ascii_case("sine") => RateShape::Sine,
            Some(v) => {
                return Err(opts.bad(
                    "rate.shape",
                    &format!("'{v}' is not a rate shape; write 'square' or 'sine'"),
                ));
            }
        };
        let rate_period = match opts.take("rate.period") {
            None => d.rate_period,
            Some(v) => sluice_types::parse_duration(&v).map_err(|m| opts.bad("rate.period", &m))?,
        };
        if rate_period.is_zero() {
            return Err(opts.bad("rate.period", "must be longer than zero, e.g. '10 min'"));
        }
        let limited = match opts.take("rate.limited") {
            None => None,
            Some(v) if v.trim().eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.trim().eq_ignore_ascii_case("false") => Some(false),
            Some(v) => {
                return Err(opts.bad(
                    "rate.limited",
                    &format!("'{v}' is not a boolean; write 'true' or 'false'"),
                ));
            }
        };
        let first_event_rate = first.unwrap_or(d.first_event_rate);
        let events = opts
            .take_parsed::<u64>("events.num", "a number of events (0 = unbounded)")?
            .filter(|n| *n > 0);
        let person_proportion = positive(opts, "person.proportion", "a positive integer")?
            .unwrap_or(d.person_proportion);
        let auction_proportion = positive(opts, "auction.proportion", "a positive integer")?
            .unwrap_or(d.auction_proportion);
        let bid_proportion = opts
            .take_parsed::<u64>("bid.proportion", "a non-negative integer")?
            .unwrap_or(d.bid_proportion);
        let base_time = match opts.take("base-time") {
            None => None,
            Some(v) => Some(parse_base_time(&v).ok_or_else(|| {
                opts.bad("base-time", &format!("'{v}' is not a time; write e.g. '2024-01-01 00:00:00' or epoch milliseconds"))
            })?),
        };
        let table = match opts.take("table") {
            None => None,
            Some(v) => Some(match v.trim().to_ascii_lowercase().as_str() {
                "bid" => EventKind::Bid,
                "auction" => EventKind::Auction,
                "person" => EventKind::Person,
                _ => {
                    return Err(opts.bad(
                        "table",
                        &format!(
                            "'{v}' is not a Nexmark table; write 'bid', 'auction' or 'person'"
                        ),
                    ));
                }
            }),
        };
        let batch_size = positive(opts, "batch-size", "a positive number of events")?
            .map_or(d.batch_size, |n| n as usize);
        Ok(NexmarkConfig {
            first_event_rate,
            next_event_rate: next.unwrap_or(first_event_rate),
            rate_shape,
            rate_period,
            throttle: limited.unwrap_or(first.is_some()),
            events,
            person_proportion,
            auction_proportion,
            bid_proportion,
            hot_auction_ratio: positive(opts, "bid.hot-ratio.auctions", "a positive integer")?
                .unwrap_or(d.hot_auction_ratio),
            hot_bidder_ratio: positive(opts, "bid.hot-ratio.bidders", "a positive integer")?
                .unwrap_or(d.hot_bidder_ratio),
            hot_seller_ratio: positive(opts, "auction.hot-ratio.sellers", "a positive integer")?
                .unwrap_or(d.hot_seller_ratio),
            person_avg_size: byte_size(opts, "person.avg-size")?.unwrap_or(d.person_avg_size),
            auction_avg_size: byte_size(opts, "auction.avg-size")?.unwrap_or(d.auction_avg_size),
            bid_avg_size: byte_size(opts, "bid.avg-size")?.unwrap_or(d.bid_avg_size),
            out_of_order_group_size: positive(
                opts,
                "out-of-order-group-size",
                "a positive number of events",
            )?
            .unwrap_or(d.out_of_order_group_size),
            base_time,
            table,
            seed: opts
                .take_parsed::<u64>("seed", "a non-negative integer")?
                .unwrap_or(d.seed),
            batch_size,
            max_events_per_subtask: opts
                .take_parsed::<u64>("max-events-per-subtask", "a number of events")?,
        })
    }
}

impl NexmarkConfig {
    /// The config with values that options would have rejected raised to their minimum
    /// (for configs built in code, e.g. by the CLI).
    pub(crate) fn sanitized(&self) -> Self {
        let mut c = self.clone();
        c.first_event_rate = c.first_event_rate.max(1);
        c.next_event_rate = c.next_event_rate.max(1);
        c.person_proportion = c.person_proportion.max(1);
        c.auction_proportion = c.auction_proportion.max(1);
        c.hot_auction_ratio = c.hot_auction_ratio.max(1);
        c.hot_bidder_ratio = c.hot_bidder_ratio.max(1);
        c.hot_seller_ratio = c.hot_seller_ratio.max(1);
        c.out_of_order_group_size = c.out_of_order_group_size.max(1);
        c.batch_size = c.batch_size.max(1);
        c.events = c.events.filter(|n| *n > 0);
        c
    }
}

/// Takes a positive integer option.
fn positive(opts: &mut Options, key: &str, what: &str) -> Result<Option<u64>> {
    match opts.take_parsed::<u64>(key, what)? {
        Some(0) => Err(opts.bad(key, &format!("must be {what}, not 0"))),
        v => Ok(v),
    }
}

/// Takes a byte size such as `200`, `200b` or `1kb` (at most 1 MiB).
fn byte_size(opts: &mut Options, key: &str) -> Result<Option<usize>> {
    let Some(v) = opts.take(key) else {
        return Ok(None);
    };
    let t = v.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("kb") {
        (n, 1024)
    } else if let Some(n) = t.strip_suffix('b') {
        (n, 1)
    } else {
        (t.as_str(), 1)
    };
    match num.trim().parse::<usize>() {
        Ok(n) if n * mult <= 1 << 20 => Ok(Some(n * mult)),
        _ => Err(opts.bad(
            key,
            &format!("'{v}' is not a size in bytes up to 1 MiB; write e.g. '200b'"),
        )),
    }
}

/// Parses `2024-01-01 00:00:00[.sss]`, the same with `T`, a bare date, or epoch ms
/// (UTC).
pub(crate) fn parse_base_time(text: &str) -> Option<i64> {
    let t = text.trim().trim_end_matches('Z');
    if let Ok(ms) = t.parse::<i64>() {
        return Some(ms);
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}
