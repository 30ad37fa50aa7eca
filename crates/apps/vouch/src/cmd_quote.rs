//! `vouch quote verify`: check a TPM 2.0 quote made by `tpm2_quote`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use serde_json::json;
use vouch_tpm2::tpm2_tools::parse_pcrs_file;
use vouch_tpm2::{AkVerifier, Attest, Attested, verify_quote};

use crate::keyfile::{KeyFile, read_key};

/// Arguments of `vouch quote`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Verify a quote: signature over the raw attestation, nonce, PCR digest. Exit 0 only if
    /// every check passes.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The AK public key: TPM2B_PUBLIC (`tpm2_createak -u`, `tpm2_readpublic -o`), TPMT_PUBLIC,
    /// or PEM/DER SubjectPublicKeyInfo (`tpm2_readpublic -f pem`; TPM attributes then unknown).
    #[arg(long)]
    ak: PathBuf,
    /// The TPMS_ATTEST the TPM signed (`tpm2_quote -m`).
    #[arg(long)]
    message: PathBuf,
    /// The TPMT_SIGNATURE (`tpm2_quote -s`).
    #[arg(long)]
    signature: PathBuf,
    /// The PCR values (`tpm2_quote -o`, serialized or values format).
    #[arg(long)]
    pcrs: PathBuf,
    /// The nonce the quote must carry, in hex (the `-q` given to `tpm2_quote`).
    #[arg(long)]
    nonce: String,
    /// A TCG event log that must explain the quoted boot PCRs (0-9 and 14, plus any other
    /// quoted PCR the log extends): exit non-zero, naming each PCR that disagrees, if it does not.
    #[arg(long)]
    eventlog: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// PCRs the pre-OS and boot-loader measurements own (TCG PC Client PFP §3.3.4): a UEFI event
/// log speaks for them even where it logs nothing (they must then hold their reset value).
const BOOT_LOG_PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/// Run `vouch quote ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::Verify(v) => verify(&v),
    }
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn verify(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let result = check(a);
    match (&result, a.json) {
        (Ok(report), true) => println!("{report}"),
        (Ok(report), false) => {
            println!("quote OK");
            for (k, v) in report.as_object().into_iter().flatten() {
                if k != "pcrs" {
                    println!(
                        "  {k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    );
                }
            }
        }
        (Err(e), true) => {
            println!("{}", json!({"valid": false, "error": format!("{e:#}")}));
        }
        (Err(_), false) => {}
    }
    result.map(|_| ExitCode::SUCCESS)
}

fn check(a: &VerifyArgs) -> anyhow::Result<serde_json::Value> {
    let ak_bytes = read(&a.ak)?;
    let msg = read(&a.message)?;
    let sig = read(&a.signature)?;
    let pcr_bytes = read(&a.pcrs)?;
    let nonce = hex::decode(a.nonce.trim().trim_start_matches("0x"))
        .map_err(|e| anyhow!("--nonce is not hex: {e}"))?;
    let mut owned = Vec::new();
    let (verifier, ak_name) = match read_key(&ak_bytes, &mut owned)? {
        KeyFile::Tpm(area) => (AkVerifier::new(&area)?, Some(hex::encode(area.name()))),
        KeyFile::Rsa { n, e } => (AkVerifier::from_bare_rsa(&n, &e)?, None),
        KeyFile::Ecc { curve, point } => (AkVerifier::from_bare_ecc(curve, &point)?, None),
    };
    // The selection inside the quote tells how to read a raw `values` PCR file. It is only a
    // reading aid: verify_quote re-decodes and checks everything.
    let selection = Attest::decode(&msg).ok().and_then(|at| match at.attested {
        Attested::Quote { selection, .. } => Some(selection),
        _ => None,
    });
    let pcrs = parse_pcrs_file(&pcr_bytes, selection.as_ref())
        .with_context(|| format!("cannot read PCR values from {}", a.pcrs.display()))?;
    let q = verify_quote(&verifier, &msg, &sig, &nonce, &pcrs)?;
    let event_log = match &a.eventlog {
        None => None,
        Some(path) => Some(check_log(path, &q.pcrs)?),
    };
    let mut banks = serde_json::Map::new();
    for (bank, index, value) in q.pcrs.iter() {
        let entry = banks.entry(bank.name()).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(index.to_string(), json!(value.to_hex()));
        }
    }
    Ok(json!({
        "valid": true,
        "ak": verifier.describe(),
        "ak_name": ak_name,
        "scheme": q.scheme,
        "hash": q.hash.name(),
        "nonce": hex::encode(&nonce),
        "clock": q.clock_info.clock,
        "reset_count": q.clock_info.reset_count,
        "restart_count": q.clock_info.restart_count,
        "safe": q.clock_info.safe,
        "firmware_version": format!("{:#018x}", q.firmware_version),
        "pcr_count": q.selection.count(),
        "pcrs": banks,
        "event_log": event_log,
    }))
}

/// Replay the log and require it to explain the quoted boot PCRs.
fn check_log(path: &PathBuf, quoted: &vouch_tpm2::PcrValues) -> anyhow::Result<serde_json::Value> {
    let bytes = read(path)?;
    let log = vouch_tcglog::EventLog::parse(&bytes)
        .with_context(|| format!("cannot read event log {}", path.display()))?;
    let replay = vouch_tcglog::replay(&log)
        .with_context(|| format!("cannot replay event log {}", path.display()))?;
    let mut covered = vouch_tpm2::PcrValues::new();
    for (bank, index, value) in quoted.iter() {
        if BOOT_LOG_PCRS.contains(&index) || replay.pcrs().get(bank, index).is_some() {
            covered.insert(index, *value);
        }
    }
    vouch_tcglog::compare_with_quote(&log, &replay, &covered)?;
    let mut checked: Vec<String> = covered.iter().map(|(b, i, _)| format!("{b}:{i}")).collect();
    checked.dedup();
    Ok(json!({"matches": true, "event_count": replay.event_count(), "pcrs_checked": checked}))
}
