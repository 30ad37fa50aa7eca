//! Issuer checks that real vendor data cannot exercise, on certificates made here with
//! aws-lc-rs (ECDSA P-256): non-CA issuers, keyUsage without keyCertSign, unknown critical
//! extensions, and the fixtures the CLI test uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test helpers outside #[test] functions; a failure here is a failed test"
)]

mod support;

use std::path::PathBuf;

use support::{
    CertSpec, Key, basic_constraints, extension, key_usage, make_cert, make_root, seq, tlv,
};
use vouch_x509::{EkCert, EkCertError, RootStore};

const NOW: i64 = 1_767_225_600;

fn spec<'a>(issuer: &'a str, subject: &'a str, extensions: Vec<Vec<u8>>) -> CertSpec<'a> {
    CertSpec {
        issuer_cn: issuer,
        subject_cn: subject,
        serial: 7,
        not_before: "200101000000Z",
        not_after: "20991231235959Z",
        extensions,
    }
}

/// An EK-profile SAN: critical, a directoryName with the TCG manufacturer/model/version.
fn tcg_san() -> Vec<u8> {
    let atv = |oid: &str, v: &str| tlv(0x31, &seq(&[support::oid(oid), tlv(0x0c, v.as_bytes())]));
    let dn = seq(&[
        atv("2.23.133.2.1", "id:49465800"),
        atv("2.23.133.2.2", "SLB9670"),
        atv("2.23.133.2.3", "id:00070055"),
    ]);
    extension("2.5.29.17", true, &seq(&[tlv(0xa4, &dn)]))
}

fn store_with(root: &[u8]) -> RootStore {
    let mut store = RootStore::empty();
    store.add_anchor(EkCert::parse(root).unwrap()).unwrap();
    store
}

#[test]
fn accepts_ek_profile_leaf_with_critical_san_and_unknown_critical_extension() {
    let root_key = Key::generate();
    let root = make_root("Test EK Root", &root_key);
    let unknown_critical = extension("1.2.3.4.5.6", true, &[0x05, 0x00]);
    let leaf = make_cert(
        &spec("Test EK Root", "", vec![tcg_san(), unknown_critical]),
        &Key::generate(),
        &root_key,
    );
    let cert = EkCert::parse(&leaf).unwrap();
    assert!(cert.subject().is_empty());
    assert!(cert.san_critical());
    let m = cert.tpm().manufacturer.as_ref().unwrap();
    assert_eq!(m.name, Some("Infineon"));
    assert_eq!(cert.tpm().model.as_deref(), Some("SLB9670"));
    let chain = store_with(&root).verify(&cert, &[], NOW).unwrap();
    assert_eq!(chain.links().len(), 2);
}

#[test]
fn rejects_issuer_that_is_not_a_ca() {
    let root_key = Key::generate();
    let root = make_root("Root", &root_key);
    let mid_key = Key::generate();
    let mid = make_cert(
        &spec("Root", "Not A CA", vec![basic_constraints(false)]),
        &mid_key,
        &root_key,
    );
    let leaf = make_cert(
        &spec("Not A CA", "", vec![tcg_san()]),
        &Key::generate(),
        &mid_key,
    );
    let store = store_with(&root);
    let result = store.verify(
        &EkCert::parse(&leaf).unwrap(),
        &[EkCert::parse(&mid).unwrap()],
        NOW,
    );
    match result {
        Err(EkCertError::IssuerNotCa { depth: 1, subject }) => assert_eq!(subject, "CN=Not A CA"),
        other => panic!("{other:?}"),
    }
    // Without basicConstraints at all, the same.
    let mid2 = make_cert(&spec("Root", "Not A CA", vec![]), &mid_key, &root_key);
    let result = store.verify(
        &EkCert::parse(&leaf).unwrap(),
        &[EkCert::parse(&mid2).unwrap()],
        NOW,
    );
    assert!(
        matches!(result, Err(EkCertError::IssuerNotCa { depth: 1, .. })),
        "{result:?}"
    );
}

