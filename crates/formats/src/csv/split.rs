//! A small CSV field splitter for one record, used off the fast path.
//!
//! Owns: splitting one line into unquoted field values the way csv-core reads them
//! (quotes, doubled quotes, an escape character inside quotes), to recognise a header
//! line and to count fields when a record is rejected. Does not own: the fast path,
//! which is arrow-csv's.

/// Why a record could not be split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// A quoted field that never closes.
    Unterminated,
}

/// Splits `record` on `delimiter`, removing quotes. Lenient like csv-core: a quote in
/// the middle of an unquoted field is kept as is.
pub(crate) fn split_fields(
    record: &[u8],
    delimiter: u8,
    quote: Option<u8>,
    escape: Option<u8>,
) -> Result<Vec<Vec<u8>>, SplitError> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut i = 0;
    let mut at_start = true;
    let mut in_quotes = false;
    while i < record.len() {
        let b = record[i];
        if in_quotes {
            if Some(b) == escape && i + 1 < record.len() {
                field.push(record[i + 1]);
                i += 2;
                continue;
            }
            if Some(b) == quote {
                if record.get(i + 1) == quote.as_ref() {
                    field.push(b);
                    i += 2;
                    continue;
                }
                in_quotes = false;
            } else {
                field.push(b);
            }
        } else if b == delimiter {
            fields.push(std::mem::take(&mut field));
            at_start = true;
            i += 1;
            continue;
        } else if at_start && Some(b) == quote {
            in_quotes = true;
        } else {
            field.push(b);
        }
        at_start = false;
        i += 1;
    }
    if in_quotes {
        return Err(SplitError::Unterminated);
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_fields(s.as_bytes(), b',', Some(b'"'), None)
            .unwrap()
            .into_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect()
    }

    #[test]
    fn splits_quoted_and_doubled_quotes() {
        assert_eq!(split("a,\"b,c\",\"d\"\"e\","), vec!["a", "b,c", "d\"e", ""]);
        assert_eq!(split(""), vec![""]);
        assert_eq!(
            split_fields(b"\"abc", b',', Some(b'"'), None),
            Err(SplitError::Unterminated)
        );
        let esc = split_fields(b"\"a\\\"b\",c", b',', Some(b'"'), Some(b'\\')).unwrap();
        assert_eq!(esc, vec![b"a\"b".to_vec(), b"c".to_vec()]);
    }
}
