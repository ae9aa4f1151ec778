//! Snapshots of state tables: each row tagged with the key group of its key, so a
//! snapshot taken at one worker count restores onto another (each new subtask takes the
//! rows of the key groups it owns); and their bytes, Arrow IPC with a checksum, so a
//! damaged snapshot is detected rather than restored.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::hash_utils::{RandomState, create_hashes};

use crate::{Error, Result, key_group, subtask_for_group};

/// The column that carries each row's key group (NULL for a global table's rows).
pub const KEY_GROUP_COLUMN: &str = "__sluice_key_group";

/// Fixed seeds: hashes (and so key groups) must be the same in every process and run,
/// because snapshots store state by key group and edges route rows by it.
fn hash_state() -> RandomState {
    RandomState::with_seed(0x5e1c_e0dd_5eed_5100)
}

/// The hash of the key columns of every row (stable across runs and processes).
pub fn hash_keys(columns: &[ArrayRef], num_rows: usize) -> Result<Vec<u64>> {
    let mut hashes = vec![0u64; num_rows];
    create_hashes(columns, &hash_state(), &mut hashes)?;
    Ok(hashes)
}

/// The key group of every row's key.
pub fn key_groups_of(columns: &[ArrayRef], num_rows: usize, key_groups: u32) -> Result<Vec<u32>> {
    Ok(hash_keys(columns, num_rows)?
        .into_iter()
        .map(|h| key_group(h, key_groups))
        .collect())
}

/// The key groups one subtask owns: `start..end`, as [`subtask_for_group`] assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroupRange {
    /// The first group owned.
    pub start: u32,
    /// One past the last group owned.
    pub end: u32,
}

impl KeyGroupRange {
    /// Every group (a single subtask).
    pub fn all(key_groups: u32) -> Self {
        KeyGroupRange {
            start: 0,
            end: key_groups,
        }
    }

    /// The groups of `subtask` among `parallelism` subtasks.
    pub fn of_subtask(subtask: usize, parallelism: usize, key_groups: u32) -> Self {
        let owned = |g: &u32| subtask_for_group(*g, key_groups, parallelism) == subtask;
        let start = (0..key_groups).find(owned).unwrap_or(key_groups);
        let end = (start..key_groups)
            .find(|g| !owned(g))
            .unwrap_or(key_groups);
        KeyGroupRange { start, end }
    }

    /// Whether `group` is owned.
    pub fn contains(&self, group: u32) -> bool {
        (self.start..self.end).contains(&group)
    }
}

/// The rows of one state table at a checkpoint.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    /// The table's name ([`crate::StateTableSpec::name`]).
    pub name: String,
    /// [`KEY_GROUP_COLUMN`] first, then the table's own columns.
    pub batch: RecordBatch,
}

