//! PCR 10 replay per bank, incremental replay, template hash and boot_aggregate checks.
//!
//! Rules (`ima_pcr_extend()` / `ima_calc_field_array_hash()` in the kernel):
//!
//! * [`Convention::PerBank`] (Linux 5.11 and later): the kernel hashes the template input
//!   with each allocated bank's algorithm and extends that digest into the bank. A list's own
//!   template hash is the value for the bank of its size.
//! * [`Convention::Sha1Padded`] (older kernels): the SHA-1 template digest, zero-padded to the
//!   bank size, is extended into every bank.
//! * A violation (all-zero template hash) extends all-0xFF of the bank size per bank, and
//!   twenty 0xFF bytes zero-padded to the bank size under the SHA-1 padded convention.
//!
//! Only entries for the replayed PCR (10 unless the IMA policy says `pcr=`) are extended; the
//! entry count still counts every entry, so offsets stay those of the list.

use serde::Serialize;
use vouch_tpm2::{Digest, HashAlg, Hasher, PcrValues};
use vouch_wire::DecodeError;

use crate::ImaError;
use crate::list::{Entry, MeasurementList};
use crate::typed::TemplateData;

/// The PCR IMA extends by default (`CONFIG_IMA_MEASURE_PCR_IDX`).
pub const IMA_PCR: u32 = 10;

/// How the kernel computed the digest extended into banks other than SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// Each bank gets the template input hashed with its own algorithm (Linux >= 5.11).
    PerBank,
    /// Each bank gets the SHA-1 template digest zero-padded to its size (older kernels).
    Sha1Padded,
}

fn slot(alg: HashAlg) -> usize {
    match alg {
        HashAlg::Sha1 => 0,
        HashAlg::Sha256 => 1,
        HashAlg::Sha384 => 2,
        HashAlg::Sha512 => 3,
        HashAlg::Sm3_256 => 4,
    }
}

/// The running value of PCR 10 in each replayed bank, after a number of list entries.
///
/// Consuming an entry costs one template hash per bank that needs one plus one extend per
/// bank: constant per entry, whatever the list length. The state is small and `Copy`, so a
/// verifier can keep it per host and resume from it with the next tail of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningPcr10 {
    pcr: u32,
    convention: Convention,
    banks: [Option<Digest>; 5],
    entries: u64,
}

impl RunningPcr10 {
    /// PCR 10 at reset in each of `banks`.
    #[must_use]
    pub fn new(banks: &[HashAlg], convention: Convention) -> Self {
        let mut b = [None; 5];
        for alg in banks {
            if let Some(s) = b.get_mut(slot(*alg)) {
                *s = Some(alg.zero());
            }
        }
        Self {
            pcr: IMA_PCR,
            convention,
            banks: b,
            entries: 0,
        }
    }

    /// Replay entries of another PCR than 10 (an IMA policy with `pcr=`).
    #[must_use]
    pub const fn for_pcr(mut self, pcr: u32) -> Self {
        self.pcr = pcr;
        self
    }

    /// Resume from values a verifier stored: `values` (one per bank) after `entries` entries.
    #[must_use]
    pub fn resume(values: &[Digest], entries: u64, convention: Convention) -> Self {
        let mut s = Self::new(&[], convention);
        for v in values {
            if let Some(b) = s.banks.get_mut(slot(v.alg())) {
                *b = Some(*v);
            }
        }
        s.entries = entries;
        s
    }

    /// Entries consumed so far: the offset the next list tail must start at.
    #[must_use]
    pub const fn entry_count(&self) -> u64 {
        self.entries
    }

    /// The convention in use.
    #[must_use]
    pub const fn convention(&self) -> Convention {
        self.convention
    }

    /// The value of one bank.
    #[must_use]
    pub fn value(&self, bank: HashAlg) -> Option<Digest> {
        self.banks.get(slot(bank)).copied().flatten()
    }

