//! Real vendor EK certificates and CAs (`testdata/ekcerts`, see testdata/MANIFEST.md) against
//! their `.expected.json` (fields from python-cryptography and `openssl verify -no_check_time`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test helpers outside #[test] functions; a failure here is a failed test"
)]

#[allow(dead_code, reason = "shared with the synthetic-certificate tests")]
mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use vouch_x509::{EkCert, EkCertError, EkPublicKey, RootStore, load_certs_from_dir};

/// 2026-01-01T00:00:00Z: a fixed "now" so expiry facts do not drift.
const NOW: i64 = 1_767_225_600;

fn ekcerts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/ekcerts")
}

fn leaves() -> Vec<(String, Vec<u8>, Value)> {
    let dir = ekcerts().join("leaf");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "der") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let json = dir.join(format!("{name}.expected.json"));
            let expected: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
            out.push((name, std::fs::read(&path).unwrap(), expected));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        11,
        "testdata/ekcerts/leaf should hold 11 certificates"
    );
    out
}

fn ca_index() -> Vec<Value> {
    let bytes = std::fs::read(ekcerts().join("ca/ca-index.json")).unwrap();
    serde_json::from_slice::<Value>(&bytes)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// "Jul 11 00:00:00 2018 GMT" (OpenSSL's format) to Unix seconds.
fn openssl_time(s: &str) -> i64 {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[0])
    .unwrap() as i64
        + 1;
    let day: i64 = parts[1].parse().unwrap();
    let hms: Vec<i64> = parts[2].split(':').map(|x| x.parse().unwrap()).collect();
    let year: i64 = parts[3].parse().unwrap();
    assert_eq!(parts[4], "GMT");
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

fn bundled() -> RootStore {
    RootStore::bundled().unwrap()
}

#[test]
fn openssl_time_helper_is_right() {
    assert_eq!(openssl_time("Jan  1 00:00:00 1970 GMT"), 0);
    assert_eq!(openssl_time("Jan  1 00:00:00 2026 GMT"), NOW);
}

#[test]
fn every_openssl_verified_leaf_chains_to_its_root() {
    let store = bundled();
    let mut checked = 0;
    for (name, bytes, expected) in leaves() {
        let ok = expected["openssl_verify"]["ok"].as_bool().unwrap();
        let cert = EkCert::parse(&bytes).unwrap();
        let result = store.verify(&cert, &[], NOW);
        if !ok {
            assert!(result.is_err(), "{name}: openssl rejects it, we accept it");
            continue;
        }
        let chain = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let links = chain.links();
        let openssl_chain = expected["openssl_verify"]["chain"].as_array().unwrap();
        assert_eq!(links.len(), openssl_chain.len(), "{name}: chain length");
        assert_eq!(
            links[0].sha256,
            expected["sha256_fingerprint"].as_str().unwrap()
        );
        // The issuer we picked is one of the CA files the manifest names as the leaf's issuer.
        let issuer_files: Vec<String> = expected["issuer_ca_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let der = std::fs::read(ekcerts().join("ca").join(f.as_str().unwrap())).unwrap();
                EkCert::parse(&der).unwrap().sha256_hex()
            })
            .collect();
        assert!(
            issuer_files.contains(&links[1].sha256),
            "{name}: unexpected issuer {}",
            links[1].subject
        );
        let anchor = chain.anchor().unwrap();
        assert!(anchor.trust_anchor);
        assert!(links[..links.len() - 1].iter().all(|l| !l.trust_anchor));
        // OpenSSL's last line names the anchor; its CN must appear in ours.
        let last = openssl_chain.last().unwrap().as_str().unwrap();
        let cn = last.split("CN = ").nth(1).unwrap().trim_matches('"');
        let cn_head = cn.split(',').next().unwrap();
        assert!(
            anchor.subject.contains(cn_head),
            "{name}: anchor {} vs openssl {last}",
            anchor.subject
        );
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[test]
fn parsed_fields_match_expected_json() {
    for (name, bytes, expected) in leaves() {
        let cert = EkCert::parse(&bytes).unwrap();
        assert_eq!(
            cert.subject().as_str(),
            expected["subject"].as_str().unwrap(),
            "{name}: subject"
        );
        assert_eq!(
            cert.issuer().as_str(),
            expected["issuer"].as_str().unwrap(),
            "{name}: issuer"
        );
        assert_eq!(
            cert.serial_hex(),
            expected["serial"].as_str().unwrap(),
            "{name}: serial"
        );
        assert_eq!(
            cert.not_before().unix,
            openssl_time(expected["not_before"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(
            cert.not_after().unix,
            openssl_time(expected["not_after"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(
            cert.sha256_hex(),
            expected["sha256_fingerprint"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            cert.der().len() as u64,
            expected["der_length"].as_u64().unwrap(),
            "{name}"
        );
        let padding = expected["trailing_bytes_after_der"].as_u64().unwrap_or(0);
        assert_eq!(cert.padding_bytes() as u64, padding, "{name}: padding");

        let tpm = cert.tpm();
        match expected["san_tpm"].as_object() {
            Some(san) => {
                let m = tpm.manufacturer.as_ref().unwrap();
                assert_eq!(m.raw, san["tpmManufacturer"].as_str().unwrap(), "{name}");
                assert_eq!(tpm.model.as_deref(), san["tpmModel"].as_str(), "{name}");
                assert_eq!(tpm.version.as_deref(), san["tpmVersion"].as_str(), "{name}");
                assert!(
                    m.name.is_some(),
                    "{name}: manufacturer {} not in the vendor table",
                    m.raw
                );
            }
            None => assert_eq!(tpm, &vouch_x509::TpmInfo::default(), "{name}"),
        }
        assert_eq!(
            cert.san_critical(),
            expected["san_critical"].as_bool().unwrap_or(false),
            "{name}"
        );
        let eku_expected = expected["eku"].as_array().is_some_and(|a| {
            a.iter()
                .any(|o| o.as_str() == Some(vouch_x509::OID_EKU_EK_CERTIFICATE))
        });
        assert_eq!(cert.has_ek_eku(), eku_expected, "{name}: EKU");
        assert_eq!(
            cert.is_ca(),
            expected["basic_constraints_ca"].as_bool().unwrap_or(false),
            "{name}"
        );

        let key = cert.ek_public_key();
        assert_eq!(
            key.bits() as u64,
            expected["public_key_bits"].as_u64().unwrap(),
            "{name}: key bits"
        );
        match expected["public_key"].as_str().unwrap() {
            "RSAPublicKey" => {
                assert_eq!(key.rsa_modulus().unwrap().len() * 8, key.bits(), "{name}");
                assert_eq!(key.rsa_exponent(), Some(&[1u8, 0, 1][..]), "{name}");
            }
            "ECPublicKey" => {
                let (curve, x, y) = key.ec_point().unwrap();
                assert_eq!(x.len(), curve.coordinate_len());
                assert_eq!(y.len(), curve.coordinate_len());
            }
            other => panic!("{name}: unexpected key type {other}"),
        }
    }
}

#[test]
fn accepts_ff_padded_stm_ek_cert() {
    let bytes = std::fs::read(ekcerts().join("leaf/stm-ek-rsa-ffpadded.der")).unwrap();
    assert_eq!(bytes.len(), 1600);
    let cert = EkCert::parse(&bytes).unwrap();
    assert_eq!(cert.padding_bytes(), 431);
    assert_eq!(cert.der().len(), 1169);
    let m = cert.tpm().manufacturer.as_ref().unwrap();
    assert_eq!(m.code.as_deref(), Some("STM "));
    assert_eq!(m.name, Some("STMicroelectronics"));
    assert_eq!(cert.tpm().model.as_deref(), Some("ST33HTPHAHB4"));
    let chain = bundled().verify(&cert, &[], NOW).unwrap();
    assert_eq!(chain.links().len(), 4);
    assert_eq!(
        chain.links()[1].subject,
        "CN=STM TPM EK Intermediate CA 05,O=STMicroelectronics NV,C=CH"
    );
}

#[test]
fn rejects_trailing_garbage_that_is_not_padding() {
    let mut bytes = std::fs::read(ekcerts().join("leaf/stm-ek-rsa-ffpadded.der")).unwrap();
    bytes[1500] = 0x41;
    assert!(matches!(
        EkCert::parse(&bytes),
        Err(EkCertError::TrailingData {
            offset: 1169,
            len: 431
        })
    ));
}

#[test]
fn rejects_truncated_cert_with_offset() {
    let bytes = std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap();
    match EkCert::parse(&bytes[..bytes.len() - 10]) {
        Err(EkCertError::Der(e)) => assert!(e.offset > 0 && e.offset <= bytes.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn flipped_signature_bit_fails_with_bad_signature() {
    let store = bundled();
    for (name, bytes, _) in leaves() {
        let good = EkCert::parse(&bytes).unwrap();
        let mut bad = good.der().to_vec();
        // Flip a bit in the middle of the signature BIT STRING (the DER's last bytes).
        let at = bad.len() - good.signature().len() / 2;
        bad[at] ^= 0x01;
        let cert = EkCert::parse(&bad).unwrap();
        match store.verify(&cert, &[], NOW) {
            Err(EkCertError::BadSignature { depth: 0, .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn flipped_tbs_bit_fails_with_bad_signature() {
    let bytes = std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap();
    let good = EkCert::parse(&bytes).unwrap();
    // Flip a bit inside the subject public key, which lies inside the TBS.
    let key_at = bytes
        .windows(good.public_key_bits().len())
        .position(|w| w == good.public_key_bits())
        .unwrap();
    let mut bad = bytes.clone();
    bad[key_at + 10] ^= 0x80;
    let cert = EkCert::parse(&bad).unwrap();
    assert!(matches!(
        bundled().verify(&cert, &[], NOW),
        Err(EkCertError::BadSignature { depth: 0, .. })
    ));
}

#[test]
fn leaf_with_unknown_issuer_fails_with_no_issuer() {
    // Aliyun's EKMF CA is in the bundle, but the "Aliyun TPM Root CA" that issued it is not.
    let bytes = std::fs::read(ekcerts().join("ca/aliyun-tpm-ekmf-ca.der")).unwrap();
    let cert = EkCert::parse(&bytes).unwrap();
    match bundled().verify(&cert, &[], NOW) {
        Err(EkCertError::NoIssuer { depth: 0, issuer }) => {
            assert!(issuer.contains("Aliyun TPM Root CA"))
        }
        other => panic!("{other:?}"),
    }
    // And a real EK against an empty store.
    let leaf =
        EkCert::parse(&std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap()).unwrap();
    assert!(matches!(
        RootStore::empty().verify(&leaf, &[], NOW),
        Err(EkCertError::NoIssuer { depth: 0, .. })
    ));
}

#[test]
fn missing_intermediate_fails_at_depth_one_and_supplied_intermediate_completes_the_chain() {
    // Only the GlobalSign root as anchor: the STM leaf needs two intermediates.
    let ca = ekcerts().join("ca");
    let root = EkCert::parse(
        &std::fs::read(ca.join("globalsign-trusted-platform-module-ecc-root-ca.der")).unwrap(),
    )
    .unwrap();
    let stm_root =
        EkCert::parse(&std::fs::read(ca.join("stm-tpm-ecc-root-ca-01.der")).unwrap()).unwrap();
    let stm_int =
        EkCert::parse(&std::fs::read(ca.join("stm-tpm-ecc-intermediate-ca-01.der")).unwrap())
            .unwrap();
    let leaf =
        EkCert::parse(&std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap()).unwrap();
    let mut store = RootStore::empty();
    store.add_anchor(root).unwrap();
    store.add_intermediate(stm_root).unwrap();
    match store.verify(&leaf, &[], NOW) {
        Err(EkCertError::NoIssuer { depth: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
    let chain = store.verify(&leaf, &[stm_int], NOW).unwrap();
    assert_eq!(chain.links().len(), 4);
}

#[test]
fn every_bundled_ca_parses_and_matches_the_index() {
    let store = bundled();
    let index = ca_index();
    assert_eq!(index.len(), 77);
    assert_eq!(store.len(), 77);
    for entry in &index {
        let file = entry["file"].as_str().unwrap();
        let bytes = std::fs::read(ekcerts().join("ca").join(file)).unwrap();
        let cert = EkCert::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            cert.sha256_hex(),
            entry["sha256_fingerprint"].as_str().unwrap(),
            "{file}"
        );
        assert_eq!(
            cert.subject().as_str(),
            entry["openssl_subject"].as_str().unwrap(),
            "{file}: subject"
        );
        assert_eq!(
            cert.issuer().as_str(),
            entry["openssl_issuer"].as_str().unwrap(),
            "{file}: issuer"
        );
        assert_eq!(
            cert.serial_hex(),
            entry["serial"].as_str().unwrap(),
            "{file}: serial"
        );
        assert_eq!(
            cert.not_after().unix,
            openssl_time(entry["not_after"].as_str().unwrap()),
            "{file}"
        );
        assert_eq!(
            cert.is_self_signed(),
            entry["self_signed"].as_bool().unwrap(),
            "{file}: self-signed"
        );
        let is_anchor = store.anchors().any(|a| a.sha256() == cert.sha256());
        assert_eq!(
            is_anchor,
            entry["self_signed"].as_bool().unwrap(),
            "{file}: anchor"
        );
    }
}

#[test]
fn every_bundled_ca_with_a_known_issuer_chains_to_an_anchor() {
    let store = bundled();
    let mut chained = 0;
    for entry in ca_index() {
        let file = entry["file"].as_str().unwrap();
        let cert = EkCert::parse(&std::fs::read(ekcerts().join("ca").join(file)).unwrap()).unwrap();
        let result = store.verify(&cert, &[], NOW);
        if entry["issuer_ca_files"].as_array().unwrap().is_empty() {
            assert!(
                matches!(result, Err(EkCertError::NoIssuer { .. })),
                "{file}: {result:?}"
            );
        } else {
            let chain = result.unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(chain.anchor().unwrap().trust_anchor);
            chained += 1;
        }
    }
    assert_eq!(chained, 76);
}

#[test]
fn nuvoton_unsorted_set_names_parse_and_match_themselves() {
    for file in [
        "ntc-tpm-ek-root-ca-01.der",
        "nuvoton-tpm-root-ca-2112.der",
        "npctxxx-ecc521-rootca.der",
    ] {
        let cert = EkCert::parse(&std::fs::read(ekcerts().join("ca").join(file)).unwrap()).unwrap();
        assert!(cert.is_self_signed(), "{file}");
        assert!(cert.is_ca(), "{file}");
    }
}

#[test]
fn accepts_non_minimal_serial() {
    // stm-ek-ecc's serial starts 23 29: make it 00 29, a non-minimal INTEGER of the same length.
    let bytes = std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap();
    let serial = EkCert::parse(&bytes).unwrap().serial().to_vec();
    let at = bytes
        .windows(serial.len())
        .position(|w| w == serial.as_slice())
        .unwrap();
    let mut odd = bytes.clone();
    odd[at] = 0x00;
    let cert = EkCert::parse(&odd).unwrap();
    assert_eq!(&cert.serial()[..4], &[0x00, 0x29, 0xa7, 0xd9]);
    assert!(cert.serial_hex().starts_with("29a7d9"));
    // The TBS changed, so the signature no longer verifies: the serial is covered by it.
    assert!(matches!(
        bundled().verify(&cert, &[], NOW),
        Err(EkCertError::BadSignature { depth: 0, .. })
    ));
}

#[test]
fn parses_pem_and_der_to_the_same_certificate() {
    let bytes = std::fs::read(ekcerts().join("leaf/gce-uca-ecc-enc.der")).unwrap();
    let pem = support::to_pem(&bytes);
    let from_pem = EkCert::parse(pem.as_bytes()).unwrap();
    assert_eq!(from_pem, EkCert::parse(&bytes).unwrap());
    assert_eq!(from_pem.padding_bytes(), 0);
}

#[test]
fn expiry_is_reported_not_enforced() {
    let leaf =
        EkCert::parse(&std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap()).unwrap();
    // notAfter 2028-07-26: verify as of 2040.
    let later = openssl_time("Jan  1 00:00:00 2040 GMT");
    let chain = bundled().verify(&leaf, &[], later).unwrap();
    assert!(chain.links()[0].expired);
    assert!(chain.any_outside_validity());
    let now = bundled().verify(&leaf, &[], NOW).unwrap();
    assert!(!now.links()[0].expired);
    // And before notBefore.
    let early = bundled().verify(&leaf, &[], 0).unwrap();
    assert!(early.links()[0].not_yet_valid);
}

#[test]
fn roots_dir_adds_a_trust_anchor() {
    let dir = std::env::temp_dir().join(format!("vouch-x509-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::fs::read(ekcerts().join("ca/gce-ek-root-2018.der")).unwrap();
    std::fs::write(dir.join("google.pem"), support::to_pem(&root)).unwrap();
    std::fs::write(dir.join("README.txt"), "not a certificate").unwrap();
    let leaf =
        EkCert::parse(&std::fs::read(ekcerts().join("leaf/gce-uca-rsa-enc.der")).unwrap()).unwrap();
    let intermediate =
        EkCert::parse(&std::fs::read(ekcerts().join("ca/gce-ek-int-2021.der")).unwrap()).unwrap();

    let mut store = RootStore::empty();
    assert!(
        store
            .verify(&leaf, std::slice::from_ref(&intermediate), NOW)
            .is_err()
    );
    assert_eq!(store.add_dir(&dir).unwrap(), 1);
    let chain = store.verify(&leaf, &[intermediate], NOW).unwrap();
    assert_eq!(chain.links().len(), 3);
    assert!(matches!(
        chain.anchor().unwrap().origin,
        Some(vouch_x509::Origin::File(_))
    ));

    // A broken file fails the whole load, naming the file.
    std::fs::write(dir.join("broken.der"), [0x30, 0x05, 0x01]).unwrap();
    match load_certs_from_dir(&dir) {
        Err(EkCertError::InFile { path, .. }) => assert!(path.ends_with("broken.der")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ek_public_key_accessors_give_raw_big_endian_values() {
    let rsa =
        EkCert::parse(&std::fs::read(ekcerts().join("leaf/stm-ek-rsa-ffpadded.der")).unwrap())
            .unwrap();
    let modulus = rsa.ek_public_key().rsa_modulus().unwrap();
    assert_eq!(modulus.len(), 256);
    assert!(modulus[0] & 0x80 != 0, "no leading zero byte");
    // The modulus appears verbatim in the PKCS#1 key.
    assert!(rsa.public_key_bits().windows(256).any(|w| w == modulus));

    let ecc =
        EkCert::parse(&std::fs::read(ekcerts().join("leaf/stm-ek-ecc.der")).unwrap()).unwrap();
    let (curve, x, y) = ecc.ek_public_key().ec_point().unwrap();
    assert_eq!(curve, vouch_x509::EcCurve::P256);
    assert_eq!(ecc.public_key_bits()[0], 0x04);
    assert_eq!(&ecc.public_key_bits()[1..33], x);
    assert_eq!(&ecc.public_key_bits()[33..], y);
    assert!(matches!(ecc.ek_public_key(), EkPublicKey::Ec { .. }));
}

#[test]
fn never_panics_on_truncations_of_real_certs() {
    for (_, bytes, _) in leaves() {
        for len in 0..bytes.len().min(1400) {
            let _ = EkCert::parse(&bytes[..len]);
        }
    }
    let _ = Path::new("unused");
}
