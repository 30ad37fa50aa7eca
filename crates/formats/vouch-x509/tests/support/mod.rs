//! A tiny DER writer and certificate factory for synthetic test certificates (ECDSA P-256,
//! signed with aws-lc-rs). Only for tests: it builds exactly the shapes the tests need.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(((rest & 0x7f) as u8) | 0x80);
            rest >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

pub fn name_cn(cn: &str) -> Vec<u8> {
    seq(&[tlv(0x31, &seq(&[oid("2.5.4.3"), tlv(0x0c, cn.as_bytes())]))])
}

pub fn extension(oid_str: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![oid(oid_str)];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(tlv(0x04, value));
    seq(&parts)
}

pub fn basic_constraints(ca: bool) -> Vec<u8> {
    let body = if ca {
        vec![vec![0x01, 0x01, 0xff]]
    } else {
        vec![]
    };
    extension("2.5.29.19", true, &seq(&body))
}

/// keyUsage with keyCertSign + cRLSign, or digitalSignature only.
pub fn key_usage(cert_sign: bool) -> Vec<u8> {
    let bits = if cert_sign {
        vec![0x03, 0x02, 0x01, 0x06]
    } else {
        vec![0x03, 0x02, 0x07, 0x80]
    };
    extension("2.5.29.15", true, &bits)
}

/// A P-256 key pair.
pub struct Key(pub EcdsaKeyPair);

impl Key {
    pub fn generate() -> Self {
        Self(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap())
    }

    pub fn point(&self) -> Vec<u8> {
        self.0.public_key().as_ref().to_vec()
    }
}

pub struct CertSpec<'a> {
    pub issuer_cn: &'a str,
    pub subject_cn: &'a str,
    pub serial: u8,
    /// UTCTime (YYMMDDHHMMSSZ, 13 chars) or GeneralizedTime (15 chars).
    pub not_before: &'a str,
    pub not_after: &'a str,
    pub extensions: Vec<Vec<u8>>,
}

fn time(t: &str) -> Vec<u8> {
    tlv(if t.len() == 13 { 0x17 } else { 0x18 }, t.as_bytes())
}

/// Build and sign a certificate for `subject_key`, signed by `issuer_key` (ecdsa-with-SHA256).
pub fn make_cert(spec: &CertSpec<'_>, subject_key: &Key, issuer_key: &Key) -> Vec<u8> {
    let alg = seq(&[oid("1.2.840.10045.4.3.2")]);
    let mut point = vec![0x00];
    point.extend(subject_key.point());
    let spki = seq(&[
        seq(&[oid("1.2.840.10045.2.1"), oid("1.2.840.10045.3.1.7")]),
        tlv(0x03, &point),
    ]);
    let mut tbs_parts = vec![
        tlv(0xa0, &[0x02, 0x01, 0x02]),
        tlv(0x02, &[spec.serial]),
        alg.clone(),
        name_cn(spec.issuer_cn),
        seq(&[time(spec.not_before), time(spec.not_after)]),
        if spec.subject_cn.is_empty() {
            seq(&[])
        } else {
            name_cn(spec.subject_cn)
        },
        spki,
    ];
    if !spec.extensions.is_empty() {
        tbs_parts.push(tlv(0xa3, &seq(&spec.extensions)));
    }
    let tbs = seq(&tbs_parts);
    let sig = issuer_key.0.sign(&SystemRandom::new(), &tbs).unwrap();
    let mut sig_bits = vec![0x00];
    sig_bits.extend_from_slice(sig.as_ref());
    seq(&[tbs, alg, tlv(0x03, &sig_bits)])
}

/// A self-signed CA certificate.
pub fn make_root(cn: &str, key: &Key) -> Vec<u8> {
    make_cert(
        &CertSpec {
            issuer_cn: cn,
            subject_cn: cn,
            serial: 1,
            not_before: "200101000000Z",
            not_after: "20991231235959Z",
            extensions: vec![basic_constraints(true), key_usage(true)],
        },
        key,
        key,
    )
}

/// A DER certificate as PEM.
pub fn to_pem(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
