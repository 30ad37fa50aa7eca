//! Replay: recompute the PCR values a log claims, as the TPM would have extended them.
//!
//! Rules (PC Client PFP v1.06 §10.4.5 and §3.3.4): every event except `EV_NO_ACTION` is
//! extended into each bank it carries a digest for (`PCR = H(PCR || digest)`); a bank an event
//! lacks is not extended. PCRs start at zero, except PCR 0, which starts at `00..03` after a
//! `StartupLocality` event with locality 3 and at `00..04` when the log has an
//! `EV_EFI_HCRTM_EVENT`. The result holds only PCRs the log extends.

use vouch_tpm2::{Digest, HashAlg, PcrValues};
use vouch_wire::DecodeError;

use crate::TcgLogError;
use crate::event_type::EventType;
use crate::log::{Event, EventLog};

const BANKS: usize = HashAlg::ALL.len();
const PCRS: usize = vouch_tpm2::pcr::MAX_PCRS as usize;
const STARTUP_LOCALITY_SIG: &[u8; 16] = b"StartupLocality\0";
/// The H-CRTM start value of PCR 0 (PC Client PFP §3.3.4.4).
const HCRTM_LOCALITY: u8 = 4;

/// The outcome of replaying a whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pcrs: PcrValues,
    event_count: usize,
    pcr0_locality: u8,
}

impl Replay {
    /// Replay `log`. Fails if any event cannot be framed.
    pub fn from_log(log: &EventLog<'_>) -> Result<Self, TcgLogError> {
        Ok(replay_with(log, |_, _, _, _| {})?)
    }

    /// The PCR values the log extends, per bank.
    #[must_use]
    pub const fn pcrs(&self) -> &PcrValues {
        &self.pcrs
    }

    /// Consume into the PCR values.
    #[must_use]
    pub fn into_pcrs(self) -> PcrValues {
        self.pcrs
    }

    /// Every event in the log, including the Spec ID event and any `EV_NO_ACTION`.
    #[must_use]
    pub const fn event_count(&self) -> usize {
        self.event_count
    }

    /// The locality PCR 0 started at (0, 3 after `StartupLocality` 3, 4 with H-CRTM).
    #[must_use]
    pub const fn pcr0_locality(&self) -> u8 {
        self.pcr0_locality
    }

    /// The value a PCR holds according to the log: the replayed value if the log extends it,
    /// otherwise its value after `TPM2_Startup` (zero; PCR 0 at its start locality; PCRs
    /// 17-22, which only a dynamic launch resets to zero, all ones: PC Client PTP §4.6.2).
    #[must_use]
    pub fn expected(&self, bank: HashAlg, index: u32) -> Digest {
        self.pcrs
            .get(bank, index)
            .copied()
            .unwrap_or_else(|| reset_value(bank, index, self.pcr0_locality))
    }
}

/// The value an extend chain starts from: zero, or PCR 0's start locality.
pub(crate) fn initial_value(bank: HashAlg, index: u32, pcr0_locality: u8) -> Digest {
    if index == 0 {
        Digest::locality_start(bank, pcr0_locality)
    } else {
        bank.zero()
    }
}

/// The value a PCR the log never extends holds after `TPM2_Startup`.
pub(crate) fn reset_value(bank: HashAlg, index: u32, pcr0_locality: u8) -> Digest {
    match index {
        17..=22 => {
            let ones = [0xFFu8; vouch_tpm2::MAX_DIGEST];
            Digest::new(bank, ones.get(..bank.digest_len()).unwrap_or_default())
                .unwrap_or_else(|_| bank.zero())
        }
        _ => initial_value(bank, index, pcr0_locality),
    }
}

/// Replay `log`; the shorthand for [`Replay::from_log`].
pub fn replay(log: &EventLog<'_>) -> Result<Replay, TcgLogError> {
    Replay::from_log(log)
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

/// The locality an event sets PCR 0's start value to, if it is a locality event.
fn locality_of(ev: &Event<'_>) -> Option<u8> {
    if ev.event_type() == EventType::EV_EFI_HCRTM_EVENT {
        return Some(HCRTM_LOCALITY);
    }
    if ev.event_type() == EventType::EV_NO_ACTION {
        let data = ev.data();
        if data.len() == STARTUP_LOCALITY_SIG.len().saturating_add(1)
            && data.starts_with(STARTUP_LOCALITY_SIG)
        {
            return data.last().copied();
        }
    }
    None
}

/// The replay engine. `on_extend(event_index, bank, pcr, new_value)` sees every extend.
/// No allocation until the final [`PcrValues`] is built.
pub(crate) fn replay_with(
    log: &EventLog<'_>,
    mut on_extend: impl FnMut(usize, HashAlg, u32, &Digest),
) -> Result<Replay, DecodeError> {
    let mut values = [[HashAlg::Sha1.zero(); PCRS]; BANKS];
    let mut extended = [0u32; BANKS];
    let mut pcr0_locality = 0u8;
    let mut pcr0_started = false;
    let mut event_count = 0usize;

    for ev in log.events() {
        let ev = ev?;
        event_count = event_count.saturating_add(1);
        if let Some(loc) = locality_of(&ev)
            && !pcr0_started
        {
            pcr0_locality = loc;
        }
        if !ev.is_extended() {
            continue;
        }
        let pcr = ev.pcr();
        let Ok(pcr_slot) = usize::try_from(pcr) else {
            continue;
        };
        let bit = 1u32.checked_shl(pcr).unwrap_or(0);
        for d in ev.digests().iter() {
            let Some(alg) = d.alg() else { continue };
            let s = slot(alg);
            let (Some(bank), Some(mask)) = (values.get_mut(s), extended.get_mut(s)) else {
                continue;
            };
            let Some(value) = bank.get_mut(pcr_slot) else {
                continue;
            };
            if *mask & bit == 0 {
                *value = initial_value(alg, pcr, pcr0_locality);
                *mask |= bit;
                if pcr == 0 {
                    pcr0_started = true;
                }
            }
            let mut h = vouch_tpm2::Hasher::new(alg);
            h.update(value.as_bytes());
            h.update(d.bytes());
            *value = h.finish();
            on_extend(ev.index(), alg, pcr, value);
        }
    }

    let mut pcrs = PcrValues::new();
    for alg in HashAlg::ALL {
        let s = slot(alg);
        let (Some(bank), Some(mask)) = (values.get(s), extended.get(s)) else {
            continue;
        };
        for (i, v) in bank.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if mask & 1u32.checked_shl(i).unwrap_or(0) != 0 {
                pcrs.insert(i, *v);
            }
        }
    }
    Ok(Replay {
        pcrs,
        event_count,
        pcr0_locality,
    })
}
