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
use vouch_tcglog::{EventLog, Replay, TcgLogError};

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
                assert!(err.to_string().contains("offset"), "{name}: {err}");
                rejected += 1;
            }
            other => panic!("{name}: unknown parse expectation {other}"),
        }
    }
    assert!(ok >= 30 && rejected >= 2, "ok {ok}, rejected {rejected}");
}
