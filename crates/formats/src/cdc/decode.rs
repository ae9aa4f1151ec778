//! The change-data-capture decoder: unwraps each Debezium or Canal envelope into its
//! row images with their kinds, decodes the images with the JSON decoder, and returns
//! the rows with the row-kind column appended.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int8Array, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;
use sluice_types::{DeadLetter, RowKind, row_kind_field};

use crate::json::JsonDecoder;
use crate::{Decoded, Decoder, FormatOptions, Result};

/// Which envelope the records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// Debezium: `{"before": {…}, "after": {…}, "op": "c|r|u|d"}`, optionally inside
    /// `{"schema": …, "payload": …}`.
    Debezium,
    /// Canal: `{"data": [{…}], "old": [{…}], "type": "INSERT|UPDATE|DELETE"}`.
    Canal,
}

/// One row image handed to the JSON decoder.
struct Image {
    source: Arc<str>,
    offset: u64,
    kind: RowKind,
}

/// Decodes Debezium or Canal JSON records into changelog rows.
pub struct CdcDecoder {
    envelope: Envelope,
    inner: JsonDecoder,
    table: String,
    /// Every image fed to `inner` since the last flush; `inner` sees its index as the
    /// record's offset.
    images: Vec<Image>,
    /// Records rejected before any image reached `inner`.
    rejected: Vec<DeadLetter>,
    schema: SchemaRef,
    /// Canal's `database.include` / `table.include`: messages of other databases or
    /// tables are skipped.
    include: [Option<regex::Regex>; 2],
}

impl CdcDecoder {
    /// A decoder for the table in `options` (the row images use the `json` format's
    /// options, under the envelope's prefix).
    pub fn new(envelope: Envelope, options: &FormatOptions) -> Result<Self> {
        let prefix = match envelope {
            Envelope::Debezium => "debezium-json.",
            Envelope::Canal => "canal-json.",
        };
        let mut inner_options = options.clone();
        inner_options.options = options
            .options
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?;
                matches!(rest, "ignore-parse-errors" | "timestamp-format.standard")
                    .then(|| (format!("json.{rest}"), v.clone()))
            })
            .collect();
        let mut include = [None, None];
        for (i, key) in ["database.include", "table.include"].iter().enumerate() {
            if let Some(p) = options.get("canal-json", key) {
                include[i] = Some(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    crate::Error::BadOption {
                        option: format!("canal-json.{key}"),
                        message: format!("not a regular expression: {e}"),
                    }
                })?);
            }
        }
        let mut fields: Vec<_> = options.schema.fields().iter().cloned().collect();
        fields.push(Arc::new(row_kind_field()));
        Ok(CdcDecoder {
            envelope,
            inner: JsonDecoder::new(&inner_options)?,
            table: options.table.clone(),
            images: Vec::new(),
            rejected: Vec::new(),
            schema: Arc::new(Schema::new(fields)),
            include,
        })
    }

    fn reject(&mut self, source: &str, offset: u64, reason: String, raw: &[u8]) {
        self.rejected
            .push(DeadLetter::new(&self.table, source, offset, reason, raw));
    }

    fn feed(&mut self, source: &Arc<str>, offset: u64, image: &Value, kind: RowKind) {
        let bytes = image.to_string();
        let seq = self.images.len() as u64;
        self.images.push(Image {
            source: source.clone(),
            offset,
            kind,
        });
        // The JSON decoder only rejects records (reported by flush), never fails here.
        let _ = self.inner.decode(bytes.as_bytes(), source, seq);
    }

    /// The row images of one envelope, with their kinds; an error says what is wrong.
    fn images_of(&self, v: &Value) -> std::result::Result<Vec<(Value, RowKind)>, String> {
        let obj = v.as_object().ok_or("not a JSON object")?;
        match self.envelope {
            Envelope::Debezium => {
                let payload = match obj.get("payload") {
                    Some(p) if obj.contains_key("schema") => {
                        p.as_object().ok_or("'payload' is not an object")?
                    }
                    _ => obj,
                };
                let op = payload
                    .get("op")
                    .and_then(Value::as_str)
                    .ok_or("no 'op' field (is this a Debezium change event?)")?;
                let image = |name: &str| -> std::result::Result<Value, String> {
                    match payload.get(name) {
                        Some(v @ Value::Object(_)) => Ok(v.clone()),
                        _ => Err(format!("op '{op}' needs an object in '{name}'")),
                    }
                };
                Ok(match op {
                    "c" | "r" => vec![(image("after")?, RowKind::Insert)],
                    "u" => vec![
                        (image("before")?, RowKind::UpdateBefore),
                        (image("after")?, RowKind::UpdateAfter),
                    ],
                    "d" => vec![(image("before")?, RowKind::Delete)],
                    // A truncate or a transaction marker changes no row.
                    "t" | "m" => Vec::new(),
                    other => return Err(format!("unknown op '{other}'")),
                })
            }
            Envelope::Canal => {
                if obj.get("isDdl").and_then(Value::as_bool) == Some(true) {
                    return Ok(Vec::new());
                }
                for (filter, field) in self.include.iter().zip(["database", "table"]) {
                    if let Some(re) = filter
                        && !obj
                            .get(field)
                            .and_then(Value::as_str)
                            .is_some_and(|v| re.is_match(v))
                    {
                        return Ok(Vec::new());
                    }
                }
                let kind = obj
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or("no 'type' field (is this a Canal message?)")?;
                let data = match obj.get("data") {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => return Ok(Vec::new()),
                    _ => return Err("'data' is not an array".into()),
                };
                let mut out = Vec::new();
                match kind {
                    "INSERT" => out.extend(data.iter().map(|d| (d.clone(), RowKind::Insert))),
                    "DELETE" => out.extend(data.iter().map(|d| (d.clone(), RowKind::Delete))),
                    "UPDATE" => {
                        let old = obj.get("old").and_then(Value::as_array);
                        for (i, after) in data.iter().enumerate() {
                            // `old` holds only the columns that changed.
                            let mut before = after.clone();
                            if let (Some(Value::Object(changed)), Value::Object(b)) =
                                (old.and_then(|o| o.get(i)), &mut before)
                            {
                                for (k, v) in changed {
                                    b.insert(k.clone(), v.clone());
                                }
                            }
                            out.push((before, RowKind::UpdateBefore));
                            out.push((after.clone(), RowKind::UpdateAfter));
                        }
                    }
                    // Schema changes and others change no row.
                    _ => {}
                }
                Ok(out)
            }
        }
    }
}

