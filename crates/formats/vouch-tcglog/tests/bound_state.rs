//! Only bound data is reported as state: bits flipped in the data of real Secure Boot
//! variable events (the log still frames and replays to the same PCRs) never show as a
//! changed value, only as an unknown field listed in `unverified`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test helpers outside #[test] functions; a failure here is a failed test"
)]

use std::path::PathBuf;

use serde_json::Value;
use vouch_tcglog::data::{EventData, guid};
use vouch_tcglog::{EventLog, EventType, MachineState, Replay, StateField, UnverifiedReason};

/// Real logs whose PCR 7 variables are hashed whole (name and GUID included): a physical
/// laptop and a physical server (both SHA-1 + SHA-256), an HP machine with only SHA-1, and
/// OVMF under QEMU (SHA-256 only) with enrolled keys.
const LOGS: [&str; 4] = [
    "laptop-glinux",
    "supermicro-xcat-2",
    "hp-sha1-ebsmissing",
    "qemu-rhel9-moktrusted",
];

const FLIPS: usize = 12;

fn load(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../testdata/eventlogs")
        .join(format!("{name}.bin"));
    std::fs::read(path).unwrap()
}

/// A Secure Boot variable event: index, data offset and length in the log, and its field.
#[derive(Debug, Clone, Copy)]
struct Target {
    index: usize,
    offset: usize,
    len: usize,
    field: StateField,
}

fn targets(bytes: &[u8]) -> Vec<Target> {
    let log = EventLog::parse(bytes).unwrap();
    let mut out = Vec::new();
    for ev in log.events() {
        let ev = ev.unwrap();
        if ev.pcr() != 7 || ev.event_type() != EventType::EV_EFI_VARIABLE_DRIVER_CONFIG {
            continue;
        }
        let EventData::Variable(v) = ev.decoded() else {
            continue;
        };
        let field = match (v.name_string().as_str(), v.guid) {
            ("SecureBoot", guid::EFI_GLOBAL_VARIABLE) => StateField::SecureBoot,
            ("PK", guid::EFI_GLOBAL_VARIABLE) => StateField::Pk,
            ("KEK", guid::EFI_GLOBAL_VARIABLE) => StateField::Kek,
            ("db", guid::EFI_IMAGE_SECURITY_DATABASE) => StateField::Db,
            ("dbx", guid::EFI_IMAGE_SECURITY_DATABASE) => StateField::Dbx,
            _ => continue,
        };
        out.push(Target {
            index: ev.index(),
            offset: ev.data_offset(),
            len: ev.data().len(),
            field,
        });
    }
    out
}

/// `FLIPS` (byte, bit) positions spread evenly over `len` bytes: the GUID, both lengths,
/// the name and the contents all get some.
fn positions(len: usize) -> Vec<(usize, u8)> {
    (0..FLIPS)
        .map(|k| (k * len / FLIPS, u8::try_from(k * 3 % 8).unwrap()))
        .collect()
}

