//! What a log says booted: a description for people and policy inputs, not a verdict.
//!
//! # What is bound
//!
//! A log that replays to a verified quote vouches for its digests, not for the event data
//! beside them. [`MachineState::from_log`] therefore takes each decoded field only from an
//! event whose data is bound to its digests ([`Event::coverage`], in every bank the crate
//! computes): Secure Boot and its key databases, authorities, the kernel command line, the
//! S-CRTM version, `BootOrder`, `Boot####` and error separators. When the event that would
//! fill a field is not bound, the field is left at its unknown or absent value and the event
//! is listed in [`MachineState::unverified`], so a changed byte never shows as a changed value.
//! The last event claiming a field decides it (the first, for `firmware_version`), bound or
//! not: an unbound one never lets an earlier value stand. An unbound event whose bytes do not
//! even say which field it is (they no longer decode, or name a variable the state does not
//! read) is listed, by its PCR and type, against every field it could have filled that has
//! no value when the log ends.
//! The state is as trustworthy as the log's *replay*, and only then: the caller must still
//! check the replay against a verified quote.
//!
//! Which bytes are covered, field by field:
//!
//! * `secure_boot`, `pk`, `kek`, `db`, `dbx`: PCR 7 variable events whose whole
//!   `UEFI_VARIABLE_DATA`, name and GUID included, is covered. TPM 1.2-era firmware that
//!   hashes only the contents ([`Coverage::VariableData`]) leaves *which* variable it is
//!   unbound: those fields are unverified ([`UnverifiedReason::NameNotCovered`]).
//! * `authorities`: `EV_EFI_VARIABLE_AUTHORITY` events whose structure is covered.
//! * `boot_order`, `boot_entries`: boot variables (PCR 1, or 5 on firmware of the TCG EFI
//!   Platform Specification 1.2) whose contents are covered. EDK II hashes only the contents
//!   ([`Coverage::VariableData`]), so the variable's *name* (`BootOrder`, `Boot0001`) is as
//!   logged.
//! * `kernel_cmdline`: GRUB's `kernel_cmdline` text ([`Coverage::GrubText`]; the prefix that
//!   says it is the kernel's command line is as logged), or systemd-boot's UTF-16 text in
//!   PCR 8 or 12.
//! * `firmware_version`: the first `EV_S_CRTM_VERSION`.
//! * `error_separators`: `EV_SEPARATOR` events.
//!
//! Informational, unbound by nature and never compared: the device path of a boot
//! application and the [`BootStageKind`] guessed from it (the digest is the image's
//! Authenticode hash), and every [`FirmwareBlobInfo`] (the digest is of the memory region).
//! `kernel_cmdline_digest` and [`BootStage::digests`] are digests, so bound; *which*
//! measurement the PCR 9 digest is comes from the tag id in its (unbound) data.
//!
//! Not covered by any digest: an event's type. A log whose types were rewritten (a key
//! database relabelled as an authority) can still make a field absent without listing it.

use std::collections::BTreeMap;

use serde::Serialize;
use vouch_tpm2::HashAlg;

use crate::TcgLogError;
use crate::binding::Coverage;
use crate::data::efi::is_boot_option;
use crate::data::{
    EfiVariable, EventData, FirmwareBlob, Ipl, SignatureDb, SignatureKind, VariableContents, der,
    guid,
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
    /// Not measured, measured in data not bound to its digest (see
    /// [`MachineState::unverified`]), or an unexpected value.
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
///
/// The `digests` are the evidence. `kind` and `device_path` are **informational**: the
/// digest is the image's Authenticode hash, so nothing binds the path the log gives for it;
/// they are for people, never compared and never a policy input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BootStage {
    /// Event index in the log.
    pub event: usize,
    /// The role, guessed from the path. Informational (unbound by nature).
    pub kind: BootStageKind,
    /// Device path as text, if logged. Informational (unbound by nature).
    pub device_path: Option<String>,
    /// The digests (Authenticode hashes of the image), per bank.
    pub digests: BTreeMap<&'static str, String>,
}

/// A `Boot####` variable measured into PCR 1, from an event whose contents are bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BootEntry {
    /// `Boot0001` etc. As logged when the firmware hashes only the contents (EDK II).
    pub variable: String,
    /// The option's description.
    pub description: String,
    /// Its device path as text.
    pub device_path: Option<String>,
}

