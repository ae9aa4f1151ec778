//! The REST API under `/api`: pipelines (submit, list, inspect, stop, resume, delete),
//! their dead letters, and the OpenAPI document.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::app::AppState;
use crate::manager::{Snapshot, status_name};

/// An error answer: `{"error": ..., "line": ..., "column": ...}`.
pub(crate) fn error_response(e: &Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::User(_) => StatusCode::BAD_REQUEST,
        Error::Plan(p) if p.kind() == sluice_types::ErrorKind::User => StatusCode::BAD_REQUEST,
        Error::Plan(_) | Error::Runtime(_) | Error::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut body = json!({ "error": sluice_types::redact(&e.to_string()) });
    if let Error::Plan(p) = e {
        let l = p.location();
        if l.line > 0 {
            body["line"] = json!(l.line);
            body["column"] = json!(l.column);
        }
    }
    (status, Json(body)).into_response()
}

pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}

fn summary(s: &Snapshot) -> Value {
    let m = &s.metrics;
    json!({
        "name": s.id,
        "status": status_name(s.status),
        "bounded": s.bounded,
        "rows_in": m.source_rows.load(Ordering::Relaxed),
        "rows_out": m.sink_rows.load(Ordering::Relaxed),
        "dead_letters": m.dead_letters.load(Ordering::Relaxed),
        "late_rows": m.late_rows.load(Ordering::Relaxed),
        "created_ms": s.created_ms,
        "started_ms": s.started_ms,
        "ended_ms": s.ended_ms,
        "error": s.error,
        "savepoint": s.savepoint,
        "managed": s.managed,
    })
}

fn detail(s: &Snapshot) -> Value {
    let m = &s.metrics;
    let running = s.status == crate::manager::Status::Running;
    let operators: Vec<Value> = m
        .operator_metrics()
        .iter()
        .map(|o| {
            let w = o.watermark();
            json!({
                "name": o.name,
                "rows_in": o.rows_in.load(Ordering::Relaxed),
                "rows_out": o.rows_out.load(Ordering::Relaxed),
                "batches_out": o.batches_out.load(Ordering::Relaxed),
                "bytes_in": o.bytes_in.load(Ordering::Relaxed),
                "bytes_out": o.bytes_out.load(Ordering::Relaxed),
                "input_fill": o.input_fill().filter(|_| running),
                "state_bytes": o.state_bytes(),
                "batch_p50_seconds": o.batch_time.quantile(0.5),
                "batch_p99_seconds": o.batch_time.quantile(0.99),
                "blocked_seconds": o.blocked_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                "watermark_ms": w,
                "watermark_lag_seconds": o.watermark_lag_seconds().filter(|_| running),
            })
        })
        .collect();
    let completed = m.checkpoints_completed.load(Ordering::Relaxed);
    let last_ms = m.checkpoint_last_completed_ms.load(Ordering::Relaxed);
    let mut v = summary(s);
    v["sql"] = json!(s.sql);
    v["plan"] = json!(s.plan);
    v["graph"] = json!(s.graph);
    v["operators"] = json!(operators);
    v["restarts"] = json!(m.restarts.load(Ordering::Relaxed));
    v["restored_from"] = json!(m.restored_from().or(s.restored_from));
    v["tables"] = json!(s.tables);
    v["latency"] = json!({
        "p50_seconds": m.latency.quantile(0.5),
        "p99_seconds": m.latency.quantile(0.99),
    });
    v["event_time_latency"] = json!({
        "p50_seconds": m.event_time_latency.quantile(0.5),
        "p99_seconds": m.event_time_latency.quantile(0.99),
    });
    let lag: serde_json::Map<String, Value> = if running {
        m.source_lag()
            .into_iter()
            .map(|(t, n)| (t, json!(n)))
            .collect()
    } else {
        serde_json::Map::new()
    };
    v["source_lag"] = Value::Object(lag);
    v["checkpoint"] = json!({
        "location": s.checkpoint_location.as_deref().map(sluice_types::redact),
        "completed": completed,
        "failed": m.checkpoints_failed.load(Ordering::Relaxed),
        "last_id": (completed > 0).then(|| m.checkpoint_last_id.load(Ordering::Relaxed)),
        "last_completed_ms": (last_ms > 0).then_some(last_ms),
        "last_duration_ms": m.checkpoint_last_duration_ms.load(Ordering::Relaxed),
        "last_size_bytes": m.checkpoint_last_size_bytes.load(Ordering::Relaxed),
        "last_alignment_ms": m.checkpoint_last_alignment_ms.load(Ordering::Relaxed),
    });
    v
}

pub(crate) async fn list(State(app): State<AppState>) -> Response {
    let all: Vec<Value> = app
        .manager
        .list()
        .iter()
        .map(|e| summary(&e.snapshot()))
        .collect();
    Json(json!({ "pipelines": all })).into_response()
}

pub(crate) async fn get_one(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.manager.get(&id) {
        Ok(e) => Json(detail(&e.snapshot())).into_response(),
        Err(e) => error_response(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    name: String,
    sql: String,
    #[serde(default = "yes")]
    start: bool,
}

fn yes() -> bool {
    true
}

/// Reads a JSON body (refusing another content type) into `T`.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Box<Response>> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(Box::new(message(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send JSON with Content-Type: application/json",
            )));
        }
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(message(
            StatusCode::BAD_REQUEST,
            &format!(
                "the body is not a valid request: {e}. Expected {{\"name\": \"my-pipeline\", \"sql\": \"CREATE TABLE ...; INSERT INTO ...\", \"start\": true}}"
            ),
        ))
    })
}

pub(crate) async fn submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return message(e.status(), &e.body_text()),
    };
    let req: Submit = match json_body(&headers, &body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    match app.manager.submit(&req.name, &req.sql, req.start).await {
        Ok(e) => {
            let mut r = (StatusCode::CREATED, Json(detail(&e.snapshot()))).into_response();
            if let Ok(v) = format!("/api/pipelines/{}", e.id).parse() {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn stop(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.manager.stop(&id) {
        Ok(e) => (StatusCode::ACCEPTED, Json(detail(&e.snapshot()))).into_response(),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn resume(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.manager.resume(&id).await {
        Ok(e) => Json(detail(&e.snapshot())).into_response(),
        Err(e) => error_response(&e),
    }
}

pub(crate) async fn delete(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.manager.delete(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Limit {
    limit: Option<usize>,
}

/// The newest dead letters of a pipeline (default 100, at most 1,000), newest last.
pub(crate) async fn dead_letters(
    State(app): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let entry = match app.manager.get(&id) {
        Ok(e) => e,
        Err(e) => return error_response(&e),
    };
    let limit = q.limit.unwrap_or(100).min(1000);
    let Some(path) = entry.snapshot().dead_letter_path else {
        return Json(json!({ "dead_letters": [] })).into_response();
    };
    // Lossy: one bad byte must not hide the rest.
    let bytes = tokio::fs::read(&path).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(limit);
    let records: Vec<Value> = lines[start..]
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|_| json!({ "raw": sluice_types::redact(l) }))
        })
        .collect();
    Json(json!({ "dead_letters": records, "total": lines.len() })).into_response()
}

/// The OpenAPI 3.1 document of this server.
pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The document (kept beside the code; a test checks every route is in it).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /metrics`.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    let snaps: Vec<Snapshot> = app.manager.list().iter().map(|e| e.snapshot()).collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::prometheus::render(&snaps),
    )
        .into_response()
}

/// `GET /readyz`: 200 once the kept pipelines are back, else 503.
pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    if app.manager.is_ready() {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "restoring pipelines").into_response()
    }
}
