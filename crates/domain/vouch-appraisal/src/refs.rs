//! Reference values with provenance, a validity window and a lifecycle.
//!
//! A reference value is one acceptable measurement (a digest at a slot of a component) for
//! the hosts its selector selects, grouped with its siblings under a release `name`
//! ("bios-2.19"). Lifecycle: `candidate` (accepted only for hosts a running rollout admits),
//! `active`, `deprecated` (accepted until a date, then flagged) and `revoked` (contraindicated
//! at once). When several references match one measurement the most favourable applies, so
//! revoking a release contraindicates only what no other live release vouches for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Component, Selector, Slot};

/// Where a reference value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// Learned from one host's verified evidence.
    LearnedFromHost {
        /// The host.
        host: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Proposed by a quorum of a cohort.
    LearnedFromCohort {
        /// The cohort.
        selector: Selector,
        /// Hosts that measured this value.
        agreeing: usize,
        /// Hosts in the cohort.
        hosts: usize,
        /// When.
        at: DateTime<Utc>,
    },
    /// Imported by an operator (vendor manifest, change ticket).
    Imported {
        /// Who.
        operator: String,
        /// When.
        at: DateTime<Utc>,
        /// What from (file, ticket, URL).
        source: Option<String>,
    },
}

/// The lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefState {
    /// Accepted only for hosts admitted by the named running campaign.
    Candidate {
        /// The campaign.
        campaign: Option<String>,
    },
    /// Accepted.
    Active,
    /// Accepted until `until`; hosts still measuring it afterwards are flagged (warning).
    Deprecated {
        /// The deadline.
        until: DateTime<Utc>,
    },
    /// Known bad: every host measuring it is contraindicated.
    Revoked {
        /// When.
        at: DateTime<Utc>,
        /// Why (advisory id).
        reason: String,
    },
}

impl RefState {
    /// `candidate`, `active`, ...
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Candidate { .. } => "candidate",
            Self::Active => "active",
            Self::Deprecated { .. } => "deprecated",
            Self::Revoked { .. } => "revoked",
        }
    }
}

/// One acceptable (or known-bad) measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceValue {
    /// Unique id.
    pub id: String,
    /// The release it belongs to (`bios-2.19`, `grub-2.06-1`).
    pub name: String,
    /// The component.
    pub component: Component,
    /// Where in the log it is measured.
    pub slot: Slot,
    /// The digest, lower-case hex, in the bank the claims use.
    pub digest: String,
    /// What it is, for people (version string, path).
    pub detail: Option<String>,
    /// Hosts it applies to.
    pub selector: Selector,
    /// Where it came from.
    pub provenance: Provenance,
    /// Not accepted before this time.
    pub valid_from: Option<DateTime<Utc>>,
    /// Not accepted after this time.
    pub valid_until: Option<DateTime<Utc>>,
    /// Lifecycle.
    pub state: RefState,
}

impl ReferenceValue {
    /// Is `now` inside the validity window?
    #[must_use]
    pub fn in_window(&self, now: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|f| now >= f) && self.valid_until.is_none_or(|u| now <= u)
    }
}

/// Refusals of reference-store operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Two references with one id.
    #[error("reference id {0:?} already exists")]
    DuplicateId(String),
    /// No reference has this release name.
    #[error("no reference value is named {0:?}")]
    UnknownName(String),
    /// A digest that is not lower-case hex of a known length.
    #[error(
        "reference {id:?}: digest {digest:?} is not a SHA-1/SHA-256/SHA-384/SHA-512 digest in lower-case hex"
    )]
    BadDigest {
        /// The reference.
        id: String,
        /// The digest.
        digest: String,
    },
    /// A selector with no labels.
    #[error("reference {0:?}: {1}")]
    Selector(String, crate::model::EmptySelector),
}

/// The set of reference values (what `vouch refs` manages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefStore {
    refs: Vec<ReferenceValue>,
}

