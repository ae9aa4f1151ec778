//! The PostgreSQL wire protocol endpoint: `psql -h localhost -p 4566 -c "SELECT * FROM
//! top_pages WHERE …"` queries the rows the `view` sinks keep, with DataFusion's SQL
//! (simple query protocol; read-only: no DDL, no DML, no `SET`). When API keys are
//! configured the password must be a key with the `read` scope (the user name is not
//! checked).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionContext};
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;

use crate::auth::{ApiKey, Scope};

/// Answers queries over the views.
#[derive(Debug)]
struct Views;

/// Checks the password against the API keys (a `read` key), when there are keys.
#[derive(Debug)]
struct KeyLogin {
    keys: Arc<Vec<ApiKey>>,
    parameters: DefaultServerParameterProvider,
    /// The server has a certificate: clients must use TLS (the password is a key).
    require_tls: bool,
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message,
    )))
}

#[async_trait]
impl StartupHandler for KeyLogin {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.require_tls && !client.is_secure() {
                    return Err(user_error(
                        "28000",
                        "this server takes TLS connections only: connect with sslmode=require \
                         (or verify-full with sslrootcert)"
                            .into(),
                    ));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.keys.is_empty() {
                    finish_authentication(client, &self.parameters).await?;
                } else {
                    client.set_state(PgWireConnectionState::AuthenticationInProgress);
                    client
                        .send(PgWireBackendMessage::Authentication(
                            Authentication::CleartextPassword,
                        ))
                        .await?;
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let ok = self
                    .keys
                    .iter()
                    .any(|k| k.allows(Scope::Read) && k.matches(&pwd.password));
                if !ok {
                    return Err(PgWireError::InvalidPassword(
                        "the password must be an API key with the read scope".into(),
                    ));
                }
                finish_authentication(client, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The PostgreSQL type a column is described as (values are sent as text).
fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        _ => Type::TEXT,
    }
}

/// Rows one query may return.
const MAX_ROWS: usize = 1_000_000;
/// Time one query may take.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs one read-only query over a snapshot of every view (at most [`MAX_ROWS`] rows,
/// within [`QUERY_TIMEOUT`]).
async fn run(sql: &str) -> Result<(Vec<FieldInfo>, Vec<RecordBatch>), String> {
    // The statement-size guard of pipeline files: a hostile query must not exhaust the
    // planner's stack.
    sluice_sql::script::split("query", sql).map_err(|e| e.to_string())?;
    match tokio::time::timeout(QUERY_TIMEOUT, run_unbounded(sql)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the query took longer than {} s: narrow it",
            QUERY_TIMEOUT.as_secs()
        )),
    }
}

async fn run_unbounded(sql: &str) -> Result<(Vec<FieldInfo>, Vec<RecordBatch>), String> {
    let ctx = SessionContext::new();
    // Only the views: no row generators.
    for f in ["generate_series", "range"] {
        ctx.deregister_udtf(f);
    }
    for name in sluice_connectors::view::views() {
        let Some(v) = sluice_connectors::view::view(&name) else {
            continue;
        };
        let batch = v.scan(usize::MAX)?;
        let table = MemTable::try_new(v.schema(), vec![vec![batch]]).map_err(|e| e.to_string())?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(|e| e.to_string())?;
    }
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let sql = sql.trim().trim_end_matches(';');
    let df = ctx
        .sql_with_options(sql, options)
        .await
        .map_err(|e| e.to_string())?;
    let schema = df.schema().as_arrow().clone();
    let mut stream = df.execute_stream().await.map_err(|e| e.to_string())?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(b) = futures::StreamExt::next(&mut stream).await {
        let b = b.map_err(|e| e.to_string())?;
        rows += b.num_rows();
        if rows > MAX_ROWS {
            return Err(format!(
                "the query returns more than {MAX_ROWS} rows: add a WHERE or LIMIT"
            ));
        }
        batches.push(b);
    }
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                pg_type(f.data_type()),
                FieldFormat::Text,
            )
        })
        .collect();
    Ok((fields, batches))
}

#[async_trait]
impl SimpleQueryHandler for Views {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
    {
        let (fields, batches) = run(query)
            .await
            .map_err(|e| user_error("42000", sluice_types::redact(&e).into_owned()))?;
        let fields = Arc::new(fields);
        let mut encoder = DataRowEncoder::new(fields.clone());
        let mut rows = Vec::new();
        let options = FormatOptions::default();
        for b in &batches {
            let formatters = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| user_error("XX000", e.to_string()))?;
            for row in 0..b.num_rows() {
                for (c, f) in b.columns().iter().zip(&formatters) {
                    let text = (!c.is_null(row)).then(|| f.value(row).to_string());
                    encoder.encode_field(&text)?;
                }
                rows.push(Ok(encoder.take_row()));
            }
        }
        Ok(vec![Response::Query(QueryResponse::new(
            fields,
            futures::stream::iter(rows),
        ))])
    }
}

struct Handlers {
    query: Arc<Views>,
    login: Arc<KeyLogin>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.login.clone()
    }
}

/// Serves the PostgreSQL protocol on `listener` until `shutdown` resolves; with `tls`
/// (the server's certificate), only over TLS (`sslmode=require` and up).
pub async fn serve_pg(
    listener: TcpListener,
    keys: Vec<ApiKey>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let handlers = Arc::new(Handlers {
        query: Arc::new(Views),
        login: Arc::new(KeyLogin {
            keys: Arc::new(keys),
            parameters: DefaultServerParameterProvider::default(),
            require_tls: tls.is_some(),
        }),
    });
    tokio::pin!(shutdown);
    loop {
        let socket = tokio::select! {
            s = listener.accept() => s,
            () = &mut shutdown => return,
        };
        match socket {
            Ok((s, _)) => {
                let h = handlers.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    if let Err(e) = pgwire::tokio::process_socket(s, tls, h).await {
                        tracing::debug!(error = %e, "A PostgreSQL client connection ended with an error.");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "Accepting a PostgreSQL connection failed.");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
