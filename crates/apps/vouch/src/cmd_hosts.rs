//! `vouch hosts list|show|approve|attest|remove|readmit|clear|ear`: operator commands against `vouch serve`.
//!
//! Connection settings come from the environment (or flags): `VOUCH_URL` (e.g.
//! `https://127.0.0.1:8443`), `VOUCH_TOKEN` (the admin token; `vouch serve` writes the first one
//! to `DATA_DIR/admin.token`) and `VOUCH_CA` (path of `DATA_DIR/ca.pem`).

use std::process::ExitCode;

use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use vouch_api::HostSummary;

/// Arguments of `vouch hosts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: crate::conn::Conn,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every host with its status and reasons.
    List {
        /// One JSON array on stdout (with --all: one object with `hosts`, `pending` and
        /// `refused`).
        #[arg(long)]
        json: bool,
        /// Also removed hosts, pending enrolments and recent refusals, with why.
        #[arg(long)]
        all: bool,
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
    /// Remove a host (its certificate stops working). Its name and TPM stay refused until
    /// `vouch hosts readmit`.
    Remove {
        /// Host name.
        name: String,
    },
    /// Allow one TPM (named by its EK) to enrol under NAME without an EK certificate chain,
    /// until the override expires (audited; such hosts are never approved automatically).
    EkOverride {
        /// Host name.
        name: String,
        /// The EK's TPM name in hex (`tpm2_readpublic -c ek.ctx` prints it as `name:`).
        #[arg(long)]
        ek_name: String,
        /// Why (audited).
        #[arg(long)]
        reason: String,
        /// When the override expires (RFC 3339; default 24 hours, at most 30 days).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Let a removed host (its name and TPM) enrol again; it then waits for approval.
    Readmit {
        /// Host name.
        name: String,
    },
    /// Lift a finding that stays until an operator clears it (a TPM state rollback).
    Clear {
        /// Host name.
        name: String,
        /// Why the finding is acceptable (audited).
        #[arg(long)]
        reason: String,
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
    let client = args.conn.client()?;
    crate::conn::block_on(async move {
        match args.command {
            Cmd::List { json, all: false } => {
                let hosts = client.hosts().await?;
                if json {
                    println!("{}", serde_json::to_string(&hosts)?);
                } else {
                    print_hosts(&hosts);
                }
            }
            Cmd::List { json, all: true } => {
                let hosts = client.all_hosts().await?;
                let view = client.enrolments().await?;
                if json {
                    let out = serde_json::json!({
                        "hosts": hosts, "pending": view.pending, "refused": view.refused,
                    });
                    println!("{out}");
                } else {
                    print_hosts(&hosts);
                    let mut t = Table::new();
                    t.load_preset(UTF8_FULL_CONDENSED)
                        .set_content_arrangement(ContentArrangement::Dynamic)
                        .set_header(["pending enrolment", "source", "expires", "EK chain"]);
                    for p in &view.pending {
                        t.add_row([
                            p.name.clone(),
                            p.source.clone(),
                            p.expires_at.clone(),
                            if p.ek_chain_ok { "ok" } else { "override" }.to_owned(),
                        ]);
                    }
                    println!("{t}");
                    let mut t = Table::new();
                    t.load_preset(UTF8_FULL_CONDENSED)
                        .set_content_arrangement(ContentArrangement::Dynamic)
                        .set_header(["refused", "at", "what", "peer", "why"]);
                    for r in &view.refused {
                        t.add_row([
                            r.name.clone(),
                            r.at.clone(),
                            r.kind.clone(),
                            r.peer.clone(),
                            r.reason.clone(),
                        ]);
                    }
                    println!("{t}");
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
            Cmd::EkOverride {
                name,
                ek_name,
                reason,
                expires,
            } => print_hosts(&[client
                .ek_override(&name, &ek_name, &reason, expires.as_deref())
                .await?]),
            Cmd::Readmit { name } => print_hosts(&[client.readmit(&name).await?]),
            Cmd::Clear { name, reason } => print_hosts(&[client.clear(&name, &reason).await?]),
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
