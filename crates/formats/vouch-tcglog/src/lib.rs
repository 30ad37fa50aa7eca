//! TCG PC Client firmware event logs: framing, replay, typed decoding and machine state.
//!
//! Implements the event log of the TCG *PC Client Platform Firmware Profile Specification*
//! (PFP), Family "2.0", Level 00, Version 1.06 Revision 52 (also read by v1.05), and the
//! UEFI-specific structures of the TCG *EFI Protocol Specification* Family "2.0" Revision
//! 00.13 and UEFI 2.10 (device paths, load options, signature lists):
//!
//! * [`EventLog`] frames legacy SHA-1 logs (`TCG_PCClientPCREvent`) and crypto-agile logs
//!   (Spec ID `Spec ID Event03`, then `TCG_PCR_EVENT2`), lazily and without allocation:
//!   [`EventLog::events`] yields `Result<Event<'a>, DecodeError>`.
//! * [`Replay`] recomputes the PCRs the log claims (see [`mod@replay`] for the rules).
//! * [`EventData`] decodes an event's payload on demand; a payload that does not decode is
//!   kept as raw bytes with the reason, never dropped and never a log-level error.
//! * [`Event::coverage`] says which bytes of an event's data its digests are the hash of
//!   ([`mod@binding`]: the PFP rule and the firmware conventions seen in real logs).
//! * [`MachineState`] summarises what booted: Secure Boot, its key databases, the boot chain,
//!   kernel command line, firmware version, each from bound data only.
//! * [`compare_with_quote`] says whether the log explains a quote, naming each PCR that
//!   disagrees and recognising a log that is merely ahead of the quote.
//!
//! # Trust assumptions
//!
//! The log is untrusted input: it is written by firmware and boot loaders and handed over by
//! the attested machine itself. Parsing never panics, never reads out of bounds, and never
//! allocates based on a length field beyond the input's own size (event data is capped at
//! [`MAX_EVENT_DATA`]). Nothing in a log is evidence on its own: only a replay that equals PCR
//! values from a verified quote makes the log's digests trustworthy, and even then only the
//! *digests* are bound — event data is what the machine says it measured. Decoded payloads
//! (variable contents, paths, command lines) are tied to the quote only where the event's
//! digest is the hash of that data: [`EventData`] does not check this, [`Event::coverage`]
//! does, and [`MachineState`] takes its fields only from events that pass (listing the others
//! in [`MachineState::unverified`]) except the few it documents as informational. Policies
//! must match on digests, or on data checked this way. [`MachineState`] is a description for
//! people and policy inputs, not a verdict, and means something only for a log whose replay
//! equals a verified quote.

pub mod binding;
pub mod catalog;
pub mod data;
pub mod event_type;
pub mod log;
pub mod quote;
pub mod replay;
pub mod state;

pub use binding::{Binding, Coverage};
pub use catalog::{FirmwareCatalog, IdentifiedFirmware, KnownFirmware, KnownVolume};
pub use data::EventData;
pub use event_type::EventType;
pub use log::{
    AlgorithmSize, AlgorithmTable, Digests, Event, EventDigest, EventLog, Events, LogFormat,
    MAX_EVENT_DATA, SpecIdEvent, TRAILER_PCR,
};
pub use quote::{Disagreement, LogQuoteMismatch, PcrMismatch, compare_with_quote};
pub use replay::{Replay, replay};
pub use state::{
    BootStage, BootStageKind, KeyDatabase, MachineState, SecureBoot, StateField, UnverifiedField,
    UnverifiedReason,
};
pub use vouch_wire::{DecodeError, DecodeErrorKind};

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcgLogError {
    /// The bytes are not a well-formed TCG event log; the source says what and at which
    /// byte offset.
    #[error("not a valid TCG event log")]
    Malformed(#[from] DecodeError),
    /// The log does not explain the quoted PCR values.
    #[error(transparent)]
    QuoteMismatch(LogQuoteMismatch),
}

impl TcgLogError {
    /// Byte offset of a framing error.
    #[must_use]
    pub const fn offset(&self) -> Option<usize> {
        match self {
            Self::Malformed(e) => Some(e.offset),
            Self::QuoteMismatch(_) => None,
        }
    }
}

/// Parse and replay in one call.
pub fn parse_and_replay(bytes: &[u8]) -> Result<Replay, TcgLogError> {
    Replay::from_log(&EventLog::parse(bytes)?)
}

#[cfg(test)]
mod tests;
