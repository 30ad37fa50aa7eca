//! TPM 1.2 quotes (TCG TPM Main Specification 1.2 rev 116, Part 2 §11.3 `TPM_QUOTE_INFO`,
//! §8.2 `TPM_PCR_COMPOSITE`, §12.5 `TPM_PUBKEY`), for fleets that still hold TPM 1.2 machines.
//!
//! A TPM 1.2 quote signs `TPM_QUOTE_INFO` (version 1.1.0.0, "QUOT", the SHA-1 of the PCR
//! composite, 20 bytes of external data) with RSASSA-PKCS1-v1_5/SHA-1. Verification checks the
//! signature over the exact bytes received, the external data, and that the supplied SHA-1 PCR
//! values hash to the signed composite digest. SHA-1 is all TPM 1.2 has: this is weaker evidence
//! than a TPM 2.0 quote, and policy should say so.

use aws_lc_rs::signature;
use vouch_wire::{DecodeError, DecodeErrorKind, Reader, hex_lower};

use crate::alg::{HashAlg, Hasher};
use crate::pcr::PcrValues;

/// Why a TPM 1.2 quote was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tpm12QuoteError {
    /// The key or quote structure is malformed.
    #[error("malformed TPM 1.2 structure: {0}")]
    Malformed(DecodeError),
    /// The AK is not an RSA key Vouch can verify with.
    #[error("unsupported TPM 1.2 key: {0}")]
    UnsupportedKey(String),
    /// The signature does not verify over the quote info.
    #[error("the TPM 1.2 quote signature does not verify with the AK")]
    BadSignature,
    /// The external data is not the expected nonce digest.
    #[error("nonce mismatch: quote carries {quoted}, expected {expected}")]
    NonceMismatch {
        /// Hex of the quote's external data.
        quoted: String,
        /// Hex of what was expected.
        expected: String,
    },
    /// A quoted PCR value is missing.
    #[error("PCR sha1:{0} is quoted but no value was supplied")]
    PcrValueMissing(u32),
    /// The PCR values do not hash to the signed composite digest.
    #[error("PCR composite mismatch: the quote covers {quoted}, the values hash to {computed}")]
    CompositeMismatch {
        /// Signed composite digest.
        quoted: String,
        /// Digest of the supplied values.
        computed: String,
    },
}

/// An RSA public key from a `TPM_PUBKEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tpm12PublicKey {
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

/// TPM_ALG_RSA in TPM 1.2.
const TPM_ALG_RSA: u32 = 0x0000_0001;
/// Largest modulus a TPM 1.2 key has (2048 bits; allow 4096).
const MAX_MODULUS: u32 = 512;

impl Tpm12PublicKey {
    /// Decode a `TPM_PUBKEY`: `TPM_KEY_PARMS` (RSA) then `TPM_STORE_PUBKEY`.
    pub fn decode(bytes: &[u8]) -> Result<Self, Tpm12QuoteError> {
        let mut r = Reader::new(bytes);
        let alg_at = r.offset();
        let alg = r.u32_be().map_err(Tpm12QuoteError::Malformed)?;
        if alg != TPM_ALG_RSA {
            return Err(Tpm12QuoteError::Malformed(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "TPM_KEY_PARMS algorithmID",
                    value: alg.into(),
                },
                alg_at,
            )));
        }
        let mut take = || -> Result<Self, DecodeError> {
            let _enc_scheme = r.u16_be()?;
            let _sig_scheme = r.u16_be()?;
            let parm_size = r.u32_be()?;
            let mut parms = r.sub(usize::try_from(parm_size).unwrap_or(usize::MAX))?;
            let _key_length = parms.u32_be()?;
            let _num_primes = parms.u32_be()?;
            let exp_at = parms.offset();
            let exp_size = parms.u32_be()?;
            if exp_size > 8 {
                return Err(Reader::error_at(
                    DecodeErrorKind::TooLong {
                        length: exp_size.into(),
                        limit: 8,
                    },
                    exp_at,
                ));
            }
            let exponent = parms
                .bytes(usize::try_from(exp_size).unwrap_or(usize::MAX))?
                .to_vec();
            parms.finish()?;
            let key_at = r.offset();
            let key_len = r.u32_be()?;
            if key_len > MAX_MODULUS {
                return Err(Reader::error_at(
                    DecodeErrorKind::TooLong {
                        length: key_len.into(),
                        limit: MAX_MODULUS.into(),
                    },
                    key_at,
                ));
            }
            let modulus = r
                .bytes(usize::try_from(key_len).unwrap_or(usize::MAX))?
                .to_vec();
            Ok(Self {
                modulus,
                // An empty exponent means the default 65537 (Part 2 §5.10).
                exponent: if exponent.is_empty() {
                    vec![1, 0, 1]
                } else {
                    exponent
                },
            })
        };
        let key = take().map_err(Tpm12QuoteError::Malformed)?;
        r.finish().map_err(Tpm12QuoteError::Malformed)?;
        Ok(key)
    }

    /// The modulus, big-endian.
    #[must_use]
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }
}