impl Decoder for CdcDecoder {
    fn decode(&mut self, record: &[u8], source: &str, offset: u64) -> Result<()> {
        let source: Arc<str> = Arc::from(source);
        let parsed: Value = match serde_json::from_slice(record) {
            Ok(v) => v,
            Err(e) => {
                self.reject(&source, offset, format!("not JSON: {e}"), record);
                return Ok(());
            }
        };
        match self.images_of(&parsed) {
            Ok(images) => {
                for (image, kind) in images {
                    self.feed(&source, offset, &image, kind);
                }
            }
            Err(reason) => self.reject(&source, offset, reason, record),
        }
        Ok(())
    }

    fn reject(&mut self, source: &str, offset: u64, reason: String, raw: &[u8], truncated: bool) {
        let mut d = DeadLetter::new(&self.table, source, offset, reason, raw);
        d.truncated |= truncated;
        self.rejected.push(d);
    }

    fn buffered_records(&self) -> usize {
        self.images.len() + self.rejected.len()
    }

    fn flush(&mut self) -> Result<Decoded> {
        let inner = self.inner.flush()?;
        let images = std::mem::take(&mut self.images);
        let mut dead_letters = std::mem::take(&mut self.rejected);
        // The inner decoder saw image indices as offsets: map them back, and drop every
        // image of a record one of whose images failed (half an update would corrupt
        // the result downstream).
        let mut failed_records: HashSet<(Arc<str>, u64)> = HashSet::new();
        let mut failed_images: HashSet<u64> = HashSet::new();
        for mut d in inner.dead_letters {
            let seq = d.offset;
            if let Some(img) = images.get(seq as usize) {
                failed_records.insert((img.source.clone(), img.offset));
                d.source = img.source.to_string();
                d.offset = img.offset;
                d.reason = format!("{} row image: {}", img.kind.short(), d.reason);
            }
            failed_images.insert(seq);
            dead_letters.push(d);
        }
        dead_letters.sort_by_key(|d| d.offset);
        let Some(batch) = inner.batch else {
            return Ok(Decoded {
                batch: None,
                dead_letters,
            });
        };
        let mut keep = Vec::with_capacity(images.len());
        let mut kinds = Vec::with_capacity(images.len());
        let mut row = 0u32;
        for (seq, img) in images.iter().enumerate() {
            if failed_images.contains(&(seq as u64)) {
                continue;
            }
            if !failed_records.contains(&(img.source.clone(), img.offset)) {
                keep.push(row);
                kinds.push(img.kind as i8);
            }
            row += 1;
        }
        if keep.is_empty() {
            return Ok(Decoded {
                batch: None,
                dead_letters,
            });
        }
        let idx = UInt32Array::from(keep);
        let mut columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &idx, None))
            .collect::<std::result::Result<_, _>>()?;
        columns.push(Arc::new(Int8Array::from(kinds)));
        Ok(Decoded {
            batch: Some(RecordBatch::try_new(self.schema.clone(), columns)?),
            dead_letters,
        })
    }
}
