//! Every list in `testdata/ima` against its `expected.json` (testdata/MANIFEST.md, "ima/").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failure here is a failed test"
)]

use std::path::PathBuf;

use serde_json::Value;
use vouch_ima::{
    Convention, ImaError, MeasurementList, TemplateData, check_boot_aggregate, replay,
};
use vouch_tpm2::{Digest, HashAlg, PcrValues};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/ima")
}

fn cases() -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".expected.json") else {
            continue;
        };
        let meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let bin = std::fs::read(dir().join(meta["file"].as_str().unwrap())).unwrap();
        out.push((stem.to_owned(), bin, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 11, "testdata not found: {}", dir().display());
    out
}

const BANKS: [(&str, HashAlg); 4] = [
    ("sha1", HashAlg::Sha1),
    ("sha256", HashAlg::Sha256),
    ("sha384", HashAlg::Sha384),
    ("sha512", HashAlg::Sha512),
];

#[test]
fn every_list_replays_to_its_expected_pcr10_in_every_listed_bank() {
    let mut checked = 0;
    for (name, bytes, meta) in cases() {
        let expected = &meta["expected"];
        let want_count = expected["entry_count"].as_u64().unwrap();
        let list = match MeasurementList::parse(&bytes) {
            Ok(l) => l,
            Err(e) => {
                assert_eq!(want_count, 0, "{name}: {e}");
                continue;
            }
        };
        let all: Vec<HashAlg> = BANKS.iter().map(|b| b.1).collect();
        let r = replay(&list, &all, Convention::PerBank).unwrap();
        assert_eq!(r.entry_count, want_count, "{name}");
        assert_eq!(
            r.truncated.is_some(),
            meta["trailing_bytes_not_parsed"].as_u64().unwrap() > 0,
            "{name}: truncation reported iff the manifest lists trailing bytes"
        );
        let viol: Vec<u64> = serde_json::from_value(expected["violations"].clone()).unwrap();
        assert_eq!(r.violations, viol, "{name}");
        let mism: Vec<u64> =
            serde_json::from_value(expected["template_digest_mismatch_indices"].clone()).unwrap();
        assert_eq!(r.template_digest_mismatches, mism, "{name}");
        for (bank_name, alg) in BANKS {
            if let Some(hex) = expected[bank_name].as_str() {
                assert_eq!(
                    r.pcr10.value(alg).unwrap().to_hex(),
                    hex,
                    "{name} {bank_name}"
                );
                checked += 1;
            }
        }
        // Both conventions, every bank, as the manifest's final_pcrs give them.
        let finals = &meta["final_pcrs"]["10"];
        for (conv, key) in [
            (Convention::PerBank, "per_bank"),
            (Convention::Sha1Padded, "sha1_padded_legacy_kernels"),
        ] {
            let r = replay(&list, &all, conv).unwrap();
            for (bank_name, alg) in BANKS {
                if let Some(hex) = finals[key][bank_name].as_str() {
                    assert_eq!(
                        r.pcr10.value(alg).unwrap().to_hex(),
                        hex,
                        "{name} {key} {bank_name}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn detects_template_hash_size_of_per_bank_exports() {
    for (bank, alg) in BANKS {
        let bytes = std::fs::read(dir().join(format!("f40-vtpm-imasig-{bank}.bin"))).unwrap();
        assert_eq!(
            MeasurementList::parse(&bytes).unwrap().template_hash_alg(),
            alg
        );
    }
}

#[test]
fn rejects_truncated_single_entry_list_with_offset() {
    let bytes = std::fs::read(dir().join("tss-ima-ng-viol.bin")).unwrap();
    let err = MeasurementList::parse(&bytes).unwrap_err();
    assert!(err.offset > 0 && err.offset <= bytes.len(), "{err}");
}

#[test]
fn rejects_non_lists_cleanly() {
    let logs = dir().join("../eventlogs");
    for f in ["bogus-34b.bin", "empty.bin", "gce-rhel8-sb.bin"] {
        let bytes = std::fs::read(logs.join(f)).unwrap();
        let r = MeasurementList::parse(&bytes)
            .map_err(ImaError::Malformed)
            .and_then(|l| replay(&l, &[HashAlg::Sha1], Convention::PerBank));
        assert!(r.is_err(), "{f} must not be taken for a measurement list");
    }
}

#[test]
fn decodes_every_template_of_the_ibm_test_list() {
    let bytes = std::fs::read(dir().join("ibm-imatest-templates.bin")).unwrap();
    let list = MeasurementList::parse(&bytes).unwrap();
    let mut templates = std::collections::BTreeMap::<String, usize>::new();
    let mut sigs = 0;
    for e in list.entries() {
        let e = e.unwrap();
        *templates
            .entry(String::from_utf8_lossy(e.template_name()).into_owned())
            .or_default() += 1;
        let t = TemplateData::decode(&e).unwrap();
        if let Some(s) = t.signature() {
            let s = s.unwrap();
            assert_eq!((s.xattr_type, s.version), (3, 2));
            sigs += 1;
        }
    }
    let meta: Value = serde_json::from_slice(
        &std::fs::read(dir().join("ibm-imatest-templates.expected.json")).unwrap(),
    )
    .unwrap();
    let want: std::collections::BTreeMap<String, usize> =
        serde_json::from_value(meta["templates"].clone()).unwrap();
    assert_eq!(templates, want);
    assert!(sigs > 0);
}

#[test]
fn f40_entries_carry_paths_digests_and_digsig_v2_signatures() {
    let bytes = std::fs::read(dir().join("f40-vtpm-imasig-sha256.bin")).unwrap();
    let list = MeasurementList::parse(&bytes).unwrap();
    let mut signed = 0;
    for e in list.entries() {
        let e = e.unwrap();
        let t = TemplateData::decode(&e).unwrap();
        assert!(t.name.is_some() && t.digest.is_some());
        if let Some(s) = t.signature() {
            let s = s.unwrap();
            assert_eq!(s.xattr_type, 3);
            assert!(!s.signature.is_empty());
            signed += 1;
        }
    }
    assert!(signed > 0);
}

#[test]
fn boot_aggregate_is_checked_against_the_pcrs_it_covers() {
    // Build PCRs 0-9 whose sha256 boot aggregate we compute, then a one-entry list of it.
    let mut pcrs = PcrValues::new();
    let mut h = Vec::new();
    for i in 0..10u8 {
        let d = Digest::new(HashAlg::Sha256, &[i; 32]).unwrap();
        pcrs.insert(u32::from(i), d);
        h.extend_from_slice(d.as_bytes());
    }
    let agg = HashAlg::Sha256.hash(&h);
    let mut d = b"sha256:\0".to_vec();
    d.extend_from_slice(agg.as_bytes());
    let n = b"boot_aggregate\0";
    let mut data = Vec::new();
    data.extend_from_slice(&(d.len() as u32).to_le_bytes());
    data.extend_from_slice(&d);
    data.extend_from_slice(&(n.len() as u32).to_le_bytes());
    data.extend_from_slice(n);
    let mut e = 10u32.to_le_bytes().to_vec();
    e.extend_from_slice(HashAlg::Sha1.hash(&data).as_bytes());
    e.extend_from_slice(&6u32.to_le_bytes());
    e.extend_from_slice(b"ima-ng");
    e.extend_from_slice(&(data.len() as u32).to_le_bytes());
    e.extend_from_slice(&data);
    let list = MeasurementList::parse(&e).unwrap();
    let entry = list.entries().next().unwrap().unwrap();
    let ok = check_boot_aggregate(&entry, &pcrs).unwrap();
    assert_eq!((ok.bank, ok.last_pcr), (HashAlg::Sha256, 9));
    pcrs.insert(9, Digest::new(HashAlg::Sha256, &[0xAA; 32]).unwrap());
    assert!(matches!(
        check_boot_aggregate(&entry, &pcrs),
        Err(ImaError::BootAggregate(_))
    ));
    let mut only7 = PcrValues::new();
    for i in 0..8u8 {
        only7.insert(
            u32::from(i),
            Digest::new(HashAlg::Sha256, &[i; 32]).unwrap(),
        );
    }
    assert!(
        check_boot_aggregate(&entry, &only7).is_err(),
        "PCRs 8-9 are required"
    );
}
