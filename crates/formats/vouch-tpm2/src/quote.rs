//! Quote verification (TPM 2.0 Part 3 §18.4 TPM2_Quote; Part 1 Annex B.7 for RSA-PSS salts).
//!
//! What a successful [`verify_quote`] proves: the TPM that holds the AK's private key signed
//! these exact attestation bytes; they are a quote; its qualifying data is the verifier's
//! nonce; and the supplied PCR values are the ones the TPM hashed. What it does not prove:
//! that the AK lives in a genuine TPM (bind it to an EK with [`crate::credential`] first), or
//! that the PCR values are good (that is appraisal).

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPssSaltLength};

use vouch_wire::{DecodeError, hex_lower};

use crate::alg::HashAlg;
use crate::attest::{Attest, AttestType, Attested, ClockInfo, TPM_GENERATED_VALUE};
use crate::pcr::{PcrSelection, PcrValues};
use crate::public::{ALG_ECDSA, ALG_NULL, ALG_RSAPSS, ALG_RSASSA, EccCurve, PublicArea, PublicKey};
use crate::signature::Signature;

/// Why a quote was refused. Each check has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The attestation bytes do not start with TPM_GENERATED_VALUE: not produced by a TPM.
    #[error("attestation magic is {found:#010x}, not TPM_GENERATED_VALUE (0xff544347)")]
    BadMagic {
        /// The first four bytes, big-endian.
        found: u32,
    },
    /// The attestation is well-formed but is not a quote.
    #[error("attestation type is {found:#06x}, not TPM_ST_ATTEST_QUOTE (0x8018)")]
    NotAQuote {
        /// The TPM_ST value found.
        found: u16,
    },
    /// The attestation bytes are malformed.
    #[error("malformed TPMS_ATTEST: {0}")]
    MalformedAttest(DecodeError),
    /// The signature bytes are malformed.
    #[error("malformed TPMT_SIGNATURE: {0}")]
    MalformedSignature(DecodeError),
    /// The AK is not a restricted signing key, so it could sign forged attestations.
    #[error("the AK is not a restricted, fixedTPM signing key (attributes {0:#010x})")]
    NotAnAttestationKey(u32),
    /// The signature's scheme does not fit the AK.
    #[error("signature scheme {signature} does not match the AK ({key})")]
    SchemeMismatch {
        /// Signature scheme and hash.
        signature: String,
        /// The AK's key type and scheme.
        key: String,
    },
    /// The AK uses a key type or size Vouch cannot verify with.
    #[error("unsupported AK: {0}")]
    UnsupportedKey(String),
    /// The signature does not verify over the attestation bytes with the AK.
    #[error("the quote signature does not verify with the AK ({scheme}/{hash})")]
    BadSignature {
        /// Signature scheme.
        scheme: &'static str,
        /// Signature hash.
        hash: HashAlg,
    },
    /// The quote's qualifying data is not the verifier's nonce: stale or replayed.
    #[error("nonce mismatch: quote carries {quoted}, expected {expected}")]
    NonceMismatch {
        /// Hex of extraData in the quote.
        quoted: String,
        /// Hex of the challenge.
        expected: String,
    },
    /// A PCR the quote covers was not supplied.
    #[error("PCR {bank}:{index} is quoted but no value was supplied")]
    PcrValueMissing {
        /// Bank.
        bank: HashAlg,
        /// Index.
        index: u32,
    },
    /// The supplied PCR values are not what the TPM hashed.
    #[error(
        "PCR digest mismatch: the quote covers {quoted}, the supplied values hash to {computed}"
    )]
    PcrDigestMismatch {
        /// pcrDigest in the quote.
        quoted: String,
        /// Digest of the supplied values.
        computed: String,
    },
}

