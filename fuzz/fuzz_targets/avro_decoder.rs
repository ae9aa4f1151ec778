//! Arbitrary bytes, cut into messages, through the `avro` decoder: no panic, and every
//! message comes out as a row or a dead letter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::check_message_decoder("avro", data));
