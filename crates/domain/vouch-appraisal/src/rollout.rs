//! Rollouts: an update campaign makes a new release a candidate for a cohort, admitted in
//! waves (canaries first). Hosts moving from the old release to the new one stay trusted;
//! hosts measuring neither are flagged by ordinary appraisal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::claims::Claims;
use crate::model::{Component, Selector};
use crate::refs::{RefError, RefState, RefStore};

/// Why a campaign was refused or cannot move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// Waves must be non-empty, strictly increasing percentages ending at 100.
    #[error("waves must be strictly increasing percentages in 1..=100 ending at 100, got {0:?}")]
    BadWaves(Vec<u8>),
    /// A selector with no labels.
    #[error(transparent)]
    Selector(#[from] crate::model::EmptySelector),
    /// Not running (planned and not started, or already completed/aborted).
    #[error("campaign {0:?} is not running")]
    NotRunning(String),
    /// Already at the last wave.
    #[error("campaign {0:?} is already at its last wave")]
    LastWave(String),
    /// Completion before the last wave.
    #[error("campaign {0:?} has not reached its last wave")]
    NotAtLastWave(String),
    /// A reference operation failed.
    #[error(transparent)]
    Refs(#[from] RefError),
}

/// Where a campaign is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CampaignState {
    /// Created; no host admitted.
    Planned,
    /// Wave `wave` (0-based) admitted.
    Running {
        /// Current wave index.
        wave: usize,
    },
    /// The new release is active and the old one deprecated.
    Completed,
    /// Stopped; the candidate is no longer accepted anywhere.
    Aborted,
}

/// An update campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    id: String,
    selector: Selector,
    component: Component,
    from: String,
    to: String,
    waves: Vec<u8>,
    salt: String,
    state: CampaignState,
}

/// `vouch rollout status`: where the cohort's hosts are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RolloutStatus {
    /// Hosts of the cohort.
    pub hosts: usize,
    /// Measuring the old release.
    pub old: usize,
    /// Measuring the new release.
    pub new: usize,
    /// Measuring neither (or a mix, or something unknown): flagged by appraisal.
    pub unknown: usize,
}

fn bucket(salt: &str, host: &str) -> u64 {
    let d = vouch_tpm2::HashAlg::Sha256.hash_parts(&[salt.as_bytes(), b"\0", host.as_bytes()]);
    let mut b = [0u8; 8];
    for (dst, src) in b.iter_mut().zip(d.as_bytes()) {
        *dst = *src;
    }
    u64::from_be_bytes(b).checked_rem(10_000).unwrap_or(0)
}

