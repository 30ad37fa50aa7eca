//! Unit tests on hand-built entries.
#![allow(clippy::arithmetic_side_effects, reason = "test code")]

use proptest::prelude::*;
use vouch_tpm2::{Digest, HashAlg, PcrValues};

use crate::list::MeasurementList;
use crate::replay::{Convention, RunningPcr10, replay};
use crate::typed::TemplateData;
use crate::{ImaError, ascii};

/// One ima-ng entry with a SHA-1 template hash (computed, or all-zero for a violation).
pub(crate) fn ima_ng_entry(path: &str, digest: &[u8; 32], violation: bool) -> Vec<u8> {
    let mut d = b"sha256:\0".to_vec();
    d.extend_from_slice(digest);
    let mut n = path.as_bytes().to_vec();
    n.push(0);
    let mut data = Vec::new();
    data.extend_from_slice(&u32::try_from(d.len()).unwrap().to_le_bytes());
    data.extend_from_slice(&d);
    data.extend_from_slice(&u32::try_from(n.len()).unwrap().to_le_bytes());
    data.extend_from_slice(&n);
    let th = if violation {
        [0u8; 20].to_vec()
    } else {
        HashAlg::Sha1.hash(&data).as_bytes().to_vec()
    };
    let mut e = 10u32.to_le_bytes().to_vec();
    e.extend_from_slice(&th);
    e.extend_from_slice(&6u32.to_le_bytes());
    e.extend_from_slice(b"ima-ng");
    e.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    e.extend_from_slice(&data);
    e
}

fn list_of(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            ima_ng_entry(
                &format!("/usr/bin/f{i}"),
                &[u8::try_from(i % 256).unwrap(); 32],
                false,
            )
        })
        .collect()
}

#[test]
fn decodes_ima_ng_entry_fields() {
    let bytes = ima_ng_entry("/usr/bin/true", &[7; 32], false);
    let list = MeasurementList::parse(&bytes).unwrap();
    assert_eq!(list.template_hash_alg(), HashAlg::Sha1);
    let e = list.entries().next().unwrap().unwrap();
    let t = TemplateData::decode(&e).unwrap();
    assert_eq!(t.name, Some(b"/usr/bin/true".as_slice()));
    assert_eq!(t.digest.unwrap().bytes, &[7; 32]);
    assert_eq!(
        t.digest.unwrap().to_prefixed_hex(),
        format!("sha256:{}", "07".repeat(32))
    );
    assert!(e.template_hash_matches());
}

#[test]
fn rejects_empty_input() {
    assert!(MeasurementList::parse(b"").is_err());
}

#[test]
fn rejects_truncated_first_entry_with_offset() {
    let bytes = ima_ng_entry("/x", &[1; 32], false);
    let cut = &bytes[..bytes.len() - 1];
    let err = MeasurementList::parse(cut).unwrap_err();
    assert!(err.offset > 0 && err.offset <= cut.len(), "{err}");
}

#[test]
fn keeps_complete_entries_before_a_truncated_tail() {
    let mut bytes = list_of(3);
    bytes.extend_from_slice(&[10, 0]);
    let list = MeasurementList::parse(&bytes).unwrap();
    let r = replay(&list, &[HashAlg::Sha1], Convention::PerBank).unwrap();
    assert_eq!(r.entry_count, 3);
    assert!(r.truncated.is_some());
}

#[test]
fn violation_extends_all_ff() {
    let bytes = ima_ng_entry("/x", &[1; 32], true);
    let list = MeasurementList::with_template_hash_alg(&bytes, HashAlg::Sha1);
    let r = replay(
        &list,
        &[HashAlg::Sha1, HashAlg::Sha256],
        Convention::PerBank,
    )
    .unwrap();
    let mut want1 = HashAlg::Sha1.zero();
    want1.extend(&[0xFF; 20]);
    let mut want256 = HashAlg::Sha256.zero();
    want256.extend(&[0xFF; 32]);
    assert_eq!(r.pcr10.value(HashAlg::Sha1), Some(want1));
    assert_eq!(r.pcr10.value(HashAlg::Sha256), Some(want256));
    assert_eq!(r.violations, vec![0]);
    assert!(r.template_digest_mismatches.is_empty());
}

#[test]
fn reports_template_hash_mismatch_index() {
    let mut bytes = list_of(2);
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // change the last path byte of entry 1
    let list = MeasurementList::with_template_hash_alg(&bytes, HashAlg::Sha1);
    let r = replay(&list, &[HashAlg::Sha1], Convention::PerBank).unwrap();
    assert_eq!(r.template_digest_mismatches, vec![1]);
}

#[test]
fn sha1_padded_and_per_bank_differ_for_sha256() {
    let bytes = list_of(2);
    let list = MeasurementList::parse(&bytes).unwrap();
    let a = replay(&list, &[HashAlg::Sha256], Convention::PerBank).unwrap();
    let b = replay(&list, &[HashAlg::Sha256], Convention::Sha1Padded).unwrap();
    assert_ne!(
        a.pcr10.value(HashAlg::Sha256),
        b.pcr10.value(HashAlg::Sha256)
    );
    // per bank: extend sha256(template data)
    let e: Vec<_> = list.entries().map(Result::unwrap).collect();
    let mut want = HashAlg::Sha256.zero();
    for x in &e {
        want.extend(x.compute_template_hash(HashAlg::Sha256).as_bytes());
    }
    assert_eq!(a.pcr10.value(HashAlg::Sha256), Some(want));
}

