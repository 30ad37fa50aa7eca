//! `TPM2B_PUBLIC` / `TPMT_PUBLIC` (TPM 2.0 Part 2 §12.2) and object names (Part 1 §16).
//!
//! A [`PublicArea`] keeps the exact bytes it was decoded from: the object's name is the
//! name algorithm's digest of those bytes, never of a re-encoding.

use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::alg::{Digest, HashAlg};

/// TPM_ALG_NULL.
pub(crate) const ALG_NULL: u16 = 0x0010;
/// TPM_ALG_RSA.
pub(crate) const ALG_RSA: u16 = 0x0001;
/// TPM_ALG_ECC.
pub(crate) const ALG_ECC: u16 = 0x0023;
/// TPM_ALG_KEYEDHASH.
pub(crate) const ALG_KEYEDHASH: u16 = 0x0008;
/// TPM_ALG_SYMCIPHER.
pub(crate) const ALG_SYMCIPHER: u16 = 0x0025;
/// TPM_ALG_AES.
pub(crate) const ALG_AES: u16 = 0x0006;
/// TPM_ALG_CFB.
pub(crate) const ALG_CFB: u16 = 0x0043;
/// TPM_ALG_RSASSA.
pub(crate) const ALG_RSASSA: u16 = 0x0014;
/// TPM_ALG_RSAPSS.
pub(crate) const ALG_RSAPSS: u16 = 0x0016;
/// TPM_ALG_ECDSA.
pub(crate) const ALG_ECDSA: u16 = 0x0018;
/// TPM_ALG_ECDAA.
pub(crate) const ALG_ECDAA: u16 = 0x001A;
/// TPM_ALG_RSAES.
pub(crate) const ALG_RSAES: u16 = 0x0015;
/// TPM_ALG_XOR.
pub(crate) const ALG_XOR: u16 = 0x000A;

/// Largest RSA modulus a TPM2B_PUBLIC_KEY_RSA may carry (TPM_MAX_RSA_KEY_BYTES for 4096 bits).
const MAX_RSA_BYTES: u16 = 512;
/// Largest ECC coordinate (P-521: 66 bytes).
const MAX_ECC_BYTES: u16 = 66;
/// Largest TPMT_PUBLIC a TPM2B_PUBLIC may declare (well above any real key).
const MAX_PUBLIC_BYTES: u16 = 2048;

/// Object attributes (TPMA_OBJECT, Part 2 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectAttributes(u32);

impl ObjectAttributes {
    /// fixedTPM: the object cannot be duplicated out of this TPM.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// stClear.
    pub const ST_CLEAR: u32 = 1 << 2;
    /// fixedParent.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// sensitiveDataOrigin: the TPM generated the private part.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// userWithAuth.
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// adminWithPolicy.
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// noDA.
    pub const NO_DA: u32 = 1 << 10;
    /// encryptedDuplication.
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// restricted: signs only TPM-generated structures (or decrypts only TPM-formatted ones).
    pub const RESTRICTED: u32 = 1 << 16;
    /// decrypt.
    pub const DECRYPT: u32 = 1 << 17;
    /// sign / encrypt.
    pub const SIGN: u32 = 1 << 18;

    /// The raw bit field.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `mask` is set.
    #[must_use]
    pub const fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// Names of the set attributes, for display.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::FIXED_TPM, "fixedtpm"),
            (Self::ST_CLEAR, "stclear"),
            (Self::FIXED_PARENT, "fixedparent"),
            (Self::SENSITIVE_DATA_ORIGIN, "sensitivedataorigin"),
            (Self::USER_WITH_AUTH, "userwithauth"),
            (Self::ADMIN_WITH_POLICY, "adminwithpolicy"),
            (Self::NO_DA, "noda"),
            (Self::ENCRYPTED_DUPLICATION, "encryptedduplication"),
            (Self::RESTRICTED, "restricted"),
            (Self::DECRYPT, "decrypt"),
            (Self::SIGN, "sign"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.has(*bit))
        .map(|(_, n)| n)
        .collect()
    }
}

/// An elliptic curve a TPM key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EccCurve {
    /// TPM_ECC_NIST_P256.
    NistP256,
    /// TPM_ECC_NIST_P384.
    NistP384,
    /// TPM_ECC_NIST_P521.
    NistP521,
    /// Any other TPM_ECC_CURVE value (BN, SM2): decoded, not verifiable here.
    Other(u16),
}

impl EccCurve {
    fn from_id(id: u16) -> Self {
        match id {
            0x0003 => Self::NistP256,
            0x0004 => Self::NistP384,
            0x0005 => Self::NistP521,
            other => Self::Other(other),
        }
    }

