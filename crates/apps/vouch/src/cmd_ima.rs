//! `vouch ima`: replay, show and appraise Linux IMA measurement lists; build runtime policies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use vouch_ima::policy::{OwnedRejection, PolicyDocument, RuntimePolicy, Verdict};
use vouch_ima::{Convention, MeasurementList, TemplateData, replay};
use vouch_tpm2::{HashAlg, Hasher};

/// Arguments of `vouch ima`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ConventionArg {
    /// Each bank extends the template data hashed with its own algorithm (Linux >= 5.11).
    PerBank,
    /// Each bank extends the SHA-1 template digest zero-padded (older kernels).
    Sha1Padded,
}

impl From<ConventionArg> for Convention {
    fn from(c: ConventionArg) -> Self {
        match c {
            ConventionArg::PerBank => Self::PerBank,
            ConventionArg::Sha1Padded => Self::Sha1Padded,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay PCR 10 per bank (SHA-1/256/384/512) and check every template hash.
    Replay {
        /// The list: binary_runtime_measurements[_<alg>] or ascii_runtime_measurements.
        file: PathBuf,
        /// One JSON object: {"entry_count": N, "pcr10": {"sha256": "<hex>", ...},
        /// "template_digest_mismatches": [indices]}.
        #[arg(long)]
        json: bool,
        /// How the kernel extends banks other than the template hash's own.
        #[arg(long, value_enum, default_value = "per-bank")]
        convention: ConventionArg,
    },
    /// One line per entry: index, PCR, template, file digest, path, signature key id.
    Show {
        /// The list.
        file: PathBuf,
    },
    /// Appraise every entry against a runtime policy (exit status 2 when any is rejected).
    Check {
        /// The list.
        file: PathBuf,
        /// The policy (JSON, see `vouch ima policy from-dir`).
        #[arg(long)]
        policy: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Build runtime policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Allow the sha256 digest of every regular file under ROOT, at its path below ROOT
    /// (ROOT itself is "/"). Symbolic links are not followed.
    FromDir {
        /// The file tree (an image mounted somewhere, or "/").
        root: PathBuf,
        /// Where to write the policy (JSON).
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
}

/// Run `vouch ima`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (out, code) = match args.command {
        Command::Replay {
            file,
            json,
            convention,
        } => (
            cmd_replay(&file, json, convention.into())?,
            ExitCode::SUCCESS,
        ),
        Command::Show { file } => (cmd_show(&file)?, ExitCode::SUCCESS),
        Command::Check { file, policy, json } => cmd_check(&file, &policy, json)?,
        Command::Policy {
            command: PolicyCommand::FromDir { root, output },
        } => (from_dir(&root, &output)?, ExitCode::SUCCESS),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(code)
}

const BANKS: [HashAlg; 4] = [
    HashAlg::Sha1,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
];

/// Read a list (binary or ASCII) and hand its binary form and template hash algorithm on.
fn with_list<T>(
    path: &Path,
    f: impl FnOnce(&MeasurementList<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (bin, alg) = vouch_ima::load(&bytes).with_context(|| path.display().to_string())?;
    let list = MeasurementList::with_template_hash_alg(&bin, alg);
    f(&list)
}

#[derive(Serialize)]
struct ReplayJson {
    entry_count: u64,
    pcr10: BTreeMap<&'static str, String>,
    template_digest_mismatches: Vec<u64>,
}

fn cmd_replay(path: &Path, json: bool, convention: Convention) -> anyhow::Result<String> {
    with_list(path, |list| {
        let r = replay(list, &BANKS, convention).with_context(|| path.display().to_string())?;
        if let Some(t) = r.truncated {
            // A list read while the kernel appends, or cut short: the complete entries count.
            eprintln!(
                "vouch: warning: {}: list ends in an incomplete entry after {} complete entries: {t}",
                path.display(),
                r.entry_count
            );
        }
        let pcr10: BTreeMap<&'static str, String> = r
            .pcr10
            .values()
            .map(|d| (d.alg().name(), d.to_hex()))
            .collect();
        if json {
            let mut s = serde_json::to_string(&ReplayJson {
                entry_count: r.entry_count,
                pcr10,
                template_digest_mismatches: r.template_digest_mismatches,
            })?;
            s.push('\n');
            return Ok(s);
        }
        let mut s = String::new();
        writeln!(
            s,
            "{} entries, template hashes {}, convention {:?}",
            r.entry_count, r.template_hash_alg, convention
        )?;
        for (bank, hex) in &pcr10 {
            writeln!(s, "PCR 10 {bank:<7} {hex}")?;
        }
        writeln!(s, "violations: {:?}", r.violations)?;
        writeln!(
            s,
            "template digest mismatches: {:?}",
            r.template_digest_mismatches
        )?;
        if !r.other_pcr_entries.is_empty() {
            writeln!(s, "entries for other PCRs: {:?}", r.other_pcr_entries)?;
        }
        Ok(s)
    })
}

fn cmd_show(path: &Path) -> anyhow::Result<String> {
    with_list(path, |list| {
        let mut s = String::new();
        for e in list.entries() {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    writeln!(s, "(list ends: {err})")?;
                    break;
                }
            };
            let t = TemplateData::decode(&e).ok().unwrap_or_default();
            let digest = t
                .digest
                .map_or_else(|| "-".to_owned(), |d| d.to_prefixed_hex());
            let name = t.name.map_or_else(
                || "-".to_owned(),
                |n| String::from_utf8_lossy(n).into_owned(),
            );
            let sig = match t.signature() {
                Some(Ok(sig)) => format!(" sig:{}", sig.key_id_hex()),
                Some(Err(_)) => " sig:(undecodable)".to_owned(),
                None => String::new(),
            };
            let flag = if e.is_violation() {
                " VIOLATION"
            } else if !e.template_hash_matches() {
                " TEMPLATE-HASH-MISMATCH"
            } else {
                ""
            };
            writeln!(
                s,
                "{:>6} {:>2} {:<12} {} {}{}{}",
                e.index(),
                e.pcr(),
                String::from_utf8_lossy(e.template_name()),
                digest,
                name,
                sig,
                flag
            )?;
        }
        Ok(s)
    })
}

#[derive(Serialize)]
struct CheckJson {
    entry_count: u64,
    accepted: u64,
    rejected: Vec<OwnedRejection>,
    template_digest_mismatches: Vec<u64>,
}

fn load_policy(path: &Path) -> anyhow::Result<RuntimePolicy> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: PolicyDocument = serde_json::from_slice(&text)
        .with_context(|| format!("{}: policy JSON", path.display()))?;
    RuntimePolicy::compile(&doc).with_context(|| path.display().to_string())
}

fn cmd_check(path: &Path, policy: &Path, json: bool) -> anyhow::Result<(String, ExitCode)> {
    let policy = load_policy(policy)?;
    with_list(path, |list| {
        let mut report = CheckJson {
            entry_count: 0,
            accepted: 0,
            rejected: Vec::new(),
            template_digest_mismatches: Vec::new(),
        };
        for e in list.entries() {
            let e = match e {
                Ok(e) => e,
                Err(err) if report.entry_count == 0 => {
                    return Err(anyhow::Error::new(err).context(path.display().to_string()));
                }
                Err(err) => {
                    eprintln!(
                        "vouch: warning: {}: list ends in an incomplete entry: {err}",
                        path.display()
                    );
                    break;
                }
            };
            report.entry_count = report.entry_count.saturating_add(1);
            if !e.is_violation() && !e.template_hash_matches() {
                // Its data is not what the TPM measured: no verdict on it can be believed.
                report.template_digest_mismatches.push(e.index());
            }
            match policy.appraise(&e) {
                Verdict::Accepted(_) => report.accepted = report.accepted.saturating_add(1),
                Verdict::Rejected(r) => report.rejected.push((&r).into()),
            }
        }
        let failed = !report.rejected.is_empty() || !report.template_digest_mismatches.is_empty();
        let code = if failed {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
        if json {
            let mut s = serde_json::to_string(&report)?;
            s.push('\n');
            return Ok((s, code));
        }
        let mut s = String::new();
        for r in &report.rejected {
            writeln!(
                s,
                "REJECTED entry {}: {} {}: {}",
                r.index,
                r.path,
                r.digest.as_deref().unwrap_or("(no digest)"),
                r.reason
            )?;
        }
        for i in &report.template_digest_mismatches {
            writeln!(s, "TEMPLATE HASH MISMATCH entry {i}")?;
        }
        writeln!(
            s,
            "{} entries: {} accepted, {} rejected, {} template hash mismatches",
            report.entry_count,
            report.accepted,
            report.rejected.len(),
            report.template_digest_mismatches.len()
        )?;
        Ok((s, code))
    })
}

fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Hasher::new(HashAlg::Sha256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    let d = h.finish();
    <[u8; 32]>::try_from(d.as_bytes()).context("sha256 digest length")
}

fn from_dir(root: &Path, output: &Path) -> anyhow::Result<String> {
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in rd {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let ft = entry.file_type()?;
            let p = entry.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                let name = format!("/{}", rel.to_string_lossy());
                files.push((name, sha256_file(&p)?));
            }
        }
    }
    let n = files.len();
    let doc = PolicyDocument::from_sha256_files(files);
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    std::fs::write(output, text).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(format!(
        "{n} files from {} -> {}\n",
        root.display(),
        output.display()
    ))
}