impl Campaign {
    /// Plan a campaign moving `selector`'s hosts on `component` from release `from` to
    /// release `to`, in `waves` (percent of the cohort, e.g. `[1, 20, 100]`). `salt` decides
    /// which hosts fall in which wave (a hash of salt and host id).
    pub fn new(
        id: &str,
        selector: Selector,
        component: Component,
        from: &str,
        to: &str,
        waves: Vec<u8>,
        salt: &str,
    ) -> Result<Self, RolloutError> {
        selector.validate()?;
        let increasing = waves.windows(2).all(|w| matches!(w, [a, b] if a < b));
        if waves.is_empty()
            || !increasing
            || waves.last() != Some(&100)
            || waves.first().is_some_and(|w| *w == 0)
        {
            return Err(RolloutError::BadWaves(waves));
        }
        Ok(Self {
            id: id.to_owned(),
            selector,
            component,
            from: from.to_owned(),
            to: to.to_owned(),
            waves,
            salt: salt.to_owned(),
            state: CampaignState::Planned,
        })
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The cohort.
    #[must_use]
    pub const fn selector(&self) -> &Selector {
        &self.selector
    }
    /// The component.
    #[must_use]
    pub const fn component(&self) -> Component {
        self.component
    }
    /// The old release.
    #[must_use]
    pub fn from_release(&self) -> &str {
        &self.from
    }
    /// The new release.
    #[must_use]
    pub fn to_release(&self) -> &str {
        &self.to
    }
    /// The state.
    #[must_use]
    pub const fn state(&self) -> &CampaignState {
        &self.state
    }
    /// The waves.
    #[must_use]
    pub fn waves(&self) -> &[u8] {
        &self.waves
    }

    /// The wave (0-based) a host belongs to.
    #[must_use]
    pub fn wave_of(&self, host: &str) -> usize {
        let b = bucket(&self.salt, host);
        self.waves
            .iter()
            .position(|w| b < u64::from(*w).saturating_mul(100))
            .unwrap_or(self.waves.len())
    }

    /// Is the host admitted to the new release now?
    pub fn admits(&self, host: &str, labels: &crate::model::Labels) -> Result<(), NotAdmitted> {
        match self.state {
            CampaignState::Running { wave }
                if self.selector.selects(labels) && self.wave_of(host) <= wave =>
            {
                Ok(())
            }
            _ => Err(NotAdmitted),
        }
    }

    /// Start: admit the first wave.
    pub fn start(&mut self) -> Result<(), RolloutError> {
        match self.state {
            CampaignState::Planned => {
                self.state = CampaignState::Running { wave: 0 };
                Ok(())
            }
            _ => Err(RolloutError::NotRunning(self.id.clone())),
        }
    }

    /// Admit the next wave.
    pub fn advance(&mut self) -> Result<usize, RolloutError> {
        match self.state {
            CampaignState::Running { wave } => {
                let next = wave.saturating_add(1);
                if next >= self.waves.len() {
                    return Err(RolloutError::LastWave(self.id.clone()));
                }
                self.state = CampaignState::Running { wave: next };
                Ok(next)
            }
            _ => Err(RolloutError::NotRunning(self.id.clone())),
        }
    }

    /// After the last wave: the new release becomes active, the old one deprecated until
    /// `deprecate_until` (hosts still on it are flagged afterwards).
    pub fn complete(
        &mut self,
        refs: &mut RefStore,
        deprecate_until: DateTime<Utc>,
    ) -> Result<(), RolloutError> {
        match self.state {
            CampaignState::Running { wave } if wave.saturating_add(1) == self.waves.len() => {
                refs.activate(&self.to)?;
                refs.deprecate(&self.from, deprecate_until)?;
                self.state = CampaignState::Completed;
                Ok(())
            }
            CampaignState::Running { .. } => Err(RolloutError::NotAtLastWave(self.id.clone())),
            _ => Err(RolloutError::NotRunning(self.id.clone())),
        }
    }

    /// Stop: the candidate is accepted nowhere.
    pub fn abort(&mut self) {
        self.state = CampaignState::Aborted;
    }

    /// Where the cohort's hosts are: on the old release, the new one, or neither. A host is
    /// "new" ("old") when every event of the component matches a reference of the new (old)
    /// release and at least one matches only it.
    #[must_use]
    pub fn status<'a>(
        &self,
        refs: &RefStore,
        hosts: impl IntoIterator<Item = &'a Claims>,
    ) -> RolloutStatus {
        let digests = |name: &str| -> Vec<(String, String)> {
            refs.named(name)
                .filter(|r| {
                    r.component == self.component && !matches!(r.state, RefState::Revoked { .. })
                })
                .map(|r| (r.slot.event_type.clone(), r.digest.clone()))
                .collect()
        };
        let old = digests(&self.from);
        let new = digests(&self.to);
        let mut s = RolloutStatus::default();
        for h in hosts
            .into_iter()
            .filter(|h| self.selector.selects(&h.labels))
        {
            s.hosts = s.hosts.saturating_add(1);
            let (mut only_old, mut only_new, mut unknown) = (false, false, false);
            for e in h.component(self.component) {
                let key = (e.source.event_type.clone(), e.digest.clone());
                match (old.contains(&key), new.contains(&key)) {
                    (true, false) => only_old = true,
                    (false, true) => only_new = true,
                    (true, true) => {}
                    (false, false) => unknown = true,
                }
            }
            match (unknown, only_old, only_new) {
                (false, true, false) => s.old = s.old.saturating_add(1),
                (false, false, true) => s.new = s.new.saturating_add(1),
                _ => s.unknown = s.unknown.saturating_add(1),
            }
        }
        s
    }
}

/// The host is not (yet) admitted to a campaign's new release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("host not admitted by the campaign")]
pub struct NotAdmitted;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_waves() {
        let c = |w: Vec<u8>| {
            Campaign::new(
                "c",
                Selector::All,
                Component::PlatformFirmware,
                "a",
                "b",
                w,
                "s",
            )
        };
        for bad in [
            vec![],
            vec![0, 100],
            vec![20, 1, 100],
            vec![1, 20],
            vec![1, 1, 100],
            vec![101],
        ] {
            assert!(matches!(c(bad), Err(RolloutError::BadWaves(_))));
        }
        assert!(c(vec![1, 20, 100]).is_ok());
        assert!(c(vec![100]).is_ok());
    }

    #[test]
    fn waves_admit_growing_shares_and_nothing_before_start() {
        let mut c = Campaign::new(
            "c",
            Selector::All,
            Component::PlatformFirmware,
            "a",
            "b",
            vec![1, 20, 100],
            "salt",
        )
        .unwrap();
        let labels = crate::model::Labels::new();
        let hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}")).collect();
        let admitted = |c: &Campaign| {
            hosts
                .iter()
                .filter(|h| c.admits(h, &labels).is_ok())
                .count()
        };
        assert_eq!(admitted(&c), 0);
        c.start().unwrap();
        let w0 = admitted(&c);
        assert!((50..=150).contains(&w0), "{w0}");
        c.advance().unwrap();
        let w1 = admitted(&c);
        assert!((1800..=2200).contains(&w1), "{w1}");
        c.advance().unwrap();
        assert_eq!(admitted(&c), 10_000);
        assert!(matches!(c.advance(), Err(RolloutError::LastWave(_))));
        c.abort();
        assert_eq!(admitted(&c), 0);
    }
}
