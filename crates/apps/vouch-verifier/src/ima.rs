//! Incremental IMA appraisal: the host's measurement-list tail against the quoted PCR 10,
//! resuming from the running state the verifier keeps per host and boot.
//!
//! For each evidence whose quote verified (pure: stored state + tail + quote -> reasons and the
//! next state):
//! 1. The state continues only within one boot (same TPM resetCount) and one runtime policy
//!    (same SHA-256); otherwise the replay starts over at entry 0 (a new policy re-appraises the
//!    whole list). The tail must start where the state ends, or at 0.
//! 2. [`vouch_ima::RunningPcr10::advance_to_quote`] consumes the tail until it equals the quoted
//!    PCR 10 in every quoted bank; no prefix matching is "the list diverges after entry N".
//!    On a fresh start both kernel conventions are tried and the one that matches is kept.
//! 3. The entries the quote covers are checked: template hash against the template data
//!    (else the entry is forged), the boot_aggregate (entry 0) against the quoted boot PCRs,
//!    and, when the host has a runtime policy, [`vouch_ima::policy::RuntimePolicy::appraise`]:
//!    each rejection is a reason naming the entry, its path and its digest.
//! 4. A failure sticks for the rest of the boot (the entry was measured: the file ran), until
//!    the host reboots or gets a policy under which the whole list passes.
//!
//! A host without a runtime policy still has its list replayed against PCR 10, its template
//! hashes and boot_aggregate checked; no allowlist verdict is given (nor are violations judged).
//!
//! Cost per attestation is that of the new entries only: the state is a handful of digests
//! and an entry count.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vouch_ima::policy::{RuntimePolicy, Verdict};
use vouch_ima::{Convention, IMA_PCR, ImaError, MeasurementList, RunningPcr10};
use vouch_store::ImaState;
use vouch_tpm2::{Digest, HashAlg, PcrValues};

/// Largest IMA list tail accepted in one evidence (raw bytes).
pub const MAX_IMA_TAIL: usize = 12 * 1024 * 1024;
/// Reasons listed per kind before the rest are counted.
const MAX_LISTED: usize = 5;

/// An evidence's IMA part, decoded: every entry frames.
#[derive(Debug, Clone)]
pub struct ImaTail {
    /// Index of the first entry.
    pub offset: u64,
    /// Template hash algorithm.
    pub alg: HashAlg,
    /// The raw entries.
    pub entries: Vec<u8>,
}

impl ImaTail {
    /// Check an agent's IMA part: a known template hash algorithm, bounded size, and entries
    /// that frame to the end (an agent never sends a torn entry).
    pub fn decode(ev: vouch_api::ImaEvidence) -> Result<Self, String> {
        let alg = HashAlg::from_name(&ev.template_hash_alg)
            .filter(|a| vouch_ima::TEMPLATE_HASH_ALGS.contains(a))
            .ok_or_else(|| {
                format!(
                    "unknown IMA template hash algorithm {:?}",
                    ev.template_hash_alg
                )
            })?;
        if ev.entries.0.len() > MAX_IMA_TAIL {
            return Err(format!(
                "IMA list tail is {} bytes; the limit is {MAX_IMA_TAIL}",
                ev.entries.0.len()
            ));
        }
        let list = MeasurementList::with_template_hash_alg(&ev.entries.0, alg);
        for e in list.entries_from(ev.offset) {
            e.map_err(|e| format!("malformed IMA measurement list: {e}"))?;
        }
        Ok(Self {
            offset: ev.offset,
            alg,
            entries: ev.entries.0,
        })
    }
}

/// What IMA appraisal needs besides the tail.
#[derive(Debug, Clone, Copy)]
pub struct ImaInputs<'a> {
    /// Host.
    pub host_id: Uuid,
    /// The stored state, if any.
    pub previous: Option<&'a ImaState>,
    /// The host's runtime policy and its SHA-256, if it has one.
    pub policy: Option<(&'a [u8; 32], &'a RuntimePolicy)>,
    /// The verified quote's PCRs.
    pub quoted: &'a PcrValues,
    /// The verified quote's resetCount.
    pub reset_count: u32,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The outcome: reasons (empty when everything passed) and the state to store (`None`: keep
/// the stored one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaOutcome {
    /// Why the host is not trusted, each naming the entry (and path and digest) at fault.
    pub reasons: Vec<String>,
    /// The state to store with the attestation.
    pub state: Option<ImaState>,
    /// New entries the quote covered.
    pub new_entries: u64,
}

