//! Arbitrary bytes as a Parquet file through the `parquet` reader: an error or rows,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::check_parquet_reader(data));
