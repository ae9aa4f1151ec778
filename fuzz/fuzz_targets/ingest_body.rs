//! Arbitrary bytes as an HTTP ingest body: the first byte picks the layout (JSON,
//! NDJSON, CSV) and gzip; splitting never panics and every record is a non-blank slice
//! of the (decompressed, size-limited) body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::body::check_any_body(data));