/// A measured firmware region. **Informational**, every field: the event's digest is of the
/// memory region, which the log does not hold, so nothing binds the description, base or
/// length given for it. For people; never compared and never a policy input.
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

/// A [`MachineState`] field that decoded event data fills (its JSON key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateField {
    /// [`MachineState::secure_boot`].
    SecureBoot,
    /// [`MachineState::pk`].
    Pk,
    /// [`MachineState::kek`].
    Kek,
    /// [`MachineState::db`].
    Db,
    /// [`MachineState::dbx`].
    Dbx,
    /// [`MachineState::authorities`].
    Authorities,
    /// [`MachineState::kernel_cmdline`].
    KernelCmdline,
    /// [`MachineState::firmware_version`].
    FirmwareVersion,
    /// [`MachineState::boot_order`].
    BootOrder,
    /// [`MachineState::boot_entries`].
    BootEntries,
    /// [`MachineState::error_separators`].
    ErrorSeparators,
}

/// The fields a PCR 7 configuration variable can fill.
const SECURE_BOOT_FIELDS: &[StateField] = &[
    StateField::SecureBoot,
    StateField::Pk,
    StateField::Kek,
    StateField::Db,
    StateField::Dbx,
];

/// The fields a boot variable (PCR 1, or 5 on older firmware) can fill.
const BOOT_FIELDS: &[StateField] = &[StateField::BootOrder, StateField::BootEntries];

/// Why an event's data was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnverifiedReason {
    /// No digest convention makes the event's digests the hash of its data: the data is not
    /// what was measured (or the firmware hashed it in a way this crate does not know).
    NotBound,
    /// The digests cover the variable's contents but not its name and GUID, so which
    /// variable it is rests on the log's word.
    NameNotCovered,
    /// The event is not bound and its data does not say which field it is (it does not
    /// decode, or names a variable the state does not read); by its PCR and type it may be
    /// this field's measurement, and the field has no bound value.
    Unidentified,
}

/// An event whose data would have filled a [`MachineState`] field but is not bound to its
/// digests: the field was left unknown (or the list without the entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UnverifiedField {
    /// Event index in the log.
    pub event: usize,
    /// The field it would have filled.
    pub field: StateField,
    /// Why its data was not used.
    pub reason: UnverifiedReason,
}

/// The machine's boot state as a log describes it (see the module documentation for what
/// is bound and what is informational).
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
    /// Their digests are evidence; their paths and kinds are informational ([`BootStage`]).
    pub boot_chain: Vec<BootStage>,
    /// The last kernel command line (GRUB `kernel_cmdline`, systemd-boot PCR 8/12 text).
    pub kernel_cmdline: Option<String>,
    /// SHA-256 digest (hex) of the kernel command line the Linux EFI stub measured into PCR 9
    /// (`EV_EVENT_TAG` [`LINUX_LOAD_OPTIONS_TAG`]); the log holds no text for it. The digest
    /// is bound; that it is the command line's rests on the tag id in the event data.
    pub kernel_cmdline_digest: Option<String>,
    /// `EV_S_CRTM_VERSION`.
    pub firmware_version: Option<String>,
    /// Measured firmware regions. Informational, unbound by nature ([`FirmwareBlobInfo`]).
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
    /// Events whose data is not bound to their digests, and the field each would have filled
    /// (left unknown or without the entry), in log order. Not serialised when empty, so the
    /// state of a fully bound log reads as it did before this list existed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<UnverifiedField>,
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

/// The field a PCR 7 configuration variable fills, by its name and GUID.
fn secure_boot_field(v: &EfiVariable<'_>) -> Option<StateField> {
    let field = match v.guid {
        guid::EFI_GLOBAL_VARIABLE if v.name.eq_str("SecureBoot") => StateField::SecureBoot,
        guid::EFI_GLOBAL_VARIABLE if v.name.eq_str("PK") => StateField::Pk,
        guid::EFI_GLOBAL_VARIABLE if v.name.eq_str("KEK") => StateField::Kek,
        guid::EFI_IMAGE_SECURITY_DATABASE if v.name.eq_str("db") => StateField::Db,
        guid::EFI_IMAGE_SECURITY_DATABASE if v.name.eq_str("dbx") => StateField::Dbx,
        _ => return None,
    };
    Some(field)
}