/// Verify a TPM 1.2 quote over PCRs 0..n (the composite selects `pcr_count` PCRs from 0).
///
/// `external_data` is the 20 bytes the verifier asked the TPM to include (usually SHA-1 of
/// its nonce). `pcrs` must hold the SHA-1 values of PCRs `0..pcr_count`.
pub fn verify_quote12(
    ak: &Tpm12PublicKey,
    quote_info: &[u8],
    signature_bytes: &[u8],
    external_data: &[u8],
    pcrs: &PcrValues,
    pcr_count: u32,
) -> Result<(), Tpm12QuoteError> {
    let mut r = Reader::new(quote_info);
    let version = r.take::<4>().map_err(Tpm12QuoteError::Malformed)?;
    let fixed = r.take::<4>().map_err(Tpm12QuoteError::Malformed)?;
    if version != [1, 1, 0, 0] || &fixed != b"QUOT" {
        return Err(Tpm12QuoteError::Malformed(Reader::error_at(
            DecodeErrorKind::Invalid("not a TPM_QUOTE_INFO (version 1.1.0.0, \"QUOT\")"),
            0,
        )));
    }
    let composite = r.take::<20>().map_err(Tpm12QuoteError::Malformed)?;
    let nonce = r.take::<20>().map_err(Tpm12QuoteError::Malformed)?;
    r.finish().map_err(Tpm12QuoteError::Malformed)?;

    let key = signature::RsaPublicKeyComponents {
        n: ak.modulus.as_slice(),
        e: ak.exponent.as_slice(),
    };
    key.verify(
        &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        quote_info,
        signature_bytes,
    )
    .map_err(|_| Tpm12QuoteError::BadSignature)?;
    if nonce != external_data {
        return Err(Tpm12QuoteError::NonceMismatch {
            quoted: hex_lower(&nonce),
            expected: hex_lower(external_data),
        });
    }
    // TPM_PCR_COMPOSITE: TPM_PCR_SELECTION (u16 size + bitmap) || u32 valueSize || values.
    let select_bytes = pcr_count.div_ceil(8).max(3);
    let mut bitmap = vec![0u8; usize::try_from(select_bytes).unwrap_or(3)];
    for i in 0..pcr_count {
        if let Some(b) = bitmap.get_mut(usize::try_from(i / 8).unwrap_or(0)) {
            *b |= 1u8 << (i % 8);
        }
    }
    let mut h = Hasher::new(HashAlg::Sha1);
    h.update(&u16::try_from(bitmap.len()).unwrap_or(3).to_be_bytes());
    h.update(&bitmap);
    h.update(&pcr_count.saturating_mul(20).to_be_bytes());
    for i in 0..pcr_count {
        let v = pcrs
            .get(HashAlg::Sha1, i)
            .ok_or(Tpm12QuoteError::PcrValueMissing(i))?;
        h.update(v.as_bytes());
    }
    let computed = h.finish();
    if computed.as_bytes() != composite {
        return Err(Tpm12QuoteError::CompositeMismatch {
            quoted: hex_lower(&composite),
            computed: computed.to_hex(),
        });
    }
    Ok(())
}
