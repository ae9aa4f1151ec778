//! Options of the `view` sink.

use crate::{ConnectorTable, Error, Options, Result};

/// Options of the view sink.
#[derive(Debug, Clone)]
pub struct ViewConfig {
    /// `view.max-rows`: keys kept at most; one more fails the pipeline with a message
    /// naming the option (default 1,000,000).
    pub max_rows: usize,
    /// The primary key's column indexes in the table's schema.
    pub key: Vec<usize>,
    pub(crate) table: ConnectorTable,
}

impl ViewConfig {
    /// Reads the options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "view", &table.options);
        let max_rows = o
            .take_parsed::<usize>("view.max-rows", "a positive number")?
            .unwrap_or(1_000_000)
            .max(1);
        o.finish()?;
        if table.primary_key.is_empty() {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message:
                    "a view keeps the latest row per key: declare PRIMARY KEY (…) NOT ENFORCED"
                        .into(),
            });
        }
        let key = table.key_indices()?;
        Ok(ViewConfig {
            max_rows,
            key,
            table: table.clone(),
        })
    }
}
