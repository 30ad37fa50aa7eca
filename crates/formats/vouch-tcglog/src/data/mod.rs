//! Typed event data, decoded on demand from an event's type and bytes.
//!
//! [`EventData::decode`] never fails: an unknown type is [`EventData::Raw`], a payload that
//! does not match its type's structure is [`EventData::Undecodable`] with the reason. Nothing
//! is allocated; every string, certificate and device path borrows from the log.

use core::fmt;

use serde::Serialize;
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::event_type::EventType;
use crate::log::{Event, SpecIdEvent};

pub mod der;
pub mod devpath;
pub mod efi;
pub mod guid;
pub mod text;

pub use devpath::DevicePath;
pub use efi::{
    EfiVariable, LoadOption, SignatureDb, SignatureEntry, SignatureKind, VariableContents,
};
pub use guid::Guid;
pub use text::{FirmwareText, Ucs2};

use text::{ascii_text, utf16_text};

/// The decoded payload of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum EventData<'a> {
    /// `EV_NO_ACTION` "Spec ID Event03" (the crypto-agile header).
    #[serde(skip)]
    SpecId(SpecIdEvent<'a>),
    /// `EV_NO_ACTION` "StartupLocality": the locality TPM2_Startup ran at.
    StartupLocality(u8),
    /// `EV_NO_ACTION` "SP800-155 Event3": platform and reference-manifest identity.
    Sp800155Event3(Sp800155Event3<'a>),
    /// Another `EV_NO_ACTION` (NvIndexInstance, a Windows trailer, ...).
    NoAction {
        /// The leading NUL-terminated ASCII signature, if there is one.
        signature: Option<&'a str>,
    },
    /// `EV_SEPARATOR`.
    Separator(Separator),
    /// `EV_ACTION` / `EV_EFI_ACTION`: ASCII text.
    Action(&'a str),
    /// `EV_EFI_HCRTM_EVENT`: H-CRTM (the text is normally "HCRTM").
    Hcrtm(&'a str),
    /// `EV_S_CRTM_VERSION`: firmware version string (or GUID).
    SCrtmVersion(CrtmVersion<'a>),
    /// A firmware region: `EV_EFI_PLATFORM_FIRMWARE_BLOB(2)`, or `EV_POST_CODE` /
    /// `EV_S_CRTM_CONTENTS` in blob form.
    FirmwareBlob(FirmwareBlob<'a>),
    /// `EV_POST_CODE(2)` / `EV_S_CRTM_CONTENTS` as text ("ACPI DATA", "Embedded UEFI Driver").
    PostCode(&'a str),
    /// `EV_EFI_VARIABLE_*` and `EV_EFI_SPDM_DEVICE_POLICY/AUTHORITY`.
    Variable(EfiVariable<'a>),
    /// `EV_EFI_BOOT_SERVICES_APPLICATION/DRIVER`, `EV_EFI_RUNTIME_SERVICES_DRIVER`.
    ImageLoad(ImageLoad<'a>),
    /// `EV_EFI_GPT_EVENT`.
    Gpt(GptEvent<'a>),
    /// `EV_EFI_HANDOFF_TABLES(2)`.
    HandoffTables(HandoffTables<'a>),
    /// `EV_IPL`: boot loader measurements.
    Ipl(Ipl<'a>),
    /// `EV_EVENT_TAG`: a `TCG_PCClientTaggedEvent`.
    EventTag(TaggedEvent<'a>),
    /// `EV_COMPACT_HASH`.
    CompactHash(#[serde(skip)] &'a [u8]),
    /// `EV_EFI_SPDM_FIRMWARE_BLOB/CONFIG`: `TCG_DEVICE_SECURITY_EVENT_DATA` header.
    SpdmDevice(SpdmDevice<'a>),
    /// A type with no structure to decode (or an unknown type): the bytes as logged.
    Raw(#[serde(skip)] &'a [u8]),
    /// The payload does not have its type's structure. Not a log error: the bytes are kept.
    Undecodable {
        /// The bytes as logged.
        #[serde(skip)]
        data: &'a [u8],
        /// Why (absolute offset in the log).
        #[serde(serialize_with = "ser_display")]
        error: DecodeError,
    },
}

fn ser_display<S: serde::Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `EV_SEPARATOR` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Separator {
    /// `00000000`: the normal pre-OS / OS boundary.
    Normal,
    /// `00000001` or `FFFFFFFF`: the platform hit an error (PFP §10.4.4).
    Error(u32),
    /// Any other value.
    Other(u32),
}

impl Separator {
    /// True for an error separator.
    #[must_use]
    pub const fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }
}

/// An S-CRTM version: a string (UTF-16 or ASCII), or a GUID (PFP §10.4.4, EDK2 platforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CrtmVersion<'a> {
    /// A version string.
    Text(FirmwareText<'a>),
    /// A GUID naming the firmware build.
    Guid(Guid),
}

impl fmt::Display for CrtmVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => t.fmt(f),
            Self::Guid(g) => write!(f, "GUID {g}"),
        }
    }
}

fn decode_crtm_version(data: &[u8], at: usize) -> Result<CrtmVersion<'_>, DecodeError> {
    if let Ok(t) = FirmwareText::decode(data, at) {
        return Ok(CrtmVersion::Text(t));
    }
    if let Ok(b) = <[u8; 16]>::try_from(data) {
        return Ok(CrtmVersion::Guid(Guid::from_bytes(b)));
    }
    // A NUL-terminated ASCII version followed by vendor data.
    let prefix = data
        .iter()
        .position(|b| *b == 0)
        .and_then(|n| data.get(..n))
        .unwrap_or_default();
    match ascii_text(prefix) {
        Some(s) if !s.is_empty() => Ok(CrtmVersion::Text(FirmwareText::Ascii(s))),
        _ => Err(invalid("S-CRTM version is neither text nor a GUID", at)),
    }
}

/// `UEFI_PLATFORM_FIRMWARE_BLOB(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FirmwareBlob<'a> {
    /// `BlobDescription` (BLOB2 only).
    pub description: Option<&'a str>,
    /// `BlobBase`.
    pub base: u64,
    /// `BlobLength`.
    pub length: u64,
}

/// `UEFI_IMAGE_LOAD_EVENT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImageLoad<'a> {
    /// `ImageLocationInMemory`.
    pub location: u64,
    /// `ImageLengthInMemory`.
    pub length: u64,
    /// `ImageLinkTimeAddress`.
    pub link_time_address: u64,
    /// `DevicePath`, when present and well-formed.
    pub device_path: Option<DevicePath<'a>>,
    /// The device path bytes as logged.
    #[serde(skip)]
    pub device_path_bytes: &'a [u8],
}

/// `UEFI_GPT_DATA`: the GPT header's disk GUID and the partition entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GptEvent<'a> {
    /// `DiskGUID`.
    pub disk_guid: Guid,
    /// Number of partition entries.
    pub partitions: usize,
    #[serde(skip)]
    entries: &'a [u8],
    #[serde(skip)]
    entry_size: usize,
    #[serde(skip)]
    base: usize,
}

/// One GPT partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GptPartition<'a> {
    /// `PartitionTypeGUID`.
    pub type_guid: Guid,
    /// `UniquePartitionGUID`.
    pub unique_guid: Guid,
    /// `StartingLBA`.
    pub start_lba: u64,
    /// `EndingLBA`.
    pub end_lba: u64,
    /// `Attributes`.
    pub attributes: u64,
    /// `PartitionName`.
    pub name: Ucs2<'a>,
}

impl<'a> GptEvent<'a> {
    /// The partition entries.
    pub fn iter(&self) -> impl Iterator<Item = GptPartition<'a>> + 'a {
        let mut r = Reader::with_base(self.entries, self.base);
        let size = self.entry_size;
        core::iter::from_fn(move || {
            let mut e = r.sub(size).ok()?;
            let type_guid = Guid::from_bytes(e.take().ok()?);
            let unique_guid = Guid::from_bytes(e.take().ok()?);
            let start_lba = e.u64_le().ok()?;
            let end_lba = e.u64_le().ok()?;
            let attributes = e.u64_le().ok()?;
            let at = e.offset();
            let name = Ucs2::new(e.bytes(72).ok()?, at).ok()?;
            Some(GptPartition {
                type_guid,
                unique_guid,
                start_lba,
                end_lba,
                attributes,
                name,
            })
        })
    }
}

/// `UEFI_HANDOFF_TABLE_POINTERS(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HandoffTables<'a> {
    /// `TableDescription` (HANDOFF_TABLES2 only).
    pub description: Option<&'a str>,
    /// Number of tables.
    pub count: usize,
    #[serde(skip)]
    tables: &'a [u8],
    #[serde(skip)]
    pointer_size: usize,
}

impl<'a> HandoffTables<'a> {
    /// (vendor GUID, table address) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (Guid, u64)> + 'a {
        let mut r = Reader::new(self.tables);
        let wide = self.pointer_size == 8;
        core::iter::from_fn(move || {
            let g = Guid::from_bytes(r.take().ok()?);
            let p = if wide {
                r.u64_le().ok()?
            } else {
                u64::from(r.u32_le().ok()?)
            };
            Some((g, p))
        })
    }
}

/// `EV_IPL` contents, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum Ipl<'a> {
    /// GRUB "grub_cmd: ..." (a command GRUB ran).
    GrubCommand(&'a str),
    /// GRUB "kernel_cmdline: ..." (the kernel command line).
    KernelCmdline(&'a str),
    /// GRUB "module_cmdline: ...".
    ModuleCmdline(&'a str),
    /// Other ASCII text (file names GRUB read, shim's "MokList"...).
    Text(&'a str),
    /// UTF-16 text (systemd-boot / systemd-stub: kernel command line, UKI sections).
    Utf16(Ucs2<'a>),
    /// Not text.
    Binary(#[serde(skip)] &'a [u8]),
}

/// `TCG_PCClientTaggedEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaggedEvent<'a> {
    /// `taggedEventID` (Linux: 0x8F3B22EC initrd, 0x8F3B22ED LoadOptions).
    pub id: u32,
    /// `taggedEventData`.
    #[serde(skip)]
    pub data: &'a [u8],
}

/// `SP800-155 Event3` platform identity (the leading fields; the locators are not decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sp800155Event3<'a> {
    /// `PlatformManufacturerId` (IANA PEN).
    pub platform_manufacturer_id: u32,
    /// `ReferenceManifestGuid`.
    pub reference_manifest_guid: Guid,
    /// `PlatformManufacturerStr`.
    pub platform_manufacturer: &'a str,
    /// `PlatformModel`.
    pub platform_model: &'a str,
    /// `PlatformVersion`.
    pub platform_version: &'a str,
    /// `FirmwareManufacturerStr`.
    pub firmware_manufacturer: &'a str,
    /// `FirmwareManufacturerId`.
    pub firmware_manufacturer_id: u32,
    /// `FirmwareVersion`.
    pub firmware_version: &'a str,
}

/// `TCG_DEVICE_SECURITY_EVENT_DATA` header of SPDM events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpdmDevice<'a> {
    /// `Signature` ("SPDM Device Sec" or "SPDM Device Sec2").
    pub signature: &'a str,
    /// `Version`.
    pub version: u16,
}

fn invalid(what: &'static str, at: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Invalid(what), at)
}

fn text_at(bytes: &[u8], at: usize) -> Result<&str, DecodeError> {
    ascii_text(bytes).ok_or_else(|| invalid("not ASCII text", at))
}

fn sized_str<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let n = usize::from(r.u8()?);
    let at = r.offset();
    let b = r.bytes(n)?;
    core::str::from_utf8(b)
        .map(|s| s.trim_end_matches('\0'))
        .map_err(|_| invalid("not UTF-8 text", at))
}

fn blob<'a>(
    r: &mut Reader<'a>,
    description: Option<&'a str>,
) -> Result<FirmwareBlob<'a>, DecodeError> {
    let base = r.u64_le()?;
    let length = r.u64_le()?;
    r.clone().finish()?;
    Ok(FirmwareBlob {
        description,
        base,
        length,
    })
}

fn decode_no_action<'a>(r: &mut Reader<'a>, data: &'a [u8]) -> Result<EventData<'a>, DecodeError> {
    if data.starts_with(b"Spec ID Event03\0") {
        // Vendor info outside the event (see SpecIdEvent::decode) cannot be seen from here.
        let after = Reader::new(&[]);
        return Ok(SpecIdEvent::decode(r, &after).map_or(
            EventData::NoAction {
                signature: Some("Spec ID Event03"),
            },
            EventData::SpecId,
        ));
    }
    if data.len() == 17 && data.starts_with(b"StartupLocality\0") {
        return Ok(EventData::StartupLocality(
            data.last().copied().unwrap_or(0),
        ));
    }
    if data.starts_with(b"SP800-155 Event3") {
        r.skip(16)?;
        let platform_manufacturer_id = r.u32_le()?;
        let reference_manifest_guid = Guid::from_bytes(r.take()?);
        let platform_manufacturer = sized_str(r)?;
        let platform_model = sized_str(r)?;
        let platform_version = sized_str(r)?;
        let firmware_manufacturer = sized_str(r)?;
        let firmware_manufacturer_id = r.u32_le()?;
        let firmware_version = sized_str(r)?;
        return Ok(EventData::Sp800155Event3(Sp800155Event3 {
            platform_manufacturer_id,
            reference_manifest_guid,
            platform_manufacturer,
            platform_model,
            platform_version,
            firmware_manufacturer,
            firmware_manufacturer_id,
            firmware_version,
        }));
    }
    let signature = data
        .iter()
        .position(|b| *b == 0)
        .and_then(|n| data.get(..n))
        .filter(|s| !s.is_empty())
        .and_then(ascii_text);
    Ok(EventData::NoAction { signature })
}

fn decode_image_load<'a>(r: &Reader<'a>) -> Result<ImageLoad<'a>, DecodeError> {
    // UINTN is 8 bytes on the 64-bit firmware of every log seen; fall back to 4.
    let layouts: [(bool, bool); 3] = [(true, true), (false, true), (true, false)];
    let mut last = invalid("device path length does not match the event", r.offset());
    for (wide, exact) in layouts {
        let mut r = r.clone();
        let attempt = (|| {
            let location = r.u64_le()?;
            let mut uintn = || {
                if wide {
                    r.u64_le()
                } else {
                    r.u32_le().map(u64::from)
                }
            };
            let length = uintn()?;
            let link_time_address = uintn()?;
            let dp_len = uintn()?;
            let at = r.offset();
            let n = usize::try_from(dp_len).ok().filter(|n| {
                if exact {
                    *n == r.remaining()
                } else {
                    *n <= r.remaining()
                }
            });
            let n = n.ok_or_else(|| invalid("device path length does not match the event", at))?;
            let device_path_bytes = r.bytes(n)?;
            let device_path = DevicePath::parse(device_path_bytes, at).ok();
            Ok(ImageLoad {
                location,
                length,
                link_time_address,
                device_path,
                device_path_bytes,
            })
        })();
        match attempt {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn decode_gpt<'a>(r: &mut Reader<'a>) -> Result<GptEvent<'a>, DecodeError> {
    let at = r.offset();
    if r.take::<8>()? != *b"EFI PART" {
        return Err(invalid("GPT header signature is not \"EFI PART\"", at));
    }
    r.skip(4 + 4 + 4 + 4 + 8 * 4)?;
    let disk_guid = Guid::from_bytes(r.take()?);
    r.skip(8 + 4)?;
    let size_at = r.offset();
    let entry_size = usize::try_from(r.u32_le()?).unwrap_or(0);
    r.skip(4)?;
    if entry_size < 128 {
        return Err(invalid(
            "GPT partition entry smaller than 128 bytes",
            size_at,
        ));
    }
    let count_at = r.offset();
    for wide in [true, false] {
        let mut t = r.clone();
        let n = if wide {
            t.u64_le()?
        } else {
            u64::from(t.u32_le()?)
        };
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(entry_size))
            .is_some_and(|len| len == t.remaining());
        if fits {
            let partitions = usize::try_from(n).unwrap_or(0);
            let base = t.offset();
            return Ok(GptEvent {
                disk_guid,
                partitions,
                entries: t.rest_bytes(),
                entry_size,
                base,
            });
        }
    }
    Err(invalid(
        "GPT partition count does not match the event size",
        count_at,
    ))
}

fn decode_handoff<'a>(r: &mut Reader<'a>, two: bool) -> Result<HandoffTables<'a>, DecodeError> {
    let description = if two { Some(sized_str(r)?) } else { None };
    let at = r.offset();
    for pointer_size in [8usize, 4] {
        let mut t = r.clone();
        let n = if pointer_size == 8 {
            t.u64_le()?
        } else {
            u64::from(t.u32_le()?)
        };
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(16usize.saturating_add(pointer_size)))
            .is_some_and(|len| len == t.remaining());
        if fits {
            let count = usize::try_from(n).unwrap_or(0);
            return Ok(HandoffTables {
                description,
                count,
                tables: t.rest_bytes(),
                pointer_size,
            });
        }
    }
    Err(invalid(
        "handoff table count does not match the event size",
        at,
    ))
}

