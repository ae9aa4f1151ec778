//! Arbitrary bytes, framed into lines, through the `csv` decoder: no panic, and every
//! record comes out as a row or a dead letter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::check_decoder("csv", data));
