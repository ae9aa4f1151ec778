//! Temporal joins, `JOIN t FOR SYSTEM_TIME AS OF o.ts [AS] r ON …`, rewritten at the
//! token level (DataFusion's parser has no version clause for our dialect).
//!
//! When `t` is a versioned table (a table with a watermark, whose event-time column
//! dates each version, and a primary key), the clause becomes a marker condition
//! `__sluice_as_of(o.ts, r.rowtime)` in the `ON` clause: the streaming planner turns a
//! join with that marker into a temporal join, which joins each probe row with the
//! version of its key valid at the row's time. For the batch oracle the same join is
//! spelled out: each version carries the time the next one starts (`LEAD`), and a row
//! matches the version with `version_time <= o.ts < next_version_time`.
//!
//! Any other table (no watermark: a dimension table, or a processing-time `AS OF`) has
//! the clause dropped and joins as a regular join (see docs/sql.md).

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use sluice_types::Location;

use crate::catalog::quote;
use crate::ddl::parser::DIALECT;
use crate::{Error, Result};

/// What a versioned table needs: its event-time column and primary key.
pub(crate) struct Versioned {
    /// The watermark's event-time column: when a version starts.
    pub(crate) rowtime: String,
    /// `PRIMARY KEY (…)` columns (empty when none is declared).
    pub(crate) primary_key: Vec<String>,
}

/// What a table joined `FOR SYSTEM_TIME AS OF` is.
pub(crate) enum AsOfTable {
    /// A versioned table (it has a watermark): an event-time temporal join.
    Versioned(Versioned),
    /// A table its connector can look up by key (`jdbc`, `redis`) and without a
    /// watermark: a lookup join. Holds one of its columns (for the marker).
    Lookup(String),
    /// Anything else: the clause is dropped and the join is a regular join.
    Plain,
}

/// The marker function the streaming planner looks for.
pub(crate) const AS_OF: &str = "__sluice_as_of";

/// The marker of a lookup join, `__sluice_lookup(probe_time, table.column)`.
pub(crate) const LOOKUP: &str = "__sluice_lookup";

/// Words that end a join condition.
const CONDITION_END: [&str; 17] = [
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "WHERE",
    "GROUP",
    "ORDER",
    "LIMIT",
    "UNION",
    "HAVING",
    "WINDOW",
    "QUALIFY",
    "EXCEPT",
    "INTERSECT",
    "NATURAL",
];

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Rewrites every `FOR SYSTEM_TIME AS OF` in `tokens`; `versioned` looks a table up.
pub(crate) fn rewrite(
    tokens: Vec<TokenWithSpan>,
    location: &Location,
    oracle: bool,
    versioned: &dyn Fn(&str) -> AsOfTable,
) -> Result<Vec<TokenWithSpan>> {
    let mut tokens = tokens;
    for _ in 0..64 {
        let sig: Vec<usize> = (0..tokens.len())
            .filter(|i| !matches!(tokens[*i].token, Token::Whitespace(_)))
            .collect();
        let words: Vec<Option<String>> = sig.iter().map(|i| word(&tokens[*i].token)).collect();
        let is = |k: usize, w: &str| words.get(k).and_then(|x| x.as_deref()) == Some(w);
        let Some(k) = (1..sig.len()).find(|&k| {
            is(k, "FOR") && is(k + 1, "SYSTEM_TIME") && is(k + 2, "AS") && is(k + 3, "OF")
        }) else {
            return Ok(tokens);
        };
        tokens = rewrite_one(&tokens, &sig, &words, k, location, oracle, versioned)?;
    }
    Ok(tokens)
}

