use super::*;
use crate::common::testing::Rng;

/// What a frame became, owned, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Line(u64, Vec<u8>),
    Big(u64, u64, usize),
}

fn collect(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<Got> {
    let mut out = Vec::new();
    let mut f = |frame: Frame<'_>| -> Result<(), ()> {
        out.push(match frame {
            Frame::Record { offset, bytes } => Got::Line(offset, bytes.to_vec()),
            Frame::Oversized(o) => Got::Big(o.offset, o.len, o.head.len()),
        });
        Ok(())
    };
    for c in chunks {
        framer.feed(c, &mut f).unwrap();
    }
    framer.finish(&mut f).unwrap();
    out
}

fn frames_in_chunks_of(data: &[u8], size: usize, max: usize) -> Vec<Got> {
    let chunks: Vec<&[u8]> = data.chunks(size.max(1)).collect();
    collect(&mut LineFramer::new().with_max_record_bytes(max), &chunks)
}

fn line(offset: u64, s: &str) -> Got {
    Got::Line(offset, s.as_bytes().to_vec())
}

#[test]
fn lines_with_lf_crlf_empty_lines_and_no_final_newline() {
    let data = b"a\r\n\nbb\n\r\nccc";
    let want = vec![line(0, "a"), line(4, "bb"), line(9, "ccc")];
    assert_eq!(frames_in_chunks_of(data, 100, 100), want);
}

#[test]
fn any_chunking_gives_the_same_frames() {
    let data = b"{\"a\":1}\r\n{\"b\":22}\n\n\r\nxyz\r\nlast";
    let whole = frames_in_chunks_of(data, data.len(), 1000);
    for size in 1..data.len() {
        assert_eq!(
            frames_in_chunks_of(data, size, 1000),
            whole,
            "chunk size {size}"
        );
    }
}

#[test]
fn a_line_of_exactly_the_limit_passes_even_with_crlf_split_across_chunks() {
    let data = b"abcd\r\nabcde\r\nab";
    for size in 1..data.len() {
        assert_eq!(
            frames_in_chunks_of(data, size, 4),
            vec![line(0, "abcd"), Got::Big(6, 5, 5), line(13, "ab")],
            "chunk size {size}"
        );
    }
}

#[test]
fn a_10_mb_line_is_reported_once_and_not_buffered() {
    let mut data = b"{\"ok\":1}\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    data.extend_from_slice(b"\r\n{\"ok\":2}\n");
    let mut framer = LineFramer::new();
    let chunks: Vec<&[u8]> = data.chunks(64 * 1024).collect();
    let got = collect(&mut framer, &chunks);
    assert_eq!(
        got,
        vec![
            line(0, "{\"ok\":1}"),
            Got::Big(9, 10 * 1024 * 1024, OVERSIZED_HEAD_BYTES),
            line(9 + 10 * 1024 * 1024 + 2, "{\"ok\":2}"),
        ]
    );
    assert!(
        framer.pending.capacity() < 2 * 1024 * 1024,
        "the line was buffered"
    );
    // In one chunk the same.
    assert_eq!(
        frames_in_chunks_of(&data, data.len(), DEFAULT_MAX_RECORD_BYTES),
        got
    );
    let reason = Oversized {
        offset: 0,
        head: b"",
        len: 10_485_760,
        limit: DEFAULT_MAX_RECORD_BYTES,
    }
    .reason();
    assert_eq!(
        reason,
        "record is 10485760 bytes, over the 8388608-byte limit"
    );
}

#[test]
fn an_oversized_last_line_without_newline_is_reported_at_finish() {
    let data = b"ok\n0123456789";
    for size in 1..data.len() {
        assert_eq!(
            frames_in_chunks_of(data, size, 5),
            vec![line(0, "ok"), Got::Big(3, 10, 10)]
        );
    }
}

#[test]
fn empty_input_gives_nothing() {
    assert_eq!(frames_in_chunks_of(b"", 10, 10), vec![]);
    assert_eq!(frames_in_chunks_of(b"\n\r\n\n", 1, 10), vec![]);
}

#[test]
fn resume_offset_points_at_the_partial_line() {
    let mut framer = LineFramer::new();
    let mut n = 0;
    framer
        .feed(b"ab\ncd", |_| -> Result<(), ()> {
            n += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!((n, framer.resume_offset()), (1, 3));
    let mut resumed = LineFramer::starting_at(3);
    assert_eq!(collect(&mut resumed, &[b"cd\n"]), vec![line(3, "cd")]);
}

/// Frames `data[start..end)` as a split reader would: feeds from `read_from()` in small
/// chunks until the framer is done or the data ends.
fn read_split(data: &[u8], start: u64, end: Option<u64>, chunk: usize) -> Vec<Got> {
    let mut framer = LineFramer::for_split(start, end);
    let mut out = Vec::new();
    let mut f = |frame: Frame<'_>| -> Result<(), ()> {
        if let Frame::Record { offset, bytes } = frame {
            out.push(Got::Line(offset, bytes.to_vec()));
        }
        Ok(())
    };
    let mut at = framer.read_from() as usize;
    while at < data.len() && !framer.is_done() {
        let to = (at + chunk).min(data.len());
        framer.feed(&data[at..to], &mut f).unwrap();
        at = to;
    }
    framer.finish(&mut f).unwrap();
    out
}

#[test]
fn a_split_starting_exactly_at_a_line_start_owns_that_line() {
    let data = b"aa\nbb\ncc\n";
    assert_eq!(read_split(data, 0, Some(3), 2), vec![line(0, "aa")]);
    assert_eq!(read_split(data, 3, Some(6), 2), vec![line(3, "bb")]);
    assert_eq!(read_split(data, 6, None, 2), vec![line(6, "cc")]);
    // A split that starts mid-line skips it; one that ends mid-line reads it whole.
    assert_eq!(
        read_split(data, 0, Some(4), 2),
        vec![line(0, "aa"), line(3, "bb")]
    );
    assert_eq!(read_split(data, 4, None, 2), vec![line(6, "cc")]);
    // Empty splits own nothing.
    assert_eq!(read_split(data, 0, Some(0), 2), vec![]);
    assert_eq!(read_split(data, 3, Some(3), 2), vec![]);
}

#[test]
fn contiguous_splits_yield_every_line_exactly_once() {
    let mut rng = Rng::new(7);
    for case in 0..300 {
        // A random file of short lines, with \r\n, empty lines and maybe no final newline.
        let mut data = Vec::new();
        for _ in 0..rng.below(30) {
            for _ in 0..rng.below(6) {
                data.push(b'a' + rng.below(3) as u8);
            }
            match rng.below(4) {
                0 => data.extend_from_slice(b"\r\n"),
                _ => data.push(b'\n'),
            }
        }
        data.extend(std::iter::repeat_n(b'z', rng.below(3) as usize));
        let whole = read_split(&data, 0, None, data.len().max(1));
        // Random cut points.
        let mut cuts: Vec<u64> = (0..rng.below(8))
            .map(|_| rng.below(data.len() as u64 + 1))
            .collect();
        cuts.push(0);
        cuts.sort_unstable();
        cuts.dedup();
        let mut joined = Vec::new();
        for (k, &start) in cuts.iter().enumerate() {
            let end = cuts.get(k + 1).copied();
            let chunk = 1 + rng.below(7) as usize;
            joined.extend(read_split(&data, start, end, chunk));
        }
        assert_eq!(joined, whole, "case {case}: cuts {cuts:?} data {data:?}");
    }
}