/// The field a boot variable fills, by its name and GUID.
fn boot_field(v: &EfiVariable<'_>) -> Option<StateField> {
    if v.guid != guid::EFI_GLOBAL_VARIABLE {
        None
    } else if v.name.eq_str("BootOrder") {
        Some(StateField::BootOrder)
    } else if is_boot_option(&v.name) {
        Some(StateField::BootEntries)
    } else {
        None
    }
}

/// `EV_EFI_VARIABLE_*` types that carry a configuration variable (not an authority).
fn is_config_variable(t: EventType) -> bool {
    t == EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        || t == EventType::EV_EFI_VARIABLE_BOOT
        || t == EventType::EV_EFI_VARIABLE_BOOT2
}

/// Why a field cannot take `coverage`'s data, if it cannot.
fn refusal(
    coverage: Option<Coverage>,
    accepts: impl Fn(Coverage) -> bool,
) -> Option<UnverifiedReason> {
    match coverage {
        Some(c) if accepts(c) => None,
        Some(Coverage::VariableData) => Some(UnverifiedReason::NameNotCovered),
        _ => Some(UnverifiedReason::NotBound),
    }
}

/// The state being built, with what is pending until the log ends.
struct Builder {
    s: MachineState,
    /// The first S-CRTM version event has been seen.
    crtm_seen: bool,
    /// Unbound events that do not say which field they are: (event, fields it may be).
    unidentified: Vec<(usize, &'static [StateField])>,
}

impl Builder {
    fn unverified(&mut self, event: usize, field: StateField, reason: UnverifiedReason) {
        self.s.unverified.push(UnverifiedField {
            event,
            field,
            reason,
        });
    }

    /// A bound value replaced whatever earlier events claimed for `field`.
    fn verified(&mut self, field: StateField) {
        self.s.unverified.retain(|u| u.field != field);
    }

    /// Empty a scalar field (an unbound event claims it: the last claim wins).
    fn clear(&mut self, field: StateField) {
        let s = &mut self.s;
        match field {
            StateField::SecureBoot => s.secure_boot = SecureBoot::Unknown,
            StateField::Pk => s.pk = None,
            StateField::Kek => s.kek = None,
            StateField::Db => s.db = None,
            StateField::Dbx => s.dbx = None,
            StateField::KernelCmdline => s.kernel_cmdline = None,
            StateField::FirmwareVersion => s.firmware_version = None,
            StateField::BootOrder => s.boot_order.clear(),
            StateField::Authorities | StateField::BootEntries | StateField::ErrorSeparators => {}
        }
    }

    /// True when `field` has no value (a list can always be missing an entry).
    fn lacks(&self, field: StateField) -> bool {
        let s = &self.s;
        match field {
            StateField::SecureBoot => s.secure_boot == SecureBoot::Unknown,
            StateField::Pk => s.pk.is_none(),
            StateField::Kek => s.kek.is_none(),
            StateField::Db => s.db.is_none(),
            StateField::Dbx => s.dbx.is_none(),
            StateField::KernelCmdline => s.kernel_cmdline.is_none(),
            StateField::FirmwareVersion => s.firmware_version.is_none(),
            StateField::BootOrder => s.boot_order.is_empty(),
            StateField::Authorities | StateField::BootEntries | StateField::ErrorSeparators => true,
        }
    }

    /// An unbound event: it empties the field it `claimed` (the last claim wins) and is
    /// listed for it with `reason`; one that claims none is listed, once the log has ended,
    /// for each of `may_be` that has no value then ([`UnverifiedReason::Unidentified`]).
    fn refuse(
        &mut self,
        event: usize,
        claimed: Option<StateField>,
        may_be: &'static [StateField],
        reason: UnverifiedReason,
    ) {
        match claimed {
            Some(f) => {
                self.clear(f);
                self.unverified(event, f, reason);
            }
            None => self.unidentified.push((event, may_be)),
        }
    }

    fn finish(mut self) -> MachineState {
        for (event, fields) in std::mem::take(&mut self.unidentified) {
            for field in fields {
                if self.lacks(*field) {
                    self.unverified(event, *field, UnverifiedReason::Unidentified);
                }
            }
        }
        self.s.unverified.sort_by_key(|u| (u.event, u.field));
        self.s
    }