fn decode_ipl(data: &[u8]) -> Ipl<'_> {
    if let Some(s) = ascii_text(data) {
        // Upstream GRUB writes "grub_cmd: " and "kernel_cmdline: "; Red Hat's GRUB writes
        // "grub_cmd " and "grub_kernel_cmdline ".
        if let Some(c) = s
            .strip_prefix("grub_cmd: ")
            .or_else(|| s.strip_prefix("grub_cmd "))
        {
            return Ipl::GrubCommand(c);
        }
        if let Some(c) = s
            .strip_prefix("kernel_cmdline: ")
            .or_else(|| s.strip_prefix("grub_kernel_cmdline "))
        {
            return Ipl::KernelCmdline(c);
        }
        if let Some(c) = s.strip_prefix("module_cmdline: ") {
            return Ipl::ModuleCmdline(c);
        }
        return Ipl::Text(s);
    }
    match utf16_text(data) {
        Some(s) => Ipl::Utf16(s),
        None => Ipl::Binary(data),
    }
}

fn decode_post_code<'a>(r: &mut Reader<'a>, data: &'a [u8]) -> Result<EventData<'a>, DecodeError> {
    if let Some(s) = ascii_text(data)
        && !s.is_empty()
    {
        return Ok(EventData::PostCode(s));
    }
    if data.len() == 16 {
        return blob(r, None).map(EventData::FirmwareBlob);
    }
    Ok(EventData::Raw(data))
}

