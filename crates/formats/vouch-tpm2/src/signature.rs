//! `TPMT_SIGNATURE` (TPM 2.0 Part 2 §11.3.4).

use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::alg::HashAlg;
use crate::public::{ALG_ECDSA, ALG_NULL, ALG_RSAPSS, ALG_RSASSA};

/// Largest RSA signature (4096-bit keys).
const MAX_RSA_SIG: u16 = 512;
/// Largest ECC signature component (P-521).
const MAX_ECC_PARAM: u16 = 66;

/// A decoded TPM signature, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature<'a> {
    /// RSASSA-PKCS1-v1_5.
    RsaSsa {
        /// Digest the signature covers.
        hash: HashAlg,
        /// Signature bytes (big-endian, modulus length).
        sig: &'a [u8],
    },
    /// RSASSA-PSS.
    RsaPss {
        /// Digest and MGF1 hash.
        hash: HashAlg,
        /// Signature bytes.
        sig: &'a [u8],
    },
    /// ECDSA.
    Ecdsa {
        /// Digest that was signed.
        hash: HashAlg,
        /// r, big-endian, possibly shorter than the field.
        r: &'a [u8],
        /// s, big-endian, possibly shorter than the field.
        s: &'a [u8],
    },
}

impl<'a> Signature<'a> {
    /// Decode a `TPMT_SIGNATURE` spanning all of `bytes` (the `tss` format `tpm2_quote -s` writes).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let sig = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(sig)
    }

    /// Decode a `TPMT_SIGNATURE` from a reader.
    pub fn decode_from(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let alg_at = r.offset();
        let alg = r.u16_be()?;
        if alg == ALG_NULL {
            return Err(Reader::error_at(
                DecodeErrorKind::Invalid("TPM_ALG_NULL signature: the key did not sign"),
                alg_at,
            ));
        }
        let hash_at = r.offset();
        let hash_id = r.u16_be()?;
        let hash = HashAlg::from_tpm_alg_id(hash_id).ok_or_else(|| {
            Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "signature hash algorithm",
                    value: hash_id.into(),
                },
                hash_at,
            )
        })?;
        match alg {
            ALG_RSASSA => Ok(Self::RsaSsa {
                hash,
                sig: r.tpm2b(MAX_RSA_SIG)?,
            }),
            ALG_RSAPSS => Ok(Self::RsaPss {
                hash,
                sig: r.tpm2b(MAX_RSA_SIG)?,
            }),
            ALG_ECDSA => {
                let rr = r.tpm2b(MAX_ECC_PARAM)?;
                let s = r.tpm2b(MAX_ECC_PARAM)?;
                Ok(Self::Ecdsa { hash, r: rr, s })
            }
            other => Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "signature algorithm",
                    value: other.into(),
                },
                alg_at,
            )),
        }
    }

    /// The digest algorithm the signature covers.
    #[must_use]
    pub const fn hash(&self) -> HashAlg {
        match self {
            Self::RsaSsa { hash, .. } | Self::RsaPss { hash, .. } | Self::Ecdsa { hash, .. } => {
                *hash
            }
        }
    }

    /// Scheme name: rsassa, rsapss or ecdsa.
    #[must_use]
    pub const fn scheme_name(&self) -> &'static str {
        match self {
            Self::RsaSsa { .. } => "rsassa",
            Self::RsaPss { .. } => "rsapss",
            Self::Ecdsa { .. } => "ecdsa",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ecdsa_signature() {
        let mut b = vec![
            0x00, 0x18, 0x00, 0x0B, 0x00, 0x02, 0xAA, 0xBB, 0x00, 0x01, 0xCC,
        ];
        let sig = Signature::decode(&b).unwrap();
        assert_eq!(
            sig,
            Signature::Ecdsa {
                hash: HashAlg::Sha256,
                r: &[0xAA, 0xBB],
                s: &[0xCC]
            }
        );
        b.push(0);
        assert_eq!(
            Signature::decode(&b).unwrap_err().kind,
            DecodeErrorKind::TrailingBytes(1)
        );
    }

    #[test]
    fn rejects_null_and_unknown_schemes() {
        assert!(Signature::decode(&[0x00, 0x10]).is_err());
        let err = Signature::decode(&[0x00, 0x05, 0x00, 0x0B]).unwrap_err();
        assert!(matches!(
            err.kind,
            DecodeErrorKind::BadValue {
                what: "signature algorithm",
                ..
            }
        ));
    }

    #[test]
    fn rejects_oversized_rsa_signature() {
        let b = [0x00, 0x14, 0x00, 0x0B, 0x02, 0x01];
        let err = Signature::decode(&b).unwrap_err();
        assert!(matches!(
            err.kind,
            DecodeErrorKind::TooLong {
                length: 513,
                limit: 512
            }
        ));
    }
}
