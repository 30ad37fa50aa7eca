//! `vouch fleet ima-triage [--json]`: binaries unknown to the IMA runtime policy, grouped per
//! cohort (label `cohort`, else `role`, else `all`) and read as a likely update (on at least
//! max(2, ceil(5%)) of the cohort's hosts), spreading, or isolated (one host: likely tampering).
//!
//! Connection settings as for `vouch hosts`: `VOUCH_URL`, `VOUCH_TOKEN`, `VOUCH_CA`. The hosts
//! (with their labels and current reasons) are fetched with the admin API and grouped by
//! [`vouch_verifier::ima_fleet::triage`], the function behind `GET /api/v1/ima/triage`:
//! `--json` prints the same object that route returns.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use vouch_api::AdminClient;
use vouch_verifier::ima_fleet::{self, HostInput};

/// Arguments of `vouch fleet ima-triage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verifier URL.
    #[arg(long, env = "VOUCH_URL", default_value = "https://127.0.0.1:8443")]
    url: String,
    /// Admin token (or a file holding it, prefixed with @).
    #[arg(long, env = "VOUCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The verifier's CA certificate (PEM).
    #[arg(long, env = "VOUCH_CA")]
    ca: Option<PathBuf>,
    /// Print exactly one JSON object (as `GET /api/v1/ima/triage` returns) on stdout.
    #[arg(long)]
    json: bool,
}

/// Run `vouch fleet ima-triage`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let token = match args.token.as_deref() {
        Some(t) => match t.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token file {path}"))?,
            None => t.to_owned(),
        },
        None => anyhow::bail!(
            "no admin token: set VOUCH_TOKEN (vouch serve wrote DATA_DIR/admin.token)"
        ),
    };
    let ca_path = args
        .ca
        .context("no verifier CA: set VOUCH_CA to DATA_DIR/ca.pem")?;
    let ca =
        std::fs::read(&ca_path).with_context(|| format!("cannot read {}", ca_path.display()))?;
    let client = AdminClient::new(&args.url, &ca, token.trim())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let hosts = rt.block_on(client.hosts())?;
    let inputs: Vec<HostInput<'_>> = hosts
        .iter()
        .map(|h| HostInput {
            name: &h.name,
            labels: &h.labels,
            reasons: &h.reasons,
        })
        .collect();
    let t = ima_fleet::triage(&inputs);
    if args.json {
        println!("{}", serde_json::to_string(&t)?);
    } else if t.groups.is_empty() {
        println!(
            "no binary unknown to an IMA policy on any of {} hosts",
            t.hosts
        );
    } else {
        for g in &t.groups {
            let tag = match g.assessment {
                ima_fleet::Assessment::Isolated => "ISOLATED ",
                ima_fleet::Assessment::Spreading => "SPREADING",
                ima_fleet::Assessment::LikelyUpdate => "UPDATE   ",
            };
            println!("{tag} {}", g.explanation);
        }
    }
    Ok(ExitCode::SUCCESS)
}
