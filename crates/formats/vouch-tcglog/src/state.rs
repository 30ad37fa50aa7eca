//! What a log says booted: a description for people and policy inputs, not a verdict.
//!
//! Built from decoded events only; nothing here is checked against the events' digests, so
//! it is as trustworthy as the log (see the crate documentation).

use std::collections::BTreeMap;

use serde::Serialize;
use vouch_tpm2::HashAlg;

use crate::TcgLogError;
use crate::data::{
    EventData, FirmwareBlob, Ipl, SignatureDb, SignatureKind, VariableContents, der, guid,
};
use crate::event_type::EventType;
use crate::log::{Event, EventLog};

/// Secure Boot as the `SecureBoot` variable measured into PCR 7 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecureBoot {
    /// `SecureBoot` = 1.
    Enabled,
    /// `SecureBoot` = 0, or measured empty (the variable did not exist).
    Disabled,
    /// Not measured, or an unexpected value.
    Unknown,
}

/// A certificate in a key database or an authority event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// Subject common name (or organisation), if the DER could be read that far.
    pub subject: Option<String>,
    /// SHA-256 of the DER.
    pub sha256: String,
    /// `SignatureOwner` GUID, when the certificate came from a signature list.
    pub owner: Option<String>,
}

impl CertificateInfo {
    fn new(der_bytes: &[u8], owner: Option<String>) -> Self {
        Self {
            subject: der::subject_name(der_bytes),
            sha256: HashAlg::Sha256.hash(der_bytes).to_hex(),
            owner,
        }
    }
}

/// The contents of PK, KEK, db or dbx.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyDatabase {
    /// X.509 certificates, in order.
    pub certificates: Vec<CertificateInfo>,
    /// Number of non-certificate entries per kind (sha256, x509_sha256, ...).
    pub hashes: BTreeMap<&'static str, usize>,
}

impl KeyDatabase {
    fn from_db(db: &SignatureDb<'_>) -> Self {
        let mut out = Self::default();
        for e in db.iter() {
            if e.kind == SignatureKind::X509 {
                out.certificates
                    .push(CertificateInfo::new(e.data, Some(e.owner.to_string())));
            } else {
                let n = out.hashes.entry(e.kind.name()).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
        out
    }
}

/// The role a boot application plays, guessed from its file name (a label for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootStageKind {
    /// An application inside the firmware volume (setup UI, shell, PXE).
    FirmwareApplication,
    /// shim.
    Shim,
    /// GRUB.
    Grub,
    /// systemd-boot.
    SystemdBoot,
    /// Windows Boot Manager.
    WindowsBootManager,
    /// A Linux kernel (or UKI) loaded by a boot loader.
    Kernel,
    /// Anything else (e.g. `\EFI\BOOT\BOOTX64.EFI`, which may be any of the above).
    Other,
}

/// One `EV_EFI_BOOT_SERVICES_APPLICATION` in PCR 4, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BootStage {
    /// Event index in the log.
    pub event: usize,
    /// The role, guessed from the path.
    pub kind: BootStageKind,
    /// Device path as text, if logged.
    pub device_path: Option<String>,
    /// The digests (Authenticode hashes of the image), per bank.
    pub digests: BTreeMap<&'static str, String>,
}

/// A `Boot####` variable measured into PCR 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BootEntry {
    /// `Boot0001` etc.
    pub variable: String,
    /// The option's description.
    pub description: String,
    /// Its device path as text.
    pub device_path: Option<String>,
}

/// A measured firmware region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FirmwareBlobInfo {
    /// PCR.
    pub pcr: u32,
    /// Description (BLOB2).
    pub description: Option<String>,
    /// Base address.
    pub base: u64,
    /// Length.
    pub length: u64,
}

/// A certificate or entry named by an `EV_EFI_VARIABLE_AUTHORITY` event: what verified an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Authority {
    /// Event index.
    pub event: usize,
    /// The database it came from (db, MokList, Shim, SbatLevel...).
    pub variable: String,
    /// The certificate, when it is one.
    pub certificate: Option<CertificateInfo>,
}

