//! Connection settings of the operator commands (`vouch hosts`, `refs`, `policy`, `rollout`,
//! `fleet triage`, `fleet ima-triage`, `keys`): from flags or the environment, `VOUCH_URL`
//! (e.g. `https://127.0.0.1:8443`), `VOUCH_TOKEN` (the admin token, or `@FILE`; `vouch serve`
//! writes the first one to `DATA_DIR/admin.token`) and `VOUCH_CA` (`DATA_DIR/ca.pem`).

use std::path::PathBuf;

use anyhow::Context;
use vouch_api::AdminClient;

/// How to reach the verifier's admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Verifier URL.
    #[arg(
        long,
        env = "VOUCH_URL",
        global = true,
        default_value = "https://127.0.0.1:8443"
    )]
    pub url: String,
    /// Admin token (or a file holding it, prefixed with @).
    #[arg(long, env = "VOUCH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The verifier's CA certificate (PEM).
    #[arg(long, env = "VOUCH_CA", global = true)]
    pub ca: Option<PathBuf>,
}

impl Conn {
    /// An admin client, refusing to go on without a token and a CA.
    pub fn client(&self) -> anyhow::Result<AdminClient> {
        let token = match self.token.as_deref() {
            Some(t) => match t.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read token file {path}"))?,
                None => t.to_owned(),
            },
            None => anyhow::bail!(
                "no admin token: set VOUCH_TOKEN (vouch serve wrote DATA_DIR/admin.token)"
            ),
        };
        let ca_path = self
            .ca
            .as_ref()
            .context("no verifier CA: set VOUCH_CA to DATA_DIR/ca.pem")?;
        let ca =
            std::fs::read(ca_path).with_context(|| format!("cannot read {}", ca_path.display()))?;
        Ok(AdminClient::new(&self.url, &ca, token.trim())?)
    }
}

/// Run one future on a current-thread runtime (the operator commands make a few requests).
pub fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
