//! `CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name (columns, watermark, key) [COMMENT …]
//! [PARTITIONED BY (…)] WITH ('k' = 'v', …)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::tokenizer::Token;
use sluice_types::Location;

use super::parser::Cursor;
use super::types::parse_type;
use crate::script::Statement;
use crate::{Error, Result};

/// How a column gets its value.
#[derive(Debug, Clone)]
pub enum ColumnKind {
    /// Read from the source / written to the sink.
    Physical,
    /// `name AS expr`: computed from other columns when reading.
    Computed(Box<Expr>),
    /// `name TYPE METADATA [FROM 'key'] [VIRTUAL]`: connector metadata.
    Metadata {
        /// The metadata key (defaults to the column name).
        key: Option<String>,
        /// Virtual columns are read-only (not written by sinks).
        is_virtual: bool,
    },
}

/// One column of a table.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Name, case preserved.
    pub name: String,
    /// Arrow type (for computed columns: decided at planning, `Null` here).
    pub data_type: DataType,
    /// Nullability (`NOT NULL` clears it).
    pub nullable: bool,
    /// Physical, computed or metadata.
    pub kind: ColumnKind,
}

/// `WATERMARK FOR column AS expression`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// The watermark expression (e.g. `ts - INTERVAL '4' SECOND`).
    pub expr: Expr,
}

/// A table declared with `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Name, case preserved.
    pub name: String,
    /// `CREATE TEMPORARY TABLE`.
    pub temporary: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Columns in declaration order.
    pub columns: Vec<ColumnDef>,
    /// The watermark declaration, if any.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY (…) NOT ENFORCED` columns.
    pub primary_key: Vec<String>,
    /// `WITH` options, keys and values as written.
    pub options: BTreeMap<String, String>,
    /// Where the statement starts.
    pub location: Location,
}

impl TableDef {
    /// The columns a connector reads or writes (computed and metadata columns excluded).
    pub fn physical_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .filter(|c| matches!(c.kind, ColumnKind::Physical))
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The columns a source produces: the physical ones, then the metadata ones (in
    /// declaration order each).
    pub fn source_schema(&self) -> SchemaRef {
        self.with_metadata(|_| true)
    }

    /// The columns a sink takes: the physical ones, then the metadata ones that are not
    /// `VIRTUAL` (in declaration order each).
    pub fn sink_schema(&self) -> SchemaRef {
        self.with_metadata(|is_virtual| !is_virtual)
    }

    /// The metadata columns `source_schema` (`for_sink` false) or `sink_schema` holds,
    /// in order: (column name, metadata key).
    pub fn metadata_columns(&self, for_sink: bool) -> Vec<(String, String)> {
        self.columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Metadata { key, is_virtual } if !(for_sink && *is_virtual) => Some((
                    c.name.clone(),
                    key.clone().unwrap_or_else(|| c.name.clone()),
                )),
                _ => None,
            })
            .collect()
    }

    fn with_metadata(&self, keep: impl Fn(bool) -> bool) -> SchemaRef {
        let physical = self.physical_schema();
        let meta = self.columns.iter().filter_map(|c| match c.kind {
            ColumnKind::Metadata { is_virtual, .. } if keep(is_virtual) => {
                Some(Field::new(&c.name, c.data_type.clone(), true))
            }
            _ => None,
        });
        let fields: Vec<Field> = physical
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .chain(meta)
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// True when some column is computed.
    pub fn has_computed_columns(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c.kind, ColumnKind::Computed(_)))
    }

    /// The `connector` option.
    pub fn connector(&self) -> Option<&str> {
        self.options.get("connector").map(String::as_str)
    }
}

/// Flink's legacy descriptor options (`'connector.type' = 'filesystem'`,
/// `'connector.path'`, `'format.type'`) under their current names.
fn normalize_legacy_options(options: &mut BTreeMap<String, String>) {
    if options.contains_key("connector") {
        return;
    }
    let Some(kind) = options.remove("connector.type") else {
        return;
    };
    options.insert("connector".into(), kind);
    if let Some(path) = options.remove("connector.path") {
        let path = path.strip_prefix("file://").unwrap_or(&path).to_string();
        options.insert("path".into(), path);
    }
    if let Some(format) = options.remove("format.type") {
        options.insert("format".into(), format);
    }
    options.remove("connector.property-version");
    options.remove("format.property-version");
}

