//! From events to Arrow: checks the declared schema against the Nexmark layouts and
//! appends events to column builders.
//!
//! Two layouts: *nested* (Nexmark's own DDL: `event_type INT` and the `person`,
//! `auction`, `bid` ROW columns, null except for the event's kind) and *flat* (`'table'`
//! option: the columns are fields of one event kind). Columns may be any subset of the
//! layout's, in any order; names match case-sensitively (`date_time` is accepted for
//! `dateTime`). Does not own event values (`generator.rs`).

use std::sync::Arc;

use datafusion::arrow::array::builder::NullBufferBuilder;
use datafusion::arrow::array::{
    ArrayRef, Int32Builder, Int64Array, Int64Builder, StringBuilder, StructArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Fields, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::generator::{Event, EventKind, Generator};
use crate::{Error, Result};

/// The type of a Nexmark field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeafType {
    Int64,
    Utf8,
    Timestamp,
}

impl LeafType {
    fn sql(self) -> &'static str {
        match self {
            LeafType::Int64 => "BIGINT (Arrow Int64)",
            LeafType::Utf8 => "VARCHAR (Arrow Utf8)",
            LeafType::Timestamp => "TIMESTAMP(3) (Arrow Timestamp(Millisecond))",
        }
    }
}

/// One field of one event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[rustfmt::skip]
pub(crate) enum Value {
    PersonId, PersonName, PersonEmail, PersonCreditCard, PersonCity, PersonState, PersonDateTime, PersonExtra,
    AuctionId, AuctionItemName, AuctionDescription, AuctionInitialBid, AuctionReserve, AuctionDateTime,
    AuctionExpires, AuctionSeller, AuctionCategory, AuctionExtra,
    BidAuction, BidBidder, BidPrice, BidChannel, BidUrl, BidDateTime, BidExtra,
}

use LeafType::{Int64 as I, Timestamp as T, Utf8 as S};
use Value::*;

/// Person fields in Nexmark's order, with their names in the nested DDL.
pub(crate) const PERSON_FIELDS: [(&str, Value, LeafType); 8] = [
    ("id", PersonId, I),
    ("name", PersonName, S),
    ("emailAddress", PersonEmail, S),
    ("creditCard", PersonCreditCard, S),
    ("city", PersonCity, S),
    ("state", PersonState, S),
    ("dateTime", PersonDateTime, T),
    ("extra", PersonExtra, S),
];
/// Auction fields.
pub(crate) const AUCTION_FIELDS: [(&str, Value, LeafType); 10] = [
    ("id", AuctionId, I),
    ("itemName", AuctionItemName, S),
    ("description", AuctionDescription, S),
    ("initialBid", AuctionInitialBid, I),
    ("reserve", AuctionReserve, I),
    ("dateTime", AuctionDateTime, T),
    ("expires", AuctionExpires, T),
    ("seller", AuctionSeller, I),
    ("category", AuctionCategory, I),
    ("extra", AuctionExtra, S),
];
/// Bid fields.
pub(crate) const BID_FIELDS: [(&str, Value, LeafType); 7] = [
    ("auction", BidAuction, I),
    ("bidder", BidBidder, I),
    ("price", BidPrice, I),
    ("channel", BidChannel, S),
    ("url", BidUrl, S),
    ("dateTime", BidDateTime, T),
    ("extra", BidExtra, S),
];

/// The fields of `kind`.
pub(crate) fn fields_of(kind: EventKind) -> &'static [(&'static str, Value, LeafType)] {
    match kind {
        EventKind::Person => &PERSON_FIELDS,
        EventKind::Auction => &AUCTION_FIELDS,
        EventKind::Bid => &BID_FIELDS,
    }
}

impl Value {
    /// An integer or timestamp (ms) field's value.
    pub(crate) fn int(self, ev: &Event) -> i64 {
        let (p, a, b) = (&ev.person, &ev.auction, &ev.bid);
        match self {
            PersonId => p.id,
            PersonDateTime => p.date_time,
            AuctionId => a.id,
            AuctionInitialBid => a.initial_bid,
            AuctionReserve => a.reserve,
            AuctionDateTime => a.date_time,
            AuctionExpires => a.expires,
            AuctionSeller => a.seller,
            AuctionCategory => a.category,
            BidAuction => b.auction,
            BidBidder => b.bidder,
            BidPrice => b.price,
            BidDateTime => b.date_time,
            _ => 0,
        }
    }

    /// A string field's value.
    pub(crate) fn str<'a>(self, ev: &'a Event, generator: &'a Generator) -> &'a str {
        let (p, a, b) = (&ev.person, &ev.auction, &ev.bid);
        match self {
            PersonName => &p.name,
            PersonEmail => &p.email,
            PersonCreditCard => &p.credit_card,
            PersonCity => p.city,
            PersonState => p.state,
            PersonExtra => generator.extra(&p.extra),
            AuctionItemName => &a.item_name,
            AuctionDescription => &a.description,
            AuctionExtra => generator.extra(&a.extra),
            BidChannel => generator.channel(b.channel),
            BidUrl => generator.url(b.channel),
            BidExtra => generator.extra(&b.extra),
            _ => "",
        }
    }
}

