//! `vouch loadgen`: load-test a running verifier with simulated hosts over HTTPS.
//!
//! Each host is the real agent state machine over an in-memory simulated TPM booted from a real
//! firmware log, so every attestation the verifier sees is a real quote, log and replay. The
//! simulated EK certificates come from a CA kept in `--dir`; start the verifier with
//! `--ek-roots DIR/roots` and `--auto-approve 'name=load-*'`. Keys are cached in `--dir`, so
//! repeated runs skip RSA key generation.

#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "load orchestration over small, bounded counts"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use vouch_agent::{Agent, AgentConfig};
use vouch_sim::{KeyPool, SimCa, SimTpm};

use crate::cmd_demo::LOGS;

/// Arguments of `vouch loadgen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Working directory: simulated CA (`roots/` for the verifier's --ek-roots) and key cache.
    #[arg(long)]
    dir: PathBuf,
    /// Number of simulated hosts.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Verifier URL; without it, only prepare `--dir` (CA and keys) and exit.
    #[arg(long)]
    verifier: Option<String>,
    /// The verifier's CA certificate (PEM).
    #[arg(long)]
    verifier_ca: Option<PathBuf>,
    /// Seconds to warm up (enrolment, first attestations) before measuring.
    #[arg(long, default_value_t = 15)]
    warmup: u64,
    /// Seconds to measure.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

fn load_ca(dir: &std::path::Path) -> anyhow::Result<SimCa> {
    let (key, cert) = (dir.join("ca.pk8"), dir.join("ca.der"));
    if key.exists() && cert.exists() {
        return Ok(SimCa::from_parts(
            &std::fs::read(key)?,
            &std::fs::read(cert)?,
        )?);
    }
    let ca = SimCa::generate()?;
    std::fs::write(&key, ca.key_pkcs8())?;
    std::fs::write(&cert, ca.cert_der())?;
    Ok(ca)
}

/// Run `vouch loadgen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(args.dir.join("roots"))?;
    let ca = Arc::new(load_ca(&args.dir)?);
    std::fs::write(
        args.dir.join("roots").join("vouch-sim-ca.der"),
        ca.cert_der(),
    )?;
    let keys = KeyPool::load_or_generate(&args.dir.join("keys"), args.hosts * 2)?;
    let Some(verifier) = args.verifier.clone() else {
        eprintln!(
            "prepared {}: start the verifier with --ek-roots {} --auto-approve 'name=load-*'",
            args.dir.display(),
            args.dir.join("roots").display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let ca_path = args
        .verifier_ca
        .clone()
        .context("--verifier-ca is required with --verifier")?;
    let ca_pem =
        std::fs::read(&ca_path).with_context(|| format!("cannot read {}", ca_path.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let count = Arc::new(AtomicU64::new(0));
        let trusted = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..args.hosts {
            let (_, log) = LOGS[i % LOGS.len()];
            let mut sim = SimTpm::builder()
                .ca(ca.clone())
                .ek_key(keys.key(2 * i).context("key pool")?.clone())
                .ak_key(keys.key(2 * i + 1).context("key pool")?.clone())
                .build()?;
            sim.boot_with_event_log(log)?;
            let state_dir = args.dir.join("agents").join(format!("load-{i:05}"));
            let _ = std::fs::remove_dir_all(&state_dir);
            let log_path = state_dir.join("binary_bios_measurements");
            std::fs::create_dir_all(&state_dir)?;
            std::fs::write(&log_path, log)?;
            let config = AgentConfig {
                verifier: verifier.clone(),
                verifier_ca_pem: ca_pem.clone(),
                name: format!("load-{i:05}"),
                labels: BTreeMap::new(),
                event_log: log_path,
                state_dir,
                max_attestations: None,
            };
            let mut agent = Agent::new(config, Box::new(sim))?;
            let (count, trusted) = (count.clone(), trusted.clone());
            tasks.push(tokio::spawn(async move {
                let mut was_trusted = false;
                loop {
                    match agent.step().await {
                        Ok(Some(outcome)) => {
                            count.fetch_add(1, Ordering::Relaxed);
                            let now = outcome.status == vouch_api::HostStatus::Trusted;
                            if now && !was_trusted {
                                trusted.fetch_add(1, Ordering::Relaxed);
                            }
                            was_trusted = now;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "load agent step failed");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        let (c0, t0) = (count.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let (c1, elapsed) = (count.load(Ordering::Relaxed), t0.elapsed());
        for t in &tasks {
            t.abort();
        }
        let attestations = c1 - c0;
        println!(
            "{}",
            json!({
                "hosts": args.hosts,
                "hosts_trusted": trusted.load(Ordering::Relaxed),
                "seconds": elapsed.as_secs_f64(),
                "attestations": attestations,
                "attestations_per_second": attestations as f64 / elapsed.as_secs_f64(),
            })
        );
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