/// Parses a `CREATE TABLE` statement.
pub fn parse_create_table(st: &Statement) -> Result<TableDef> {
    let mut c = Cursor::new(&st.location.file, st.tokens.clone());
    c.expect_word("CREATE", "")?;
    let temporary = c.word("TEMPORARY");
    c.expect_word("TABLE", "")?;
    let if_not_exists = c.words(&["IF", "NOT", "EXISTS"]);
    let name = c.object_name("a table name")?;
    let mut def = TableDef {
        name,
        temporary,
        if_not_exists,
        columns: Vec::new(),
        watermark: None,
        primary_key: Vec::new(),
        options: BTreeMap::new(),
        location: st.location.clone(),
    };
    c.expect(
        &Token::LParen,
        "List the columns: CREATE TABLE t (a BIGINT, b STRING) WITH (…).",
    )?;
    loop {
        parse_element(&mut c, &mut def)?;
        if c.consume(&Token::Comma) {
            continue;
        }
        c.expect(
            &Token::RParen,
            "Separate columns with ',' and close the list with ')'.",
        )?;
        break;
    }
    if c.word("COMMENT") {
        c.string("a table comment")?;
    }
    if c.words(&["PARTITIONED", "BY"]) {
        c.p.parse_parenthesized_column_list(
            datafusion::sql::sqlparser::parser::IsOptional::Mandatory,
            false,
        )
        .map_err(|e| c.parser_error(e))?;
    }
    if c.word("WITH") {
        c.expect(&Token::LParen, "Write WITH ('connector' = '…', …).")?;
        loop {
            if c.consume(&Token::RParen) {
                break;
            }
            let key_loc = c.here();
            let key = match c.next() {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
                Token::Word(w) => {
                    // Unquoted dotted keys (connector.type) are accepted as written.
                    let mut k = w.value;
                    while c.consume(&Token::Period) {
                        k.push('.');
                        k.push_str(&c.identifier("an option name")?.value);
                    }
                    k
                }
                t => {
                    return Err(Error::sql(
                        &key_loc,
                        format!("expected an option name in quotes, found '{t}'"),
                    ));
                }
            };
            c.expect(&Token::Eq, "Write 'key' = 'value'.")?;
            let value = match c.next() {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) => w.value,
                t => {
                    return Err(c.error(format!(
                        "expected the value of option '{key}' in quotes, found '{t}'"
                    )));
                }
            };
            if def.options.insert(key.clone(), value).is_some() {
                return Err(Error::sql(
                    &key_loc,
                    format!("option '{key}' is given twice"),
                ));
            }
            if !c.consume(&Token::Comma) {
                c.expect(
                    &Token::RParen,
                    "Separate options with ',' and close with ')'.",
                )?;
                break;
            }
        }
    }
    if c.word("LIKE") {
        return Err(Error::Unsupported {
            location: c.here(),
            message:
                "CREATE TABLE … LIKE is not supported; declare the columns and options in full"
                    .into(),
        });
    }
    c.expect_end("the CREATE TABLE statement")?;
    normalize_legacy_options(&mut def.options);
    validate(&def)?;
    Ok(def)
}

fn parse_element(c: &mut Cursor<'_>, def: &mut TableDef) -> Result<()> {
    if c.word("WATERMARK") {
        c.expect_word("FOR", "Write WATERMARK FOR column AS expression.")?;
        let column = c.identifier("the event-time column")?.value;
        c.expect_word(
            "AS",
            "Write WATERMARK FOR column AS column - INTERVAL '5' SECOND.",
        )?;
        let expr = c.expr()?;
        if def.watermark.is_some() {
            return Err(c.error("a table can have only one WATERMARK"));
        }
        def.watermark = Some(WatermarkDef { column, expr });
        return Ok(());
    }
    if c.word("CONSTRAINT") {
        c.identifier("a constraint name")?;
    }
    if c.words(&["PRIMARY", "KEY"]) {
        let cols =
            c.p.parse_parenthesized_column_list(
                datafusion::sql::sqlparser::parser::IsOptional::Mandatory,
                false,
            )
            .map_err(|e| c.parser_error(e))?;
        expect_not_enforced(c)?;
        def.primary_key = cols.into_iter().map(|i| i.value).collect();
        return Ok(());
    }
    let name = c.identifier("a column name")?.value;
    if c.word("AS") {
        let expr = c.expr()?;
        if c.word("COMMENT") {
            c.string("a comment")?;
        }
        def.columns.push(ColumnDef {
            name,
            data_type: DataType::Null,
            nullable: true,
            kind: ColumnKind::Computed(Box::new(expr)),
        });
        return Ok(());
    }
    let (data_type, nullable) = parse_type(c)?;
    let mut kind = ColumnKind::Physical;
    if c.word("METADATA") {
        let key = if c.word("FROM") {
            Some(c.string("a metadata key")?)
        } else {
            None
        };
        let is_virtual = c.word("VIRTUAL");
        kind = ColumnKind::Metadata { key, is_virtual };
    }
    if c.words(&["PRIMARY", "KEY"]) {
        expect_not_enforced(c)?;
        def.primary_key = vec![name.clone()];
    }
    if c.word("COMMENT") {
        c.string("a comment")?;
    }
    def.columns.push(ColumnDef {
        name,
        data_type,
        nullable,
        kind,
    });
    Ok(())
}