impl<'a> EventData<'a> {
    /// Decode `event`'s data by its type.
    #[must_use]
    pub fn decode(event: &Event<'a>) -> Self {
        let data = event.data();
        let mut r = event.data_reader();
        let ty = event.event_type();
        let result = match ty {
            EventType::EV_NO_ACTION => decode_no_action(&mut r, data),
            EventType::EV_SEPARATOR => match data {
                [a, b, c, d] => Ok(EventData::Separator(
                    match u32::from_le_bytes([*a, *b, *c, *d]) {
                        0 => Separator::Normal,
                        v @ (1 | 0xFFFF_FFFF) => Separator::Error(v),
                        v => Separator::Other(v),
                    },
                )),
                _ => Err(invalid("separator data is not 4 bytes", r.offset())),
            },
            EventType::EV_ACTION | EventType::EV_EFI_ACTION => {
                text_at(data, r.offset()).map(EventData::Action)
            }
            EventType::EV_EFI_HCRTM_EVENT => text_at(data, r.offset()).map(EventData::Hcrtm),
            EventType::EV_S_CRTM_VERSION => {
                decode_crtm_version(data, r.offset()).map(EventData::SCrtmVersion)
            }
            EventType::EV_S_CRTM_CONTENTS | EventType::EV_POST_CODE | EventType::EV_POST_CODE2 => {
                decode_post_code(&mut r, data)
            }
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB => {
                blob(&mut r, None).map(EventData::FirmwareBlob)
            }
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => sized_str(&mut r)
                .and_then(|d| blob(&mut r, Some(d)))
                .map(EventData::FirmwareBlob),
            EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
            | EventType::EV_EFI_VARIABLE_BOOT
            | EventType::EV_EFI_VARIABLE_BOOT2
            | EventType::EV_EFI_SPDM_DEVICE_POLICY => {
                EfiVariable::decode(&mut r, false).map(EventData::Variable)
            }
            EventType::EV_EFI_VARIABLE_AUTHORITY | EventType::EV_EFI_SPDM_DEVICE_AUTHORITY => {
                EfiVariable::decode(&mut r, true).map(EventData::Variable)
            }
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION
            | EventType::EV_EFI_BOOT_SERVICES_DRIVER
            | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => {
                decode_image_load(&r).map(EventData::ImageLoad)
            }
            EventType::EV_EFI_GPT_EVENT => decode_gpt(&mut r).map(EventData::Gpt),
            EventType::EV_EFI_HANDOFF_TABLES => {
                decode_handoff(&mut r, false).map(EventData::HandoffTables)
            }
            EventType::EV_EFI_HANDOFF_TABLES2 => {
                decode_handoff(&mut r, true).map(EventData::HandoffTables)
            }
            EventType::EV_IPL => Ok(EventData::Ipl(decode_ipl(data))),
            EventType::EV_EVENT_TAG => (|| {
                let id = r.u32_le()?;
                let d = r.sized_u32_le(crate::MAX_EVENT_DATA)?;
                r.clone().finish()?;
                Ok(EventData::EventTag(TaggedEvent { id, data: d.rest() }))
            })(),
            EventType::EV_COMPACT_HASH => Ok(EventData::CompactHash(data)),
            EventType::EV_EFI_SPDM_FIRMWARE_BLOB | EventType::EV_EFI_SPDM_FIRMWARE_CONFIG => {
                (|| {
                    let at = r.offset();
                    let sig = r.bytes(16)?;
                    let signature =
                        ascii_text(sig).ok_or_else(|| invalid("SPDM signature is not text", at))?;
                    let version = r.u16_le()?;
                    Ok(EventData::SpdmDevice(SpdmDevice { signature, version }))
                })()
            }
            _ => Ok(EventData::Raw(data)),
        };
        result.unwrap_or_else(|error| EventData::Undecodable { data, error })
    }
}

