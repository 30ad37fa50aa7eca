//! Every event log in `testdata/eventlogs` against its `expected` block (see MANIFEST.md:
//! `expected` is the truth; tpm2_eventlog 5.4 is wrong on some of these logs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions; a failure here is a failed test"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use vouch_tcglog::{
    BootStageKind, Event, EventData, EventLog, MachineState, Replay, SecureBoot, TcgLogError,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/eventlogs")
}

/// (name, log bytes, expected block) for every `*.expected.json`.
fn cases() -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".expected.json") else {
            continue;
        };
        let meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let bin = dir().join(meta["file"].as_str().unwrap());
        out.push((
            stem.to_owned(),
            std::fs::read(bin).unwrap(),
            meta["expected"].clone(),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 30, "testdata not found: {}", dir().display());
    out
}

fn pcr_map(replay: &Replay) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (bank, index, value) in replay.pcrs().iter() {
        m.entry(bank.name().to_owned())
            .or_default()
            .insert(index.to_string(), value.to_hex());
    }
    m
}

#[test]
fn every_log_replays_to_its_expected_pcrs_or_fails_cleanly() {
    let mut ok = 0;
    let mut rejected = 0;
    for (name, bytes, expected) in cases() {
        let result = EventLog::parse(&bytes).and_then(|log| Replay::from_log(&log));
        match expected["parse"].as_str().unwrap() {
            "ok" => {
                let replay = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                let want: BTreeMap<String, BTreeMap<String, String>> =
                    serde_json::from_value(expected["pcrs"].clone()).unwrap();
                let want: BTreeMap<_, _> =
                    want.into_iter().filter(|(_, b)| !b.is_empty()).collect();
                assert_eq!(pcr_map(&replay), want, "{name}: PCRs");
                assert_eq!(
                    replay.event_count() as u64,
                    expected["event_count"].as_u64().unwrap(),
                    "{name}: event count"
                );
                ok += 1;
            }
            "error" => {
                let err = result.expect_err(&name);
                assert!(matches!(err, TcgLogError::Malformed(_)), "{name}: {err}");
                let source = std::error::Error::source(&err).unwrap().to_string();
                assert!(source.contains("offset"), "{name}: {source}");
                rejected += 1;
            }
            other => panic!("{name}: unknown parse expectation {other}"),
        }
    }
    assert!(ok >= 30 && rejected >= 2, "ok {ok}, rejected {rejected}");
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.bin"))).unwrap()
}

fn state(name: &str) -> MachineState {
    let bytes = load(name);
    MachineState::from_log(&EventLog::parse(&bytes).unwrap()).unwrap()
}

/// Quoted values from a tpm2_eventlog YAML line `key: "value"` or `key: value`.
fn yaml_values(yaml: &str, key: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix(key))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .collect()
}

