//! `TPMS_ATTEST` (TPM 2.0 Part 2 §10.12.12): what a TPM signs in TPM2_Quote, TPM2_Certify and
//! TPM2_CertifyCreation.

use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::alg::MAX_DIGEST_U16;
use crate::pcr::PcrSelection;

/// TPM_GENERATED_VALUE: every TPM-produced attestation starts with it.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;

/// Largest TPM2B_NAME (hash algorithm id + SHA-512 digest).
const MAX_NAME: u16 = 2 + 64;
/// Largest TPM2B_DATA (extraData) a TPM accepts (sizeof(TPMT_HA)).
pub const MAX_EXTRA_DATA: u16 = 2 + 64;

/// TPMI_ST_ATTEST values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestType {
    /// TPM_ST_ATTEST_QUOTE (0x8018).
    Quote,
    /// TPM_ST_ATTEST_CERTIFY (0x8017).
    Certify,
    /// TPM_ST_ATTEST_CREATION (0x801A).
    Creation,
    /// Any other attestation type (time, audit, NV): decoded header, raw body.
    Other(u16),
}

impl AttestType {
    fn from_st(st: u16) -> Self {
        match st {
            0x8018 => Self::Quote,
            0x8017 => Self::Certify,
            0x801A => Self::Creation,
            other => Self::Other(other),
        }
    }

    /// The TPM_ST value.
    #[must_use]
    pub const fn st(self) -> u16 {
        match self {
            Self::Quote => 0x8018,
            Self::Certify => 0x8017,
            Self::Creation => 0x801A,
            Self::Other(v) => v,
        }
    }
}

/// TPMS_CLOCK_INFO: the TPM's clock and boot counters at signing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared (monotonic per TPM).
    pub clock: u64,
    /// TPM2_Startup(CLEAR) count since the last TPM2_Clear: a reboot increments it.
    pub reset_count: u32,
    /// TPM2_Startup(STATE) (resume from hibernate) count since the last reset.
    pub restart_count: u32,
    /// True when `clock` has not gone backwards since it was last saved.
    pub safe: bool,
}

/// The type-specific part of an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attested<'a> {
    /// TPMS_QUOTE_INFO.
    Quote {
        /// The PCRs quoted, in the order they were hashed.
        selection: PcrSelection,
        /// Digest of the selected PCR values, with the signing scheme's hash.
        pcr_digest: &'a [u8],
    },
    /// TPMS_CERTIFY_INFO.
    Certify {
        /// Name of the certified object.
        name: &'a [u8],
        /// Qualified name of the certified object.
        qualified_name: &'a [u8],
    },
    /// TPMS_CREATION_INFO.
    Creation {
        /// Name of the created object.
        object_name: &'a [u8],
        /// Digest of its creation data.
        creation_hash: &'a [u8],
    },
    /// Any other type: the undecoded body.
    Other(&'a [u8]),
}

/// A decoded `TPMS_ATTEST`, keeping the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest<'a> {
    raw: &'a [u8],
    /// TPMI_ST_ATTEST.
    pub attest_type: AttestType,
    /// Name of the signing key's hierarchy-qualified name.
    pub qualified_signer: &'a [u8],
    /// Caller-supplied qualifying data: the verifier's nonce.
    pub extra_data: &'a [u8],
    /// Clock and boot counters.
    pub clock_info: ClockInfo,
    /// Vendor-specific firmware version of the TPM.
    pub firmware_version: u64,
    /// Type-specific content.
    pub attested: Attested<'a>,
}

