//! `vouch fleet ima-triage [--json]`: binaries unknown to the IMA runtime policy, grouped per
//! cohort (label `cohort`, else `role`, else `all`) and read as a likely update (on at least
//! max(2, ceil(5%)) of the cohort's hosts), spreading, or isolated (one host: likely tampering).
//!
//! Connection settings as for `vouch hosts`: `VOUCH_URL`, `VOUCH_TOKEN`, `VOUCH_CA`. The hosts
//! (with their labels and current reasons) are fetched with the admin API and grouped by
//! [`vouch_verifier::ima_fleet::triage`], the function behind `GET /api/v1/ima/triage`:
//! `--json` prints the same object that route returns.

use std::process::ExitCode;

use vouch_verifier::ima_fleet::{self, HostInput};

/// Arguments of `vouch fleet ima-triage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: crate::conn::Conn,
    /// Print exactly one JSON object (as `GET /api/v1/ima/triage` returns) on stdout.
    #[arg(long)]
    json: bool,
}

/// Run `vouch fleet ima-triage`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let hosts = crate::conn::block_on(async { Ok(client.hosts().await?) })?;
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
