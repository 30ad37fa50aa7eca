//! Log versus quote: does the log explain the PCR values a (verified) quote attests to?

use core::fmt;

use vouch_tpm2::{Digest, HashAlg, PcrValues};

use crate::TcgLogError;
use crate::log::EventLog;
use crate::replay::{Replay, initial_value, replay_with};

/// How one quoted PCR disagrees with the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Disagreement {
    /// No prefix of the log's events for this PCR replays to the quoted value.
    Differs,
    /// The first extends of this PCR replay to the quoted value and `events_after` more
    /// follow: events were logged after the quote was taken. Fetch a fresh quote.
    LogIsAheadOfQuote {
        /// Events extending this PCR that the quote has not seen.
        events_after: usize,
    },
}

/// One quoted PCR the log does not explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PcrMismatch {
    /// The bank.
    pub bank: HashAlg,
    /// The PCR index.
    pub index: u32,
    /// The value the whole log replays to (its reset value if the log never extends it).
    pub replayed: Digest,
    /// The value the quote attests to.
    pub quoted: Digest,
    /// How they disagree.
    pub disagreement: Disagreement,
}

/// The verdict when a log does not explain a quote: every disagreeing PCR, bank and index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub struct LogQuoteMismatch {
    mismatches: Vec<PcrMismatch>,
}

impl LogQuoteMismatch {
    /// The disagreeing PCRs, banks in algorithm order, PCRs ascending. Never empty.
    #[must_use]
    pub fn mismatches(&self) -> &[PcrMismatch] {
        &self.mismatches
    }
}

impl fmt::Display for LogQuoteMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event log does not match the quote:")?;
        for (i, m) in self.mismatches.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            match m.disagreement {
                Disagreement::Differs => write!(
                    f,
                    "{sep}{}[{}] replays to {} but the quote has {}",
                    m.bank, m.index, m.replayed, m.quoted
                )?,
                Disagreement::LogIsAheadOfQuote { events_after } => write!(
                    f,
                    "{sep}{}[{}] log is ahead of the quote by {events_after} event(s)",
                    m.bank, m.index
                )?,
            }
        }
        Ok(())
    }
}

/// Compare a replay with the values a quote covers. Every quoted PCR is checked; one the log
/// never extends must hold its reset value ([`Replay::expected`]). When a PCR disagrees,
/// `log` is walked again to tell a log that is merely ahead of the quote from one that
/// differs. `replay` must be the replay of `log`.
pub fn compare_with_quote(
    log: &EventLog<'_>,
    replay: &Replay,
    quoted: &PcrValues,
) -> Result<(), LogQuoteMismatch> {
    let mut mismatches: Vec<PcrMismatch> = quoted
        .iter()
        .filter_map(|(bank, index, q)| {
            let replayed = replay.expected(bank, index);
            (replayed != *q).then_some(PcrMismatch {
                bank,
                index,
                replayed,
                quoted: *q,
                disagreement: Disagreement::Differs,
            })
        })
        .collect();
    if mismatches.is_empty() {
        return Ok(());
    }

    // For each disagreeing PCR: how many of its extends were applied when the running value
    // first equalled the quoted value, and how many extends it has in all.
    let mut matched_at: Vec<Option<usize>> = mismatches
        .iter()
        .map(|m| (initial_value(m.bank, m.index, replay.pcr0_locality()) == m.quoted).then_some(0))
        .collect();
    let mut extends = vec![0usize; mismatches.len()];
    let walked = replay_with(log, |_, bank, index, value| {
        for (i, m) in mismatches.iter().enumerate() {
            if m.bank == bank
                && m.index == index
                && let Some(n) = extends.get_mut(i)
            {
                *n = n.saturating_add(1);
                if *value == m.quoted
                    && let Some(slot @ None) = matched_at.get_mut(i)
                {
                    *slot = Some(*n);
                }
            }
        }
    });
    if walked.is_ok() {
        for ((m, at), total) in mismatches.iter_mut().zip(&matched_at).zip(&extends) {
            if let Some(at) = *at
                && *total > at
            {
                m.disagreement = Disagreement::LogIsAheadOfQuote {
                    events_after: total.saturating_sub(at),
                };
            }
        }
    }
    Err(LogQuoteMismatch { mismatches })
}

impl From<LogQuoteMismatch> for TcgLogError {
    fn from(m: LogQuoteMismatch) -> Self {
        Self::QuoteMismatch(m)
    }
}
