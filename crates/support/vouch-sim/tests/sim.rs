//! SimTpm behaviour: boot from real event logs, quotes that verify, credential activation that
//! fails closed, reboot, the EK template and certificate, and state shared through a directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step is a failed test"
)]

use std::sync::{Arc, OnceLock};

use vouch_sim::{BANKS, EVENT_LOG_FILE, EkTemplate, KeyPool, NUM_PCRS, SimCa, SimError, SimTpm};
use vouch_tpm2::{
    AkVerifier, Digest, EkPublic, HashAlg, PcrBankSelection, PcrSelection, PublicArea, PublicKey,
    make_credential, verify_quote,
};

/// Keys and a CA shared by the tests: RSA keygen is the slow part of a TPM.
fn pool() -> &'static (KeyPool, Arc<SimCa>) {
    static POOL: OnceLock<(KeyPool, Arc<SimCa>)> = OnceLock::new();
    POOL.get_or_init(|| {
        (
            KeyPool::generate(4).unwrap(),
            Arc::new(SimCa::generate().unwrap()),
        )
    })
}

fn tpm(ek: usize, ak: usize) -> SimTpm {
    let (keys, ca) = pool();
    SimTpm::builder()
        .ca(ca.clone())
        .ek_key(keys.key(ek).unwrap().clone())
        .ak_key(keys.key(ak).unwrap().clone())
        .build()
        .unwrap()
}

fn all_pcrs() -> PcrSelection {
    let all: Vec<u32> = (0..NUM_PCRS).collect();
    PcrSelection::new(
        BANKS
            .iter()
            .map(|b| PcrBankSelection::new(*b, &all).unwrap())
            .collect(),
    )
    .unwrap()
}

fn verified_quote(tpm: &mut SimTpm, nonce: &[u8], sel: &PcrSelection) -> vouch_tpm2::VerifiedQuote {
    let ak_bytes = tpm.ak_public().unwrap();
    let ak = AkVerifier::new(&PublicArea::decode_tpmt(&ak_bytes).unwrap()).unwrap();
    let q = tpm.quote(nonce, sel).unwrap();
    verify_quote(&ak, &q.attest, &q.signature, nonce, &q.pcrs).unwrap()
}

fn testdata(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../testdata/eventlogs")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn booted_from_real_logs_quotes_the_pcrs_their_replay_gives() {
    for name in [
        "qemu-ubuntu2004-1.bin",
        "gce-rhel8-sb.bin",
        "hygon-hcrtm-sm3.bin",
        "nuc-sha1.bin",
    ] {
        let log = testdata(name);
        let replay = vouch_tcglog::parse_and_replay(&log).unwrap();
        let mut sim = tpm(0, 1);
        sim.boot_with_event_log(&log).unwrap();
        let q = verified_quote(&mut sim, b"boot-nonce", &all_pcrs());
        let mut compared = 0;
        for bank in replay.pcrs().banks().filter(|b| BANKS.contains(b)) {
            for i in 0..NUM_PCRS {
                assert_eq!(
                    q.pcrs.get(bank, i),
                    Some(&replay.expected(bank, i)),
                    "{name} {bank}:{i}"
                );
                compared += 1;
            }
        }
        assert!(
            compared >= 24,
            "{name}: no bank in common with the simulator"
        );
        assert_eq!(sim.event_log(), &log[..]);
        assert_eq!(q.clock_info.reset_count, 1);
    }
}

#[test]
fn boot_starts_pcr0_at_the_logs_startup_locality() {
    // hygon-hcrtm-sm3 has an H-CRTM event: PCR 0 starts at 4, and extends from there.
    let log = testdata("hygon-hcrtm-sm3.bin");
    assert_eq!(
        vouch_tcglog::parse_and_replay(&log)
            .unwrap()
            .pcr0_locality(),
        4
    );
    let mut sim = tpm(0, 1);
    sim.boot_with_event_log(&log).unwrap();
    let parsed = vouch_tcglog::EventLog::parse(&log).unwrap();
    // Replaying the same log from locality 0 must give a different PCR 0 (if the log has sha256).
    let from_zero = {
        let mut v = Digest::locality_start(HashAlg::Sha256, 0);
        for ev in parsed.events() {
            let ev = ev.unwrap();
            if ev.is_extended()
                && ev.pcr() == 0
                && let Some(d) = ev.digests().get(HashAlg::Sha256)
            {
                v.extend(d.as_bytes());
            }
        }
        v
    };
    assert_ne!(sim.pcr(HashAlg::Sha256, 0), Some(from_zero));
}

