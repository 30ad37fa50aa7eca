//! A real swtpm for tests: provisioned with an EK certificate from a per-test local CA,
//! listening on free loopback ports, killed when dropped. Copied from
//! crates/apps/vouch/tests/support/swtpm.rs (less its `vouch` CLI runner).
//!
//! swtpm, swtpm-tools and tpm2-tools are installed by README's test command. A missing tool is
//! a test failure with a clear message, never a silent skip.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Swtpm {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn which(tool: &str) -> PathBuf {
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

impl Swtpm {
    /// Provision and start a swtpm with sha1 and sha256 banks, an RSA-2048 and an ECC P-384 EK
    /// with certificates from a fresh local CA.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = d.join("ca");
        let state = d.join("state");
        std::fs::create_dir_all(&ca).unwrap();
        std::fs::create_dir_all(&state).unwrap();
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
            .arg(&state)
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
        Self { dir, port, child }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The local CA's root and issuer certificates (PEM), as swtpm_localca made them.
    pub fn ca_dir(&self) -> PathBuf {
        self.path("ca")
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

pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
