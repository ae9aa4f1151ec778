//! Translator for Java date/time patterns (`SimpleDateFormat` and
//! `DateTimeFormatter` letters, as Flink accepts them) and the formatter
//! that prints a timestamp with a translated pattern.
//!
//! A pattern is translated once into a [`JavaFormat`] token list (cached per
//! function instance) and then applied to every row without allocating.
//! Sluice evaluates in UTC, so zone and offset letters print UTC's form.
//! Parsing with the same tokens lives in `parse.rs`.
//!
//! Supported letters: `G y u Y M L d D w E a H k h K m s S Z X x z O V`;
//! quoted text (`'T'`, `''` for a quote); `[`/`]` optional-section markers
//! are ignored. Any other ASCII letter makes the pattern invalid, which the
//! calling function turns into NULL.

use std::fmt::{self, Write};

use chrono::{Datelike, NaiveDateTime, Timelike};

/// One element of a translated pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Text printed and expected verbatim.
    Lit(String),
    /// `G`: `AD`/`BC`.
    Era,
    /// `y`/`u`/`Y`: year; width 2 prints the last two digits.
    Year(usize),
    /// `M`/`L`: month; width 3 is `Jan`, 4+ is `January`.
    Month(usize),
    /// `d`: day of month.
    Day(usize),
    /// `D`: day of year.
    DayOfYear(usize),
    /// `w`: ISO week of year.
    Week(usize),
    /// `E`: day name, `true` for the full name (4+ letters).
    DayName(bool),
    /// `a`: `AM`/`PM`.
    AmPm,
    /// `H`: hour 0-23.
    Hour(usize),
    /// `k`: hour 1-24.
    HourK(usize),
    /// `h`: hour 1-12.
    Hour12(usize),
    /// `K`: hour 0-11.
    Hour12K(usize),
    /// `m`: minute.
    Minute(usize),
    /// `s`: second.
    Second(usize),
    /// `S`: fraction of second, `n` digits.
    Fraction(usize),
    /// Zone or offset letters; holds how UTC prints.
    Offset(&'static str),
}

impl Tok {
    /// Whether the token is a number (matters for adjacent-field parsing).
    pub(crate) fn is_numeric(&self) -> bool {
        !matches!(
            self,
            Tok::Lit(_) | Tok::Era | Tok::DayName(_) | Tok::AmPm | Tok::Offset(_)
        ) && !matches!(self, Tok::Month(w) if *w >= 3)
    }
}

/// A translated Java pattern: tokens, each with whether a numeric token
/// directly follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JavaFormat {
    /// `(token, next token is numeric)`.
    pub(crate) toks: Vec<(Tok, bool)>,
}

/// English month names, January first.
pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// English day names, Monday first.
pub(crate) const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn letter_token(c: char, n: usize) -> Option<Tok> {
    Some(match c {
        'G' => Tok::Era,
        'y' | 'u' | 'Y' => Tok::Year(n),
        'M' | 'L' => Tok::Month(n),
        'd' => Tok::Day(n),
        'D' => Tok::DayOfYear(n),
        'w' => Tok::Week(n),
        'E' => Tok::DayName(n >= 4),
        'a' => Tok::AmPm,
        'H' => Tok::Hour(n),
        'k' => Tok::HourK(n),
        'h' => Tok::Hour12(n),
        'K' => Tok::Hour12K(n),
        'm' => Tok::Minute(n),
        's' => Tok::Second(n),
        'S' => Tok::Fraction(n),
        'Z' if n == 4 => Tok::Offset("GMT"),
        'Z' if n >= 5 => Tok::Offset("Z"),
        'Z' => Tok::Offset("+0000"),
        'X' => Tok::Offset("Z"),
        'x' if n == 1 => Tok::Offset("+00"),
        'x' if n == 2 || n == 4 => Tok::Offset("+0000"),
        'x' => Tok::Offset("+00:00"),
        'z' | 'V' => Tok::Offset("UTC"),
        'O' => Tok::Offset("GMT"),
        _ => return None,
    })
}

impl JavaFormat {
    /// Translates `pattern`; `None` if it uses an unsupported letter or has
    /// an unterminated quote.
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let mut toks: Vec<Tok> = Vec::new();
        let mut lit = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_alphabetic() {
                let mut n = 1;
                while chars.next_if_eq(&c).is_some() {
                    n += 1;
                }
                if !lit.is_empty() {
                    toks.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                toks.push(letter_token(c, n)?);
            } else if c == '\'' {
                if chars.next_if_eq(&'\'').is_some() {
                    lit.push('\'');
                    continue;
                }
                loop {
                    match chars.next()? {
                        '\'' if chars.next_if_eq(&'\'').is_some() => lit.push('\''),
                        '\'' => break,
                        q => lit.push(q),
                    }
                }
            } else if c != '[' && c != ']' {
                lit.push(c);
            }
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        let next_numeric: Vec<bool> = (0..toks.len())
            .map(|i| toks.get(i + 1).is_some_and(Tok::is_numeric))
            .collect();
        Some(Self {
            toks: toks.into_iter().zip(next_numeric).collect(),
        })
    }