#[allow(clippy::too_many_arguments)]
fn rewrite_one(
    tokens: &[TokenWithSpan],
    sig: &[usize],
    words: &[Option<String>],
    k: usize,
    location: &Location,
    oracle: bool,
    versioned: &dyn Fn(&str) -> AsOfTable,
) -> Result<Vec<TokenWithSpan>> {
    let span = tokens[sig[k]].span;
    let at = Location {
        file: location.file.clone(),
        line: span.start.line,
        column: span.start.column,
    };
    // The table name, possibly qualified (`db.rates`): looked up by its last part.
    let mut first = k - 1;
    while first >= 2
        && tokens[sig[first - 1]].token == Token::Period
        && matches!(tokens[sig[first - 2]].token, Token::Word(_))
    {
        first -= 2;
    }
    let table = match &tokens[sig[k - 1]].token {
        Token::Word(w) => w.value.clone(),
        _ => {
            return Err(Error::sql(
                &at,
                "FOR SYSTEM_TIME AS OF must follow a table name (JOIN t FOR SYSTEM_TIME AS OF \
                 o.time AS r ON …)",
            ));
        }
    };
    // The version expression: a (qualified) column, or a function call.
    let start = k + 4;
    let mut end = start;
    let mut depth = 0usize;
    while end < sig.len() {
        match &tokens[sig[end]].token {
            Token::LParen => depth += 1,
            Token::RParen if depth > 0 => depth -= 1,
            Token::Word(_) | Token::Period => {}
            _ if depth > 0 => {}
            _ => break,
        }
        end += 1;
        if depth == 0
            && end < sig.len()
            && !matches!(tokens[sig[end]].token, Token::Period | Token::LParen)
            && !matches!(tokens[sig[end - 1]].token, Token::Period)
        {
            break;
        }
    }
    if end == start {
        return Err(Error::sql(
            &at,
            "FOR SYSTEM_TIME AS OF needs the probe side's time column, e.g. AS OF o.order_time",
        ));
    }
    let version: String = tokens[sig[start]..=sig[end - 1]]
        .iter()
        .map(|t| t.token.to_string())
        .collect();
    // An optional alias.
    let is = |m: usize, w: &str| words.get(m).and_then(|x| x.as_deref()) == Some(w);
    let (alias, next) = if is(end, "AS") {
        (word_value(tokens, sig, end + 1), end + 2)
    } else if matches!(
        tokens
            .get(sig.get(end).copied().unwrap_or(usize::MAX))
            .map(|t| &t.token),
        Some(Token::Word(_))
    ) && !is(end, "ON")
        && !CONDITION_END.iter().any(|w| is(end, w))
    {
        (word_value(tokens, sig, end), end + 1)
    } else {
        (None, end)
    };
    let stop = |m: usize| sig.get(m).copied().unwrap_or(tokens.len());
    let drop_clause = || {
        let mut out = tokens[..sig[k]].to_vec();
        out.extend(tokens[stop(end)..].iter().cloned());
        out
    };
    let (v, lookup_column) = match versioned(&table) {
        AsOfTable::Plain => return Ok(drop_clause()),
        // The batch oracle reads the lookup table as a table.
        AsOfTable::Lookup(_) if oracle => return Ok(drop_clause()),
        AsOfTable::Lookup(c) => {
            if !is(next, "ON") {
                return Err(Error::sql(
                    &at,
                    format!(
                        "a lookup join needs ON with an equality on a column of '{table}' (the \
                         key it is looked up by), e.g. ON o.customer_id = c.id"
                    ),
                ));
            }
            let none = Versioned {
                rowtime: String::new(),
                primary_key: Vec::new(),
            };
            (none, Some(c))
        }
        AsOfTable::Versioned(v) => {
            if v.primary_key.is_empty() {
                return Err(Error::sql(
                    &at,
                    format!(
                        "'{table}' is joined FOR SYSTEM_TIME AS OF its event time, so it must \
                         be a versioned table: declare PRIMARY KEY (…) NOT ENFORCED on it (the \
                         key of its versions)"
                    ),
                ));
            }
            if !is(next, "ON") {
                return Err(Error::sql(
                    &at,
                    "a temporal join needs ON with an equality on the versioned table's key",
                ));
            }
            (v, None)
        }
    };
    // The join condition runs to the next clause at depth 0.
    let mut m = next + 1;
    let mut depth = 0usize;
    while m < sig.len() {
        match &tokens[sig[m]].token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break,
            Token::RParen => depth -= 1,
            Token::SemiColon | Token::Comma if depth == 0 => break,
            _ if depth == 0 && CONDITION_END.iter().any(|w| is(m, w)) => break,
            _ => {}
        }
        m += 1;
    }
    let qualifier = quote(alias.as_deref().unwrap_or(&table));
    let rowtime = format!("{qualifier}.{}", quote(&v.rowtime));
    let (table_sql, prefix) = if let Some(c) = &lookup_column {
        (
            None,
            format!(" {LOOKUP}({version}, {qualifier}.{}) AND (", quote(c)),
        )
    } else if oracle {
        let pk: Vec<String> = v.primary_key.iter().map(|c| quote(c)).collect();
        let name: String = tokens[sig[first]..=sig[k - 1]]
            .iter()
            .map(|t| t.token.to_string())
            .collect();
        let alias_name = tokens[sig[k - 1]].token.to_string();
        let rt = quote(&v.rowtime);
        let table_sql = format!(
            "(SELECT *, LEAD({rt}) OVER (PARTITION BY {} ORDER BY {rt}) AS __sluice_next FROM \
             {name}){}",
            pk.join(", "),
            if alias.is_none() {
                format!(" AS {alias_name}")
            } else {
                String::new()
            }
        );
        let prefix = format!(
            " {rowtime} <= ({version}) AND ({qualifier}.__sluice_next IS NULL OR ({version}) < \
             {qualifier}.__sluice_next) AND ("
        );
        (Some(table_sql), prefix)
    } else {
        let key = v.primary_key.join(",").replace('\'', "''");
        (
            None,
            format!(" {AS_OF}({version}, {rowtime}, '{key}') AND ("),
        )
    };
    let lex = |sql: &str| -> Result<Vec<TokenWithSpan>> {
        let mut t = Tokenizer::new(&DIALECT, sql)
            .tokenize_with_location()
            .map_err(|e| Error::sql(&at, format!("internal temporal join rewrite failed: {e}")))?;
        for x in &mut t {
            x.span = span;
        }
        Ok(t)
    };
    let mut out = tokens[..sig[first]].to_vec();
    match table_sql {
        Some(sql) => out.extend(lex(&sql)?),
        None => out.extend(tokens[sig[first]..=sig[k - 1]].iter().cloned()),
    }
    out.extend(lex(" ")?);
    // The alias and `ON`.
    out.extend(tokens[stop(end)..=sig[next]].iter().cloned());
    out.extend(lex(&prefix)?);
    out.extend(tokens[sig[next] + 1..stop(m)].iter().cloned());
    out.extend(lex(") ")?);
    out.extend(tokens[stop(m)..].iter().cloned());
    Ok(out)
}

