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

use axum::response::IntoResponse as _;

use crate::agent::{ClientIdentity, PeerAddr};
use crate::config::ServeConfig;
use crate::pki::{self, Pki};
use crate::routes;
use crate::state::AppState;

/// File holding the initial admin token (mode 0600), written on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Reason given to hosts that were trusted when the verifier started.
pub const RESTART_REASON: &str = "verifier restarted; awaiting fresh evidence";
/// Reason given to trusted hosts without valid evidence for two intervals.
pub const STALE_REASON: &str = vouch_store::STALE_REASON;

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
        let mut roots = if config.bundled_ek_roots {
            RootStore::bundled()?
        } else {
            RootStore::empty()
        };
        if let Some(dir) = &config.ek_roots {
            roots.add_dir(dir)?;
        }
        if roots.is_empty() {
            tracing::warn!("no EK roots: every enrolment needs an operator's EK override");
        }
        let auto_roots = match &config.auto_approve_roots {
            Some(dir) => {
                let mut r = RootStore::empty();
                let n = r.add_dir(dir)?;
                if n == 0 {
                    return Err(ServeError::Config(format!(
                        "--auto-approve-roots {}: no certificates found",
                        dir.display()
                    )));
                }
                Some(r)
            }
            None => None,
        };
        let auto_eks = match &config.auto_approve_eks {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ServeError::Io(path.display().to_string(), e))?;
                Some(crate::config::parse_ek_allowlist(&text).map_err(|e| {
                    ServeError::Config(format!("--auto-approve-eks {}: {e}", path.display()))
                })?)
            }
            None => None,
        };
        for s in config.auto_approve.iter().filter(|s| s.deprecated()) {
            tracing::warn!(selector = %s,
                "selector spelling label:KEY=GLOB is deprecated: write KEY=GLOB");
        }
        if !config.auto_approve.is_empty() {
            tracing::warn!(
                selectors = ?config.auto_approve.iter().map(ToString::to_string).collect::<Vec<_>>(),
                restricted_to_roots = auto_roots.is_some(),
                restricted_to_eks = auto_eks.is_some(),
                "auto-approval is on: any TPM whose EK certificate chains to an allowed root \
                 and whose name and labels match is approved without an operator"
            );
        }
        backfill_ek_names(&store).await?;
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
                (auto_roots, auto_eks),
            ),
        })
    }

    /// The verifier of a shared state.
    #[must_use]
    pub const fn from_state(state: AppState) -> Self {
        Self { state }
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

    /// Whether this verifier can vouch for anything now: the store takes a write (within
    /// two seconds) and the EAR signing key is loaded. `Err` says what is wrong.
    pub async fn ready(&self) -> Result<(), String> {
        let st = &self.state;
        match tokio::time::timeout(
            Duration::from_secs(2),
            st.store().heartbeat(&st.inner.replica_id, Utc::now()),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // The cause goes to the log; the answer (unauthenticated) names the part only.
                tracing::warn!(error = %e, "not ready: the store does not take writes");
                return Err("store does not take writes".to_owned());
            }
            Err(_) => return Err("store did not answer within 2 s".to_owned()),
        }
        let issuer = st
            .inner
            .ear
            .read()
            .map_err(|_| "EAR signing key unavailable".to_owned())?;
        if issuer.current_kid().is_empty() {
            return Err("no EAR signing key loaded".to_owned());
        }
        Ok(())
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

/// Record the EK name of hosts enrolled before names were kept (one TPM, one identity). A
/// TPM already enrolled under two names keeps the name on the first host only; the second is
/// reported so an operator can remove it.
async fn backfill_ek_names(store: &Store) -> Result<(), ServeError> {
    for (id, ek_public) in store.hosts_without_ek_name().await? {
        let Some(name) = vouch_tpm2::PublicArea::decode_tpmt(&ek_public)
            .or_else(|_| vouch_tpm2::PublicArea::decode_tpm2b(&ek_public))
            .ok()
            .map(|ek| ek.name())
        else {
            tracing::warn!(host_id = %id, "stored EK does not decode; no EK name recorded");
            continue;
        };
        match store.set_ek_name(id, &name).await {
            Ok(()) => {}
            Err(vouch_store::StoreError::Duplicate(_)) => tracing::error!(
                host_id = %id,
                ek_name = %hex::encode(&name),
                "this TPM is enrolled under another host too: remove one of them"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
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
    let cfg = verifier.state.inner.config.clone();
    let limits = ConnLimits {
        header: cfg.header_timeout,
        request: cfg.request_timeout,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections.max(1)));
    // The sweep runs on its own task: a slow or failing store never stalls accepting
    // connections or `/healthz`, and freshness never depends on it (hosts read as of now).
    let sweeper = {
        let verifier = verifier.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tick.tick() => {
                        if let Err(e) = verifier.sweep().await {
                            tracing::error!(error = %e, "background sweep failed");
                        }
                    }
                }
            }
        })
    };
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, max = cfg.max_connections,
                            "connection refused: too many open connections");
                        drop(tcp);
                        continue;
                    };
                    let (acceptor, router) = (acceptor.clone(), router.clone());
                    conns.spawn(async move {
                        connection(tcp, peer, acceptor, router, limits).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    sweeper.abort();
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Per-connection deadlines.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    /// For the TLS handshake and for each request's headers.
    header: Duration,
    /// For each whole request (body and answer included).
    request: Duration,
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    limits: ConnLimits,
) {
    let handshake = tokio::time::timeout(limits.header, acceptor.accept(tcp)).await;
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
            req.extensions_mut().insert(PeerAddr(peer));
            let call = router.clone().oneshot(req);
            async move {
                match tokio::time::timeout(limits.request, call).await {
                    Ok(response) => response,
                    Err(_) => {
                        tracing::warn!(%peer, "request timed out");
                        Ok(crate::error::ApiError::RequestTimeout.into_response())
                    }
                }
            }
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(limits.request))
        .keep_alive_timeout(limits.header);
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