impl<'a> Event<'a> {
    /// The typed payload ([`EventData::decode`]).
    #[must_use]
    pub fn decoded(&self) -> EventData<'a> {
        EventData::decode(self)
    }
}

struct List<I>(I);

impl<I: Iterator<Item = T> + Clone, T: fmt::Display> fmt::Display for List<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.clone().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            x.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for VariableContents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag { value: Some(v) } => write!(f, "{v}"),
            Self::Flag { value: None } => f.write_str("(empty)"),
            Self::SignatureDb(db) => {
                write!(f, "{} entries", db.entries)?;
                if db.certificates > 0 {
                    let names = db.iter().filter_map(|e| e.subject());
                    write!(f, ", {} certificates: ", db.certificates)?;
                    for (i, n) in names.enumerate() {
                        if i > 0 {
                            f.write_str("; ")?;
                        }
                        f.write_str(&n)?;
                    }
                }
                Ok(())
            }
            Self::SignatureData(e) => match e.subject() {
                Some(s) => write!(f, "{} {s}", e.kind.name()),
                None => write!(f, "{} ({} bytes)", e.kind.name(), e.data.len()),
            },
            Self::Certificate { der } => match der::subject_name(der) {
                Some(s) => write!(f, "certificate {s}"),
                None => write!(f, "certificate ({} bytes)", der.len()),
            },
            Self::BootOrder(l) => {
                for (i, n) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n:04X}")?;
                }
                Ok(())
            }
            Self::LoadOption(o) => {
                write!(f, "\"{}\"", o.description)?;
                match o.device_path {
                    Some(p) => write!(f, " {p}"),
                    None => Ok(()),
                }
            }
            Self::Text { text } => f.write_str(text.trim_end()),
            Self::Raw { note: Some(e) } => write!(f, "undecoded: {e}"),
            Self::Raw { note: None } => f.write_str("(raw)"),
        }
    }
}

