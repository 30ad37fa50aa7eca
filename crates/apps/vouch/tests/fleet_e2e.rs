//! The service end to end, with real processes: `vouch serve` (SQLite, then PostgreSQL), five
//! `vouch agent`s each on its own real swtpm booted from a real firmware event log, and the
//! operator CLI. Scenarios (issue 3): enrolment with EK check; trusted; a PCR extended behind
//! the agent's back -> untrusted naming the PCR; reboot -> trusted again after a fresh log; a
//! replayed evidence message refused; an EK from an unknown CA refused; a killed agent ->
//! unreachable after two intervals; a verifier restart keeps state and shows no host trusted
//! before it re-attests.
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

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::swtpm::Swtpm;

const INTERVAL_SECS: u64 = 2;
const LOGS: [&str; 3] = [
    "qemu-ubuntu2004-1.bin",
    "qemu-ubuntu2004-2.bin",
    "qemu-rhel8-pxe.bin",
];

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../testdata")
        .join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Verifier {
    proc: Option<Killed>,
    port: u16,
    data_dir: PathBuf,
    roots: PathBuf,
    database: Option<String>,
    log: PathBuf,
}

impl Verifier {
    fn start(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
        cmd.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", self.port),
            "--data-dir",
        ])
        .arg(&self.data_dir)
        .arg("--ek-roots")
        .arg(&self.roots)
        .args([
            "--interval",
            &INTERVAL_SECS.to_string(),
            "--auto-approve",
            "name=host-*",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
        if let Some(db) = &self.database {
            cmd.args(["--database", db]);
        }
        self.proc = Some(Killed(cmd.spawn().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || !self.data_dir.join("admin.token").exists()
        {
            assert!(
                Instant::now() < deadline,
                "verifier did not start: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        self.proc = None;
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn hosts(&self) -> Vec<serde_json::Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["hosts", "list", "--json"])
            .env("VOUCH_URL", self.url())
            .env("VOUCH_CA", self.data_dir.join("ca.pem"))
            .env(
                "VOUCH_TOKEN",
                format!("@{}", self.data_dir.join("admin.token").display()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hosts list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
    }

    fn status_of(&self, name: &str) -> Option<(String, Vec<String>)> {
        support::verifier::status_in(&self.hosts(), name)
    }

    /// Poll until `pred` holds for the fleet, or fail after `timeout` showing the fleet.
    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let hosts = self.hosts();
            if pred(&hosts) {
                return hosts;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; fleet: {hosts:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

struct Host {
    name: String,
    tpm: Swtpm,
    log_path: PathBuf,
    log: Vec<u8>,
    state_dir: PathBuf,
    agent: Option<Killed>,
}

impl Host {
    fn start_agent(&mut self, v: &Verifier) {
        let stderr = std::fs::File::create(self.tpm.path("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["agent", "--verifier", &v.url(), "--verifier-ca"])
            .arg(v.data_dir.join("ca.pem"))
            .args([
                "--tpm",
                &self.tpm.tcti_spec(),
                "--name",
                &self.name,
                "--event-log",
            ])
            .arg(&self.log_path)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.agent = Some(Killed(child));
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.tpm.path("agent.log")).unwrap_or_default()
    }
}

fn replay_is_refused(v: &Verifier, host: &Host) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ca = std::fs::read(v.data_dir.join("ca.pem")).unwrap();
        let identity = std::fs::read(host.state_dir.join("identity.pem")).unwrap();
        let client = vouch_api::AgentClient::with_identity(&v.url(), &ca, &identity).unwrap();
        let spec: vouch_tpm::TpmSpec = host.tpm.tcti_spec().parse().unwrap();
        let mut tpm = vouch_tpm::open(&spec, &host.state_dir).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let challenge = loop {
            let c = client.challenge().await.unwrap();
            if c.due {
                break c;
            }
            assert!(Instant::now() < deadline, "host-0 never became due");
        };
        let selection =
            vouch_tpm2::PcrSelection::parse_spec(challenge.pcr_selection.as_deref().unwrap())
                .unwrap();
        let nonce = challenge.nonce.unwrap();
        let quote = tpm.quote(&nonce.0, &selection).unwrap();
        let mut pcrs = vouch_api::PcrMap::new();
        for (bank, index, value) in quote.pcrs.iter() {
            pcrs.entry(bank.name().to_owned())
                .or_default()
                .insert(index.to_string(), value.to_hex());
        }
        let evidence = vouch_api::EvidenceRequest {
            nonce,
            attest: vouch_api::Bytes(quote.attest),
            signature: vouch_api::Bytes(quote.signature),
            pcrs,
            event_log: Some(vouch_api::Bytes(host.log.clone())),
            ima: None,
            kernel_cmdline: None,
        };
        let first = client.evidence(&evidence).await.unwrap();
        assert_eq!(
            first.status,
            vouch_api::HostStatus::Trusted,
            "{:?}",
            first.reasons
        );
        let replayed = client.evidence(&evidence).await.unwrap_err();
        assert_eq!(
            replayed.status(),
            Some(409),
            "replayed evidence: {replayed}"
        );
        let after = client.status().await.unwrap();
        assert_eq!(
            after.status,
            vouch_api::HostStatus::Trusted,
            "a refused replay must not change the host"
        );
    });
}

fn status(hosts: &[serde_json::Value], name: &str) -> String {
    hosts
        .iter()
        .find(|h| h["name"] == name)
        .map_or_else(String::new, |h| h["status"].as_str().unwrap().to_owned())
}

fn run_fleet(database: Option<String>) {
    let work = tempfile::tempdir().unwrap();
    let ca = work.path().join("swtpm-ca");
    let roots = work.path().join("ek-roots");
    let mut hosts: Vec<Host> = (0..5)
        .map(|i| {
            let tpm = Swtpm::start_with_ca(Some(&ca));
            let log =
                std::fs::read(testdata(&format!("eventlogs/{}", LOGS[i % LOGS.len()]))).unwrap();
            let log_path = tpm.path("binary_bios_measurements");
            tpm.boot_from_log(&log, &log_path);
            let state_dir = tpm.path("agent-state");
            Host {
                name: format!("host-{i}"),
                tpm,
                log_path,
                log,
                state_dir,
                agent: None,
            }
        })
        .collect();
    Swtpm::export_ca_certs(&ca, &roots);

    // A simulated TPM beside the swtpm hosts, through the very same verifier path: it must be
    // indistinguishable to the verifier (issue 3: sim byte-compatible with swtpm).
    let sim_dir = work.path().join("sim-host");
    let sim_log = std::fs::read(testdata("eventlogs/qemu-ubuntu2004-1.bin")).unwrap();
    {
        let mut sim = vouch_sim::SimTpm::open_dir(&sim_dir).unwrap();
        sim.boot_with_event_log(&sim_log).unwrap();
        std::fs::write(roots.join("vouch-sim-ca.der"), sim.ca_certificate()).unwrap();
    }

    let mut v = Verifier {
        proc: None,
        port: free_port(),
        data_dir: work.path().join("verifier"),
        roots,
        database,
        log: work.path().join("verifier.log"),
    };
    v.start();
    let token = std::fs::metadata(v.data_dir.join("admin.token")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        token.permissions().mode() & 0o777,
        0o600,
        "admin.token must be 0600"
    );

    // Enrolment (EK certificate chains to the swtpm CA; MakeCredential/ActivateCredential),
    // auto-approval by selector, first attestation learns the baseline.
    for h in &mut hosts {
        h.start_agent(&v);
    }
    let sim_agent = Killed(
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["agent", "--verifier", &v.url(), "--verifier-ca"])
            .arg(v.data_dir.join("ca.pem"))
            .arg("--tpm")
            .arg(format!("sim:{}", sim_dir.display()))
            .args(["--name", "host-sim", "--state-dir"])
            .arg(work.path().join("sim-agent"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    v.wait(
        "five swtpm hosts and the simulated host trusted",
        Duration::from_secs(90),
        |hs| {
            (0..5).all(|i| status(hs, &format!("host-{i}")) == "trusted")
                && status(hs, "host-sim") == "trusted"
        },
    );
    drop(sim_agent);

    // Replayed evidence: host-0's agent stops; the test answers one challenge with host-0's
    // identity and TPM (accepted), then sends the very same evidence again (refused).
    hosts[0].agent = None;
    replay_is_refused(&v, &hosts[0]);
    hosts[0].start_agent(&v);

    // An EK from an unknown CA is refused: the host never enrols.
    let mut rogue = {
        let tpm = Swtpm::start();
        let log_path = tpm.path("binary_bios_measurements");
        let log = std::fs::read(testdata("eventlogs/qemu-ubuntu2004-1.bin")).unwrap();
        tpm.boot_from_log(&log, &log_path);
        let state_dir = tpm.path("agent-state");
        Host {
            name: "host-rogue".into(),
            tpm,
            log_path,
            log,
            state_dir,
            agent: None,
        }
    };
    rogue.start_agent(&v);

    // A PCR changed behind the agent's back: untrusted within one interval, PCR named.
    hosts[1].tpm.tpm2(
        "tpm2_pcrextend",
        &[&format!("7:sha256={}", "42".repeat(32))],
    );
    let t = Instant::now();
    v.wait(
        "host-1 untrusted after PCR 7 changed",
        Duration::from_secs(INTERVAL_SECS * 2 + 5),
        |hs| status(hs, "host-1") == "untrusted",
    );
    let (_, reasons) = v.status_of("host-1").unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("sha256:7") || r.contains("sha256[7]")),
        "reasons must name PCR 7: {reasons:?}"
    );
    eprintln!(
        "host-1 caught {:.1}s after the extend: {reasons:?}",
        t.elapsed().as_secs_f64()
    );

    // Reboot (TPM reset, same firmware): trusted again after the agent sends the fresh log.
    hosts[1].tpm.reboot();
    let log = hosts[1].log.clone();
    let path = hosts[1].log_path.clone();
    hosts[1].tpm.boot_from_log(&log, &path);
    v.wait(
        "host-1 trusted again after reboot",
        Duration::from_secs(INTERVAL_SECS * 3 + 10),
        |hs| status(hs, "host-1") == "trusted",
    );

    // The rogue TPM's EK certificate chains to no allowed root.
    let listed = v.status_of("host-rogue");
    assert!(
        !matches!(
            listed.as_ref().map(|s| s.0.as_str()),
            Some("trusted" | "awaiting_approval")
        ),
        "rogue EK accepted: {listed:?}"
    );
    assert!(
        rogue.agent_log().to_lowercase().contains("ek"),
        "agent log should show the EK refusal: {}",
        rogue.agent_log()
    );
    rogue.agent = None;

    // A killed agent: unreachable after two intervals without valid evidence.
    hosts[2].agent = None;
    v.wait(
        "host-2 unreachable",
        Duration::from_secs(INTERVAL_SECS * 3 + 10),
        |hs| status(hs, "host-2") == "unreachable",
    );

    // Verifier restart: state survives, and no host is trusted before it attests again.
    v.stop();
    v.start();
    let after = v.hosts();
    assert_eq!(after.len(), 6, "hosts survive a restart: {after:#?}");
    assert!(
        after.iter().all(|h| h["status"] != "trusted"),
        "a host is trusted before re-attesting: {after:#?}"
    );
    v.wait(
        "running agents trusted again after the restart",
        Duration::from_secs(INTERVAL_SECS * 4 + 15),
        |hs| {
            [0, 1, 3, 4]
                .iter()
                .all(|i| status(hs, &format!("host-{i}")) == "trusted")
        },
    );
    drop(hosts);
}

#[test]
fn fleet_of_five_swtpm_hosts_on_sqlite() {
    run_fleet(None);
}

#[test]
fn fleet_of_five_swtpm_hosts_on_postgres() {
    let pg = vouch_store::testing::TempPostgres::start()
        .expect("start PostgreSQL (installed by scripts/deps.sh)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(pg.create_database()).unwrap();
    run_fleet(Some(url));
    drop(pg);
}
