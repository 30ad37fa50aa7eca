//! `vouch eventlog` as a script sees it: stdout, stderr, exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions; a failure here is a failed test"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn logs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/eventlogs")
}

fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .output()
        .unwrap()
}

fn expected(name: &str) -> Value {
    let text = std::fs::read(logs().join(format!("{name}.expected.json"))).unwrap();
    serde_json::from_slice::<Value>(&text).unwrap()["expected"].clone()
}

#[test]
fn replay_json_equals_expected_values() {
    for name in [
        "gce-rhel8-sb",
        "laptop-glinux",
        "hygon-hcrtm-sm3",
        "nuc-sha1",
        "ideapad-windows",
        "short-no-action",
    ] {
        let file = logs().join(format!("{name}.bin"));
        let out = vouch(&["eventlog", "replay", file.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout.trim_end().lines().count(),
            1,
            "{name}: exactly one JSON line"
        );
        let got: Value = serde_json::from_str(&stdout).unwrap();
        let want = expected(name);
        assert_eq!(got["event_count"], want["event_count"], "{name}");
        let want_pcrs: serde_json::Map<String, Value> = want["pcrs"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.as_object().unwrap().is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got["pcrs"], Value::Object(want_pcrs), "{name}");
        assert_eq!(
            got.as_object().unwrap().len(),
            2,
            "{name}: only event_count and pcrs"
        );
    }
}

#[test]
fn rejects_non_logs_with_one_stderr_line_naming_the_offset() {
    for name in ["bogus-34b", "empty"] {
        let file = logs().join(format!("{name}.bin"));
        for sub in ["show", "replay", "state"] {
            let out = vouch(
                &["eventlog", sub, file.to_str().unwrap(), "--json"]
                    [..if sub == "show" { 3 } else { 4 }],
            );
            assert!(!out.status.success(), "{name} {sub}");
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{name} {sub}: {stderr}");
            assert!(stderr.contains("offset 0"), "{name} {sub}: {stderr}");
            assert!(out.stdout.is_empty(), "{name} {sub}");
        }
    }
}

#[test]
fn show_lists_every_event_with_its_summary() {
    let file = logs().join("hygon-hcrtm-sm3.bin");
    let out = vouch(&["eventlog", "show", file.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1 + 204);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("EV_S_CRTM_VERSION") && l.contains("Dhyana2.05.43.29.0003"))
    );
}

#[test]
fn state_json_reports_secure_boot_and_command_line() {
    let file = logs().join("gce-ubuntu1804-sev.bin");
    let out = vouch(&["eventlog", "state", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    // MANIFEST.md calls this VM "Secure Boot on", but its log measured SecureBoot = 00
    // (tpm2_eventlog's YAML shows the same byte): the log is what we report.
    assert_eq!(got["secure_boot"], "disabled");
    assert_eq!(
        got["kernel_cmdline"],
        "/boot/vmlinuz-5.4.0-1046-gcp root=LABEL=cloudimg-rootfs ro console=ttyS0"
    );
    let sb = logs().join("gce-rhel8-sb.bin");
    let out = vouch(&["eventlog", "state", sb.to_str().unwrap(), "--json"]);
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["secure_boot"], "enabled");
    assert_eq!(got["boot_chain"][0]["kind"], "shim");
    let nosb = logs().join("gce-ubuntu2104-nosb.bin");
    let out = vouch(&["eventlog", "state", nosb.to_str().unwrap(), "--json"]);
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["secure_boot"], "disabled");
}
