//! ima-sig digsig v2 verification with keys from X.509 certificates (ECDSA P-256, RSA-2048).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test code: a failure here is a failed test"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use vouch_ima::policy::{Accepted, PolicyDocument, Reason, RuntimePolicy, Verdict, key_id};
use vouch_ima::{MeasurementList, TemplateData};
use vouch_tpm2::HashAlg;

/// One ima-sig entry for `path` whose file content is `content`, signed by `sig`.
fn ima_sig_entry(path: &str, content: &[u8], sig: &[u8], keyid: [u8; 4]) -> Vec<u8> {
    let digest = HashAlg::Sha256.hash(content);
    let mut d = b"sha256:\0".to_vec();
    d.extend_from_slice(digest.as_bytes());
    let mut n = path.as_bytes().to_vec();
    n.push(0);
    let mut s = vec![3u8, 2, 4]; // digsig, v2, sha256
    s.extend_from_slice(&keyid);
    s.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    s.extend_from_slice(sig);
    let mut data = Vec::new();
    for f in [&d, &n, &s] {
        data.extend_from_slice(&(f.len() as u32).to_le_bytes());
        data.extend_from_slice(f);
    }
    let mut e = 10u32.to_le_bytes().to_vec();
    e.extend_from_slice(HashAlg::Sha1.hash(&data).as_bytes());
    e.extend_from_slice(&7u32.to_le_bytes());
    e.extend_from_slice(b"ima-sig");
    e.extend_from_slice(&(data.len() as u32).to_le_bytes());
    e.extend_from_slice(&data);
    e
}

fn verdict_of(policy: &RuntimePolicy, bytes: &[u8]) -> Verdict<'static> {
    let list = MeasurementList::parse(bytes).unwrap();
    let e = list.entries().next().unwrap().unwrap();
    assert!(
        TemplateData::decode(&e)
            .unwrap()
            .signature()
            .unwrap()
            .is_ok()
    );
    match policy.appraise(&e) {
        Verdict::Accepted(a) => Verdict::Accepted(a),
        Verdict::Rejected(r) => {
            // The reason names the path and the digest.
            let text = r.to_string();
            assert!(
                text.contains("/usr/bin/signed") && text.contains("sha256:"),
                "{text}"
            );
            Verdict::Rejected(vouch_ima::policy::Rejection {
                index: r.index,
                path: b"",
                digest: None,
                reason: r.reason,
            })
        }
    }
}

fn check(cert_pem: String, public_key: &[u8], sign: impl Fn(&[u8]) -> Vec<u8>) {
    let policy = RuntimePolicy::compile(&PolicyDocument {
        version: 1,
        keys: vec![cert_pem],
        ..PolicyDocument::default()
    })
    .unwrap();
    let kid = key_id(public_key);
    let content = b"#!/bin/sh\necho signed\n";
    let good = ima_sig_entry("/usr/bin/signed", content, &sign(content), kid);
    assert_eq!(
        verdict_of(&policy, &good),
        Verdict::Accepted(Accepted::Signed { key_id: kid })
    );
    // A signature over other content, with the same key id, is rejected.
    let bad = ima_sig_entry("/usr/bin/signed", content, &sign(b"other"), kid);
    assert!(matches!(
        verdict_of(&policy, &bad),
        Verdict::Rejected(r) if matches!(r.reason, Reason::BadSignature { .. })
    ));
    // A key the policy does not hold: no signature verdict; not in the allowlist -> rejected.
    let unknown = ima_sig_entry("/usr/bin/signed", content, &sign(content), [1, 2, 3, 4]);
    assert!(matches!(
        verdict_of(&policy, &unknown),
        Verdict::Rejected(r) if r.reason == Reason::NotInPolicy
    ));
}

#[test]
fn ecdsa_p256_signature_from_certificate_key_accepts_and_tampering_rejects() {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ima-signer".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let signer = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &kp.serialize_der(),
    )
    .unwrap();
    let public = signer.public_key().as_ref().to_vec();
    check(cert.pem(), &public, |m| {
        signer
            .sign(&SystemRandom::new(), m)
            .unwrap()
            .as_ref()
            .to_vec()
    });
}

#[test]
fn rsa_pkcs1_signature_from_certificate_key_accepts_and_tampering_rejects() {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ima-signer".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let signer = RsaKeyPair::from_pkcs8(&kp.serialize_der()).unwrap();
    let public = signer.public_key().as_ref().to_vec();
    check(cert.pem(), &public, |m| {
        let mut sig = vec![0u8; signer.public_modulus_len()];
        signer
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                m,
                &mut sig,
            )
            .unwrap();
        sig
    });
}