    /// TPM_ECC_CURVE identifier.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::NistP256 => 0x0003,
            Self::NistP384 => 0x0004,
            Self::NistP521 => 0x0005,
            Self::Other(id) => id,
        }
    }

    /// Coordinate size in bytes, for the curves Vouch verifies with.
    #[must_use]
    pub const fn coordinate_len(self) -> Option<usize> {
        match self {
            Self::NistP256 => Some(32),
            Self::NistP384 => Some(48),
            Self::NistP521 => Some(66),
            Self::Other(_) => None,
        }
    }

    /// Human name.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::NistP256 => "NIST P-256".into(),
            Self::NistP384 => "NIST P-384".into(),
            Self::NistP521 => "NIST P-521".into(),
            Self::Other(id) => format!("curve {id:#06x}"),
        }
    }
}

/// A symmetric definition for a storage parent (`TPMT_SYM_DEF_OBJECT`), as EKs carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymmetricDef {
    /// TPM_ALG_ID of the cipher (AES = 0x0006), or NULL.
    pub algorithm: u16,
    /// Key size in bits.
    pub key_bits: u16,
    /// Mode (CFB = 0x0043).
    pub mode: u16,
}

impl SymmetricDef {
    /// AES-128-CFB, the EK default (TCG EK Credential Profile templates L-1, L-2).
    pub const AES_128_CFB: Self = Self {
        algorithm: ALG_AES,
        key_bits: 128,
        mode: ALG_CFB,
    };
    /// AES-256-CFB (high-range templates H-3 and above).
    pub const AES_256_CFB: Self = Self {
        algorithm: ALG_AES,
        key_bits: 256,
        mode: ALG_CFB,
    };
    /// TPM_ALG_NULL.
    pub const NULL: Self = Self {
        algorithm: ALG_NULL,
        key_bits: 0,
        mode: ALG_NULL,
    };

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let algorithm = r.u16_be()?;
        if algorithm == ALG_NULL {
            return Ok(Self::NULL);
        }
        let key_bits = r.u16_be()?;
        let mode = r.u16_be()?;
        Ok(Self {
            algorithm,
            key_bits,
            mode,
        })
    }
}

/// A signing or encryption scheme named in a key's parameters (`TPMT_*_SCHEME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyScheme {
    /// TPM_ALG_ID of the scheme (RSASSA 0x14, RSAPSS 0x16, ECDSA 0x18, ... or NULL 0x10).
    pub scheme: u16,
    /// The scheme's hash, when it has one.
    pub hash: Option<u16>,
}

/// The algorithm-specific part of a public area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// An RSA key.
    Rsa {
        /// Modulus size in bits as declared.
        bits: u16,
        /// Public exponent (0 in the structure means 65537; resolved here).
        exponent: u32,
        /// Big-endian modulus.
        modulus: &'a [u8],
    },
    /// An elliptic-curve key.
    Ecc {
        /// The curve.
        curve: EccCurve,
        /// Big-endian X coordinate as sent (may be shorter than the field size).
        x: &'a [u8],
        /// Big-endian Y coordinate as sent.
        y: &'a [u8],
    },
    /// A keyed-hash or symmetric object: only its unique digest.
    Other {
        /// TPMI_ALG_PUBLIC.
        alg: u16,
        /// The unique field.
        unique: &'a [u8],
    },
}

/// A decoded `TPMT_PUBLIC`, borrowing the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicArea<'a> {
    raw: &'a [u8],
    name_alg: Option<HashAlg>,
    attributes: ObjectAttributes,
    auth_policy: &'a [u8],
    symmetric: SymmetricDef,
    scheme: KeyScheme,
    key: PublicKey<'a>,
}

fn scheme_has_hash(scheme: u16) -> bool {
    // Every asymmetric scheme but RSAES and NULL carries a hash (Part 2 §11.2.3.2).
    scheme != ALG_NULL && scheme != ALG_RSAES
}

impl<'a> PublicArea<'a> {
    /// Decode a `TPMT_PUBLIC` that must span all of `bytes`.
    pub fn decode_tpmt(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let area = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(area)
    }

    /// Decode a `TPM2B_PUBLIC` (u16 size, then the `TPMT_PUBLIC`), as `tpm2_readpublic -o` and
    /// `tpm2_createak -u` write it. Bytes after it are an error.
    pub fn decode_tpm2b(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut inner = r.sized_u16(MAX_PUBLIC_BYTES)?;
        let area = Self::decode_from(&mut inner)?;
        inner.finish()?;
        r.finish()?;
        Ok(area)
    }

