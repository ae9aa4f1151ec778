//! Arbitrary bytes, cut into messages, through the `protobuf` decoder (a message type
//! with scalar, repeated, nested and map fields): no panic, and every message comes out
//! as a row or a dead letter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::check_protobuf_decoder(data));
