//! `vouch ekcert verify` against real EK certificates: the stable exit-code and JSON contract.
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

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn leaf(name: &str) -> PathBuf {
    repo().join("testdata/ekcerts/leaf").join(name)
}

fn synthetic(name: &str) -> PathBuf {
    repo().join("crates/formats/vouch-x509/testdata").join(name)
}

fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {out:?}"))
}

#[test]
fn verifies_ff_padded_stm_ek_cert_as_json() {
    let out = vouch(&[
        "ekcert",
        "verify",
        "--json",
        leaf("stm-ek-rsa-ffpadded.der").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["manufacturer"], "STMicroelectronics");
    assert_eq!(v["model"], "ST33HTPHAHB4");
    assert_eq!(v["version"], "id:00490004");
    assert_eq!(v["subject"], "");
    assert_eq!(
        v["issuer"],
        "CN=STM TPM EK Intermediate CA 05,O=STMicroelectronics NV,C=CH"
    );
    assert_eq!(v["serial"], "4cbd0fe61ee762edb28d50b268fc3586ff3d5e82");
    assert_eq!(v["not_before"], "2018-07-11T00:00:00Z");
    assert_eq!(v["not_after"], "2028-07-11T00:00:00Z");
    assert!(v["expired"].is_boolean());
    assert_eq!(v["padding_bytes"], 431);
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 4);
    assert_eq!(
        chain[0]["sha256"],
        "73ffb9ae9dad04399421be4419a4e260a2f227a2c579c8d7c825c1e7b5d8b1a6"
    );
    assert!(
        chain[3]["subject"]
            .as_str()
            .unwrap()
            .contains("GlobalSign Trusted Platform Module Root CA")
    );
}

#[test]
fn prints_a_readable_summary() {
    let out = vouch(&["ekcert", "verify", leaf("stm-ek-ecc.der").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "STMicroelectronics",
        "ST33HTPHAHB4",
        "STM TPM ECC Intermediate CA 01",
        "2028-07-26",
        "VALID",
    ] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
}

#[test]
fn unknown_issuer_fails_with_one_line_reason_and_json() {
    let cert = synthetic("synthetic-ek.der");
    let out = vouch(&["ekcert", "verify", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no issuer found"), "{stderr}");

    let out = vouch(&["ekcert", "verify", "--json", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("no issuer found"));
    assert_eq!(v["manufacturer"], "Infineon");
    assert_eq!(v["chain"], Value::Array(vec![]));
}

#[test]
fn roots_dir_adds_a_trust_anchor() {
    let dir = std::env::temp_dir().join(format!("vouch-cli-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        synthetic("synthetic-root.pem"),
        dir.join("synthetic-root.pem"),
    )
    .unwrap();
    let cert = synthetic("synthetic-ek.der");
    let out = vouch(&[
        "ekcert",
        "verify",
        "--json",
        "--roots",
        dir.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["valid"], true);
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1]["subject"], "CN=Vouch Synthetic EK Root");
}

#[test]
fn flipped_signature_bit_fails() {
    let mut der = std::fs::read(leaf("gce-uca-ecc-enc.der")).unwrap();
    let n = der.len();
    der[n - 20] ^= 0x01;
    let path = std::env::temp_dir().join(format!("vouch-cli-flipped-{}.der", std::process::id()));
    std::fs::write(&path, &der).unwrap();
    let out = vouch(&["ekcert", "verify", "--json", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert!(
        v["error"].as_str().unwrap().contains("bad signature"),
        "{v}"
    );
}

#[test]
fn garbage_input_fails_without_crashing() {
    let path = std::env::temp_dir().join(format!("vouch-cli-garbage-{}.der", std::process::id()));
    std::fs::write(&path, b"\x30\x82\xff\xffnot a certificate").unwrap();
    let out = vouch(&["ekcert", "verify", "--json", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["subject"], Value::Null);
    assert!(v["error"].as_str().unwrap().contains("truncated"), "{v}");
}
