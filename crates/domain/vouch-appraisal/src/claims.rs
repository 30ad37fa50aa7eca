//! Typed claims from evidence: a verified quote and an event log that replays to it.
//!
//! Every claim keeps its source (event index, PCR, type). Decoded event *data* (a version
//! string, the `SecureBoot` byte, a db signature list, a kernel command line) becomes a claim
//! only when the event's digest in the quoted bank is the hash of that data, so that the
//! quote binds it; otherwise it is dropped and the checks that need it fail closed. Which
//! bytes a digest is the hash of is decided in one place, [`vouch_tcglog::Event::coverage_in`];
//! claims accept the whole event data, and for a GRUB kernel command line its text.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use vouch_tcglog::data::{EventData, Ipl, SignatureKind, VariableContents, guid};
use vouch_tcglog::{Coverage, Event, EventLog, EventType, LogQuoteMismatch, TcgLogError};
use vouch_tpm2::{HashAlg, VerifiedQuote};

use crate::model::{Component, EventRef, Labels, Slot};

/// Whether an event's decoded data is bound to its digest (defined beside the rule, in
/// `vouch-tcglog`).
pub use vouch_tcglog::Binding;

/// Why claims could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// The log does not frame.
    #[error("event log: {0}")]
    Log(#[from] TcgLogError),
    /// The log does not replay to the quoted PCRs: nothing in it can be trusted.
    #[error(transparent)]
    QuoteMismatch(LogQuoteMismatch),
    /// The quote covers neither a SHA-256 nor a SHA-1 PCR.
    #[error("the quote covers no SHA-256 or SHA-1 PCR")]
    NoQuotedBank,
}

/// What an event measured, classified by its type and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// `EV_S_CRTM_VERSION`.
    ScrtmVersion,
    /// A firmware region (`EV_EFI_PLATFORM_FIRMWARE_BLOB(2)`, blob-form POST code).
    FirmwareBlob,
    /// Another platform firmware event (PCR 0).
    PlatformEvent,
    /// A UEFI variable in PCR 1 (boot order, boot options, platform configuration).
    ConfigVariable,
    /// An option ROM or driver image (PCR 2).
    OptionRom,
    /// A boot application image (PCR 4).
    BootApplication,
    /// `SecureBoot` and other Secure Boot flags (PCR 7).
    SecureBootVariable,
    /// PK, KEK, db or dbx contents (PCR 7).
    KeyDatabase,
    /// An `EV_EFI_VARIABLE_AUTHORITY`: the entry that verified an image.
    Authority,
    /// The kernel command line (GRUB, systemd-boot).
    KernelCmdline,
    /// Another boot loader measurement (GRUB commands, files read).
    BootloaderMeasurement,
    /// `EV_SEPARATOR`.
    Separator,
    /// `EV_EFI_ACTION` / `EV_ACTION` text.
    Action,
    /// Anything else.
    Other,
}

/// One measured event, as a claim about a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventClaim {
    /// The component the event's PCR belongs to.
    pub component: Component,
    /// What it measured.
    pub kind: ClaimKind,
    /// Where it came from.
    pub source: EventRef,
    /// Ordinal among the events of the same PCR and type.
    pub ordinal: u32,
    /// The digest in the quoted bank, lower-case hex. This is the value references match.
    pub digest: String,
    /// A description from the event data (version, path, command line), if any.
    pub detail: Option<String>,
    /// Whether the detail is bound to the digest.
    pub binding: Binding,
}

impl EventClaim {
    /// The event's slot (PCR, type, ordinal).
    #[must_use]
    pub fn slot(&self) -> Slot {
        Slot {
            pcr: self.source.pcr,
            event_type: self.source.event_type.clone(),
            ordinal: self.ordinal,
        }
    }
}

/// A certificate's identity in a key database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CertId {
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// Subject CN (or O), when readable.
    pub subject: Option<String>,
}

/// PK, KEK, db or dbx, from a bound variable event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDbClaim {
    /// X.509 certificates.
    pub certificates: Vec<CertId>,
    /// Hash entries (image or TBS hashes), lower-case hex.
    pub hashes: Vec<String>,
    /// The event.
    pub source: EventRef,
}