    fn add(&mut self, ev: &Event<'_>) {
        let decoded = ev.decoded();
        if let EventData::Undecodable { error, .. } = decoded {
            self.s
                .undecodable_events
                .push((ev.index(), error.to_string()));
        }
        let ty = ev.event_type();
        let index = ev.index();
        match decoded {
            EventData::FirmwareBlob(FirmwareBlob {
                description,
                base,
                length,
            }) => {
                // Informational: the digest is of the memory region.
                self.s.firmware_blobs.push(FirmwareBlobInfo {
                    pcr: ev.pcr(),
                    description: description.map(str::to_owned),
                    base,
                    length,
                });
            }
            EventData::ImageLoad(img)
                if ev.pcr() == 4 && ty == EventType::EV_EFI_BOOT_SERVICES_APPLICATION =>
            {
                self.add_boot_stage(ev, &img);
            }
            EventData::EventTag(t) if ev.pcr() == 9 && t.id == LINUX_LOAD_OPTIONS_TAG => {
                // The digest itself is the value: bound by the replay.
                self.s.kernel_cmdline_digest = ev
                    .digests()
                    .get(vouch_tpm2::HashAlg::Sha256)
                    .map(|d| d.to_hex());
            }
            _ if ty == EventType::EV_S_CRTM_VERSION => self.add_crtm_version(ev, decoded),
            _ if ty == EventType::EV_SEPARATOR => {
                match refusal(ev.coverage(), Coverage::is_whole) {
                    None => {
                        if let EventData::Separator(sep) = decoded
                            && sep.is_error()
                        {
                            self.s.error_separators.push(ev.pcr());
                        }
                    }
                    Some(reason) => self.unverified(index, StateField::ErrorSeparators, reason),
                }
            }
            _ if ty == EventType::EV_EFI_VARIABLE_AUTHORITY => {
                match refusal(ev.coverage(), Coverage::is_whole) {
                    None => {
                        if let EventData::Variable(v) = decoded {
                            self.add_authority(index, &v);
                        }
                    }
                    Some(reason) => self.unverified(index, StateField::Authorities, reason),
                }
            }
            _ if ev.pcr() == 7 && is_config_variable(ty) => self.add_secure_boot(ev, decoded),
            // PCR 1 since PFP 1.0; PCR 5 under the TCG EFI Platform Specification 1.2 (IBM,
            // Lenovo and HP firmware of that era).
            _ if is_config_variable(ty) => self.add_boot_variable(ev, decoded),
            _ if ty == EventType::EV_IPL => self.add_ipl(ev, decoded),
            _ => {}
        }
    }

    fn add_crtm_version(&mut self, ev: &Event<'_>, decoded: EventData<'_>) {
        if self.crtm_seen {
            return;
        }
        match refusal(ev.coverage(), Coverage::is_whole) {
            Some(reason) => {
                self.crtm_seen = true;
                self.unverified(ev.index(), StateField::FirmwareVersion, reason);
            }
            None => {
                if let EventData::SCrtmVersion(v) = decoded {
                    self.crtm_seen = true;
                    self.s.firmware_version = Some(v.to_string());
                }
            }
        }
    }

    fn add_boot_stage(&mut self, ev: &Event<'_>, img: &crate::data::ImageLoad<'_>) {
        let path = img.device_path.and_then(|p| p.file_path());
        let fv = img.device_path.is_some_and(|p| p.is_firmware_volume());
        let previous = self.s.boot_chain.last().map(|b| b.kind);
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
        self.s.boot_chain.push(BootStage {
            event: ev.index(),
            kind,
            device_path,
            digests,
        });
    }

    fn add_authority(&mut self, event: usize, v: &EfiVariable<'_>) {
        let certificate = match v.contents {
            VariableContents::SignatureData(e) if e.kind == SignatureKind::X509 => {
                Some(CertificateInfo::new(e.data, Some(e.owner.to_string())))
            }
            VariableContents::Certificate { der } => Some(CertificateInfo::new(der, None)),
            _ => None,
        };
        self.s.authorities.push(Authority {
            event,
            variable: v.name_string(),
            certificate,
        });
    }

