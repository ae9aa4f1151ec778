//! The Nexmark event model: which event a number is, and the values of its fields.
//!
//! Owns: the deterministic generator. Event number n (its position in the stream) maps
//! to an event id (n itself, or n permuted within its out-of-order group); the id decides
//! the kind (`id % (p+a+b)` against the proportions), the dense person/auction ids, the
//! event time, and seeds a small PRNG from which every other field is drawn, following
//! the model of the Nexmark benchmark's generator (hot auctions, bidders, sellers and
//! channels, log-uniform prices, `extra` padding to average sizes). So an event depends
//! only on its number, the seed and the options, never on which subtask makes it.
//! Does not own: Arrow (`columns.rs`), wall-clock pacing (`source.rs`), text output
//! (`write.rs`).

use std::ops::Range;

use super::config::NexmarkConfig;
use super::timeline::Timeline;

/// First person id, as in Nexmark.
pub(crate) const FIRST_PERSON_ID: i64 = 1000;
/// First auction id, as in Nexmark.
pub(crate) const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
const PERSON_ID_LEAD: i64 = 10;
const AUCTION_ID_LEAD: i64 = 10;
const NUM_ACTIVE_PEOPLE: i64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: i64 = 100;
/// Hot auctions/bidders/sellers are the first of each block of this many ids.
pub(crate) const HOT_BLOCK: i64 = 100;
const HOT_CHANNELS_RATIO: u64 = 2;
const COLD_CHANNELS: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];

/// The kinds of Nexmark events, numbered as in the `event_type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventKind {
    /// A new person (`event_type` 0).
    #[default]
    Person,
    /// A new auction (`event_type` 1).
    Auction,
    /// A bid (`event_type` 2).
    Bid,
}

impl EventKind {
    /// The `event_type` value.
    pub fn code(self) -> i32 {
        match self {
            EventKind::Person => 0,
            EventKind::Auction => 1,
            EventKind::Bid => 2,
        }
    }

    /// The lower-case name (`person`, `auction`, `bid`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Person => "person",
            EventKind::Auction => "auction",
            EventKind::Bid => "bid",
        }
    }
}

/// SplitMix64: tiny, fast, and stable across library versions (unlike `SmallRng`), so
/// the same seed gives the same events in every Sluice release.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator for `stream` (an event id) under `seed`.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        Rng(mix(seed ^ mix(stream.wrapping_add(GOLDEN))))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n` > 0), by multiply-shift.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A person's fields (strings are reused buffers).
#[derive(Debug, Default, Clone)]
pub(crate) struct Person {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) credit_card: String,
    pub(crate) city: &'static str,
    pub(crate) state: &'static str,
    pub(crate) date_time: i64,
    pub(crate) extra: Range<usize>,
}

/// An auction's fields.
#[derive(Debug, Default, Clone)]
pub(crate) struct Auction {
    pub(crate) id: i64,
    pub(crate) item_name: String,
    pub(crate) description: String,
    pub(crate) initial_bid: i64,
    pub(crate) reserve: i64,
    pub(crate) date_time: i64,
    pub(crate) expires: i64,
    pub(crate) seller: i64,
    pub(crate) category: i64,
    pub(crate) extra: Range<usize>,
}

/// A bid's fields; `channel` indexes the generator's channel table.
#[derive(Debug, Default, Clone)]
pub(crate) struct Bid {
    pub(crate) auction: i64,
    pub(crate) bidder: i64,
    pub(crate) price: i64,
    pub(crate) channel: usize,
    pub(crate) date_time: i64,
    pub(crate) extra: Range<usize>,
}

/// One event; only the part named by `kind` is current.
#[derive(Debug, Default, Clone)]
pub(crate) struct Event {
    pub(crate) kind: EventKind,
    pub(crate) person: Person,
    pub(crate) auction: Auction,
    pub(crate) bid: Bid,
}

