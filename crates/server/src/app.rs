//! The routes of the server, its state, the API-key guard in front of them, and
//! serving over TCP or TLS.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::api;
use crate::auth::{ApiKey, Caller, RateLimiter, Scope};
use crate::config::{ServerConfig, TlsFiles};
use crate::manager::Manager;
use crate::{Error, Result};

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    /// The pipelines.
    pub manager: Arc<Manager>,
    keys: Arc<Vec<ApiKey>>,
    limiter: Arc<RateLimiter>,
    /// Wrong keys per client address: guessing is slowed even without a rate limit.
    failures: Arc<RateLimiter>,
}

/// Wrong keys a client address may present per second (bursts of as many).
const FAILED_KEYS_PER_SECOND: u32 = 10;

impl AppState {
    /// State for `manager`, guarded by the keys and limits of `config`.
    pub fn new(manager: Arc<Manager>, config: &ServerConfig) -> Self {
        AppState {
            manager,
            keys: Arc::new(config.api_keys.clone()),
            limiter: Arc::new(RateLimiter::new(config.requests_per_second)),
            failures: Arc::new(RateLimiter::new(FAILED_KEYS_PER_SECOND)),
        }
    }
}

/// Marks a request that an API key let in (the table's own token is then not asked).
#[derive(Debug, Clone)]
pub struct KeyAuthenticated;

/// Every route: the API, metrics, health, ingest and live streams.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/api/pipelines", get(api::list).post(api::submit))
        .route("/api/pipelines/{id}", get(api::get_one).delete(api::delete))
        .route("/api/pipelines/{id}/stop", post(api::stop))
        .route("/api/pipelines/{id}/resume", post(api::resume))
        .route("/api/pipelines/{id}/dead-letters", get(api::dead_letters))
        .route("/api/pipelines/{id}/tail", get(crate::tail::tail))
        .route("/api/views", get(crate::views::list))
        .route("/api/views/{name}", get(crate::views::get))
        .route("/api/openapi.json", get(api::openapi))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    Router::new()
        .merge(api)
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::readyz))
        .route("/", get(crate::ui::index))
        .route("/ui/{*path}", get(crate::ui::asset))
        .route("/ingest/{table}", post(crate::ingest::ingest))
        .route("/sse/{table}", get(crate::sse::sse))
        .fallback(|| async {
            api::message(
                StatusCode::NOT_FOUND,
                "no such endpoint: see GET /api/openapi.json; POST /ingest/<table> takes rows, GET /sse/<table> streams them",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The scope a request needs, or `None` for the health checks.
fn needed(method: &Method, path: &str) -> Option<Scope> {
    // Health checks, and the UI's static files (they hold no data).
    if path == "/healthz" || path == "/readyz" || path == "/" || path.starts_with("/ui/") {
        None
    } else if path.starts_with("/ingest/") {
        Some(Scope::Ingest)
    } else if method == Method::GET || method == Method::HEAD {
        Some(Scope::Read)
    } else {
        Some(Scope::Submit)
    }
}

/// The table an ingest or stream path names, when that table has its own token.
fn table_with_token(path: &str) -> bool {
    if let Some(t) = path.strip_prefix("/ingest/") {
        sluice_connectors::http::endpoint(t).is_some_and(|e| e.has_token())
    } else if let Some(t) = path.strip_prefix("/sse/") {
        sluice_connectors::sse::stream(t).is_some_and(|s| s.has_token())
    } else {
        false
    }
}

fn refuse(status: StatusCode, text: &str) -> Response {
    let mut r = api::message(status, text);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Checks the API key (when keys are configured) and the rate limit.
async fn guard(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some(scope) = needed(req.method(), &path) else {
        return next.run(req).await;
    };
    let address = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip());
    let caller = if app.keys.is_empty() {
        address.map(Caller::Address)
    } else {
        // `?api_key=` only where a browser's EventSource cannot send a header.
        let streams = path.starts_with("/sse/") || path.ends_with("/tail");
        let query_key = (req.method() == Method::GET && streams)
            .then(|| query_param(req.uri().query(), "api_key"))
            .flatten();
        let given = crate::auth::presented(req.headers())
            .map(str::to_string)
            .or(query_key);
        match given
            .as_deref()
            .and_then(|g| app.keys.iter().find(|k| k.matches(g)))
        {
            Some(key) if key.allows(scope) => {
                req.extensions_mut().insert(KeyAuthenticated);
                Some(Caller::Key(key.name.clone()))
            }
            Some(key) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "the API key '{}' may not do this: it needs the '{}' scope",
                        key.name,
                        scope.name()
                    ),
                );
            }
            // A table with its own token checks it itself.
            None if table_with_token(&path) => address.map(Caller::Address),
            None if given.is_none() => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "this endpoint needs an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                );
            }
            None => {
                if let Some(a) = address
                    && let Err(wait) = app.failures.take(Caller::Address(a))
                {
                    return too_many(wait);
                }
                return refuse(StatusCode::UNAUTHORIZED, "the API key is not valid");
            }
        }
    };
    if let Some(c) = caller
        && let Err(wait) = app.limiter.take(c)
    {
        return too_many(wait);
    }
    next.run(req).await
}

/// 429 with `Retry-After`.
fn too_many(wait: u64) -> Response {
    let mut r = api::message(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests: slow down (see the Retry-After header)",
    );
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A query parameter's value (percent-decoding only `%XX`).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(h) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves `router` on `listener` (with TLS when `tls` is given) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<Peer>();
    match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => {
            axum::serve(TlsListener::start(listener, acceptor)?, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// A TLS acceptor from PEM files.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|i| i.collect::<std::result::Result<_, _>>())
        .map_err(|e| {
            Error::User(format!(
                "tls.cert '{}': cannot read a PEM certificate chain: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::User(format!(
            "tls.cert '{}' holds no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        Error::User(format!(
            "tls.key '{}': cannot read a PEM private key: {e}",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::User(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::User(format!("tls.cert and tls.key do not go together: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The client's address, for per-address rate limits (over TCP or TLS).
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TCP connections and hands on those whose TLS handshake succeeded; slow or
/// failing handshakes never hold up the others.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "Accepting a connection failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed.");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_needs_its_scope() {
        assert_eq!(needed(&Method::GET, "/healthz"), None);
        assert_eq!(needed(&Method::GET, "/readyz"), None);
        assert_eq!(needed(&Method::GET, "/"), None);
        assert_eq!(needed(&Method::GET, "/ui/app.js"), None);
        assert_eq!(needed(&Method::GET, "/metrics"), Some(Scope::Read));
        assert_eq!(needed(&Method::GET, "/api/pipelines"), Some(Scope::Read));
        assert_eq!(needed(&Method::POST, "/api/pipelines"), Some(Scope::Submit));
        assert_eq!(
            needed(&Method::DELETE, "/api/pipelines/a"),
            Some(Scope::Submit)
        );
        assert_eq!(needed(&Method::POST, "/ingest/t"), Some(Scope::Ingest));
        assert_eq!(needed(&Method::GET, "/sse/t"), Some(Scope::Read));
    }

    #[test]
    fn query_keys_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&api_key=k%2B1+x"), "api_key").as_deref(),
            Some("k+1 x")
        );
        assert_eq!(
            query_param(Some("api_key=%zz%"), "api_key").as_deref(),
            Some("%zz%")
        );
        assert_eq!(query_param(None, "api_key"), None);
    }
}