/// A checked leaf column: which value, and the declared timestamp unit/zone.
#[derive(Debug, Clone)]
struct Leaf {
    value: Value,
    ty: LeafType,
    unit: TimeUnit,
    tz: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
enum Plan {
    EventType,
    Leaf(Leaf),
    Struct(EventKind, Fields, Vec<Leaf>),
}

/// How the declared columns are filled, checked once per table.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Flat layouts emit only this kind; nested ones every kind.
    pub(crate) only: Option<EventKind>,
    plans: Vec<Plan>,
}

/// Checks `schema` against the layout (`table` set: flat), naming the column at fault.
pub(crate) fn layout(table: &str, schema: &SchemaRef, only: Option<EventKind>) -> Result<Layout> {
    let err = |message: String| Error::Unsupported {
        table: table.to_string(),
        message,
    };
    if schema.fields().is_empty() {
        return Err(err(
            "a nexmark table must declare at least one column".into()
        ));
    }
    let mut plans = Vec::new();
    for f in schema.fields() {
        let plan = match only {
            Some(kind) => Plan::Leaf(leaf(kind, f, "column").map_err(err)?),
            None => match (f.name().as_str(), f.data_type()) {
                ("event_type", DataType::Int32) => Plan::EventType,
                ("event_type", t) => {
                    return Err(err(format!(
                        "column 'event_type' must be INT (Arrow Int32), not {t}"
                    )));
                }
                (name @ ("person" | "auction" | "bid"), t) => {
                    let kind = match name {
                        "person" => EventKind::Person,
                        "auction" => EventKind::Auction,
                        _ => EventKind::Bid,
                    };
                    let DataType::Struct(children) = t else {
                        return Err(err(format!(
                            "column '{name}' must be a ROW of the {name} fields ({}), not {t}; for a flat table of \
                             one event kind add 'table' = 'bid' | 'auction' | 'person'",
                            names(kind)
                        )));
                    };
                    if children.is_empty() {
                        return Err(err(format!(
                            "column '{name}' is a ROW without fields; declare some of {}",
                            names(kind)
                        )));
                    }
                    if !f.is_nullable() {
                        return Err(err(format!(
                            "column '{name}' must be nullable: it is NULL for events that are not a {name}"
                        )));
                    }
                    let leaves = children
                        .iter()
                        .map(|c| leaf(kind, c, &format!("field '{name}.")))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(err)?;
                    Plan::Struct(kind, children.clone(), leaves)
                }
                (other, _) => {
                    return Err(err(format!(
                        "unknown column '{other}': a nexmark table has the columns event_type INT, person ROW<…>, \
                         auction ROW<…>, bid ROW<…> (names are case-sensitive); for a flat table of one event \
                         kind add 'table' = 'bid' | 'auction' | 'person'"
                    )));
                }
            },
        };
        plans.push(plan);
    }
    Ok(Layout { only, plans })
}

