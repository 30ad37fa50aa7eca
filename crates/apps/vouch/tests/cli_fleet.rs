//! `vouch fleet simulate --json`: the stable contract, through the built binary.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test: a failure is a test failure"
)]

use std::process::Command;

#[test]
fn fleet_simulate_json_prints_exactly_the_confusion_matrix() {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "fleet", "simulate", "--hosts", "1000", "--seed", "42", "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on one line: {stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "hosts",
        "legit_updated",
        "false_alarms",
        "tampered",
        "tampered_flagged",
        "tampered_component_right",
        "stragglers",
        "stragglers_flagged",
        "revoked",
        "revoked_flagged",
    ];
    let mut got = keys.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(v["hosts"], 1000);
    assert_eq!(v["false_alarms"], 0);
    assert_eq!(v["tampered"], 10);
    assert_eq!(v["tampered_flagged"], 10);
    assert_eq!(v["tampered_component_right"], 10);
    assert_eq!(v["stragglers_flagged"], v["stragglers"]);
    assert_eq!(v["revoked_flagged"], v["revoked"]);
    assert!(v["stragglers"].as_u64().unwrap() >= 2);
    assert!(v["revoked"].as_u64().unwrap() >= 2);
    assert!(v["legit_updated"].as_u64().unwrap() > 600);
}

#[test]
fn fleet_simulate_refuses_host_counts_out_of_range() {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["fleet", "simulate", "--hosts", "10", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
