//! Arbitrary bytes, one change event per line, through the `debezium-json` decoder: no
//! panic, and every dead letter names a record it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::check_changelog_decoder("debezium-json", data));
