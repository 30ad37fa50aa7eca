//! `vouch hosts list|show|approve|attest|remove|ear`: operator commands against `vouch serve`.
//!
//! Connection settings come from the environment (or flags): `VOUCH_URL` (e.g.
//! `https://127.0.0.1:8443`), `VOUCH_TOKEN` (the admin token; `vouch serve` writes the first one
//! to `DATA_DIR/admin.token`) and `VOUCH_CA` (path of `DATA_DIR/ca.pem`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use vouch_api::{AdminClient, HostSummary};

/// Arguments of `vouch hosts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verifier URL.
    #[arg(
        long,
        env = "VOUCH_URL",
        global = true,
        default_value = "https://127.0.0.1:8443"
    )]
    url: String,
    /// Admin token (or a file holding it, prefixed with @).
    #[arg(long, env = "VOUCH_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The verifier's CA certificate (PEM).
    #[arg(long, env = "VOUCH_CA", global = true)]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every host with its status and reasons.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// One host in detail, with its recent attestations.
    Show {
        /// Host name.
        name: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Approve a host that awaits approval.
    Approve {
        /// Host name.
        name: String,
    },
    /// Make a host attest now.
    Attest {
        /// Host name.
        name: String,
    },
    /// Remove a host (its certificate stops working).
    Remove {
        /// Host name.
        name: String,
    },
    /// Print a signed attestation result (EAR JWT) for the host's current appraisal; verify
    /// it with the keys at `/.well-known/jwks.json`.
    Ear {
        /// Host name.
        name: String,
        /// A nonce to echo in the token (8 to 64 bytes, base64url without padding).
        #[arg(long)]
        nonce: Option<String>,
    },
}

/// Run `vouch hosts ...`.
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
    let client = AdminClient::new(&args.url, &ca, &token)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match args.command {
            Cmd::List { json } => {
                let hosts = client.hosts().await?;
                if json {
                    println!("{}", serde_json::to_string(&hosts)?);
                } else {
                    print_hosts(&hosts);
                }
            }
            Cmd::Show { name, json } => {
                let h = client.host(&name).await?;
                if json {
                    println!("{}", serde_json::to_string(&h)?);
                } else {
                    print_hosts(std::slice::from_ref(&h.summary));
                    println!("AK name: {}", h.ak_name);
                    if let Some(c) = &h.ek_certificate {
                        println!("EK certificate: {c}");
                    }
                    if h.ek_override {
                        println!("EK override: yes (enrolled without a certificate chain)");
                    }
                    let mut t = Table::new();
                    t.load_preset(UTF8_FULL_CONDENSED)
                        .set_header(["at", "status", "boots", "reasons"]);
                    for r in &h.history {
                        t.add_row([
                            r.at.clone(),
                            r.status.to_string(),
                            r.reset_count.map_or_else(String::new, |c| c.to_string()),
                            r.reasons.join("; "),
                        ]);
                    }
                    println!("{t}");
                }
            }
            Cmd::Approve { name } => print_hosts(&[client.approve(&name).await?]),
            Cmd::Attest { name } => print_hosts(&[client.attest(&name).await?]),
            Cmd::Remove { name } => print_hosts(&[client.remove(&name).await?]),
            Cmd::Ear { name, nonce } => println!("{}", client.ear(&name, nonce.as_deref()).await?),
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_hosts(hosts: &[HostSummary]) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["name", "status", "last attestation", "TPM", "reasons"]);
    for h in hosts {
        t.add_row([
            h.name.clone(),
            h.status.to_string(),
            h.last_attestation.clone().unwrap_or_default(),
            h.tpm_manufacturer.clone().unwrap_or_default(),
            h.reasons.join("\n"),
        ]);
    }
    println!("{t}");
}
