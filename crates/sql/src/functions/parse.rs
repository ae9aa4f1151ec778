//! Parsing date/time strings: with a translated Java pattern
//! ([`JavaFormat::parse`]) or leniently in Flink's default shapes
//! ([`parse_default`]: `yyyy-MM-dd`, `yyyy-MM-dd HH:mm[:ss[.fffffffff]]`,
//! `T` instead of the space, optional `Z`/`±hh[:mm]` offset).
//!
//! Both return the local date-time and the offset found in the text, if any;
//! callers decide whether the offset shifts the instant. Nothing here
//! panics on any input: a mismatch is `None`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::format::{DAYS, JavaFormat, MONTHS, Tok};

/// A parsed date-time and the UTC offset (seconds) written in the text.
pub(crate) type Parsed = (NaiveDateTime, Option<i32>);

/// Byte cursor over the input.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    /// Reads `min..=max` ASCII digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let mut v: i64 = 0;
        let mut n = 0;
        while n < max && self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            v = v
                .checked_mul(10)?
                .checked_add(i64::from(self.s[self.pos] - b'0'))?;
            self.pos += 1;
            n += 1;
        }
        (n >= min).then_some((v, n))
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.pos) == Some(&b);
        self.pos += usize::from(hit);
        hit
    }

    /// Consumes `word` case-insensitively.
    fn eat_word(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let hit = self
            .s
            .get(self.pos..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()));
        if hit {
            self.pos = end;
        }
        hit
    }

    /// Index of the first of `words` found here (tried in order).
    fn eat_any(&mut self, words: impl Iterator<Item = &'static str>) -> Option<usize> {
        words
            .enumerate()
            .find(|(_, w)| self.eat_word(w))
            .map(|(i, _)| i)
    }

    /// `Z`, or `±hh`, `±hhmm`, `±hh:mm`, optionally after `UTC`/`GMT`.
    fn offset(&mut self) -> Option<i32> {
        if self.eat(b'Z') || self.eat(b'z') {
            return Some(0);
        }
        let named = self.eat_word("UTC") || self.eat_word("GMT");
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return named.then_some(0);
        };
        let (h, _) = self.digits(2, 2)?;
        self.eat(b':');
        let m = self.digits(2, 2).map_or(0, |(m, _)| m);
        i32::try_from(sign * (h * 3600 + m * 60))
            .ok()
            .filter(|o| o.abs() < 24 * 3600)
    }

    fn done(&self) -> bool {
        self.pos == self.s.len()
    }
}

/// Fields collected while parsing with a pattern.
#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    hour: Option<i64>,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    nanos: i64,
    offset: Option<i32>,
}

impl Fields {
    fn build(self) -> Option<Parsed> {
        let year = i32::try_from(self.year.unwrap_or(1970)).ok()?;
        let date = match self.day_of_year {
            Some(doy) => NaiveDate::from_yo_opt(year, u32::try_from(doy).ok()?)?,
            None => NaiveDate::from_ymd_opt(
                year,
                u32::try_from(self.month.unwrap_or(1)).ok()?,
                u32::try_from(self.day.unwrap_or(1)).ok()?,
            )?,
        };
        let hour = match (self.hour, self.hour12) {
            (Some(h), _) => h,
            (None, Some(h)) => h % 12 + if self.pm == Some(true) { 12 } else { 0 },
            (None, None) => 0,
        };
        let u = |v: i64| u32::try_from(v).ok();
        let time = NaiveTime::from_hms_nano_opt(
            u(hour)?,
            u(self.minute)?,
            u(self.second)?,
            u(self.nanos)?,
        )?;
        Some((date.and_time(time), self.offset))
    }
}

impl JavaFormat {
    /// Parses all of `s` with this pattern; missing fields default to
    /// 1970-01-01 00:00:00.
    pub(crate) fn parse(&self, s: &str) -> Option<Parsed> {
        let mut c = Cursor {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut f = Fields::default();
        for (tok, adjacent) in &self.toks {
            // A number directly followed by another number has a fixed width.
            let num = |c: &mut Cursor<'_>, width: usize, max: usize| {
                if *adjacent {
                    c.digits(width, width)
                } else {
                    c.digits(1, max.max(width))
                }
                .map(|(v, _)| v)
            };
            match tok {
                Tok::Lit(l) => {
                    if !c.eat_word(l) {
                        return None;
                    }
                }
                Tok::Era => {
                    c.eat_any(["AD", "BC"].into_iter())?;
                }
                Tok::Year(w) => {
                    let (v, n) = if *adjacent {
                        c.digits(*w, *w)?
                    } else {
                        c.digits(1, 9)?
                    };
                    f.year = Some(if *w == 2 && n == 2 { 2000 + v } else { v });
                }
                Tok::Month(w) if *w >= 3 => {
                    let full = c.eat_any(MONTHS.into_iter());
                    let m = full.or_else(|| c.eat_any(MONTHS.into_iter().map(|m| &m[..3])))?;
                    f.month = Some(m as i64 + 1);
                }
                Tok::Month(w) => f.month = Some(num(&mut c, *w, 2)?),
                Tok::Day(w) => f.day = Some(num(&mut c, *w, 2)?),
                Tok::DayOfYear(w) => f.day_of_year = Some(num(&mut c, *w, 3)?),
                Tok::Week(w) => {
                    num(&mut c, *w, 2)?;
                }
                Tok::DayName(_) => {
                    let full = c.eat_any(DAYS.into_iter());
                    full.or_else(|| c.eat_any(DAYS.into_iter().map(|d| &d[..3])))?;
                }
                Tok::AmPm => f.pm = Some(c.eat_any(["AM", "PM"].into_iter())? == 1),
                Tok::Hour(w) => f.hour = Some(num(&mut c, *w, 2)?),
                Tok::HourK(w) => f.hour = Some(num(&mut c, *w, 2)? % 24),
                Tok::Hour12(w) | Tok::Hour12K(w) => f.hour12 = Some(num(&mut c, *w, 2)?),
                Tok::Minute(w) => f.minute = num(&mut c, *w, 2)?,
                Tok::Second(w) => f.second = num(&mut c, *w, 2)?,
                Tok::Fraction(w) => {
                    let (v, n) = if *adjacent {
                        c.digits(*w, *w)?
                    } else {
                        c.digits(1, 9)?
                    };
                    f.nanos = v * 10i64.pow(9u32.saturating_sub(n as u32));
                }
                Tok::Offset(_) => f.offset = Some(c.offset()?),
            }
        }
        if !c.done() {
            return None;
        }
        f.build()
    }
}

