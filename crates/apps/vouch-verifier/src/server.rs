//! Start-up (data directory, store, CA, admin token), the TLS accept loop, background tasks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;
use vouch_store::{Store, StoreOptions};
use vouch_tpm2::PcrSelection;
use vouch_x509::RootStore;

use crate::agent::ClientIdentity;
use crate::config::ServeConfig;
use crate::pki::{self, Pki};
use crate::routes;
use crate::state::AppState;

/// File holding the initial admin token (mode 0600), written on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Reason given to hosts that were trusted when the verifier started.
pub const RESTART_REASON: &str = "verifier restarted; awaiting fresh evidence";
/// Reason given to trusted hosts without valid evidence for two intervals.
pub const STALE_REASON: &str = "no valid evidence within two attestation intervals";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Data directory or listener I/O.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] vouch_store::StoreError),
    /// CA or TLS setup.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// EK roots.
    #[error("EK roots: {0}")]
    Roots(#[from] vouch_x509::EkCertError),
    /// The EAR signing key in `DATA_DIR/ear`.
    #[error("EAR signing key: {0}")]
    Ear(#[from] vouch_ear::EarError),
}

/// A verifier, built but not listening: its router and state.
#[derive(Debug, Clone)]
pub struct Verifier {
    state: AppState,
}

impl Verifier {
    /// Prepare the data directory, open the store (running migrations), load or create the
    /// CA and the initial admin token, and demote every host that was trusted (no host is
    /// trusted on stored state alone).
    pub async fn build(config: ServeConfig) -> Result<Self, ServeError> {
        let selection = PcrSelection::parse_spec(&config.pcr_selection)
            .map_err(|e| ServeError::Config(format!("PCR selection: {e}")))?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| ServeError::Io(config.data_dir.display().to_string(), e))?;
        let options = StoreOptions {
            history_limit: config.history_limit,
        };
        let store = match &config.database_url {
            Some(url) => Store::open_url(url, options).await?,
            None => {
                Store::open_sqlite(&config.data_dir.join(vouch_store::SQLITE_FILE), options).await?
            }
        };
        let ima_selection = crate::config::with_ima_pcr(&selection)
            .map_err(|e| ServeError::Config(format!("PCR selection with PCR 10: {e}")))?;
        let pki = Pki::load_or_create(&config.data_dir)?;
        let mut roots = RootStore::bundled()?;
        if let Some(dir) = &config.ek_roots {
            roots.add_dir(dir)?;
        }
        let now = Utc::now();
        if store.admin_token_count().await? == 0 {
            let token = format!(
                "vouch_{}",
                hex::encode(crate::agent::random_bytes::<32>().map_err(|_| {
                    ServeError::Config("random number generator failed".into())
                })?)
            );
            let path = config.data_dir.join(ADMIN_TOKEN_FILE);
            if path.exists() {
                std::fs::remove_file(&path)
                    .map_err(|e| ServeError::Io(path.display().to_string(), e))?;
            }
            pki::write_new_file(&path, format!("{token}\n").as_bytes(), 0o600)?;
            store
                .add_admin_token("initial", &vouch_store::sha256(token.as_bytes()), now)
                .await?;
            tracing::info!(path = %path.display(), "initial admin token written");
        }
        let ear = crate::ear::load_issuer(&config.data_dir, now)?;
        let firmware = match &config.firmware_catalog {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| ServeError::Io(path.display().to_string(), e))?;
                let c: vouch_tcglog::FirmwareCatalog =
                    serde_json::from_slice(&bytes).map_err(|e| {
                        ServeError::Config(format!("firmware catalogue {}: {e}", path.display()))
                    })?;
                tracing::info!(path = %path.display(), builds = c.firmware.len(),
                    "firmware catalogue loaded");
                Some(c)
            }
            None => None,
        };
        let demoted = store.demote_trusted(now, RESTART_REASON).await?;
        tracing::info!(
            backend = store.backend_name(),
            demoted,
            "verifier ready; trusted hosts must attest again"
        );
        Ok(Self {
            state: AppState::new(
                store,
                pki,
                roots,
                config,
                selection,
                ima_selection,
                ear,
                firmware,
            ),
        })
    }

    /// The HTTP router (no TLS). Agent routes expect a [`ClientIdentity`] extension.
    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
    }

    /// The shared state (store access for tests and the binary).
    #[must_use]
    pub const fn state(&self) -> &AppState {
        &self.state
    }

    /// One sweep of the background duties: stale trusted hosts become unreachable, expired
    /// nonces and enrolments are deleted.
    pub async fn sweep(&self) -> Result<(), vouch_store::StoreError> {
        let now = Utc::now();
        let store = self.state.store();
        for name in store.mark_stale_unreachable(now, STALE_REASON).await? {
            tracing::warn!(host = %name, "host unreachable");
        }
        store.purge_expired(now).await?;
        Ok(())
    }
}

/// A running verifier.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    data_dir: PathBuf,
    verifier: Verifier,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The bound address (the real port when the configuration said 0).
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` for clients.
    #[must_use]
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `DATA_DIR/ca.pem`.
    #[must_use]
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join(pki::CA_CERT_FILE)
    }

    /// `DATA_DIR/admin.token` (written on first start only).
    #[must_use]
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join(ADMIN_TOKEN_FILE)
    }

    /// The verifier (router, state).
    #[must_use]
    pub const fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Stop accepting, abort open connections and background tasks, close the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.verifier.state.store().close().await;
    }

    /// Run until `shutdown` is called elsewhere or the task ends.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Build the verifier, bind `config.listen`, and serve HTTPS with optional client
/// certificates until [`ServerHandle::shutdown`].
pub async fn serve(config: ServeConfig) -> Result<ServerHandle, ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Io(format!("listen on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Io("local address".into(), e))?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    names.extend(config.server_names.iter().cloned());
    names.sort();
    names.dedup();
    let data_dir = config.data_dir.clone();
    let sweep_every = config
        .interval
        .checked_div(4)
        .unwrap_or_default()
        .clamp(Duration::from_millis(200), Duration::from_secs(5));
    let verifier = Verifier::build(config).await?;
    let tls = Arc::new(verifier.state.inner.pki.server_config(&names)?);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(
        listener,
        tokio_rustls::TlsAcceptor::from(tls),
        verifier.clone(),
        stop_rx,
        sweep_every,
    ));
    tracing::info!(%addr, "verifier listening");
    Ok(ServerHandle {
        addr,
        data_dir,
        verifier,
        stop,
        task,
    })
}

async fn run(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    verifier: Verifier,
    mut stop: watch::Receiver<bool>,
    sweep_every: Duration,
) {
    let router = verifier.router();
    let mut conns = JoinSet::new();
    let mut sweep = tokio::time::interval(sweep_every);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = sweep.tick() => {
                if let Err(e) = verifier.sweep().await {
                    tracing::error!(error = %e, "background sweep failed");
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    conns.spawn(connection(tcp, peer, acceptor.clone(), router.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
) {
    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    // rustls verified any presented certificate against our CA; take the host id from it.
    let identity = tls.get_ref().1.peer_certificates().and_then(|chain| {
        let leaf = chain.first()?;
        Some(ClientIdentity {
            host_id: pki::host_id_of(leaf)?,
            cert_sha256: vouch_store::sha256(leaf),
        })
    });
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(id) = identity {
                req.extensions_mut().insert(id);
            }
            router.clone().oneshot(req)
        });
    if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
