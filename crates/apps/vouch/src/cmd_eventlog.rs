//! `vouch eventlog`: show, replay and summarise TCG PC Client firmware event logs.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use vouch_tcglog::{EventLog, MachineState, Replay, TRAILER_PCR};

/// Arguments of `vouch eventlog`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every event: index, PCR, type, digest (sha256, else the first bank) and a summary.
    Show {
        /// The log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements).
        file: PathBuf,
    },
    /// Replay the log: the PCR values it claims, per bank.
    Replay {
        /// The log.
        file: PathBuf,
        /// One JSON object: {"event_count": N, "pcrs": {"sha256": {"0": "<hex>", ...}, ...}}.
        #[arg(long)]
        json: bool,
    },
    /// The machine state the log describes: Secure Boot, keys, boot chain, command line.
    State {
        /// The log.
        file: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Name the firmware build from this catalogue (`vouch firmware catalog`).
        #[arg(long)]
        firmware_catalog: Option<PathBuf>,
    },
}

/// Run `vouch eventlog`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let out = match args.command {
        Command::Show { file } => with_log(&file, show)?,
        Command::Replay { file, json } => with_log(&file, |log| replay(log, json))?,
        Command::State {
            file,
            json,
            firmware_catalog,
        } => {
            let catalog = firmware_catalog
                .map(|p| -> anyhow::Result<vouch_tcglog::FirmwareCatalog> {
                    let bytes = std::fs::read(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    serde_json::from_slice(&bytes)
                        .with_context(|| format!("{} is not a firmware catalogue", p.display()))
                })
                .transpose()?;
            with_log(&file, |log| state(log, json, catalog.as_ref()))?
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn with_log(
    path: &Path,
    f: impl FnOnce(&EventLog<'_>) -> Result<String, vouch_tcglog::TcgLogError>,
) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let log = EventLog::parse(&bytes).with_context(|| path.display().to_string())?;
    f(&log).with_context(|| path.display().to_string())
}

/// One line of at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        let mut t: String = flat.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        flat
    }
}

fn show(log: &EventLog<'_>) -> Result<String, vouch_tcglog::TcgLogError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:>4}  {:<34}  {:<24}  SUMMARY",
        "INDEX", "PCR", "TYPE", "DIGEST"
    );
    for ev in log.events() {
        let ev = ev?;
        let pcr = if ev.pcr() == TRAILER_PCR {
            "-1".to_owned()
        } else {
            ev.pcr().to_string()
        };
        let digest = ev.digests().preferred().map_or_else(String::new, |d| {
            let name = d
                .alg()
                .map_or_else(|| format!("{:#06x}", d.alg_id()), |a| a.name().to_owned());
            let hex = vouch_wire::hex_lower(d.bytes());
            format!("{name}:{}", hex.get(..16).unwrap_or(&hex))
        });
        let _ = writeln!(
            out,
            "{:>5}  {:>4}  {:<34}  {:<24}  {}",
            ev.index(),
            pcr,
            ev.event_type().to_string(),
            digest,
            one_line(&ev.decoded().to_string(), 120)
        );
    }
    Ok(out)
}

#[derive(Serialize)]
struct ReplayJson<'a> {
    event_count: usize,
    pcrs: &'a vouch_tpm2::PcrValues,
}

fn replay(log: &EventLog<'_>, json: bool) -> Result<String, vouch_tcglog::TcgLogError> {
    let r = Replay::from_log(log)?;
    if json {
        let body = ReplayJson {
            event_count: r.event_count(),
            pcrs: r.pcrs(),
        };
        return Ok(serde_json::to_string(&body)
            .map(|s| s + "\n")
            .unwrap_or_default());
    }
    let mut out = String::new();
    let _ = writeln!(out, "events: {}", r.event_count());
    if r.pcr0_locality() != 0 {
        let _ = writeln!(out, "PCR 0 start locality: {}", r.pcr0_locality());
    }
    let _ = writeln!(out, "{:<8} {:>3}  VALUE", "BANK", "PCR");
    for (bank, index, value) in r.pcrs().iter() {
        let _ = writeln!(out, "{:<8} {:>3}  {value}", bank.name(), index);
    }
    Ok(out)
}

fn state(
    log: &EventLog<'_>,
    json: bool,
    catalog: Option<&vouch_tcglog::FirmwareCatalog>,
) -> Result<String, vouch_tcglog::TcgLogError> {
    let mut s = MachineState::from_log(log)?;
    if let Some(c) = catalog {
        s.identify_firmware(log, c);
    }
    if json {
        return Ok(serde_json::to_string_pretty(&s)
            .map(|s| s + "\n")
            .unwrap_or_default());
    }
    let mut out = String::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not measured)".to_owned());
    let _ = writeln!(out, "Secure Boot:      {:?}", s.secure_boot);
    let _ = writeln!(out, "Firmware version: {}", opt(&s.firmware_version));
    if let Some(f) = &s.firmware_identified {
        let _ = writeln!(
            out,
            "Firmware build:   {} (event {} {})",
            f.name, f.event, f.digest
        );
    }
    for (name, db) in [
        ("PK", &s.pk),
        ("KEK", &s.kek),
        ("db", &s.db),
        ("dbx", &s.dbx),
    ] {
        match db {
            None => {
                let _ = writeln!(out, "{name:<4} (not measured)");
            }
            Some(db) => {
                let hashes: usize = db.hashes.values().sum();
                let _ = writeln!(
                    out,
                    "{name:<4} {} certificate(s), {hashes} hash(es)",
                    db.certificates.len()
                );
                for c in &db.certificates {
                    let subject = c.subject.as_deref().unwrap_or("(no subject CN)");
                    let _ = writeln!(out, "       {subject}  sha256:{}", c.sha256);
                }
            }
        }
    }
    let _ = writeln!(out, "Boot chain (PCR 4):");
    for b in &s.boot_chain {
        let path = b.device_path.as_deref().unwrap_or("(loaded from memory)");
        let digest = b
            .digests
            .get("sha256")
            .or_else(|| b.digests.values().next())
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  #{:<4} {:<22} {}  {}",
            b.event,
            format!("{:?}", b.kind),
            digest,
            one_line(path, 100)
        );
    }
    let _ = writeln!(out, "Kernel command line: {}", opt(&s.kernel_cmdline));
    for a in &s.authorities {
        let subject = a
            .certificate
            .as_ref()
            .and_then(|c| c.subject.clone())
            .unwrap_or_default();
        let _ = writeln!(out, "Authority #{:<4} {} {subject}", a.event, a.variable);
    }
    for b in &s.firmware_blobs {
        let d = b.description.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "Firmware blob PCR {} {d} base {:#x} length {:#x}",
            b.pcr, b.base, b.length
        );
    }
    if !s.error_separators.is_empty() {
        let _ = writeln!(out, "ERROR separators in PCRs: {:?}", s.error_separators);
    }
    for (i, e) in &s.undecodable_events {
        let _ = writeln!(out, "Event {i} did not decode: {e}");
    }
    Ok(out)
}