#[test]
fn refuses_a_log_that_does_not_frame_and_changes_nothing() {
    let mut sim = tpm(0, 1);
    let mut log = testdata("qemu-ubuntu2004-1.bin");
    log.truncate(log.len() - 7);
    let before = sim.pcr(HashAlg::Sha256, 0);
    assert!(sim.boot_with_event_log(&log).is_err());
    assert_eq!(sim.reset_count(), 0);
    assert_eq!(sim.pcr(HashAlg::Sha256, 0), before);
}

#[test]
fn activates_a_credential_made_for_its_ak_and_refuses_another_name() {
    let mut sim = tpm(0, 1);
    let ek_bytes = sim.ek_public().to_vec();
    let ek = EkPublic::from_public_area(&PublicArea::decode_tpmt(&ek_bytes).unwrap()).unwrap();
    let ak_name = sim.ak_name().unwrap();
    let secret = b"0123456789abcdef0123456789abcdef";

    let blob = make_credential(&ek, &ak_name, secret).unwrap();
    assert_eq!(
        sim.activate_credential(&blob.id_object, &blob.encrypted_secret)
            .unwrap(),
        secret
    );

    // The same EK, another key's name: the integrity HMAC fails, nothing is returned.
    let mut other_name = ak_name.clone();
    *other_name.last_mut().unwrap() ^= 1;
    let blob = make_credential(&ek, &other_name, secret).unwrap();
    assert!(matches!(
        sim.activate_credential(&blob.id_object, &blob.encrypted_secret),
        Err(SimError::Integrity)
    ));

    // Made for another TPM's EK: the seed does not decrypt.
    let other = tpm(2, 1);
    let other_ek =
        EkPublic::from_public_area(&PublicArea::decode_tpmt(other.ek_public()).unwrap()).unwrap();
    let blob = make_credential(&other_ek, &ak_name, secret).unwrap();
    assert!(
        sim.activate_credential(&blob.id_object, &blob.encrypted_secret)
            .is_err()
    );

    // A flipped bit in encIdentity is caught by the HMAC.
    let mut blob = make_credential(&ek, &ak_name, secret).unwrap();
    *blob.id_object.last_mut().unwrap() ^= 0x80;
    assert!(matches!(
        sim.activate_credential(&blob.id_object, &blob.encrypted_secret),
        Err(SimError::Integrity)
    ));
}

#[test]
fn reboot_increments_reset_count_and_resets_pcrs() {
    let mut sim = tpm(0, 1);
    sim.boot_with_event_log(&testdata("qemu-ubuntu2004-1.bin"))
        .unwrap();
    let measurement = HashAlg::Sha256.hash(b"tamper");
    sim.extend(7, &measurement).unwrap();
    sim.extend(17, &measurement).unwrap();
    let before = verified_quote(&mut sim, b"n1", &all_pcrs());
    assert_eq!(before.clock_info.reset_count, 1);
    assert_ne!(sim.pcr(HashAlg::Sha256, 7), Some(HashAlg::Sha256.zero()));

    sim.reboot().unwrap();
    let after = verified_quote(&mut sim, b"n2", &all_pcrs());
    assert_eq!(after.clock_info.reset_count, 2);
    assert_eq!(after.clock_info.restart_count, 0);
    assert!(after.clock_info.clock >= before.clock_info.clock);
    let ones = |alg: HashAlg| Digest::new(alg, &vec![0xFF; alg.digest_len()]).unwrap();
    for bank in BANKS {
        for i in 0..NUM_PCRS {
            let want = if (17..=22).contains(&i) {
                ones(bank)
            } else {
                bank.zero()
            };
            assert_eq!(after.pcrs.get(bank, i), Some(&want), "{bank}:{i}");
        }
    }
    assert!(sim.event_log().is_empty());
}

#[test]
fn extend_outside_boot_makes_the_log_disagree() {
    let log = testdata("gce-rhel8-sb.bin");
    let replay = vouch_tcglog::parse_and_replay(&log).unwrap();
    let mut sim = tpm(0, 1);
    sim.boot_with_event_log(&log).unwrap();
    sim.extend(4, &HashAlg::Sha256.hash(b"bootkit")).unwrap();
    assert_ne!(
        sim.pcr(HashAlg::Sha256, 4),
        Some(replay.expected(HashAlg::Sha256, 4))
    );
    assert_eq!(
        sim.pcr(HashAlg::Sha256, 7),
        Some(replay.expected(HashAlg::Sha256, 7))
    );
    assert!(matches!(
        sim.extend(24, &HashAlg::Sha256.hash(b"x")),
        Err(SimError::NoSuchPcr { index: 24, .. })
    ));
    assert!(matches!(
        sim.extend(0, &HashAlg::Sha384.hash(b"x")),
        Err(SimError::NoSuchPcr { .. })
    ));
}

