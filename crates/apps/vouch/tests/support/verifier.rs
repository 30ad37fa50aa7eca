//! `vouch serve` as a process on a free loopback port, with the operator CLI (`vouch hosts`)
//! pointed at it. Killed when dropped.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Verifier {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Verifier {
    /// Start `vouch serve` with its data in `dir/verifier`, trusting the EK CA certificates in
    /// `ek_roots`, auto-approving `auto_approve` (`name=GLOB`), and with `server_names` added
    /// to its TLS certificate.
    pub fn start(
        dir: &Path,
        ek_roots: &Path,
        interval_secs: u64,
        auto_approve: &str,
        server_names: &[&str],
        extra_args: &[&std::ffi::OsStr],
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = dir.join("verifier");
        let log = dir.join("verifier.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data_dir)
        .arg("--ek-roots")
        .arg(ek_roots)
        .args([
            "--interval",
            &interval_secs.to_string(),
            "--auto-approve",
            auto_approve,
            // Runtime integrity too: every quote covers PCR 10 and the agent must send the
            // kernel's IMA list, replayed to it (boot_aggregate checked against PCRs 0-9).
            "--ima",
        ]);
        for name in server_names {
            cmd.args(["--server-name", name]);
        }
        cmd.args(extra_args);
        let child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let v = Self {
            child,
            port,
            data_dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err()
            || !v.data_dir.join("admin.token").exists()
        {
            assert!(
                Instant::now() < deadline,
                "verifier did not start: {}",
                v.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        v
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The verifier's CA certificate (PEM), the one agents pass as `--verifier-ca`.
    pub fn ca_pem(&self) -> PathBuf {
        self.data_dir.join("ca.pem")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `vouch hosts ARGS` against this verifier with the admin token; parse its JSON.
    pub fn hosts_cli(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("hosts")
            .args(args)
            .env("VOUCH_URL", self.url())
            .env("VOUCH_CA", self.ca_pem())
            .env(
                "VOUCH_TOKEN",
                format!("@{}", self.data_dir.join("admin.token").display()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vouch hosts {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `vouch hosts list --json`.
    pub fn hosts(&self) -> Vec<serde_json::Value> {
        self.hosts_cli(&["list", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// `vouch hosts show NAME --json`.
    pub fn show(&self, name: &str) -> serde_json::Value {
        self.hosts_cli(&["show", name, "--json"])
    }

    /// The host's status and reasons, if it is listed.
    pub fn status_of(&self, name: &str) -> Option<(String, Vec<String>)> {
        status_in(&self.hosts(), name)
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and reasons of host `name` in a `vouch hosts list --json` array, if it is listed.
pub fn status_in(hosts: &[serde_json::Value], name: &str) -> Option<(String, Vec<String>)> {
    hosts.iter().find(|h| h["name"] == name).map(|h| {
        let reasons = h["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        (h["status"].as_str().unwrap().to_owned(), reasons)
    })
}
