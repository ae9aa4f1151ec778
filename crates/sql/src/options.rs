//! Resolving `${NAME}` (an environment variable) and `${file:/path}` (a file's
//! contents, without the final line break) in `WITH` option values. What they resolve
//! to, and the values of password-like options, are registered as secrets, so errors,
//! logs and `explain` print `***` instead.

use std::collections::BTreeMap;

use crate::ddl::TableDef;
use crate::{Error, Result};

/// A table's options with every `${NAME}` replaced by the environment variable `NAME`
/// and every `${file:/path}` by the file's contents. An undefined variable or an
/// unreadable file is an error naming the option and the fix.
pub(crate) fn resolve_options(def: &TableDef) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in &def.options {
        let resolved = resolve_value(def, k, v)?;
        if sluice_types::is_secret_key(k) {
            sluice_types::register_secret(&resolved);
        }
        out.insert(k.clone(), resolved);
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
        if let Some(path) = name.strip_prefix("file:") {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::sql(
                    &def.location,
                    format!(
                        "table '{}': option '{key}' uses ${{file:{path}}}, which cannot be \
                         read: {e}",
                        def.name
                    ),
                )
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            sluice_types::register_secret(text);
            out.push_str(text);
            rest = &after[end + 1..];
            continue;
        }
        match std::env::var(name) {
            Ok(v) => {
                sluice_types::register_secret(&v);
                out.push_str(&v)
            }
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
