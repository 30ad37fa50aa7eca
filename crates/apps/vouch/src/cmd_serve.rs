//! `vouch serve`: the verifier service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use vouch_verifier::{Selector, ServeConfig};

/// Arguments of `vouch serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Data directory: CA, admin token, and the SQLite database unless --database is given.
    #[arg(long)]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...) for shared state between verifier replicas.
    #[arg(long, env = "VOUCH_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Extra trusted EK CA certificates (PEM or DER files), beside the bundled vendor roots.
    #[arg(long)]
    ek_roots: Option<PathBuf>,
    /// Do not trust the EK manufacturer roots bundled with Vouch (only --ek-roots).
    #[arg(long)]
    no_bundled_ek_roots: bool,
    /// Auto-approve only TPMs whose EK certificate chains to a CA in this directory (the
    /// bundled roots include cloud vTPM CAs that any tenant of that cloud can chain to).
    #[arg(long)]
    auto_approve_roots: Option<PathBuf>,
    /// Auto-approve only TPMs whose EK name (hex, one per line, '#' comments) is listed.
    #[arg(long)]
    auto_approve_eks: Option<PathBuf>,
    /// Enrolments per second per source address (token bucket, burst 4x; 429 beyond).
    #[arg(long, default_value_t = 20)]
    enrol_rate: u32,
    /// Pending (not yet activated) enrolments one source address may hold.
    #[arg(long, default_value_t = 256)]
    max_pending_enrolments: u32,
    /// Operator API requests per second per source address (token bucket, burst 4x).
    #[arg(long, default_value_t = 50)]
    api_rate: u32,
    /// Open connections at most (further ones are closed at once).
    #[arg(long, default_value_t = 16_384)]
    max_connections: usize,
    /// A firmware catalogue (`vouch firmware catalog`): machine states name the build.
    #[arg(long)]
    firmware_catalog: Option<PathBuf>,
    /// Default attestation interval, seconds.
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// Approve hosts automatically when their EK chains to an allowed root and they match:
    /// `all`, or `name=GLOB` and `KEY=GLOB` (label) terms joined by ',' (repeatable; the
    /// old `label:KEY=GLOB` spelling is still read, with a warning).
    #[arg(long = "auto-approve")]
    auto_approve: Vec<Selector>,
    /// PCRs to quote (tpm2-tools syntax).
    #[arg(long)]
    pcrs: Option<String>,
    /// Attestation records kept per host.
    #[arg(long, default_value_t = 100)]
    history: u32,
    /// Extra DNS names or IP addresses for the server certificate.
    #[arg(long = "server-name")]
    server_names: Vec<String>,
    /// Require IMA from every host: quote sha256:10 too and replay each host's measurement
    /// list incrementally (hosts given an IMA runtime policy always do).
    #[arg(long)]
    ima: bool,
}

/// Run `vouch serve` until interrupted.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::logging::init();
    let mut config = ServeConfig::new(args.listen, args.data_dir);
    config.database_url = args.database;
    config.ek_roots = args.ek_roots;
    config.bundled_ek_roots = !args.no_bundled_ek_roots;
    config.auto_approve_roots = args.auto_approve_roots;
    config.auto_approve_eks = args.auto_approve_eks;
    config.enrol_rate = args.enrol_rate;
    config.max_pending_per_source = args.max_pending_enrolments;
    config.admin_rate = args.api_rate;
    config.max_connections = args.max_connections;
    config.firmware_catalog = args.firmware_catalog;
    config.interval = Duration::from_secs(args.interval.max(1));
    config.auto_approve = args.auto_approve;
    if let Some(p) = args.pcrs {
        config.pcr_selection = p;
    }
    config.history_limit = args.history;
    config.server_names = args.server_names;
    config.ima = args.ima;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = vouch_verifier::serve(config)
            .await
            .context("cannot start the verifier")?;
        tracing::info!(addr = %server.local_addr(), "verifier ready");
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