fn expect_not_enforced(c: &mut Cursor<'_>) -> Result<()> {
    if c.words(&["NOT", "ENFORCED"]) {
        Ok(())
    } else {
        Err(c.error(
            "Flink requires PRIMARY KEY (…) NOT ENFORCED: the key is used for upserts, not checked",
        ))
    }
}

fn validate(def: &TableDef) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for col in &def.columns {
        if !seen.insert(col.name.as_str()) {
            return Err(Error::sql(
                &def.location,
                format!(
                    "table '{}': column '{}' is declared twice",
                    def.name, col.name
                ),
            ));
        }
    }
    if let Some(w) = &def.watermark
        && !seen.contains(w.column.as_str())
    {
        return Err(Error::sql(
            &def.location,
            format!(
                "table '{}': WATERMARK FOR '{}' names no column of the table",
                def.name, w.column
            ),
        ));
    }
    for k in &def.primary_key {
        let computed = def
            .columns
            .iter()
            .any(|c| c.name == *k && !matches!(c.kind, ColumnKind::Physical));
        if computed {
            return Err(Error::sql(
                &def.location,
                format!(
                    "table '{}': PRIMARY KEY column '{k}' must be a physical column, not computed or metadata",
                    def.name
                ),
            ));
        }
        if !seen.contains(k.as_str()) {
            return Err(Error::sql(
                &def.location,
                format!(
                    "table '{}': PRIMARY KEY column '{k}' does not exist",
                    def.name
                ),
            ));
        }
    }
    if def.connector().is_none() {
        return Err(Error::sql(
            &def.location,
            format!(
                "table '{}' has no 'connector' option; add WITH ('connector' = 'filesystem', …)",
                def.name
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::split;

    fn parse(sql: &str) -> Result<TableDef> {
        let st = split("t.sql", sql)?;
        parse_create_table(&st[0])
    }

    #[test]
    fn parses_nexmark_ddl() {
        let def = parse(
            "CREATE TABLE datagen (event_type int, bid ROW<auction BIGINT, `dateTime` TIMESTAMP(3)>, \
             dateTime AS CASE WHEN event_type = 0 THEN bid.dateTime ELSE bid.dateTime END, \
             WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) \
             WITH ('connector' = 'nexmark', 'events.num' = '10')",
        )
        .unwrap();
        assert_eq!(def.columns.len(), 3);
        assert_eq!(def.physical_schema().fields().len(), 2);
        assert_eq!(
            def.watermark.as_ref().map(|w| w.column.as_str()),
            Some("dateTime")
        );
        assert_eq!(
            def.options.get("events.num").map(String::as_str),
            Some("10")
        );
    }

    #[test]
    fn primary_key_needs_not_enforced() {
        let err = parse("CREATE TABLE t (a INT, PRIMARY KEY (a)) WITH ('connector' = 'print')")
            .unwrap_err()
            .to_string();
        assert!(err.contains("NOT ENFORCED"), "{err}");
        let def = parse(
            "CREATE TABLE t (a INT, PRIMARY KEY (a) NOT ENFORCED) WITH ('connector' = 'print')",
        )
        .unwrap();
        assert_eq!(def.primary_key, vec!["a".to_string()]);
    }

    #[test]
    fn errors_are_located() {
        let err = parse("CREATE TABLE t (\n  a BIGINTT\n) WITH ('connector' = 'print')")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.sql:2:5"), "{err}");
        let err = parse("CREATE TABLE t (a INT)").unwrap_err().to_string();
        assert!(err.contains("no 'connector' option"), "{err}");
    }
}
