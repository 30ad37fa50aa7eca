//! Whether an event's data is bound to its digests: the one rule for trusting decoded data.
//!
//! A replay that equals quoted PCR values vouches for the *digests* in a log, not for the
//! event data beside them. Data is bound only where a digest is the hash of it, so that
//! changing a byte changes the digest and with it the replay. The PFP's event descriptions
//! say which events are hashed over their data (`EV_S_CRTM_VERSION`, `EV_SEPARATOR`,
//! `EV_EFI_ACTION`, the `EV_EFI_VARIABLE_*` events, ...) and which over something the log
//! does not hold (an image's Authenticode hash, a memory region: never bound). Firmware and
//! boot loaders add conventions of their own, found in real logs (`testdata/eventlogs`);
//! [`Coverage`] names each, and says whether it covers everything decoded from the data.
//!
//! An event is checked in **every** bank whose algorithm this crate computes, not only the
//! strongest: a quote that covers only one bank cannot vouch for a digest in another, and an
//! attacker who rewrote the data could fix up an unquoted bank. All of them must agree.
//!
//! Not covered by any digest, under any convention: the event's type, and its size and
//! framing. A decoded value therefore says what an event *claims* to be; [`Coverage`]
//! says which of its own bytes are vouched for.

use serde::{Deserialize, Serialize};
use vouch_tpm2::HashAlg;
use vouch_wire::Reader;

use crate::data::{EventData, Ipl};
use crate::event_type::EventType;
use crate::log::Event;

/// Whether an event's decoded data is bound to its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[must_use]
pub enum Binding {
    /// The digest is the hash of the data the detail was decoded from: the quote vouches for it.
    Bound,
    /// The digest is of something else (an image, a memory region) or does not match: the
    /// detail is what the log says, for people only.
    Unbound,
}

/// Which bytes of an event's data its digests are the hash of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[must_use]
pub enum Coverage {
    /// All of the event data (the PFP rule).
    EventData,
    /// A `UEFI_VARIABLE_DATA` logged with a few bytes after the structure, of which the digest
    /// covers all but the last: shim, and GCE's firmware of 2018-2020, size
    /// `EV_EFI_VARIABLE_AUTHORITY` events by the C structure's padding. The structure itself,
    /// and so everything decoded from it, is covered.
    PaddedVariable,
    /// The event data followed by the one NUL byte it was logged without: systemd-boot logs
    /// the UTF-16 load options it measures into PCR 8 one byte short of their terminator.
    /// Every logged byte is covered.
    DataWithNul,
    /// Only the `VariableData` of a `UEFI_VARIABLE_DATA`: EDK II measures `BootOrder` and
    /// `Boot####` (`EV_EFI_VARIABLE_BOOT`) this way, and TPM 1.2-era firmware (Lenovo) its
    /// Secure Boot variables (`EV_EFI_VARIABLE_DRIVER_CONFIG`). The contents are bound; the
    /// variable's name and vendor GUID, which say *which* variable it is, are not.
    VariableData,
    /// Only the text after GRUB's prefix (`kernel_cmdline: `, `grub_cmd: `, `module_cmdline: `
    /// and Red Hat's spellings), with or without its terminating NUL: the text is bound, the
    /// prefix, which says *what* the text is, is not.
    GrubText,
}

impl Coverage {
    /// True when everything decoded from the event data is covered ([`Coverage::EventData`],
    /// [`Coverage::PaddedVariable`], [`Coverage::DataWithNul`]); false for the conventions
    /// that leave out the bytes saying what the data is.
    #[must_use]
    pub const fn is_whole(self) -> bool {
        matches!(
            self,
            Self::EventData | Self::PaddedVariable | Self::DataWithNul
        )
    }
}

impl From<Option<Coverage>> for Binding {
    /// Bound when some convention covers the data.
    fn from(c: Option<Coverage>) -> Self {
        if c.is_some() {
            Self::Bound
        } else {
            Self::Unbound
        }
    }
}

/// The conventions tried, in this order (whole data first).
const CONVENTIONS: [Coverage; 5] = [
    Coverage::EventData,
    Coverage::PaddedVariable,
    Coverage::DataWithNul,
    Coverage::VariableData,
    Coverage::GrubText,
];

/// Bytes of padding after a `UEFI_VARIABLE_DATA` that [`Coverage::PaddedVariable`] accepts
/// (the C structure's alignment, at most 8).
const MAX_VARIABLE_PADDING: usize = 8;