    /// Writes `dt` (UTC) formatted with this pattern.
    pub(crate) fn format(&self, dt: &NaiveDateTime, out: &mut impl Write) -> fmt::Result {
        for (tok, _) in &self.toks {
            write_token(tok, dt, out)?;
        }
        Ok(())
    }
}

fn write_num(out: &mut impl Write, v: i64, width: usize) -> fmt::Result {
    write!(out, "{v:0width$}")
}

fn write_token(tok: &Tok, dt: &NaiveDateTime, out: &mut impl Write) -> fmt::Result {
    let hour = i64::from(dt.hour());
    match tok {
        Tok::Lit(s) => out.write_str(s),
        Tok::Era => out.write_str(if dt.year() > 0 { "AD" } else { "BC" }),
        Tok::Year(2) => write_num(out, i64::from(dt.year()).rem_euclid(100), 2),
        Tok::Year(w) => write_num(out, i64::from(dt.year()), *w),
        Tok::Month(w) if *w >= 3 => {
            let name = MONTHS[dt.month0() as usize % 12];
            out.write_str(if *w == 3 { &name[..3] } else { name })
        }
        Tok::Month(w) => write_num(out, i64::from(dt.month()), *w),
        Tok::Day(w) => write_num(out, i64::from(dt.day()), *w),
        Tok::DayOfYear(w) => write_num(out, i64::from(dt.ordinal()), *w),
        Tok::Week(w) => write_num(out, i64::from(dt.iso_week().week()), *w),
        Tok::DayName(full) => {
            let name = DAYS[dt.weekday().num_days_from_monday() as usize % 7];
            out.write_str(if *full { name } else { &name[..3] })
        }
        Tok::AmPm => out.write_str(if hour < 12 { "AM" } else { "PM" }),
        Tok::Hour(w) => write_num(out, hour, *w),
        Tok::HourK(w) => write_num(out, if hour == 0 { 24 } else { hour }, *w),
        Tok::Hour12(w) => write_num(out, if hour % 12 == 0 { 12 } else { hour % 12 }, *w),
        Tok::Hour12K(w) => write_num(out, hour % 12, *w),
        Tok::Minute(w) => write_num(out, i64::from(dt.minute()), *w),
        Tok::Second(w) => write_num(out, i64::from(dt.second()), *w),
        Tok::Fraction(w) => {
            let nanos = i64::from(dt.nanosecond() % 1_000_000_000);
            let shown = (*w).min(9);
            write_num(out, nanos / 10i64.pow((9 - shown) as u32), shown)?;
            (shown..*w).try_for_each(|_| out.write_char('0'))
        }
        Tok::Offset(s) => out.write_str(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(pattern: &str, ts: &str) -> Option<String> {
        let dt = NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.f").ok()?;
        let mut s = String::new();
        JavaFormat::new(pattern)?.format(&dt, &mut s).ok()?;
        Some(s)
    }

    #[test]
    fn formats_common_patterns() {
        let ts = "2020-03-05 14:07:09.123456";
        assert_eq!(
            fmt("yyyy-MM-dd HH:mm:ss", ts).as_deref(),
            Some("2020-03-05 14:07:09")
        );
        assert_eq!(
            fmt("yy/M/d H:m:s.SSS", ts).as_deref(),
            Some("20/3/5 14:7:9.123")
        );
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX", ts).as_deref(),
            Some("2020-03-05T14:07:09.123456Z")
        );
        assert_eq!(
            fmt("EEE, d MMM yyyy hh:mm a Z", ts).as_deref(),
            Some("Thu, 5 Mar 2020 02:07 PM +0000")
        );
        assert_eq!(
            fmt("EEEE MMMM ''yy", ts).as_deref(),
            Some("Thursday March '20")
        );
        assert_eq!(fmt("D w S", ts).as_deref(), Some("65 10 1"));
        assert_eq!(fmt("yyyy-MM-dd b", ts), None);
        assert_eq!(fmt("'unterminated", ts), None);
        assert_eq!(fmt("", ts).as_deref(), Some(""));
    }
}
