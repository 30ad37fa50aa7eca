//! TPM2_MakeCredential computed by the verifier (TPM 2.0 Part 1 §24 "Credential Protection",
//! §11.4.9.2 KDFa, §11.4.10.3 KDFe; Part 2 §11.4.2 seeds; Annex B.10 (RSA) and C.6 (ECC)
//! secret sharing).
//!
//! The verifier wraps a fresh secret so that only a TPM holding the EK's private key *and* an
//! object with the AK's exact name can recover it with TPM2_ActivateCredential. If the agent
//! returns the secret, its AK is resident in the same TPM as the EK. This module needs no TPM:
//! it is pure computation over the EK public key and the AK name.
//!
//! Trust assumptions: the EK public key must already be trusted (its certificate chains to a
//! manufacturer root) and the AK name must be computed by the verifier from the AK public area
//! it will later verify quotes with ([`crate::PublicArea::name`]), never taken from the agent.

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepPublicEncryptingKey, PublicEncryptingKey,
};

use crate::alg::HashAlg;
use crate::public::{ALG_AES, ALG_CFB, EccCurve, PublicArea, PublicKey, SymmetricDef};

/// Why a credential could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The EK's name algorithm has no HMAC here (SM3) or is NULL.
    #[error("unsupported EK name algorithm: {0}")]
    UnsupportedNameAlg(String),
    /// The EK's symmetric definition is not AES-CFB with 128 or 256 bits.
    #[error("unsupported EK symmetric definition (alg {alg:#06x}, {bits} bits, mode {mode:#06x})")]
    UnsupportedSymmetric {
        /// Cipher.
        alg: u16,
        /// Key bits.
        bits: u16,
        /// Mode.
        mode: u16,
    },
    /// The EK is neither RSA nor ECC on a supported curve.
    #[error("unsupported EK key: {0}")]
    UnsupportedKey(String),
    /// The credential is larger than the name algorithm's digest (a TPM2B_DIGEST).
    #[error("credential of {len} bytes exceeds the {max}-byte limit of the EK's name algorithm")]
    CredentialTooLong {
        /// Credential length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The AK name is not a well-formed name (2-byte algorithm id + digest).
    #[error("AK name of {0} bytes is not a valid TPM name")]
    BadName(usize),
    /// The crypto library refused an operation (key rejected, RNG failure).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

/// The EK as MakeCredential needs it: key, name algorithm and symmetric protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkPublic {
    key: EkKey,
    name_alg: HashAlg,
    symmetric: SymmetricDef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EkKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        bytes: usize,
    },
    Ecc {
        curve: EccCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

impl EkPublic {
    /// From the EK's `TPMT_PUBLIC`, using its own nameAlg and symmetric definition.
    pub fn from_public_area(area: &PublicArea<'_>) -> Result<Self, CredentialError> {
        let name_alg = area
            .name_alg()
            .ok_or_else(|| CredentialError::UnsupportedNameAlg("null".into()))?;
        let key = match area.key() {
            PublicKey::Rsa {
                exponent, modulus, ..
            } => Self::rsa_key(modulus, *exponent),
            PublicKey::Ecc { curve, x, y } => Self::ecc_key(*curve, x, y)?,
            PublicKey::Other { alg, .. } => {
                return Err(CredentialError::UnsupportedKey(format!(
                    "object type {alg:#06x}"
                )));
            }
        };
        Self::checked(key, name_alg, area.symmetric())
    }

    /// An RSA EK created from a TCG default template: RSA-2048 uses template L-1 (SHA-256,
    /// AES-128-CFB); RSA-3072 and larger use the high-range template (SHA-384, AES-256-CFB).
    /// Use this when only the EK certificate's key is known.
    pub fn rsa_default_template(modulus: &[u8], exponent: u32) -> Result<Self, CredentialError> {
        let key = Self::rsa_key(modulus, exponent);
        let (alg, sym) = match &key {
            EkKey::Rsa { bytes, .. } if *bytes > 256 => {
                (HashAlg::Sha384, SymmetricDef::AES_256_CFB)
            }
            _ => (HashAlg::Sha256, SymmetricDef::AES_128_CFB),
        };
        Self::checked(key, alg, sym)
    }

    /// An ECC EK created from a TCG default template: P-256 uses template L-2 (SHA-256,
    /// AES-128-CFB), P-384 uses H-3 (SHA-384, AES-256-CFB), P-521 uses H-4 (SHA-512, AES-256).
    pub fn ecc_default_template(
        curve: EccCurve,
        x: &[u8],
        y: &[u8],
    ) -> Result<Self, CredentialError> {
        let (alg, sym) = match curve {
            EccCurve::NistP256 => (HashAlg::Sha256, SymmetricDef::AES_128_CFB),
            EccCurve::NistP384 => (HashAlg::Sha384, SymmetricDef::AES_256_CFB),
            EccCurve::NistP521 => (HashAlg::Sha512, SymmetricDef::AES_256_CFB),
            EccCurve::Other(_) => {
                return Err(CredentialError::UnsupportedKey(format!(
                    "ECC {}",
                    curve.name()
                )));
            }
        };
        Self::checked(Self::ecc_key(curve, x, y)?, alg, sym)
    }

    fn rsa_key(modulus: &[u8], exponent: u32) -> EkKey {
        let n = strip(modulus).to_vec();
        let bytes = n.len();
        let e = strip(&exponent.to_be_bytes()).to_vec();
        EkKey::Rsa { n, e, bytes }
    }

    fn ecc_key(curve: EccCurve, x: &[u8], y: &[u8]) -> Result<EkKey, CredentialError> {
        let len = curve
            .coordinate_len()
            .filter(|_| curve != EccCurve::NistP521)
            .ok_or_else(|| CredentialError::UnsupportedKey(format!("ECC {}", curve.name())))?;
        let pad = |c: &[u8]| -> Result<Vec<u8>, CredentialError> {
            let c = strip(c);
            let zeros = len.checked_sub(c.len()).ok_or_else(|| {
                CredentialError::UnsupportedKey("ECC coordinate longer than the curve".into())
            })?;
            let mut v = vec![0u8; zeros];
            v.extend_from_slice(c);
            Ok(v)
        };
        Ok(EkKey::Ecc {
            curve,
            x: pad(x)?,
            y: pad(y)?,
        })
    }

    fn checked(
        key: EkKey,
        name_alg: HashAlg,
        symmetric: SymmetricDef,
    ) -> Result<Self, CredentialError> {
        hmac_alg(name_alg)?;
        sym_alg(symmetric)?;
        Ok(Self {
            key,
            name_alg,
            symmetric,
        })
    }

    /// The EK's name algorithm.
    #[must_use]
    pub const fn name_alg(&self) -> HashAlg {
        self.name_alg
    }
}

fn strip(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

fn hmac_alg(alg: HashAlg) -> Result<hmac::Algorithm, CredentialError> {
    match alg {
        HashAlg::Sha1 => Ok(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha256 => Ok(hmac::HMAC_SHA256),
        HashAlg::Sha384 => Ok(hmac::HMAC_SHA384),
        HashAlg::Sha512 => Ok(hmac::HMAC_SHA512),
        HashAlg::Sm3_256 => Err(CredentialError::UnsupportedNameAlg(alg.name().into())),
    }
}

fn sym_alg(sym: SymmetricDef) -> Result<&'static aws_lc_rs::cipher::Algorithm, CredentialError> {
    match (sym.algorithm, sym.key_bits, sym.mode) {
        (ALG_AES, 128, ALG_CFB) => Ok(&AES_128),
        (ALG_AES, 256, ALG_CFB) => Ok(&AES_256),
        (alg, bits, mode) => Err(CredentialError::UnsupportedSymmetric { alg, bits, mode }),
    }
}

/// A label as the TPM uses it: the string and its terminating zero octet.
fn label(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// KDFa (Part 1 §11.4.10.2): SP 800-108 counter-mode KDF with HMAC-`alg`.
pub fn kdfa(
    alg: HashAlg,
    key: &[u8],
    label_str: &str,
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Result<Vec<u8>, CredentialError> {
    let hkey = hmac::Key::new(hmac_alg(alg)?, key);
    let want = usize::try_from(bits.div_ceil(8)).map_err(|_| CredentialError::Crypto("size"))?;
    let lbl = label(label_str);
    let mut out = Vec::with_capacity(want.saturating_add(alg.digest_len()));
    let mut counter = 1u32;
    while out.len() < want {
        let mut ctx = hmac::Context::with_key(&hkey);
        ctx.update(&counter.to_be_bytes());
        ctx.update(&lbl);
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter = counter
            .checked_add(1)
            .ok_or(CredentialError::Crypto("KDFa counter"))?;
    }
    out.truncate(want);
    Ok(out)
}

/// KDFe (Part 1 §11.4.10.3): SP 800-56A concatenation KDF with `alg`, for ECC secret sharing.
pub fn kdfe(
    alg: HashAlg,
    z: &[u8],
    label_str: &str,
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Result<Vec<u8>, CredentialError> {
    let want = usize::try_from(bits.div_ceil(8)).map_err(|_| CredentialError::Crypto("size"))?;
    let lbl = label(label_str);
    let mut out = Vec::with_capacity(want.saturating_add(alg.digest_len()));
    let mut counter = 1u32;
    while out.len() < want {
        let d = alg.hash_parts(&[&counter.to_be_bytes(), z, &lbl, party_u, party_v]);
        out.extend_from_slice(d.as_bytes());
        counter = counter
            .checked_add(1)
            .ok_or(CredentialError::Crypto("KDFe counter"))?;
    }
    out.truncate(want);
    Ok(out)
}

/// The two outputs of MakeCredential, as the TPM's ActivateCredential takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBlob {
    /// `TPM2B_ID_OBJECT` contents: `TPM2B_DIGEST integrityHMAC || encIdentity` (no outer size).
    pub id_object: Vec<u8>,
    /// `TPM2B_ENCRYPTED_SECRET` contents: an RSA-OAEP ciphertext or a marshalled
    /// `TPMS_ECC_POINT` (no outer size).
    pub encrypted_secret: Vec<u8>,
}

/// Magic and version that open a `tpm2_makecredential -o` file.
const TPM2_TOOLS_MAGIC: u32 = 0xBADC_C0DE;
const TPM2_TOOLS_VERSION: u32 = 1;

fn tpm2b(out: &mut Vec<u8>, body: &[u8]) -> Result<(), CredentialError> {
    let len = u16::try_from(body.len()).map_err(|_| CredentialError::Crypto("TPM2B too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

impl CredentialBlob {
    /// The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i` reads:
    /// magic 0xBADCC0DE, version 1, `TPM2B_ID_OBJECT`, `TPM2B_ENCRYPTED_SECRET`.
    pub fn to_tpm2_tools(&self) -> Result<Vec<u8>, CredentialError> {
        let mut out = Vec::new();
        out.extend_from_slice(&TPM2_TOOLS_MAGIC.to_be_bytes());
        out.extend_from_slice(&TPM2_TOOLS_VERSION.to_be_bytes());
        tpm2b(&mut out, &self.id_object)?;
        tpm2b(&mut out, &self.encrypted_secret)?;
        Ok(out)
    }
}

/// TPM2_MakeCredential: protect `credential` for the object named `ak_name` under `ek`.
pub fn make_credential(
    ek: &EkPublic,
    ak_name: &[u8],
    credential: &[u8],
) -> Result<CredentialBlob, CredentialError> {
    let rng = SystemRandom::new();
    let alg = ek.name_alg;
    if credential.len() > alg.digest_len() || credential.is_empty() {
        return Err(CredentialError::CredentialTooLong {
            len: credential.len(),
            max: alg.digest_len(),
        });
    }
    let name_ok = ak_name
        .get(..2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .and_then(|id| HashAlg::from_tpm_alg_id(u16::from_be_bytes(id)))
        .is_some_and(|a| ak_name.len() == a.digest_len().saturating_add(2));
    if !name_ok {
        return Err(CredentialError::BadName(ak_name.len()));
    }
    let (seed, encrypted_secret) = match &ek.key {
        EkKey::Rsa { n, e, .. } => {
            let mut seed = vec![0u8; alg.digest_len()];
            rng.fill(&mut seed)
                .map_err(|_| CredentialError::Crypto("random seed"))?;
            let public: PublicEncryptingKey = aws_lc_rs::rsa::PublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .try_into()
            .map_err(|_| CredentialError::UnsupportedKey("RSA EK rejected".into()))?;
            let oaep = OaepPublicEncryptingKey::new(public)
                .map_err(|_| CredentialError::Crypto("OAEP key"))?;
            let oaep_alg = match alg {
                HashAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
                HashAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
                HashAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
                HashAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
                HashAlg::Sm3_256 => {
                    return Err(CredentialError::UnsupportedNameAlg(alg.name().into()));
                }
            };
            let mut ct = vec![0u8; oaep.ciphertext_size()];
            let used = oaep
                .encrypt(oaep_alg, &seed, &mut ct, Some(&label("IDENTITY")))
                .map_err(|_| CredentialError::Crypto("RSA-OAEP"))?
                .len();
            ct.truncate(used);
            (seed, ct)
        }
        EkKey::Ecc { curve, x, y } => {
            let agreement_alg = match curve {
                EccCurve::NistP256 => &agreement::ECDH_P256,
                EccCurve::NistP384 => &agreement::ECDH_P384,
                _ => {
                    return Err(CredentialError::UnsupportedKey(format!(
                        "ECC {}",
                        curve.name()
                    )));
                }
            };
            let ephemeral = EphemeralPrivateKey::generate(agreement_alg, &rng)
                .map_err(|_| CredentialError::Crypto("ephemeral ECC key"))?;
            let eph_pub = ephemeral
                .compute_public_key()
                .map_err(|_| CredentialError::Crypto("ephemeral public key"))?;
            let eph_bytes = eph_pub.as_ref();
            let len = x.len();
            let eph_x = eph_bytes
                .get(1..len.saturating_add(1))
                .unwrap_or_default()
                .to_vec();
            let eph_y = eph_bytes
                .get(len.saturating_add(1)..)
                .unwrap_or_default()
                .to_vec();
            let mut peer = vec![0x04];
            peer.extend_from_slice(x);
            peer.extend_from_slice(y);
            let bits = u32::try_from(alg.digest_len().saturating_mul(8)).unwrap_or(256);
            let seed = agreement::agree_ephemeral(
                ephemeral,
                UnparsedPublicKey::new(agreement_alg, &peer),
                CredentialError::UnsupportedKey("EK point is not on its curve".into()),
                |z| kdfe(alg, z, "IDENTITY", &eph_x, x, bits),
            )?;
            let mut point = Vec::new();
            tpm2b(&mut point, &eph_x)?;
            tpm2b(&mut point, &eph_y)?;
            (seed, point)
        }
    };
    wrap(ek, &seed, ak_name, credential, encrypted_secret)
}

/// The symmetric and integrity layers (Part 1 §24.4, §24.5), given the seed.
fn wrap(
    ek: &EkPublic,
    seed: &[u8],
    ak_name: &[u8],
    credential: &[u8],
    encrypted_secret: Vec<u8>,
) -> Result<CredentialBlob, CredentialError> {
    let alg = ek.name_alg;
    let cipher = sym_alg(ek.symmetric)?;
    let sym_key = kdfa(
        alg,
        seed,
        "STORAGE",
        ak_name,
        &[],
        u32::from(ek.symmetric.key_bits),
    )?;
    let mut enc_identity = Vec::new();
    tpm2b(&mut enc_identity, credential)?;
    let key =
        UnboundCipherKey::new(cipher, &sym_key).map_err(|_| CredentialError::Crypto("AES key"))?;
    let enc = EncryptingKey::cfb128(key).map_err(|_| CredentialError::Crypto("AES-CFB"))?;
    enc.less_safe_encrypt(
        &mut enc_identity,
        EncryptionContext::Iv128(FixedLength::from(&[0u8; 16])),
    )
    .map_err(|_| CredentialError::Crypto("AES-CFB encrypt"))?;
    let digest_bits = u32::try_from(alg.digest_len().saturating_mul(8)).unwrap_or(256);
    let hmac_key = kdfa(alg, seed, "INTEGRITY", &[], &[], digest_bits)?;
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac_alg(alg)?, &hmac_key));
    ctx.update(&enc_identity);
    ctx.update(ak_name);
    let integrity = ctx.sign();
    let mut id_object = Vec::new();
    tpm2b(&mut id_object, integrity.as_ref())?;
    id_object.extend_from_slice(&enc_identity);
    Ok(CredentialBlob {
        id_object,
        encrypted_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_matches_tpm2_spec_construction() {
        // KDFa output is HMAC(key, 1 || "STORAGE\0" || u || v || bits): check the first block.
        let out = kdfa(HashAlg::Sha256, b"seed", "STORAGE", b"name", b"", 128).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"seed");
        let mut m = Vec::new();
        m.extend_from_slice(&1u32.to_be_bytes());
        m.extend_from_slice(b"STORAGE\0name");
        m.extend_from_slice(&128u32.to_be_bytes());
        assert_eq!(out, hmac::sign(&key, &m).as_ref()[..16]);
    }

    #[test]
    fn kdfa_spans_several_blocks() {
        let out = kdfa(HashAlg::Sha1, b"k", "X", b"", b"", 400).unwrap();
        assert_eq!(out.len(), 50);
    }

    #[test]
    fn refuses_oversized_credential_and_bad_name() {
        let ek = EkPublic::ecc_default_template(EccCurve::NistP256, &[1; 32], &[2; 32]).unwrap();
        let name = [0x00, 0x0B]
            .iter()
            .chain([0u8; 32].iter())
            .copied()
            .collect::<Vec<_>>();
        assert!(matches!(
            make_credential(&ek, &name, &[0; 33]),
            Err(CredentialError::CredentialTooLong { len: 33, max: 32 })
        ));
        assert!(matches!(
            make_credential(&ek, &name[..10], &[0; 16]),
            Err(CredentialError::BadName(10))
        ));
    }

    #[test]
    fn refuses_ecc_point_not_on_curve() {
        let ek = EkPublic::ecc_default_template(EccCurve::NistP256, &[1; 32], &[2; 32]).unwrap();
        let name = [0x00, 0x0B]
            .iter()
            .chain([7u8; 32].iter())
            .copied()
            .collect::<Vec<_>>();
        assert!(matches!(
            make_credential(&ek, &name, &[1; 16]),
            Err(CredentialError::UnsupportedKey(_))
        ));
    }
}
