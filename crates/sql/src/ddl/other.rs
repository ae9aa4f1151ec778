//! `SET`, `RESET`, `CREATE FUNCTION` and `DROP`.

use datafusion::sql::sqlparser::tokenizer::Token;
use sluice_types::Location;

use super::parser::Cursor;
use crate::Result;
use crate::script::Statement;

/// `SET 'key' = 'value'` (quotes optional). `SET;` alone lists settings in Flink's
/// client; here it returns `None`.
pub fn parse_set(st: &Statement) -> Result<Option<(String, String)>> {
    let mut c = Cursor::new(&st.location.file, st.tokens.clone());
    c.expect_word("SET", "")?;
    if c.at_end() {
        return Ok(None);
    }
    let key = match c.next() {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
        Token::Word(w) => {
            let mut k = w.value;
            while c.consume(&Token::Period) {
                k.push('.');
                k.push_str(&c.identifier("a setting name")?.value);
            }
            k
        }
        t => return Err(c.error(format!("expected SET 'key' = 'value', found '{t}'"))),
    };
    c.expect(&Token::Eq, "Write SET 'key' = 'value'.")?;
    let value = match c.next() {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
        Token::Number(n, _) => n,
        Token::Word(w) => w.value,
        t => return Err(c.error(format!("expected the value of '{key}', found '{t}'"))),
    };
    c.expect_end("SET 'key' = 'value'")?;
    Ok(Some((key, value)))
}

/// `RESET` or `RESET 'key'`.
pub fn parse_reset(st: &Statement) -> Result<Option<String>> {
    let mut c = Cursor::new(&st.location.file, st.tokens.clone());
    c.expect_word("RESET", "")?;
    if c.at_end() {
        return Ok(None);
    }
    let key = c.string("the setting to reset")?;
    c.expect_end("RESET 'key'")?;
    Ok(Some(key))
}

/// `CREATE [TEMPORARY [SYSTEM]] FUNCTION [IF NOT EXISTS] name AS 'class' [LANGUAGE JAVA]`.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    /// The SQL name.
    pub name: String,
    /// The implementing class, as written.
    pub class: String,
    /// Where.
    pub location: Location,
}

/// Parses `CREATE FUNCTION`.
pub fn parse_create_function(st: &Statement) -> Result<FunctionDef> {
    let mut c = Cursor::new(&st.location.file, st.tokens.clone());
    c.expect_word("CREATE", "")?;
    let _ = c.word("TEMPORARY");
    let _ = c.word("SYSTEM");
    c.expect_word("FUNCTION", "")?;
    let _ = c.words(&["IF", "NOT", "EXISTS"]);
    let name = c.object_name("a name")?;
    c.expect_word(
        "AS",
        "Write CREATE FUNCTION name AS 'com.example.MyFunction'.",
    )?;
    let class = c.string("the implementing class")?;
    if c.word("LANGUAGE") {
        c.identifier("a language")?;
    }
    if c.words(&["USING", "JAR"]) {
        c.string("a jar")?;
    }
    c.expect_end("the CREATE FUNCTION statement")?;
    Ok(FunctionDef {
        name,
        class,
        location: st.location.clone(),
    })
}

/// `DROP [TEMPORARY] TABLE|VIEW|FUNCTION [IF EXISTS] name`.
#[derive(Debug, Clone)]
pub struct DropDef {
    /// `TABLE`, `VIEW` or `FUNCTION`.
    pub what: String,
    /// The name.
    pub name: String,
    /// `IF EXISTS`.
    pub if_exists: bool,
}

/// Parses `DROP`.
pub fn parse_drop(st: &Statement) -> Result<DropDef> {
    let mut c = Cursor::new(&st.location.file, st.tokens.clone());
    c.expect_word("DROP", "")?;
    let _ = c.word("TEMPORARY");
    let _ = c.word("SYSTEM");
    let what = c
        .identifier("TABLE, VIEW or FUNCTION")?
        .value
        .to_ascii_uppercase();
    if !matches!(what.as_str(), "TABLE" | "VIEW" | "FUNCTION") {
        return Err(c.error(format!(
            "cannot DROP {what}; write DROP TABLE, DROP VIEW or DROP FUNCTION"
        )));
    }
    let if_exists = c.words(&["IF", "EXISTS"]);
    let name = c.object_name("a name")?;
    c.expect_end("the DROP statement")?;
    Ok(DropDef {
        what,
        name,
        if_exists,
    })
}
