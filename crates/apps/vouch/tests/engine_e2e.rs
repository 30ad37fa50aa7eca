//! Fleet appraisal in the service, in process: a simulated host (vouch-sim TPM booted from a
//! real firmware log, the real agent) is trusted on its baseline; once a stored policy that
//! selects it requires platform firmware covered by a reference and none covers it, its next
//! attestation is contraindicated by the engine, it becomes untrusted with the engine's
//! reasons, and its EAR carries the verdict and the policy id. Once the firmware values it
//! measures are stored as active references, it is trusted again under that policy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test code: a failure here is a failed test"
)]

mod support;

use std::collections::BTreeMap;

use vouch_api::{AdminClient, HostStatus};
use vouch_sim::SimTpm;

const LOG: &[u8] = include_bytes!("../demo/qemu-ubuntu2004-1.bin");

use support::inproc::wait_for;

async fn ear_claims(
    admin: &AdminClient,
    url: &str,
    ca_pem: &[u8],
    name: &str,
) -> vouch_ear::EarClaims {
    let token = admin.ear(name, None).await.unwrap();
    let keys = support::inproc::jwks_keys(url, ca_pem).await;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    vouch_ear::verify(&token, &keys, name, None, now).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_verdict_makes_a_simulated_host_untrusted_and_is_in_its_ear() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = support::inproc::SimFleet::start(tmp.path(), 1, None).await;
    let (url, ca_pem, admin, keys) = (&fleet.url, &fleet.ca_pem, &fleet.admin, &fleet.keys);
    let token = std::fs::read_to_string(fleet.server.admin_token_path()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .build()
        .unwrap();
    let host = fleet.start_host(0, "sim-1", &[], LOG);

    // No policy stored: trusted on its baseline; the EAR is built from the host state.
    wait_for(admin, "sim-1", HostStatus::Trusted).await;
    let claims = ear_claims(admin, url, ca_pem, "sim-1").await;
    assert_eq!(claims.status, vouch_appraisal::Status::Affirming);
    assert!(claims.appraisal().unwrap().policy_ids.is_empty());

    // A policy for every host: platform firmware must be covered by a reference; none is.
    let doc = vouch_appraisal::PolicyDoc {
        schema: 1,
        id: "fw".into(),
        version: 1,
        description: None,
        selector: vouch_appraisal::Selector::All,
        rules: vec![vouch_appraisal::Rule::references(
            vouch_appraisal::Component::PlatformFirmware,
        )],
        rego: None,
    };
    let resp = http
        .put(format!("{url}/api/v1/policies/fw"))
        .bearer_auth(token.trim())
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    admin.attest("sim-1").await.unwrap();
    let h = wait_for(admin, "sim-1", HostStatus::Untrusted).await;
    assert!(!h.reasons.is_empty());
    let claims = ear_claims(admin, url, ca_pem, "sim-1").await;
    assert_eq!(claims.status, vouch_appraisal::Status::Contraindicated);
    assert_eq!(
        claims.appraisal().unwrap().policy_ids,
        vec!["vouch:policy/fw@1".to_owned()]
    );
    // The verdict's reasons are the host's reasons.
    let stored = fleet
        .server
        .verifier()
        .state()
        .store()
        .host_by_name("sim-1")
        .await
        .unwrap()
        .unwrap();
    let (verdict, _) = fleet
        .server
        .verifier()
        .state()
        .store()
        .host_verdict(stored.id)
        .await
        .unwrap()
        .unwrap();
    let messages: Vec<String> = verdict["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages, stored.reasons);

    // Learn the firmware values from the same log (another simulated TPM booted from it),
    // store them as active references: trusted again, affirming under the same policy.
    let mut twin = SimTpm::builder()
        .ek_key(keys.key(0).unwrap().clone())
        .ak_key(keys.key(1).unwrap().clone())
        .build()
        .unwrap();
    twin.boot_with_event_log(LOG).unwrap();
    let sel = vouch_tpm2::PcrSelection::new(vec![
        vouch_tpm2::PcrBankSelection::new(vouch_tpm2::HashAlg::Sha256, &[0, 1, 2, 3, 4, 5, 6, 7])
            .unwrap(),
    ])
    .unwrap();
    let q = twin.quote(b"learn", &sel).unwrap();
    let ak = vouch_tpm2::AkVerifier::new(
        &vouch_tpm2::PublicArea::decode_tpmt(&twin.ak_public().unwrap()).unwrap(),
    )
    .unwrap();
    let vq = vouch_tpm2::verify_quote(&ak, &q.attest, &q.signature, b"learn", &q.pcrs).unwrap();
    let claims = vouch_appraisal::Claims::derive("twin", BTreeMap::new(), &vq, LOG).unwrap();
    let proposal = vouch_appraisal::learn_from_host(
        &claims,
        &[vouch_appraisal::Component::PlatformFirmware],
        "bios-test",
        vouch_appraisal::Selector::All,
        chrono::Utc::now(),
    )
    .unwrap();
    let mut refs = vouch_appraisal::RefStore::new();
    proposal
        .accept(&mut refs, &vouch_appraisal::RefState::Active)
        .unwrap();
    assert!(!refs.all().is_empty());
    let resp = http
        .put(format!("{url}/api/v1/references"))
        .bearer_auth(token.trim())
        .json(&refs)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    admin.attest("sim-1").await.unwrap();
    wait_for(admin, "sim-1", HostStatus::Trusted).await;
    let claims = ear_claims(admin, url, ca_pem, "sim-1").await;
    assert_eq!(claims.status, vouch_appraisal::Status::Affirming);
    assert_eq!(
        claims.appraisal().unwrap().policy_ids,
        vec!["vouch:policy/fw@1".to_owned()]
    );

    host.task.abort();
    fleet.server.shutdown().await;
}