    /// Decode a `TPMT_PUBLIC` from a reader, keeping the exact bytes consumed.
    pub fn decode_from(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let start = r.rest();
        let before = r.remaining();
        let type_at = r.offset();
        let alg = r.u16_be()?;
        let name_alg_at = r.offset();
        let name_alg_id = r.u16_be()?;
        let name_alg = if name_alg_id == ALG_NULL {
            None
        } else {
            Some(HashAlg::from_tpm_alg_id(name_alg_id).ok_or_else(|| {
                Reader::error_at(
                    DecodeErrorKind::BadValue {
                        what: "nameAlg",
                        value: name_alg_id.into(),
                    },
                    name_alg_at,
                )
            })?)
        };
        let attributes = ObjectAttributes(r.u32_be()?);
        let auth_policy = r.tpm2b(crate::alg::MAX_DIGEST_U16)?;
        let (symmetric, scheme, key) = match alg {
            ALG_RSA => {
                let symmetric = SymmetricDef::decode(r)?;
                let scheme_id = r.u16_be()?;
                let hash = if scheme_has_hash(scheme_id) {
                    Some(r.u16_be()?)
                } else {
                    None
                };
                let bits = r.u16_be()?;
                let exponent = match r.u32_be()? {
                    0 => 65537,
                    e => e,
                };
                let modulus = r.tpm2b(MAX_RSA_BYTES)?;
                (
                    symmetric,
                    KeyScheme {
                        scheme: scheme_id,
                        hash,
                    },
                    PublicKey::Rsa {
                        bits,
                        exponent,
                        modulus,
                    },
                )
            }
            ALG_ECC => {
                let symmetric = SymmetricDef::decode(r)?;
                let scheme_id = r.u16_be()?;
                let hash = if scheme_has_hash(scheme_id) {
                    Some(r.u16_be()?)
                } else {
                    None
                };
                if scheme_id == ALG_ECDAA {
                    r.u16_be()?; // count
                }
                let curve = EccCurve::from_id(r.u16_be()?);
                let kdf = r.u16_be()?;
                if kdf != ALG_NULL {
                    r.u16_be()?; // kdf hash
                }
                let x = r.tpm2b(MAX_ECC_BYTES)?;
                let y = r.tpm2b(MAX_ECC_BYTES)?;
                (
                    symmetric,
                    KeyScheme {
                        scheme: scheme_id,
                        hash,
                    },
                    PublicKey::Ecc { curve, x, y },
                )
            }
            ALG_KEYEDHASH => {
                let scheme_id = r.u16_be()?;
                let mut hash = None;
                if scheme_id != ALG_NULL {
                    hash = Some(r.u16_be()?);
                    if scheme_id == ALG_XOR {
                        r.u16_be()?; // kdf
                    }
                }
                let unique = r.tpm2b(crate::alg::MAX_DIGEST_U16)?;
                (
                    SymmetricDef::NULL,
                    KeyScheme {
                        scheme: scheme_id,
                        hash,
                    },
                    PublicKey::Other { alg, unique },
                )
            }
            ALG_SYMCIPHER => {
                let symmetric = SymmetricDef::decode(r)?;
                let unique = r.tpm2b(crate::alg::MAX_DIGEST_U16)?;
                (
                    symmetric,
                    KeyScheme {
                        scheme: ALG_NULL,
                        hash: None,
                    },
                    PublicKey::Other { alg, unique },
                )
            }
            other => {
                return Err(Reader::error_at(
                    DecodeErrorKind::BadValue {
                        what: "TPMI_ALG_PUBLIC",
                        value: other.into(),
                    },
                    type_at,
                ));
            }
        };
        let used = before.saturating_sub(r.remaining());
        let raw = start.get(..used).unwrap_or_default();
        Ok(Self {
            raw,
            name_alg,
            attributes,
            auth_policy,
            symmetric,
            scheme,
            key,
        })
    }

    /// The exact `TPMT_PUBLIC` bytes decoded.
    #[must_use]
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The name algorithm (None for TPM_ALG_NULL, which has no name digest).
    #[must_use]
    pub const fn name_alg(&self) -> Option<HashAlg> {
        self.name_alg
    }

    /// Object attributes.
    #[must_use]
    pub const fn attributes(&self) -> ObjectAttributes {
        self.attributes
    }

