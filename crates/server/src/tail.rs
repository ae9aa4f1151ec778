//! `GET /api/pipelines/<name>/tail?operator=<metrics name>`: a live sample of what an
//! operator emits (a source's rows, a sink's input), as Server-Sent Events, for the
//! UI. Each event carries at most [`MAX_ROWS`] rows of one batch and how many it left
//! out; a reader that falls behind gets a `lagged` event instead of the batches it
//! missed. Nothing is copied while no one listens.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::api::{error_response, message};
use crate::app::AppState;

/// Rows shown per batch.
pub(crate) const MAX_ROWS: usize = 50;

/// One batch as an event: `{"rows": [...], "more": n}`.
fn rows_event(batch: &RecordBatch) -> Event {
    let shown = batch.slice(0, batch.num_rows().min(MAX_ROWS));
    match crate::views::rows_json(&shown) {
        Ok(rows) => Event::default().event("rows").data(format!(
            "{{\"rows\": {rows}, \"more\": {}}}",
            batch.num_rows() - shown.num_rows()
        )),
        Err(e) => Event::default()
            .event("error")
            .data(serde_json::json!({ "error": e }).to_string()),
    }
}

pub(crate) async fn tail(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let entry = match app.manager.get(&id) {
        Ok(e) => e,
        Err(e) => return error_response(&e),
    };
    let snap = entry.snapshot();
    let ops = snap.metrics.operator_metrics();
    let wanted = q.get("operator").map(String::as_str);
    let op = match wanted {
        Some(name) => ops.iter().find(|o| o.name == name),
        // Default: the last operator registered, a sink.
        None => ops.last(),
    };
    let Some(op) = op else {
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        return message(
            StatusCode::NOT_FOUND,
            &format!(
                "pipeline '{id}' has no operator '{}' running; its operators: {}",
                wanted.unwrap_or(""),
                if names.is_empty() {
                    "none (it is not running)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        );
    };
    let rx = op.tap.subscribe();
    let events = futures::stream::unfold(rx, |mut rx| async move {
        match rx.rx.recv().await {
            Ok(b) => Some((Ok::<Event, Infallible>(rows_event(&b)), rx)),
            Err(RecvError::Lagged(n)) => Some((
                Ok(Event::default()
                    .event("lagged")
                    .data(format!("{{\"missed_batches\": {n}}}"))),
                rx,
            )),
            Err(RecvError::Closed) => None,
        }
    });
    Sse::new(events.boxed())
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
