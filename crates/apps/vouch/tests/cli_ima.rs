//! `vouch ima` as a script sees it: stdout, stderr, exit status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure here is a failed test"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn ima() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/ima")
}

fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn replay_json_equals_expected_pcr10_in_every_listed_bank() {
    let mut checked = 0;
    for entry in std::fs::read_dir(ima()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".expected.json") else {
            continue;
        };
        let meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let want = &meta["expected"];
        let file = ima().join(format!("{stem}.bin"));
        let out = vouch(&["ima", "replay", file.to_str().unwrap(), "--json"]);
        if want["entry_count"] == 0 {
            assert!(!out.status.success(), "{stem}: no complete entry");
            continue;
        }
        assert!(
            out.status.success(),
            "{stem}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout.trim_end().lines().count(),
            1,
            "{stem}: one JSON line"
        );
        let got: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(got["entry_count"], want["entry_count"], "{stem}");
        assert_eq!(
            got["template_digest_mismatches"], want["template_digest_mismatch_indices"],
            "{stem}"
        );
        for bank in ["sha1", "sha256", "sha384", "sha512"] {
            if let Some(hex) = want[bank].as_str() {
                assert_eq!(got["pcr10"][bank].as_str(), Some(hex), "{stem} {bank}");
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked, 22,
        "4 banks of the 4 f40 lists, sha1 of the other 6"
    );
}

#[test]
fn replay_of_a_non_list_fails_with_one_line_naming_the_offset() {
    let logs = ima().join("../eventlogs");
    for f in [
        logs.join("bogus-34b.bin"),
        logs.join("empty.bin"),
        ima().join("tss-ima-ng-viol.bin"),
    ] {
        let out = vouch(&["ima", "replay", f.to_str().unwrap(), "--json"]);
        assert!(!out.status.success(), "{}", f.display());
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("byte offset"), "{err}");
    }
}

#[test]
fn replay_of_the_ascii_form_equals_replay_of_the_binary_list() {
    // Render the binary list as the kernel's ascii_runtime_measurements, then replay both.
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "f40-vtpm-imasig-sha256",
        "tss-ima-sig-viol",
        "tss-ima-legacy-sha1",
    ] {
        let bin = ima().join(format!("{name}.bin"));
        let bytes = std::fs::read(&bin).unwrap();
        let list = vouch_ima::MeasurementList::parse(&bytes).unwrap();
        let mut text = String::new();
        for e in list.entries() {
            let Ok(e) = e else { break };
            let t = vouch_ima::TemplateData::decode(&e).unwrap();
            let tmpl = String::from_utf8_lossy(e.template_name()).into_owned();
            let digest = t.digest.unwrap();
            let digest = if tmpl == "ima" {
                hex::encode(digest.bytes)
            } else {
                digest.to_prefixed_hex()
            };
            let mut line = format!(
                "{} {} {tmpl} {digest} {}",
                e.pcr(),
                hex::encode(e.template_hash_bytes()),
                String::from_utf8_lossy(t.name.unwrap())
            );
            if tmpl == "ima-sig" {
                line.push(' ');
                line.push_str(&hex::encode(t.sig.unwrap_or_default()));
            }
            text.push_str(&line);
            text.push('\n');
        }
        let ascii = dir.path().join(format!("{name}.ascii"));
        std::fs::write(&ascii, text).unwrap();
        let a = vouch(&["ima", "replay", bin.to_str().unwrap(), "--json"]);
        let b = vouch(&["ima", "replay", ascii.to_str().unwrap(), "--json"]);
        assert!(
            b.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        assert_eq!(a.stdout, b.stdout, "{name}");
    }
}

#[test]
fn check_names_path_and_digest_of_an_entry_outside_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let bin = ima().join("tss-ima-sig-sha256.bin");
    // A policy from the list itself, minus one path.
    let show = String::from_utf8(vouch(&["ima", "show", bin.to_str().unwrap()]).stdout).unwrap();
    let mut allow = serde_json::Map::new();
    let mut dropped = None;
    for line in show.lines().filter(|l| !l.starts_with('(')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (digest, path) = (f[3], f[4]);
        if path == "boot_aggregate" {
            continue;
        }
        if dropped.is_none() {
            dropped = Some((path.to_owned(), digest.to_owned()));
            continue;
        }
        allow.insert(path.to_owned(), serde_json::json!([digest]));
    }
    let policy = dir.path().join("p.json");
    std::fs::write(&policy, serde_json::json!({ "allow": allow }).to_string()).unwrap();
    let out = vouch(&[
        "ima",
        "check",
        bin.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rejected = got["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{got}");
    let (path, digest) = dropped.unwrap();
    assert_eq!(rejected[0]["path"], path.as_str());
    assert_eq!(rejected[0]["digest"], digest.as_str());

    // The full policy accepts everything.
    allow.insert(path, serde_json::json!([digest]));
    std::fs::write(&policy, serde_json::json!({ "allow": allow }).to_string()).unwrap();
    let out = vouch(&[
        "ima",
        "check",
        bin.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn empty_policy_rejects_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.json");
    std::fs::write(&policy, "{}").unwrap();
    let bin = ima().join("tss-ima-ng-sha1.bin");
    let out = vouch(&[
        "ima",
        "check",
        bin.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    // boot_aggregate is left to the PCR check; every file entry is rejected.
    assert_eq!(got["accepted"], 1);
    assert_eq!(got["rejected"].as_array().unwrap().len(), 5);
}

#[test]
fn policy_from_dir_allows_exactly_the_files_of_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("usr/bin/tool"), b"hello").unwrap();
    let out_p = dir.path().join("policy.json");
    let out = vouch(&[
        "ima",
        "policy",
        "from-dir",
        root.to_str().unwrap(),
        "-o",
        out_p.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&std::fs::read(&out_p).unwrap()).unwrap();
    assert_eq!(
        p["allow"]["/usr/bin/tool"][0],
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(p["allow"].as_object().unwrap().len(), 1);
}
