//! Real firmware end to end (issue 6): Debian's OVMF boots Debian's kernel under QEMU (TCG) with a
//! swtpm as the TPM, and `vouch agent --tpm device` runs in the guest through the kernel's TPM
//! driver and resource manager (`/dev/tpmrm0`), sending the firmware's event log from securityfs
//! to `vouch serve` on the host's loopback. The harness is `support/guest.rs`.
//!
//! One guest (one swtpm state, one agent state disk) boots three times:
//! 1. first boot: enrolled with the swtpm's EK certificate (local CA in `--ek-roots`), attests
//!    with the real log, trusted; the decoded machine state names the firmware build (the
//!    verifier's firmware catalogue holds the volume digests of Debian's `OVMF_CODE_4M.fd`,
//!    computed by `vouch firmware catalog`, and the log's DXE volume measurement matches),
//!    the firmware volumes, the kernel as the booted application, Secure Boot off; the
//!    command line is in PCR 9;
//! 2. the same guest with another kernel command line: untrusted, PCR 9 and its event named;
//! 3. the same guest with Debian's Secure Boot variable store (PK/KEK/db enrolled, Secure Boot
//!    on): untrusted, PCR 7 named and the Secure Boot state named as changed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step is a failed test"
)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::guest::{Boot, Guest, Vars};
use support::verifier::Verifier;

const NAME: &str = "ovmf-guest";
const INTERVAL_SECS: u64 = 2;
/// Per boot, QEMU start to power-off; a boot takes about 17 s on 2 idle cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(150);
const CMDLINE: &str = "console=ttyS0 quiet panic=-1";
const CMDLINE_CHANGED: &str = "console=ttyS0 quiet panic=-1 vouch.test=changed";
/// The device path OVMF gives the kernel it loads from QEMU's `-kernel` (QemuKernelLoaderFs).
const QEMU_KERNEL_PATH: &str = "VenMedia(1428f772-b64a-441e-b8c3-9ebdd7f893c7)/kernel";
/// Linux EFI stub's tagged event for `LOADED_IMAGE::LoadOptions` (the command line), PCR 9.
const LINUX_LOAD_OPTIONS_TAG: u32 = 0x8f3b_22ed;

struct Fixture {
    _work: tempfile::TempDir,
    /// `vouch firmware catalog` of Debian's OVMF image, and the build name it records.
    catalog: std::path::PathBuf,
    ovmf_build: String,
    verifier: Verifier,
    guest: Guest,
    started: Instant,
}

impl Fixture {
    fn new() -> Self {
        let started = Instant::now();
        let work = tempfile::tempdir().unwrap();
        let ek_ca = work.path().join("swtpm-ca");
        let roots = work.path().join("ek-roots");
        // The TPM first (its provisioning creates the local CA the verifier trusts), then the
        // verifier, then the initramfs (it carries the verifier's CA certificate).
        let guest = Guest::new(&work.path().join("guest"), NAME, &ek_ca);
        support::swtpm::Swtpm::export_ca_certs(&ek_ca, &roots);
        let verifier_dir = work.path().join("host");
        std::fs::create_dir_all(&verifier_dir).unwrap();
        // Name Debian's OVMF build by the volumes of the image QEMU boots.
        let version = Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", "ovmf"])
            .output()
            .unwrap();
        assert!(version.status.success(), "the ovmf package is installed");
        let ovmf_build = format!("OVMF {}", String::from_utf8(version.stdout).unwrap().trim());
        let catalog = work.path().join("firmware.json");
        let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["firmware", "catalog", "--name", &ovmf_build, "--out"])
            .arg(&catalog)
            .arg("/usr/share/OVMF/OVMF_CODE_4M.fd")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vouch firmware catalog: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let verifier = Verifier::start(
            &verifier_dir,
            &roots,
            INTERVAL_SECS,
            &format!("name={NAME}"),
            &[support::guest::GUEST_VERIFIER],
            &["--firmware-catalog".as_ref(), catalog.as_os_str()],
        );
        guest.build_initramfs(&verifier.ca_pem(), verifier.port);
        eprintln!(
            "ovmf_e2e: set-up (TPM, verifier, initramfs {} bytes) {:.1}s",
            std::fs::metadata(&guest.initrd).unwrap().len(),
            started.elapsed().as_secs_f64()
        );
        Self {
            _work: work,
            catalog,
            ovmf_build,
            verifier,
            guest,
            started,
        }
    }

    fn boot(&self, tag: &str, cmdline: &str, vars: Vars) -> Boot {
        let boot = self
            .guest
            .boot(tag, cmdline, vars, self.verifier.port, BOOT_TIMEOUT);
        eprintln!(
            "ovmf_e2e: boot {tag}: {:.1}s (test time {:.1}s)",
            boot.elapsed.as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        );
        for line in boot.console.lines().filter(|l| {
            l.starts_with("VOUCH-GUEST:") || l.contains("getrandom") || l.contains(" WARN ")
        }) {
            eprintln!("  {line}");
        }
        boot
    }

    /// The verdict on the attestation the agent made during `boot` (the `n`th boot, one
    /// attestation each): the newest history record, not the host's current status, which
    /// turns from trusted to unreachable two intervals after the guest powers off.
    fn verdict_after(&self, boot: &Boot, n: usize) -> (String, Vec<String>) {
        let host = self.verifier.show(NAME);
        let history = host["history"].as_array().unwrap_or_else(|| {
            panic!(
                "{NAME} is not known after boot {}: {host:#}\nverifier log:\n{}\nguest console:\n{}",
                boot.tag,
                self.verifier.log_text(),
                boot.console
            )
        });
        assert_eq!(
            history.len(),
            n,
            "one attestation per boot; after boot {}: {host:#}\nguest console:\n{}",
            boot.tag,
            boot.console
        );
        let last = &history[0];
        let reasons = last["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        (last["status"].as_str().unwrap().to_owned(), reasons)
    }
}