fn quoted(v: Digest) -> PcrValues {
    let mut p = PcrValues::new();
    p.insert(10, v);
    p
}

#[test]
fn incremental_replay_equals_full_replay_and_stops_at_the_quote() {
    let bytes = list_of(50);
    let list = MeasurementList::parse(&bytes).unwrap();
    let full = replay(&list, &[HashAlg::Sha256], Convention::PerBank).unwrap();
    // value after 30 entries
    let mut at30 = RunningPcr10::new(&[HashAlg::Sha256], Convention::PerBank);
    for e in list.entries().take(30) {
        at30.consume(&e.unwrap()).unwrap();
    }
    let mut state = RunningPcr10::new(&[HashAlg::Sha256], Convention::PerBank);
    let m = state
        .advance_to_quote(
            list.entries().take(20),
            &quoted(at30.value(HashAlg::Sha256).unwrap()),
        )
        .unwrap_err();
    assert!(matches!(m, ImaError::Divergence(d) if d.verified_entries == 0 && d.examined == 20));
    assert_eq!(state.entry_count(), 0, "state unchanged on divergence");
    // the agent sends everything; the quote was taken after entry 29
    let m = state
        .advance_to_quote(
            list.entries(),
            &quoted(at30.value(HashAlg::Sha256).unwrap()),
        )
        .unwrap();
    assert_eq!((m.entry_count, m.new_entries, m.unused), (30, 30, 20));
    // next attestation: the tail from 30
    let tail: Vec<u8> = bytes[list.entries().nth(30).unwrap().unwrap().offset()..].to_vec();
    let tail_list = MeasurementList::with_template_hash_alg(&tail, HashAlg::Sha1);
    let m = state
        .advance_to_quote(
            tail_list.entries_from(30),
            &quoted(full.pcr10.value(HashAlg::Sha256).unwrap()),
        )
        .unwrap();
    assert_eq!((m.entry_count, m.new_entries, m.unused), (50, 20, 0));
    assert_eq!(state, full.pcr10);
}

#[test]
fn incremental_replay_refuses_out_of_order_entries() {
    let bytes = list_of(3);
    let list = MeasurementList::parse(&bytes).unwrap();
    let mut s = RunningPcr10::new(&[HashAlg::Sha1], Convention::PerBank);
    let e = list.entries().nth(1).unwrap().unwrap();
    assert!(matches!(
        s.consume(&e),
        Err(ImaError::OutOfOrder {
            expected: 0,
            got: 1
        })
    ));
}

#[test]
fn ascii_list_converts_to_the_same_binary() {
    let bytes = list_of(3);
    let list = MeasurementList::parse(&bytes).unwrap();
    let mut text = String::new();
    for e in list.entries() {
        let e = e.unwrap();
        let t = TemplateData::decode(&e).unwrap();
        text.push_str(&format!(
            "10 {} ima-ng {} {}\n",
            hex::encode(e.template_hash_bytes()),
            t.digest.unwrap().to_prefixed_hex(),
            String::from_utf8_lossy(t.name.unwrap())
        ));
    }
    assert!(ascii::looks_like_ascii(text.as_bytes()));
    let (bin, alg) = ascii::to_binary(text.as_bytes()).unwrap();
    assert_eq!(alg, HashAlg::Sha1);
    assert_eq!(bin, bytes);
}

#[test]
fn ascii_path_with_spaces_goes_to_the_name_field() {
    let bytes = ima_ng_entry("/opt/my app/bin", &[3; 32], false);
    let list = MeasurementList::parse(&bytes).unwrap();
    let e = list.entries().next().unwrap().unwrap();
    let text = format!(
        "10 {} ima-ng sha256:{} /opt/my app/bin\n",
        hex::encode(e.template_hash_bytes()),
        "03".repeat(32)
    );
    let (bin, _) = ascii::to_binary(text.as_bytes()).unwrap();
    assert_eq!(bin, bytes);
}

#[test]
fn ascii_rejects_bad_line_with_line_number() {
    let err = ascii::to_binary(b"10 zz ima-ng sha256:00 /x\n").unwrap_err();
    assert!(matches!(err, ImaError::Ascii { line: 1, .. }), "{err}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(list) = MeasurementList::parse(&bytes) {
            let _ = replay(&list, &HashAlg::ALL, Convention::PerBank);
            let _ = replay(&list, &[HashAlg::Sha256], Convention::Sha1Padded);
            for e in list.entries() {
                let Ok(e) = e else { break };
                let _ = TemplateData::decode(&e).map(|t| t.signature());
                let _ = e.fields().count();
            }
        }
        let _ = ascii::to_binary(&bytes);
    }

    #[test]
    fn mutated_valid_lists_never_panic(pos in 0usize..400, byte in any::<u8>()) {
        let mut bytes = list_of(3);
        let i = pos % bytes.len();
        bytes[i] = byte;
        if let Ok(list) = MeasurementList::parse(&bytes) {
            let _ = replay(&list, &HashAlg::ALL, Convention::PerBank);
        }
    }
}