/// A quote whose signature, nonce and PCR digest all checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct VerifiedQuote {
    /// The PCR selection, in the order the TPM hashed it.
    pub selection: PcrSelection,
    /// The quoted PCR values (exactly the selection, taken from the supplied values).
    pub pcrs: PcrValues,
    /// Clock, resetCount, restartCount, safe.
    pub clock_info: ClockInfo,
    /// TPM firmware version.
    pub firmware_version: u64,
    /// The signer's qualified name.
    pub qualified_signer: Vec<u8>,
    /// Signature scheme name and hash.
    pub scheme: &'static str,
    /// Hash of the signature (and of the PCR digest).
    pub hash: HashAlg,
}

/// An AK prepared for repeated verification: parse once, verify many quotes.
#[derive(Debug)]
pub struct AkVerifier {
    /// None when the key came without its TPM public area (a PEM file): attributes unknown.
    attributes: Option<u32>,
    key: AkKey,
    declared_scheme: u16,
    declared_hash: Option<u16>,
    describe: String,
}

/// Which RSA parameter set a cached parsed key was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RsaSlot {
    Pkcs1(HashAlg),
    PssMaxSalt(HashAlg),
    PssDigestSalt(HashAlg),
}

enum AkKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        bits: usize,
        cache: std::sync::Mutex<Vec<(RsaSlot, ParsedPublicKey)>>,
    },
    Ecc {
        curve: EccCurve,
        point: Vec<u8>,
    },
}

impl core::fmt::Debug for AkKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Rsa { bits, .. } => write!(f, "RSA-{bits}"),
            Self::Ecc { curve, .. } => write!(f, "ECC {}", curve.name()),
        }
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

/// Left-pad `b` to `len` bytes; None when it is longer.
fn left_pad(b: &[u8], len: usize) -> Option<Vec<u8>> {
    let b = strip_leading_zeros(b);
    let pad = len.checked_sub(b.len())?;
    let mut out = vec![0u8; pad];
    out.extend_from_slice(b);
    Some(out)
}

impl AkVerifier {
    /// Prepare an AK for verification. Refuses keys that are not restricted signing keys.
    pub fn new(ak: &PublicArea<'_>) -> Result<Self, QuoteError> {
        let attrs = ak.attributes();
        if !ak.is_attestation_key() {
            return Err(QuoteError::NotAnAttestationKey(attrs.bits()));
        }
        let key = match ak.key() {
            PublicKey::Rsa {
                exponent, modulus, ..
            } => {
                let n = strip_leading_zeros(modulus).to_vec();
                let bits = n.len().saturating_mul(8);
                if !(2048..=8192).contains(&bits) {
                    return Err(QuoteError::UnsupportedKey(format!(
                        "RSA modulus of {bits} bits (2048 to 8192 supported)"
                    )));
                }
                let e = strip_leading_zeros(&exponent.to_be_bytes()).to_vec();
                AkKey::Rsa {
                    n,
                    e,
                    bits,
                    cache: std::sync::Mutex::new(Vec::new()),
                }
            }
            PublicKey::Ecc { curve, x, y } => {
                let len = curve
                    .coordinate_len()
                    .ok_or_else(|| QuoteError::UnsupportedKey(format!("ECC {}", curve.name())))?;
                let mut point = vec![0x04];
                for c in [x, y] {
                    let padded = left_pad(c, len).ok_or_else(|| {
                        QuoteError::UnsupportedKey("ECC coordinate longer than the curve".into())
                    })?;
                    point.extend_from_slice(&padded);
                }
                AkKey::Ecc {
                    curve: *curve,
                    point,
                }
            }
            PublicKey::Other { alg, .. } => {
                return Err(QuoteError::UnsupportedKey(format!(
                    "object type {alg:#06x}"
                )));
            }
        };
        Ok(Self {
            attributes: Some(attrs.bits()),
            key,
            declared_scheme: ak.scheme().scheme,
            declared_hash: ak.scheme().hash,
            describe: ak.describe(),
        })
    }

