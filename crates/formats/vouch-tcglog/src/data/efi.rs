//! UEFI variable events (`UEFI_VARIABLE_DATA`), signature lists and load options.

use core::fmt;

use serde::Serialize;
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use super::devpath::DevicePath;
use super::guid::{self, Guid};
use super::text::{Ucs2, ascii_text};

/// A `UEFI_VARIABLE_DATA`: which variable was measured, and its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EfiVariable<'a> {
    /// `VariableName` (the vendor GUID).
    pub guid: Guid,
    /// `UnicodeName`.
    pub name: Ucs2<'a>,
    /// `VariableData`, raw.
    #[serde(skip)]
    pub data: &'a [u8],
    /// The contents, decoded by name.
    pub contents: VariableContents<'a>,
}

/// Variable contents, decoded by the variable's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VariableContents<'a> {
    /// A one-byte flag (SecureBoot, SetupMode, MokSBState...); `None` when the variable was
    /// measured empty (absent).
    Flag {
        /// The byte.
        value: Option<u8>,
    },
    /// An `EFI_SIGNATURE_LIST` sequence (PK, KEK, db, dbx, MokList...).
    SignatureDb(SignatureDb<'a>),
    /// One `EFI_SIGNATURE_DATA` (EV_EFI_VARIABLE_AUTHORITY): the entry that authorised an image.
    SignatureData(SignatureEntry<'a>),
    /// A bare DER certificate (shim's authority events).
    Certificate {
        /// The DER.
        #[serde(skip)]
        der: &'a [u8],
    },
    /// `BootOrder`: the boot option numbers.
    BootOrder(U16List<'a>),
    /// `Boot####`: an `EFI_LOAD_OPTION`.
    LoadOption(LoadOption<'a>),
    /// Text (SbatLevel).
    Text {
        /// The text.
        text: &'a str,
    },
    /// Not decoded (unknown variable, or contents that do not decode: see the note).
    Raw {
        /// Why it was not decoded, if it failed.
        #[serde(skip)]
        note: Option<DecodeError>,
    },
}

/// Little-endian u16 values, borrowed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct U16List<'a>(&'a [u8]);

impl U16List<'_> {
    /// The values.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.chunks_exact(2).map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
    }
}

impl fmt::Debug for U16List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for U16List<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'a> EfiVariable<'a> {
    /// Decode a `UEFI_VARIABLE_DATA` from the event data reader; `authority` selects the
    /// EV_EFI_VARIABLE_AUTHORITY reading of the data.
    pub fn decode(r: &mut Reader<'a>, authority: bool) -> Result<Self, DecodeError> {
        let guid = Guid::from_bytes(r.take()?);
        let name_at = r.offset();
        let name_units = r.u64_le()?;
        let data_at = r.offset();
        let data_len = r.u64_le()?;
        let too_long = |len: u64, at| {
            DecodeError::new(
                DecodeErrorKind::TooLong {
                    length: len,
                    limit: r.remaining() as u64,
                },
                at,
            )
        };
        let name_bytes = usize::try_from(name_units)
            .ok()
            .and_then(|n| n.checked_mul(2))
            .ok_or_else(|| too_long(name_units, name_at))?;
        let data_bytes = usize::try_from(data_len).map_err(|_| too_long(data_len, data_at))?;
        let name_off = r.offset();
        let name = Ucs2::new(r.bytes(name_bytes)?, name_off)?;
        let data_off = r.offset();
        let data = r.bytes(data_bytes)?;
        // Bytes after VariableData are ignored: some firmware (GCE, EDK2 builds of 2018-2020)
        // sizes authority events 6 bytes larger than the structure.
        let contents = VariableContents::decode(&guid, &name, data, data_off, authority);
        Ok(Self {
            guid,
            name,
            data,
            contents,
        })
    }

    /// The variable's name as a `String`.
    #[must_use]
    pub fn name_string(&self) -> String {
        self.name.to_string()
    }
}

pub(crate) fn is_boot_option(name: &Ucs2<'_>) -> bool {
    let mut len = 0usize;
    for (i, u) in name.units().enumerate() {
        let ok = match b"Boot".get(i) {
            Some(b) => u == u16::from(*b),
            None => char::from_u32(u.into()).is_some_and(|c| c.is_ascii_hexdigit()),
        };
        if !ok {
            return false;
        }
        len = i.saturating_add(1);
    }
    len == 8
}

impl<'a> VariableContents<'a> {
    fn decode(guid: &Guid, name: &Ucs2<'a>, data: &'a [u8], at: usize, authority: bool) -> Self {
        let raw = |e: DecodeError| Self::Raw { note: Some(e) };
        let flag = [
            "SecureBoot",
            "SetupMode",
            "AuditMode",
            "DeployedMode",
            "MokSBState",
            "MokListTrusted",
        ]
        .iter()
        .any(|n| name.eq_str(n));
        if flag {
            return match data {
                [] => Self::Flag { value: None },
                [b] => Self::Flag { value: Some(*b) },
                _ => raw(DecodeError::new(
                    DecodeErrorKind::Invalid("flag variable longer than one byte"),
                    at,
                )),
            };
        }
        if authority {
            if name.eq_str("SbatLevel") {
                return ascii_text(data)
                    .map_or(Self::Raw { note: None }, |text| Self::Text { text });
            }
            if data.first() == Some(&0x30) && super::der::element_len(data) == Some(data.len()) {
                return Self::Certificate { der: data };
            }
            return match SignatureEntry::decode(data, at, None) {
                Ok(e) => Self::SignatureData(e),
                Err(e) => raw(e),
            };
        }
        let sigdb = (*guid == guid::EFI_GLOBAL_VARIABLE
            && (name.eq_str("PK") || name.eq_str("KEK")))
            || (*guid == guid::EFI_IMAGE_SECURITY_DATABASE
                && ["db", "dbx", "dbt", "dbr"].iter().any(|n| name.eq_str(n)))
            || ["MokList", "MokListX", "MokListRT", "MokListXRT"]
                .iter()
                .any(|n| name.eq_str(n));
        if sigdb {
            return match SignatureDb::decode(data, at) {
                Ok(db) => Self::SignatureDb(db),
                Err(e) => raw(e),
            };
        }
        if *guid == guid::EFI_GLOBAL_VARIABLE && name.eq_str("BootOrder") {
            return if data.len().is_multiple_of(2) {
                Self::BootOrder(U16List(data))
            } else {
                raw(DecodeError::new(
                    DecodeErrorKind::Invalid("odd-length BootOrder"),
                    at,
                ))
            };
        }
        if *guid == guid::EFI_GLOBAL_VARIABLE && is_boot_option(name) {
            return match LoadOption::decode(&mut Reader::with_base(data, at)) {
                Ok(o) => Self::LoadOption(o),
                Err(e) => raw(e),
            };
        }
        if name.eq_str("SbatLevel") {
            return ascii_text(data).map_or(Self::Raw { note: None }, |text| Self::Text { text });
        }
        Self::Raw { note: None }
    }
}

/// An `EFI_LOAD_OPTION` (`Boot####`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoadOption<'a> {
    /// `Attributes` (bit 0: active).
    pub attributes: u32,
    /// `Description`.
    pub description: Ucs2<'a>,
    /// `FilePathList`, if it is a well-formed device path.
    pub device_path: Option<DevicePath<'a>>,
    /// `OptionalData`.
    #[serde(skip)]
    pub optional_data: &'a [u8],
}

