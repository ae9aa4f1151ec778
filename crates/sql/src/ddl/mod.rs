//! Flink DDL that DataFusion does not parse: `CREATE TABLE … WITH (…)` with computed
//! columns, metadata columns, `WATERMARK FOR`, `PRIMARY KEY … NOT ENFORCED` and Flink's
//! type syntax (`ROW<…>`, `ARRAY<…>`, `MAP<…>`, `TIMESTAMP_LTZ(3)`); plus `SET`,
//! `CREATE FUNCTION` and `DROP`.

mod create_table;
mod other;
pub(crate) mod parser;
mod types;

pub use create_table::{ColumnDef, ColumnKind, TableDef, parse_create_table};
pub use other::{DropDef, FunctionDef, parse_create_function, parse_drop, parse_reset, parse_set};
pub use types::parse_type_str;
