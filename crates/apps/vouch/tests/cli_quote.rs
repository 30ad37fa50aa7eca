//! `vouch quote verify` on the real GCE vTPM quotes of testdata/quotes, written out as the
//! files tpm2-tools would produce, with and without the matching event log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../testdata")
        .join(rel)
}

/// Write ak.pub (TPM2B_PUBLIC), BANK.msg, BANK.sig, BANK.pcrs (values format) for each bank.
fn write_gce_files(dir: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("quotes/gce-cos85-nonce9009.expected.json")).unwrap(),
    )
    .unwrap();
    let ak = hex::decode(v["ak_public_tpmt_hex"].as_str().unwrap()).unwrap();
    let mut tpm2b = u16::try_from(ak.len()).unwrap().to_be_bytes().to_vec();
    tpm2b.extend_from_slice(&ak);
    std::fs::write(dir.join("ak.pub"), tpm2b).unwrap();
    let mut banks = Vec::new();
    for q in v["quotes"].as_array().unwrap() {
        let bank = q["bank"].as_str().unwrap().to_owned();
        std::fs::write(
            dir.join(format!("{bank}.msg")),
            hex::decode(q["tpms_attest_hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{bank}.sig")),
            hex::decode(q["tpmt_signature_hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let mut values = Vec::new();
        for i in 0..24 {
            values.extend(hex::decode(q["pcrs"][i.to_string()].as_str().unwrap()).unwrap());
        }
        std::fs::write(dir.join(format!("{bank}.pcrs")), values).unwrap();
        banks.push(bank);
    }
    banks
}

fn verify(dir: &Path, bank: &str, nonce: &str, log: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.current_dir(dir).args([
        "quote",
        "verify",
        "--ak",
        "ak.pub",
        "--message",
        &format!("{bank}.msg"),
        "--signature",
        &format!("{bank}.sig"),
        "--pcrs",
        &format!("{bank}.pcrs"),
        "--nonce",
        nonce,
        "--json",
    ]);
    if let Some(l) = log {
        cmd.arg("--eventlog").arg(l);
    }
    cmd.output().unwrap()
}

#[test]
fn real_gce_quotes_verify_and_their_event_log_explains_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = testdata("quotes/gce-cos85-nonce9009.eventlog.bin");
    for bank in write_gce_files(dir.path()) {
        let out = verify(dir.path(), &bank, "9009", Some(&log));
        assert!(
            out.status.success(),
            "{bank}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["reset_count"], 10);
        assert_eq!(v["firmware_version"], "0x2016051100162800");
        assert_eq!(v["event_log"]["matches"], true);
    }
}

#[test]
fn a_different_machines_log_is_refused_naming_the_pcrs() {
    let dir = tempfile::tempdir().unwrap();
    write_gce_files(dir.path());
    let other = testdata("eventlogs/gce-rhel8-sb.bin");
    let out = verify(dir.path(), "sha256", "9009", Some(&other));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("sha256[0]") && stderr.contains("sha256[4]"),
        "{stderr}"
    );
}

#[test]
fn wrong_nonce_fails_with_reason_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    write_gce_files(dir.path());
    let out = verify(dir.path(), "sha1", "9008", None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonce mismatch"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
}
