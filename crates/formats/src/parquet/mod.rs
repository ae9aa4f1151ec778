//! `'format' = 'parquet'`: Parquet files, for the `filesystem` connector (Flink's
//! `parquet` format). A file format, not a record format: the sink writes one Parquet
//! file per part file ([`ParquetEncoder`], completed by
//! [`Encoder::finish_file`](crate::Encoder::finish_file)), and the source reads whole
//! files ([`ParquetFileReader`]), columns matched by name.
//!
//! Owns: the writer properties (`parquet.compression`, `parquet.block.size`,
//! `parquet.page.size`) and the conversion of a file's columns to the table's.

use std::fs::File;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::common::sql_type::sql_type_name;
use crate::registry::FormatFactory;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

#[cfg(test)]
mod tests;

/// `parquet`.
pub struct ParquetFormat;

/// Row groups are written once their buffered rows reach this size (128 MiB).
const DEFAULT_BLOCK_SIZE: usize = 128 << 20;

fn bad(option: &str, message: String) -> Error {
    Error::BadOption {
        option: format!("parquet.{option}"),
        message,
    }
}

fn size(options: &FormatOptions, key: &str) -> Result<Option<usize>> {
    match options.get("parquet", key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| bad(key, format!("'{v}' is not a positive number of bytes"))),
    }
}

/// The writer properties and row-group size the options ask for.
fn writer_settings(options: &FormatOptions) -> Result<(WriterProperties, usize)> {
    let compression = match options
        .get("parquet", "compression")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("SNAPPY") => Compression::SNAPPY,
        Some("UNCOMPRESSED") | Some("NONE") => Compression::UNCOMPRESSED,
        Some("GZIP") => Compression::GZIP(GzipLevel::default()),
        Some("ZSTD") => Compression::ZSTD(ZstdLevel::default()),
        Some("LZ4") | Some("LZ4_RAW") => Compression::LZ4_RAW,
        Some(v) => {
            return Err(bad(
                "compression",
                format!("'{v}' is not one of UNCOMPRESSED, SNAPPY, GZIP, ZSTD, LZ4"),
            ));
        }
    };
    let mut props = WriterProperties::builder().set_compression(compression);
    if let Some(p) = size(options, "page.size")? {
        props = props.set_data_page_size_limit(p);
    }
    let block = size(options, "block.size")?.unwrap_or(DEFAULT_BLOCK_SIZE);
    for f in options.schema.fields() {
        // Fail at plan time, not at the first row.
        datafusion::parquet::arrow::ArrowSchemaConverter::new()
            .convert(&datafusion::arrow::datatypes::Schema::new(vec![f.clone()]))
            .map_err(|_| Error::UnsupportedType {
                format: "parquet".into(),
                column: f.name().clone(),
                data_type: sql_type_name(f.data_type()),
            })?;
    }
    Ok((props.build(), block))
}

impl FormatFactory for ParquetFormat {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["compression", "block.size", "page.size", "utc-timezone"]
    }

    fn decoder(&self, _options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        Err(Error::BadOption {
            option: "format".into(),
            message: "'parquet' is a file format: read it with the filesystem connector".into(),
        })
    }

    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        let (props, block) = writer_settings(options)?;
        Ok(Box::new(ParquetEncoder {
            schema: options.schema.clone(),
            props,
            block,
            writer: None,
        }))
    }

    fn binary(&self) -> bool {
        true
    }

    fn file_format(&self) -> bool {
        true
    }
}

/// Writes the rows of one part file as one Parquet file: the bytes come out as row
/// groups are completed, and the footer at [`Encoder::finish_file`].
pub struct ParquetEncoder {
    schema: SchemaRef,
    props: WriterProperties,
    block: usize,
    writer: Option<ArrowWriter<Vec<u8>>>,
}

fn write_error(e: impl std::fmt::Display) -> Error {
    Error::BadOption {
        option: "format".into(),
        message: format!("parquet: cannot write: {e}"),
    }
}

impl ParquetEncoder {
    fn writer(&mut self) -> Result<&mut ArrowWriter<Vec<u8>>> {
        if self.writer.is_none() {
            self.writer = Some(
                ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(self.props.clone()))
                    .map_err(write_error)?,
            );
        }
        self.writer.as_mut().ok_or_else(|| write_error("no writer"))
    }
}

impl Encoder for ParquetEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let block = self.block;
        let w = self.writer()?;
        w.write(batch).map_err(write_error)?;
        if w.in_progress_size() >= block {
            w.flush().map_err(write_error)?;
        }
        out.append(w.inner_mut());
        Ok(())
    }

    fn finish_file(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = match self.writer.take() {
            Some(w) => w,
            None => {
                self.writer()?;
                self.writer.take().ok_or_else(|| write_error("no writer"))?
            }
        };
        w.finish().map_err(write_error)?;
        out.append(w.inner_mut());
        Ok(())
    }
}

