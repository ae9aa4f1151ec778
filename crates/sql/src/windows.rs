//! The window table functions, `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size))` and
//! friends, rewritten (at the token level, before parsing) into SQL that DataFusion
//! plans: the input's rows with `window_start`, `window_end` and `window_time` added,
//! a row repeated once per window for `HOP` and `CUMULATE`. The streaming planner
//! recognises a `GROUP BY … window_start, window_end` over such rows as a window
//! aggregation; the batch oracle runs the same SQL as a plain `GROUP BY`, which is
//! exactly the answer a window aggregation must give over bounded input.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use sluice_types::Location;

use crate::ddl::parser::DIALECT;
use crate::{Error, Result};

const FUNCTIONS: [&str; 4] = ["TUMBLE", "HOP", "CUMULATE", "SESSION"];

fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Positions of the non-trivia tokens.
fn significant(tokens: &[TokenWithSpan]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|i| !is_trivia(&tokens[*i].token))
        .collect()
}

/// Rewrites every window table function call in `tokens`.
pub(crate) fn rewrite(
    tokens: Vec<TokenWithSpan>,
    location: &Location,
    oracle: bool,
) -> Result<Vec<TokenWithSpan>> {
    let mut tokens = tokens;
    // Innermost-last: rewrite one call at a time until none is left.
    for _ in 0..64 {
        let sig = significant(&tokens);
        let mut found = None;
        for (k, &i) in sig.iter().enumerate() {
            let is_table =
                matches!(&tokens[i].token, Token::Word(w) if w.keyword == Keyword::TABLE);
            if is_table
                && sig
                    .get(k + 1)
                    .is_some_and(|j| tokens[*j].token == Token::LParen)
                && sig
                    .get(k + 2)
                    .and_then(|j| word(&tokens[*j].token))
                    .is_some_and(|w| FUNCTIONS.contains(&w.as_str()))
                && sig
                    .get(k + 3)
                    .is_some_and(|j| tokens[*j].token == Token::LParen)
            {
                found = Some(k);
                break;
            }
        }
        let Some(k) = found else {
            return Ok(tokens);
        };
        tokens = rewrite_one(tokens, &sig, k, location, oracle)?;
    }
    Ok(tokens)
}

/// One argument of the call, as text, with its name if written `NAME => value`.
struct Arg {
    name: Option<String>,
    tokens: Vec<Token>,
}

