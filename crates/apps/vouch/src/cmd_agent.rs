//! `vouch agent`: enrol this host's TPM and answer the verifier's challenges.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use vouch_agent::{Agent, AgentConfig};
use vouch_tpm::TpmSpec;

/// The kernel's copy of the firmware's measured-boot log.
const SYSFS_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The kernel's IMA measurement list (binary, SHA-1 template hashes).
const SYSFS_IMA_LOG: &str = "/sys/kernel/security/ima/binary_runtime_measurements";

/// Arguments of `vouch agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verifier URL, e.g. https://verifier.example:8443.
    #[arg(long, env = "VOUCH_VERIFIER")]
    verifier: String,
    /// The verifier's CA certificate (PEM): the only CA the agent trusts.
    #[arg(long, env = "VOUCH_VERIFIER_CA")]
    verifier_ca: PathBuf,
    /// TPM: `device[:PATH]` (default /dev/tpmrm0), `swtpm:HOST:PORT`, or `sim:DIR` (simulated).
    #[arg(long, default_value = "device")]
    tpm: String,
    /// The UEFI event log (default: the kernel's, or DIR/binary_bios_measurements for sim:DIR).
    #[arg(long)]
    event_log: Option<PathBuf>,
    /// The IMA measurement list, sent when the verifier asks for it (default: the kernel's,
    /// or DIR/ima/binary_runtime_measurements for sim:DIR). If the file does not exist, the
    /// agent sends no IMA measurements.
    #[arg(long)]
    ima_log: Option<PathBuf>,
    /// Host name to enrol as (default: the system host name).
    #[arg(long)]
    name: Option<String>,
    /// Where the agent keeps its identity and AK.
    #[arg(long, default_value = "/var/lib/vouch-agent")]
    state_dir: PathBuf,
    /// A label to declare at enrolment, KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Stop after this many attestations (default: run until stopped).
    #[arg(long)]
    count: Option<u64>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("label {s:?} is not KEY=VALUE"))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Run `vouch agent`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::logging::init();
    let spec: TpmSpec = args
        .tpm
        .parse()
        .with_context(|| format!("--tpm {}", args.tpm))?;
    let event_log = args.event_log.clone().unwrap_or_else(|| match &spec {
        TpmSpec::Sim(dir) => dir.join("binary_bios_measurements"),
        _ => PathBuf::from(SYSFS_EVENT_LOG),
    });
    let ima_log = args.ima_log.clone().unwrap_or_else(|| match &spec {
        TpmSpec::Sim(dir) => dir.join(vouch_sim::IMA_LOG_FILE),
        _ => PathBuf::from(SYSFS_IMA_LOG),
    });
    let ca = std::fs::read(&args.verifier_ca)
        .with_context(|| format!("cannot read {}", args.verifier_ca.display()))?;
    // The command line of the kernel this agent runs on belongs to a real TPM's boot only.
    let kernel_cmdline = matches!(spec, TpmSpec::Device(_)).then(|| PathBuf::from("/proc/cmdline"));
    let tpm = vouch_tpm::open(&spec, &args.state_dir)
        .with_context(|| format!("cannot open TPM {}", args.tpm))?;
    let config = AgentConfig {
        verifier: args.verifier,
        verifier_ca_pem: ca,
        name: args.name.unwrap_or_else(host_name),
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        event_log,
        state_dir: args.state_dir,
        max_attestations: args.count,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut agent = Agent::new(config, tpm)?
            .with_ima_log(Some(ima_log))
            .with_kernel_cmdline(kernel_cmdline);
        tokio::select! {
            r = agent.run() => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
