//! `vouch tokens create|list|revoke`: API tokens with roles. `reader` reads what a relying
//! party needs (host status, EARs, metrics), `operator` runs the fleet, `admin` also manages
//! tokens, EK overrides and keys. A token is printed once, at creation; the verifier keeps
//! only its SHA-256. Needs an admin token (`VOUCH_TOKEN`).

use std::process::ExitCode;

use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::conn::{Conn, block_on};

/// Arguments of `vouch tokens`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Operator,
    Reader,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create a token; it is printed once (the verifier stores only its hash).
    Create {
        /// Unique name: the actor the audit log records.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// When it stops working (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
        /// One JSON object on stdout (with the token).
        #[arg(long)]
        json: bool,
    },
    /// Every token's name, role and expiry (never the tokens).
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Token name.
        name: String,
    },
}

/// Run `vouch tokens ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        Cmd::Create {
            name,
            role,
            expires,
            json,
        } => {
            let role = match role {
                RoleArg::Admin => "admin",
                RoleArg::Operator => "operator",
                RoleArg::Reader => "reader",
            };
            let req = vouch_api::TokenRequest {
                name,
                role: role.to_owned(),
                expires_at: expires,
            };
            let t = block_on(async { Ok(client.create_token(&req).await?) })?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.token);
                eprintln!(
                    "token {:?} (role {}) created; it is shown only this once",
                    t.info.name, t.info.role
                );
            }
        }
        Cmd::List { json } => {
            let tokens = block_on(async { Ok(client.tokens().await?) })?;
            if json {
                println!("{}", serde_json::to_string(&tokens)?);
            } else {
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(["name", "role", "created", "expires"]);
                for k in &tokens {
                    t.add_row([
                        k.name.clone(),
                        k.role.clone(),
                        k.created_at.clone(),
                        k.expires_at.clone().unwrap_or_else(|| "never".into()),
                    ]);
                }
                println!("{t}");
            }
        }
        Cmd::Revoke { name } => {
            let t = block_on(async { Ok(client.revoke_token(&name).await?) })?;
            println!("token {:?} (role {}) revoked", t.name, t.role);
        }
    }
    Ok(ExitCode::SUCCESS)
}