/// Makes events from event numbers. Immutable, shared by all subtasks.
pub(crate) struct Generator {
    seed: u64,
    person_p: i64,
    auction_p: i64,
    total_p: i64,
    hot_auction_ratio: u64,
    hot_bidder_ratio: u64,
    hot_seller_ratio: u64,
    avg_sizes: [usize; 3],
    group: u64,
    events: Option<u64>,
    timeline: Timeline,
    /// Random lower-case letters; `extra` values are slices of it.
    pool: String,
    /// (channel, url): the 4 hot channels, then `channel-0` …
    channels: Vec<(String, String)>,
}

impl Generator {
    /// The generator of `config` (builds the channel table and letter pool, ~1 ms).
    pub(crate) fn new(config: &NexmarkConfig) -> Self {
        let seed = config.seed;
        let avg_sizes = [
            config.person_avg_size,
            config.auction_avg_size,
            config.bid_avg_size,
        ];
        let pool_len = (2 * avg_sizes.iter().copied().max().unwrap_or(0)).max(1 << 16);
        let mut rng = Rng::new(seed, u64::MAX);
        let pool: String = (0..pool_len).map(|_| letter(&mut rng)).collect();
        let mut channels = Vec::with_capacity(HOT_CHANNELS.len() + COLD_CHANNELS as usize);
        for (i, name) in HOT_CHANNELS.iter().enumerate() {
            let mut rng = Rng::new(seed ^ 0xC0FF_EE00, i as u64);
            channels.push(((*name).to_string(), base_url(&mut rng)));
        }
        for k in 0..COLD_CHANNELS {
            let mut rng = Rng::new(seed ^ 0xC0FF_EE01, k);
            let mut url = base_url(&mut rng);
            if rng.below(10) > 0 {
                let reversed = i64::from((k as i32).reverse_bits()).abs();
                url.push_str(&format!("&channel_id={reversed}"));
            }
            channels.push((format!("channel-{k}"), url));
        }
        Generator {
            seed,
            person_p: config.person_proportion as i64,
            auction_p: config.auction_proportion as i64,
            total_p: (config.person_proportion + config.auction_proportion + config.bid_proportion)
                as i64,
            hot_auction_ratio: config.hot_auction_ratio.max(1),
            hot_bidder_ratio: config.hot_bidder_ratio.max(1),
            hot_seller_ratio: config.hot_seller_ratio.max(1),
            avg_sizes,
            group: config.out_of_order_group_size.max(1),
            events: config.events,
            timeline: Timeline::new(config),
            pool,
            channels,
        }
    }

    /// The timeline (event-time offsets by event number).
    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The id of the event at stream position `position`: the position permuted within
    /// its out-of-order group (a bijection on every group, the last partial one included).
    pub(crate) fn event_id(&self, position: u64) -> u64 {
        if self.group <= 1 {
            return position;
        }
        let base = position / self.group * self.group;
        let size = match self.events {
            Some(total) if base + self.group > total => total.saturating_sub(base),
            _ => self.group,
        };
        if size <= 1 {
            return position;
        }
        // A multiplier coprime with the group size permutes it (953 and 967 are prime).
        let mult: u128 = if size % 953 != 0 {
            953
        } else if size % 967 != 0 {
            967
        } else {
            1
        };
        base + (u128::from(position - base) * mult % u128::from(size)) as u64
    }

    /// The kind of event `id`.
    pub(crate) fn kind_of(&self, id: u64) -> EventKind {
        let rem = (id % self.total_p as u64) as i64;
        if rem < self.person_p {
            EventKind::Person
        } else if rem < self.person_p + self.auction_p {
            EventKind::Auction
        } else {
            EventKind::Bid
        }
    }

    /// The kind of the event at `position`.
    pub(crate) fn kind_at(&self, position: u64) -> EventKind {
        self.kind_of(self.event_id(position))
    }

