//! The listener: accept loop, per-connection hyper tasks with timeouts, a connection
//! cap, and graceful shutdown (D29).

pub mod backup_socket;
mod conn;
pub mod head_check;
mod redirect;
pub mod tls;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::auth::keys::KeySet;
use crate::auth::oidc::OidcVerifier;
use crate::config::{AuthMode, Config};
use crate::http::AppState;
use crate::store::{Store, StoreError, StoreOptions};

pub use conn::ConnLimits;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("start-up failed: {0}")]
    Startup(String),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// Opens the store in the configured data dir.
pub fn open_store(config: &Config) -> Result<Store, ServerError> {
    crate::config::ensure_data_dir(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    Ok(Store::open(
        &config.db_path(),
        &StoreOptions::from(&config.store),
    )?)
}

/// Serves `listener` until `shutdown` resolves, then drains connections, commits the
/// pending writes and closes the database. Used by `serve` and by the tests.
pub async fn run(
    config: Arc<Config>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    // TLS problems (missing, unreadable, mismatched files) stop the start, loudly.
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(tls::Tls::new(cert, key)?),
        _ => None,
    };
    let redirect = match (&tls, &config.tls.redirect_http) {
        (Some(_), Some(addr)) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| ServerError::Startup(format!("tls.redirect_http {addr}: {e}")))?;
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(443);
            tracing::info!(
                "redirecting http://{} to https",
                l.local_addr().map(|a| a.to_string()).unwrap_or_default()
            );
            Some(tokio::spawn(redirect::serve(l, port)))
        }
        _ => None,
    };
    let store = open_store(&config)?;
    let prepared = {
        let (config, store) = (config.clone(), store.clone());
        let url = public_url(&listener, tls.is_some());
        tokio::task::spawn_blocking(move || prepare(&config, &store, &url))
            .await
            .map_err(|e| ServerError::Startup(e.to_string()))?
    };
    let (keys, oidc) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let closing = store.clone();
            let _ = tokio::task::spawn_blocking(move || closing.shutdown()).await;
            return Err(e);
        }
    };
    let state = Arc::new(AppState::new(
        config.clone(),
        store.clone(),
        keys,
        oidc,
        tls.is_some(),
    ));
    // A data dir whose path is too long for a socket address still serves; only the
    // online backup is missing, and the log says so.
    let backup_socket = match backup_socket::listen(&config.data_dir, store.backup_source()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no backup socket: `stardag-server backup` will not reach this server");
            None
        }
    };
    // Always handled: `systemctl reload` (ExecReload) must never kill a plain-HTTP server.
    let reloader = Some(tokio::spawn(reload_on_sighup(tls.clone())));
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    // systemd (Type=notify) learns we are ready only after start-up work is done.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    serve(state, listener, tls, shutdown).await;
    housekeeping.abort();
    drop(backup_socket);
    for task in [reloader, redirect].into_iter().flatten() {
        task.abort();
    }
    // The writer commits what is queued; it blocks, so keep it off the runtime threads.
    let closing = store.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown()).await;
    tracing::info!("stopped");
    Ok(())
}

/// The URL clients should use: an unspecified bind address is reached as localhost.
fn public_url(listener: &TcpListener, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match listener.local_addr() {
        Ok(addr) if addr.ip().is_unspecified() => format!("{scheme}://localhost:{}", addr.port()),
        Ok(addr) => format!("{scheme}://{addr}"),
        Err(_) => format!("{scheme}://localhost"),
    }
}

/// Periodic upkeep: rate-limit tables forget idle keys so memory stays bounded.
async fn housekeeping(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.limits.housekeeping();
    }
}

/// SIGHUP re-reads the certificate (D23); a bad pair keeps the old one. Without TLS
/// there is nothing to reload, and the signal is only logged.
async fn reload_on_sighup(tls: Option<tls::Tls>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: certificate reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: nothing to reload (TLS is off)");
                continue;
            };
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                }
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// Start-up work: the OIDC verifier (a bad `oidc.*` setting fails the start, not each
/// request), signing keys (D13) and the first-start bootstrap (D4).
fn prepare(
    config: &Config,
    store: &Store,
    url: &str,
) -> Result<(KeySet, Option<OidcVerifier>), ServerError> {
    let oidc = match config.auth.mode {
        AuthMode::Oidc => Some(
            OidcVerifier::from_config(&config.oidc)
                .map_err(|e| ServerError::Startup(e.to_string()))?,
        ),
        AuthMode::Local => None,
    };
    let window = config
        .auth
        .session_ttl_seconds
        .max(config.auth.access_token_ttl_seconds);
    let keys = crate::auth::keys::load_or_create(store, window)
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    crate::bootstrap::first_start(config, store, url)
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    Ok((keys, oidc))
}

/// The accept loop. Returns once every connection has finished (or the grace period
/// ran out) after `shutdown` resolved.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    tls: Option<tls::Tls>,
    shutdown: impl Future<Output = ()>,
) {
    let http = &state.config.http;
    let max_conns = http
        .max_connections
        .min(Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize);
    let limits = ConnLimits::from(http);
    let grace = Duration::from_secs(http.shutdown_grace_seconds);
    let permits = Arc::new(Semaphore::new(max_conns));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);

    loop {
        // At the cap, stop accepting: new clients wait in the kernel backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends are transient: never let them end the server.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let stop = stop_rx.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
        tokio::spawn(async move {
            match acceptor {
                None => conn::serve_connection(state, stream, peer, limits, stop).await,
                // A stalled handshake must not hold a task and a descriptor for long.
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            conn::serve_connection(state, tls_stream, peer, limits, stop).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    // Every live connection holds a permit; all permits back means all connections done.
    let all = tokio::time::timeout(grace, permits.acquire_many(max_conns as u32)).await;
    if all.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "connections still open after the grace period; closing them"
        );
    }
}
