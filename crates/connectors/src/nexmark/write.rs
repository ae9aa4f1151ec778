//! `sluice gen nexmark`: the same events as the source, written as JSON lines or CSV.
//!
//! Owns: the text layouts (flat tables with `date_time`, as the peers' `bid`,
//! `auction`, `person` tables; the nested layout of Nexmark's DDL for all events) and
//! fast formatting (one reused buffer, hand-formatted integers, timestamps formatted
//! once per second). Does not own event values (`generator.rs`).

use std::io::Write;
use std::str::FromStr;

use super::columns::{LeafType, fields_of};
use super::config::NexmarkConfig;
use super::connector::now_ms;
use super::generator::{Event, EventKind, Generator};
use crate::{Error, Result};

/// Which events [`write_events`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenTable {
    /// Bids only: `auction, bidder, price, channel, url, date_time, extra`.
    Bid,
    /// Auctions only: `id, itemName, description, initialBid, reserve, date_time,
    /// expires, seller, category, extra`.
    Auction,
    /// People only: `id, name, emailAddress, creditCard, city, state, date_time, extra`.
    Person,
    /// Every event in the nested layout (`event_type`, `person`, `auction`, `bid`);
    /// JSON only.
    All,
}

impl FromStr for GenTable {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bid" => Ok(GenTable::Bid),
            "auction" => Ok(GenTable::Auction),
            "person" => Ok(GenTable::Person),
            "all" => Ok(GenTable::All),
            _ => Err(format!(
                "'{s}' is not a Nexmark table; use bid, auction, person or all"
            )),
        }
    }
}

/// The text format of [`write_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    /// One JSON object per line.
    Json,
    /// Comma-separated values without a header, columns in table order.
    Csv,
}

impl FromStr for GenFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(GenFormat::Json),
            "csv" => Ok(GenFormat::Csv),
            _ => Err(format!("'{s}' is not a format; use json or csv")),
        }
    }
}

/// Writes the events of `config` (`events.num` of them, all kinds counted; forever when
/// unbounded) to `out`, keeping those of `table`. Uses the source's generator, so a
/// table reading this output sees the same rows as `'connector' = 'nexmark'` with the
/// same options. `config.table` and throttling are ignored. Returns the rows written.
pub fn write_events(
    config: &NexmarkConfig,
    table: GenTable,
    format: GenFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    let only = match table {
        GenTable::Bid => Some(EventKind::Bid),
        GenTable::Auction => Some(EventKind::Auction),
        GenTable::Person => Some(EventKind::Person),
        GenTable::All if format == GenFormat::Csv => {
            return Err(Error::Unsupported {
                table: "nexmark".into(),
                message: "CSV output needs one event kind: choose bid, auction or person, or use JSON for all events"
                    .into(),
            });
        }
        GenTable::All => None,
    };
    let config = &config.sanitized();
    let generator = Generator::new(config);
    let base_ms = config.base_time.unwrap_or_else(now_ms);
    let mut w = TextWriter {
        out,
        buf: Vec::with_capacity(FLUSH_AT + 4096),
        ts: TsCache::default(),
    };
    let mut event = Event::default();
    let mut rows = 0u64;
    let end = config.events.unwrap_or(u64::MAX);
    for pos in 0..end {
        if let Some(kind) = only
            && generator.kind_at(pos) != kind
        {
            continue;
        }
        generator.fill(pos, base_ms, &mut event);
        match (only, format) {
            (Some(kind), GenFormat::Json) => w.json_object(kind, &event, &generator, true),
            (Some(kind), GenFormat::Csv) => w.csv_row(kind, &event, &generator),
            (None, _) => w.json_nested(&event, &generator),
        }
        w.buf.push(b'\n');
        rows += 1;
        if w.buf.len() >= FLUSH_AT {
            w.flush()?;
        }
    }
    w.flush()?;
    w.out.flush().map_err(output_error)?;
    Ok(rows)
}

const FLUSH_AT: usize = 1 << 20;

fn output_error(source: std::io::Error) -> Error {
    Error::Output {
        table: "nexmark".into(),
        path: "output".into(),
        source,
    }
}

struct TextWriter<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    ts: TsCache,
}

impl TextWriter<'_> {
    fn flush(&mut self) -> Result<()> {
        self.out.write_all(&self.buf).map_err(output_error)?;
        self.buf.clear();
        Ok(())
    }

    /// `{"f":v,…}` of `kind`'s fields; `flat` names the event time `date_time`.
    fn json_object(&mut self, kind: EventKind, ev: &Event, generator: &Generator, flat: bool) {
        self.buf.push(b'{');
        for (i, (name, value, ty)) in fields_of(kind).iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.push(b'"');
            let name = if flat && *name == "dateTime" {
                "date_time"
            } else {
                name
            };
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.extend_from_slice(b"\":");
            match ty {
                LeafType::Int64 => push_int(&mut self.buf, value.int(ev)),
                LeafType::Utf8 => push_json_str(&mut self.buf, value.str(ev, generator)),
                LeafType::Timestamp => {
                    self.buf.push(b'"');
                    self.ts.push(&mut self.buf, value.int(ev));
                    self.buf.push(b'"');
                }
            }
        }
        self.buf.push(b'}');
    }

    fn json_nested(&mut self, ev: &Event, generator: &Generator) {
        self.buf.extend_from_slice(b"{\"event_type\":");
        push_int(&mut self.buf, i64::from(ev.kind.code()));
        for kind in [EventKind::Person, EventKind::Auction, EventKind::Bid] {
            self.buf.extend_from_slice(b",\"");
            self.buf.extend_from_slice(kind.name().as_bytes());
            self.buf.extend_from_slice(b"\":");
            if kind == ev.kind {
                self.json_object(kind, ev, generator, false);
            } else {
                self.buf.extend_from_slice(b"null");
            }
        }
        self.buf.push(b'}');
    }

    fn csv_row(&mut self, kind: EventKind, ev: &Event, generator: &Generator) {
        for (i, (_, value, ty)) in fields_of(kind).iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            match ty {
                LeafType::Int64 => push_int(&mut self.buf, value.int(ev)),
                LeafType::Utf8 => push_csv_str(&mut self.buf, value.str(ev, generator)),
                LeafType::Timestamp => self.ts.push(&mut self.buf, value.int(ev)),
            }
        }
    }
}

/// Formats `YYYY-MM-DD HH:MM:SS.sss` (UTC), reusing the date and time of the last second.
#[derive(Default)]
struct TsCache {
    second: Option<i64>,
    text: Vec<u8>,
}

impl TsCache {
    fn push(&mut self, buf: &mut Vec<u8>, ms: i64) {
        let second = ms.div_euclid(1000);
        if self.second != Some(second) {
            self.second = Some(second);
            self.text.clear();
            match chrono::DateTime::from_timestamp(second, 0) {
                Some(t) => self
                    .text
                    .extend_from_slice(t.format("%Y-%m-%d %H:%M:%S").to_string().as_bytes()),
                None => push_int(&mut self.text, second),
            }
        }
        buf.extend_from_slice(&self.text);
        let millis = ms.rem_euclid(1000) as u16;
        buf.extend_from_slice(&[
            b'.',
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ]);
    }
}

/// Appends the decimal digits of `v`.
pub(crate) fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `s` as a JSON string literal.
fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.extend_from_slice(s.as_bytes());
    } else {
        for c in s.chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    buf.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }
    buf.push(b'"');
}

/// Appends `s` as a CSV field, quoted only when it needs to be.
fn push_csv_str(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}
