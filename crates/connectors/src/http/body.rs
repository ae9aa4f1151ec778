//! Request bodies into records: gzip undone (within the size limit), then a JSON array
//! split into its elements, or NDJSON / CSV split into lines.

use std::io::Read;

/// How a body is laid out, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `application/json`: one JSON object, or a JSON array of objects.
    Json,
    /// `application/x-ndjson` (also `application/ndjson`, `application/jsonl`,
    /// `application/json-lines`): one JSON object per line.
    Lines,
    /// `text/csv`: one record per line (a header line naming the columns is skipped).
    Csv,
}

impl Layout {
    /// The layout of `content_type` for a table in `format`; `Err` names what the table
    /// accepts.
    pub fn of(content_type: Option<&str>, format: &str) -> Result<Layout, String> {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        match (format, media.as_deref()) {
            ("json", Some("application/json") | None) => Ok(Layout::Json),
            (
                "json",
                Some(
                    "application/x-ndjson"
                    | "application/ndjson"
                    | "application/jsonl"
                    | "application/json-lines"
                    | "application/x-jsonlines",
                ),
            ) => Ok(Layout::Lines),
            ("csv", Some("text/csv") | None) => Ok(Layout::Csv),
            ("json", Some(other)) => Err(format!(
                "Content-Type '{other}' is not accepted: send application/json (an object or an \
                 array of objects) or application/x-ndjson (one object per line)"
            )),
            (_, Some(other)) => Err(format!(
                "Content-Type '{other}' is not accepted: send text/csv"
            )),
            (f, None) => Err(format!("format '{f}' is not accepted")),
        }
    }
}

/// Why a body cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit once decompressed (413).
    TooLarge,
    /// Not gzip, or not laid out as its type says (400).
    Malformed(String),
}

/// `body` decompressed when `encoding` is gzip, at most `max` bytes.
pub fn decode_encoding(
    body: Vec<u8>,
    encoding: Option<&str>,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("identity") | Some("") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            let mut reader =
                flate2::read::MultiGzDecoder::new(body.as_slice()).take(max as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| BodyError::Malformed(format!("the gzip body cannot be read: {e}")))?;
            if out.len() > max {
                return Err(BodyError::TooLarge);
            }
            Ok(out)
        }
        Some(other) => Err(BodyError::Malformed(format!(
            "Content-Encoding '{other}' is not accepted: send the body as is or gzip"
        ))),
    }
}

/// The records of `body`, each a slice of it.
pub fn records(body: &[u8], layout: Layout) -> Result<Vec<&[u8]>, BodyError> {
    match layout {
        Layout::Lines | Layout::Csv => Ok(lines(body)),
        Layout::Json => {
            let start = body.iter().position(|b| !b.is_ascii_whitespace());
            match start.map(|i| body[i]) {
                None => Ok(Vec::new()),
                Some(b'[') => json_array(body),
                // One object (pretty-printed or not), or several in a row.
                Some(_) => Ok(json_values(body).unwrap_or_else(|| lines(body))),
            }
        }
    }
}

/// The JSON values of `body`, one after the other (whitespace between them); `None`
/// when it does not parse, so that the caller splits it into lines and the format
/// names what is wrong with each.
fn json_values(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut values =
        serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(v) = values.next() {
        v.ok()?;
        let end = values.byte_offset();
        out.push(trim(&body[start..end]));
        start = end;
    }
    Some(out)
}

/// Non-blank lines, without their line break.
fn lines(body: &[u8]) -> Vec<&[u8]> {
    body.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .collect()
}

/// The elements of a top-level JSON array (the elements are not parsed here: the
/// format decodes each and names what is wrong with it).
fn json_array(body: &[u8]) -> Result<Vec<&[u8]>, BodyError> {
    let open = body
        .iter()
        .position(|b| *b == b'[')
        .ok_or_else(|| BodyError::Malformed("expected a JSON array".into()))?;
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut start = open + 1;
    for (i, &b) in body.iter().enumerate().skip(open + 1) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b']' if depth == 0 => {
                let element = trim(&body[start..i]);
                if element.is_empty() {
                    if b == b']' && out.is_empty() {
                        // `[]`
                    } else {
                        return Err(BodyError::Malformed(format!(
                            "the JSON array has an empty element before byte {i}"
                        )));
                    }
                } else {
                    out.push(element);
                }
                if b == b']' {
                    if body[i + 1..].iter().any(|c| !c.is_ascii_whitespace()) {
                        return Err(BodyError::Malformed("text follows the JSON array".into()));
                    }
                    return Ok(out);
                }
                start = i + 1;
            }
            b'}' | b']' => {
                return Err(BodyError::Malformed(format!(
                    "unbalanced '{}' at byte {i}",
                    b as char
                )));
            }
            _ => {}
        }
    }
    Err(BodyError::Malformed(
        "the JSON array is not closed (is the body cut short?)".into(),
    ))
}

