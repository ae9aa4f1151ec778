//! Options shared by every connector that can be a lookup table (`jdbc`, `redis`):
//! Flink's `lookup.cache`, `lookup.partial-cache.*` and `lookup.max-retries`, and the
//! older `lookup.cache.max-rows`, `lookup.cache.ttl` and `lookup.cache.caching-missing-key`.

use sluice_runtime::LookupCaching;

use crate::{Options, Result};

/// Reads the `lookup.*` options (every one of them, so a later `finish` sees none).
pub(crate) fn take_caching(o: &mut Options) -> Result<LookupCaching> {
    let mut c = LookupCaching::default();
    let mode = o.take("lookup.cache").map(|m| m.to_ascii_uppercase());
    let max_rows = o.take_parsed::<usize>("lookup.partial-cache.max-rows", "a number of keys")?;
    let after_write = o.take_duration("lookup.partial-cache.expire-after-write")?;
    let after_access = o.take_duration("lookup.partial-cache.expire-after-access")?;
    let missing = o.take("lookup.partial-cache.cache-missing-key");
    let legacy_rows = o.take_parsed::<usize>("lookup.cache.max-rows", "a number of keys")?;
    let legacy_ttl = o.take_duration("lookup.cache.ttl")?;
    let legacy_missing = o.take("lookup.cache.caching-missing-key");
    if let Some(r) = o.take_parsed::<u32>("lookup.max-retries", "a number")? {
        c.max_retries = r;
    }
    let partial = match mode.as_deref() {
        None => max_rows.is_some() || after_write.is_some() || after_access.is_some(),
        Some("PARTIAL") => true,
        Some("NONE") => false,
        Some("FULL") => {
            return Err(o.bad(
                "lookup.cache",
                "FULL (reloading the whole table) is not supported; use PARTIAL",
            ));
        }
        Some(m) => return Err(o.bad("lookup.cache", &format!("'{m}' is not NONE or PARTIAL"))),
    };
    let flag = |o: &Options, key: &str, v: Option<String>| -> Result<Option<bool>> {
        match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(o.bad(key, &format!("'{v}' is not true or false"))),
        }
    };
    if partial {
        if max_rows.is_none() && after_write.is_none() && after_access.is_none() {
            return Err(o.bad(
                "lookup.cache",
                "PARTIAL needs 'lookup.partial-cache.max-rows' or an expiry \
                 ('lookup.partial-cache.expire-after-write', '…-after-access')",
            ));
        }
        c.max_rows = Some(max_rows.unwrap_or(100_000));
        c.expire_after_write = after_write;
        c.expire_after_access = after_access;
        if let Some(m) = flag(o, "lookup.partial-cache.cache-missing-key", missing)? {
            c.cache_missing_key = m;
        }
    } else if legacy_rows.is_some() || legacy_ttl.is_some() {
        c.max_rows = Some(legacy_rows.unwrap_or(100_000));
        c.expire_after_write = legacy_ttl;
        if let Some(m) = flag(o, "lookup.cache.caching-missing-key", legacy_missing)? {
            c.cache_missing_key = m;
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<LookupCaching> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut o = Options::new("t", "jdbc", &map);
        let c = take_caching(&mut o)?;
        o.finish()?;
        Ok(c)
    }

    #[test]
    fn no_options_no_cache() {
        assert_eq!(read(&[]).unwrap(), LookupCaching::default());
        assert_eq!(read(&[]).unwrap().max_rows, None);
    }

    #[test]
    fn both_spellings_of_the_cache_options() {
        let c = read(&[
            ("lookup.cache", "partial"),
            ("lookup.partial-cache.max-rows", "500"),
            ("lookup.partial-cache.expire-after-write", "10 s"),
            ("lookup.partial-cache.cache-missing-key", "false"),
            ("lookup.max-retries", "1"),
        ])
        .unwrap();
        assert_eq!(c.max_rows, Some(500));
        assert_eq!(c.expire_after_write, Some(Duration::from_secs(10)));
        assert!(!c.cache_missing_key);
        assert_eq!(c.max_retries, 1);
        let c = read(&[
            ("lookup.cache.max-rows", "20"),
            ("lookup.cache.ttl", "1 min"),
        ])
        .unwrap();
        assert_eq!(c.max_rows, Some(20));
        assert_eq!(c.expire_after_write, Some(Duration::from_secs(60)));
        assert!(c.cache_missing_key);
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for (pairs, says) in [
            (vec![("lookup.cache", "FULL")], "not supported"),
            (vec![("lookup.cache", "sometimes")], "NONE or PARTIAL"),
            (vec![("lookup.cache", "PARTIAL")], "needs"),
            (vec![("lookup.cache.max-rows", "-1")], "number of keys"),
            (
                vec![
                    ("lookup.cache.max-rows", "1"),
                    ("lookup.cache.caching-missing-key", "yes"),
                ],
                "true or false",
            ),
        ] {
            let e = read(&pairs).unwrap_err().to_string();
            assert!(e.contains(says), "{pairs:?}: {e}");
        }
    }
}