#[test]
fn every_event_of_every_good_log_decodes_without_a_log_error() {
    for (name, bytes, expected) in cases() {
        if expected["parse"] != "ok" {
            continue;
        }
        let log = EventLog::parse(&bytes).unwrap();
        let mut n = 0;
        for ev in log.events() {
            let ev = ev.unwrap_or_else(|e| panic!("{name}: {e}"));
            let data = ev.decoded();
            assert!(
                !data.to_string().is_empty()
                    || ev.data().is_empty()
                    || matches!(data, EventData::SCrtmVersion(_)),
                "{name} #{}",
                ev.index()
            );
            n += 1;
        }
        assert_eq!(
            n as u64,
            expected["event_count"].as_u64().unwrap(),
            "{name}"
        );
        MachineState::from_log(&log).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn digests_and_variable_names_agree_with_tpm2_eventlog() {
    let mut checked = 0;
    for (name, bytes, _) in cases() {
        let Ok(yaml) = std::fs::read_to_string(dir().join(format!("{name}.tpm2_eventlog.yaml")))
        else {
            continue;
        };
        let log = EventLog::parse(&bytes).unwrap();
        let events: Vec<Event<'_>> = log.events().collect::<Result<_, _>>().unwrap();
        let ours: Vec<String> = events
            .iter()
            .flat_map(|e| {
                e.digests()
                    .iter()
                    .map(|d| hex::encode(d.bytes()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(ours, yaml_values(&yaml, "Digest:"), "{name}: digests");
        let names: Vec<String> = events
            .iter()
            .filter_map(|e| match e.decoded() {
                EventData::Variable(v) => Some(v.name_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            yaml_values(&yaml, "UnicodeName:"),
            "{name}: variable names"
        );
        checked += 1;
    }
    assert!(checked >= 25, "{checked}");
}

#[test]
fn reads_secure_boot_state() {
    assert_eq!(state("gce-rhel8-sb").secure_boot, SecureBoot::Enabled);
    assert_eq!(
        state("gce-ubuntu2104-nosb").secure_boot,
        SecureBoot::Disabled
    );
    // The variable was measured with length 0: Secure Boot is off.
    assert_eq!(state("arch-sdboot-ws").secure_boot, SecureBoot::Disabled);
}

#[test]
fn reads_rhel_shim_grub_kernel_chain_and_command_line() {
    let s = state("gce-rhel8-sb");
    let kinds: Vec<_> = s.boot_chain.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BootStageKind::Shim,
            BootStageKind::Grub,
            BootStageKind::Kernel
        ]
    );
    assert!(
        s.boot_chain[0]
            .device_path
            .as_deref()
            .unwrap()
            .ends_with("\\EFI\\redhat\\shimx64.efi")
    );
    let cmdline = s.kernel_cmdline.unwrap();
    assert!(
        cmdline.contains("root=UUID=f3948fb4-cce7-4193-940a-c50052e93bf3"),
        "{cmdline}"
    );
    assert_eq!(
        s.firmware_version.as_deref(),
        Some("GCE Virtual Firmware v1")
    );
    let pk = s.pk.unwrap();
    assert_eq!(pk.certificates[0].subject.as_deref(), Some("newpk"));
    let db: Vec<_> =
        s.db.unwrap()
            .certificates
            .into_iter()
            .filter_map(|c| c.subject)
            .collect();
    assert!(
        db.iter().any(|c| c == "Microsoft Corporation UEFI CA 2011"),
        "{db:?}"
    );
    assert_eq!(s.dbx.unwrap().hashes.get("sha256"), Some(&183));
}

#[test]
fn reads_systemd_boot_command_line() {
    let s = state("arch-sdboot-ws");
    assert!(
        s.kernel_cmdline
            .unwrap()
            .contains("cryptdevice=UUID=5465369a-996d-42ca-9ad4-91d0082e0b34")
    );
    let kinds: Vec<_> = s.boot_chain.iter().map(|b| b.kind).collect();
    assert_eq!(kinds, [BootStageKind::SystemdBoot, BootStageKind::Kernel]);
}

#[test]
fn reads_s_crtm_version_and_blobs_of_hygon_server() {
    let s = state("hygon-hcrtm-sm3");
    assert_eq!(s.firmware_version.as_deref(), Some("Dhyana2.05.43.29.0003"));
    assert_eq!(s.firmware_blobs.len(), 2);
    assert_eq!(
        (s.firmware_blobs[0].base, s.firmware_blobs[0].length),
        (0x31e0_0000, 0x1c_0000)
    );
}

#[test]
fn reads_grub_kernel_command_line() {
    let s = state("gce-ubuntu1804-sev");
    assert_eq!(
        s.kernel_cmdline.as_deref(),
        Some("/boot/vmlinuz-5.4.0-1046-gcp root=LABEL=cloudimg-rootfs ro console=ttyS0")
    );
}

#[test]
fn windows_log_ends_with_unextended_trailer() {
    let bytes = load("ideapad-windows");
    let log = EventLog::parse(&bytes).unwrap();
    let last = log.events().last().unwrap().unwrap();
    assert_eq!(last.pcr(), vouch_tcglog::TRAILER_PCR);
    let s = MachineState::from_log(&log).unwrap();
    assert_eq!(s.boot_chain[0].kind, BootStageKind::WindowsBootManager);
}