impl ImaOutcome {
    fn refuse(reason: String) -> Self {
        Self {
            reasons: vec![reason],
            state: None,
            new_entries: 0,
        }
    }
}

fn convention_name(c: Convention) -> &'static str {
    match c {
        Convention::PerBank => "per_bank",
        Convention::Sha1Padded => "sha1_padded",
    }
}

fn convention_from(s: &str) -> Option<Convention> {
    match s {
        "per_bank" => Some(Convention::PerBank),
        "sha1_padded" => Some(Convention::Sha1Padded),
        _ => None,
    }
}

/// Collects reasons of one kind, listing the first few and counting the rest.
struct Listed {
    shown: Vec<String>,
    more: u64,
}

impl Listed {
    const fn new() -> Self {
        Self {
            shown: Vec::new(),
            more: 0,
        }
    }

    fn push(&mut self, reason: impl FnOnce() -> String) {
        if self.shown.len() < MAX_LISTED {
            self.shown.push(reason());
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    fn finish(mut self, what: &str, out: &mut Vec<String>) {
        if self.more > 0 {
            self.shown
                .push(format!("... and {} more {what}", self.more));
        }
        out.append(&mut self.shown);
    }
}

/// Appraise one evidence's IMA tail (or its absence) against the quote.
#[must_use]
pub fn appraise(tail: Option<&ImaTail>, input: &ImaInputs<'_>) -> ImaOutcome {
    let Some(tail) = tail else {
        return ImaOutcome::refuse(
            "IMA is required for this host but the evidence carries no IMA measurement list"
                .to_owned(),
        );
    };
    let policy_sha = input.policy.map(|(h, _)| h.to_vec());
    let continued = input
        .previous
        .filter(|s| s.reset_count == input.reset_count && s.policy_sha256 == policy_sha);
    let expected = continued.map_or(0, |s| s.entry_count);
    if tail.offset != expected && tail.offset != 0 {
        return ImaOutcome::refuse(format!(
            "IMA entries start at {}; the verifier has replayed {expected} entries of this boot \
             and needs the list from there (or from 0)",
            tail.offset
        ));
    }
    let banks: Vec<HashAlg> = input
        .quoted
        .banks()
        .filter(|b| input.quoted.get(*b, IMA_PCR).is_some())
        .collect();
    if banks.is_empty() {
        return ImaOutcome::refuse("the quote does not cover PCR 10 (IMA)".to_owned());
    }
    // Where the replay starts: the stored state, or PCR 10 at reset.
    let resume = continued.filter(|_| tail.offset == expected && expected > 0);
    let starts: Vec<RunningPcr10> = match resume {
        Some(s) => {
            let values: Vec<Digest> = s
                .pcr10
                .iter()
                .filter_map(|(bank, hex)| {
                    HashAlg::from_name(bank).and_then(|a| Digest::from_hex(a, hex).ok())
                })
                .collect();
            let Some(conv) = convention_from(&s.convention) else {
                return ImaOutcome::refuse(format!(
                    "stored IMA state has an unknown convention {:?}",
                    s.convention
                ));
            };
            vec![RunningPcr10::resume(&values, s.entry_count, conv)]
        }
        None => vec![
            RunningPcr10::new(&banks, Convention::PerBank),
            RunningPcr10::new(&banks, Convention::Sha1Padded),
        ],
    };
    let list = MeasurementList::with_template_hash_alg(&tail.entries, tail.alg);
    let mut last_err = None;
    let mut found = None;
    for mut run in starts {
        match run.advance_to_quote(list.entries_from(tail.offset), input.quoted) {
            Ok(m) => {
                found = Some((run, m));
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((run, m)) = found else {
        return ImaOutcome::refuse(match last_err {
            Some(ImaError::Divergence(d)) => {
                format!("IMA measurement list does not match the quoted PCR 10: {d}")
            }
            Some(e) => format!("IMA measurement list cannot be replayed: {e}"),
            None => "IMA measurement list cannot be replayed".to_owned(),
        });
    };

    let mut reasons = Vec::new();
    let mut forged = Listed::new();
    let mut rejected = Listed::new();
    let mut boot_aggregate_ok = resume.is_some_and(|s| s.boot_aggregate_ok);
    let mut first_failure: Option<String> = None;
    for e in list
        .entries_from(tail.offset)
        .take(usize::try_from(m.new_entries).unwrap_or(usize::MAX))
    {
        let Ok(e) = e else { break };
        if !e.is_violation() && !e.template_hash_matches() {
            let r = format!(
                "IMA entry {}: template hash does not match its data (a forged entry)",
                e.index()
            );
            first_failure.get_or_insert_with(|| r.clone());
            forged.push(|| r);
            continue;
        }
        if e.index() == 0 {
            match vouch_ima::check_boot_aggregate(&e, input.quoted) {
                Ok(_) => boot_aggregate_ok = true,
                Err(err) => {
                    let r = format!("IMA entry 0: {err}");
                    first_failure.get_or_insert_with(|| r.clone());
                    reasons.push(r);
                }
            }
        }
        if let Some((_, policy)) = input.policy
            && let Verdict::Rejected(rej) = policy.appraise(&e)
        {
            let r = format!("IMA {rej}");
            first_failure.get_or_insert_with(|| r.clone());
            rejected.push(|| r);
        }
    }
    forged.finish("forged IMA entries", &mut reasons);
    rejected.finish("IMA entries rejected by the runtime policy", &mut reasons);
    // A failure earlier in this boot stays: that file was measured, so it ran.
    let failure = match resume.and_then(|s| s.failure.clone()) {
        Some(earlier) => {
            reasons.insert(
                0,
                format!("IMA: earlier in this boot (until a reboot or a policy that accepts it): {earlier}"),
            );
            Some(earlier)
        }
        None => first_failure,
    };
    let pcr10: BTreeMap<String, String> = run
        .values()
        .map(|d| (d.alg().name().to_owned(), d.to_hex()))
        .collect();
    ImaOutcome {
        reasons,
        state: Some(ImaState {
            host_id: input.host_id,
            reset_count: input.reset_count,
            entry_count: m.entry_count,
            template_hash_alg: tail.alg.name().to_owned(),
            convention: convention_name(run.convention()).to_owned(),
            pcr10,
            boot_aggregate_ok,
            policy_sha256: policy_sha,
            failure,
            updated_at: input.now,
        }),
        new_entries: m.new_entries,
    }
}

/// The offset (and boot) to ask a host for, given its stored state and current policy.
#[must_use]
pub fn request(
    state: Option<&ImaState>,
    policy_sha256: Option<&[u8; 32]>,
) -> vouch_api::ImaRequest {
    match state.filter(|s| s.policy_sha256.as_deref() == policy_sha256.map(<[u8; 32]>::as_slice)) {
        Some(s) => vouch_api::ImaRequest {
            offset: s.entry_count,
            reset_count: Some(s.reset_count),
        },
        None => vouch_api::ImaRequest {
            offset: 0,
            reset_count: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(reset_count: u32, entry_count: u64, policy: Option<[u8; 32]>) -> ImaState {
        ImaState {
            host_id: Uuid::nil(),
            reset_count,
            entry_count,
            template_hash_alg: "sha1".into(),
            convention: "per_bank".into(),
            pcr10: BTreeMap::from([("sha256".to_owned(), "00".repeat(32))]),
            boot_aggregate_ok: true,
            policy_sha256: policy.map(|p| p.to_vec()),
            failure: None,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn request_continues_only_under_the_same_policy() {
        let s = state(3, 10, Some([1; 32]));
        assert_eq!(
            request(Some(&s), Some(&[1; 32])),
            vouch_api::ImaRequest {
                offset: 10,
                reset_count: Some(3)
            }
        );
        assert_eq!(request(Some(&s), Some(&[2; 32])).offset, 0);
        assert_eq!(request(Some(&s), None).offset, 0);
        assert_eq!(request(None, None).offset, 0);
    }

    #[test]
    fn tail_at_another_offset_is_refused_and_changes_nothing() {
        let s = state(3, 10, None);
        let mut quoted = PcrValues::new();
        quoted.insert(10, HashAlg::Sha256.zero());
        let input = ImaInputs {
            host_id: Uuid::nil(),
            previous: Some(&s),
            policy: None,
            quoted: &quoted,
            reset_count: 3,
            now: Utc::now(),
        };
        let tail = ImaTail {
            offset: 5,
            alg: HashAlg::Sha1,
            entries: Vec::new(),
        };
        let out = appraise(Some(&tail), &input);
        assert_eq!(out.state, None);
        assert!(out.reasons[0].contains("start at 5"), "{:?}", out.reasons);
        // No list at all, when IMA is required: refused too.
        let out = appraise(None, &input);
        assert_eq!((out.state, out.reasons.len()), (None, 1));
        // The same offset with nothing new, PCR 10 unchanged: fine, state kept as is.
        let same = ImaTail { offset: 10, ..tail };
        let out = appraise(Some(&same), &input);
        assert!(out.reasons.is_empty(), "{:?}", out.reasons);
        assert_eq!(out.state.map(|s| s.entry_count), Some(10));
    }
}