    /// An AK known only by its RSA public key (for example a PEM file from
    /// `tpm2_readpublic -f pem`). Its TPM attributes cannot be checked: only use this where the
    /// key was already established as a restricted AK (by credential activation).
    pub fn from_bare_rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, QuoteError> {
        let n = strip_leading_zeros(modulus).to_vec();
        let bits = n.len().saturating_mul(8);
        if !(2048..=8192).contains(&bits) {
            return Err(QuoteError::UnsupportedKey(format!(
                "RSA modulus of {bits} bits (2048 to 8192 supported)"
            )));
        }
        let e = strip_leading_zeros(exponent).to_vec();
        Ok(Self {
            attributes: None,
            key: AkKey::Rsa {
                n,
                e,
                bits,
                cache: std::sync::Mutex::new(Vec::new()),
            },
            declared_scheme: ALG_NULL,
            declared_hash: None,
            describe: format!("RSA-{bits} (bare key, attributes unknown)"),
        })
    }

    /// An AK known only by its ECC public point (uncompressed `04 || x || y`). See
    /// [`AkVerifier::from_bare_rsa`] for the caveat.
    pub fn from_bare_ecc(curve: EccCurve, point: &[u8]) -> Result<Self, QuoteError> {
        let len = curve
            .coordinate_len()
            .ok_or_else(|| QuoteError::UnsupportedKey(format!("ECC {}", curve.name())))?;
        if point.len() != len.saturating_mul(2).saturating_add(1) || point.first() != Some(&0x04) {
            return Err(QuoteError::UnsupportedKey(
                "ECC point is not uncompressed for its curve".into(),
            ));
        }
        Ok(Self {
            attributes: None,
            key: AkKey::Ecc {
                curve,
                point: point.to_vec(),
            },
            declared_scheme: ALG_NULL,
            declared_hash: None,
            describe: format!("ECC {} (bare key, attributes unknown)", curve.name()),
        })
    }

    /// Attributes of the AK, when it came with its TPM public area.
    #[must_use]
    pub const fn attributes(&self) -> Option<u32> {
        self.attributes
    }

    /// One-line description of the key.
    #[must_use]
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn mismatch(&self, sig: &Signature<'_>) -> QuoteError {
        QuoteError::SchemeMismatch {
            signature: format!("{}/{}", sig.scheme_name(), sig.hash()),
            key: self.describe.clone(),
        }
    }

