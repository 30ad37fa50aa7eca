//! A real swtpm for tests: provisioned with an EK certificate from a per-test local CA,
//! listening on free loopback ports, killed when dropped. Driven with tpm2-tools.
//!
//! swtpm, swtpm-tools and tpm2-tools are installed by README's test command. A missing tool is
//! a test failure with a clear message, never a silent skip.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running swtpm.
#[derive(Debug)]
pub struct Swtpm {
    /// Its working directory (state, CA unless shared, files tpm2-tools writes).
    pub dir: tempfile::TempDir,
    /// Data port (the control port is the next one).
    pub port: u16,
    ca: PathBuf,
    child: Child,
}

/// The path of `tool`, or a test failure naming the install step.
pub fn which(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} is not installed: run README's test command (it installs swtpm, swtpm-tools, tpm2-tools)"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Two consecutive free loopback ports (swtpm's data port and its control port).
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free pair of loopback ports");
}

/// Provision a TPM state directory `state` (sha1 and sha256 banks, RSA-2048 and ECC P-384 EKs)
/// with EK and platform certificates from the local CA in `ca` (created on first use).
/// Provision a TPM state directory with EK certificates from the local CA kept in `ca`.
pub fn provision(ca: &Path, state: &Path) {
    let localca = which("swtpm_localca");
    std::fs::write(
        ca.join("swtpm-localca.conf"),
        format!(
            "statedir = {c}\nsigningkey = {c}/signkey.pem\nissuercert = {c}/issuercert.pem\ncertserial = {c}/certserial\n",
            c = ca.display()
        ),
    )
    .unwrap();
    std::fs::write(
        ca.join("swtpm-localca.options"),
        "--platform-manufacturer Vouch\n--platform-version 2.1\n--platform-model swtpm-test\n",
    )
    .unwrap();
    std::fs::write(
        ca.join("swtpm_setup.conf"),
        format!(
            "create_certs_tool= {}\ncreate_certs_tool_config = {c}/swtpm-localca.conf\ncreate_certs_tool_options = {c}/swtpm-localca.options\nactive_pcr_banks = sha256,sha1\n",
            localca.display(),
            c = ca.display()
        ),
    )
    .unwrap();
    let setup = Command::new(which("swtpm_setup"))
        .args(["--tpm2", "--tpmstate"])
        .arg(state)
        .arg("--config")
        .arg(ca.join("swtpm_setup.conf"))
        .args([
            "--create-ek-cert",
            "--create-platform-cert",
            "--lock-nvram",
            "--overwrite",
        ])
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "swtpm_setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
}

impl Swtpm {
    /// Provision and start a swtpm with sha1 and sha256 banks, an RSA-2048 and an ECC P-384 EK
    /// with certificates from a fresh local CA.
    pub fn start() -> Self {
        Self::start_with_ca(None)
    }

    /// Like [`Swtpm::start`], but with the local CA kept in `ca` (shared by several TPMs, so one
    /// `--ek-roots` directory covers them all). `None`: a CA of its own.
    pub fn start_with_ca(ca: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = ca.map_or_else(|| d.join("ca"), Path::to_owned);
        let state = d.join("state");
        std::fs::create_dir_all(&ca).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        provision(&ca, &state);
        let port = free_port_pair();
        let child = Command::new(which("swtpm"))
            .args(["socket", "--tpm2", "--server"])
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .arg("--log")
            .arg(format!("file={}", d.join("swtpm.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "swtpm did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            dir,
            port,
            ca,
            child,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The local CA's root and issuer certificates (PEM), as swtpm_localca made them.
    pub fn ca_dir(&self) -> PathBuf {
        self.ca.clone()
    }

    /// Copy the CA's certificates (root and issuer, not its keys) into `dir`, for `--ek-roots`.
    pub fn export_ca_certs(ca: &Path, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for f in ["issuercert.pem", "swtpm-localca-rootca-cert.pem"] {
            std::fs::copy(ca.join(f), dir.join(f)).unwrap();
        }
    }

    /// `host:port` for `vouch agent --tpm swtpm:...`.
    pub fn tcti_spec(&self) -> String {
        format!("swtpm:127.0.0.1:{}", self.port)
    }

    /// Power-cycle the TPM (PCRs reset, resetCount + 1) and send TPM2_Startup(CLEAR).
    pub fn reboot(&self) {
        let out = Command::new(which("swtpm_ioctl"))
            .args(["--tcp", &format!("127.0.0.1:{}", self.port + 1), "-i"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "swtpm_ioctl -i: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.tpm2("tpm2_startup", &["-c"]);
    }

    /// Extend every event of a real event log into this TPM's PCRs (sha1 and sha256 banks),
    /// as firmware would during boot, and write the log to `log_path` for the agent.
    pub fn boot_from_log(&self, log: &[u8], log_path: &Path) {
        let parsed = vouch_tcglog::EventLog::parse(log).unwrap();
        let mut args: Vec<String> = Vec::new();
        for ev in parsed.events() {
            let ev = ev.unwrap();
            if !ev.is_extended() || ev.pcr() > 23 {
                continue;
            }
            let digests: Vec<String> = ev
                .digests()
                .iter()
                .filter_map(|d| d.digest())
                .filter(|d| {
                    matches!(
                        d.alg(),
                        vouch_tpm2::HashAlg::Sha1 | vouch_tpm2::HashAlg::Sha256
                    )
                })
                .map(|d| format!("{}={}", d.alg().name(), d.to_hex()))
                .collect();
            if !digests.is_empty() {
                args.push(format!("{}:{}", ev.pcr(), digests.join(",")));
            }
        }
        for chunk in args.chunks(16) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            self.tpm2("tpm2_pcrextend", &refs);
        }
        std::fs::write(log_path, log).unwrap();
    }

    /// Run a tpm2-tools command against this TPM in the test directory; panic with its output
    /// on failure. Transient objects are flushed afterwards (swtpm has only 3 slots).
    pub fn tpm2(&self, tool: &str, args: &[&str]) -> Output {
        let out = self.tpm2_unchecked(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn tpm2_unchecked(&self, tool: &str, args: &[&str]) -> Output {
        let out = Command::new(which(tool))
            .args(args)
            .current_dir(self.dir.path())
            .env(
                "TPM2TOOLS_TCTI",
                format!("swtpm:host=127.0.0.1,port={}", self.port),
            )
            .env("TSS2_LOG", "all+NONE")
            .output()
            .unwrap();
        if tool != "tpm2_flushcontext" {
            let _ = Command::new(which("tpm2_flushcontext"))
                .arg("-t")
                .current_dir(self.dir.path())
                .env(
                    "TPM2TOOLS_TCTI",
                    format!("swtpm:host=127.0.0.1,port={}", self.port),
                )
                .env("TSS2_LOG", "all+NONE")
                .output();
        }
        out
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fail the test with the command's output unless it succeeded.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// True when `p` exists.
pub fn exists(p: &Path) -> bool {
    p.exists()
}