fn vouch_json(args: &[&str], file: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .arg(file)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vouch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_log(boot: &Boot, dir: &Path) -> std::path::PathBuf {
    let p = dir.join(format!("eventlog-{}.bin", boot.tag));
    std::fs::write(&p, &boot.event_log).unwrap();
    p
}

/// The sha256 digest of the Linux EFI stub's LoadOptions event in PCR 9.
fn load_options_digest(log: &[u8]) -> String {
    let log = vouch_tcglog::EventLog::parse(log).unwrap();
    let ev = log
        .events()
        .map(Result::unwrap)
        .find(|ev| {
            ev.pcr() == 9
                && matches!(ev.decoded(), vouch_tcglog::EventData::EventTag(t) if t.id == LINUX_LOAD_OPTIONS_TAG)
        })
        .expect("the log has the Linux EFI stub's LoadOptions event in PCR 9");
    ev.digests()
        .get(vouch_tpm2::HashAlg::Sha256)
        .unwrap()
        .to_hex()
}

/// What the stub measures: the command line as UTF-16LE with its terminating NUL.
fn cmdline_digest(cmdline: &str) -> String {
    let mut bytes: Vec<u8> = cmdline.encode_utf16().flat_map(u16::to_le_bytes).collect();
    bytes.extend_from_slice(&[0, 0]);
    vouch_tpm2::HashAlg::Sha256.hash(&bytes).to_hex()
}

/// PCR indices a reason names as `sha256:N`.
fn named_pcrs(reasons: &[String]) -> Vec<u32> {
    let mut pcrs: Vec<u32> = reasons
        .iter()
        .flat_map(|r| r.match_indices("sha256:").map(move |(i, _)| &r[i + 7..]))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    pcrs.sort_unstable();
    pcrs.dedup();
    pcrs
}

#[test]
fn ovmf_guest_is_trusted_then_caught_with_another_cmdline_and_with_secure_boot_on() {
    let f = Fixture::new();
    let logs = f.guest.dir.clone();

    // 1. First boot: enrolment with the EK certificate, then the first attestation (with the
    //    firmware's real log from securityfs) learns the baseline: trusted.
    let first = f.boot("first", CMDLINE, Vars::Blank);
    let (status, reasons) = f.verdict_after(&first, 1);
    assert_eq!(
        status, "trusted",
        "first boot: {reasons:?}\nguest console:\n{}",
        first.console
    );
    let host = f.verifier.show(NAME);
    assert!(
        host["ek_certificate"]
            .as_str()
            .unwrap()
            .contains("issuer: CN=swtpm-localca"),
        "enrolled with the swtpm's EK certificate: {host:#}"
    );
    assert_eq!(host["ek_override"], false);

    // Runtime integrity (the verifier runs with --ima): the guest's IMA list starts with the
    // boot_aggregate; trusted means the verifier replayed it to the quoted PCR 10 and checked
    // the boot_aggregate against the quoted PCRs 0-9.
    let ima_list = first
        .ima_log
        .as_ref()
        .expect("the guest kernel exposes an IMA list");
    let ima_path = logs.join("first-ima.bin");
    std::fs::write(&ima_path, ima_list).unwrap();
    let ima = vouch_json(&["ima", "replay"], &ima_path);
    assert!(ima["entry_count"].as_u64().unwrap() >= 1, "{ima:#}");
    assert_eq!(
        ima["template_digest_mismatches"],
        serde_json::json!([]),
        "{ima:#}"
    );

    // The log the agent sent is the firmware's, and it replays to the PCRs the TPM quoted.
    let first_log = write_log(&first, &logs);
    let replay = vouch_json(&["eventlog", "replay"], &first_log);
    for (pcr, value) in replay["pcrs"]["sha256"].as_object().unwrap() {
        assert_eq!(
            &host["baseline_pcrs"]["sha256"][pcr], value,
            "PCR {pcr}: the log's replay equals the quoted baseline"
        );
    }
    let catalog = f.catalog.to_str().unwrap();
    let state = vouch_json(
        &["eventlog", "state", "--firmware-catalog", catalog],
        &first_log,
    );
    // The verifier keeps the machine state of the log the guest sent, plus the command line
    // the agent reported, which it shows because it hashes to PCR 9's LoadOptions digest.
    let mut expected_state = state.clone();
    expected_state["kernel_cmdline"] = serde_json::Value::String(first.cmdline.clone());
    assert_eq!(
        host["machine_state"], expected_state,
        "the verifier keeps the machine state of the log the guest sent"
    );
    assert_eq!(
        state["kernel_cmdline_digest"],
        cmdline_digest(&first.cmdline).as_str(),
        "{state:#}"
    );
    assert_eq!(state["secure_boot"], "disabled", "{state:#}");
    // OVMF's S-CRTM version event carries an empty UTF-16 string (PcdFirmwareVersionString is
    // not set in Debian's build), so the log itself names no version; the DXE volume it
    // measured is the one in Debian's image, which names the build.
    assert!(state["firmware_version"].is_string(), "{state:#}");
    assert_eq!(
        state["firmware_identified"]["name"],
        f.ovmf_build.as_str(),
        "{state:#}"
    );
    assert_eq!(
        host["machine_state"]["firmware_identified"]["name"],
        f.ovmf_build.as_str(),
        "the verifier names the firmware build"
    );
    eprintln!(
        "ovmf_e2e: firmware build {} (event {})",
        state["firmware_identified"]["name"], state["firmware_identified"]["digest"]
    );
    // OVMF measures its PEI and DXE firmware volumes into PCR 0.
    let blobs = state["firmware_blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), 2, "PEI and DXE firmware volumes: {state:#}");
    assert!(
        blobs
            .iter()
            .all(|b| b["pcr"] == 0 && b["length"].as_u64().unwrap() > 0),
        "{state:#}"
    );
    // The booted application (PCR 4) is the kernel QEMU handed to OVMF.
    let chain = state["boot_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1, "one boot application: {state:#}");
    assert_eq!(chain[0]["device_path"], QEMU_KERNEL_PATH, "{state:#}");
    assert_eq!(
        chain[0]["kind"], "kernel",
        "the booted application is the kernel: {state:#}"
    );
    // The command line: OVMF appends `initrd=initrd`, the kernel's EFI stub measures it into
    // PCR 9 as UTF-16LE + NUL (the event carries only the digest).
    assert_eq!(first.cmdline, format!("{CMDLINE} initrd=initrd"));
    assert_eq!(
        load_options_digest(&first.event_log),
        cmdline_digest(&first.cmdline),
        "PCR 9's LoadOptions event is the guest's /proc/cmdline"
    );

    // 2. Same guest, same TPM and agent identity, another kernel command line: untrusted, with
    //    PCR 9 and its first differing event named, and nothing else.
    let second = f.boot("cmdline", CMDLINE_CHANGED, Vars::Blank);
    assert!(
        second
            .console
            .contains("VOUCH-GUEST: agent state: ak.tpm2 identity.pem"),
        "the agent state survived the reboot\n{}",
        second.console
    );
    let (status, reasons) = f.verdict_after(&second, 2);
    assert_eq!(
        status, "untrusted",
        "second boot: {reasons:?}\nguest console:\n{}",
        second.console
    );
    assert_eq!(named_pcrs(&reasons), [9], "only PCR 9 changed: {reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("EV_EVENT_TAG")),
        "the command-line event is named: {reasons:?}"
    );
    let all = reasons.join("\n");
    assert!(
        all.contains("command line")
            && all.contains(&format!("{:?}", first.cmdline))
            && all.contains(&format!("{:?}", second.cmdline)),
        "the reason shows the old and the new command line: {reasons:?}"
    );
    assert_eq!(second.cmdline, format!("{CMDLINE_CHANGED} initrd=initrd"));
    assert_eq!(
        load_options_digest(&second.event_log),
        cmdline_digest(&second.cmdline)
    );
    eprintln!("ovmf_e2e: command line changed: {reasons:?}");

    // 3. Same guest with Secure Boot turned on (Debian's enrolled variable store): PCR 7 named,
    //    and the Secure Boot state named among the machine-state differences.
    let third = f.boot("secureboot", CMDLINE, Vars::SecureBootMs);
    let (status, reasons) = f.verdict_after(&third, 3);
    assert_eq!(
        status, "untrusted",
        "third boot: {reasons:?}\nguest console:\n{}",
        third.console
    );
    assert!(
        named_pcrs(&reasons).contains(&7),
        "PCR 7 is named: {reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("machine state differs") && r.contains("secure_boot")),
        "the Secure Boot state is named: {reasons:?}"
    );
    let third_state = vouch_json(&["eventlog", "state"], &write_log(&third, &logs));
    assert_eq!(third_state["secure_boot"], "enabled", "{third_state:#}");
    eprintln!(
        "ovmf_e2e: Secure Boot on: {reasons:?}; boot chain {}",
        third_state["boot_chain"]
    );
    eprintln!(
        "ovmf_e2e: three boots in {:.1}s",
        f.started.elapsed().as_secs_f64()
    );
}
