//! A verifier served in process (`vouch_verifier::serve`): the operator CLI pointed at it, host
//! status polling, and the EAR keys it publishes.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::process::Command;
use std::time::{Duration, Instant};

use vouch_api::{AdminClient, HostStatus, HostSummary};

/// `vouch` with `VOUCH_URL`, `VOUCH_CA` and `VOUCH_TOKEN` (as `@file`) set for `server`.
pub fn vouch(server: &vouch_verifier::ServerHandle) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.env("VOUCH_URL", server.url())
        .env("VOUCH_CA", server.ca_path())
        .env(
            "VOUCH_TOKEN",
            format!("@{}", server.admin_token_path().display()),
        );
    cmd
}

/// Poll until `name` has status `want` (60 s at most); its summary then.
pub async fn wait_for(admin: &AdminClient, name: &str, want: HostStatus) -> HostSummary {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hosts = admin.hosts().await.unwrap();
        if let Some(h) = hosts.iter().find(|h| h.name == name && h.status == want) {
            return h.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name} never {want:?}: {hosts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The keys the verifier at `url` publishes at `/.well-known/jwks.json`.
pub async fn jwks_keys(url: &str, ca_pem: &[u8]) -> vouch_ear::VerificationKeys {
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .build()
        .unwrap();
    let jwks: serde_json::Value = http
        .get(format!("{url}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    vouch_ear::VerificationKeys::from_jwks(&jwks).unwrap()
}

/// A verifier served in process (SQLite in the test's directory, or `database_url`) that
/// trusts a simulated EK CA and approves every host, interval 1 s, with an admin client.
pub struct SimFleet {
    /// Where hosts keep their TPM and agent state.
    pub root: std::path::PathBuf,
    /// The simulated EK CA the verifier trusts.
    pub ca: std::sync::Arc<vouch_sim::SimCa>,
    /// EK and AK keys: host `i` uses keys `2i` and `2i + 1`.
    pub keys: vouch_sim::KeyPool,
    /// The verifier.
    pub server: vouch_verifier::ServerHandle,
    /// Its URL.
    pub url: String,
    /// Its CA certificate (PEM).
    pub ca_pem: Vec<u8>,
    /// The operator API with the initial admin token.
    pub admin: AdminClient,
}

/// A simulated host: its TPM (reboot it with `boot_with_event_log`) and its running agent.
pub struct SimHost {
    /// Host name.
    pub name: String,
    /// The TPM the agent uses (same state directory).
    pub tpm: vouch_sim::SimTpm,
    /// The agent.
    pub task: tokio::task::JoinHandle<()>,
}

impl SimFleet {
    /// Serve a verifier for up to `hosts` simulated hosts.
    pub async fn start(root: &std::path::Path, hosts: usize, database_url: Option<String>) -> Self {
        Self::start_with(root, hosts, |config| config.database_url = database_url).await
    }

    /// [`SimFleet::start`] with `configure` applied last to the verifier's configuration
    /// (its data directory, database, timeouts...).
    pub async fn start_with(
        root: &std::path::Path,
        hosts: usize,
        configure: impl FnOnce(&mut vouch_verifier::ServeConfig),
    ) -> Self {
        let ca = std::sync::Arc::new(vouch_sim::SimCa::generate().unwrap());
        let roots = root.join("ek-roots");
        std::fs::create_dir_all(&roots).unwrap();
        std::fs::write(roots.join("sim-ca.pem"), ca.cert_pem()).unwrap();
        let keys = vouch_sim::KeyPool::generate(2 * hosts).unwrap();
        let mut config =
            vouch_verifier::ServeConfig::new("127.0.0.1:0".parse().unwrap(), root.join("verifier"));
        config.ek_roots = Some(roots);
        config.interval = Duration::from_secs(1);
        config.long_poll = Duration::from_secs(1);
        config.auto_approve = vec!["name=*".parse().unwrap()];
        configure(&mut config);
        let server = vouch_verifier::serve(config).await.unwrap();
        let url = server.url();
        let ca_pem = std::fs::read(server.ca_path()).unwrap();
        let token = std::fs::read_to_string(server.admin_token_path()).unwrap();
        let admin = AdminClient::new(&url, &ca_pem, token.trim()).unwrap();
        Self {
            root: root.to_path_buf(),
            ca,
            keys,
            server,
            url,
            ca_pem,
            admin,
        }
    }

    /// Host number `index` (its keys), booted from `log`, with its agent running.
    pub fn start_host(
        &self,
        index: usize,
        name: &str,
        labels: &[(&str, &str)],
        log: &[u8],
    ) -> SimHost {
        self.start_host_with(index, name, labels, log, &self.ca, name)
    }

    /// [`SimFleet::start_host`] with the EK certificate issued by `ca` and the TPM and agent
    /// state under `DIR/<dir>`: the same `index` in another `dir` is the same TPM (same EK
    /// and AK keys) with a fresh agent.
    pub fn start_host_with(
        &self,
        index: usize,
        name: &str,
        labels: &[(&str, &str)],
        log: &[u8],
        ca: &std::sync::Arc<vouch_sim::SimCa>,
        dir: &str,
    ) -> SimHost {
        let tpm_dir = self.root.join(dir).join("tpm");
        let mut tpm = vouch_sim::SimTpm::builder()
            .ca(ca.clone())
            .ek_key(self.keys.key(2 * index).unwrap().clone())
            .ak_key(self.keys.key(2 * index + 1).unwrap().clone())
            .create_dir(&tpm_dir)
            .unwrap();
        tpm.boot_with_event_log(log).unwrap();
        let agent_dir = self.root.join(dir).join("agent");
        let handle =
            vouch_tpm::open(&vouch_tpm::TpmSpec::Sim(tpm_dir.clone()), &agent_dir).unwrap();
        let mut agent = vouch_agent::Agent::new(
            vouch_agent::AgentConfig {
                verifier: self.url.clone(),
                verifier_ca_pem: self.ca_pem.clone(),
                name: name.to_owned(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                event_log: tpm_dir.join("binary_bios_measurements"),
                state_dir: agent_dir,
                max_attestations: None,
            },
            handle,
        )
        .unwrap();
        let task = tokio::spawn(async move {
            let _ = agent.run().await;
        });
        SimHost {
            name: name.to_owned(),
            tpm,
            task,
        }
    }
}
