//! Arbitrary bytes through `LineFramer` in arbitrary chunks and splits: the same lines
//! as a naive reference, each exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::check_framer(data));
