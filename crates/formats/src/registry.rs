//! The format registry: every format Sluice knows, as a plain list.
//!
//! Owns: the [`FormatFactory`] trait, the list [`formats`], lookup by the `'format'`
//! option's value ([`decoder_for`], [`encoder_for`]) and validation of `<format>.*`
//! option keys with a "did you mean" suggestion ([`validate_options`]).
//! Does not own: the options' values (each factory checks its own).

use std::collections::BTreeMap;

use crate::avro::AvroFormat;
use crate::cdc::{CanalJsonFormat, DebeziumJsonFormat};
use crate::csv::CsvFormat;
use crate::json::JsonFormat;
use crate::parquet::ParquetFormat;
use crate::protobuf::ProtobufFormat;
use crate::raw::RawFormat;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

/// One format: its name, the options it reads, and how to build its coders.
pub trait FormatFactory: Send + Sync {
    /// The value of `'format'` that selects it, e.g. `json`.
    fn name(&self) -> &'static str;
    /// The option keys it knows, without the `<name>.` prefix.
    fn option_keys(&self) -> &'static [&'static str];
    /// A decoder for the table; fails on a bad option value or an unsupported type.
    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>>;
    /// An encoder for the table; fails on a bad option value or an unsupported type.
    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>>;
    /// Whether it reads changelogs: its decoder's batches then end with the row-kind
    /// column (after the table's columns).
    fn changelog(&self) -> bool {
        false
    }
    /// Whether its records are binary (one per message): it cannot be read from or
    /// written to newline-delimited files.
    fn binary(&self) -> bool {
        false
    }
    /// Whether it is a file format (Parquet): the filesystem connector reads whole
    /// files with it, and its encoder completes a file at `finish_file`.
    fn file_format(&self) -> bool {
        false
    }
}

/// Whether `'format' = name` is a file format (false for an unknown format).
pub fn is_file_format(name: &str) -> bool {
    find(name).is_ok_and(|f| f.file_format())
}

/// Whether `'format' = name` is a binary, message-per-record format (false for an
/// unknown format).
pub fn is_binary_format(name: &str) -> bool {
    find(name).is_ok_and(|f| f.binary())
}

/// Whether `'format' = name` reads changelogs (false for an unknown format).
pub fn is_changelog_format(name: &str) -> bool {
    find(name).is_ok_and(|f| f.changelog())
}

/// Every format, in the order documented.
pub fn formats() -> Vec<Box<dyn FormatFactory>> {
    vec![
        Box::new(JsonFormat),
        Box::new(CsvFormat),
        Box::new(DebeziumJsonFormat),
        Box::new(CanalJsonFormat),
        Box::new(RawFormat),
        Box::new(AvroFormat),
        Box::new(ParquetFormat),
        Box::new(ProtobufFormat),
    ]
}

fn find(name: &str) -> Result<Box<dyn FormatFactory>> {
    let all = formats();
    let known: Vec<&str> = all.iter().map(|f| f.name()).collect();
    let known = known.join(", ");
    all.into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::UnknownFormat {
            name: name.to_string(),
            known,
        })
}

/// A decoder for `'format' = name`, after checking the table's `<name>.*` options.
pub fn decoder_for(name: &str, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
    validate_options(name, &options.options)?;
    find(name)?.decoder(options)
}

/// An encoder for `'format' = name`, after checking the table's `<name>.*` options.
pub fn encoder_for(name: &str, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
    validate_options(name, &options.options)?;
    find(name)?.encoder(options)
}

/// Checks that every `<name>.*` key in `options` is one the format knows (other keys
/// belong to the connector and are not looked at). An unknown key fails with
/// [`Error::BadOption`], suggesting the closest known key.
pub fn validate_options(name: &str, options: &BTreeMap<String, String>) -> Result<()> {
    let factory = find(name)?;
    let prefix = format!("{}.", factory.name());
    let keys = factory.option_keys();
    for key in options.keys() {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        if keys.contains(&rest) {
            continue;
        }
        let best = keys
            .iter()
            .map(|k| (edit_distance(rest, k), *k))
            .min()
            .filter(|(d, k)| *d <= (k.len() / 3).max(2));
        let message = match best {
            Some((_, k)) => format!("unknown option; did you mean '{prefix}{k}'?"),
            None => {
                let all: Vec<String> = keys.iter().map(|k| format!("'{prefix}{k}'")).collect();
                format!(
                    "unknown option; '{}' knows {}",
                    factory.name(),
                    all.join(", ")
                )
            }
        };
        return Err(Error::BadOption {
            option: key.clone(),
            message,
        });
    }
    Ok(())
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{bid_schema, options};

    #[test]
    fn unknown_format_lists_the_known_ones() {
        let err = decoder_for("xml", &options(bid_schema(), &[]))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "unknown format 'xml'; known formats: json, csv, debezium-json, canal-json, raw, avro, parquet, protobuf"
        );
    }

    #[test]
    fn a_misspelt_option_gets_a_suggestion() {
        let opts = options(bid_schema(), &[("json.ignore-parse-error", "true")]);
        let err = decoder_for("json", &opts).err().unwrap();
        assert_eq!(
            err.to_string(),
            "option 'json.ignore-parse-error': unknown option; did you mean 'json.ignore-parse-errors'?"
        );
        let opts = options(bid_schema(), &[("csv.zzzzzzzzzzz", "x"), ("path", "x")]);
        let err = validate_options("csv", &opts.options).err().unwrap();
        assert!(
            err.to_string()
                .contains("'csv' knows 'csv.field-delimiter'"),
            "{err}"
        );
    }

    #[test]
    fn every_format_builds_for_the_bid_table() {
        for f in formats()
            .into_iter()
            .filter(|f| !["raw", "protobuf"].contains(&f.name()) && !f.file_format())
        {
            let opts = options(bid_schema(), &[]);
            assert!(decoder_for(f.name(), &opts).is_ok(), "{}", f.name());
            assert_eq!(
                encoder_for(f.name(), &opts).is_ok(),
                !f.changelog(),
                "{}",
                f.name()
            );
        }
    }
}