fn word_value(tokens: &[TokenWithSpan], sig: &[usize], m: usize) -> Option<String> {
    match &tokens[*sig.get(m)?].token {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str, oracle: bool) -> Result<String> {
        let tokens = Tokenizer::new(&DIALECT, sql)
            .tokenize_with_location()
            .expect("tokenizes");
        let loc = Location {
            file: "t.sql".into(),
            line: 1,
            column: 1,
        };
        let lookup = |t: &str| match t {
            "rates" => AsOfTable::Versioned(Versioned {
                rowtime: "rt".into(),
                primary_key: vec!["currency".into()],
            }),
            "customers" => AsOfTable::Lookup("id".into()),
            _ => AsOfTable::Plain,
        };
        let out = rewrite(tokens, &loc, oracle, &lookup)?;
        let text: String = out.iter().map(|t| t.token.to_string()).collect();
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    #[test]
    fn versioned_tables_get_the_marker_and_the_condition_keeps_its_precedence() {
        let s = run(
            "SELECT * FROM o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.c = r.currency OR \
             o.x = 1 WHERE o.y > 0",
            false,
        )
        .expect("rewrites");
        assert_eq!(
            s,
            "SELECT * FROM o JOIN rates AS r ON __sluice_as_of(o.ts, `r`.`rt`, 'currency') AND \
             ( o.c = r.currency OR o.x = 1 ) WHERE o.y > 0"
        );
    }

    #[test]
    fn the_oracle_spells_the_version_interval_out() {
        let s = run(
            "SELECT * FROM o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts ON o.c = rates.currency",
            true,
        )
        .expect("rewrites");
        assert!(
            s.contains("LEAD(`rt`) OVER (PARTITION BY `currency` ORDER BY `rt`)"),
            "{s}"
        );
        assert!(s.contains("AS rates ON `rates`.`rt` <= (o.ts)"), "{s}");
        assert!(s.ends_with("( o.c = rates.currency)"), "{s}");
    }

    #[test]
    fn a_comma_or_a_qualified_name_ends_or_names_correctly() {
        let s = run(
            "SELECT * FROM o JOIN db.rates FOR SYSTEM_TIME AS OF o.ts r ON o.c = r.currency, \
             d WHERE 1 = 1",
            true,
        )
        .expect("rewrites");
        assert!(s.contains("FROM db.rates) r ON"), "{s}");
        assert!(s.contains("( o.c = r.currency) , d WHERE"), "{s}");
    }

    #[test]
    fn other_tables_join_as_regular_joins() {
        let s = run(
            "SELECT * FROM o JOIN dim FOR SYSTEM_TIME AS OF o.p AS d ON o.k = d.k",
            false,
        )
        .expect("rewrites");
        assert_eq!(s, "SELECT * FROM o JOIN dim AS d ON o.k = d.k");
    }

    #[test]
    fn a_missing_time_is_a_located_error() {
        let e = run("SELECT * FROM o JOIN rates FOR SYSTEM_TIME AS OF", false);
        assert!(e.is_err());
    }

    #[test]
    fn a_lookup_table_gets_the_lookup_marker() {
        let sql = "SELECT * FROM o JOIN customers FOR SYSTEM_TIME AS OF o.pt AS c \
                   ON o.cid = c.id AND c.active WHERE o.x > 1";
        let out = run(sql, false).unwrap();
        assert!(
            out.contains("JOIN customers AS c ON __sluice_lookup(o.pt, `c`.`id`) AND ( o.cid = c.id AND c.active )"),
            "{out}"
        );
        assert!(out.ends_with("WHERE o.x > 1"), "{out}");
        // The oracle joins the table as it is.
        let out = run(sql, true).unwrap();
        assert!(out.contains("JOIN customers AS c ON o.cid = c.id"), "{out}");
        let e = run(
            "SELECT * FROM o JOIN customers FOR SYSTEM_TIME AS OF o.pt AS c",
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("lookup join needs ON"), "{e}");
    }
}