impl<'a> LoadOption<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let attributes = r.u32_le()?;
        let fp_len = r.u16_le()?;
        let description = Ucs2::read_terminated(r)?;
        let fp_at = r.offset();
        let fp = r.bytes(usize::from(fp_len))?;
        let device_path = DevicePath::parse(fp, fp_at).ok();
        Ok(Self {
            attributes,
            description,
            device_path,
            optional_data: r.rest_bytes(),
        })
    }
}

/// What one signature-list entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// An X.509 certificate (DER).
    X509,
    /// A SHA-1 hash of an image.
    Sha1,
    /// A SHA-224 hash.
    Sha224,
    /// A SHA-256 hash of an image.
    Sha256,
    /// A SHA-384 hash.
    Sha384,
    /// A SHA-512 hash.
    Sha512,
    /// An RSA-2048 public key.
    Rsa2048,
    /// A SHA-256 hash of a certificate's TBS (revocation).
    X509Sha256,
    /// A SHA-384 hash of a certificate's TBS.
    X509Sha384,
    /// A SHA-512 hash of a certificate's TBS.
    X509Sha512,
    /// Any other signature type.
    Other(Guid),
}

impl SignatureKind {
    fn of(g: Guid) -> Self {
        match g {
            guid::EFI_CERT_X509 => Self::X509,
            guid::EFI_CERT_SHA1 => Self::Sha1,
            guid::EFI_CERT_SHA224 => Self::Sha224,
            guid::EFI_CERT_SHA256 => Self::Sha256,
            guid::EFI_CERT_SHA384 => Self::Sha384,
            guid::EFI_CERT_SHA512 => Self::Sha512,
            guid::EFI_CERT_RSA2048 => Self::Rsa2048,
            guid::EFI_CERT_X509_SHA256 => Self::X509Sha256,
            guid::EFI_CERT_X509_SHA384 => Self::X509Sha384,
            guid::EFI_CERT_X509_SHA512 => Self::X509Sha512,
            other => Self::Other(other),
        }
    }

