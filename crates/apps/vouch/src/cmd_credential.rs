//! `vouch credential make`: TPM2_MakeCredential on the verifier side, in the file format
//! `tpm2_activatecredential -i` reads.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use vouch_tpm2::credential::{EkPublic, make_credential};

use crate::keyfile::{KeyFile, point_xy, read_key};

/// Arguments of `vouch credential`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Wrap a secret for an AK name under an EK; only that TPM can recover it.
    Make(MakeArgs),
}

#[derive(Debug, clap::Args)]
struct MakeArgs {
    /// The EK public key: TPM2B_PUBLIC (`tpm2_createek -u`) or PEM/DER SubjectPublicKeyInfo
    /// (from the EK certificate; a TCG default EK template is then assumed).
    #[arg(long)]
    ek: PathBuf,
    /// The AK public area (TPM2B_PUBLIC); its name is computed here.
    #[arg(long, conflicts_with = "ak_name")]
    ak: Option<PathBuf>,
    /// The AK name in hex (as `tpm2_createak -n` writes it, hex-encoded).
    #[arg(long)]
    ak_name: Option<String>,
    /// File holding the secret (at most the EK name algorithm's digest size).
    #[arg(long)]
    secret: PathBuf,
    /// Output file (tpm2-tools credential format).
    #[arg(long, short = 'o')]
    out: PathBuf,
}

/// Run `vouch credential ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::Make(m) => make(&m),
    }
}

fn make(a: &MakeArgs) -> anyhow::Result<ExitCode> {
    let ek_bytes =
        std::fs::read(&a.ek).with_context(|| format!("cannot read {}", a.ek.display()))?;
    let mut owned = Vec::new();
    let ek = match read_key(&ek_bytes, &mut owned)? {
        KeyFile::Tpm(area) => EkPublic::from_public_area(&area)?,
        KeyFile::Rsa { n, e } => {
            let exponent = e.iter().skip_while(|b| **b == 0).try_fold(0u32, |acc, b| {
                acc.checked_mul(256).map(|v| v | u32::from(*b))
            });
            let exponent = exponent.context("RSA exponent too large")?;
            EkPublic::rsa_default_template(&n, exponent)?
        }
        KeyFile::Ecc { curve, point } => {
            let (x, y) = point_xy(curve, &point)?;
            EkPublic::ecc_default_template(curve, x, y)?
        }
    };
    let name = match (&a.ak, &a.ak_name) {
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut owned_ak = Vec::new();
            match read_key(&bytes, &mut owned_ak)? {
                KeyFile::Tpm(area) => area.name(),
                _ => bail!("--ak must be a TPM public area, so its name can be computed"),
            }
        }
        (None, Some(h)) => {
            hex::decode(h.trim()).map_err(|e| anyhow!("--ak-name is not hex: {e}"))?
        }
        (None, None) => bail!("give --ak or --ak-name"),
    };
    let secret =
        std::fs::read(&a.secret).with_context(|| format!("cannot read {}", a.secret.display()))?;
    let blob = make_credential(&ek, &name, &secret)?;
    std::fs::write(&a.out, blob.to_tpm2_tools()?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    Ok(ExitCode::SUCCESS)
}