/// The machine's boot state as a log describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MachineState {
    /// Secure Boot.
    pub secure_boot: SecureBoot,
    /// Platform key.
    pub pk: Option<KeyDatabase>,
    /// Key exchange keys.
    pub kek: Option<KeyDatabase>,
    /// Allowed signatures.
    pub db: Option<KeyDatabase>,
    /// Forbidden signatures.
    pub dbx: Option<KeyDatabase>,
    /// Entries that authorised images (PCR 7 `EV_EFI_VARIABLE_AUTHORITY`).
    pub authorities: Vec<Authority>,
    /// Boot applications in PCR 4, in load order: firmware apps, shim, boot loader, kernel.
    pub boot_chain: Vec<BootStage>,
    /// The last kernel command line (GRUB `kernel_cmdline`, systemd-boot PCR 8/12 text).
    pub kernel_cmdline: Option<String>,
    /// SHA-256 digest (hex) of the kernel command line the Linux EFI stub measured into PCR 9
    /// (`EV_EVENT_TAG` [`LINUX_LOAD_OPTIONS_TAG`]); the log holds no text for it.
    pub kernel_cmdline_digest: Option<String>,
    /// `EV_S_CRTM_VERSION`.
    pub firmware_version: Option<String>,
    /// Measured firmware regions.
    pub firmware_blobs: Vec<FirmwareBlobInfo>,
    /// The firmware build a blob measurement names, when a catalogue was consulted and matched
    /// ([`MachineState::identify_firmware`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware_identified: Option<crate::catalog::IdentifiedFirmware>,
    /// `BootOrder`.
    pub boot_order: Vec<u16>,
    /// `Boot####` entries, in log order.
    pub boot_entries: Vec<BootEntry>,
    /// PCRs with an error separator (`00000001` / `FFFFFFFF`): the platform reported an error.
    pub error_separators: Vec<u32>,
    /// Events whose payload did not decode, as (event index, reason).
    pub undecodable_events: Vec<(usize, String)>,
}

/// The vendor media GUID of QEMU's firmware loader: OVMF loads a `-kernel` image from
/// `VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7)/kernel`.
const QEMU_KERNEL_LOADER_GUID: &str = "1428f772-b64a-441e-b8c3-9ebdd7f893c7";

/// `EV_EVENT_TAG` id under which the Linux EFI stub measures the kernel command line into
/// PCR 9 ("LOADED_IMAGE::LoadOptions", Linux 5.19+); the event carries only the digest of the
/// UTF-16LE command line with its terminating NUL.
pub const LINUX_LOAD_OPTIONS_TAG: u32 = 0x8F3B_22ED;

/// True for the device path OVMF gives a QEMU `-kernel` image.
fn is_qemu_kernel_loader(device_path: &str) -> bool {
    device_path
        .to_ascii_lowercase()
        .contains(QEMU_KERNEL_LOADER_GUID)
}

fn stage_kind(path: Option<&str>, fv: bool, previous: Option<BootStageKind>) -> BootStageKind {
    if fv {
        return BootStageKind::FirmwareApplication;
    }
    let Some(p) = path.map(str::to_ascii_lowercase) else {
        // Images loaded from memory by a boot loader (the kernel via shim's protocol).
        return match previous {
            Some(BootStageKind::Grub | BootStageKind::SystemdBoot | BootStageKind::Shim) => {
                BootStageKind::Kernel
            }
            _ => BootStageKind::Other,
        };
    };
    let file = p.rsplit(['\\', '/']).next().unwrap_or(&p);
    if file.contains("shim") {
        BootStageKind::Shim
    } else if file.contains("grub") {
        BootStageKind::Grub
    } else if file.contains("systemd-boot") {
        BootStageKind::SystemdBoot
    } else if file == "bootmgfw.efi" {
        BootStageKind::WindowsBootManager
    } else if file.starts_with("vmlinuz")
        || file.starts_with("linux")
        || p.contains("\\efi\\linux\\")
    {
        BootStageKind::Kernel
    } else {
        BootStageKind::Other
    }
}

impl MachineState {
    /// Describe `log`. Fails only if the log's framing is broken.
    pub fn from_log(log: &EventLog<'_>) -> Result<Self, TcgLogError> {
        let mut s = Self {
            secure_boot: SecureBoot::Unknown,
            pk: None,
            kek: None,
            db: None,
            dbx: None,
            authorities: Vec::new(),
            boot_chain: Vec::new(),
            kernel_cmdline: None,
            kernel_cmdline_digest: None,
            firmware_version: None,
            firmware_blobs: Vec::new(),
            firmware_identified: None,
            boot_order: Vec::new(),
            boot_entries: Vec::new(),
            error_separators: Vec::new(),
            undecodable_events: Vec::new(),
        };
        for ev in log.events() {
            let ev = ev?;
            s.add(&ev);
        }
        Ok(s)
    }

    /// Name the firmware build from `catalog` by the log's firmware volume measurements.
    pub fn identify_firmware(&mut self, log: &EventLog<'_>, catalog: &crate::FirmwareCatalog) {
        self.firmware_identified = catalog.identify(log);
    }

