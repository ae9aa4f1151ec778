//! Fast parsing and formatting of Flink's text forms of dates, times and timestamps.
//!
//! Owns: `yyyy-MM-dd[ |T]HH:mm[:ss[.fffffffff]][Z|±hh[:mm]]` parsing (the SQL and ISO-8601
//! standards both, plus bare epoch milliseconds), and writing the SQL or ISO-8601 forms.
//! Does not own: which columns get converted (see `fixup`).

use datafusion::arrow::datatypes::TimeUnit;

/// Which text form timestamps are written in (`*.timestamp-format.standard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampStyle {
    /// `2024-01-01 12:00:00.123` (Flink's default, `'SQL'`).
    Sql,
    /// `2024-01-01T12:00:00.123` (`'ISO-8601'`).
    Iso,
}

impl TimestampStyle {
    /// Parses the option value (`SQL` or `ISO-8601`, any case).
    pub(crate) fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("SQL") {
            Some(Self::Sql)
        } else if value.eq_ignore_ascii_case("ISO-8601") {
            Some(Self::Iso)
        } else {
            None
        }
    }
}

/// Units of `unit` in one second.
pub(crate) fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A cursor over ASCII digits and separators.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let s = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn date_part(c: &mut Cursor<'_>) -> Option<i64> {
    let y = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let m = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2)?;
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `HH:mm[:ss[.fffffffff]]` into nanoseconds of the day.
fn time_part(c: &mut Cursor<'_>) -> Option<i64> {
    let h = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let mi = c.digits(2)?;
    let mut s = 0;
    let mut nanos = 0i64;
    if c.eat(b':') {
        s = c.digits(2)?;
        if c.eat(b'.') {
            let mut n = 0;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                if n < 9 {
                    nanos = nanos * 10 + i64::from(d - b'0');
                }
                n += 1;
                c.i += 1;
            }
            if n == 0 {
                return None;
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some((i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000_000 + nanos)
}

/// Parses a timestamp in SQL or ISO-8601 form (optionally with `Z` or an offset, which is
/// applied), a bare date (midnight), or bare epoch milliseconds, into `unit`s since the
/// epoch (UTC). `None` when the text is none of these or overflows.
pub(crate) fn parse_timestamp(text: &str, unit: TimeUnit) -> Option<i64> {
    let b = text.trim().as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        let millis: i64 = std::str::from_utf8(b).ok()?.parse().ok()?;
        return match unit {
            TimeUnit::Second => Some(millis.div_euclid(1000)),
            TimeUnit::Millisecond => Some(millis),
            TimeUnit::Microsecond => millis.checked_mul(1_000),
            TimeUnit::Nanosecond => millis.checked_mul(1_000_000),
        };
    }
    let mut c = Cursor { b, i: 0 };
    let days = date_part(&mut c)?;
    let mut nanos = 0;
    if c.eat(b' ') || c.eat(b'T') || c.eat(b't') {
        nanos = time_part(&mut c)?;
    }
    let mut offset_secs = 0i64;
    match c.peek() {
        None => {}
        Some(b'Z' | b'z') => c.i += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let h = c.digits(2)?;
            c.eat(b':');
            let m = if c.done() { 0 } else { c.digits(2)? };
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            offset_secs = if sign == b'+' { off } else { -off };
        }
        Some(_) => return None,
    }
    if !c.done() {
        return None;
    }
    let secs = days * 86_400 + nanos / 1_000_000_000 - offset_secs;
    let sub = nanos % 1_000_000_000;
    let per = per_second(unit);
    secs.checked_mul(per)?
        .checked_add(sub / (1_000_000_000 / per))
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Writes `yyyy-MM-dd` for a day number.
pub(crate) fn write_date(days: i64, out: &mut Vec<u8>) {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        out.extend_from_slice(y.to_string().as_bytes());
    }
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
}

/// Writes `.fffffffff` with trailing zeros trimmed (nothing for a whole second), as Flink.
fn write_fraction(nanos: u32, out: &mut Vec<u8>) {
    if nanos == 0 {
        return;
    }
    out.push(b'.');
    let mut digits = [0u8; 9];
    let mut n = nanos;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.extend_from_slice(&digits[..len]);
}

/// Writes `HH:mm:ss[.f…]` for nanoseconds of the day.
fn write_time_of_day(nanos_of_day: i64, out: &mut Vec<u8>) {
    let secs = (nanos_of_day / 1_000_000_000) as u32;
    push2(out, secs / 3600 % 100);
    out.push(b':');
    push2(out, secs / 60 % 60);
    out.push(b':');
    push2(out, secs % 60);
    write_fraction((nanos_of_day % 1_000_000_000) as u32, out);
}

/// Writes a TIME value (`value` in `unit`s of the day).
pub(crate) fn write_time(value: i64, unit: TimeUnit, out: &mut Vec<u8>) {
    let nanos = value.saturating_mul(1_000_000_000 / per_second(unit));
    write_time_of_day(nanos.rem_euclid(86_400 * 1_000_000_000), out);
}

/// Writes a timestamp (`value` in `unit`s since the epoch) in `style`; `zulu` appends `Z`
/// (used for TIMESTAMP_LTZ, as Flink).
pub(crate) fn write_timestamp(
    value: i64,
    unit: TimeUnit,
    style: TimestampStyle,
    zulu: bool,
    out: &mut Vec<u8>,
) {
    let per = per_second(unit);
    let secs = value.div_euclid(per);
    let sub_nanos = value.rem_euclid(per) * (1_000_000_000 / per);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    write_date(days, out);
    out.push(match style {
        TimestampStyle::Sql => b' ',
        TimestampStyle::Iso => b'T',
    });
    write_time_of_day(sod * 1_000_000_000 + sub_nanos, out);
    if zulu {
        out.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(v: i64, unit: TimeUnit, style: TimestampStyle) -> String {
        let mut out = Vec::new();
        write_timestamp(v, unit, style, false, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn civil_round_trip_over_many_years() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_sql_iso_zulu_offset_date_and_epoch_millis() {
        let ms = TimeUnit::Millisecond;
        let base = 1_704_067_200_000; // 2024-01-01T00:00:00Z
        assert_eq!(
            parse_timestamp("2024-01-01 00:00:00.123", ms),
            Some(base + 123)
        );
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:00.123", ms),
            Some(base + 123)
        );
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:00.123Z", ms),
            Some(base + 123)
        );
        assert_eq!(parse_timestamp("2024-01-01T01:00:00+01:00", ms), Some(base));
        assert_eq!(parse_timestamp("2024-01-01 00:00", ms), Some(base));
        assert_eq!(parse_timestamp("2024-01-01", ms), Some(base));
        assert_eq!(parse_timestamp("1704067200123", ms), Some(base + 123));
        assert_eq!(
            parse_timestamp("1704067200123", TimeUnit::Microsecond),
            Some((base + 123) * 1000)
        );
        assert_eq!(
            parse_timestamp("2024-01-01 00:00:00.123456789", TimeUnit::Nanosecond),
            Some(base * 1_000_000 + 123_456_789)
        );
        for bad in [
            "",
            "abc",
            "2024-13-01 00:00:00",
            "2024-02-30",
            "2024-01-01 25:00:00",
            "2024-01-01x",
        ] {
            assert_eq!(parse_timestamp(bad, ms), None, "{bad}");
        }
        assert_eq!(
            parse_timestamp("9999-12-31 23:59:59", TimeUnit::Nanosecond),
            None
        );
    }

    #[test]
    fn writes_flink_forms_with_trimmed_fraction() {
        let ms = TimeUnit::Millisecond;
        assert_eq!(
            ts(1_704_067_200_123, ms, TimestampStyle::Sql),
            "2024-01-01 00:00:00.123"
        );
        assert_eq!(
            ts(1_704_067_200_100, ms, TimestampStyle::Iso),
            "2024-01-01T00:00:00.1"
        );
        assert_eq!(
            ts(1_704_067_200_000, ms, TimestampStyle::Sql),
            "2024-01-01 00:00:00"
        );
        assert_eq!(ts(-1, ms, TimestampStyle::Sql), "1969-12-31 23:59:59.999");
        let mut out = Vec::new();
        write_time(45_296_789, ms, &mut out);
        assert_eq!(out, b"12:34:56.789");
        let mut out = Vec::new();
        write_date(1, &mut out);
        assert_eq!(out, b"1970-01-02");
    }
}