fn tagged(name: &str, groups: ArrayRef, columns: Vec<(String, ArrayRef)>) -> Result<TableSnapshot> {
    let mut fields = vec![Arc::new(Field::new(
        KEY_GROUP_COLUMN,
        DataType::UInt32,
        true,
    ))];
    let mut arrays = vec![groups];
    for (n, a) in columns {
        fields.push(Arc::new(Field::new(n, a.data_type().clone(), true)));
        arrays.push(a);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    Ok(TableSnapshot {
        name: name.to_string(),
        batch: RecordBatch::try_new(schema, arrays)?,
    })
}

impl TableSnapshot {
    /// A keyed table: named `columns` of equal length whose first `key_columns` are the
    /// key; each row is tagged with its key's group.
    pub fn keyed(
        name: &str,
        columns: Vec<(String, ArrayRef)>,
        key_columns: usize,
        key_groups: u32,
    ) -> Result<Self> {
        let n = columns.first().map_or(0, |c| c.1.len());
        let keys: Vec<ArrayRef> = columns
            .iter()
            .take(key_columns)
            .map(|(_, a)| a.clone())
            .collect();
        let groups = key_groups_of(&keys, n, key_groups)?;
        tagged(name, Arc::new(UInt32Array::from(groups)), columns)
    }

    /// A table of per-subtask values (watermarks, offsets): every subtask restoring it
    /// gets all its rows.
    pub fn global(name: &str, columns: Vec<(String, ArrayRef)>) -> Result<Self> {
        let n = columns.first().map_or(0, |c| c.1.len());
        tagged(name, Arc::new(UInt32Array::new_null(n)), columns)
    }

    /// Buffered input rows, keyed by their columns `keys`: those columns first (as
    /// `__key0`, …), then every column of the rows. Restore drops the first
    /// `keys.len()` columns to get the rows back.
    pub fn keyed_rows(
        name: &str,
        batches: &[RecordBatch],
        keys: &[usize],
        key_groups: u32,
    ) -> Result<Option<Self>> {
        let Some(first) = batches.first() else {
            return Ok(None);
        };
        let rows = concat_batches(&first.schema(), batches)?;
        let mut cols: Vec<(String, ArrayRef)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("__key{i}"), rows.column(*k).clone()))
            .collect();
        for (f, a) in rows.schema().fields().iter().zip(rows.columns()) {
            cols.push((f.name().clone(), a.clone()));
        }
        Self::keyed(name, cols, keys.len(), key_groups).map(Some)
    }

    /// A global table holding an operator's watermark (ms).
    pub fn watermark(name: &str, watermark: i64) -> Result<Self> {
        let col: ArrayRef = Arc::new(Int64Array::from(vec![watermark]));
        Self::global(name, vec![("watermark".into(), col)])
    }

    /// The smallest watermark in a [`TableSnapshot::watermark`] table (several earlier
    /// subtasks' rows): the one that is safe for all of them.
    pub fn smallest_watermark(&self) -> Result<Option<i64>> {
        let col = self
            .batch
            .columns()
            .get(1)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| Error::Mismatch(format!("'{}' is not a watermark", self.name)))?;
        Ok(datafusion::arrow::compute::min(col))
    }

    /// Whether this is a global table (per-subtask values such as watermarks: no row
    /// has a key group).
    pub fn is_global(&self) -> bool {
        let n = self.batch.num_rows();
        n > 0 && self.batch.column(0).null_count() == n
    }

    /// The rows a subtask owning `range` restores: those of its key groups, and every
    /// global row.
    pub fn for_range(&self, range: KeyGroupRange) -> Result<TableSnapshot> {
        let groups = self
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| Error::Corrupt(format!("table '{}' has no key groups", self.name)))?;
        let keep: BooleanArray = groups
            .iter()
            .map(|g| Some(g.is_none_or(|g| range.contains(g))))
            .collect();
        Ok(TableSnapshot {
            name: self.name.clone(),
            batch: filter_record_batch(&self.batch, &keep)?,
        })
    }

    /// The table's own columns (without the key group).
    pub fn data(&self) -> Result<RecordBatch> {
        let cols: Vec<usize> = (1..self.batch.num_columns()).collect();
        Ok(self.batch.project(&cols)?)
    }
}

/// The tables to restore from one subtask's incremental chain (its files' tables, in
/// the order they were written): every keyed table in order, then the global tables
/// (watermarks) of the newest file that has them, which supersede older ones.
pub fn chain_tables(files: impl IntoIterator<Item = Vec<TableSnapshot>>) -> Vec<TableSnapshot> {
    let mut keyed = Vec::new();
    let mut global: Vec<TableSnapshot> = Vec::new();
    for t in files.into_iter().flatten() {
        if t.is_global() {
            global.retain(|g| g.name != t.name);
            global.push(t);
        } else {
            keyed.push(t);
        }
    }
    keyed.extend(global);
    keyed
}

const MAGIC: &[u8; 8] = b"SLUICEST";
const VERSION: u32 = 1;

