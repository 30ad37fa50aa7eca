//! `vouch demo`: a verifier on SQLite and a simulated fleet, with two hosts tampered with and
//! caught.
//!
//! Everything runs for real except the TPMs: the verifier is `vouch serve`'s code on an
//! HTTPS loopback port with a SQLite file in a temporary directory; every host runs the real
//! agent state machine against a simulated TPM (`vouch-sim`, real TPM 2.0 wire structures)
//! persisted in its own directory, exactly what `vouch agent --tpm sim:DIR` opens. Each TPM
//! "boots" by extending a real firmware event log into its PCRs. Then one host's firmware
//! measurement changes (a modified BIOS volume) and another boots an unknown bootloader.

#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "demo orchestration over small, bounded host counts and offsets checked by get()"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use vouch_agent::{Agent, AgentConfig};
use vouch_api::{AdminClient, HostStatus, HostSummary};
use vouch_sim::{KeyPool, SimCa, SimTpm};
use vouch_tcglog::{EventLog, EventType};
use vouch_tpm::TpmSpec;

/// Real firmware logs the simulated hosts boot from: three platform cohorts.
pub(crate) const LOGS: [(&str, &[u8]); 3] = [
    ("qemu-ovmf", include_bytes!("../demo/qemu-ubuntu2004-1.bin")),
    (
        "gce-shielded-vm",
        include_bytes!("../demo/gce-rhel8-sb.bin"),
    ),
    (
        "supermicro",
        include_bytes!("../demo/supermicro-xcat-2.bin"),
    ),
];

/// Arguments of `vouch demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of simulated hosts.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(3..=500))]
    hosts: u32,
    /// Attestation interval in seconds.
    #[arg(long, default_value_t = 3)]
    interval: u64,
    /// End with one JSON summary on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
    /// Keep the demo's directory (verifier data, simulated TPMs) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

/// Run the demo.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if std::env::var_os("RUST_LOG").is_none() {
        // Keep the demo's own progress readable: only warnings from the services.
        tracing_init_quiet();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo(args))
}

fn tracing_init_quiet() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}

macro_rules! say {
    ($start:expr, $($arg:tt)*) => {
        eprintln!("[{:>5.1}s] {}", $start.elapsed().as_secs_f64(), format!($($arg)*))
    };
}