    /// Every replayed bank's value, in algorithm order.
    pub fn values(&self) -> impl Iterator<Item = Digest> + '_ {
        self.banks.iter().filter_map(|d| *d)
    }

    /// Extend one entry. The entry must be the next one (`entry.index() == entry_count()`).
    pub fn consume(&mut self, entry: &Entry<'_>) -> Result<(), ImaError> {
        if entry.index() != self.entries {
            return Err(ImaError::OutOfOrder {
                expected: self.entries,
                got: entry.index(),
            });
        }
        self.entries = self.entries.saturating_add(1);
        if entry.pcr() != self.pcr {
            return Ok(());
        }
        let violation = entry.is_violation();
        let listed = entry.template_hash_alg();
        let mut sha1_padded: Option<Digest> = None;
        let convention = self.convention;
        for bank in self.banks.iter_mut().flatten() {
            let alg = bank.alg();
            let len = alg.digest_len();
            if violation {
                // Per bank: 0xFF of the bank size. SHA-1 padded: 20 bytes of 0xFF, then zeros.
                let mut m = [0u8; 64];
                let ff = match convention {
                    Convention::PerBank => len,
                    Convention::Sha1Padded => HashAlg::Sha1.digest_len(),
                };
                for b in m.iter_mut().take(ff) {
                    *b = 0xFF;
                }
                bank.extend(m.get(..len).unwrap_or_default());
                continue;
            }
            match convention {
                Convention::PerBank if alg == listed => bank.extend(entry.template_hash_bytes()),
                Convention::PerBank => {
                    let mut h = Hasher::new(alg);
                    entry.feed_template(&mut h);
                    bank.extend(h.finish().as_bytes());
                }
                Convention::Sha1Padded => {
                    let d = *sha1_padded.get_or_insert_with(|| {
                        if listed == HashAlg::Sha1 {
                            entry.template_hash()
                        } else {
                            entry.compute_template_hash(HashAlg::Sha1)
                        }
                    });
                    let mut padded = [0u8; 64];
                    for (dst, src) in padded.iter_mut().zip(d.as_bytes()) {
                        *dst = *src;
                    }
                    bank.extend(padded.get(..len).unwrap_or_default());
                }
            }
        }
        Ok(())
    }

    /// True when every bank that both this state and `quoted` hold agrees, and at least one
    /// does.
    fn matches(&self, quoted: &PcrValues) -> bool {
        let mut any = false;
        for v in self.values() {
            if let Some(q) = quoted.get(v.alg(), self.pcr) {
                if *q != v {
                    return false;
                }
                any = true;
            }
        }
        any
    }

    /// Advance over a list tail until the state equals the quoted PCR 10.
    ///
    /// The state before any new entry is tried first (nothing new measured); then each entry
    /// is consumed and compared. On a match the state stops there: entries after it were
    /// measured after the quote and are left for the next attestation ([`QuoteMatch::unused`]).
    /// When no prefix matches, the state is left unchanged and the error names the point of
    /// divergence: the last entry that was known good (the state's own offset).
    pub fn advance_to_quote<'a>(
        &mut self,
        tail: impl IntoIterator<Item = Result<Entry<'a>, DecodeError>>,
        quoted: &PcrValues,
    ) -> Result<QuoteMatch, ImaError> {
        let start = *self;
        let mut work = *self;
        if !quoted.banks().any(|b| work.value(b).is_some()) {
            return Err(ImaError::NoCommonBank);
        }
        let mut matched = work.matches(quoted).then_some(work);
        let mut seen = 0u64;
        let mut truncated = None;
        for e in tail {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    truncated = Some(err);
                    break;
                }
            };
            work.consume(&e)?;
            seen = seen.saturating_add(1);
            if matched.is_none() && work.matches(quoted) {
                matched = Some(work);
            }
        }
        match matched {
            Some(m) => {
                *self = m;
                Ok(QuoteMatch {
                    entry_count: m.entries,
                    new_entries: m.entries.saturating_sub(start.entries),
                    unused: seen.saturating_sub(m.entries.saturating_sub(start.entries)),
                })
            }
            None => Err(ImaError::Divergence(Divergence {
                verified_entries: start.entries,
                examined: seen,
                truncated,
            })),
        }
    }
}

/// Where a list tail met the quoted PCR 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[must_use]
pub struct QuoteMatch {
    /// Entries the state covers now (the next tail starts here).
    pub entry_count: u64,
    /// Entries of this tail that the quote covers.
    pub new_entries: u64,
    /// Entries of this tail measured after the quote (not consumed).
    pub unused: u64,
}

/// A list tail that does not reach the quoted PCR 10 at any prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divergence {
    /// Entries known good (replayed earlier to a quoted value): the divergence is after entry
    /// `verified_entries - 1`, at the first new entry or later.
    pub verified_entries: u64,
    /// New entries examined, none of whose prefixes matched.
    pub examined: u64,
    /// The tail ended in a framing error.
    pub truncated: Option<DecodeError>,
}

impl core::fmt::Display for Divergence {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "no prefix of entries {}..{} reaches the quoted PCR 10; the list diverges after entry {}",
            self.verified_entries,
            self.verified_entries.saturating_add(self.examined),
            self.verified_entries
                .checked_sub(1)
                .map_or_else(|| "(none: from the start)".to_owned(), |i| i.to_string()),
        )?;
        if let Some(t) = self.truncated {
            write!(f, " (list truncated: {t})")?;
        }
        Ok(())
    }
}

