//! `POST /ingest/<table>`: bodies for the `http` tables of the running pipeline.

use axum::Extension;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sluice_connectors::http::{Answer, endpoint, endpoints};

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    crate::api::message(status, message)
}

fn respond(a: Answer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, a.body);
    for (k, v) in a.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn ingest(
    Path(table): Path<String>,
    key: Option<Extension<crate::app::KeyAuthenticated>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(ep) = endpoint(&table) else {
        let known = endpoints();
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "no http table '{table}' in the running pipeline{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!("; its ingest tables: {}", known.join(", "))
                }
            ),
        );
    };
    // An API key with the ingest scope stands in for the table's own token.
    if key.is_none()
        && let Some(refused) = ep.check_auth(header_text(&headers, header::AUTHORIZATION))
    {
        return respond(refused);
    }
    let max = ep.max_body();
    let declared =
        header_text(&headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is over {max} bytes"),
        );
    }
    let read = tokio::time::timeout(ep.body_timeout(), Limited::new(body, max).collect()).await;
    let bytes = match read {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                &format!("the body did not arrive within {:?}", ep.body_timeout()),
            );
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is over {max} bytes"),
            );
        }
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body could not be read: {e}"),
            );
        }
        Ok(Ok(c)) => c.to_bytes().to_vec(),
    };
    let answer = ep
        .accept(
            header_text(&headers, header::CONTENT_TYPE),
            header_text(&headers, header::CONTENT_ENCODING),
            bytes,
        )
        .await;
    respond(answer)
}
