//! `vouch fleet`: fleet-wide reference values. `triage` reads a running verifier's failing
//! hosts by cause; `ima-triage` its IMA rejections; `simulate` runs the scripted
//! timeline of `vouch-fleetsim` in process: simulated TPMs booted from real event logs,
//! appraised by `vouch-appraisal` through firmware and boot loader rollouts, a deprecation,
//! a revocation and ten tampered hosts.

use std::process::ExitCode;

use clap::Subcommand;
use vouch_fleetsim::{SimConfig, Summary};

/// Arguments of `vouch fleet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scripted fleet timeline on N simulated hosts and print the confusion matrix.
    Simulate(SimulateArgs),
    /// Binaries unknown to the IMA runtime policy, per cohort: likely update or tampering.
    ImaTriage(crate::cmd_fleet_ima::Args),
    /// Failing hosts of a running verifier grouped by cause (update in progress, lifecycle,
    /// isolated), outliers with their cohort context, hosts failing before appraisal.
    Triage(TriageArgs),
}

#[derive(Debug, clap::Args)]
struct TriageArgs {
    #[command(flatten)]
    conn: crate::conn::Conn,
    /// Print exactly one JSON object (as `GET /api/v1/fleet/triage` returns) on stdout.
    #[arg(long)]
    json: bool,
}

fn triage(a: &TriageArgs) -> anyhow::Result<ExitCode> {
    let client = a.conn.client()?;
    let t = crate::conn::block_on(async { Ok(client.fleet_triage().await?) })?;
    if a.json {
        println!("{}", serde_json::to_string(&t)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} host(s), {} appraised by a fleet policy, {} affirming",
        t.hosts, t.appraised, t.affirming
    );
    for g in &t.groups {
        let tag = match g.assessment.as_str() {
            "likely_update" => "UPDATE   ",
            "lifecycle" => "LIFECYCLE",
            _ => "ISOLATED ",
        };
        println!("{tag} {}", g.explanation);
        for c in g.causes.iter().skip(1) {
            println!("          also: {c}");
        }
    }
    if !t.outliers.is_empty() {
        println!("outliers:");
        for o in &t.outliers {
            println!("  {o}");
        }
    }
    if !t.not_appraised.is_empty() {
        println!("failing before appraisal:");
        for n in &t.not_appraised {
            println!("  {} [{}]: {}", n.host, n.status, n.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// Number of simulated hosts (three cohorts).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(60..=20_000))]
    hosts: u32,
    /// Chooses which hosts update, straggle, run the revoked firmware or are tampered with.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print exactly one JSON object (the stable contract) and nothing else on stdout.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Did the engine get everything right?
fn all_right(s: &Summary) -> bool {
    s.false_alarms == 0
        && s.tampered_flagged == s.tampered
        && s.tampered_component_right == s.tampered
        && s.stragglers_flagged == s.stragglers
        && s.revoked_flagged == s.revoked
}

/// Run `vouch fleet`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Simulate(a) => simulate(&a),
        Command::ImaTriage(a) => crate::cmd_fleet_ima::run(a),
        Command::Triage(a) => triage(&a),
    }
}

fn simulate(a: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = SimConfig::new(usize::try_from(a.hosts)?, a.seed);
    if let Some(t) = a.threads {
        cfg.threads = t.max(1);
    }
    let report = vouch_fleetsim::run(&cfg)?;
    let s = report.summary;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        for line in &report.timeline {
            println!("{line}");
        }
        println!();
        println!(
            "hosts {}  legitimately updated {}  false alarms {}",
            s.hosts, s.legit_updated, s.false_alarms
        );
        println!(
            "tampered {}: flagged {}, right component {}",
            s.tampered, s.tampered_flagged, s.tampered_component_right
        );
        println!(
            "stragglers {}: flagged {}   revoked-firmware hosts {}: flagged {}",
            s.stragglers, s.stragglers_flagged, s.revoked, s.revoked_flagged
        );
        println!(
            "{} quotes verified and appraised in {:.1}s",
            report.quotes, report.seconds
        );
    }
    Ok(if all_right(&s) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
