//! Linux IMA (Integrity Measurement Architecture) runtime measurement lists: parsing, PCR 10
//! replay per bank, incremental replay against quotes, and runtime policy.
//!
//! Implements the measurement list as Linux writes it to securityfs
//! (`security/integrity/ima/ima_fs.c`: `binary_runtime_measurements`, the per-bank
//! `binary_runtime_measurements_<alg>` files of Linux 6.x, and `ascii_runtime_measurements`),
//! the template descriptors of `ima_template.c` / `ima_template_lib.c` and
//! Documentation/security/IMA-templates.rst (`ima`, `ima-ng`, `ima-ngv2`, `ima-sig`,
//! `ima-sigv2`, `ima-buf`, `ima-modsig`, `evm-sig` and custom descriptors; unknown fields kept
//! raw), the template digest of `ima_calc_field_array_hash()`, the PCR extend rules of
//! `ima_pcr_extend()` before and after per-bank template digests (Linux 5.11), the
//! boot_aggregate of `ima_calc_boot_aggregate()`, and the digsig v2 signature header of
//! `security/integrity/integrity.h` as ima-evm-utils writes it.
//!
//! * [`MeasurementList`] frames a binary list lazily: [`MeasurementList::entries`] yields
//!   `Result<Entry<'a>, DecodeError>` borrowing from the input, with no allocation.
//! * [`ascii::to_binary`] turns an ASCII list into the binary form (so one code path checks
//!   both).
//! * [`replay()`] recomputes PCR 10 per bank and lists template hash mismatches and
//!   violations; [`RunningPcr10`] is the incremental state a verifier keeps per host;
//!   [`check_boot_aggregate`] ties the list to the boot PCRs.
//! * [`policy`] appraises entries against an allowlist, digests for any path, exclude globs,
//!   ima-buf rules and IMA signatures (aws-lc-rs), with a verdict per entry naming path and
//!   digest.
//!
//! # Trust assumptions
//!
//! The list is untrusted: the attested host sends it. Parsing never panics, never reads out
//! of bounds and never allocates from a length field. An entry is evidence only once the
//! replay of the list up to it equals PCR 10 from a verified quote (and the boot_aggregate
//! equals the quoted boot PCRs); even then only template *hashes* are bound by the TPM. The
//! template data (paths, file digests, signatures) is bound only where its template hash
//! matches, so [`Replay::template_digest_mismatches`] must be empty before any policy verdict
//! is believed. For banks whose digest is not listed, the replay recomputes it from the
//! template data; which [`Convention`] the host's kernel follows is a fact about that
//! kernel, not something the list proves. File digests are what the kernel computed; a
//! signature check proves that the key holder signed that digest, not that the file is
//! benign. Policy keys and certificates are trusted as configured.

pub mod ascii;
pub mod list;
pub mod policy;
pub mod replay;
pub mod template;
pub mod typed;

pub use list::{Entries, Entry, MAX_TEMPLATE_DATA, MeasurementList, TEMPLATE_HASH_ALGS};
pub use replay::{
    BootAggregateOk, Convention, Divergence, IMA_PCR, QuoteMatch, Replay, RunningPcr10,
    check_boot_aggregate, replay,
};
pub use template::{Field, FieldId, TemplateDescriptor};
pub use typed::{FileDigest, FileHashAlg, ImaSignature, TemplateData};
pub use vouch_wire::{DecodeError, DecodeErrorKind};

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImaError {
    /// The bytes are not a well-formed measurement list; the source says what and where.
    #[error("not a valid IMA measurement list")]
    Malformed(#[source] DecodeError),
    /// A line of an ASCII list could not be read.
    #[error("ASCII measurement list, line {line} (byte offset {offset}): {reason}")]
    Ascii {
        /// 1-based line number.
        line: usize,
        /// Byte offset of the line.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// An entry was fed to a running replay out of order.
    #[error("entry {got} given to a replay that expects entry {expected}")]
    OutOfOrder {
        /// The index the state expects.
        expected: u64,
        /// The index given.
        got: u64,
    },
    /// The quote holds none of the banks the state replays.
    #[error("the quote holds PCR 10 in none of the replayed banks")]
    NoCommonBank,
    /// The list does not reach the quoted PCR 10.
    #[error("{0}")]
    Divergence(Divergence),
    /// The boot_aggregate entry does not match the boot PCRs.
    #[error("boot_aggregate: {0}")]
    BootAggregate(String),
    /// A runtime policy could not be read or prepared.
    #[error("runtime policy: {0}")]
    Policy(String),
}

impl ImaError {
    /// Byte offset of a framing error.
    #[must_use]
    pub const fn offset(&self) -> Option<usize> {
        match self {
            Self::Malformed(e) => Some(e.offset),
            Self::Ascii { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// Read a list in either form: ASCII lists are converted to binary first (the returned
/// buffer), binary ones are borrowed as they are.
pub fn load(bytes: &[u8]) -> Result<(std::borrow::Cow<'_, [u8]>, vouch_tpm2::HashAlg), ImaError> {
    if ascii::looks_like_ascii(bytes) {
        let (bin, alg) = ascii::to_binary(bytes)?;
        Ok((std::borrow::Cow::Owned(bin), alg))
    } else {
        let list = MeasurementList::parse(bytes).map_err(ImaError::Malformed)?;
        Ok((std::borrow::Cow::Borrowed(bytes), list.template_hash_alg()))
    }
}

#[cfg(test)]
mod tests;
