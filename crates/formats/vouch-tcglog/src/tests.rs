//! Unit tests for framing and replay, with a small log encoder.
#![allow(
    clippy::arithmetic_side_effects,
    reason = "test code computes offsets into logs it built"
)]

use proptest::prelude::*;
use vouch_tpm2::{Digest, HashAlg};

use super::*;

/// A tiny encoder for test logs.
pub(crate) mod enc {
    use vouch_tpm2::HashAlg;

    pub(crate) fn legacy_event(pcr: u32, ty: u32, digest: &[u8; 20], data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&pcr.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(digest);
        v.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    /// Spec ID event for `algs` (id, size).
    pub(crate) fn spec_id(algs: &[(u16, u16)]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(b"Spec ID Event03\0");
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&[0, 2, 0, 2]);
        d.extend_from_slice(&u32::try_from(algs.len()).unwrap().to_le_bytes());
        for (id, size) in algs {
            d.extend_from_slice(&id.to_le_bytes());
            d.extend_from_slice(&size.to_le_bytes());
        }
        d.push(0);
        legacy_event(0, 3, &[0; 20], &d)
    }

    pub(crate) fn agile_event(
        pcr: u32,
        ty: u32,
        digests: &[(u16, Vec<u8>)],
        data: &[u8],
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&pcr.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&u32::try_from(digests.len()).unwrap().to_le_bytes());
        for (id, d) in digests {
            v.extend_from_slice(&id.to_le_bytes());
            v.extend_from_slice(d);
        }
        v.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A `UEFI_VARIABLE_DATA`.
    pub(crate) fn variable(guid: crate::data::Guid, name: &str, data: &[u8]) -> Vec<u8> {
        let mut v = guid.as_bytes().to_vec();
        let units: Vec<u16> = name.encode_utf16().collect();
        v.extend_from_slice(&(units.len() as u64).to_le_bytes());
        v.extend_from_slice(&(data.len() as u64).to_le_bytes());
        for u in units {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    /// An agile event whose digests are the hashes of `data` in each of `algs`.
    pub(crate) fn measured(pcr: u32, ty: u32, algs: &[HashAlg], data: &[u8]) -> Vec<u8> {
        let ds: Vec<(u16, Vec<u8>)> = algs
            .iter()
            .map(|a| (a.tpm_alg_id(), a.hash(data).as_bytes().to_vec()))
            .collect();
        agile_event(pcr, ty, &ds, data)
    }
}

const SHA1: (u16, u16) = (0x0004, 20);
const SHA256: (u16, u16) = (0x000B, 32);

fn two_bank_log(events: &[Vec<u8>]) -> Vec<u8> {
    let mut log = enc::spec_id(&[SHA1, SHA256]);
    for e in events {
        log.extend_from_slice(e);
    }
    log
}

fn extend(start: Digest, data: &[&[u8]]) -> Digest {
    let mut d = start;
    for x in data {
        d.extend(d.alg().hash(x).as_bytes());
    }
    d
}

#[test]
fn replays_two_banks_and_counts_the_spec_id_event() {
    let banks = [HashAlg::Sha1, HashAlg::Sha256];
    let log = two_bank_log(&[
        enc::measured(0, 8, &banks, b"fw"),
        enc::measured(4, 0x8000_0003, &banks, b"app"),
        enc::measured(0, 4, &banks, &[0; 4]),
    ]);
    let r = parse_and_replay(&log).unwrap();
    assert_eq!(r.event_count(), 4);
    for alg in banks {
        assert_eq!(
            r.pcrs().get(alg, 0),
            Some(&extend(alg.zero(), &[b"fw", &[0; 4]]))
        );
        assert_eq!(r.pcrs().get(alg, 4), Some(&extend(alg.zero(), &[b"app"])));
    }
    assert_eq!(r.pcrs().len(), 4);
}

#[test]
fn never_extends_no_action_events() {
    let log = two_bank_log(&[enc::measured(1, 3, &[HashAlg::Sha256], b"x")]);
    let r = parse_and_replay(&log).unwrap();
    assert!(r.pcrs().is_empty());
    assert_eq!(r.event_count(), 2);
}

#[test]
fn startup_locality_three_starts_pcr0_at_three() {
    let mut loc = b"StartupLocality\0".to_vec();
    loc.push(3);
    let log = two_bank_log(&[
        enc::agile_event(0, 3, &[(0x4, vec![0; 20]), (0xB, vec![0; 32])], &loc),
        enc::measured(0, 8, &[HashAlg::Sha256], b"fw"),
    ]);
    let r = parse_and_replay(&log).unwrap();
    assert_eq!(r.pcr0_locality(), 3);
    let start = Digest::locality_start(HashAlg::Sha256, 3);
    assert_eq!(
        r.pcrs().get(HashAlg::Sha256, 0),
        Some(&extend(start, &[b"fw"]))
    );
    // A bank the event lacks is not extended.
    assert_eq!(r.pcrs().get(HashAlg::Sha1, 0), None);
}

#[test]
fn hcrtm_event_starts_pcr0_at_four() {
    let log = two_bank_log(&[enc::measured(0, 0x8000_0010, &[HashAlg::Sha1], b"HCRTM")]);
    let r = parse_and_replay(&log).unwrap();
    let start = Digest::locality_start(HashAlg::Sha1, 4);
    assert_eq!(
        r.pcrs().get(HashAlg::Sha1, 0),
        Some(&extend(start, &[b"HCRTM"]))
    );
}

#[test]
fn skips_unknown_algorithms_by_the_spec_id_size() {
    let mut log = enc::spec_id(&[(0x0099, 7), SHA256]);
    log.extend(enc::agile_event(
        2,
        1,
        &[
            (0x0099, vec![0xAA; 7]),
            (0xB, HashAlg::Sha256.hash(b"d").as_bytes().to_vec()),
        ],
        b"d",
    ));
    let r = parse_and_replay(&log).unwrap();
    assert_eq!(
        r.pcrs().get(HashAlg::Sha256, 2),
        Some(&extend(HashAlg::Sha256.zero(), &[b"d"]))
    );
    assert_eq!(r.pcrs().len(), 1);
}

#[test]
fn replays_sha384_sha512_and_sm3_banks() {
    let algs = [(0xC, 48), (0xD, 64), (0x12, 32)];
    let banks = [HashAlg::Sha384, HashAlg::Sha512, HashAlg::Sm3_256];
    let mut log = enc::spec_id(&algs);
    log.extend(enc::measured(7, 4, &banks, &[0; 4]));
    let r = parse_and_replay(&log).unwrap();
    for b in banks {
        assert_eq!(r.pcrs().get(b, 7), Some(&extend(b.zero(), &[&[0; 4]])));
    }
}

#[test]
fn padding_ends_the_log_cleanly() {
    for fill in [0x00u8, 0xFF] {
        let mut log = two_bank_log(&[enc::measured(4, 1, &[HashAlg::Sha1], b"a")]);
        log.extend(std::iter::repeat_n(fill, 1000));
        let r = parse_and_replay(&log).unwrap();
        assert_eq!(r.event_count(), 2, "fill {fill:#x}");
    }
}

#[test]
fn accepts_windows_trailer_without_extending_it() {
    let log = two_bank_log(&[
        enc::measured(4, 1, &[HashAlg::Sha1], b"a"),
        enc::agile_event(TRAILER_PCR, 3, &[(0x4, vec![0; 20])], b"WBCL"),
    ]);
    let r = parse_and_replay(&log).unwrap();
    assert_eq!(r.event_count(), 3);
    assert_eq!(r.pcrs().len(), 1);
}

#[test]
fn rejects_trailer_pcr_on_measured_event() {
    let log = two_bank_log(&[enc::measured(TRAILER_PCR, 1, &[HashAlg::Sha1], b"a")]);
    let spec_len = enc::spec_id(&[SHA1, SHA256]).len();
    let err = parse_and_replay(&log).unwrap_err();
    assert_eq!(err.offset(), Some(spec_len));
}

#[test]
fn rejects_truncated_event() {
    let log = two_bank_log(&[enc::measured(
        4,
        1,
        &[HashAlg::Sha1, HashAlg::Sha256],
        b"abcdef",
    )]);
    for cut in 1..40 {
        let short = &log[..log.len() - cut];
        let err = parse_and_replay(short).unwrap_err();
        assert!(
            matches!(
                err,
                TcgLogError::Malformed(DecodeError {
                    kind: DecodeErrorKind::Truncated { .. },
                    ..
                })
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn rejects_digest_algorithm_missing_from_spec_id() {
    let log = two_bank_log(&[enc::agile_event(4, 1, &[(0xC, vec![0; 48])], b"")]);
    let err = parse_and_replay(&log).unwrap_err();
    let TcgLogError::Malformed(e) = err else {
        panic!("{err:?}")
    };
    assert!(e.to_string().contains("not in the Spec ID"), "{e}");
}

#[test]
fn rejects_repeated_digest_algorithm_in_one_event() {
    let log = two_bank_log(&[enc::agile_event(
        4,
        1,
        &[(0x4, vec![0; 20]), (0x4, vec![1; 20])],
        b"",
    )]);
    assert!(parse_and_replay(&log).is_err());
}

#[test]
fn rejects_oversized_event_data_without_allocating() {
    let mut log = two_bank_log(&[]);
    let mut ev = enc::agile_event(4, 1, &[(0x4, vec![0; 20])], b"");
    let n = ev.len();
    ev[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    log.extend(ev);
    let err = parse_and_replay(&log).unwrap_err();
    assert!(matches!(
        err,
        TcgLogError::Malformed(DecodeError {
            kind: DecodeErrorKind::TooLong { .. },
            ..
        })
    ));
}

#[test]
fn rejects_spec_id_with_wrong_size_for_known_algorithm() {
    let log = enc::spec_id(&[(0xB, 20)]);
    assert!(EventLog::parse(&log).is_err());
}

#[test]
fn rejects_empty_input_at_offset_zero() {
    let err = EventLog::parse(&[]).unwrap_err();
    assert_eq!(err.offset(), Some(0));
}

#[test]
fn rejects_text_as_bad_pcr_index() {
    let err = EventLog::parse(b"bogus\ninvalid\nevent\nlog\nfile\nhere\n").unwrap_err();
    assert_eq!(err.offset(), Some(0));
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("offset 0"), "{source}");
}

#[test]
fn parses_legacy_sha1_log() {
    let d1 = HashAlg::Sha1.hash(b"one");
    let mut log = enc::legacy_event(0, 8, d1.as_bytes().try_into().unwrap(), b"one");
    log.extend(enc::legacy_event(
        5,
        4,
        HashAlg::Sha1.hash(&[0; 4]).as_bytes().try_into().unwrap(),
        &[0; 4],
    ));
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.format(), LogFormat::LegacySha1);
    let r = replay(&parsed).unwrap();
    assert_eq!(r.event_count(), 2);
    assert_eq!(
        r.pcrs().get(HashAlg::Sha1, 0),
        Some(&extend(HashAlg::Sha1.zero(), &[b"one"]))
    );
}

#[test]
fn reads_vendor_info_left_outside_the_spec_id_event() {
    // tpm2-tools fixture shape: vendorInfoSize counted, vendorInfo after the event.
    let mut log = enc::spec_id(&[SHA1]);
    let n = log.len();
    log[n - 1] = 2;
    log.extend_from_slice(&[0xDE, 0xAD]);
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.spec_id().unwrap().vendor_info(), &[0xDE, 0xAD]);
    assert_eq!(replay(&parsed).unwrap().event_count(), 1);
}

#[test]
fn quote_equal_to_replay_is_accepted() {
    let log = two_bank_log(&[enc::measured(4, 1, &[HashAlg::Sha256], b"a")]);
    let parsed = EventLog::parse(&log).unwrap();
    let r = replay(&parsed).unwrap();
    let mut quoted = vouch_tpm2::PcrValues::new();
    quoted.insert(4, extend(HashAlg::Sha256.zero(), &[b"a"]));
    quoted.insert(5, HashAlg::Sha256.zero());
    assert_eq!(compare_with_quote(&parsed, &r, &quoted), Ok(()));
}

#[test]
fn quote_behind_the_log_is_reported_as_log_ahead() {
    let log = two_bank_log(&[
        enc::measured(4, 1, &[HashAlg::Sha256], b"a"),
        enc::measured(4, 1, &[HashAlg::Sha256], b"b"),
        enc::measured(4, 1, &[HashAlg::Sha256], b"c"),
    ]);
    let parsed = EventLog::parse(&log).unwrap();
    let r = replay(&parsed).unwrap();
    let mut quoted = vouch_tpm2::PcrValues::new();
    quoted.insert(4, extend(HashAlg::Sha256.zero(), &[b"a"]));
    let err = compare_with_quote(&parsed, &r, &quoted).unwrap_err();
    assert_eq!(err.mismatches().len(), 1);
    let m = err.mismatches()[0];
    assert_eq!((m.bank, m.index), (HashAlg::Sha256, 4));
    assert_eq!(
        m.disagreement,
        Disagreement::LogIsAheadOfQuote { events_after: 2 }
    );
}

#[test]
fn quote_differing_from_every_prefix_names_each_pcr() {
    let log = two_bank_log(&[enc::measured(4, 1, &[HashAlg::Sha256, HashAlg::Sha1], b"a")]);
    let parsed = EventLog::parse(&log).unwrap();
    let r = replay(&parsed).unwrap();
    let mut quoted = vouch_tpm2::PcrValues::new();
    quoted.insert(4, HashAlg::Sha256.hash(b"other"));
    quoted.insert(4, HashAlg::Sha1.hash(b"other"));
    quoted.insert(9, HashAlg::Sha1.hash(b"unlogged"));
    let err = compare_with_quote(&parsed, &r, &quoted).unwrap_err();
    let named: Vec<_> = err
        .mismatches()
        .iter()
        .map(|m| (m.bank, m.index, m.disagreement))
        .collect();
    assert_eq!(
        named,
        vec![
            (HashAlg::Sha1, 4, Disagreement::Differs),
            (HashAlg::Sha1, 9, Disagreement::Differs),
            (HashAlg::Sha256, 4, Disagreement::Differs),
        ]
    );
    assert!(err.to_string().contains("sha256[4]"));
}

#[test]
fn unextended_drtm_pcr_must_hold_all_ones() {
    let log = two_bank_log(&[]);
    let parsed = EventLog::parse(&log).unwrap();
    let r = replay(&parsed).unwrap();
    let mut quoted = vouch_tpm2::PcrValues::new();
    quoted.insert(17, Digest::new(HashAlg::Sha1, &[0xFF; 20]).unwrap());
    assert_eq!(compare_with_quote(&parsed, &r, &quoted), Ok(()));
    quoted.insert(17, HashAlg::Sha1.zero());
    assert!(compare_with_quote(&parsed, &r, &quoted).is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(log) = EventLog::parse(&data) {
            for ev in log.events().flatten() {
                let _ = ev.digests().len();
                let _ = ev.coverage();
            }
            let _ = replay(&log);
            let _ = MachineState::from_log(&log);
        }
    }

    #[test]
    fn mutated_logs_never_panic(pos in 0usize..200, byte in any::<u8>()) {
        let mut log = two_bank_log(&[
            enc::measured(4, 0x8000_0003, &[HashAlg::Sha1, HashAlg::Sha256], &[1; 60]),
            enc::measured(7, 0x8000_0001, &[HashAlg::Sha256], &[2; 30]),
        ]);
        let n = log.len();
        log[pos % n] = byte;
        if let Ok(parsed) = EventLog::parse(&log) {
            let _ = replay(&parsed);
            let _ = MachineState::from_log(&parsed);
        }
    }

    #[test]
    fn mutated_real_logs_never_panic_when_bound_or_summarised(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
    ) {
        // GRUB and shim (padded authorities), EDK II boot variables, systemd-boot.
        let name = ["qemu-rhel8-pxe", "gce-cgke-cos", "arch-sdboot-ws"][which];
        let path = format!("{}/../../../testdata/eventlogs/{name}.bin", env!("CARGO_MANIFEST_DIR"));
        let mut log = std::fs::read(path).unwrap();
        let n = log.len();
        for (pos, byte) in edits {
            log[pos % n] = byte;
        }
        if let Ok(parsed) = EventLog::parse(&log) {
            for ev in parsed.events().flatten() {
                let _ = (ev.coverage(), ev.coverage_in(HashAlg::Sha256), ev.binding());
            }
            let _ = MachineState::from_log(&parsed);
        }
    }

    #[test]
    fn encoded_events_round_trip(
        events in proptest::collection::vec(
            (0u32..24, any::<u32>(), proptest::collection::vec(any::<u8>(), 0..80), any::<bool>()),
            0..12,
        )
    ) {
        let mut log = enc::spec_id(&[SHA1, SHA256]);
        for (pcr, ty, data, both) in &events {
            let banks: &[HashAlg] = if *both { &[HashAlg::Sha1, HashAlg::Sha256] } else { &[HashAlg::Sha256] };
            log.extend(enc::measured(*pcr, *ty, banks, data));
        }
        let parsed = EventLog::parse(&log).unwrap();
        let got: Vec<_> = parsed.events().collect::<Result<_, _>>().unwrap();
        // Trailing events made of fill bytes end the log; that cannot happen with a digest.
        prop_assert_eq!(got.len(), events.len() + 1);
        for (ev, (pcr, ty, data, both)) in got.iter().skip(1).zip(&events) {
            prop_assert_eq!(ev.pcr(), *pcr);
            prop_assert_eq!(ev.event_type(), EventType(*ty));
            prop_assert_eq!(ev.data(), &data[..]);
            prop_assert_eq!(ev.digests().len(), if *both { 2 } else { 1 });
            prop_assert_eq!(ev.digests().get(HashAlg::Sha256), Some(HashAlg::Sha256.hash(data)));
        }
    }
}

#[test]
fn iterator_stops_after_the_first_error() {
    let mut log = two_bank_log(&[enc::measured(4, 1, &[HashAlg::Sha1], b"a")]);
    log.extend_from_slice(&[7, 0, 0, 0, 1]);
    let parsed = EventLog::parse(&log).unwrap();
    let mut it = parsed.events();
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn rejects_event_without_digests() {
    let log = two_bank_log(&[enc::agile_event(4, 1, &[], b"")]);
    assert!(parse_and_replay(&log).is_err());
}

#[test]
fn garbage_after_padding_is_an_error() {
    let mut log = two_bank_log(&[enc::measured(4, 1, &[HashAlg::Sha1], b"a")]);
    log.extend(std::iter::repeat_n(0xFFu8, 64));
    log.push(0x01);
    assert!(parse_and_replay(&log).is_err());
}