/// Reads one Parquet file as batches of a table's columns: columns are matched by name
/// (exactly, else ignoring case) and cast to the table's types; a column the file lacks
/// is NULL.
pub struct ParquetFileReader {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
    /// For each table column, its index among the projected file columns.
    sources: Vec<Option<usize>>,
}

impl ParquetFileReader {
    /// Opens `file` for the table `schema`, skipping its first `skip` rows. Fails with a
    /// message naming the problem when the file is not Parquet, or a NOT NULL column is
    /// missing or a column's type cannot be converted.
    pub fn open(file: File, schema: SchemaRef, skip: usize, batch_size: usize) -> Result<Self> {
        let input = |m: String| Error::BadOption {
            option: "format".into(),
            message: m,
        };
        let builder = std::panic::catch_unwind(|| ParquetRecordBatchReaderBuilder::try_new(file))
            .map_err(|_| input("not a readable Parquet file (its footer is damaged)".into()))?
            .map_err(|e| input(format!("not a readable Parquet file: {e}")))?;
        let file_schema = builder.schema().clone();
        let mut roots: Vec<usize> = Vec::new();
        let mut wanted: Vec<Option<usize>> = Vec::new();
        for f in schema.fields() {
            let found = file_schema.index_of(f.name()).ok().or_else(|| {
                let mut ci = file_schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.name().eq_ignore_ascii_case(f.name()));
                match (ci.next(), ci.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            });
            match found {
                Some(i) => {
                    let from = file_schema.field(i).data_type();
                    if !datafusion::arrow::compute::can_cast_types(from, f.data_type()) {
                        return Err(input(format!(
                            "column '{}' is {from} in the file, which cannot become {}",
                            f.name(),
                            sql_type_name(f.data_type())
                        )));
                    }
                    if !roots.contains(&i) {
                        roots.push(i);
                    }
                    wanted.push(Some(i));
                }
                None if f.is_nullable() => wanted.push(None),
                None => {
                    return Err(input(format!(
                        "the file has no column '{}', which is NOT NULL",
                        f.name()
                    )));
                }
            }
        }
        roots.sort_unstable();
        let sources = wanted
            .iter()
            .map(|w| w.and_then(|i| roots.iter().position(|r| *r == i)))
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_offset(skip)
            .with_batch_size(batch_size.max(1))
            .build()
            .map_err(|e| input(format!("cannot read the Parquet file: {e}")))?;
        Ok(ParquetFileReader {
            reader,
            schema,
            sources,
        })
    }

    /// The next batch in the table's schema, and the rows left out of it (their index
    /// in the file's batch and why: a NULL in a NOT NULL column); `None` at the end.
    #[allow(clippy::type_complexity)]
    pub fn next_batch(&mut self) -> Result<Option<(RecordBatch, Vec<(usize, String)>)>> {
        // A damaged file must not take the job down, whatever the reader does with it.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.reader.next()))
            .map_err(|_| Error::BadOption {
                option: "format".into(),
                message: "the Parquet file is damaged (the reader gave up on it)".into(),
            })?;
        let Some(batch) = next else {
            return Ok(None);
        };
        let batch = batch.map_err(|e| Error::BadOption {
            option: "format".into(),
            message: format!("the Parquet file is damaged: {e}"),
        })?;
        let n = batch.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.sources.len());
        let mut bad: Vec<Option<String>> = vec![None; n];
        for (f, src) in self.schema.fields().iter().zip(&self.sources) {
            let c = match src {
                Some(i) => {
                    let c = batch.column(*i);
                    if c.data_type() == f.data_type() {
                        Arc::clone(c)
                    } else {
                        cast(c, f.data_type())?
                    }
                }
                None => new_null_array(f.data_type(), n),
            };
            if !f.is_nullable() && c.null_count() > 0 {
                for (r, b) in bad.iter_mut().enumerate() {
                    if c.is_null(r) && b.is_none() {
                        *b = Some(format!(
                            "field '{}' is NULL but declared NOT NULL",
                            f.name()
                        ));
                    }
                }
            }
            columns.push(c);
        }
        let rejected: Vec<(usize, String)> = bad
            .iter()
            .enumerate()
            .filter_map(|(r, b)| b.clone().map(|b| (r, b)))
            .collect();
        if rejected.is_empty() {
            return Ok(Some((
                RecordBatch::try_new(self.schema.clone(), columns)?,
                rejected,
            )));
        }
        let keep: datafusion::arrow::array::BooleanArray =
            bad.iter().map(|b| Some(b.is_none())).collect();
        let columns = columns
            .iter()
            .map(|c| datafusion::arrow::compute::filter(c.as_ref(), &keep))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Some((
            RecordBatch::try_new(self.schema.clone(), columns)?,
            rejected,
        )))
    }
}
