//! Duration strings as users write them (`"10s"`, `"500ms"`, `"1 min"`).

use std::time::Duration;

/// Parses `"10s"`, `"500 ms"`, `"2min"`, `"1h"`, `"3d"`; a bare number means milliseconds
/// (Flink's convention for duration options). Returns a message naming the accepted units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write e.g. '10s', '500ms' or '2min'"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let secs = match unit.as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => value / 1000.0,
        "s" | "sec" | "secs" | "second" | "seconds" => value,
        "m" | "min" | "mins" | "minute" | "minutes" => value * 60.0,
        "h" | "hour" | "hours" => value * 3600.0,
        "d" | "day" | "days" => value * 86400.0,
        _ => {
            return Err(format!(
                "unknown duration unit '{unit}' in '{text}'; use ms, s, min, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("'{text}' is not a valid duration (negative or too large)"))
}

/// Formats a duration compactly for logs and summaries (`1.25s`, `340ms`).
pub fn format_duration(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500 ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
    }
}