    /// Verify `sig` over `message` (the raw attestation bytes) with this AK.
    pub fn verify_signature(&self, message: &[u8], sig: &Signature<'_>) -> Result<(), QuoteError> {
        // A key with a fixed scheme signs only with that scheme and hash.
        let sig_scheme = match sig {
            Signature::RsaSsa { .. } => ALG_RSASSA,
            Signature::RsaPss { .. } => ALG_RSAPSS,
            Signature::Ecdsa { .. } => ALG_ECDSA,
        };
        if self.declared_scheme != ALG_NULL
            && (self.declared_scheme != sig_scheme
                || self.declared_hash != Some(sig.hash().tpm_alg_id()))
        {
            return Err(self.mismatch(sig));
        }
        let bad = QuoteError::BadSignature {
            scheme: sig.scheme_name(),
            hash: sig.hash(),
        };
        match (&self.key, sig) {
            (AkKey::Rsa { .. }, Signature::RsaSsa { hash, sig: s }) => {
                let alg: &'static signature::RsaParameters = match hash {
                    HashAlg::Sha1 => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                    HashAlg::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    HashAlg::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    HashAlg::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    HashAlg::Sm3_256 => return Err(self.mismatch(sig)),
                };
                self.rsa_verify(alg, RsaSlot::Pkcs1(*hash), message, s)
                    .map_err(|()| bad)
            }
            (AkKey::Rsa { .. }, Signature::RsaPss { hash, sig: s }) => {
                // TCG Part 1 B.7: TPMs use the largest salt; FIPS-mode TPMs use the hash length.
                let (max, digest): (
                    &'static signature::RsaParameters,
                    &'static signature::RsaParameters,
                ) = match hash {
                    HashAlg::Sha256 => (
                        &const {
                            signature::RSA_PSS_2048_8192_SHA256
                                .with_pss_salt_length(RsaPssSaltLength::Max)
                        },
                        &signature::RSA_PSS_2048_8192_SHA256,
                    ),
                    HashAlg::Sha384 => (
                        &const {
                            signature::RSA_PSS_2048_8192_SHA384
                                .with_pss_salt_length(RsaPssSaltLength::Max)
                        },
                        &signature::RSA_PSS_2048_8192_SHA384,
                    ),
                    HashAlg::Sha512 => (
                        &const {
                            signature::RSA_PSS_2048_8192_SHA512
                                .with_pss_salt_length(RsaPssSaltLength::Max)
                        },
                        &signature::RSA_PSS_2048_8192_SHA512,
                    ),
                    HashAlg::Sha1 | HashAlg::Sm3_256 => {
                        return Err(QuoteError::UnsupportedKey(format!(
                            "RSA-PSS with {hash} is not supported"
                        )));
                    }
                };
                self.rsa_verify(max, RsaSlot::PssMaxSalt(*hash), message, s)
                    .or_else(|()| {
                        self.rsa_verify(digest, RsaSlot::PssDigestSalt(*hash), message, s)
                    })
                    .map_err(|()| bad)
            }
            (AkKey::Ecc { curve, point }, Signature::Ecdsa { hash, r, s }) => {
                let len = curve.coordinate_len().unwrap_or(0);
                let fixed: Option<&'static signature::EcdsaVerificationAlgorithm> =
                    match (curve, hash) {
                        (EccCurve::NistP256, HashAlg::Sha256) => {
                            Some(&signature::ECDSA_P256_SHA256_FIXED)
                        }
                        (EccCurve::NistP384, HashAlg::Sha384) => {
                            Some(&signature::ECDSA_P384_SHA384_FIXED)
                        }
                        _ => None,
                    };
                if let Some(alg) = fixed {
                    let (Some(mut rs), Some(sp)) = (left_pad(r, len), left_pad(s, len)) else {
                        return Err(bad);
                    };
                    rs.extend_from_slice(&sp);
                    return signature::UnparsedPublicKey::new(alg, point)
                        .verify(message, &rs)
                        .map_err(|_| bad);
                }
                let asn1: &'static signature::EcdsaVerificationAlgorithm = match (curve, hash) {
                    (EccCurve::NistP256, HashAlg::Sha1) => &signature::ECDSA_P256_SHA1_ASN1,
                    (EccCurve::NistP256, HashAlg::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
                    (EccCurve::NistP256, HashAlg::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
                    (EccCurve::NistP384, HashAlg::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
                    (EccCurve::NistP384, HashAlg::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
                    (EccCurve::NistP521, HashAlg::Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
                    (EccCurve::NistP521, HashAlg::Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
                    (EccCurve::NistP521, HashAlg::Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
                    _ => {
                        return Err(QuoteError::UnsupportedKey(format!(
                            "ECDSA on {} with {hash}",
                            curve.name()
                        )));
                    }
                };
                let der = ecdsa_der(r, s).ok_or(bad.clone())?;
                signature::UnparsedPublicKey::new(asn1, point)
                    .verify(message, &der)
                    .map_err(|_| bad)
            }
            _ => Err(self.mismatch(sig)),
        }
    }

    fn rsa_verify(
        &self,
        alg: &'static signature::RsaParameters,
        slot: RsaSlot,
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), ()> {
        let AkKey::Rsa { n, e, cache, .. } = &self.key else {
            return Err(());
        };
        // Parsing an RSA key costs more than verifying with it: keep parsed keys per algorithm.
        let parsed = {
            let guard = cache.lock().map_err(|_| ())?;
            guard
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, k)| k.clone())
        };
        let key = match parsed {
            Some(k) => k,
            None => {
                let k = signature::RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                }
                .to_parsed_public_key(alg)
                .map_err(|_| ())?;
                if let Ok(mut guard) = cache.lock() {
                    guard.push((slot, k.clone()));
                }
                k
            }
        };
        key.verify_sig(message, sig).map_err(|_| ())
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` for the ASN.1 verification algorithms.
fn ecdsa_der(r: &[u8], s: &[u8]) -> Option<Vec<u8>> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v = strip_leading_zeros(v);
        let mut body = Vec::with_capacity(v.len().saturating_add(1));
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            body.push(0);
        }
        body.extend_from_slice(v);
        let mut out = vec![0x02, u8::try_from(body.len()).unwrap_or(0)];
        out.extend_from_slice(&body);
        out
    }
    let (ri, si) = (int(r), int(s));
    let len = u8::try_from(ri.len().saturating_add(si.len())).ok()?;
    if len >= 0x80 {
        return None; // P-521 needs long-form lengths; r and s here are at most 67 bytes each.
    }
    let mut out = vec![0x30, len];
    out.extend_from_slice(&ri);
    out.extend_from_slice(&si);
    Some(out)
}

/// Verify a quote: magic and type, signature over the raw attestation bytes, nonce, PCR digest.
///
/// `pcrs` may hold more values than the quote covers; only the selected ones are used, in
/// selection order. Checks run from the cheapest structural check to the signature, so each
/// failure is reported as precisely as possible; none is skipped.
pub fn verify_quote(
    ak: &AkVerifier,
    attest_bytes: &[u8],
    signature_bytes: &[u8],
    nonce: &[u8],
    pcrs: &PcrValues,
) -> Result<VerifiedQuote, QuoteError> {
    let magic = attest_bytes
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes);
    match magic {
        Some(TPM_GENERATED_VALUE) => {}
        Some(found) => return Err(QuoteError::BadMagic { found }),
        None => {
            return Err(QuoteError::MalformedAttest(vouch_wire::DecodeError::new(
                vouch_wire::DecodeErrorKind::Truncated {
                    needed: 4,
                    available: attest_bytes.len(),
                },
                0,
            )));
        }
    }
    // The type is checked before the body is decoded: a certify structure is "not a quote",
    // not "malformed".
    if let Some(st) = attest_bytes
        .get(4..6)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
    {
        let st = u16::from_be_bytes(st);
        if st != AttestType::Quote.st() {
            return Err(QuoteError::NotAQuote { found: st });
        }
    }
    let attest = Attest::decode(attest_bytes).map_err(QuoteError::MalformedAttest)?;
    let sig = Signature::decode(signature_bytes).map_err(QuoteError::MalformedSignature)?;
    ak.verify_signature(attest.raw(), &sig)?;
    let Attested::Quote {
        selection,
        pcr_digest,
    } = attest.attested
    else {
        return Err(QuoteError::NotAQuote {
            found: attest.attest_type.st(),
        });
    };
    if attest.extra_data != nonce {
        return Err(QuoteError::NonceMismatch {
            quoted: hex_lower(attest.extra_data),
            expected: hex_lower(nonce),
        });
    }
    let hash = sig.hash();
    let mut hasher = crate::alg::Hasher::new(hash);
    let mut quoted = PcrValues::new();
    for (bank, index) in selection.iter() {
        let value = pcrs
            .get(bank, index)
            .ok_or(QuoteError::PcrValueMissing { bank, index })?;
        hasher.update(value.as_bytes());
        quoted.insert(index, *value);
    }
    let computed = hasher.finish();
    if computed.as_bytes() != pcr_digest {
        return Err(QuoteError::PcrDigestMismatch {
            quoted: hex_lower(pcr_digest),
            computed: computed.to_hex(),
        });
    }
    Ok(VerifiedQuote {
        selection,
        pcrs: quoted,
        clock_info: attest.clock_info,
        firmware_version: attest.firmware_version,
        qualified_signer: attest.qualified_signer.to_vec(),
        scheme: sig.scheme_name(),
        hash,
    })
}

#[cfg(test)]
#[path = "quote_tests.rs"]
mod tests;