/// A whole-list replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Complete entries.
    pub entry_count: u64,
    /// The algorithm of the listed template hashes.
    pub template_hash_alg: HashAlg,
    /// PCR 10 in each replayed bank.
    pub pcr10: RunningPcr10,
    /// Indices of entries whose template hash is not the hash of their template data
    /// (violations excluded: their hash is zero by design).
    pub template_digest_mismatches: Vec<u64>,
    /// Indices of violation entries.
    pub violations: Vec<u64>,
    /// Indices of entries for PCRs other than the replayed one.
    pub other_pcr_entries: Vec<u64>,
    /// The framing error that ended the list early (a truncated last entry), if any.
    pub truncated: Option<DecodeError>,
}

/// Replay `list` into `banks` under `convention`, checking every template hash.
///
/// A framing error after at least one complete entry is kept in [`Replay::truncated`] (a
/// list read while the kernel appends, or cut short in transit); a list with no complete
/// entry is an error.
pub fn replay(
    list: &MeasurementList<'_>,
    banks: &[HashAlg],
    convention: Convention,
) -> Result<Replay, ImaError> {
    let mut pcr = RunningPcr10::new(banks, convention);
    let mut out = Replay {
        entry_count: 0,
        template_hash_alg: list.template_hash_alg(),
        pcr10: pcr,
        template_digest_mismatches: Vec::new(),
        violations: Vec::new(),
        other_pcr_entries: Vec::new(),
        truncated: None,
    };
    for e in list.entries() {
        let e = match e {
            Ok(e) => e,
            Err(err) if out.entry_count == 0 => return Err(ImaError::Malformed(err)),
            Err(err) => {
                out.truncated = Some(err);
                break;
            }
        };
        if e.is_violation() {
            out.violations.push(e.index());
        } else if !e.template_hash_matches() {
            out.template_digest_mismatches.push(e.index());
        }
        if e.pcr() != IMA_PCR {
            out.other_pcr_entries.push(e.index());
        }
        pcr.consume(&e)?;
        out.entry_count = out.entry_count.saturating_add(1);
    }
    if out.entry_count == 0 {
        return Err(ImaError::Malformed(DecodeError::new(
            vouch_wire::DecodeErrorKind::Invalid("no measurement entries"),
            0,
        )));
    }
    out.pcr10 = pcr;
    Ok(out)
}

/// The boot_aggregate entry agrees with the PCRs it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct BootAggregateOk {
    /// The bank it was computed from.
    pub bank: HashAlg,
    /// The last PCR included (7 for SHA-1, 9 otherwise).
    pub last_pcr: u32,
}

/// Check a `boot_aggregate` entry against PCR values (from a verified quote).
///
/// `ima_calc_boot_aggregate()`: the hash, with the entry's digest algorithm, of PCRs 0-7 of
/// that bank, and for banks other than SHA-1 also PCRs 8-9 (Linux 5.8 and later). An all-zero
/// digest means the kernel found no TPM; that is reported as a mismatch.
pub fn check_boot_aggregate(
    entry: &Entry<'_>,
    pcrs: &PcrValues,
) -> Result<BootAggregateOk, ImaError> {
    let data = TemplateData::decode(entry).map_err(ImaError::Malformed)?;
    if data.name != Some(b"boot_aggregate".as_slice()) {
        return Err(ImaError::BootAggregate(
            "the entry is not a boot_aggregate entry".into(),
        ));
    }
    let Some(digest) = data.digest else {
        return Err(ImaError::BootAggregate("no digest".into()));
    };
    let Some(bank) = digest.algo.and_then(crate::typed::FileHashAlg::tpm_alg) else {
        return Err(ImaError::BootAggregate(format!(
            "digest algorithm {} is not a PCR bank",
            String::from_utf8_lossy(digest.algo_name)
        )));
    };
    let last_pcr = if bank == HashAlg::Sha1 { 7 } else { 9 };
    let mut h = Hasher::new(bank);
    for i in 0..=last_pcr {
        let Some(v) = pcrs.get(bank, i) else {
            return Err(ImaError::BootAggregate(format!(
                "PCR {i} of the {bank} bank is needed but was not given"
            )));
        };
        h.update(v.as_bytes());
    }
    let want = h.finish();
    if want.as_bytes() == digest.bytes {
        Ok(BootAggregateOk { bank, last_pcr })
    } else {
        Err(ImaError::BootAggregate(format!(
            "boot_aggregate {} is not the {bank} hash of PCRs 0-{last_pcr} ({})",
            vouch_wire::hex_lower(digest.bytes),
            want.to_hex()
        )))
    }
}
