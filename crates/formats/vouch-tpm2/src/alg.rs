//! Hash algorithms (TPM_ALG_ID, TPM 2.0 Library Part 2 §6.3) and fixed-capacity digests.

use serde::{Serialize, Serializer};

/// The largest digest any supported bank produces (SHA-512).
pub const MAX_DIGEST: usize = 64;
/// [`MAX_DIGEST`] as the u16 a TPM2B size limit takes.
pub const MAX_DIGEST_U16: u16 = 64;

/// A hash algorithm that can back a PCR bank or a TPM name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlg {
    /// TPM_ALG_SHA1 (0x0004).
    Sha1,
    /// TPM_ALG_SHA256 (0x000B).
    Sha256,
    /// TPM_ALG_SHA384 (0x000C).
    Sha384,
    /// TPM_ALG_SHA512 (0x000D).
    Sha512,
    /// TPM_ALG_SM3_256 (0x0012).
    Sm3_256,
}

impl HashAlg {
    /// Every supported algorithm, in TPM_ALG_ID order.
    pub const ALL: [Self; 5] = [
        Self::Sha1,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
        Self::Sm3_256,
    ];

    /// The algorithm for a TPM_ALG_ID, if it is a supported hash.
    #[must_use]
    pub const fn from_tpm_alg_id(id: u16) -> Option<Self> {
        match id {
            0x0004 => Some(Self::Sha1),
            0x000B => Some(Self::Sha256),
            0x000C => Some(Self::Sha384),
            0x000D => Some(Self::Sha512),
            0x0012 => Some(Self::Sm3_256),
            _ => None,
        }
    }

    /// The TPM_ALG_ID of this algorithm.
    #[must_use]
    pub const fn tpm_alg_id(self) -> u16 {
        match self {
            Self::Sha1 => 0x0004,
            Self::Sha256 => 0x000B,
            Self::Sha384 => 0x000C,
            Self::Sha512 => 0x000D,
            Self::Sm3_256 => 0x0012,
        }
    }

    /// Digest length in bytes.
    #[must_use]
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 | Self::Sm3_256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The bank name used in Vouch's JSON and CLI: sha1, sha256, sha384, sha512, sm3_256.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Sm3_256 => "sm3_256",
        }
    }

    /// Parse a bank name as printed by [`HashAlg::name`] (also accepts `sm3`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            "sm3_256" | "sm3" => Some(Self::Sm3_256),
            _ => None,
        }
    }

    /// Hash `data` in one call.
    #[must_use]
    pub fn hash(self, data: &[u8]) -> Digest {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }

    /// Hash the concatenation of `parts`.
    #[must_use]
    pub fn hash_parts(self, parts: &[&[u8]]) -> Digest {
        let mut h = Hasher::new(self);
        for p in parts {
            h.update(p);
        }
        h.finish()
    }

    /// The all-zero value a PCR of this bank starts from.
    #[must_use]
    pub const fn zero(self) -> Digest {
        Digest {
            alg: self,
            bytes: [0; MAX_DIGEST],
        }
    }
}

impl Serialize for HashAlg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl core::fmt::Display for HashAlg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Incremental hashing with any [`HashAlg`].
#[derive(Debug, Clone)]
pub enum Hasher {
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
    /// SM3.
    Sm3(sm3::Sm3),
}