#[test]
fn rejects_issuer_without_key_cert_sign() {
    let root_key = Key::generate();
    let root = make_root("Root", &root_key);
    let mid_key = Key::generate();
    let mid = make_cert(
        &spec(
            "Root",
            "Mid",
            vec![basic_constraints(true), key_usage(false)],
        ),
        &mid_key,
        &root_key,
    );
    let leaf = make_cert(
        &spec("Mid", "", vec![tcg_san()]),
        &Key::generate(),
        &mid_key,
    );
    let result = store_with(&root).verify(
        &EkCert::parse(&leaf).unwrap(),
        &[EkCert::parse(&mid).unwrap()],
        NOW,
    );
    assert!(
        matches!(result, Err(EkCertError::IssuerKeyUsage { depth: 1, .. })),
        "{result:?}"
    );
    // With keyCertSign the same chain validates.
    let mid_ok = make_cert(
        &spec(
            "Root",
            "Mid",
            vec![basic_constraints(true), key_usage(true)],
        ),
        &mid_key,
        &root_key,
    );
    let chain = store_with(&root)
        .verify(
            &EkCert::parse(&leaf).unwrap(),
            &[EkCert::parse(&mid_ok).unwrap()],
            NOW,
        )
        .unwrap();
    assert_eq!(chain.links().len(), 3);
}

#[test]
fn wrong_key_under_the_right_name_is_a_bad_signature() {
    let root = make_root("Root", &Key::generate());
    let leaf = make_cert(
        &spec("Root", "", vec![]),
        &Key::generate(),
        &Key::generate(),
    );
    let result = store_with(&root).verify(&EkCert::parse(&leaf).unwrap(), &[], NOW);
    assert!(
        matches!(result, Err(EkCertError::BadSignature { depth: 0, .. })),
        "{result:?}"
    );
}

#[test]
fn empty_store_fails_closed() {
    let root_key = Key::generate();
    let leaf = make_cert(&spec("Root", "", vec![]), &Key::generate(), &root_key);
    let result = RootStore::empty().verify(&EkCert::parse(&leaf).unwrap(), &[], NOW);
    assert!(
        matches!(result, Err(EkCertError::NoIssuer { depth: 0, .. })),
        "{result:?}"
    );
}

#[test]
fn refuses_a_non_ca_certificate_as_trust_anchor() {
    let root_key = Key::generate();
    let leaf = make_cert(
        &spec("Root", "", vec![tcg_san()]),
        &Key::generate(),
        &root_key,
    );
    let cert = EkCert::parse(&leaf).unwrap();
    let mut store = RootStore::empty();
    assert!(matches!(
        store.add_anchor(cert.clone()),
        Err(EkCertError::AnchorNotCa { .. })
    ));
    // Nor does a directory holding the leaf make it trusted.
    let dir = std::env::temp_dir().join(format!("vouch-x509-leafdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ek.der"), &leaf).unwrap();
    assert!(matches!(
        store.add_dir(&dir),
        Err(EkCertError::InFile { .. })
    ));
    assert!(store.is_empty());
    assert!(matches!(
        store.verify(&cert, &[], NOW),
        Err(EkCertError::NoIssuer { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Regenerates `testdata/synthetic-*` (used by the CLI test). Run with `--ignored` and commit.
#[test]
#[ignore = "writes fixtures; run by hand"]
fn regenerate_synthetic_fixtures() {
    let root_key = Key::generate();
    let root = make_root("Vouch Synthetic EK Root", &root_key);
    let leaf = make_cert(
        &spec("Vouch Synthetic EK Root", "", vec![tcg_san()]),
        &Key::generate(),
        &root_key,
    );
    std::fs::create_dir_all(fixtures()).unwrap();
    std::fs::write(
        fixtures().join("synthetic-root.pem"),
        support::to_pem(&root),
    )
    .unwrap();
    std::fs::write(fixtures().join("synthetic-ek.der"), leaf).unwrap();
}

#[test]
fn synthetic_fixtures_chain_only_with_their_root() {
    let root = std::fs::read(fixtures().join("synthetic-root.pem")).unwrap();
    let leaf = EkCert::parse(&std::fs::read(fixtures().join("synthetic-ek.der")).unwrap()).unwrap();
    assert!(matches!(
        RootStore::bundled().unwrap().verify(&leaf, &[], NOW),
        Err(EkCertError::NoIssuer { .. })
    ));
    let chain = store_with(&root).verify(&leaf, &[], NOW).unwrap();
    assert_eq!(chain.links().len(), 2);
}