impl Arg {
    fn text(&self) -> String {
        self.tokens
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn rewrite_one(
    tokens: Vec<TokenWithSpan>,
    sig: &[usize],
    k: usize,
    location: &Location,
    oracle: bool,
) -> Result<Vec<TokenWithSpan>> {
    let table_tok = sig[k];
    let span = tokens[table_tok].span;
    let at = Location {
        file: location.file.clone(),
        line: span.start.line,
        column: span.start.column,
    };
    let func = word(&tokens[sig[k + 2]].token).unwrap_or_default();
    // Arguments: from after the function's '(' to its matching ')'.
    let mut depth = 0usize;
    let mut args: Vec<Arg> = vec![Arg {
        name: None,
        tokens: Vec::new(),
    }];
    let mut close = None;
    for (m, &i) in sig.iter().enumerate().skip(k + 4) {
        let t = &tokens[i].token;
        match t {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => {
                close = Some(m);
                break;
            }
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                args.push(Arg {
                    name: None,
                    tokens: Vec::new(),
                });
                continue;
            }
            _ => {}
        }
        let arg = args.last_mut().expect("one argument at least");
        if *t == Token::RArrow && depth == 0 && arg.tokens.len() == 1 {
            arg.name = word(&arg.tokens[0]);
            arg.tokens.clear();
            continue;
        }
        arg.tokens.push(t.clone());
    }
    let Some(close) = close else {
        return Err(Error::sql(&at, format!("{func}(...) is not closed")));
    };
    // The TABLE( ... ) around the call must close right after it.
    let outer = sig.get(close + 1).copied();
    if outer.is_none_or(|o| tokens[o].token != Token::RParen) {
        return Err(Error::sql(
            &at,
            format!("TABLE({func}(...)) expects ')' after the {func} call"),
        ));
    }
    let outer = outer.unwrap_or(table_tok);
    let call = WindowCall::parse(&func, args, &at)?;
    let sql = call.sql(oracle);
    let mut new_tokens = Tokenizer::new(&DIALECT, &sql)
        .tokenize_with_location()
        .map_err(|e| Error::sql(&at, format!("internal window rewrite failed: {e}")))?;
    for t in &mut new_tokens {
        t.span = span;
    }
    let mut out = Vec::with_capacity(tokens.len() + new_tokens.len());
    out.extend(tokens[..table_tok].iter().cloned());
    out.extend(new_tokens);
    out.extend(tokens[outer + 1..].iter().cloned());
    Ok(out)
}

/// A parsed window table function call.
struct WindowCall {
    func: String,
    table: String,
    partition: Option<String>,
    time: String,
    /// Interval arguments in order (size; slide, size; step, size; gap) and offset.
    intervals: Vec<String>,
}

impl WindowCall {
    fn parse(func: &str, args: Vec<Arg>, at: &Location) -> Result<WindowCall> {
        let usage = match func {
            "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(time_col), size [, offset])",
            "HOP" => "HOP(TABLE t, DESCRIPTOR(time_col), slide, size [, offset])",
            "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(time_col), step, size [, offset])",
            _ => "SESSION(TABLE t [PARTITION BY keys], DESCRIPTOR(time_col), gap)",
        };
        let bad = |why: &str| Error::sql(at, format!("{func}: {why}; usage: {usage}"));
        let mut table = None;
        let mut partition = None;
        let mut time = None;
        let mut intervals = Vec::new();
        for arg in args {
            let first = arg.tokens.first().and_then(word);
            match (arg.name.as_deref(), first.as_deref()) {
                (Some("DATA") | None, Some("TABLE")) => {
                    let text: Vec<String> = arg.tokens[1..].iter().map(|t| t.to_string()).collect();
                    let upper: Vec<String> = text.iter().map(|t| t.to_ascii_uppercase()).collect();
                    match upper.iter().position(|t| t == "PARTITION") {
                        Some(p) if upper.get(p + 1).map(String::as_str) == Some("BY") => {
                            table = Some(text[..p].join(""));
                            partition = Some(text[p + 2..].join(" "));
                        }
                        _ => table = Some(text.join("")),
                    }
                }
                (Some("TIMECOL") | None, Some("DESCRIPTOR")) => {
                    let inner: Vec<String> = arg
                        .tokens
                        .iter()
                        .skip(1)
                        .filter(|t| !matches!(t, Token::LParen | Token::RParen))
                        .map(|t| t.to_string())
                        .collect();
                    time = Some(inner.join(""));
                }
                _ if arg.tokens.is_empty() => return Err(bad("an argument is empty")),
                _ => intervals.push((arg.name.clone(), arg.text())),
            }
        }
        // Named interval arguments (`SIZE =>`, `SLIDE =>`, …) go to their places.
        let intervals: Vec<String> = if intervals.iter().any(|(n, _)| n.is_some()) {
            let order: &[&str] = match func {
                "TUMBLE" => &["SIZE", "OFFSET"],
                "HOP" => &["SLIDE", "SIZE", "OFFSET"],
                "CUMULATE" => &["STEP", "SIZE", "OFFSET"],
                _ => &["GAP"],
            };
            let mut out = Vec::new();
            for name in order {
                match intervals.iter().find(|(n, _)| n.as_deref() == Some(*name)) {
                    Some((_, t)) => out.push(t.clone()),
                    None if *name == "OFFSET" => {}
                    None => return Err(bad(&format!("the {name} argument is missing"))),
                }
            }
            if let Some((Some(n), _)) = intervals
                .iter()
                .find(|(n, _)| n.as_deref().is_some_and(|n| !order.contains(&n)))
            {
                return Err(bad(&format!("unknown argument {n}")));
            }
            out
        } else {
            intervals.into_iter().map(|(_, t)| t).collect()
        };
        let table = table.ok_or_else(|| bad("the first argument must be TABLE name"))?;
        let time = time.ok_or_else(|| bad("the time column must be given as DESCRIPTOR(col)"))?;
        let (min, max) = match func {
            "TUMBLE" | "SESSION" => (1, 2),
            _ => (2, 3),
        };
        if intervals.len() < min || intervals.len() > max {
            return Err(bad("wrong number of interval arguments"));
        }
        if func == "SESSION" && intervals.len() != 1 {
            return Err(bad("SESSION takes one gap interval"));
        }
        if partition.is_some() && func != "SESSION" {
            return Err(bad("PARTITION BY is only allowed for SESSION windows"));
        }
        Ok(WindowCall {
            func: func.to_string(),
            table,
            partition,
            time,
            intervals,
        })
    }

