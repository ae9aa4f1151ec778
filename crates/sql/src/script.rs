//! A SQL file as a list of statements: variable substitution, tokenizing (with
//! line/column positions), splitting at top-level semicolons, and classifying each
//! statement by its leading keywords.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use sluice_types::Location;

use crate::{Error, Result};

/// What a statement does, decided by its first keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `CREATE [TEMPORARY] TABLE`.
    CreateTable,
    /// `CREATE [TEMPORARY] VIEW`.
    CreateView,
    /// `CREATE [TEMPORARY [SYSTEM]] FUNCTION`.
    CreateFunction,
    /// `SET 'k' = 'v'`.
    Set,
    /// `RESET ['k']`.
    Reset,
    /// `INSERT INTO … SELECT / VALUES`.
    Insert,
    /// A bare query (`SELECT`, `WITH`, `VALUES`): results go to stdout.
    Query,
    /// `BEGIN STATEMENT SET` or `EXECUTE STATEMENT SET BEGIN`.
    BeginStatementSet,
    /// `END` of a statement set.
    End,
    /// `DROP TABLE|VIEW|FUNCTION [IF EXISTS] name`.
    Drop,
    /// `USE`, `SHOW`, `DESCRIBE`, `EXPLAIN`, …: accepted and ignored with a warning.
    Ignored,
}

/// One statement of a file.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Its kind.
    pub kind: StatementKind,
    /// Its tokens (comments and whitespace included, the `;` excluded).
    pub tokens: Vec<TokenWithSpan>,
    /// Where it starts.
    pub location: Location,
    /// Its source text.
    pub text: String,
}

