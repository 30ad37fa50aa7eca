//! Typed views of template fields: file digests, event names, IMA signatures, buffers.

use vouch_tpm2::HashAlg;
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::list::Entry;
use crate::template::FieldId;

/// A file hash algorithm as IMA names it (`hash_algo_name[]` in `crypto/hash_info.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileHashAlg {
    /// md5 (16 bytes).
    Md5,
    /// sha1.
    Sha1,
    /// sha224.
    Sha224,
    /// sha256.
    Sha256,
    /// sha384.
    Sha384,
    /// sha512.
    Sha512,
    /// sm3 (SM3-256).
    Sm3,
}

impl FileHashAlg {
    /// From IMA's name (`sha256`, `sm3`, ...).
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"md5" => Some(Self::Md5),
            b"sha1" => Some(Self::Sha1),
            b"sha224" => Some(Self::Sha224),
            b"sha256" => Some(Self::Sha256),
            b"sha384" => Some(Self::Sha384),
            b"sha512" => Some(Self::Sha512),
            b"sm3" | b"sm3-256" | b"sm3_256" => Some(Self::Sm3),
            _ => None,
        }
    }

    /// From the kernel's `enum hash_algo` (the digsig header's `hash_algo`).
    #[must_use]
    pub const fn from_kernel_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Md5),
            2 => Some(Self::Sha1),
            4 => Some(Self::Sha256),
            5 => Some(Self::Sha384),
            6 => Some(Self::Sha512),
            7 => Some(Self::Sha224),
            18 => Some(Self::Sm3),
            _ => None,
        }
    }

    /// The name IMA prints.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Sm3 => "sm3",
        }
    }

    /// Digest length in bytes.
    #[must_use]
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 | Self::Sm3 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The SHA-family algorithm of a bare digest of `len` bytes (policies may list bare hex).
    #[must_use]
    pub const fn from_len(len: usize) -> Option<Self> {
        match len {
            20 => Some(Self::Sha1),
            32 => Some(Self::Sha256),
            48 => Some(Self::Sha384),
            64 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The TPM bank algorithm with the same hash, if any.
    #[must_use]
    pub const fn tpm_alg(self) -> Option<HashAlg> {
        match self {
            Self::Sha1 => Some(HashAlg::Sha1),
            Self::Sha256 => Some(HashAlg::Sha256),
            Self::Sha384 => Some(HashAlg::Sha384),
            Self::Sha512 => Some(HashAlg::Sha512),
            Self::Sm3 => Some(HashAlg::Sm3_256),
            Self::Md5 | Self::Sha224 => None,
        }
    }
}

/// A file (or buffer) digest from a `d`, `d-ng`, `d-ngv2` or `d-modsig` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileDigest<'a> {
    /// The algorithm name as listed (`sha256`).
    pub algo_name: &'a [u8],
    /// The algorithm, when this crate knows it.
    pub algo: Option<FileHashAlg>,
    /// `d-ngv2` only: the digest type (`ima` or `verity`).
    pub digest_type: Option<&'a [u8]>,
    /// The digest bytes.
    pub bytes: &'a [u8],
}

impl<'a> FileDigest<'a> {
    /// Decode a field of id `id` (`d`, `d-ng`, `d-ngv2`, `d-modsig`); `None` for an empty one.
    pub fn decode(id: FieldId, data: &'a [u8]) -> Result<Option<Self>, DecodeError> {
        if data.is_empty() {
            return Ok(None);
        }
        if id == FieldId::D {
            return Ok(Some(Self {
                algo_name: FileHashAlg::Sha1.name().as_bytes(),
                algo: FileHashAlg::from_len(data.len()).or(Some(FileHashAlg::Sha1)),
                digest_type: None,
                bytes: data,
            }));
        }
        // "<algo>:\0<digest>" or, for d-ngv2, "<type>:<algo>:\0<digest>".
        let Some(nul) = data.iter().position(|b| *b == 0) else {
            return Err(DecodeError::new(
                DecodeErrorKind::Invalid("digest field has no \"algo:\\0\" prefix"),
                0,
            ));
        };
        let mut r = Reader::new(data);
        let prefix = r.bytes(nul)?;
        r.skip(1)?;
        let bytes = r.rest_bytes();
        let Some(prefix) = prefix.strip_suffix(b":") else {
            return Err(DecodeError::new(
                DecodeErrorKind::Invalid("digest prefix does not end with ':'"),
                nul,
            ));
        };
        let (digest_type, algo_name) = if id == FieldId::DNgV2 {
            match prefix.iter().position(|b| *b == b':') {
                Some(i) => {
                    let mut p = Reader::new(prefix);
                    let t = p.bytes(i)?;
                    p.skip(1)?;
                    (Some(t), p.rest_bytes())
                }
                None => (None, prefix),
            }
        } else {
            (None, prefix)
        };
        let algo = FileHashAlg::from_name(algo_name);
        if let Some(a) = algo
            && a.digest_len() != bytes.len()
        {
            return Err(DecodeError::new(
                DecodeErrorKind::BadValue {
                    what: "file digest length for its algorithm",
                    value: bytes.len() as u64,
                },
                nul.saturating_add(1),
            ));
        }
        Ok(Some(Self {
            algo_name,
            algo,
            digest_type,
            bytes,
        }))
    }

