//! `vouch ekcert`: parse a TPM EK certificate and validate its chain to the vendor roots.
//!
//! Stable contract of `vouch ekcert verify CERT [--roots DIR] [--json]`:
//! * exit 0 only when the chain validates; otherwise a one-line reason on stderr and exit 1;
//! * `--json` prints exactly one JSON object on stdout, success or not, with at least the keys
//!   `valid`, `manufacturer`, `model`, `version`, `subject`, `issuer`, `serial`, `not_before`,
//!   `not_after`, `expired`, `chain` (`[{subject, sha256}]`), `padding_bytes`, `error`.
//!
//! Expiry is reported (`expired`, per-link flags), never a reason to fail: see `vouch_x509`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use vouch_x509::{ChainLink, EkCert, EkCertError, MAX_CERT_LEN, RootStore, VerifiedChain};

/// Arguments of `vouch ekcert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Parse an EK certificate (DER, NV-padded DER or PEM) and validate its chain to a trust anchor.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The certificate file.
    cert: PathBuf,
    /// A directory of extra trust anchors (.der/.cer/.crt/.pem files), added to the bundled vendor roots.
    #[arg(long, value_name = "DIR")]
    roots: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify(v) => verify(&v),
    }
}

/// One chain element in the report.
#[derive(Debug, Serialize)]
struct LinkReport {
    subject: String,
    sha256: String,
    not_before: String,
    not_after: String,
    expired: bool,
    not_yet_valid: bool,
    trust_anchor: bool,
}

impl From<&ChainLink> for LinkReport {
    fn from(l: &ChainLink) -> Self {
        Self {
            subject: l.subject.clone(),
            sha256: l.sha256.clone(),
            not_before: l.not_before.rfc3339.clone(),
            not_after: l.not_after.rfc3339.clone(),
            expired: l.expired,
            not_yet_valid: l.not_yet_valid,
            trust_anchor: l.trust_anchor,
        }
    }
}

/// The `--json` object.
#[derive(Debug, Default, Serialize)]
struct Report {
    valid: bool,
    manufacturer: Option<String>,
    manufacturer_id: Option<String>,
    model: Option<String>,
    version: Option<String>,
    subject: Option<String>,
    issuer: Option<String>,
    serial: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    expired: Option<bool>,
    not_yet_valid: Option<bool>,
    public_key: Option<String>,
    ek_eku: Option<bool>,
    sha256: Option<String>,
    chain: Vec<LinkReport>,
    padding_bytes: Option<usize>,
    error: Option<String>,
}

impl Report {
    fn with_cert(cert: &EkCert, now: i64) -> Self {
        let tpm = cert.tpm();
        let m = tpm.manufacturer.as_ref();
        let validity = cert.validity_at(now);
        Self {
            manufacturer: m.map(|m| {
                m.name.map_or_else(
                    || m.code.clone().unwrap_or_else(|| m.raw.clone()),
                    str::to_owned,
                )
            }),
            manufacturer_id: m.map(|m| m.raw.clone()),
            model: tpm.model.clone(),
            version: tpm.version.clone(),
            subject: Some(cert.subject().as_str().to_owned()),
            issuer: Some(cert.issuer().as_str().to_owned()),
            serial: Some(cert.serial_hex()),
            not_before: Some(cert.not_before().rfc3339.clone()),
            not_after: Some(cert.not_after().rfc3339.clone()),
            expired: Some(validity.expired),
            not_yet_valid: Some(validity.not_yet_valid),
            public_key: Some(cert.ek_public_key().describe()),
            ek_eku: Some(cert.has_ek_eku()),
            sha256: Some(cert.sha256_hex()),
            padding_bytes: Some(cert.padding_bytes()),
            ..Self::default()
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn read_cert(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .len();
    if len > MAX_CERT_LEN as u64 {
        anyhow::bail!(
            "{}: {len} bytes exceeds the {MAX_CERT_LEN}-byte limit for a certificate",
            path.display()
        );
    }
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn store(roots: Option<&Path>) -> Result<RootStore, EkCertError> {
    let mut store = RootStore::bundled()?;
    if let Some(dir) = roots {
        store.add_dir(dir)?;
    }
    Ok(store)
}

/// Parse and verify; the report is filled as far as the work got.
fn evaluate(args: &VerifyArgs, now: i64) -> (Report, Option<VerifiedChain>) {
    let bytes = match read_cert(&args.cert) {
        Ok(b) => b,
        Err(e) => {
            return (
                Report {
                    error: Some(format!("{e:#}")),
                    ..Report::default()
                },
                None,
            );
        }
    };
    let cert = match EkCert::parse(&bytes) {
        Ok(c) => c,
        Err(e) => {
            return (
                Report {
                    error: Some(format!("{}: {e}", args.cert.display())),
                    ..Report::default()
                },
                None,
            );
        }
    };
    let mut report = Report::with_cert(&cert, now);
    let store = match store(args.roots.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(format!("loading roots: {e}"));
            return (report, None);
        }
    };
    match store.verify(&cert, &[], now) {
        Ok(chain) => {
            report.valid = true;
            report.chain = chain.links().iter().map(LinkReport::from).collect();
            (report, Some(chain))
        }
        Err(e) => {
            report.error = Some(e.to_string());
            (report, None)
        }
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let (report, _chain) = evaluate(args, now_unix());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    match &report.error {
        None if report.valid => Ok(ExitCode::SUCCESS),
        reason => {
            eprintln!(
                "vouch: ekcert: {}",
                reason.as_deref().unwrap_or("chain did not validate")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_summary(r: &Report) {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    if r.subject.is_none() {
        return;
    }
    let manufacturer = match (&r.manufacturer, &r.manufacturer_id) {
        (Some(name), Some(id)) => format!("{name} ({id})"),
        _ => "-".to_owned(),
    };
    println!("manufacturer:  {manufacturer}");
    println!("model:         {}", show(&r.model));
    println!("version:       {}", show(&r.version));
    let subject = show(&r.subject);
    println!(
        "subject:       {}",
        if subject.is_empty() {
            "(empty)".to_owned()
        } else {
            subject
        }
    );
    println!("issuer:        {}", show(&r.issuer));
    println!("serial:        {}", show(&r.serial));
    let flag = match (r.expired, r.not_yet_valid) {
        (Some(true), _) => "  EXPIRED",
        (_, Some(true)) => "  NOT YET VALID",
        _ => "",
    };
    println!(
        "validity:      {} .. {}{flag}",
        show(&r.not_before),
        show(&r.not_after)
    );
    println!("public key:    {}", show(&r.public_key));
    println!(
        "EK EKU:        {}",
        if r.ek_eku == Some(true) { "yes" } else { "no" }
    );
    if r.padding_bytes.is_some_and(|p| p > 0) {
        println!(
            "NV padding:    {} bytes after the DER",
            r.padding_bytes.unwrap_or_default()
        );
    }
    if r.valid {
        println!("chain:         VALID");
        for (depth, link) in r.chain.iter().enumerate() {
            let subject = if link.subject.is_empty() {
                "(empty subject)"
            } else {
                &link.subject
            };
            let mut notes = Vec::new();
            if link.trust_anchor {
                notes.push("trust anchor");
            }
            if link.expired {
                notes.push("expired");
            }
            if link.not_yet_valid {
                notes.push("not yet valid");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" [{}]", notes.join(", "))
            };
            println!("  {depth}: {subject}{notes}\n     sha256 {}", link.sha256);
        }
    } else {
        println!("chain:         INVALID");
    }
}