    /// Fills `ev` with the event at stream position `position`; `base_ms` is event 0's time.
    pub(crate) fn fill(&self, position: u64, base_ms: i64, ev: &mut Event) {
        let id = self.event_id(position);
        let kind = self.kind_of(id);
        let ts = base_ms.saturating_add(self.timeline.offset_ms(id));
        let mut rng = Rng::new(self.seed, id);
        ev.kind = kind;
        let id = id as i64;
        match kind {
            EventKind::Person => self.person(id, ts, &mut rng, &mut ev.person),
            EventKind::Auction => self.auction(id, ts, &mut rng, &mut ev.auction),
            EventKind::Bid => self.bid(id, ts, &mut rng, &mut ev.bid),
        }
    }

    /// An `extra` value.
    pub(crate) fn extra(&self, range: &Range<usize>) -> &str {
        self.pool.get(range.clone()).unwrap_or("")
    }

    /// A bid's channel name.
    pub(crate) fn channel(&self, i: usize) -> &str {
        self.channels.get(i).map_or("", |c| c.0.as_str())
    }

    /// A bid's url.
    pub(crate) fn url(&self, i: usize) -> &str {
        self.channels.get(i).map_or("", |c| c.1.as_str())
    }

    fn person(&self, id: i64, ts: i64, rng: &mut Rng, p: &mut Person) {
        p.id = self.last_person(id) + FIRST_PERSON_ID;
        p.name.clear();
        p.name.push_str(pick(&FIRST_NAMES, rng));
        p.name.push(' ');
        p.name.push_str(pick(&LAST_NAMES, rng));
        p.email.clear();
        push_string(rng, 7, ' ', &mut p.email);
        p.email.push('@');
        push_string(rng, 5, ' ', &mut p.email);
        p.email.push_str(".com");
        p.credit_card.clear();
        for i in 0..4 {
            if i > 0 {
                p.credit_card.push(' ');
            }
            let n = rng.below(10_000);
            for d in [n / 1000, n / 100 % 10, n / 10 % 10, n % 10] {
                p.credit_card.push(char::from(b'0' + d as u8));
            }
        }
        p.city = pick(&US_CITIES, rng);
        p.state = pick(&US_STATES, rng);
        p.date_time = ts;
        let size =
            8 + p.name.len() + p.email.len() + p.credit_card.len() + p.city.len() + p.state.len();
        p.extra = self.next_extra(rng, size, self.avg_sizes[0]);
    }

    fn auction(&self, id: i64, ts: i64, rng: &mut Rng, a: &mut Auction) {
        a.id = self.last_auction(id) + FIRST_AUCTION_ID;
        let seller = if rng.below(self.hot_seller_ratio) > 0 {
            self.last_person(id) / HOT_BLOCK * HOT_BLOCK
        } else {
            self.next_person(id, rng)
        };
        a.seller = seller + FIRST_PERSON_ID;
        a.category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64;
        a.initial_bid = next_price(rng);
        // Auctions last on average as long as it takes to create NUM_IN_FLIGHT_AUCTIONS more.
        let ahead = (NUM_IN_FLIGHT_AUCTIONS * self.total_p / self.auction_p) as u64;
        let horizon =
            self.timeline.offset_ms(id as u64 + ahead) - self.timeline.offset_ms(id as u64);
        a.expires = ts + 1 + rng.below((horizon.saturating_mul(2)).max(1) as u64) as i64;
        a.item_name.clear();
        push_string(rng, 20, ' ', &mut a.item_name);
        a.description.clear();
        push_string(rng, 100, ' ', &mut a.description);
        a.reserve = a.initial_bid + next_price(rng);
        a.date_time = ts;
        let size = 8 + a.item_name.len() + a.description.len() + 8 * 5;
        a.extra = self.next_extra(rng, size, self.avg_sizes[1]);
    }

    fn bid(&self, id: i64, ts: i64, rng: &mut Rng, b: &mut Bid) {
        let auction = if rng.below(self.hot_auction_ratio) > 0 {
            self.last_auction(id) / HOT_BLOCK * HOT_BLOCK
        } else {
            self.next_auction(id, rng)
        };
        b.auction = auction + FIRST_AUCTION_ID;
        let bidder = if rng.below(self.hot_bidder_ratio) > 0 {
            // The second person of the block, so hot bidders and hot sellers differ.
            self.last_person(id) / HOT_BLOCK * HOT_BLOCK + 1
        } else {
            self.next_person(id, rng)
        };
        b.bidder = bidder + FIRST_PERSON_ID;
        b.price = next_price(rng);
        b.channel = if rng.below(HOT_CHANNELS_RATIO) > 0 {
            rng.below(HOT_CHANNELS.len() as u64) as usize
        } else {
            HOT_CHANNELS.len() + rng.below(COLD_CHANNELS) as usize
        };
        b.date_time = ts;
        b.extra = self.next_extra(rng, 32, self.avg_sizes[2]);
    }