/// Secure Boot on or off, as the bound `SecureBoot` variable says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecureBootState {
    /// `SecureBoot` = 1.
    Enabled,
    /// `SecureBoot` = 0 or empty.
    Disabled,
    /// Not measured, not bound to its digest, or an unexpected value.
    Unknown,
}

/// The Secure Boot claims of PCR 7 (only from events whose data is bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureBootClaims {
    /// On or off.
    pub state: SecureBootState,
    /// The `SecureBoot` event.
    pub state_source: Option<EventRef>,
    /// Platform key.
    pub pk: Option<KeyDbClaim>,
    /// Key exchange keys.
    pub kek: Option<KeyDbClaim>,
    /// Allowed signatures.
    pub db: Option<KeyDbClaim>,
    /// Forbidden signatures.
    pub dbx: Option<KeyDbClaim>,
}

/// The kernel command line from a bound event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdlineClaim {
    /// The text.
    pub text: String,
    /// The event.
    pub source: EventRef,
}

/// Everything appraisal knows about one host's boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The host.
    pub host: String,
    /// Operator/enrolment labels plus `detected.*` labels from bound evidence and
    /// `reported.*` labels from the log's unbound platform identity (`SP800-155 Event3`,
    /// an `EV_NO_ACTION` event: as trustworthy as the host's own word).
    pub labels: Labels,
    /// The bank the claims' digests are in (`sha256`, or `sha1` for SHA-1-only quotes).
    pub bank: String,
    /// Every extended event on a component PCR the quote covers, in log order.
    pub events: Vec<EventClaim>,
    /// Secure Boot.
    pub secure_boot: SecureBootClaims,
    /// The last bound kernel command line.
    pub cmdline: Option<CmdlineClaim>,
    /// Quoted PCR values of `bank`, lower-case hex.
    pub pcrs: BTreeMap<u32, String>,
}

fn event_ref(ev: &Event<'_>) -> EventRef {
    EventRef {
        index: ev.index(),
        pcr: ev.pcr(),
        event_type: ev.event_type().to_string(),
    }
}

/// Bound when `ev`'s digest in `bank` is the hash of one of the byte strings `accepted`
/// conventions name ([`Event::coverage_in`], the one rule for which bytes firmware hashes).
fn bound(ev: &Event<'_>, bank: HashAlg, accepted: &[Coverage]) -> Binding {
    Binding::from(ev.coverage_in(bank).filter(|c| accepted.contains(c)))
}

/// The whole event data, the PFP rule: what claims have always required.
const WHOLE: &[Coverage] = &[Coverage::EventData];

fn key_db(db: &vouch_tcglog::data::SignatureDb<'_>, source: EventRef) -> KeyDbClaim {
    let mut certificates = Vec::new();
    let mut hashes = Vec::new();
    for e in db.iter() {
        if e.kind == SignatureKind::X509 {
            certificates.push(CertId {
                sha256: HashAlg::Sha256.hash(e.data).to_hex(),
                subject: e.subject(),
            });
        } else {
            hashes.push(vouch_wire::hex_lower(e.data));
        }
    }
    KeyDbClaim {
        certificates,
        hashes,
        source,
    }
}

const MAX_DETAIL: usize = 160;

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_DETAIL) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_owned(),
    }
}

