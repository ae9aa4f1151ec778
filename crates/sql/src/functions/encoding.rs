//! Flink `TO_BASE64`/`FROM_BASE64` (standard alphabet, padded, as Java's
//! `Base64`) and the hex-string digests `SHA224`, `SHA256`, `SHA384`,
//! `SHA512`, `SHA2(s, bits)`. DataFusion's `sha256` and friends return
//! BINARY; Flink returns the lowercase hex STRING, so these wrap DataFusion's
//! digest kernels and hex-encode. Invalid base64 decodes to NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::args::{Ints, Strs, check_arity, finish, int_type, output_rows, string_type};
use super::string::{builder, ret_utf8};
use super::text::coerce_one_string;
use super::udf::{FlinkUdf, FnState};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the padded base64 encoding of `bytes` to `out`.
fn encode_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

fn decode_sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Decodes padded or unpadded standard base64 into `out`; `None` if invalid.
fn decode_into(s: &str, out: &mut Vec<u8>) -> Option<()> {
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    for chunk in body.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            n |= decode_sextet(c)? << (18 - 6 * k);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(())
}

/// `TO_BASE64(s)`.
pub(crate) fn to_base64() -> FlinkUdf {
    FlinkUdf::new("to_base64", coerce_one_string, ret_utf8, invoke_to_base64)
}

fn invoke_to_base64(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let s = Strs::new(&args.args[0])?;
    let mut out = builder(rows, 24);
    let mut buf = String::new();
    for i in 0..rows {
        match s.get(i) {
            Some(v) => {
                buf.clear();
                encode_into(v.as_bytes(), &mut buf);
                out.append_value(&buf);
            }
            None => out.append_null(),
        }
    }
    finish(Arc::new(out.finish()), scalar)
}

/// `FROM_BASE64(s)`: invalid input gives NULL; invalid UTF-8 is replaced.
pub(crate) fn from_base64() -> FlinkUdf {
    FlinkUdf::new(
        "from_base64",
        coerce_one_string,
        ret_utf8,
        invoke_from_base64,
    )
}

fn invoke_from_base64(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let s = Strs::new(&args.args[0])?;
    let mut out = builder(rows, 16);
    let mut buf = Vec::new();
    for i in 0..rows {
        buf.clear();
        match s.get(i).and_then(|v| decode_into(v, &mut buf)) {
            Some(()) => out.append_value(String::from_utf8_lossy(&buf)),
            None => out.append_null(),
        }
    }
    finish(Arc::new(out.finish()), scalar)
}

/// DataFusion's binary digest for `bits`, if it is a SHA-2 size.
fn digest_udf(bits: i64) -> Option<Arc<ScalarUDF>> {
    use datafusion::functions::crypto;
    match bits {
        224 => Some(crypto::sha224()),
        256 => Some(crypto::sha256()),
        384 => Some(crypto::sha384()),
        512 => Some(crypto::sha512()),
        _ => None,
    }
}

/// Runs DataFusion's `bits` digest over `input`, as an array of `rows`.
fn digest(
    bits: i64,
    input: &ColumnarValue,
    args: &ScalarFunctionArgs,
    rows: usize,
) -> Result<Option<Arc<dyn Array>>> {
    let Some(udf) = digest_udf(bits) else {
        return Ok(None);
    };
    let field = Arc::new(Field::new("digest", DataType::Binary, true));
    let out = udf.invoke_with_args(ScalarFunctionArgs {
        args: vec![input.clone()],
        arg_fields: vec![Arc::new(Field::new("s", input.data_type(), true))],
        number_rows: rows,
        return_field: field,
        config_options: Arc::clone(&args.config_options),
    })?;
    Ok(Some(out.into_array(rows)?))
}

/// `SHA224(s)` .. `SHA512(s)` as lowercase hex.
pub(crate) fn sha(bits: i64) -> FlinkUdf {
    let (name, invoke): (&str, super::udf::InvokeFn) = match bits {
        224 => ("sha224", |_, a| invoke_sha(a, Some(224))),
        384 => ("sha384", |_, a| invoke_sha(a, Some(384))),
        512 => ("sha512", |_, a| invoke_sha(a, Some(512))),
        _ => ("sha256", |_, a| invoke_sha(a, Some(256))),
    };
    FlinkUdf::new(name, coerce_one_string, ret_utf8, invoke)
}

/// `SHA2(s, bits)`: NULL when `bits` is not 224, 256, 384 or 512.
pub(crate) fn sha2() -> FlinkUdf {
    FlinkUdf::new("sha2", coerce_sha2, ret_utf8, |_, a| invoke_sha(a, None))
}

fn coerce_sha2(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("SHA2", t.len(), 2, 2)?;
    Ok(vec![string_type(&t[0]), int_type("SHA2", &t[1])?])
}

fn invoke_sha(args: &ScalarFunctionArgs, fixed: Option<i64>) -> Result<ColumnarValue> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let bits = match fixed {
        Some(b) => Ints::Scalar(Some(b)),
        None => Ints::new(&args.args[1])?,
    };
    // At most four digests per batch, computed on first use.
    let mut digests: Vec<(i64, Option<Arc<dyn Array>>)> = Vec::new();
    let mut out = builder(rows, 128);
    let mut hex = String::with_capacity(128);
    for i in 0..rows {
        let Some(b) = bits.get(i) else {
            out.append_null();
            continue;
        };
        let pos = match digests.iter().position(|(k, _)| *k == b) {
            Some(p) => p,
            None => {
                digests.push((b, digest(b, &args.args[0], args, rows)?));
                digests.len() - 1
            }
        };
        match digests[pos]
            .1
            .as_ref()
            .and_then(|a| a.as_binary_opt::<i32>())
        {
            Some(bin) if bin.is_valid(i) => {
                hex.clear();
                for byte in bin.value(i) {
                    hex.push(char::from(HEX[usize::from(byte >> 4)]));
                    hex.push(char::from(HEX[usize::from(byte & 15)]));
                }
                out.append_value(&hex);
            }
            _ => out.append_null(),
        }
    }
    finish(Arc::new(out.finish()), scalar)
}
