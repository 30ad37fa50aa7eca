//! One TPM, one identity (issue 10), in process with simulated TPMs and the real agent: a TPM
//! cannot enrol under a second name, a removed host stays removed while its agent keeps
//! trying, an EK override admits exactly one TPM until it expires, agents cannot declare the
//! labels evidence sets, a label change at re-enrolment waits for an operator, and a detected
//! TPM state rollback stays until an operator clears it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test code: a failure here is a failed test"
)]

mod support;

use std::time::{Duration, Instant};

use vouch_api::{AdminClient, HostStatus};

use support::inproc::{SimFleet, wait_for};

const LOG: &[u8] = include_bytes!("../demo/qemu-ubuntu2004-1.bin");

/// Poll until a refusal for `name` whose reason contains `why` is recorded (60 s at most).
async fn wait_refused(admin: &AdminClient, name: &str, why: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = admin.enrolments().await.unwrap();
        if let Some(r) = view
            .refused
            .iter()
            .find(|r| r.name == name && r.reason.contains(why))
        {
            return r.reason.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no refusal of {name} with {why:?}: {:#?}",
            view.refused
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_of(admin: &AdminClient, name: &str) -> Option<HostStatus> {
    admin
        .all_hosts()
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.name == name)
        .map(|h| h.status)
}

fn ek_name_hex(tpm: &vouch_sim::SimTpm) -> String {
    let area = vouch_tpm2::PublicArea::decode_tpmt(tpm.ek_public()).unwrap();
    hex::encode(area.name())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tpm_cannot_enrol_under_a_second_name_and_the_refusal_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), 1, None).await;
    let a = fleet.start_host(0, "first", &[], LOG);
    wait_for(&fleet.admin, "first", HostStatus::Trusted).await;
    // The same TPM (same EK) with a fresh agent under another name.
    let b = fleet.start_host_with(0, "second", &[], LOG, &fleet.ca, "second");
    let why = wait_refused(&fleet.admin, "second", "already enrolled as host").await;
    assert!(why.contains("\"first\""), "names the existing host: {why}");
    assert_eq!(status_of(&fleet.admin, "second").await, None, "no host row");
    let audit = fleet
        .server
        .verifier()
        .state()
        .store()
        .audit_log(100)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.action == "enrol_refused"
            && e.target == "second"
            && e.detail["existing_host"] == "first"),
        "{audit:#?}"
    );
    // The first host is untouched.
    wait_for(&fleet.admin, "first", HostStatus::Trusted).await;
    a.task.abort();
    b.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_auto_approved_host_stays_removed_until_readmitted() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), 1, None).await;
    let h = fleet.start_host(0, "gone", &[], LOG);
    wait_for(&fleet.admin, "gone", HostStatus::Trusted).await;
    fleet.admin.remove("gone").await.unwrap();
    // Its agent keeps trying to enrol again (auto-approve matches every name): refused.
    wait_refused(&fleet.admin, "gone", "removed by an operator").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status_of(&fleet.admin, "gone").await,
        Some(HostStatus::Removed)
    );
    assert!(
        !fleet
            .admin
            .hosts()
            .await
            .unwrap()
            .iter()
            .any(|h| h.name == "gone")
    );
    // Re-admitted: it enrols again but waits for an operator (no auto-approval).
    fleet.admin.readmit("gone").await.unwrap();
    wait_for(&fleet.admin, "gone", HostStatus::AwaitingApproval).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status_of(&fleet.admin, "gone").await,
        Some(HostStatus::AwaitingApproval)
    );
    fleet.admin.approve("gone").await.unwrap();
    wait_for(&fleet.admin, "gone", HostStatus::Trusted).await;
    h.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ek_override_admits_exactly_one_tpm_until_it_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), 3, None).await;
    // A CA the verifier does not trust: these TPMs' EK certificates chain nowhere.
    let rogue_ca = std::sync::Arc::new(vouch_sim::SimCa::generate().unwrap());
    let store = fleet.server.verifier().state().store().clone();

    // No override: refused.
    let h = fleet.start_host_with(0, "board", &[], LOG, &rogue_ca, "board-a");
    let ek_a = ek_name_hex(&h.tpm);
    wait_refused(&fleet.admin, "board", "does not chain").await;

    // An override for another TPM's EK does not admit this one.
    let other = fleet.start_host_with(1, "spare", &[], LOG, &rogue_ca, "spare");
    let ek_other = ek_name_hex(&other.tpm);
    other.task.abort();
    fleet
        .admin
        .ek_override("board", &ek_other, "replacement board", None)
        .await
        .unwrap();
    wait_refused(&fleet.admin, "board", "is for another TPM").await;

    // An expired override admits nothing.
    let now = chrono::Utc::now();
    store
        .set_ek_override(&vouch_store::EkOverride {
            host_name: "board".into(),
            ek_name: Some(hex::decode(&ek_a).unwrap()),
            actor: "test".into(),
            reason: "expired".into(),
            created_at: now - chrono::TimeDelta::hours(2),
            expires_at: Some(now - chrono::TimeDelta::hours(1)),
        })
        .await
        .unwrap();
    wait_refused(&fleet.admin, "board", "has expired").await;
    assert_eq!(status_of(&fleet.admin, "board").await, None);

    // The override for this EK, in force: it enrols, and waits for an operator.
    fleet
        .admin
        .ek_override(
            "board",
            &ek_a,
            "no EK certificate chain on this board",
            None,
        )
        .await
        .unwrap();
    wait_for(&fleet.admin, "board", HostStatus::AwaitingApproval).await;
    // Overrides without a TPM named, or lasting too long, are refused.
    let refused = fleet
        .admin
        .ek_override("x", "", "no EK", None)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    let refused = fleet
        .admin
        .ek_override("x", &ek_a, "forever", Some("2999-01-01T00:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    h.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_declaring_evidence_labels_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), 1, None).await;
    let h = fleet.start_host(0, "spoof", &[("detected.firmware_version", "2.19")], LOG);
    let why = wait_refused(&fleet.admin, "spoof", "reserved").await;
    assert!(why.contains("detected.firmware_version"), "{why}");
    assert_eq!(status_of(&fleet.admin, "spoof").await, None);
    h.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_change_at_reenrolment_waits_for_approval() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), 1, None).await;
    let h = fleet.start_host(0, "edge", &[("site", "lon")], LOG);
    wait_for(&fleet.admin, "edge", HostStatus::Trusted).await;
    h.task.abort();
    // The same TPM re-enrols (fresh agent state) asking for another site.
    let h = fleet.start_host_with(0, "edge", &[("site", "par")], LOG, &fleet.ca, "edge-again");
    let waiting = wait_for(&fleet.admin, "edge", HostStatus::AwaitingApproval).await;
    assert_eq!(waiting.labels["site"], "lon", "old labels until approved");
    let reason = waiting.reasons.join(" ");
    assert!(
        reason.contains("~site=lon->par"),
        "shows the diff: {reason}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status_of(&fleet.admin, "edge").await,
        Some(HostStatus::AwaitingApproval)
    );
    let approved = fleet.admin.approve("edge").await.unwrap();
    assert_eq!(approved.labels["site"], "par");
    wait_for(&fleet.admin, "edge", HostStatus::Trusted).await;
    h.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_state_rollback_stays_until_an_operator_clears_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), 1, None).await;
    let h = fleet.start_host(0, "rb", &[], LOG);
    wait_for(&fleet.admin, "rb", HostStatus::Trusted).await;
    let store = fleet.server.verifier().state().store().clone();
    // The verifier has seen this TPM's clock far ahead within the same boot: the next quote
    // shows it going backwards.
    let set_clock = |clock: u64| {
        let store = store.clone();
        async move {
            loop {
                let mut host = store.host_by_name("rb").await.unwrap().unwrap();
                let mut c = host.counters.unwrap();
                c.clock = clock;
                host.counters = Some(c);
                match store.update_host(&host, chrono::Utc::now()).await {
                    Ok(_) => return,
                    Err(vouch_store::StoreError::Conflict) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
    };
    set_clock(u64::from(u32::MAX) * 1000).await;
    let untrusted = wait_for(&fleet.admin, "rb", HostStatus::Untrusted).await;
    assert!(
        untrusted
            .reasons
            .iter()
            .any(|r| r.contains("clock went backwards")),
        "{untrusted:?}"
    );
    // The TPM moves on past the high-water mark: the finding stays.
    set_clock(0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = fleet.admin.host("rb").await.unwrap();
    assert_eq!(still.summary.status, HostStatus::Untrusted);
    assert!(
        still
            .summary
            .reasons
            .iter()
            .any(|r| r.contains("stays until an operator clears it")),
        "{still:?}"
    );
    assert!(fleet.admin.clear("rb", "").await.is_err(), "needs a reason");
    fleet
        .admin
        .clear("rb", "TPM firmware update reset the clock; checked on site")
        .await
        .unwrap();
    wait_for(&fleet.admin, "rb", HostStatus::Trusted).await;
    h.task.abort();
}