    /// The authorisation policy digest.
    #[must_use]
    pub const fn auth_policy(&self) -> &'a [u8] {
        self.auth_policy
    }

    /// The symmetric definition (EKs and other storage parents).
    #[must_use]
    pub const fn symmetric(&self) -> SymmetricDef {
        self.symmetric
    }

    /// The key's scheme.
    #[must_use]
    pub const fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    /// The public key.
    #[must_use]
    pub const fn key(&self) -> &PublicKey<'a> {
        &self.key
    }

    /// The object's name: `nameAlg || H_nameAlg(TPMT_PUBLIC)` (Part 1 §16).
    #[must_use]
    pub fn name(&self) -> Vec<u8> {
        match self.name_alg {
            Some(alg) => {
                let mut out = alg.tpm_alg_id().to_be_bytes().to_vec();
                out.extend_from_slice(alg.hash(self.raw).as_bytes());
                out
            }
            // An object with a NULL nameAlg is named by its handle; not applicable to keys.
            None => ALG_NULL.to_be_bytes().to_vec(),
        }
    }

    /// The name digest alone.
    #[must_use]
    pub fn name_digest(&self) -> Option<Digest> {
        self.name_alg.map(|alg| alg.hash(self.raw))
    }

    /// True for a key fit to be an attestation key: restricted signing, fixedTPM, fixedParent,
    /// sensitiveDataOrigin (TCG TPM 2.0 Keys for Device Identity and Attestation §3.4 / §5).
    #[must_use]
    pub const fn is_attestation_key(&self) -> bool {
        self.attributes.has(
            ObjectAttributes::RESTRICTED
                | ObjectAttributes::SIGN
                | ObjectAttributes::FIXED_TPM
                | ObjectAttributes::FIXED_PARENT
                | ObjectAttributes::SENSITIVE_DATA_ORIGIN,
        ) && !self.attributes.has(ObjectAttributes::DECRYPT)
    }

    /// One-line description, e.g. `RSA-2048 rsassa/sha256, restricted|sign|...`.
    #[must_use]
    pub fn describe(&self) -> String {
        let key = match &self.key {
            PublicKey::Rsa { bits, .. } => format!("RSA-{bits}"),
            PublicKey::Ecc { curve, .. } => format!("ECC {}", curve.name()),
            PublicKey::Other { alg, .. } => format!("object type {alg:#06x}"),
        };
        format!(
            "{key}, nameAlg {}, attributes {}",
            self.name_alg.map_or("null", HashAlg::name),
            self.attributes.names().join("|")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GCE COS 85 AK (testdata/quotes/gce-cos85-nonce9009.expected.json).
    const GCE_AK: &str = "0001000b00050072000000100014000b0800000000000100cbad6f089c698224431f4a08869b56bb69965d554959fe600fae2b318de9c1744d18122d45551bbf38080809a274045d7c1e34f92278b35903420318308ce98848a4b64f398de838fb7b67d818f56eb6265802e42a0a1b23a4adee1b025e74f6bd1ae3629df6123eff94eb208a8945c93539e11393626812d4f5f7198b7aa168a215d88861868cef9dad68f9bf59e17159703cdba1c490cd729734489e5f05d0e79aebef43653e025d56f26f12c67556450d8a10cacf529ac9f1a6c71f4d33b359fa5477005763e00db3d10a8a783e015534ba02415e5c4904446911a7e7bb9d80153f016a42d733b11f5c0220fd39324405d8c3a35d99b1240e874d58e63d67";

    #[test]
    fn decodes_gce_rsa_ak_and_computes_its_name() {
        let bytes = hex::decode(GCE_AK).unwrap();
        let ak = PublicArea::decode_tpmt(&bytes).unwrap();
        assert_eq!(ak.name_alg(), Some(HashAlg::Sha256));
        assert_eq!(ak.attributes().bits(), 0x50072);
        assert_eq!(
            ak.scheme(),
            KeyScheme {
                scheme: ALG_RSASSA,
                hash: Some(0x000B)
            }
        );
        let PublicKey::Rsa {
            bits,
            exponent,
            modulus,
        } = ak.key()
        else {
            panic!("not RSA")
        };
        assert_eq!((*bits, *exponent, modulus.len()), (2048, 65537, 256));
        assert_eq!(
            hex::encode(ak.name()),
            "000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4"
        );
        assert!(ak.is_attestation_key());
    }

    #[test]
    fn rejects_truncated_public_area_at_every_length() {
        let bytes = hex::decode(GCE_AK).unwrap();
        for n in 0..bytes.len() {
            assert!(
                PublicArea::decode_tpmt(&bytes[..n]).is_err(),
                "accepted {n} bytes"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes_after_tpmt_public() {
        let mut bytes = hex::decode(GCE_AK).unwrap();
        bytes.push(0);
        let err = PublicArea::decode_tpmt(&bytes).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::TrailingBytes(1));
    }

    #[test]
    fn decodes_tpm2b_public_wrapper() {
        let inner = hex::decode(GCE_AK).unwrap();
        let mut bytes = u16::try_from(inner.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&inner);
        let ak = PublicArea::decode_tpm2b(&bytes).unwrap();
        assert_eq!(ak.raw(), &inner[..]);
    }
}