fn names(kind: EventKind) -> String {
    fields_of(kind)
        .iter()
        .map(|f| f.0)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Matches one declared field against `kind`'s fields. `what` prefixes the name in
/// messages (`column` or `field 'bid.`).
fn leaf(kind: EventKind, f: &Field, what: &str) -> std::result::Result<Leaf, String> {
    let name = if f.name() == "date_time" {
        "dateTime"
    } else {
        f.name().as_str()
    };
    let quoted = if what == "column" {
        format!("column '{}'", f.name())
    } else {
        format!("{what}{}'", f.name())
    };
    let Some(&(_, value, ty)) = fields_of(kind).iter().find(|(n, _, _)| *n == name) else {
        return Err(format!(
            "{quoted} is not a field of a nexmark {}; its fields are {} (case-sensitive; date_time is accepted for dateTime)",
            kind.name(),
            names(kind)
        ));
    };
    let (unit, tz) = match (ty, f.data_type()) {
        (LeafType::Int64, DataType::Int64) | (LeafType::Utf8, DataType::Utf8) => {
            (TimeUnit::Millisecond, None)
        }
        (LeafType::Timestamp, DataType::Timestamp(unit, tz)) => (*unit, tz.clone()),
        (_, t) => return Err(format!("{quoted} must be {}, not {t}", ty.sql())),
    };
    Ok(Leaf {
        value,
        ty,
        unit,
        tz,
    })
}

enum LeafBuilder {
    Int(Value, Int64Builder),
    Str(Value, StringBuilder),
    Ts(Value, Int64Builder, TimeUnit, Option<Arc<str>>),
}

impl LeafBuilder {
    fn new(leaf: &Leaf, cap: usize) -> Self {
        match leaf.ty {
            LeafType::Int64 => LeafBuilder::Int(leaf.value, Int64Builder::with_capacity(cap)),
            LeafType::Utf8 => {
                LeafBuilder::Str(leaf.value, StringBuilder::with_capacity(cap, cap * 16))
            }
            LeafType::Timestamp => LeafBuilder::Ts(
                leaf.value,
                Int64Builder::with_capacity(cap),
                leaf.unit,
                leaf.tz.clone(),
            ),
        }
    }

    #[inline]
    fn append(&mut self, ev: &Event, generator: &Generator) {
        match self {
            LeafBuilder::Int(v, b) => b.append_value(v.int(ev)),
            LeafBuilder::Str(v, b) => b.append_value(v.str(ev, generator)),
            LeafBuilder::Ts(v, b, unit, _) => b.append_value(scale(v.int(ev), *unit)),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            LeafBuilder::Int(_, b) | LeafBuilder::Ts(_, b, _, _) => b.append_nulls(n),
            LeafBuilder::Str(_, b) => b.append_nulls(n),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            LeafBuilder::Int(_, b) => Arc::new(b.finish()),
            LeafBuilder::Str(_, b) => Arc::new(b.finish()),
            LeafBuilder::Ts(_, b, unit, tz) => {
                let a: Int64Array = b.finish();
                let tz = tz.clone();
                match unit {
                    TimeUnit::Second => Arc::new(
                        a.reinterpret_cast::<TimestampSecondType>()
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Millisecond => Arc::new(
                        a.reinterpret_cast::<TimestampMillisecondType>()
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        a.reinterpret_cast::<TimestampMicrosecondType>()
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        a.reinterpret_cast::<TimestampNanosecondType>()
                            .with_timezone_opt(tz),
                    ),
                }
            }
        }
    }
}

/// Milliseconds in `unit`.
fn scale(ms: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => ms.div_euclid(1000),
        TimeUnit::Millisecond => ms,
        TimeUnit::Microsecond => ms.saturating_mul(1000),
        TimeUnit::Nanosecond => ms.saturating_mul(1_000_000),
    }
}

enum ColumnBuilder {
    EventType(Int32Builder),
    Leaf(LeafBuilder),
    Struct(StructBuilder),
}

/// A ROW column of one event kind. Rows of other kinds are NULL; they are counted in
/// `pending` and appended in bulk (most rows are bids, so the person and auction
/// columns see long runs of NULLs).
struct StructBuilder {
    kind: EventKind,
    fields: Fields,
    leaves: Vec<LeafBuilder>,
    nulls: NullBufferBuilder,
    pending: usize,
}

impl StructBuilder {
    fn flush_nulls(&mut self) {
        if self.pending > 0 {
            self.nulls.append_n_nulls(self.pending);
            self.leaves
                .iter_mut()
                .for_each(|l| l.append_nulls(self.pending));
            self.pending = 0;
        }
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        self.flush_nulls();
        let children = self.leaves.iter_mut().map(LeafBuilder::finish).collect();
        Ok(Arc::new(StructArray::try_new(
            self.fields.clone(),
            children,
            self.nulls.finish(),
        )?))
    }
}

/// Appends events to the columns of one batch.
pub(crate) struct BatchBuilder {
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl BatchBuilder {
    /// Empty builders for `layout`, sized for `cap` rows.
    pub(crate) fn new(layout: &Layout, cap: usize) -> Self {
        let columns = layout
            .plans
            .iter()
            .map(|p| match p {
                Plan::EventType => ColumnBuilder::EventType(Int32Builder::with_capacity(cap)),
                Plan::Leaf(l) => ColumnBuilder::Leaf(LeafBuilder::new(l, cap)),
                Plan::Struct(kind, fields, leaves) => ColumnBuilder::Struct(StructBuilder {
                    kind: *kind,
                    fields: fields.clone(),
                    leaves: leaves.iter().map(|l| LeafBuilder::new(l, cap)).collect(),
                    nulls: NullBufferBuilder::new(cap),
                    pending: 0,
                }),
            })
            .collect();
        BatchBuilder { columns, rows: 0 }
    }

    /// Rows appended since the last `finish`.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one event as a row.
    #[inline]
    pub(crate) fn append(&mut self, ev: &Event, generator: &Generator) {
        for c in &mut self.columns {
            match c {
                ColumnBuilder::EventType(b) => b.append_value(ev.kind.code()),
                ColumnBuilder::Leaf(l) => l.append(ev, generator),
                ColumnBuilder::Struct(st) => {
                    if st.kind == ev.kind {
                        st.flush_nulls();
                        st.nulls.append_non_null();
                        st.leaves.iter_mut().for_each(|l| l.append(ev, generator));
                    } else {
                        st.pending += 1;
                    }
                }
            }
        }
        self.rows += 1;
    }

    /// The rows appended so far as a batch of `schema`; the builders start over.
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> Result<ArrayRef> {
                Ok(match c {
                    ColumnBuilder::EventType(b) => Arc::new(b.finish()),
                    ColumnBuilder::Leaf(l) => l.finish(),
                    ColumnBuilder::Struct(st) => st.finish()?,
                })
            })
            .collect::<Result<_>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &options,
        )?)
    }
}