/// Parses Flink's default timestamp shapes (see the module docs); leading
/// and trailing whitespace is ignored.
pub(crate) fn parse_default(s: &str) -> Option<Parsed> {
    let mut c = Cursor {
        s: s.trim().as_bytes(),
        pos: 0,
    };
    let mut f = Fields::default();
    let negative = c.eat(b'-');
    let (year, _) = c.digits(4, 6)?;
    f.year = Some(if negative { -year } else { year });
    let sep = |c: &mut Cursor<'_>| c.eat(b'-').then_some(());
    sep(&mut c)?;
    f.month = Some(c.digits(1, 2)?.0);
    sep(&mut c)?;
    f.day = Some(c.digits(1, 2)?.0);
    if c.eat(b' ') || c.eat(b'T') {
        f.hour = Some(c.digits(1, 2)?.0);
        c.eat(b':').then_some(())?;
        f.minute = c.digits(1, 2)?.0;
        if c.eat(b':') {
            f.second = c.digits(1, 2)?.0;
            if c.eat(b'.') {
                let (v, n) = c.digits(1, 9)?;
                f.nanos = v * 10i64.pow(9 - n as u32);
            }
        }
    }
    if !c.done() {
        c.eat(b' ');
        f.offset = Some(c.offset()?);
    }
    if !c.done() {
        return None;
    }
    f.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pattern: &str, s: &str) -> Option<String> {
        let (dt, off) = JavaFormat::new(pattern)?.parse(s)?;
        Some(format!("{dt} {off:?}"))
    }

    #[test]
    fn parses_with_patterns() {
        assert_eq!(
            p("yyyy-MM-dd HH:mm:ss", "2020-03-05 14:07:09").as_deref(),
            Some("2020-03-05 14:07:09 None")
        );
        assert_eq!(
            p("yyyyMMddHHmmss", "20200305140709").as_deref(),
            Some("2020-03-05 14:07:09 None")
        );
        assert_eq!(
            p("dd/MMM/yyyy:HH:mm:ss Z", "05/mar/2020:14:07:09 +0100").as_deref(),
            Some("2020-03-05 14:07:09 Some(3600)")
        );
        assert_eq!(
            p("yyyy-MM-dd'T'HH:mm:ss.SSSX", "2020-03-05T14:07:09.5Z").as_deref(),
            Some("2020-03-05 14:07:09.500 Some(0)")
        );
        assert_eq!(
            p("hh:mm a", "02:07 PM").as_deref(),
            Some("1970-01-01 14:07:00 None")
        );
        assert_eq!(p("yyyy-MM-dd", "2020-02-30"), None);
        assert_eq!(p("yyyy-MM-dd", "2020-02-03 trailing"), None);
        assert_eq!(p("yyyy", "99999999999999999999"), None);
    }

    #[test]
    fn parses_default_shapes() {
        let d = |s: &str| parse_default(s).map(|(dt, off)| format!("{dt} {off:?}"));
        assert_eq!(d("2020-03-05").as_deref(), Some("2020-03-05 00:00:00 None"));
        assert_eq!(
            d("2020-03-05 14:07:09.123").as_deref(),
            Some("2020-03-05 14:07:09.123 None")
        );
        assert_eq!(
            d("2020-3-5T4:07").as_deref(),
            Some("2020-03-05 04:07:00 None")
        );
        assert_eq!(
            d("2020-03-05T14:07:09+08:00").as_deref(),
            Some("2020-03-05 14:07:09 Some(28800)")
        );
        assert_eq!(
            d("2020-03-05 14:07:09 UTC").as_deref(),
            Some("2020-03-05 14:07:09 Some(0)")
        );
        for bad in [
            "",
            "garbage",
            "2020-13-01",
            "2020-01-01 25:00:00",
            "2020-01-01 10",
            "2020-01-01 10:00:00.1234567890",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }
}