impl<'a> Attest<'a> {
    /// Decode a `TPMS_ATTEST` spanning all of `bytes` (the `-m` file of `tpm2_quote`).
    ///
    /// The magic value is checked here: a structure that does not start with
    /// TPM_GENERATED_VALUE was not produced by a TPM and is rejected.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let magic_at = r.offset();
        let magic = r.u32_be()?;
        if magic != TPM_GENERATED_VALUE {
            return Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "TPMS_ATTEST magic",
                    value: magic.into(),
                },
                magic_at,
            ));
        }
        let attest_type = AttestType::from_st(r.u16_be()?);
        let qualified_signer = r.tpm2b(MAX_NAME)?;
        let extra_data = r.tpm2b(MAX_EXTRA_DATA)?;
        let clock = r.u64_be()?;
        let reset_count = r.u32_be()?;
        let restart_count = r.u32_be()?;
        let safe_at = r.offset();
        let safe = match r.u8()? {
            0 => false,
            1 => true,
            v => {
                return Err(Reader::error_at(
                    DecodeErrorKind::BadValue {
                        what: "TPMI_YES_NO safe",
                        value: v.into(),
                    },
                    safe_at,
                ));
            }
        };
        let firmware_version = r.u64_be()?;
        let attested = match attest_type {
            AttestType::Quote => {
                let selection = PcrSelection::decode(&mut r)?;
                let pcr_digest = r.tpm2b(MAX_DIGEST_U16)?;
                Attested::Quote {
                    selection,
                    pcr_digest,
                }
            }
            AttestType::Certify => {
                let name = r.tpm2b(MAX_NAME)?;
                let qualified_name = r.tpm2b(MAX_NAME)?;
                Attested::Certify {
                    name,
                    qualified_name,
                }
            }
            AttestType::Creation => {
                let object_name = r.tpm2b(MAX_NAME)?;
                let creation_hash = r.tpm2b(MAX_DIGEST_U16)?;
                Attested::Creation {
                    object_name,
                    creation_hash,
                }
            }
            AttestType::Other(_) => Attested::Other(r.rest_bytes()),
        };
        r.finish()?;
        Ok(Self {
            raw: bytes,
            attest_type,
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            attested,
        })
    }

    /// Decode a `TPM2B_ATTEST` (u16 size prefix), returning the inner structure.
    pub fn decode_tpm2b(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let inner = r.tpm2b(u16::MAX)?;
        r.finish()?;
        let base = 2;
        Self::decode(inner).map_err(|e| DecodeError::new(e.kind, e.offset.saturating_add(base)))
    }

    /// The exact bytes decoded: what the signature covers.
    #[must_use]
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// testdata/quotes/gce-cos85-nonce9009.expected.json, sha1 bank quote.
    const GCE_ATTEST: &str = "ff54434780180022000bde01fe4b4ade2f8b7ae19b8a8897e0cb77ae417731d8ce38697ec4f6c095030a0002900900000001e9e66bb70000000a0000000001201605110016280000000001000403ffffff0020fda327d4ba5d5978fe3a23db1a47964050e872639ef5d6a99c123cca39e56d8b";

    #[test]
    fn decodes_gce_quote_fields() {
        let bytes = hex::decode(GCE_ATTEST).unwrap();
        let a = Attest::decode(&bytes).unwrap();
        assert_eq!(a.attest_type, AttestType::Quote);
        assert_eq!(a.extra_data, &[0x90, 0x09]);
        assert_eq!(
            a.clock_info,
            ClockInfo {
                clock: 8_219_159_479,
                reset_count: 10,
                restart_count: 0,
                safe: true
            }
        );
        assert_eq!(a.firmware_version, 0x2016_0511_0016_2800);
        let Attested::Quote {
            selection,
            pcr_digest,
        } = &a.attested
        else {
            panic!()
        };
        assert_eq!(selection.count(), 24);
        assert_eq!(pcr_digest.len(), 32);
    }

    #[test]
    fn rejects_wrong_magic() {
        let mut bytes = hex::decode(GCE_ATTEST).unwrap();
        bytes[0] ^= 1;
        let err = Attest::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::BadValue {
                what: "TPMS_ATTEST magic",
                ..
            }
        ));
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = hex::decode(GCE_ATTEST).unwrap();
        for n in 0..bytes.len() {
            assert!(Attest::decode(&bytes[..n]).is_err(), "accepted {n} bytes");
        }
    }
}