/// What one convention says was hashed, for one event.
#[derive(Debug, Clone, Copy)]
enum Preimage<'a> {
    /// The convention does not apply to this event.
    None,
    /// These bytes.
    Bytes(&'a [u8]),
    /// These bytes, then one NUL.
    WithNul(&'a [u8]),
    /// These bytes, with or without one NUL after them.
    Text(&'a [u8]),
    /// The data less its last `1..=n` bytes (`n` bytes follow the variable structure).
    Padded(&'a [u8], usize),
}

impl Preimage<'_> {
    fn matches(self, alg: HashAlg, digest: &[u8]) -> bool {
        let is = |parts: &[&[u8]]| alg.hash_parts(parts).as_bytes() == digest;
        match self {
            Self::None => false,
            Self::Bytes(b) => is(&[b]),
            Self::WithNul(b) => is(&[b, &[0]]),
            Self::Text(t) => is(&[t]) || is(&[t, &[0]]),
            Self::Padded(data, n) => (1..=n).any(|cut| {
                data.len()
                    .checked_sub(cut)
                    .and_then(|end| data.get(..end))
                    .is_some_and(|b| is(&[b]))
            }),
        }
    }
}

/// Bytes logged after the `UEFI_VARIABLE_DATA` structure at the start of `data`.
fn variable_padding(data: &[u8]) -> Option<usize> {
    let mut r = Reader::new(data);
    r.skip(16).ok()?;
    let name_units = usize::try_from(r.u64_le().ok()?).ok()?;
    let data_len = usize::try_from(r.u64_le().ok()?).ok()?;
    r.skip(name_units.checked_mul(2)?).ok()?;
    r.skip(data_len).ok()?;
    Some(r.remaining())
}

fn preimage<'a>(ev: &Event<'a>, convention: Coverage) -> Preimage<'a> {
    let ty = ev.event_type();
    match convention {
        Coverage::EventData => Preimage::Bytes(ev.data()),
        Coverage::PaddedVariable => {
            if !matches!(ev.decoded(), EventData::Variable(_)) {
                return Preimage::None;
            }
            match variable_padding(ev.data()) {
                Some(n @ 1..=MAX_VARIABLE_PADDING) => Preimage::Padded(ev.data(), n),
                _ => Preimage::None,
            }
        }
        Coverage::DataWithNul => match ev.decoded() {
            EventData::Ipl(Ipl::Utf16(_)) => Preimage::WithNul(ev.data()),
            _ => Preimage::None,
        },
        Coverage::VariableData => {
            // EV_EFI_VARIABLE_BOOT2 exists to say that the whole structure is hashed.
            if ty != EventType::EV_EFI_VARIABLE_BOOT
                && ty != EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
            {
                return Preimage::None;
            }
            match ev.decoded() {
                EventData::Variable(v) => Preimage::Bytes(v.data),
                _ => Preimage::None,
            }
        }
        Coverage::GrubText => match ev.decoded() {
            EventData::Ipl(Ipl::KernelCmdline(t) | Ipl::GrubCommand(t) | Ipl::ModuleCmdline(t)) => {
                Preimage::Text(t.trim_end_matches('\0').as_bytes())
            }
            _ => Preimage::None,
        },
    }
}

/// True when the image or region an event's digest measures is not in the log, so the data
/// cannot be bound whatever it holds (an image's Authenticode hash, a memory region).
fn unbound_by_nature(ev: &Event<'_>) -> bool {
    matches!(
        ev.event_type(),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
            | EventType::EV_EFI_BOOT_SERVICES_DRIVER
            | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER
            | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB
            | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2
    ) || !ev.is_extended()
}

impl Event<'_> {
    /// Which bytes of the data every digest is the hash of, in every bank whose algorithm
    /// this crate computes (at least one): the first convention, whole data first, under
    /// which all of them match. `None` when the data is not bound: a digest differs, the
    /// event carries no digest of a known algorithm, it is not extended (`EV_NO_ACTION`), or
    /// its digest measures an image or memory region the log does not hold.
    pub fn coverage(&self) -> Option<Coverage> {
        if unbound_by_nature(self) {
            return None;
        }
        let known = || {
            self.digests()
                .iter()
                .filter_map(|d| d.alg().map(|a| (a, d.bytes())))
        };
        // At least one bank this crate can hash, or nothing is bound.
        known().next()?;
        CONVENTIONS.into_iter().find(|c| {
            let hashed = preimage(self, *c);
            known().all(|(alg, digest)| hashed.matches(alg, digest))
        })
    }

    /// [`Event::coverage`] in `bank` alone, for a caller that knows which bank a quote
    /// covers. `None` also when the event has no digest in `bank`.
    pub fn coverage_in(&self, bank: HashAlg) -> Option<Coverage> {
        if unbound_by_nature(self) {
            return None;
        }
        let digest = self.digests().get(bank)?;
        CONVENTIONS
            .into_iter()
            .find(|c| preimage(self, *c).matches(bank, digest.as_bytes()))
    }

    /// [`Binding::Bound`] when everything decoded from the data is covered in every computable
    /// bank ([`Coverage::is_whole`]); a convention that leaves out what the data *is* (a
    /// variable's name, GRUB's prefix) is not enough: see [`Event::coverage`].
    pub fn binding(&self) -> Binding {
        Binding::from(self.coverage().filter(|c| c.is_whole()))
    }

    /// [`Event::binding`] in `bank` alone.
    pub fn binding_in(&self, bank: HashAlg) -> Binding {
        Binding::from(self.coverage_in(bank).filter(|c| c.is_whole()))
    }
}

#[cfg(test)]
mod tests;
