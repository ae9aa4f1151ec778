//! A thin cursor over a statement's tokens, on top of sqlparser's `Parser` (which parses
//! expressions and identifiers for us), turning parser errors into located SQL errors.

use datafusion::sql::sqlparser::ast::{Expr, Ident};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use sluice_types::Location;

use crate::{Error, Result};

/// The dialect Sluice parses Flink SQL with: backquoted identifiers, `"` identifiers,
/// `'` strings.
pub(crate) static DIALECT: GenericDialect = GenericDialect {};

/// Wraps a sqlparser `Parser` over one statement's tokens.
pub(crate) struct Cursor<'a> {
    pub(crate) p: Parser<'a>,
    file: String,
    /// A `>` left over from splitting a `>>` token (nested `ARRAY<ROW<…>>`).
    pub(crate) pending_gt: bool,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(file: &str, tokens: Vec<TokenWithSpan>) -> Self {
        Cursor {
            p: Parser::new(&DIALECT).with_tokens_with_locations(tokens),
            file: file.to_string(),
            pending_gt: false,
        }
    }

    /// The location of the next token.
    pub(crate) fn here(&self) -> Location {
        let t = self.p.peek_token();
        Location {
            file: self.file.clone(),
            line: t.span.start.line,
            column: t.span.start.column,
        }
    }

    /// A located error at the next token.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::sql(&self.here(), message)
    }

    /// Converts a sqlparser error (which embeds "at Line: l, Column: c") into ours.
    pub(crate) fn parser_error(&self, e: ParserError) -> Error {
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string();
        let (location, msg) = split_location(&self.file, &msg).unwrap_or((self.here(), msg));
        Error::sql(&location, msg)
    }

    pub(crate) fn peek(&self) -> Token {
        self.p.peek_token().token
    }

    pub(crate) fn next(&mut self) -> Token {
        self.p.next_token().token
    }

    /// Consumes the keyword (case-insensitive word) if it is next.
    pub(crate) fn word(&mut self, w: &str) -> bool {
        match self.p.peek_token().token {
            Token::Word(ref x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w) => {
                self.p.next_token();
                true
            }
            _ => false,
        }
    }

    /// Consumes the words in sequence, or none of them.
    pub(crate) fn words(&mut self, ws: &[&str]) -> bool {
        let n = ws.len();
        for (i, w) in ws.iter().enumerate() {
            match self.p.peek_nth_token(i).token {
                Token::Word(ref x)
                    if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w) => {}
                _ => return false,
            }
        }
        for _ in 0..n {
            self.p.next_token();
        }
        true
    }

    pub(crate) fn expect_word(&mut self, w: &str, hint: &str) -> Result<()> {
        if self.word(w) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {w}, found {}. {hint}",
                self.p.peek_token().token
            )))
        }
    }

    pub(crate) fn consume(&mut self, t: &Token) -> bool {
        self.p.consume_token(t)
    }

    pub(crate) fn expect(&mut self, t: &Token, hint: &str) -> Result<()> {
        if self.consume(t) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected '{t}', found '{}'. {hint}",
                self.p.peek_token().token
            )))
        }
    }

    /// Expects `>`, splitting `>>` into two.
    pub(crate) fn expect_gt(&mut self) -> Result<()> {
        if self.pending_gt {
            self.pending_gt = false;
            return Ok(());
        }
        match self.peek() {
            Token::Gt => {
                self.next();
                Ok(())
            }
            Token::ShiftRight => {
                self.next();
                self.pending_gt = true;
                Ok(())
            }
            t => Err(self.error(format!("expected '>' to close the type, found '{t}'"))),
        }
    }

    pub(crate) fn identifier(&mut self, what: &str) -> Result<Ident> {
        self.p.parse_identifier().map_err(|_| {
            self.error(format!(
                "expected {what}, found '{}'",
                self.p.peek_token().token
            ))
        })
    }

    /// A possibly qualified name (`cat.db.t`); Sluice has one namespace, so the last part.
    pub(crate) fn object_name(&mut self, what: &str) -> Result<String> {
        let name = self
            .p
            .parse_object_name(false)
            .map_err(|e| self.parser_error(e))?;
        name.0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.clone())
            .ok_or_else(|| self.error(format!("expected {what}")))
    }

    pub(crate) fn expr(&mut self) -> Result<Expr> {
        self.p.parse_expr().map_err(|e| self.parser_error(e))
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String> {
        match self.next() {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
            t => Err(self.error(format!("expected {what} as a quoted string, found '{t}'"))),
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        matches!(self.p.peek_token().token, Token::EOF)
    }

    pub(crate) fn expect_end(&self, what: &str) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error(format!(
                "unexpected '{}' after {what}",
                self.p.peek_token().token
            )))
        }
    }
}

/// Pulls "at Line: l, Column: c" out of a sqlparser message.
pub(crate) fn split_location(file: &str, msg: &str) -> Option<(Location, String)> {
    let i = msg.find(" at Line: ")?;
    let rest = &msg[i + " at Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((
        Location {
            file: file.to_string(),
            line: line.trim().parse().ok()?,
            column: col.parse().ok()?,
        },
        msg[..i].to_string(),
    ))
}