#[test]
fn quote_rejects_oversized_nonce_and_missing_bank() {
    let mut sim = tpm(0, 1);
    let sel = PcrSelection::parse_spec("sha256:0").unwrap();
    assert!(matches!(
        sim.quote(&[0; 67], &sel),
        Err(SimError::NonceTooLong(67))
    ));
    assert!(sim.quote(&[0; 66], &sel).is_ok());
    let sha384 = PcrSelection::parse_spec("sha384:0").unwrap();
    assert!(matches!(
        sim.quote(b"n", &sha384),
        Err(SimError::NoSuchPcr { .. })
    ));
}

#[test]
fn ek_public_is_the_tcg_l1_template() {
    let sim = tpm(0, 1);
    let area = PublicArea::decode_tpmt(sim.ek_public()).unwrap();
    assert_eq!(area.name_alg(), Some(HashAlg::Sha256));
    assert_eq!(area.attributes().bits(), EkTemplate::ATTRIBUTES);
    assert_eq!(area.auth_policy(), EkTemplate::POLICY_A_SHA256);
    assert_eq!(
        hex::encode(area.auth_policy()),
        "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa"
    );
    assert_eq!(
        area.symmetric(),
        vouch_tpm2::public::SymmetricDef::AES_128_CFB
    );
    assert_eq!(area.scheme().scheme, 0x0010);
    let PublicKey::Rsa {
        bits,
        exponent,
        modulus,
    } = area.key()
    else {
        panic!("EK is not RSA")
    };
    assert_eq!((*bits, *exponent), (2048, 65537));
    assert_eq!(*modulus, pool().0.key(0).unwrap().modulus());
    // Every byte but the modulus: type, nameAlg, attributes, PolicyA, AES-128-CFB, scheme NULL,
    // 2048 bits, exponent 0, then the unique size.
    let bytes = sim.ek_public();
    assert_eq!(
        hex::encode(&bytes[..bytes.len() - 256]),
        "0001000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa\
         00060080004300100800000000000100"
    );
}

#[test]
fn ek_certificate_carries_the_ek_and_chains_to_the_sim_ca() {
    let sim = tpm(0, 1);
    let cert = vouch_x509::EkCert::parse(sim.ek_certificate()).unwrap();
    assert_eq!(
        cert.summary().public_key.rsa_modulus().unwrap(),
        pool().0.key(0).unwrap().modulus()
    );
    let summary = cert.summary();
    assert!(summary.ek_eku);
    assert!(summary.san_critical);
    assert_eq!(summary.subject, "");
    assert_eq!(summary.tpm.manufacturer.unwrap().raw, "id:56534D20");
    assert_eq!(summary.tpm.model.as_deref(), Some("vouch-sim"));

    let mut roots = vouch_x509::RootStore::empty();
    roots
        .add_anchor(vouch_x509::EkCert::parse(sim.ca_certificate()).unwrap())
        .unwrap();
    assert!(roots.verify(&cert, &[], 1_800_000_000).is_ok());
    // The bundled production roots do not accept it.
    let bundled = vouch_x509::RootStore::bundled().unwrap();
    assert!(bundled.verify(&cert, &[], 1_800_000_000).is_err());
}

#[test]
fn a_directory_shares_one_simulated_host_between_instances() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    let (keys, ca) = pool();
    let mut a = SimTpm::builder()
        .ca(ca.clone())
        .ek_key(keys.key(0).unwrap().clone())
        .create_dir(&host)
        .unwrap();
    let log = testdata("qemu-ubuntu2004-1.bin");
    a.boot_with_event_log(&log).unwrap();
    assert_eq!(std::fs::read(host.join(EVENT_LOG_FILE)).unwrap(), log);
    let ak_a = a.ak_public().unwrap();

    let mut b = SimTpm::open_dir(&host).unwrap();
    assert_eq!(b.ek_public(), a.ek_public());
    assert_eq!(b.ak_public().unwrap(), ak_a, "the AK is persisted");
    assert_eq!(b.reset_count(), 1);

    // A change through one instance is seen by the other's next operation.
    b.extend(9, &HashAlg::Sha1.hash(b"ima")).unwrap();
    let q = verified_quote(&mut a, b"n", &PcrSelection::parse_spec("sha1:9").unwrap());
    assert_eq!(
        q.pcrs.get(HashAlg::Sha1, 9),
        b.pcr(HashAlg::Sha1, 9).as_ref()
    );
    assert_ne!(q.pcrs.get(HashAlg::Sha1, 9), Some(&HashAlg::Sha1.zero()));

    a.reboot().unwrap();
    b.refresh().unwrap();
    assert_eq!(b.reset_count(), 2);
    assert!(std::fs::read(host.join(EVENT_LOG_FILE)).unwrap().is_empty());

    // Creating over an existing TPM is refused; keys are PKCS#8 files.
    assert!(SimTpm::builder().create_dir(&host).is_err());
    assert!(host.join("ek.pk8").is_file() && host.join("ak.pk8").is_file());
}