/// Replaces `${NAME}` by `vars[NAME]` everywhere (the Nexmark suite's convention);
/// unknown names are left for option resolution (environment variables).
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    if vars.is_empty() || !text.contains("${") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if vars.contains_key(&after[..end]) => {
                out.push_str(&vars[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

fn word_upper(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Byte offsets of line starts, to cut statement texts out of the file.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn byte_offset(text: &str, starts: &[usize], line: u64, column: u64) -> usize {
    let Some(&ls) = starts.get((line as usize).saturating_sub(1)) else {
        return text.len();
    };
    let line_text = &text[ls..];
    let col = (column as usize).saturating_sub(1);
    ls + line_text
        .char_indices()
        .nth(col)
        .map(|(i, _)| i)
        .unwrap_or(line_text.len())
}

/// Most operators (arithmetic, comparison, `AND`/`OR`, set operations, `CASE`) in
/// one statement: planning recurses once per operator, and a hostile statement of
/// tens of thousands would exhaust the stack.
pub const MAX_OPERATORS: usize = 2_000;
/// Deepest parenthesis nesting in one statement.
pub const MAX_NESTING: usize = 128;

/// Refuses a statement too large or too deeply nested to plan safely.
fn check_size(file: &str, tokens: &[TokenWithSpan]) -> Result<()> {
    let at = |t: &TokenWithSpan| Location {
        file: file.to_string(),
        line: t.span.start.line,
        column: t.span.start.column,
    };
    let mut operators = 0usize;
    let mut depth = 0usize;
    for t in tokens {
        let counts = match &t.token {
            Token::LParen => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Error::sql(
                        &at(t),
                        format!(
                            "parentheses nested more than {MAX_NESTING} levels deep: simplify the statement (or split it with CREATE VIEW)"
                        ),
                    ));
                }
                false
            }
            Token::RParen => {
                depth = depth.saturating_sub(1);
                false
            }
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::DoubleColon
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::Sharp
            | Token::Arrow
            | Token::LongArrow
            | Token::Tilde
            | Token::ExclamationMark => true,
            Token::Word(_) => matches!(
                word_upper(&t.token).as_deref(),
                Some(
                    "AND"
                        | "OR"
                        | "NOT"
                        | "UNION"
                        | "INTERSECT"
                        | "EXCEPT"
                        | "CASE"
                        | "WHEN"
                        | "LIKE"
                        | "ILIKE"
                        | "IS"
                        | "BETWEEN"
                        | "IN"
                        | "CAST"
                        | "SELECT"
                )
            ),
            _ => false,
        };
        if counts {
            operators += 1;
            if operators > MAX_OPERATORS {
                return Err(Error::sql(
                    &at(t),
                    format!(
                        "this statement has more than {MAX_OPERATORS} operators: split it (CREATE VIEW for parts), or use IN (...) for long lists"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Splits `text` (already substituted) into statements.
pub fn split(file: &str, text: &str) -> Result<Vec<Statement>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            Error::sql(
                &Location {
                    file: file.to_string(),
                    line: e.location.line,
                    column: e.location.column,
                },
                format!("{}; check for an unclosed quote or comment", e.message),
            )
        })?;
    let starts = line_starts(text);
    let mut statements = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0i64;
    let mut open_parens: Vec<Location> = Vec::new();
    let at = |t: &TokenWithSpan| Location {
        file: file.to_string(),
        line: t.span.start.line,
        column: t.span.start.column,
    };
    for tok in tokens {
        match tok.token {
            Token::LParen => {
                depth += 1;
                open_parens.push(at(&tok));
            }
            Token::RParen => {
                depth -= 1;
                if open_parens.pop().is_none() {
                    return Err(Error::sql(
                        &at(&tok),
                        "this ')' closes nothing; remove it or add the '(' it belongs to",
                    ));
                }
            }
            Token::SemiColon if depth <= 0 => {
                push_statement(
                    file,
                    text,
                    &starts,
                    std::mem::take(&mut current),
                    &mut statements,
                )?;
                depth = 0;
                continue;
            }
            Token::EOF => continue,
            _ => {}
        }
        current.push(tok);
    }
    if let Some(open) = open_parens.last() {
        return Err(Error::sql(
            open,
            "this '(' is never closed; add the matching ')'",
        ));
    }
    push_statement(file, text, &starts, current, &mut statements)?;
    Ok(statements)
}

fn push_statement(
    file: &str,
    text: &str,
    starts: &[usize],
    mut tokens: Vec<TokenWithSpan>,
    out: &mut Vec<Statement>,
) -> Result<()> {
    // Trim leading and trailing whitespace/comments.
    let first = tokens.iter().position(|t| !is_trivia(&t.token));
    let Some(first) = first else { return Ok(()) };
    check_size(file, &tokens[first..])?;
    tokens.drain(..first);
    while tokens.last().is_some_and(|t| is_trivia(&t.token)) {
        tokens.pop();
    }
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !is_trivia(&t.token))
        .take(4)
        .map(|t| word_upper(&t.token).unwrap_or_default())
        .collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    // `EXECUTE STATEMENT SET BEGIN <insert>`: a set marker followed by the first INSERT.
    if w(0) == "EXECUTE" && w(1) == "STATEMENT" && w(2) == "SET" && w(3) == "BEGIN" {
        let mut seen = 0;
        let cut = tokens
            .iter()
            .position(|t| {
                if !is_trivia(&t.token) {
                    seen += 1;
                }
                seen == 5
            })
            .unwrap_or(tokens.len());
        let marker: Vec<TokenWithSpan> = tokens.drain(..cut).collect();
        out.push(make(
            file,
            text,
            starts,
            StatementKind::BeginStatementSet,
            marker,
        ));
        return push_statement(file, text, starts, tokens, out);
    }
    let kind = match (w(0), w(1), w(2)) {
        ("CREATE", "TABLE", _) | ("CREATE", "TEMPORARY", "TABLE") => StatementKind::CreateTable,
        ("CREATE", "VIEW", _) | ("CREATE", "TEMPORARY", "VIEW") => StatementKind::CreateView,
        ("CREATE", "FUNCTION", _)
        | ("CREATE", "TEMPORARY", "FUNCTION")
        | ("CREATE", "TEMPORARY", "SYSTEM") => StatementKind::CreateFunction,
        ("SET", _, _) => StatementKind::Set,
        ("RESET", _, _) => StatementKind::Reset,
        ("INSERT", _, _) => StatementKind::Insert,
        ("SELECT", _, _) | ("WITH", _, _) | ("VALUES", _, _) => StatementKind::Query,
        ("BEGIN", "STATEMENT", "SET") => StatementKind::BeginStatementSet,
        ("END", "", _) => StatementKind::End,
        ("DROP", _, _) => StatementKind::Drop,
        ("USE", _, _)
        | ("SHOW", _, _)
        | ("DESCRIBE", _, _)
        | ("DESC", _, _)
        | ("EXPLAIN", _, _)
        | ("ADD", "JAR", _)
        | ("LOAD", "MODULE", _) => StatementKind::Ignored,
        _ if tokens.first().is_some_and(|t| t.token == Token::LParen) => StatementKind::Query,
        _ => {
            let st = make(file, text, starts, StatementKind::Ignored, tokens);
            let first_word = st.text.split_whitespace().next().unwrap_or("").to_string();
            return Err(Error::sql(
                &st.location,
                format!(
                    "unexpected statement starting with '{first_word}'; a pipeline file holds \
                     CREATE TABLE/VIEW/FUNCTION, SET, INSERT INTO and SELECT statements separated by ';'"
                ),
            ));
        }
    };
    out.push(make(file, text, starts, kind, tokens));
    Ok(())
}

fn make(
    file: &str,
    text: &str,
    starts: &[usize],
    kind: StatementKind,
    tokens: Vec<TokenWithSpan>,
) -> Statement {
    let (start, end) = match (tokens.first(), tokens.last()) {
        (Some(f), Some(l)) => (
            byte_offset(text, starts, f.span.start.line, f.span.start.column),
            byte_offset(text, starts, l.span.end.line, l.span.end.column),
        ),
        _ => (0, 0),
    };
    let location = tokens
        .first()
        .map(|t| Location {
            file: file.to_string(),
            line: t.span.start.line,
            column: t.span.start.column,
        })
        .unwrap_or_default();
    Statement {
        kind,
        tokens,
        location,
        text: text.get(start..end.max(start)).unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_or_deep_statements_are_refused_before_planning() {
        let sum = format!("INSERT INTO o SELECT a{} FROM t", " + 1".repeat(12_000));
        let e = split("f.sql", &sum).expect_err("too many operators");
        assert!(e.to_string().contains("more than 2000 operators"), "{e}");
        let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
        let e = split("f.sql", &deep).expect_err("too deep");
        assert!(e.to_string().contains("nested more than 128"), "{e}");
        let unions = vec!["SELECT a FROM t"; 3_000].join(" UNION ALL ");
        assert!(split("f.sql", &unions).is_err());
        let fine = format!("SELECT a{} FROM t", " + 1".repeat(500));
        assert!(split("f.sql", &fine).is_ok());
        let list = format!(
            "SELECT a FROM t WHERE a IN ({})",
            vec!["1"; 9_000].join(",")
        );
        assert!(split("f.sql", &list).is_ok(), "a long IN list is flat");
    }

    #[test]
    fn splits_and_classifies_with_positions() {
        let sql = "-- c\nSET 'a' = 'b';\nCREATE TABLE t (a INT) WITH ('x' = ';');\n\
                   EXECUTE STATEMENT SET BEGIN\nINSERT INTO t SELECT 1;\nINSERT INTO t SELECT 2;\nEND;";
        let st = split("f.sql", sql).unwrap();
        let kinds: Vec<StatementKind> = st.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            vec![
                StatementKind::Set,
                StatementKind::CreateTable,
                StatementKind::BeginStatementSet,
                StatementKind::Insert,
                StatementKind::Insert,
                StatementKind::End
            ]
        );
        assert_eq!(st[1].location.line, 3);
        assert_eq!(st[3].text, "INSERT INTO t SELECT 1");
    }

    #[test]
    fn substitutes_known_variables_only() {
        let mut v = BTreeMap::new();
        v.insert("TPS".to_string(), "100".to_string());
        assert_eq!(substitute("'${TPS}' ${OTHER}", &v), "'100' ${OTHER}");
    }

    #[test]
    fn unbalanced_parentheses_are_located() {
        let err = split(
            "f.sql",
            "SELECT 1;\nCREATE TABLE t (a INT WITH ('x' = 'y');\nSELECT 2;",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("f.sql:2:16: this '(' is never closed"),
            "{err}"
        );
        let err = split("f.sql", "SELECT 1);").unwrap_err().to_string();
        assert!(err.starts_with("f.sql:1:9"), "{err}");
    }

    #[test]
    fn unclosed_quote_is_located() {
        let err = split("f.sql", "SELECT 1;\nSELECT 'abc")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.sql:2:"), "{err}");
    }
}