impl Claims {
    /// Derive claims from a verified quote and the host's event log.
    ///
    /// The log must replay to the quoted values ([`vouch_tcglog::compare_with_quote`]);
    /// claims are then made only for events on PCRs the quote covers, in its SHA-256 bank
    /// (SHA-1 when the quote has no SHA-256 PCR). `labels` are the host's operator and
    /// enrolment labels (the verifier adds `detected.tpm_vendor` and `detected.tpm_model` from
    /// the EK certificate); detected labels from bound evidence are added under `detected.`,
    /// the log's unbound platform identity under `reported.`.
    ///
    /// The caller must have verified `quote` with an AK bound to the host's EK: the claims
    /// are about whatever machine holds that AK.
    pub fn derive(
        host: &str,
        mut labels: Labels,
        quote: &VerifiedQuote,
        log_bytes: &[u8],
    ) -> Result<Self, ClaimsError> {
        let log = EventLog::parse(log_bytes)?;
        let replay = vouch_tcglog::replay(&log)?;
        vouch_tcglog::compare_with_quote(&log, &replay, &quote.pcrs)
            .map_err(ClaimsError::QuoteMismatch)?;
        let bank = [HashAlg::Sha256, HashAlg::Sha1]
            .into_iter()
            .find(|b| quote.pcrs.bank(*b).next().is_some())
            .ok_or(ClaimsError::NoQuotedBank)?;
        let pcrs: BTreeMap<u32, String> = quote
            .pcrs
            .bank(bank)
            .map(|(i, d)| (i, d.to_hex()))
            .collect();

        let mut events = Vec::new();
        let mut ordinals: HashMap<(u32, u32), u32> = HashMap::new();
        let mut secure_boot = SecureBootClaims {
            state: SecureBootState::Unknown,
            state_source: None,
            pk: None,
            kek: None,
            db: None,
            dbx: None,
        };
        let mut cmdline = None;
        for ev in log.events() {
            let ev = ev.map_err(|e| ClaimsError::Log(e.into()))?;
            if let EventData::Sp800155Event3(p) = ev.decoded() {
                // Not extended into any PCR: reported by the platform, not bound evidence.
                for (key, value) in [
                    ("reported.platform_manufacturer", p.platform_manufacturer),
                    ("reported.platform_model", p.platform_model),
                    ("reported.platform_version", p.platform_version),
                    ("reported.firmware_version", p.firmware_version),
                ] {
                    if !value.trim().is_empty() {
                        labels
                            .entry(key.into())
                            .or_insert_with(|| clip(value.trim()));
                    }
                }
            }
            if !ev.is_extended() || !pcrs.contains_key(&ev.pcr()) {
                continue;
            }
            let Some(component) = Component::of_pcr(ev.pcr()) else {
                continue;
            };
            let Some(digest) = ev.digests().get(bank) else {
                continue;
            };
            let ordinal = ordinals.entry((ev.pcr(), ev.event_type().0)).or_insert(0);
            let this_ordinal = *ordinal;
            *ordinal = ordinal.saturating_add(1);
            let source = event_ref(&ev);
            let (kind, detail, binding) = match ev.decoded() {
                EventData::SCrtmVersion(v) => (
                    ClaimKind::ScrtmVersion,
                    Some(v.to_string()),
                    bound(&ev, bank, WHOLE),
                ),
                EventData::FirmwareBlob(b) => (
                    ClaimKind::FirmwareBlob,
                    Some(format!(
                        "{}base {:#x} length {:#x}",
                        b.description.map(|s| format!("{s}, ")).unwrap_or_default(),
                        b.base,
                        b.length
                    )),
                    Binding::Unbound,
                ),
                EventData::Separator(_) => (ClaimKind::Separator, None, bound(&ev, bank, WHOLE)),
                EventData::Action(t) => (ClaimKind::Action, Some(clip(t)), bound(&ev, bank, WHOLE)),
                EventData::ImageLoad(img) => {
                    let path = img.device_path.map(|p| clip(&p.to_string()));
                    let kind = if ev.pcr() == 4 {
                        ClaimKind::BootApplication
                    } else {
                        ClaimKind::OptionRom
                    };
                    (kind, path, Binding::Unbound)
                }
                EventData::Variable(v) => {
                    let name = v.name_string();
                    let authority = ev.event_type() == EventType::EV_EFI_VARIABLE_AUTHORITY;
                    let binding = bound(&ev, bank, WHOLE);
                    let kind = if authority {
                        ClaimKind::Authority
                    } else if ev.pcr() == 7 {
                        match v.contents {
                            VariableContents::SignatureDb(_) => ClaimKind::KeyDatabase,
                            _ => ClaimKind::SecureBootVariable,
                        }
                    } else {
                        ClaimKind::ConfigVariable
                    };
                    if ev.pcr() == 7 && !authority && binding == Binding::Bound {
                        match v.contents {
                            VariableContents::Flag { value }
                                if name == "SecureBoot" && v.guid == guid::EFI_GLOBAL_VARIABLE =>
                            {
                                secure_boot.state = match value {
                                    Some(1) => SecureBootState::Enabled,
                                    Some(0) | None => SecureBootState::Disabled,
                                    Some(_) => SecureBootState::Unknown,
                                };
                                secure_boot.state_source = Some(source.clone());
                            }
                            VariableContents::SignatureDb(db) => {
                                let slot = match (name.as_str(), v.guid) {
                                    ("PK", guid::EFI_GLOBAL_VARIABLE) => Some(&mut secure_boot.pk),
                                    ("KEK", guid::EFI_GLOBAL_VARIABLE) => {
                                        Some(&mut secure_boot.kek)
                                    }
                                    ("db", guid::EFI_IMAGE_SECURITY_DATABASE) => {
                                        Some(&mut secure_boot.db)
                                    }
                                    ("dbx", guid::EFI_IMAGE_SECURITY_DATABASE) => {
                                        Some(&mut secure_boot.dbx)
                                    }
                                    _ => None,
                                };
                                if let Some(slot) = slot {
                                    *slot = Some(key_db(&db, source.clone()));
                                }
                            }
                            _ => {}
                        }
                    }
                    let detail = match v.contents {
                        VariableContents::Flag { value } => {
                            format!(
                                "{name} = {}",
                                value.map_or("(empty)".into(), |b| b.to_string())
                            )
                        }
                        VariableContents::SignatureDb(db) => {
                            format!(
                                "{name}: {} entries, {} certificates",
                                db.entries, db.certificates
                            )
                        }
                        VariableContents::SignatureData(e) => {
                            format!(
                                "{name}: {}",
                                e.subject().unwrap_or_else(|| e.kind.name().into())
                            )
                        }
                        _ => name,
                    };
                    (kind, Some(clip(&detail)), binding)
                }
                EventData::Ipl(Ipl::KernelCmdline(c)) => {
                    let text = c.trim_end_matches('\0');
                    // GRUB hashes the text after its prefix, with or without the NUL.
                    let binding = bound(&ev, bank, &[Coverage::EventData, Coverage::GrubText]);
                    if binding == Binding::Bound {
                        cmdline = Some(CmdlineClaim {
                            text: text.trim().to_owned(),
                            source: source.clone(),
                        });
                    }
                    (ClaimKind::KernelCmdline, Some(clip(text)), binding)
                }
                EventData::Ipl(Ipl::Utf16(t)) if ev.pcr() == 8 || ev.pcr() == 12 => {
                    let text = t.to_string();
                    let binding = bound(&ev, bank, WHOLE);
                    if binding == Binding::Bound {
                        cmdline = Some(CmdlineClaim {
                            text: text.trim().to_owned(),
                            source: source.clone(),
                        });
                    }
                    (ClaimKind::KernelCmdline, Some(clip(&text)), binding)
                }
                EventData::Ipl(Ipl::GrubCommand(t) | Ipl::ModuleCmdline(t) | Ipl::Text(t)) => (
                    ClaimKind::BootloaderMeasurement,
                    Some(clip(t)),
                    Binding::Unbound,
                ),
                EventData::Ipl(_) => (ClaimKind::BootloaderMeasurement, None, Binding::Unbound),
                _ if ev.pcr() == 0 => (ClaimKind::PlatformEvent, None, Binding::Unbound),
                _ => (ClaimKind::Other, None, Binding::Unbound),
            };
            if kind == ClaimKind::ScrtmVersion
                && binding == Binding::Bound
                && let Some(v) = &detail
            {
                labels
                    .entry("detected.firmware_version".into())
                    .or_insert_with(|| v.clone());
            }
            events.push(EventClaim {
                component,
                kind,
                source,
                ordinal: this_ordinal,
                digest: digest.to_hex(),
                detail,
                binding,
            });
        }
        Ok(Self {
            host: host.to_owned(),
            labels,
            bank: bank.name().to_owned(),
            events,
            secure_boot,
            cmdline,
            pcrs,
        })
    }

    /// The events on one component.
    pub fn component(&self, c: Component) -> impl Iterator<Item = &EventClaim> + '_ {
        self.events.iter().filter(move |e| e.component == c)
    }
}