    /// `SecureBoot`, PK, KEK, db or dbx: only when the name and GUID are covered too.
    fn add_secure_boot(&mut self, ev: &Event<'_>, decoded: EventData<'_>) {
        let claimed = match decoded {
            EventData::Variable(v) => secure_boot_field(&v).map(|f| (f, v)),
            _ => None,
        };
        if let Some(reason) = refusal(ev.coverage(), Coverage::is_whole) {
            let field = claimed.map(|(f, _)| f);
            self.refuse(ev.index(), field, SECURE_BOOT_FIELDS, reason);
            return;
        }
        let Some((field, v)) = claimed else {
            return;
        };
        match v.contents {
            VariableContents::Flag { value } if field == StateField::SecureBoot => {
                self.s.secure_boot = match value {
                    Some(1) => SecureBoot::Enabled,
                    Some(0) | None => SecureBoot::Disabled,
                    Some(_) => SecureBoot::Unknown,
                };
            }
            VariableContents::SignatureDb(db) => {
                let slot = match field {
                    StateField::Pk => &mut self.s.pk,
                    StateField::Kek => &mut self.s.kek,
                    StateField::Db => &mut self.s.db,
                    StateField::Dbx => &mut self.s.dbx,
                    _ => return,
                };
                *slot = Some(KeyDatabase::from_db(&db));
            }
            _ => return,
        }
        self.verified(field);
    }

    /// `BootOrder` and `Boot####`: the contents must be covered (EDK II covers only them).
    fn add_boot_variable(&mut self, ev: &Event<'_>, decoded: EventData<'_>) {
        let accepts = |c: Coverage| c.is_whole() || c == Coverage::VariableData;
        let claimed = match decoded {
            EventData::Variable(v) => boot_field(&v).map(|f| (f, v)),
            _ => None,
        };
        if let Some(reason) = refusal(ev.coverage(), accepts) {
            // Only the boot PCRs: other configuration variables are not the state's.
            if claimed.is_some() || matches!(ev.pcr(), 1 | 5) {
                let field = claimed.map(|(f, _)| f);
                self.refuse(ev.index(), field, BOOT_FIELDS, reason);
            }
            return;
        }
        let Some((_, v)) = claimed else {
            return;
        };
        match v.contents {
            VariableContents::BootOrder(list) => {
                self.s.boot_order = list.iter().collect();
                self.verified(StateField::BootOrder);
            }
            VariableContents::LoadOption(o) => self.s.boot_entries.push(BootEntry {
                variable: v.name_string(),
                description: o.description.to_string(),
                device_path: o.device_path.map(|p| p.to_string()),
            }),
            _ => {}
        }
    }

    /// The kernel command line: GRUB's `kernel_cmdline` (its text covered), or UTF-16 text
    /// in PCR 8 or 12 (systemd-boot, all of it covered).
    fn add_ipl(&mut self, ev: &Event<'_>, decoded: EventData<'_>) {
        let (text, grub) = match decoded {
            EventData::Ipl(Ipl::KernelCmdline(c)) => (Some(c.trim().to_owned()), true),
            EventData::Ipl(Ipl::Utf16(t)) if matches!(ev.pcr(), 8 | 12) => {
                (Some(t.to_string().trim().to_owned()), false)
            }
            _ => (None, false),
        };
        let coverage = ev.coverage();
        match (
            text,
            refusal(coverage, |c| {
                c.is_whole() || (grub && c == Coverage::GrubText)
            }),
        ) {
            (Some(t), None) => {
                self.s.kernel_cmdline = Some(t);
                self.verified(StateField::KernelCmdline);
            }
            (Some(_), Some(reason)) => {
                self.refuse(ev.index(), Some(StateField::KernelCmdline), &[], reason);
            }
            // Text in the command line's PCRs that nothing covers may be one, relabelled.
            (None, _) if coverage.is_none() && matches!(ev.pcr(), 8 | 12) => self.refuse(
                ev.index(),
                None,
                &[StateField::KernelCmdline],
                UnverifiedReason::Unidentified,
            ),
            (None, _) => {}
        }
    }
}

impl MachineState {
    /// Describe `log`, taking decoded data only from events it is bound to (see the module
    /// documentation). Fails only if the log's framing is broken.
    pub fn from_log(log: &EventLog<'_>) -> Result<Self, TcgLogError> {
        let mut b = Builder {
            s: Self {
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
                unverified: Vec::new(),
            },
            crtm_seen: false,
            unidentified: Vec::new(),
        };
        for ev in log.events() {
            let ev = ev?;
            b.add(&ev);
        }
        Ok(b.finish())
    }

    /// Name the firmware build from `catalog` by the log's firmware volume measurements.
    pub fn identify_firmware(&mut self, log: &EventLog<'_>, catalog: &crate::FirmwareCatalog) {
        self.firmware_identified = catalog.identify(log);
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

#[cfg(test)]
mod tests;
