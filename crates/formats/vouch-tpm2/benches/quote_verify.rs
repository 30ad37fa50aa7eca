//! Quote verification throughput: decode TPMS_ATTEST and TPMT_SIGNATURE, verify the signature
//! over the raw bytes, check the nonce and the PCR digest over 24 PCRs.
//!
//! Inputs: the real GCE vTPM quote (RSA-2048, RSASSA/SHA-256, 24 SHA-256 PCRs) from testdata,
//! and an ECC P-256 quote made here with aws-lc-rs over a real TPMS_ATTEST layout (no ECC AK
//! quote ships in testdata; the swtpm end-to-end test covers real ECDSA quotes).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark fixture set-up: a failure is a broken benchmark"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vouch_tpm2::{AkVerifier, Digest, HashAlg, PcrValues, PublicArea, verify_quote};

struct Input {
    ak: Vec<u8>,
    attest: Vec<u8>,
    sig: Vec<u8>,
    nonce: Vec<u8>,
    pcrs: PcrValues,
}

fn gce_rsa() -> Input {
    let path = format!(
        "{}/../../../testdata/quotes/gce-cos85-nonce9009.expected.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let q = v["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["bank"] == "sha256")
        .unwrap();
    let mut pcrs = PcrValues::new();
    for (i, val) in q["pcrs"].as_object().unwrap() {
        pcrs.insert(
            i.parse().unwrap(),
            Digest::from_hex(HashAlg::Sha256, val.as_str().unwrap()).unwrap(),
        );
    }
    Input {
        ak: hex::decode(v["ak_public_tpmt_hex"].as_str().unwrap()).unwrap(),
        attest: hex::decode(q["tpms_attest_hex"].as_str().unwrap()).unwrap(),
        sig: hex::decode(q["tpmt_signature_hex"].as_str().unwrap()).unwrap(),
        nonce: hex::decode(v["nonce_hex"].as_str().unwrap()).unwrap(),
        pcrs,
    }
}

fn ecc_p256(rsa: &Input) -> Input {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = kp.public_key().as_ref().to_vec();
    // TPMT_PUBLIC: ECC, sha256, restricted|sign|fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth,
    // empty policy, NULL symmetric, ECDSA/sha256, NIST P-256, NULL KDF, x, y.
    let mut ak = vec![
        0x00, 0x23, 0x00, 0x0b, 0x00, 0x05, 0x00, 0x72, 0x00, 0x00, 0x00, 0x10, 0x00, 0x18, 0x00,
        0x0b, 0x00, 0x03, 0x00, 0x10, 0x00, 0x20,
    ];
    ak.extend_from_slice(&point[1..33]);
    ak.extend_from_slice(&[0x00, 0x20]);
    ak.extend_from_slice(&point[33..65]);
    let attest = rsa.attest.clone();
    let sig = kp.sign(&rng, &attest).unwrap();
    let mut tpmt = vec![0x00, 0x18, 0x00, 0x0b, 0x00, 0x20];
    tpmt.extend_from_slice(&sig.as_ref()[..32]);
    tpmt.extend_from_slice(&[0x00, 0x20]);
    tpmt.extend_from_slice(&sig.as_ref()[32..]);
    Input {
        ak,
        attest,
        sig: tpmt,
        nonce: rsa.nonce.clone(),
        pcrs: rsa.pcrs.clone(),
    }
}

fn bench(c: &mut Criterion) {
    let rsa = gce_rsa();
    let ecc = ecc_p256(&rsa);
    for (name, input) in [
        ("quote_verify/rsa2048_rsassa_sha256_24pcrs", &rsa),
        ("quote_verify/ecc_p256_ecdsa_sha256_24pcrs", &ecc),
    ] {
        let area = PublicArea::decode_tpmt(&input.ak).unwrap();
        let ak = AkVerifier::new(&area).unwrap();
        // Sanity: the inputs verify before they are timed.
        let _checked =
            verify_quote(&ak, &input.attest, &input.sig, &input.nonce, &input.pcrs).unwrap();
        c.bench_function(name, |b| {
            b.iter(|| {
                verify_quote(
                    &ak,
                    black_box(&input.attest),
                    black_box(&input.sig),
                    &input.nonce,
                    &input.pcrs,
                )
                .unwrap()
            })
        });
    }
    // Including AK decoding and key preparation, as a verifier without a key cache pays it.
    c.bench_function("quote_verify/rsa2048_cold_ak", |b| {
        b.iter(|| {
            let area = PublicArea::decode_tpmt(black_box(&rsa.ak)).unwrap();
            let ak = AkVerifier::new(&area).unwrap();
            verify_quote(&ak, &rsa.attest, &rsa.sig, &rsa.nonce, &rsa.pcrs).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