    fn sql(&self, oracle: bool) -> String {
        let t = &self.table;
        let c = &self.time;
        let i = &self.intervals;
        let offset = |n: usize| i.get(n).map(|o| format!(", {o}")).unwrap_or_default();
        match self.func.as_str() {
            "SESSION" if oracle => {
                // Batch: sessions from window functions over each partition in time
                // order (a row more than `gap` after the previous one starts a new one).
                let gap = &i[0];
                let part = self
                    .partition
                    .as_ref()
                    .map(|p| format!("PARTITION BY {p}"))
                    .unwrap_or_default();
                let sid_part = match &self.partition {
                    Some(p) => format!("PARTITION BY {p}, __sluice_sid"),
                    None => "PARTITION BY __sluice_sid".to_string(),
                };
                format!(
                    "(SELECT *, __sluice_window_time(window_end) AS window_time FROM \
                     (SELECT *, MIN({c}) OVER ({sid_part}) AS window_start, \
                     MAX({c}) OVER ({sid_part}) + {gap} AS window_end FROM \
                     (SELECT *, SUM(__sluice_new) OVER ({part} ORDER BY {c}, __sluice_new DESC \
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __sluice_sid FROM \
                     (SELECT *, CASE WHEN LAG({c}) OVER ({part} ORDER BY {c}) IS NULL \
                     OR {c} >= LAG({c}) OVER ({part} ORDER BY {c}) + {gap} THEN 1 ELSE 0 END \
                     AS __sluice_new FROM {t}))))"
                )
            }
            "SESSION" => {
                let gap = &i[0];
                format!(
                    "(SELECT *, __sluice_session_start({c}, {gap}) AS window_start, \
                     __sluice_session_end({c}, {gap}) AS window_end, \
                     __sluice_window_time(__sluice_session_end({c}, {gap})) AS window_time \
                     FROM {t})"
                )
            }
            "TUMBLE" => {
                let size = &i[0];
                let start = format!("__sluice_window_start({c}, {size}{})", offset(1));
                format!(
                    "(SELECT *, {start} AS window_start, __sluice_add_ms({start}, {size}) AS window_end, \
                     __sluice_window_time(__sluice_add_ms({start}, {size})) AS window_time FROM {t})"
                )
            }
            "HOP" => {
                let (slide, size) = (&i[0], &i[1]);
                format!(
                    "(SELECT *, __sluice_add_ms(window_start, {size}) AS window_end, \
                     __sluice_window_time(__sluice_add_ms(window_start, {size})) AS window_time FROM \
                     (SELECT *, unnest(__sluice_hop_starts({c}, {slide}, {size}{})) AS window_start FROM {t}))",
                    offset(2)
                )
            }
            _ => {
                let (step, size) = (&i[0], &i[1]);
                format!(
                    "(SELECT *, __sluice_window_time(window_end) AS window_time FROM \
                     (SELECT *, __sluice_window_start({c}, {size}{off}) AS window_start, \
                     unnest(__sluice_cumulate_ends({c}, {step}, {size}{off})) AS window_end FROM {t}))",
                    off = offset(2)
                )
            }
        }
    }
}
