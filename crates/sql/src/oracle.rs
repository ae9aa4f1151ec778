//! The batch oracle: the same SQL file run by DataFusion in batch mode over the same
//! input files. A streaming run over bounded input must reach exactly its answer; the
//! golden tests compare the two.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions};

use crate::catalog::{Catalog, physical_name};
use crate::ddl::TableDef;
use crate::options::resolve_options;
use crate::pipeline::{PipelineOptions, Target, apply_statements};
use crate::{Error, Result};

/// Registers a filesystem table as a DataFusion listing table over its files.
pub(crate) async fn register_file_table(catalog: &mut Catalog, def: TableDef) -> Result<()> {
    if catalog.exists(&def.name) {
        if def.if_not_exists {
            return Ok(());
        }
        return Err(Error::sql(
            &def.location,
            format!("table '{}' already exists", def.name),
        ));
    }
    let options = resolve_options(&def)?;
    let schema = def.physical_schema();
    let reg = if def.has_computed_columns() {
        physical_name(&def.name)
    } else {
        def.name.clone()
    };
    let reg = TableReference::bare(reg);
    let unsupported = || Error::Unsupported {
        location: def.location.clone(),
        message: format!(
            "the batch oracle reads only filesystem json/csv tables, not '{}'",
            def.name
        ),
    };
    if options.get("connector").map(String::as_str) == Some("filesystem") {
        let path = options.get("path").cloned().unwrap_or_default();
        let res = match options.get("format").map(String::as_str) {
            Some("json") => {
                let o = JsonReadOptions::default()
                    .schema(&schema)
                    .file_extension("");
                catalog.ctx.register_json(reg, &path, o).await
            }
            Some("csv") => {
                let header = first_line_is_header(&path, &schema);
                let delim = options
                    .get("csv.field-delimiter")
                    .and_then(|d| d.bytes().next())
                    .unwrap_or(b',');
                let o = CsvReadOptions::new()
                    .schema(&schema)
                    .has_header(header)
                    .delimiter(delim)
                    .file_extension("");
                catalog.ctx.register_csv(reg, &path, o).await
            }
            _ => return Err(unsupported()),
        };
        res.map_err(|e| crate::planner::plan_error(e, &def.location))?;
    } else if options.get("connector").map(String::as_str) != Some("blackhole")
        && options.get("connector").map(String::as_str) != Some("print")
    {
        return Err(unsupported());
    }
    catalog.tables.insert(def.name.clone(), def);
    Ok(())
}

fn first_line_is_header(path: &str, schema: &datafusion::arrow::datatypes::Schema) -> bool {
    let p = std::path::Path::new(path);
    let file = if p.is_dir() {
        std::fs::read_dir(p)
            .ok()
            .and_then(|mut d| d.find_map(|e| e.ok().map(|e| e.path()).filter(|f| f.is_file())))
    } else {
        Some(p.to_path_buf())
    };
    let Some(first) = file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| t.lines().next().map(str::to_string))
    else {
        return false;
    };
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().to_ascii_lowercase())
        .collect();
    let cells: Vec<String> = first
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    names == cells
}

/// Runs every bare `SELECT` of `text` in DataFusion batch mode and returns all their
/// rows, in statement order.
pub async fn batch_oracle(text: &str, opts: &PipelineOptions) -> Result<Vec<RecordBatch>> {
    let mut catalog = Catalog::new();
    catalog.oracle = true;
    let inserts = apply_statements(&mut catalog, text, opts).await?;
    let mut out = Vec::new();
    for ins in inserts {
        if !matches!(ins.target, Target::Stdout) {
            continue;
        }
        let df = catalog
            .ctx
            .execute_logical_plan(ins.plan)
            .await
            .map_err(|e| crate::planner::plan_error(e, &ins.location))?;
        out.extend(
            df.collect()
                .await
                .map_err(|e| crate::planner::plan_error(e, &ins.location))?,
        );
    }
    Ok(out)
}
