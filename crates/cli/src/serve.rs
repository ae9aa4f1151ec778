//! `sluice serve`: the long-running server.

use std::time::Duration;

use anyhow::anyhow;
use sluice_server::{AppState, Manager, ManagerSettings, ServerConfig};

use crate::Failure;
use crate::args::ServeArgs;
use crate::run::{runtime, server_failure as failure};

/// How long running pipelines get to take their savepoints when the server stops.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// `sluice serve`.
pub(crate) fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path).map_err(failure)?,
        None => ServerConfig::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(p) = &args.pg_listen {
        config.set_pg_listen(p);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = runtime(threads)?;
    rt.block_on(run_server(config))
}

async fn run_server(config: ServerConfig) -> Result<(), Failure> {
    let tls = config.tls_acceptor().map_err(failure)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| {
            Failure::user(anyhow!(
                "cannot listen on '{}': {e}. Set another address with --listen HOST:PORT or listen = \"...\" in the configuration",
                config.listen
            ))
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::runtime(anyhow!("the listening socket has no address: {e}")))?;
    config.check_exposure(bound).map_err(failure)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        Failure::user(anyhow!(
            "cannot create the data directory '{}': {e}",
            config.data_dir.display()
        ))
    })?;
    let manager = Manager::new(ManagerSettings {
        data_dir: Some(config.data_dir.clone()),
        checkpoint_dir: config.checkpoint_dir.clone(),
        checkpoint_interval: config.checkpoint_interval,
    });
    let router = sluice_server::router(
        AppState::new(manager.clone(), &config),
        config.max_body_bytes,
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "Serving on {scheme}://{bound}: API {scheme}://{bound}/api/pipelines, metrics /metrics, data in {}{}.",
        config.data_dir.display(),
        if config.api_keys.is_empty() {
            " (no API keys: open to anyone who can reach it)"
        } else {
            ""
        }
    );
    let (pg_stop, pg_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = &config.pg_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                if let Ok(a) = l.local_addr() {
                    config.check_exposure(a).map_err(failure)?;
                }
                eprintln!(
                    "PostgreSQL protocol over the views on {addr} (psql -h {} -p {}).",
                    l.local_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default(),
                    l.local_addr().map(|a| a.port()).unwrap_or_default()
                );
                tokio::spawn(sluice_server::serve_pg(
                    l,
                    config.api_keys.clone(),
                    tls.clone(),
                    async move {
                        let _ = pg_stopped.await;
                    },
                ));
            }
            Err(e) if config.pg_listen_set => {
                return Err(Failure::user(anyhow!(
                    "cannot listen for PostgreSQL clients on '{addr}': {e}. Set another address with --pg-listen, or off"
                )));
            }
            Err(e) => {
                tracing::warn!(address = %addr, error = %e, "Not serving the PostgreSQL protocol: the port is taken (set pg_listen).");
            }
        }
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_server::serve(listener, router, tls, async move {
        let _ = stopped.await;
    }));
    match manager.restore().await {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "Restored {n} pipeline{} from {}.",
            if n == 1 { "" } else { "s" },
            config.data_dir.display()
        ),
        Err(e) => return Err(failure(e)),
    }
    shutdown_signal().await;
    eprintln!("Stopping: running pipelines take a savepoint and resume at the next start.");
    manager.shutdown(STOP_LIMIT).await;
    let _ = stop.send(());
    let _ = pg_stop.send(());
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::runtime(anyhow!("the server failed: {e}"))),
        Err(e) => Err(Failure::runtime(anyhow!("the server task failed: {e}"))),
    }
}

/// Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
