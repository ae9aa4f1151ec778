//! `GET /sse/<table>`: the rows of an `sse` table as Server-Sent Events, live.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use sluice_connectors::sse::hub::RowEvent;
use sluice_connectors::sse::{stream, streams};
use tokio::sync::broadcast::error::RecvError;

fn event(e: RowEvent) -> Event {
    Event::default().event(e.kind).data(e.data)
}

/// Streams `table`'s events to one client until it goes away (or the pipeline ends).
pub(crate) async fn sse(
    Path(table): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    key: Option<Extension<crate::app::KeyAuthenticated>>,
    headers: HeaderMap,
) -> Response {
    let Some(s) = stream(&table) else {
        let known = streams();
        return crate::api::message(
            StatusCode::NOT_FOUND,
            &format!(
                "no sse table '{table}' in the running pipeline{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!("; its sse tables: {}", known.join(", "))
                }
            ),
        );
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // An API key with the read scope stands in for the table's own token.
    let check = if key.is_some() {
        None
    } else {
        s.check_auth(bearer, query.get("token").map(String::as_str))
    };
    match check {
        Some(401) => {
            let mut r = crate::api::message(
                StatusCode::UNAUTHORIZED,
                "this stream needs 'Authorization: Bearer <token>' or '?token=<token>'",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        Some(_) => {
            return crate::api::message(
                StatusCode::FORBIDDEN,
                "the token is not the one this stream takes",
            );
        }
        None => {}
    }
    let (past, rx) = s.subscribe();
    let live = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(e) => Some((Ok::<Event, Infallible>(event(e)), rx)),
            Err(RecvError::Lagged(n)) => {
                let note = Event::default()
                    .event("lagged")
                    .data(format!("{{\"missed\": {n}}}"));
                Some((Ok(note), rx))
            }
            Err(RecvError::Closed) => None,
        }
    });
    let all = futures::stream::iter(past.into_iter().map(|e| Ok(event(e)))).chain(live);
    Sse::new(all)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