    /// The newest person id (base 0) at event `id`.
    fn last_person(&self, id: i64) -> i64 {
        let epoch = id / self.total_p;
        let offset = (id % self.total_p).min(self.person_p - 1);
        epoch * self.person_p + offset
    }

    /// The newest auction id (base 0) at event `id` (-1 before the first auction).
    fn last_auction(&self, id: i64) -> i64 {
        let mut epoch = id / self.total_p;
        let mut offset = id % self.total_p;
        if offset < self.person_p {
            epoch -= 1;
            offset = self.auction_p - 1;
        } else if offset >= self.person_p + self.auction_p {
            offset = self.auction_p - 1;
        } else {
            offset -= self.person_p;
        }
        epoch * self.auction_p + offset
    }

    /// A random active person (base 0), possibly a few ahead of the newest.
    fn next_person(&self, id: i64, rng: &mut Rng) -> i64 {
        let people = self.last_person(id) + 1;
        let active = people.min(NUM_ACTIVE_PEOPLE);
        people - active + rng.below((active + PERSON_ID_LEAD).max(1) as u64) as i64
    }

    /// A random auction likely still open (base 0), possibly a few ahead of the newest.
    fn next_auction(&self, id: i64, rng: &mut Rng) -> i64 {
        let max = self.last_auction(id);
        let min = (max - NUM_IN_FLIGHT_AUCTIONS).max(0);
        min + rng.below((max - min + 1 + AUCTION_ID_LEAD).max(1) as u64) as i64
    }

    /// Padding so that `current + extra` averages `avg` bytes (±20%).
    fn next_extra(&self, rng: &mut Rng, current: usize, avg: usize) -> Range<usize> {
        if current > avg {
            return 0..0;
        }
        let want = avg - current;
        let delta = (want as f64 * 0.2).round() as usize;
        let size = want - delta
            + if delta == 0 {
                0
            } else {
                rng.below(2 * delta as u64) as usize
            };
        let size = size.min(self.pool.len());
        let start = rng.below((self.pool.len() - size + 1) as u64) as usize;
        start..start + size
    }
}

/// `round(10^(U*6) * 100)`: log-uniform between 1 and 100,000,000 cents.
fn next_price(rng: &mut Rng) -> i64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0).round() as i64
}

fn letter(rng: &mut Rng) -> char {
    char::from(b'a' + rng.below(26) as u8)
}

fn pick<'a>(list: &[&'a str], rng: &mut Rng) -> &'a str {
    list[rng.below(list.len() as u64) as usize]
}

/// Appends 3..max_len-1 random letters, one in 13 being `space`; spaces are trimmed
/// from both ends of what was appended.
fn push_string(rng: &mut Rng, max_len: u64, space: char, out: &mut String) {
    let start = out.len();
    let len = 3 + rng.below(max_len - 3);
    for _ in 0..len {
        if rng.below(13) == 0 {
            out.push(space);
        } else {
            out.push(letter(rng));
        }
    }
    if space == ' ' {
        let added = &out[start..];
        let trail = added.len() - added.trim_end().len();
        let lead = added.len() - added.trim_start().len();
        out.truncate(out.len() - trail);
        let lead = lead.min(out.len() - start);
        out.drain(start..start + lead);
    }
}

/// `https://www.nexmark.com/<s>/<s>/<s>/item.htm?query=1`, as Nexmark's bid urls.
fn base_url(rng: &mut Rng) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    for _ in 0..3 {
        push_string(rng, 5, '_', &mut url);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}