fn valid_digest(d: &str) -> bool {
    matches!(d.len(), 40 | 64 | 96 | 128)
        && d.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl RefStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every reference.
    #[must_use]
    pub fn all(&self) -> &[ReferenceValue] {
        &self.refs
    }

    /// Add one reference after validating it.
    pub fn add(&mut self, r: ReferenceValue) -> Result<(), RefError> {
        if self.refs.iter().any(|x| x.id == r.id) {
            return Err(RefError::DuplicateId(r.id));
        }
        if !valid_digest(&r.digest) {
            return Err(RefError::BadDigest {
                id: r.id,
                digest: r.digest,
            });
        }
        r.selector
            .validate()
            .map_err(|e| RefError::Selector(r.id.clone(), e))?;
        self.refs.push(r);
        Ok(())
    }

    /// Add many; stops at the first refusal (earlier ones stay added).
    pub fn extend(
        &mut self,
        refs: impl IntoIterator<Item = ReferenceValue>,
    ) -> Result<(), RefError> {
        for r in refs {
            self.add(r)?;
        }
        Ok(())
    }

    fn named_mut(
        &mut self,
        name: &str,
    ) -> Result<impl Iterator<Item = &mut ReferenceValue>, RefError> {
        if !self.refs.iter().any(|r| r.name == name) {
            return Err(RefError::UnknownName(name.to_owned()));
        }
        Ok(self.refs.iter_mut().filter(move |r| r.name == name))
    }

    /// Set every reference of release `name` to `state`; returns how many changed.
    pub fn set_state(&mut self, name: &str, state: &RefState) -> Result<usize, RefError> {
        let mut n = 0usize;
        for r in self.named_mut(name)? {
            r.state = state.clone();
            n = n.saturating_add(1);
        }
        Ok(n)
    }

    /// Make release `name` active.
    pub fn activate(&mut self, name: &str) -> Result<usize, RefError> {
        self.set_state(name, &RefState::Active)
    }

    /// Deprecate release `name`: accepted until `until`, flagged afterwards.
    pub fn deprecate(&mut self, name: &str, until: DateTime<Utc>) -> Result<usize, RefError> {
        self.set_state(name, &RefState::Deprecated { until })
    }

    /// Revoke release `name`: every host measuring a value only it vouches for is
    /// contraindicated from now on. Count the affected hosts with
    /// [`crate::Engine::count_affected`].
    pub fn revoke(
        &mut self,
        name: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<usize, RefError> {
        self.set_state(
            name,
            &RefState::Revoked {
                at,
                reason: reason.to_owned(),
            },
        )
    }

    /// The distinct release names, in first-seen order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.refs {
            if !out.contains(&r.name.as_str()) {
                out.push(&r.name);
            }
        }
        out
    }

    /// References of release `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ReferenceValue> + 'a {
        self.refs.iter().filter(move |r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, digest: &str, selector: Selector) -> ReferenceValue {
        ReferenceValue {
            id: id.into(),
            name: "bios".into(),
            component: Component::PlatformFirmware,
            slot: Slot {
                pcr: 0,
                event_type: "EV_S_CRTM_VERSION".into(),
                ordinal: 0,
            },
            digest: digest.into(),
            detail: None,
            selector,
            provenance: Provenance::Imported {
                operator: "o".into(),
                at: DateTime::UNIX_EPOCH,
                source: None,
            },
            valid_from: None,
            valid_until: None,
            state: RefState::Active,
        }
    }

    #[test]
    fn refuses_duplicate_ids_bad_digests_and_empty_selectors() {
        let mut s = RefStore::new();
        let d = "ab".repeat(32);
        s.add(r("a", &d, Selector::All)).unwrap();
        assert_eq!(
            s.add(r("a", &d, Selector::All)),
            Err(RefError::DuplicateId("a".into()))
        );
        assert!(matches!(
            s.add(r("b", "xyz", Selector::All)),
            Err(RefError::BadDigest { .. })
        ));
        assert!(matches!(
            s.add(r("c", &"AB".repeat(32), Selector::All)),
            Err(RefError::BadDigest { .. })
        ));
        assert!(matches!(
            s.add(r("d", &d, Selector::Labels(Default::default()))),
            Err(RefError::Selector(..))
        ));
        assert_eq!(
            s.revoke("nope", DateTime::UNIX_EPOCH, "x"),
            Err(RefError::UnknownName("nope".into()))
        );
        assert_eq!(s.deprecate("bios", DateTime::UNIX_EPOCH), Ok(1));
    }
}