/// Serializes snapshots: a header, then per table its name, Arrow IPC stream bytes and
/// their CRC-32.
pub fn encode(tables: &[TableSnapshot]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_to(tables, &mut out)?;
    Ok(out)
}

/// [`encode`] into a writer (a file, without holding the whole snapshot in memory).
pub fn encode_to<W: std::io::Write>(tables: &[TableSnapshot], out: &mut W) -> Result<()> {
    let io = |e: std::io::Error| Error::Store(format!("cannot write a snapshot: {e}"));
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&VERSION.to_le_bytes()).map_err(io)?;
    out.write_all(&(tables.len() as u32).to_le_bytes())
        .map_err(io)?;
    // One table at a time: the buffer is reused, so only the largest table is held.
    let mut ipc = Vec::new();
    for t in tables {
        ipc.clear();
        {
            let mut w = StreamWriter::try_new(&mut ipc, &t.batch.schema())?;
            w.write(&t.batch)?;
            w.finish()?;
        }
        out.write_all(&(t.name.len() as u32).to_le_bytes())
            .map_err(io)?;
        out.write_all(t.name.as_bytes()).map_err(io)?;
        out.write_all(&(ipc.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&ipc).map_err(io)?;
        out.write_all(&crc32fast::hash(&ipc).to_le_bytes())
            .map_err(io)?;
    }
    Ok(())
}

/// Reads what [`encode`] wrote; a truncated or altered snapshot is an error.
pub fn decode(bytes: &[u8]) -> Result<Vec<TableSnapshot>> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(Error::Corrupt("not a Sluice state snapshot".into()));
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(Error::Corrupt(format!(
            "snapshot format version {version}, this build reads {VERSION}"
        )));
    }
    let count = r.u32()?;
    let mut tables = Vec::new();
    for _ in 0..count {
        let len = r.u32()? as usize;
        let name = String::from_utf8(r.take(len)?.to_vec())
            .map_err(|_| Error::Corrupt("a table name is not UTF-8".into()))?;
        let len = usize::try_from(r.u64()?)
            .map_err(|_| Error::Corrupt(format!("table '{name}' is too large")))?;
        let ipc = r.take(len)?;
        let crc = r.u32()?;
        if crc32fast::hash(ipc) != crc {
            return Err(Error::Corrupt(format!("table '{name}' fails its checksum")));
        }
        let reader = StreamReader::try_new(Cursor::new(ipc), None)?;
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
        tables.push(TableSnapshot { name, batch });
    }
    if r.at != bytes.len() {
        return Err(Error::Corrupt("trailing bytes after the last table".into()));
    }
    Ok(tables)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| Error::Corrupt("the snapshot is truncated".into()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};

    use super::*;
    use crate::DEFAULT_KEY_GROUPS;

    fn table() -> TableSnapshot {
        let keys: Vec<String> = (0..200).map(|i| format!("key{i}")).collect();
        TableSnapshot::keyed(
            "t",
            vec![
                ("k".into(), Arc::new(StringArray::from(keys))),
                ("v".into(), Arc::new(Int64Array::from_iter_values(0..200))),
            ],
            1,
            DEFAULT_KEY_GROUPS,
        )
        .expect("a table")
    }

    #[test]
    fn ranges_of_any_parallelism_partition_the_rows() {
        let t = table();
        for p in [1usize, 2, 3, 7] {
            let total: usize = (0..p)
                .map(|s| {
                    let r = KeyGroupRange::of_subtask(s, p, DEFAULT_KEY_GROUPS);
                    t.for_range(r).expect("filters").batch.num_rows()
                })
                .sum();
            assert_eq!(total, 200, "parallelism {p}");
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let t = table();
        let bytes = encode(std::slice::from_ref(&t)).expect("encodes");
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].name, "t");
        assert_eq!(back[0].batch, t.batch);
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(matches!(decode(&flipped), Err(Error::Corrupt(_))));
        for cut in [0, 5, 12, bytes.len() / 3, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"garbage that is long enough").is_err());
    }
}
