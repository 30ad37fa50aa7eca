//! Signature algorithms of certificates and their verification with aws-lc-rs, always over the
//! raw tbsCertificate bytes as received.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::Serialize;
use x509_parser::prelude::AlgorithmIdentifier;
use x509_parser::signature_algorithm::SignatureAlgorithm as ParsedAlg;

use crate::cert::{EcCurve, EkPublicKey};

/// Hash functions used by certificate signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigHash {
    /// SHA-1 (legacy: still used by Infineon's older EK CAs).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl SigHash {
    fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "1.3.14.3.2.26" => Some(Self::Sha1),
            "2.16.840.1.101.3.4.2.1" => Some(Self::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(Self::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(Self::Sha512),
            _ => None,
        }
    }

    const fn len(self) -> u32 {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// A certificate's signature algorithm, resolved when the certificate is parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scheme", content = "hash", rename_all = "snake_case")]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(SigHash),
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash.
    RsaPss(SigHash),
    /// ECDSA (the curve comes from the issuer's key).
    Ecdsa(SigHash),
    /// Anything else, or PSS with parameters aws-lc-rs cannot verify: the OID and why.
    Unsupported(String),
}

impl SignatureAlgorithm {
    pub(crate) fn from_identifier(alg: &AlgorithmIdentifier<'_>) -> Self {
        let oid = alg.algorithm.to_id_string();
        match oid.as_str() {
            "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Self::RsaPkcs1(SigHash::Sha1),
            "1.2.840.113549.1.1.11" => Self::RsaPkcs1(SigHash::Sha256),
            "1.2.840.113549.1.1.12" => Self::RsaPkcs1(SigHash::Sha384),
            "1.2.840.113549.1.1.13" => Self::RsaPkcs1(SigHash::Sha512),
            "1.2.840.10045.4.1" => Self::Ecdsa(SigHash::Sha1),
            "1.2.840.10045.4.3.2" => Self::Ecdsa(SigHash::Sha256),
            "1.2.840.10045.4.3.3" => Self::Ecdsa(SigHash::Sha384),
            "1.2.840.10045.4.3.4" => Self::Ecdsa(SigHash::Sha512),
            "1.2.840.113549.1.1.10" => Self::from_pss(alg),
            _ => Self::Unsupported(oid),
        }
    }

    fn from_pss(alg: &AlgorithmIdentifier<'_>) -> Self {
        let Ok(ParsedAlg::RSASSA_PSS(params)) = ParsedAlg::try_from(alg) else {
            return Self::Unsupported("RSASSA-PSS with unparsable parameters".to_owned());
        };
        let Some(hash) = SigHash::from_oid(&params.hash_algorithm_oid().to_id_string()) else {
            return Self::Unsupported("RSASSA-PSS with an unsupported hash".to_owned());
        };
        let mgf_ok = params.mask_gen_algorithm().is_ok_and(|mgf| {
            mgf.mgf.to_id_string() == "1.2.840.113549.1.1.8"
                && SigHash::from_oid(&mgf.hash.to_id_string()) == Some(hash)
        });
        if !mgf_ok {
            return Self::Unsupported(
                "RSASSA-PSS with a mask generation function other than MGF1 over the same hash"
                    .to_owned(),
            );
        }
        if params.salt_length() != hash.len() || params.trailer_field() != 1 {
            return Self::Unsupported(format!(
                "RSASSA-PSS with salt length {} (only the hash length {} is supported)",
                params.salt_length(),
                hash.len()
            ));
        }
        Self::RsaPss(hash)
    }

    /// A short name, e.g. `sha256WithRSAEncryption`.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::RsaPkcs1(h) => format!("{}WithRSAEncryption", hash_name(*h)),
            Self::RsaPss(h) => format!("rsassaPss-{}", hash_name(*h)),
            Self::Ecdsa(h) => format!("ecdsa-with-{}", hash_name(*h).to_ascii_uppercase()),
            Self::Unsupported(s) => s.clone(),
        }
    }
}

