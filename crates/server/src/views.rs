//! `GET /api/views` and `GET /api/views/<table>?<key column>=…`: the rows that
//! `view` sinks keep, as JSON.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::json;
use sluice_connectors::view::{view, views};

use crate::api::message;

/// Rows returned by a scan unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 100_000;

/// The rows of `batch` as a JSON array (secrets redacted).
pub(crate) fn rows_json(batch: &RecordBatch) -> Result<String, String> {
    let mut w = ArrayWriter::new(Vec::new());
    w.write(batch)
        .and_then(|()| w.finish())
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&w.into_inner()).into_owned();
    Ok(if text.trim().is_empty() {
        "[]".to_string()
    } else {
        sluice_types::redact(&text).into_owned()
    })
}

pub(crate) async fn list() -> Response {
    let all: Vec<_> = views()
        .iter()
        .filter_map(|n| view(n))
        .map(|v| {
            json!({
                "name": v.name(),
                "key": v.key_columns(),
                "columns": v.schema().fields().iter().map(|f| json!({
                    "name": f.name(),
                    "type": f.data_type().to_string(),
                })).collect::<Vec<_>>(),
                "rows": v.len(),
            })
        })
        .collect();
    Json(json!({ "views": all })).into_response()
}

/// One key's row (`?<each key column>=<value>`), or every row (`?limit=N`).
pub(crate) async fn get(
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = view(&name) else {
        return message(
            StatusCode::NOT_FOUND,
            &format!(
                "no view '{name}'; the views: {}",
                if views().is_empty() {
                    "none".to_string()
                } else {
                    views().join(", ")
                }
            ),
        );
    };
    let key_columns = v.key_columns();
    let given: Vec<&str> = key_columns
        .iter()
        .filter_map(|k| q.get(k).map(String::as_str))
        .collect();
    let unknown: Vec<&String> = q
        .keys()
        .filter(|k| *k != "limit" && *k != "api_key" && !key_columns.contains(k))
        .collect();
    if !unknown.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            &format!(
                "unknown parameter {:?}: query view '{name}' by its key ({}) or with ?limit=N",
                unknown[0],
                key_columns.join(", ")
            ),
        );
    }
    let batch = if given.is_empty() {
        let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) => n.min(MAX_LIMIT),
            Some(Err(_)) => {
                return message(StatusCode::BAD_REQUEST, "limit must be a whole number");
            }
        };
        v.scan(limit)
    } else {
        v.lookup(&given)
    };
    match batch.and_then(|b| rows_json(&b)) {
        Ok(rows) => (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"view\": {}, \"rows\": {rows}}}", json!(name)),
        )
            .into_response(),
        Err(e) => message(StatusCode::BAD_REQUEST, &e),
    }
}