impl fmt::Display for EventData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpecId(s) => {
                let algs = s.algorithms().as_slice().iter().map(|a| match a.alg() {
                    Some(alg) => alg.name().to_owned(),
                    None => format!("alg {:#06x}", a.id()),
                });
                let (ma, mi, er) = s.spec_version();
                write!(f, "Spec ID Event03 v{ma}.{mi} errata {er}: {}", List(algs))
            }
            Self::StartupLocality(l) => write!(f, "StartupLocality {l}"),
            Self::Sp800155Event3(e) => write!(
                f,
                "SP800-155 Event3: {} {} {} (firmware {} {})",
                e.platform_manufacturer,
                e.platform_model,
                e.platform_version,
                e.firmware_manufacturer,
                e.firmware_version
            ),
            Self::NoAction { signature: Some(s) } => write!(f, "{s}"),
            Self::NoAction { signature: None } => f.write_str("(no action)"),
            Self::Separator(Separator::Normal) => f.write_str("separator"),
            Self::Separator(Separator::Error(v)) => write!(f, "ERROR separator ({v:#010x})"),
            Self::Separator(Separator::Other(v)) => write!(f, "separator ({v:#010x})"),
            Self::Action(s) | Self::Hcrtm(s) | Self::PostCode(s) => f.write_str(s),
            Self::SCrtmVersion(v) => write!(f, "{v}"),
            Self::FirmwareBlob(b) => {
                if let Some(d) = b.description {
                    write!(f, "{d} ")?;
                }
                write!(f, "base {:#x} length {:#x}", b.base, b.length)
            }
            Self::Variable(v) => {
                write!(f, "{}", v.name)?;
                write!(f, " = {}", v.contents)
            }
            Self::ImageLoad(i) => match i.device_path {
                Some(p) => write!(f, "{p}"),
                None if i.device_path_bytes.is_empty() => {
                    write!(f, "(no device path), length {:#x}", i.length)
                }
                None => write!(f, "(malformed device path), length {:#x}", i.length),
            },
            Self::Gpt(g) => write!(
                f,
                "GPT disk {}, {} partitions",
                g.disk_guid,
                g.iter()
                    .filter(|p| p.type_guid != Guid::from_bytes([0; 16]))
                    .count()
            ),
            Self::HandoffTables(h) => {
                if let Some(d) = h.description {
                    write!(f, "{d}: ")?;
                }
                for (i, (g, _)) in h.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match g.name() {
                        Some(n) => f.write_str(n)?,
                        None => write!(f, "{g}")?,
                    }
                }
                Ok(())
            }
            Self::Ipl(Ipl::GrubCommand(s)) => write!(f, "grub_cmd: {s}"),
            Self::Ipl(Ipl::KernelCmdline(s)) => write!(f, "kernel_cmdline: {s}"),
            Self::Ipl(Ipl::ModuleCmdline(s)) => write!(f, "module_cmdline: {s}"),
            Self::Ipl(Ipl::Text(s)) => f.write_str(s),
            Self::Ipl(Ipl::Utf16(s)) => write!(f, "{s}"),
            Self::Ipl(Ipl::Binary(b)) => write!(f, "({} bytes)", b.len()),
            Self::EventTag(t) => match ascii_text(t.data) {
                Some(s) => write!(f, "tag {:#010x}: {s}", t.id),
                None => write!(f, "tag {:#010x} ({} bytes)", t.id, t.data.len()),
            },
            Self::CompactHash(b) => match ascii_text(b) {
                Some(s) => f.write_str(s),
                None => f.write_str(&vouch_wire::hex_lower(b)),
            },
            Self::SpdmDevice(s) => write!(f, "{} v{}", s.signature, s.version),
            Self::Raw(b) => match ascii_text(b) {
                Some(s) if !s.is_empty() => f.write_str(s),
                _ => write!(f, "({} bytes)", b.len()),
            },
            Self::Undecodable { data, error } => {
                write!(f, "undecodable ({error}), {} bytes", data.len())
            }
        }
    }
}

#[cfg(test)]
mod tests;