const fn hash_name(h: SigHash) -> &'static str {
    match h {
        SigHash::Sha1 => "sha1",
        SigHash::Sha256 => "sha256",
        SigHash::Sha384 => "sha384",
        SigHash::Sha512 => "sha512",
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigFailure {
    /// The algorithm / key combination is not supported; description.
    Unsupported(String),
    /// The signature is wrong.
    Invalid,
}

/// Pick the aws-lc-rs verification algorithm for this signature and issuer key.
fn pick(
    alg: &SignatureAlgorithm,
    key: &EkPublicKey,
) -> Result<&'static dyn VerificationAlgorithm, SigFailure> {
    use SigHash::{Sha1, Sha256, Sha384, Sha512};
    let unsupported = || {
        SigFailure::Unsupported(format!(
            "{} with a {} issuer key",
            alg.name(),
            key.describe()
        ))
    };
    match (alg, key) {
        (SignatureAlgorithm::RsaPkcs1(h), EkPublicKey::Rsa { .. }) => Ok(match h {
            Sha1 => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Sha256 => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Sha512 => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        }),
        (SignatureAlgorithm::RsaPss(h), EkPublicKey::Rsa { .. }) => match h {
            Sha256 => Ok(&signature::RSA_PSS_2048_8192_SHA256),
            Sha384 => Ok(&signature::RSA_PSS_2048_8192_SHA384),
            Sha512 => Ok(&signature::RSA_PSS_2048_8192_SHA512),
            Sha1 => Err(unsupported()),
        },
        (SignatureAlgorithm::Ecdsa(h), EkPublicKey::Ec { curve, .. }) => match (curve, h) {
            (EcCurve::P256, Sha1) => Ok(&signature::ECDSA_P256_SHA1_ASN1),
            (EcCurve::P256, Sha256) => Ok(&signature::ECDSA_P256_SHA256_ASN1),
            (EcCurve::P256, Sha384) => Ok(&signature::ECDSA_P256_SHA384_ASN1),
            (EcCurve::P256, Sha512) => Ok(&signature::ECDSA_P256_SHA512_ASN1),
            (EcCurve::P384, Sha256) => Ok(&signature::ECDSA_P384_SHA256_ASN1),
            (EcCurve::P384, Sha384) => Ok(&signature::ECDSA_P384_SHA384_ASN1),
            (EcCurve::P384, Sha512) => Ok(&signature::ECDSA_P384_SHA512_ASN1),
            (EcCurve::P521, Sha1) => Ok(&signature::ECDSA_P521_SHA1_ASN1),
            (EcCurve::P521, Sha256) => Ok(&signature::ECDSA_P521_SHA256_ASN1),
            (EcCurve::P521, Sha384) => Ok(&signature::ECDSA_P521_SHA384_ASN1),
            (EcCurve::P521, Sha512) => Ok(&signature::ECDSA_P521_SHA512_ASN1),
            _ => Err(unsupported()),
        },
        (SignatureAlgorithm::Unsupported(s), _) => Err(SigFailure::Unsupported(s.clone())),
        _ => Err(unsupported()),
    }
}

/// Verify `signature` over `tbs` (the raw tbsCertificate bytes) with the issuer's key.
pub(crate) fn verify(
    alg: &SignatureAlgorithm,
    issuer_key: &EkPublicKey,
    issuer_spki_bits: &[u8],
    tbs: &[u8],
    signature: &[u8],
) -> Result<(), SigFailure> {
    let algorithm = pick(alg, issuer_key)?;
    UnparsedPublicKey::new(algorithm, issuer_spki_bits)
        .verify(tbs, signature)
        .map_err(|_| SigFailure::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    fn alg_from_der(der: &[u8]) -> SignatureAlgorithm {
        let (rest, alg) = AlgorithmIdentifier::from_der(der).unwrap();
        assert!(rest.is_empty());
        SignatureAlgorithm::from_identifier(&alg)
    }

    #[test]
    fn accepts_pss_sha256_with_matching_salt() {
        // RSASSA-PSS { sha256, mgf1(sha256), salt 32 } as emitted by OpenSSL.
        let der = [
            0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
            0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
            0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
        ];
        assert_eq!(
            alg_from_der(&der),
            SignatureAlgorithm::RsaPss(SigHash::Sha256)
        );
    }

    #[test]
    fn rejects_pss_with_short_salt() {
        let der = [
            0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
            0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
            0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x10,
        ];
        assert!(matches!(
            alg_from_der(&der),
            SignatureAlgorithm::Unsupported(_)
        ));
    }

    #[test]
    fn pss_defaults_are_sha1_and_unsupported() {
        // RSASSA-PSS with empty parameters = SHA-1, MGF1-SHA1, salt 20.
        let der = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x00,
        ];
        let alg = alg_from_der(&der[..]);
        assert_eq!(alg, SignatureAlgorithm::RsaPss(SigHash::Sha1));
        let key = EkPublicKey::Rsa {
            modulus: vec![1; 256],
            exponent: vec![1, 0, 1],
        };
        assert!(matches!(pick(&alg, &key), Err(SigFailure::Unsupported(_))));
    }
}