fn key(field: StateField) -> String {
    serde_json::to_value(field)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn is_absent(v: &Value) -> bool {
    v.is_null() || v == "unknown" || v.as_array().is_some_and(Vec::is_empty)
}

fn json(s: &MachineState) -> serde_json::Map<String, Value> {
    serde_json::to_value(s)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// Every field of `after` is as in `before`, or absent and listed as unverified for
/// `target`'s event; `target`'s own field is the latter.
fn assert_only_unverified(before: &MachineState, after: &MachineState, target: Target, what: &str) {
    let listed = |field: StateField| {
        after
            .unverified
            .iter()
            .any(|u| u.event == target.index && u.field == field)
    };
    assert!(
        after.unverified.iter().all(|u| u.event == target.index),
        "{what}: {:?}",
        after.unverified
    );
    let (b, a) = (json(before), json(after));
    for (k, got) in &a {
        let was = b.get(k).unwrap_or(&Value::Null);
        if got == was || k == "unverified" {
            continue;
        }
        if k == "undecodable_events" {
            // The flipped event may no longer decode: a true fact about the log.
            let extra: Vec<_> = got
                .as_array()
                .unwrap()
                .iter()
                .skip(was.as_array().map_or(0, Vec::len))
                .collect();
            assert!(
                got.as_array().unwrap().starts_with(was.as_array().unwrap())
                    && extra.iter().all(|e| e[0] == target.index),
                "{what}: {got}"
            );
            continue;
        }
        let field: StateField = [
            StateField::SecureBoot,
            StateField::Pk,
            StateField::Kek,
            StateField::Db,
            StateField::Dbx,
            StateField::Authorities,
            StateField::KernelCmdline,
            StateField::FirmwareVersion,
            StateField::BootOrder,
            StateField::BootEntries,
            StateField::ErrorSeparators,
        ]
        .into_iter()
        .find(|f| key(*f) == *k)
        .unwrap_or_else(|| panic!("{what}: {k} changed from {was} to {got}"));
        assert!(
            is_absent(got) && listed(field),
            "{what}: {k} changed from {was} to {got} without being listed unverified"
        );
    }
    let own = key(target.field);
    assert!(
        is_absent(&a[&own]) && listed(target.field),
        "{what}: {own} is {} and unverified is {:?}",
        a[&own],
        after.unverified
    );
    let reasons = after.unverified.iter().map(|u| u.reason);
    assert!(
        reasons
            .clone()
            .all(|r| r != UnverifiedReason::NameNotCovered),
        "{what}"
    );
}

#[test]
fn real_secure_boot_variables_are_bound_so_the_check_is_not_vacuous() {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for name in LOGS {
        let bytes = load(name);
        let state = MachineState::from_log(&EventLog::parse(&bytes).unwrap()).unwrap();
        assert!(
            state.unverified.is_empty(),
            "{name}: {:?}",
            state.unverified
        );
        let found = targets(&bytes);
        for t in &found {
            let v = &json(&state)[&key(t.field)];
            assert!(!is_absent(v), "{name}: {:?} is absent", t.field);
            *seen.entry(key(t.field)).or_default() += 1;
        }
    }
    for field in ["secure_boot", "pk", "kek", "db", "dbx"] {
        assert!(
            seen.get(field).is_some_and(|n| *n >= 2),
            "{field}: {seen:?}"
        );
    }
}

#[test]
fn flipped_bits_in_secure_boot_variables_never_show_as_a_changed_value() {
    let mut cases = 0;
    for name in LOGS {
        let bytes = load(name);
        let log = EventLog::parse(&bytes).unwrap();
        let before = MachineState::from_log(&log).unwrap();
        let pcrs = Replay::from_log(&log).unwrap().pcrs().clone();
        for target in targets(&bytes) {
            let spots = positions(target.len);
            // Each bit alone, then all twelve at once.
            let mut flips: Vec<Vec<(usize, u8)>> = spots.iter().map(|p| vec![*p]).collect();
            flips.push(spots.clone());
            for set in flips {
                let mut copy = bytes.clone();
                for (byte, bit) in &set {
                    copy[target.offset + byte] ^= 1 << bit;
                }
                let what = format!(
                    "{name} event {} ({:?}) flips {set:?}",
                    target.index, target.field
                );
                let log = EventLog::parse(&copy).unwrap();
                assert_eq!(
                    Replay::from_log(&log).unwrap().pcrs(),
                    &pcrs,
                    "{what}: the log must still replay to the same PCRs"
                );
                let after = MachineState::from_log(&log).unwrap();
                assert_only_unverified(&before, &after, target, &what);
                cases += 1;
            }
        }
    }
    // 4 logs x 5 variables x (12 single flips + 1 with all twelve).
    assert_eq!(cases, LOGS.len() * 5 * (FLIPS + 1));
}

#[test]
fn only_logs_that_do_not_bind_their_data_have_unverified_state() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/eventlogs");
    let mut got = Vec::new();
    let mut logs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let Ok(log) = EventLog::parse(&bytes) else {
            continue;
        };
        let Ok(state) = MachineState::from_log(&log) else {
            continue;
        };
        logs += 1;
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        for u in &state.unverified {
            got.push((name.clone(), u.event, key(u.field), u.reason));
        }
    }
    got.sort();
    let mut want = Vec::new();
    // TPM 1.2-era Lenovo firmware hashes PCR 7 variables' contents without their names.
    for (event, field) in [
        (6, "secure_boot"),
        (7, "pk"),
        (8, "kek"),
        (9, "db"),
        (10, "dbx"),
    ] {
        want.push((
            "thinkpad-tpm12".to_owned(),
            event,
            field.to_owned(),
            UnverifiedReason::NameNotCovered,
        ));
    }
    // Skiboot logs its separators as text and extends 0xFFFFFFFF.
    for event in 19..=26 {
        want.push((
            "ibm-acs-sample-tpm2".to_owned(),
            event,
            "error_separators".to_owned(),
            UnverifiedReason::NotBound,
        ));
    }
    want.sort();
    assert!(logs >= 30, "{logs}");
    assert_eq!(got, want);
}