    /// A short name: x509, sha256, ...
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::X509 => "x509",
            Self::Sha1 => "sha1",
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Rsa2048 => "rsa2048",
            Self::X509Sha256 => "x509_sha256",
            Self::X509Sha384 => "x509_sha384",
            Self::X509Sha512 => "x509_sha512",
            Self::Other(_) => "other",
        }
    }
}

/// One `EFI_SIGNATURE_DATA`: owner and the signature (DER certificate or hash), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignatureEntry<'a> {
    /// What the data is.
    pub kind: SignatureKind,
    /// `SignatureOwner`.
    pub owner: Guid,
    /// `SignatureData` (DER for X.509, the hash for hashes).
    #[serde(skip)]
    pub data: &'a [u8],
}

impl<'a> SignatureEntry<'a> {
    fn decode(
        bytes: &'a [u8],
        at: usize,
        kind: Option<SignatureKind>,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::with_base(bytes, at);
        let owner = Guid::from_bytes(r.take()?);
        let data = r.rest_bytes();
        let kind = kind.unwrap_or(if data.first() == Some(&0x30) {
            SignatureKind::X509
        } else {
            SignatureKind::Other(Guid::from_bytes([0; 16]))
        });
        Ok(Self { kind, owner, data })
    }

    /// The certificate's subject CN (or O), for X.509 entries.
    #[must_use]
    pub fn subject(&self) -> Option<String> {
        (self.kind == SignatureKind::X509)
            .then(|| super::der::subject_name(self.data))
            .flatten()
    }
}

/// A validated sequence of `EFI_SIGNATURE_LIST`s. Iterating cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignatureDb<'a> {
    #[serde(skip)]
    bytes: &'a [u8],
    #[serde(skip)]
    base: usize,
    /// Number of entries.
    pub entries: usize,
    /// Number of X.509 certificates.
    pub certificates: usize,
}

/// The lists, each as (type, entries reader, signature size).
fn lists<'a>(
    bytes: &'a [u8],
    base: usize,
) -> impl Iterator<Item = Result<(SignatureKind, Reader<'a>, usize), DecodeError>> + 'a {
    let mut r = Reader::with_base(bytes, base);
    let mut failed = false;
    core::iter::from_fn(move || {
        if r.is_empty() || failed {
            return None;
        }
        let item = (|| {
            let at = r.offset();
            let kind = SignatureKind::of(Guid::from_bytes(r.take()?));
            let list_size = r.u32_le()?;
            let header_size = r.u32_le()?;
            let sig_size = r.u32_le()?;
            let bad = |what| DecodeError::new(DecodeErrorKind::Invalid(what), at);
            let body = usize::try_from(list_size)
                .ok()
                .and_then(|l| l.checked_sub(28))
                .ok_or_else(|| bad("signature list smaller than its header"))?;
            let mut list = r.sub(body)?;
            list.skip(
                usize::try_from(header_size).map_err(|_| bad("signature header too large"))?,
            )?;
            let sig = usize::try_from(sig_size)
                .ok()
                .filter(|s| *s >= 16)
                .ok_or_else(|| bad("signature size below 16"))?;
            if !list.remaining().is_multiple_of(sig) {
                return Err(bad("signature list is not a whole number of signatures"));
            }
            Ok((kind, list, sig))
        })();
        failed = item.is_err();
        Some(item)
    })
}

impl<'a> SignatureDb<'a> {
    /// Validate `bytes` as signature lists.
    pub fn decode(bytes: &'a [u8], base: usize) -> Result<Self, DecodeError> {
        let mut entries = 0usize;
        let mut certificates = 0usize;
        for l in lists(bytes, base) {
            let (kind, list, sig) = l?;
            let n = list.remaining().checked_div(sig).unwrap_or(0);
            entries = entries.saturating_add(n);
            if kind == SignatureKind::X509 {
                certificates = certificates.saturating_add(n);
            }
        }
        Ok(Self {
            bytes,
            base,
            entries,
            certificates,
        })
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = SignatureEntry<'a>> + 'a {
        lists(self.bytes, self.base)
            .map_while(Result::ok)
            .flat_map(|(kind, mut list, sig)| {
                core::iter::from_fn(move || {
                    let at = list.offset();
                    let b = list.bytes(sig).ok()?;
                    SignatureEntry::decode(b, at, Some(kind)).ok()
                })
            })
    }
}
