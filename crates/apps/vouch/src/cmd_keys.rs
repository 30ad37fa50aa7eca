//! `vouch keys rotate-ear`: a new EAR signing key for a running verifier; the old one stays in
//! `/.well-known/jwks.json` (and its tokens verifiable) for the grace period. Audited.

use std::process::ExitCode;

use clap::Subcommand;

use crate::conn::{Conn, block_on};

/// Arguments of `vouch keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Rotate the EAR signing key.
    RotateEar {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Run `vouch keys ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        Cmd::RotateEar { json } => {
            let r = block_on(async { Ok(client.rotate_ear_key().await?) })?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "EAR signing key {} (was {}); published: {}",
                    r.kid,
                    r.previous_kid,
                    r.published.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