/// What must hold for any input (the fuzz target `ingest_body` and a randomized test
/// run it): the first byte picks the layout and whether the rest is gzip; decoding
/// and splitting return an error or records, never panic; the decompressed body stays
/// within the limit; every record is a non-blank slice of the body.
#[doc(hidden)]
pub fn check_any_body(data: &[u8]) {
    const MAX: usize = 1 << 16;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let layout = [Layout::Json, Layout::Lines, Layout::Csv][usize::from(mode % 3)];
    let encoding = (mode & 4 != 0).then_some("gzip");
    let Ok(body) = decode_encoding(rest.to_vec(), encoding, MAX) else {
        return;
    };
    assert!(encoding.is_none() || body.len() <= MAX, "over the limit");
    let Ok(records) = records(&body, layout) else {
        return;
    };
    let range = body.as_ptr_range();
    for r in records {
        let inside = range.start <= r.as_ptr() && r.as_ptr_range().end <= range.end;
        assert!(inside, "a record outside the body");
        assert!(r.iter().any(|b| !b.is_ascii_whitespace()), "a blank record");
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_into_elements_whatever_they_hold() {
        let body = br#" [ {"a": "x,]}"}, {"b": [1, {"c": 2}]} ,3 ] "#;
        let got = records(body, Layout::Json).expect("an array");
        assert_eq!(
            got,
            vec![
                &br#"{"a": "x,]}"}"#[..],
                &br#"{"b": [1, {"c": 2}]}"#[..],
                &b"3"[..]
            ]
        );
        assert_eq!(records(b"[]", Layout::Json), Ok(vec![]));
        assert_eq!(records(b"  ", Layout::Json), Ok(vec![]));
    }

    #[test]
    fn broken_arrays_are_malformed_not_panics() {
        for bad in [
            &b"[{\"a\": 1}"[..],
            b"[{\"a\": 1},",
            b"[1,,2]",
            b"[1] x",
            b"[\"unterminated",
            b"[}",
            b"[",
            b"[\"\\",
        ] {
            assert!(
                matches!(records(bad, Layout::Json), Err(BodyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn pretty_printed_objects_are_one_record_each() {
        let body = b"{\n  \"a\": 1,\n  \"b\": \"x\\n\"\n}\n{\"a\": 2}";
        let got = records(body, Layout::Json).expect("objects");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with(b"{") && got[0].ends_with(b"}"));
        // Not JSON: lines, for the format to name what is wrong with each.
        let got = records(b"{\"a\": 1}\n{\"a\": ", Layout::Json).expect("lines");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn lines_skip_blanks_and_carriage_returns() {
        let got = records(b"{\"a\":1}\r\n\n  \n{\"a\":2}", Layout::Lines).expect("lines");
        assert_eq!(got, vec![&b"{\"a\":1}"[..], &b"{\"a\":2}"[..]]);
    }

    #[test]
    fn gzip_is_undone_within_the_limit() {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&vec![b'a'; 10_000]).expect("writes");
        let gz = z.finish().expect("finishes");
        assert_eq!(
            decode_encoding(gz.clone(), Some("gzip"), 10_000).map(|b| b.len()),
            Ok(10_000)
        );
        assert_eq!(
            decode_encoding(gz, Some("gzip"), 9_999),
            Err(BodyError::TooLarge)
        );
        assert!(matches!(
            decode_encoding(b"not gzip".to_vec(), Some("gzip"), 100),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_encoding(b"x".to_vec(), Some("br"), 100),
            Err(BodyError::Malformed(_))
        ));
    }

    /// Random bodies made of the bytes that matter to the splitters (brackets, quotes,
    /// escapes, separators, line breaks), some gzipped whole or cut short: no panic.
    #[test]
    fn random_bodies_never_panic() {
        use rand::{Rng, SeedableRng};
        use std::io::Write;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"[]{}\",:\\ \n\r\tax1-.e";
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let mut body: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let mut mode = rng.random::<u8>() & !4;
            if rng.random_bool(0.1) {
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(&body).expect("writes");
                body = z.finish().expect("finishes");
                body.truncate(rng.random_range(0..=body.len()));
                mode |= 4;
            }
            body.insert(0, mode);
            check_any_body(&body);
        }
    }

    #[test]
    fn content_types_follow_the_format() {
        assert_eq!(
            Layout::of(Some("application/json; charset=utf-8"), "json"),
            Ok(Layout::Json)
        );
        assert_eq!(
            Layout::of(Some("application/x-ndjson"), "json"),
            Ok(Layout::Lines)
        );
        assert_eq!(Layout::of(Some("text/csv"), "csv"), Ok(Layout::Csv));
        assert!(Layout::of(Some("text/plain"), "json").is_err());
        assert!(Layout::of(Some("application/json"), "csv").is_err());
    }
}