    /// `sha256:<hex>` (or `<type>:<algo>:<hex>` for `d-ngv2`).
    #[must_use]
    pub fn to_prefixed_hex(&self) -> String {
        let mut s = String::new();
        if let Some(t) = self.digest_type {
            s.push_str(&String::from_utf8_lossy(t));
            s.push(':');
        }
        s.push_str(&String::from_utf8_lossy(self.algo_name));
        s.push(':');
        s.push_str(&vouch_wire::hex_lower(self.bytes));
        s
    }
}

/// `EVM_IMA_XATTR_DIGSIG`: the `security.ima` type byte of a digsig signature.
pub const EVM_IMA_XATTR_DIGSIG: u8 = 3;
/// `IMA_VERITY_DIGSIG`: a v3 signature over an fs-verity digest.
pub const IMA_VERITY_DIGSIG: u8 = 6;

/// An IMA digital signature (`struct signature_v2_hdr`, `security/integrity/integrity.h`):
/// type, version, hash algorithm, 4-byte key id, big-endian size, signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImaSignature<'a> {
    /// xattr type: 3 (digsig) or 6 (verity digsig).
    pub xattr_type: u8,
    /// Format version: 2 (signs the file digest) or 3 (signs `struct ima_file_id`).
    pub version: u8,
    /// The kernel `enum hash_algo` value.
    pub hash_algo: u8,
    /// Key id: the last 4 bytes of the signing key's SHA-1 key identifier.
    pub key_id: [u8; 4],
    /// The signature (PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for ECDSA).
    pub signature: &'a [u8],
}

impl<'a> ImaSignature<'a> {
    /// Decode a `sig` field.
    pub fn decode(data: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let xattr_type = r.u8()?;
        if xattr_type != EVM_IMA_XATTR_DIGSIG && xattr_type != IMA_VERITY_DIGSIG {
            return Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "IMA signature xattr type",
                    value: xattr_type.into(),
                },
                0,
            ));
        }
        let version = r.u8()?;
        if version != 2 && version != 3 {
            return Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "IMA signature version",
                    value: version.into(),
                },
                1,
            ));
        }
        let hash_algo = r.u8()?;
        let key_id = r.take::<4>()?;
        let size = r.u16_be()?;
        let signature = r.bytes(usize::from(size))?;
        r.finish()?;
        Ok(Self {
            xattr_type,
            version,
            hash_algo,
            key_id,
            signature,
        })
    }

    /// The file hash algorithm the signature is over.
    #[must_use]
    pub const fn file_hash_alg(&self) -> Option<FileHashAlg> {
        FileHashAlg::from_kernel_id(self.hash_algo)
    }

    /// The key id as the kernel prints it (8 lowercase hex digits).
    #[must_use]
    pub fn key_id_hex(&self) -> String {
        vouch_wire::hex_lower(&self.key_id)
    }
}

/// The typed content of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TemplateData<'a> {
    /// The file (or buffer) digest: `d`, `d-ng` or `d-ngv2`.
    pub digest: Option<FileDigest<'a>>,
    /// The event name: a path, `boot_aggregate`, or an ima-buf name such as `kexec-cmdline`.
    pub name: Option<&'a [u8]>,
    /// The `sig` field, when not empty (raw; decode with [`ImaSignature::decode`]).
    pub sig: Option<&'a [u8]>,
    /// The `buf` field (ima-buf).
    pub buf: Option<&'a [u8]>,
    /// `d-modsig`: the digest of the file without its appended signature.
    pub modsig_digest: Option<FileDigest<'a>>,
    /// `modsig`: the appended PKCS#7 signature.
    pub modsig: Option<&'a [u8]>,
    /// `evmsig`: the EVM portable signature.
    pub evmsig: Option<&'a [u8]>,
}

impl<'a> TemplateData<'a> {
    /// Decode the fields of `entry`. Digest fields that do not decode are an error; fields of
    /// unknown id are skipped here (they stay available through [`Entry::fields`]).
    pub fn decode(entry: &Entry<'a>) -> Result<Self, DecodeError> {
        let mut out = Self::default();
        for f in entry.fields() {
            match f.id {
                FieldId::D | FieldId::DNg | FieldId::DNgV2 if out.digest.is_none() => {
                    out.digest = FileDigest::decode(f.id, f.data)?;
                }
                FieldId::N | FieldId::NNg if out.name.is_none() => {
                    out.name = Some(f.data.strip_suffix(b"\0").unwrap_or(f.data));
                }
                FieldId::Sig => out.sig = non_empty(f.data),
                FieldId::Buf => out.buf = Some(f.data),
                FieldId::DModsig => out.modsig_digest = FileDigest::decode(f.id, f.data)?,
                FieldId::Modsig => out.modsig = non_empty(f.data),
                FieldId::Evmsig => out.evmsig = non_empty(f.data),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The decoded IMA signature, if the entry carries one.
    #[must_use]
    pub fn signature(&self) -> Option<Result<ImaSignature<'a>, DecodeError>> {
        self.sig.map(ImaSignature::decode)
    }
}

fn non_empty(d: &[u8]) -> Option<&[u8]> {
    (!d.is_empty()).then_some(d)
}
