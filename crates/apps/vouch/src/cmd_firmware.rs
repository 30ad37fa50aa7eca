//! `vouch firmware volumes IMAGE` and `vouch firmware catalog`: the firmware volumes of a UEFI
//! image (through LZMA-compressed sections, [`vouch_fv`]) with the digests a measured boot
//! records for them, and a catalogue naming firmware builds by those digests, which
//! `vouch serve --firmware-catalog` and `vouch eventlog state --firmware-catalog` use to name
//! the build a log booted.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use vouch_tcglog::{FirmwareCatalog, KnownFirmware, KnownVolume};

/// Arguments of `vouch firmware`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every firmware volume in an image, nested ones included, with its digests.
    Volumes {
        /// The image (e.g. /usr/share/OVMF/OVMF_CODE_4M.fd).
        image: PathBuf,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Add a build to a catalogue file (created if missing; a build of the same name is
    /// replaced): its name and the digests of every volume in its images.
    Catalog {
        /// The build's name (`OVMF 2022.11-6+deb12u2`).
        #[arg(long)]
        name: String,
        /// The catalogue file.
        #[arg(long)]
        out: PathBuf,
        /// The images.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

fn read_image(path: &PathBuf) -> anyhow::Result<vouch_fv::Image> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    vouch_fv::volumes(&bytes).with_context(|| format!("{}", path.display()))
}

/// Run `vouch firmware ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::Volumes { image, json } => {
            let found = read_image(&image)?;
            if json {
                println!("{}", serde_json::to_string(&found)?);
                return Ok(ExitCode::SUCCESS);
            }
            for v in &found.volumes {
                println!(
                    "{:indent$}{}  length {:#x}  sha256:{}",
                    "",
                    v.path,
                    v.length,
                    v.sha256,
                    indent = v.depth.saturating_mul(2)
                );
            }
            for s in &found.skipped {
                println!("skipped {}: {}", s.path, s.reason);
            }
        }
        Cmd::Catalog { name, out, images } => {
            let mut catalog: FirmwareCatalog = if out.exists() {
                let bytes = std::fs::read(&out)
                    .with_context(|| format!("cannot read {}", out.display()))?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a firmware catalogue", out.display()))?
            } else {
                FirmwareCatalog::default()
            };
            let mut volumes = Vec::new();
            let mut sources = Vec::new();
            for path in &images {
                for v in read_image(path)?.volumes {
                    volumes.push(KnownVolume {
                        length: v.length,
                        sha1: v.sha1,
                        sha256: v.sha256,
                        sha384: v.sha384,
                    });
                }
                sources.push(path.file_name().map_or_else(
                    || path.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                ));
            }
            let n = volumes.len();
            catalog.insert(KnownFirmware {
                name: name.clone(),
                source: Some(sources.join(", ")),
                volumes,
            });
            std::fs::write(&out, serde_json::to_vec_pretty(&catalog)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{name}: {n} volume(s) in {} ({} build(s) catalogued)",
                out.display(),
                catalog.firmware.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