    fn add(&mut self, ev: &Event<'_>) {
        match ev.decoded() {
            EventData::SCrtmVersion(v) if self.firmware_version.is_none() => {
                self.firmware_version = Some(v.to_string());
            }
            EventData::FirmwareBlob(FirmwareBlob {
                description,
                base,
                length,
            }) => {
                self.firmware_blobs.push(FirmwareBlobInfo {
                    pcr: ev.pcr(),
                    description: description.map(str::to_owned),
                    base,
                    length,
                });
            }
            EventData::Separator(sep) if sep.is_error() => self.error_separators.push(ev.pcr()),
            EventData::Variable(v) => {
                let authority = ev.event_type() == EventType::EV_EFI_VARIABLE_AUTHORITY;
                self.add_variable(ev.index(), &v, authority);
            }
            EventData::ImageLoad(img)
                if ev.pcr() == 4
                    && ev.event_type() == EventType::EV_EFI_BOOT_SERVICES_APPLICATION =>
            {
                let path = img.device_path.and_then(|p| p.file_path());
                let fv = img.device_path.is_some_and(|p| p.is_firmware_volume());
                let previous = self.boot_chain.last().map(|b| b.kind);
                let digests = ev
                    .digests()
                    .iter()
                    .filter_map(|d| {
                        d.alg()
                            .map(|a| (a.name(), vouch_wire::hex_lower(d.bytes())))
                    })
                    .collect();
                let device_path = img.device_path.map(|p| p.to_string());
                let kind = if device_path.as_deref().is_some_and(is_qemu_kernel_loader) {
                    BootStageKind::Kernel
                } else {
                    stage_kind(path.as_deref(), fv, previous)
                };
                self.boot_chain.push(BootStage {
                    event: ev.index(),
                    kind,
                    device_path,
                    digests,
                });
            }
            EventData::Ipl(Ipl::KernelCmdline(c)) => {
                self.kernel_cmdline = Some(c.trim().to_owned())
            }
            EventData::Ipl(Ipl::Utf16(t)) if matches!(ev.pcr(), 8 | 12) => {
                self.kernel_cmdline = Some(t.to_string().trim().to_owned());
            }
            EventData::EventTag(t) if ev.pcr() == 9 && t.id == LINUX_LOAD_OPTIONS_TAG => {
                self.kernel_cmdline_digest = ev
                    .digests()
                    .get(vouch_tpm2::HashAlg::Sha256)
                    .map(|d| d.to_hex());
            }
            EventData::Undecodable { error, .. } => self
                .undecodable_events
                .push((ev.index(), error.to_string())),
            _ => {}
        }
    }

    fn add_variable(&mut self, event: usize, v: &crate::data::EfiVariable<'_>, authority: bool) {
        let name = v.name_string();
        if authority {
            let certificate = match v.contents {
                VariableContents::SignatureData(e) if e.kind == SignatureKind::X509 => {
                    Some(CertificateInfo::new(e.data, Some(e.owner.to_string())))
                }
                VariableContents::Certificate { der } => Some(CertificateInfo::new(der, None)),
                _ => None,
            };
            self.authorities.push(Authority {
                event,
                variable: name,
                certificate,
            });
            return;
        }
        match v.contents {
            VariableContents::Flag { value }
                if name == "SecureBoot" && v.guid == guid::EFI_GLOBAL_VARIABLE =>
            {
                self.secure_boot = match value {
                    Some(1) => SecureBoot::Enabled,
                    Some(0) | None => SecureBoot::Disabled,
                    Some(_) => SecureBoot::Unknown,
                };
            }
            VariableContents::SignatureDb(db) => {
                let slot = match (name.as_str(), v.guid) {
                    ("PK", guid::EFI_GLOBAL_VARIABLE) => &mut self.pk,
                    ("KEK", guid::EFI_GLOBAL_VARIABLE) => &mut self.kek,
                    ("db", guid::EFI_IMAGE_SECURITY_DATABASE) => &mut self.db,
                    ("dbx", guid::EFI_IMAGE_SECURITY_DATABASE) => &mut self.dbx,
                    _ => return,
                };
                *slot = Some(KeyDatabase::from_db(&db));
            }
            VariableContents::BootOrder(list) => self.boot_order = list.iter().collect(),
            VariableContents::LoadOption(o) => self.boot_entries.push(BootEntry {
                variable: name,
                description: o.description.to_string(),
                device_path: o.device_path.map(|p| p.to_string()),
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod qemu_kernel_tests {
    use super::*;

    #[test]
    fn classifies_qemu_direct_kernel_boot_as_kernel() {
        assert!(is_qemu_kernel_loader(
            "VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7)/kernel"
        ));
        assert!(!is_qemu_kernel_loader(
            "VenMedia(00000000-0000-0000-0000-000000000000)/kernel"
        ));
        // The file name alone ("kernel") says nothing: only the loader's GUID does.
        assert_eq!(
            stage_kind(Some("kernel"), false, None),
            BootStageKind::Other
        );
    }
}