async fn demo(args: Args) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let tmp = tempfile::Builder::new().prefix("vouch-demo-").tempdir()?;
    let root = tmp.path().to_owned();
    let n = usize::try_from(args.hosts)?;
    let interval = Duration::from_secs(args.interval.max(1));

    say!(
        start,
        "preparing {n} simulated hosts in {} (3 platform cohorts, real firmware logs)",
        root.display()
    );
    let ca = Arc::new(SimCa::generate()?);
    let roots = root.join("ek-roots");
    std::fs::create_dir_all(&roots)?;
    std::fs::write(roots.join("vouch-sim-ca.pem"), ca.cert_pem())?;
    let keys =
        tokio::task::spawn_blocking(move || KeyPool::generate(n.saturating_mul(2))).await??;
    let mut hosts = Vec::with_capacity(n);
    for i in 0..n {
        let (cohort, log) = LOGS[i % LOGS.len()];
        let name = format!("{cohort}-{:02}", i / LOGS.len() + 1);
        let dir = root.join("hosts").join(&name);
        let ek = keys.key(2 * i).context("key pool")?.clone();
        let ak = keys.key(2 * i + 1).context("key pool")?.clone();
        let mut tpm = SimTpm::builder()
            .ca(ca.clone())
            .ek_key(ek)
            .ak_key(ak)
            .create_dir(&dir.join("tpm"))?;
        tpm.boot_with_event_log(log)?;
        hosts.push((name, dir, cohort));
    }

    let data_dir = root.join("verifier");
    let mut config =
        vouch_verifier::ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), data_dir.clone());
    config.ek_roots = Some(roots);
    config.interval = interval;
    config.long_poll = interval;
    config.auto_approve = vec!["name=*".parse()?];
    // Every simulated host enrols at once from 127.0.0.1: lift the per-source enrolment
    // limits a real site keeps (hosts behind one address enrolling together).
    config.enrol_rate = 10_000;
    config.max_pending_per_source = 100_000;
    let server = vouch_verifier::serve(config).await?;
    let url = format!("https://{}", server.local_addr());
    say!(
        start,
        "verifier listening on {url} (SQLite in {})",
        data_dir.display()
    );
    let ca_pem = std::fs::read(data_dir.join("ca.pem"))?;
    let token = std::fs::read_to_string(data_dir.join("admin.token"))?;
    let admin = AdminClient::new(&url, &ca_pem, token.trim())?;

    let mut agents = Vec::new();
    for (name, dir, _) in &hosts {
        let tpm_dir = dir.join("tpm");
        let tpm = vouch_tpm::open(&TpmSpec::Sim(tpm_dir.clone()), &dir.join("agent"))?;
        let config = AgentConfig {
            verifier: url.clone(),
            verifier_ca_pem: ca_pem.clone(),
            name: name.clone(),
            labels: BTreeMap::new(),
            event_log: tpm_dir.join("binary_bios_measurements"),
            state_dir: dir.join("agent"),
            max_attestations: None,
        };
        let mut agent = Agent::new(config, tpm)?;
        agents.push(tokio::spawn(async move { agent.run().await }));
    }
    say!(
        start,
        "{n} agents started: enrolling (EK certificate, MakeCredential/ActivateCredential), then attesting every {}s",
        interval.as_secs()
    );

    let all_trusted = wait_for(&admin, &start, Duration::from_secs(90), |hs| {
        hs.len() == n && hs.iter().all(|h| h.status == HostStatus::Trusted)
    })
    .await
    .context("the fleet did not become trusted")?;
    say!(start, "all {} hosts trusted", all_trusted.len());

    // Tamper with two hosts: their TPMs reboot with a changed measurement, exactly as a
    // modified BIOS volume or a swapped bootloader would extend it.
    let bios = hosts
        .iter()
        .find(|h| h.2 == "qemu-ovmf")
        .context("no qemu host")?;
    let boot = hosts
        .iter()
        .rev()
        .find(|h| h.2 == "gce-shielded-vm")
        .context("no gce host")?;
    tamper(
        &bios.1,
        0,
        &[
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB,
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
            EventType::EV_S_CRTM_VERSION,
        ],
    )?;
    say!(
        start,
        "TAMPER {}: rebooted with a modified firmware volume (PCR 0)",
        bios.0
    );
    tamper(&boot.1, 4, &[EventType::EV_EFI_BOOT_SERVICES_APPLICATION])?;
    say!(
        start,
        "TAMPER {}: rebooted into an unknown bootloader (PCR 4)",
        boot.0
    );
    let tampered_at = Instant::now();
    let names = [bios.0.clone(), boot.0.clone()];
    let caught = wait_for(
        &admin,
        &start,
        interval * 2 + Duration::from_secs(5),
        |hs| {
            names.iter().all(|n| {
                hs.iter()
                    .any(|h| &h.name == n && h.status == HostStatus::Untrusted)
            })
        },
    )
    .await
    .context("tampered hosts were not caught in time")?;
    let took = tampered_at.elapsed();
    for h in caught.iter().filter(|h| h.status == HostStatus::Untrusted) {
        say!(start, "CAUGHT {} after {:.1}s:", h.name, took.as_secs_f64());
        for r in &h.reasons {
            eprintln!("           - {r}");
        }
    }
    let within = took <= interval * 2;
    say!(
        start,
        "both tampered hosts caught within {:.1}s ({} two intervals of {}s)",
        took.as_secs_f64(),
        if within { "within" } else { "NOT within" },
        interval.as_secs()
    );

    for a in &agents {
        a.abort();
    }
    server.shutdown().await;
    let summary = json!({
        "hosts": caught.len(),
        "trusted": caught.iter().filter(|h| h.status == HostStatus::Trusted).count(),
        "untrusted": caught.iter().filter(|h| h.status == HostStatus::Untrusted)
            .map(|h| json!({"host": h.name, "reasons": h.reasons})).collect::<Vec<_>>(),
        "unreachable": caught.iter().filter(|h| h.status == HostStatus::Unreachable).count(),
    });
    if args.json {
        println!("{summary}");
    } else {
        say!(start, "done: {}", summary);
    }
    if args.keep {
        let kept = tmp.keep();
        say!(start, "kept {}", kept.display());
    }
    Ok(if within {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Poll the fleet until `done` holds, printing progress when the status counts change.
async fn wait_for(
    admin: &AdminClient,
    start: &Instant,
    timeout: Duration,
    done: impl Fn(&[HostSummary]) -> bool,
) -> anyhow::Result<Vec<HostSummary>> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let hosts = admin.hosts().await?;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for h in &hosts {
            *counts.entry(h.status.as_str()).or_default() += 1;
        }
        let line = counts
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        if line != last {
            say!(start, "fleet: {line}");
            last = line;
        }
        if done(&hosts) {
            return Ok(hosts);
        }
        if Instant::now() > deadline {
            bail!("timed out after {}s; fleet: {last}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reboot the simulated TPM in `host_dir` with its event log changed: the first event of one
/// of `types` on `pcr` gets new digests (in every bank), as a changed component would measure.
fn tamper(host_dir: &Path, pcr: u32, types: &[EventType]) -> anyhow::Result<()> {
    let tpm_dir: PathBuf = host_dir.join("tpm");
    let mut tpm = SimTpm::open_dir(&tpm_dir)?;
    let mut log = tpm.event_log().to_vec();
    let parsed = EventLog::parse(&log)?;
    let mut events = Vec::new();
    for ev in parsed.events() {
        events.push(ev?);
    }
    // The first event of the most preferred type on that PCR.
    let target = types.iter().find_map(|t| {
        events
            .iter()
            .find(|ev| ev.pcr() == pcr && ev.event_type() == *t)
            .map(|ev| {
                let digests: Vec<Vec<u8>> = ev
                    .digests()
                    .iter()
                    .filter_map(|d| d.digest())
                    .map(|d| d.as_bytes().to_vec())
                    .collect();
                (ev.offset(), ev.data_offset(), digests)
            })
    });
    let (from, to, digests) = target.context("no event to tamper with")?;
    for d in digests {
        let header = log.get(from..to).context("event header")?;
        let at = header
            .windows(d.len())
            .position(|w| w == d)
            .context("digest not found")?;
        let alg = match d.len() {
            20 => vouch_tpm2::HashAlg::Sha1,
            32 => vouch_tpm2::HashAlg::Sha256,
            48 => vouch_tpm2::HashAlg::Sha384,
            _ => vouch_tpm2::HashAlg::Sha512,
        };
        let changed = alg.hash_parts(&[&d, b"modified by the vouch demo"]);
        log.splice(
            from + at..from + at + d.len(),
            changed.as_bytes().iter().copied(),
        );
    }
    tpm.boot_with_event_log(&log)?;
    Ok(())
}
