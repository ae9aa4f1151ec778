//! Resolving `${NAME}` references in `WITH` option values from the environment.

use std::collections::BTreeMap;

use crate::ddl::TableDef;
use crate::{Error, Result};

/// A table's options with every `${NAME}` replaced by the environment variable `NAME`.
/// An undefined variable is an error naming the option and the fix.
pub(crate) fn resolve_options(def: &TableDef) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in &def.options {
        out.insert(k.clone(), resolve_value(def, k, v)?);
    }
    Ok(out)
}

fn resolve_value(def: &TableDef, key: &str, value: &str) -> Result<String> {
    if !value.contains("${") {
        return Ok(value.to_string());
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Error::sql(
                &def.location,
                format!("table '{}': option '{key}' has an unclosed '${{'", def.name),
            ));
        };
        let name = &after[..end];
        match std::env::var(name) {
            Ok(v) => out.push_str(&v),
            Err(_) => {
                return Err(Error::sql(
                    &def.location,
                    format!(
                        "table '{}': option '{key}' uses ${{{name}}}, which is not defined; \
                         pass -D {name}=… to sluice or export the environment variable {name}",
                        def.name
                    ),
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
