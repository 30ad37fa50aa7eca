//! The fleet timeline on 1,002 simulated hosts in 3 cohorts booted from real logs.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure is a test failure"
)]

use std::time::Instant;

use vouch_fleetsim::{SimConfig, run};

#[test]
fn fleet_timeline_flags_tampered_stragglers_and_revoked_and_never_an_updated_host() {
    let started = Instant::now();
    let report = run(&SimConfig::new(1002, 0x5EED)).unwrap();
    for line in &report.timeline {
        eprintln!("{line}");
    }
    let s = report.summary;
    eprintln!("{}", serde_json::to_string(&s).unwrap());
    eprintln!(
        "{} quotes in {:.1}s",
        report.quotes,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(s.hosts, 1002);
    assert_eq!(s.false_alarms, 0);
    // Every QEMU host but the stragglers took the firmware update, every GCE host the new
    // GRUB; tampered hosts are not counted as legitimately updated.
    assert!(s.legit_updated >= 334 + 334 - 3 - 10, "{s:?}");
    assert_eq!(s.tampered, 10);
    assert_eq!(s.tampered_flagged, 10);
    assert_eq!(s.tampered_component_right, 10);
    assert_eq!(s.stragglers, 3);
    assert_eq!(s.stragglers_flagged, 3);
    assert_eq!(s.revoked, 6);
    assert_eq!(s.revoked_flagged, 6);
    assert_eq!(report.revoke_affected, 6);
    // The last wave of each rollout: everyone on the new value except the stragglers.
    let fw = report
        .rollouts
        .iter()
        .find(|(w, _)| w == "bios-2.20 wave 3")
        .unwrap()
        .1;
    assert_eq!((fw.hosts, fw.new, fw.old, fw.unknown), (334, 331, 3, 0));
    let grub = report
        .rollouts
        .iter()
        .find(|(w, _)| w == "grub-2.06-2 wave 3")
        .unwrap()
        .1;
    assert_eq!(
        (grub.hosts, grub.new, grub.old, grub.unknown),
        (334, 334, 0, 0)
    );
    // Triage: the stragglers form one lifecycle group, the revoked hosts another, and each
    // tampered host is isolated.
    let isolated: usize = report
        .triage
        .iter()
        .filter(|g| g.assessment == vouch_appraisal::Assessment::Isolated)
        .map(|g| g.hosts.len())
        .sum();
    assert_eq!(isolated, 10, "{:#?}", report.triage);
}

#[test]
fn different_seeds_choose_different_hosts_and_still_hold() {
    let a = run(&SimConfig::new(300, 1)).unwrap();
    let b = run(&SimConfig::new(300, 2)).unwrap();
    assert_ne!(
        a.triage
            .iter()
            .flat_map(|g| g.hosts.clone())
            .collect::<Vec<_>>(),
        b.triage
            .iter()
            .flat_map(|g| g.hosts.clone())
            .collect::<Vec<_>>()
    );
    for r in [a, b] {
        let s = r.summary;
        assert_eq!(
            (
                s.false_alarms,
                s.tampered_flagged,
                s.tampered_component_right
            ),
            (0, 10, 10),
            "{s:?}"
        );
        assert_eq!(s.stragglers_flagged, s.stragglers);
        assert_eq!(s.revoked_flagged, s.revoked);
    }
}

#[test]
fn refuses_fleets_too_small_for_the_timeline() {
    assert!(run(&SimConfig::new(10, 1)).is_err());
}