impl Hasher {
    /// A fresh hasher.
    #[must_use]
    pub fn new(alg: HashAlg) -> Self {
        use sha2::Digest as _;
        match alg {
            HashAlg::Sha1 => Self::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => Self::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => Self::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Self::Sha512(sha2::Sha512::new()),
            HashAlg::Sm3_256 => Self::Sm3(sm3::Sm3::new()),
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
            Self::Sm3(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    #[must_use]
    pub fn finish(self) -> Digest {
        use sha2::Digest as _;
        match self {
            Self::Sha1(h) => Digest::from_slice_unchecked(HashAlg::Sha1, &h.finalize()),
            Self::Sha256(h) => Digest::from_slice_unchecked(HashAlg::Sha256, &h.finalize()),
            Self::Sha384(h) => Digest::from_slice_unchecked(HashAlg::Sha384, &h.finalize()),
            Self::Sha512(h) => Digest::from_slice_unchecked(HashAlg::Sha512, &h.finalize()),
            Self::Sm3(h) => Digest::from_slice_unchecked(HashAlg::Sm3_256, &h.finalize()),
        }
    }
}

/// A digest of a known algorithm, stored inline (no allocation).
///
/// The length always equals `alg().digest_len()`: construction checks it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    alg: HashAlg,
    bytes: [u8; MAX_DIGEST],
}

impl Digest {
    /// A digest from bytes whose length must match the algorithm.
    pub fn new(alg: HashAlg, bytes: &[u8]) -> Result<Self, DigestLengthError> {
        if bytes.len() != alg.digest_len() {
            return Err(DigestLengthError {
                alg,
                len: bytes.len(),
            });
        }
        Ok(Self::from_slice_unchecked(alg, bytes))
    }

    /// Parse lowercase or uppercase hex of the right length.
    pub fn from_hex(alg: HashAlg, hex: &str) -> Result<Self, DigestLengthError> {
        let raw = hex.trim().trim_start_matches("0x").as_bytes();
        let mut out = [0u8; MAX_DIGEST];
        if raw.len() != alg.digest_len().saturating_mul(2) {
            return Err(DigestLengthError {
                alg,
                len: raw.len() / 2,
            });
        }
        for (dst, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (
                pair.first().and_then(|c| (*c as char).to_digit(16)),
                pair.get(1).and_then(|c| (*c as char).to_digit(16)),
            ) else {
                return Err(DigestLengthError {
                    alg,
                    len: raw.len() / 2,
                });
            };
            *dst = u8::try_from(hi.wrapping_shl(4) | lo).unwrap_or_default();
        }
        Ok(Self { alg, bytes: out })
    }

    /// Copy `bytes` (only the first `alg.digest_len()` are used; missing ones are zero).
    fn from_slice_unchecked(alg: HashAlg, bytes: &[u8]) -> Self {
        let mut out = [0u8; MAX_DIGEST];
        for (d, s) in out.iter_mut().zip(bytes.iter().take(alg.digest_len())) {
            *d = *s;
        }
        Self { alg, bytes: out }
    }

    /// The algorithm.
    #[must_use]
    pub const fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.alg.digest_len()).unwrap_or_default()
    }

    /// Lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        vouch_wire::hex_lower(self.as_bytes())
    }

    /// PCR extend: `self = H(self || measurement)`. The measurement must be of the same bank.
    pub fn extend(&mut self, measurement: &[u8]) {
        let next = self.alg.hash_parts(&[self.as_bytes(), measurement]);
        *self = next;
    }

    /// A PCR of `alg` that starts at locality `locality` (the last byte set), as TPM2_Startup
    /// with StartupLocality 3 or an H-CRTM sequence (4) leaves PCR 0.
    #[must_use]
    pub fn locality_start(alg: HashAlg, locality: u8) -> Self {
        let mut d = alg.zero();
        if let Some(last) = d.bytes.get_mut(alg.digest_len().saturating_sub(1)) {
            *last = locality;
        }
        d
    }
}

impl core::fmt::Debug for Digest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.alg.name(), self.to_hex())
    }
}

impl core::fmt::Display for Digest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// A digest whose length does not match its algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {alg} digest is {} bytes, got {len}", alg.digest_len())]
pub struct DigestLengthError {
    /// The algorithm.
    pub alg: HashAlg,
    /// The length supplied.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_matches_known_value() {
        assert_eq!(
            HashAlg::Sha256.hash(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn sm3_of_abc_matches_gbt_32905_vector() {
        assert_eq!(
            HashAlg::Sm3_256.hash(b"abc").to_hex(),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn locality_three_sets_last_byte() {
        let d = Digest::locality_start(HashAlg::Sha1, 3);
        assert_eq!(d.to_hex(), format!("{}03", "00".repeat(19)));
    }

    #[test]
    fn rejects_digest_of_wrong_length() {
        assert!(Digest::new(HashAlg::Sha256, &[0; 20]).is_err());
        assert!(Digest::from_hex(HashAlg::Sha1, "zz").is_err());
    }

    #[test]
    fn hex_round_trips() {
        let d = HashAlg::Sha384.hash(b"x");
        assert_eq!(Digest::from_hex(HashAlg::Sha384, &d.to_hex()).unwrap(), d);
    }
}
