//! The listener: accept loop, per-connection hyper tasks with timeouts, a connection
//! cap, and graceful shutdown (D29).

mod conn;

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
    let store = open_store(&config)?;
    let prepared = {
        let (config, store) = (config.clone(), store.clone());
        let url = public_url(&listener);
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
        false,
    ));
    serve(state, listener, shutdown).await;
    // The writer commits what is queued; it blocks, so keep it off the runtime threads.
    let closing = store.clone();
    let _ = tokio::task::spawn_blocking(move || closing.shutdown()).await;
    tracing::info!("stopped");
    Ok(())
}

/// The URL clients should use: an unspecified bind address is reached as localhost.
fn public_url(listener: &TcpListener) -> String {
    match listener.local_addr() {
        Ok(addr) if addr.ip().is_unspecified() => format!("http://localhost:{}", addr.port()),
        Ok(addr) => format!("http://{addr}"),
        Err(_) => "http://localhost".into(),
    }
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
        tokio::spawn(async move {
            conn::serve_connection(state, stream, peer, limits, stop).await;
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