#[test]
fn key_pool_caches_keys_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = KeyPool::load_or_generate(dir.path(), 2).unwrap();
    let again = KeyPool::load_or_generate(dir.path(), 2).unwrap();
    assert_eq!(first.len(), 2);
    for i in 0..2 {
        assert_eq!(first.key(i).unwrap().pkcs8(), again.key(i).unwrap().pkcs8());
    }
    assert_ne!(
        first.key(0).unwrap().modulus(),
        first.key(1).unwrap().modulus()
    );
}

#[test]
fn a_sim_ca_round_trips_through_its_parts() {
    let ca = SimCa::generate().unwrap();
    let back = SimCa::from_parts(ca.key_pkcs8(), ca.cert_der()).unwrap();
    let cert = back.issue_ek_cert(pool().0.key(3).unwrap()).unwrap();
    let mut roots = vouch_x509::RootStore::empty();
    roots
        .add_anchor(vouch_x509::EkCert::parse(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    assert!(
        roots
            .verify(
                &vouch_x509::EkCert::parse(&cert).unwrap(),
                &[],
                1_800_000_000
            )
            .is_ok()
    );
}

#[test]
fn real_ima_list_replays_into_pcr10_and_is_persisted_where_the_agent_reads_it() {
    let list = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../testdata/ima/f40-vtpm-imasig-sha1.bin"),
    )
    .unwrap();
    // Fedora 40, 362 ima-sig entries: the manifest's PCR 10 (per-bank kernel convention).
    let sha1 = "9be6bac02bf18d09d17e726c2df00bca4e8831ea";
    let sha256 = "7fac48c81837d6d29046008aef0cdad8c2745cc98c3340cbba9bfdf39b4124b8";
    let dir = tempfile::tempdir().unwrap();
    let mut tpm = SimTpm::open_dir(dir.path()).unwrap();
    tpm.load_ima_list(&list).unwrap();
    let mut other = SimTpm::open_dir(dir.path()).unwrap();
    other.refresh().unwrap();
    assert_eq!(other.pcr(HashAlg::Sha1, 10).unwrap().to_hex(), sha1);
    assert_eq!(other.pcr(HashAlg::Sha256, 10).unwrap().to_hex(), sha256);
    assert_eq!(
        std::fs::read(dir.path().join(vouch_sim::IMA_LOG_FILE)).unwrap(),
        list
    );

    // Streaming: the first 100 entries, then the rest appended, reach the same PCR 10.
    let cut = vouch_ima::MeasurementList::parse(&list)
        .unwrap()
        .entries()
        .nth(100)
        .unwrap()
        .unwrap()
        .offset();
    tpm.load_ima_list(&list[..cut]).unwrap();
    assert_ne!(tpm.pcr(HashAlg::Sha256, 10).unwrap().to_hex(), sha256);
    tpm.append_ima_entries(&list[cut..]).unwrap();
    assert_eq!(tpm.pcr(HashAlg::Sha256, 10).unwrap().to_hex(), sha256);
    assert_eq!(tpm.ima_list().unwrap(), list);

    // A torn entry is refused and changes nothing.
    assert!(tpm.append_ima_entries(&list[..cut - 1]).is_err());
    assert_eq!(tpm.pcr(HashAlg::Sha256, 10).unwrap().to_hex(), sha256);

    // A reboot starts a new, empty list and PCR 10 from zero.
    tpm.reboot().unwrap();
    assert_eq!(
        tpm.pcr(HashAlg::Sha256, 10).unwrap(),
        HashAlg::Sha256.zero()
    );
    assert!(tpm.ima_list().unwrap().is_empty());
}
