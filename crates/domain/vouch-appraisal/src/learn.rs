//! Learning reference values from hosts: from one known-good host, or from what a quorum of
//! a cohort agrees on (with the minority shown), and the diff an acceptance makes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::claims::{Claims, EventClaim};
use crate::model::{Component, Selector, Slot};
use crate::refs::{Provenance, RefError, RefState, RefStore, ReferenceValue};

/// Why learning refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LearnError {
    /// No host to learn from.
    #[error("the cohort is empty: nothing to learn from")]
    EmptyCohort,
    /// A quorum outside 51..=100 percent.
    #[error("quorum must be a majority, 51..=100 percent; got {0}")]
    BadQuorum(u8),
    /// No component to learn.
    #[error("name at least one component to learn")]
    NoComponents,
    /// A selector with no labels.
    #[error(transparent)]
    Selector(#[from] crate::model::EmptySelector),
}

/// Proposed reference values, not yet accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// Release name they will carry.
    pub name: String,
    /// Hosts they will apply to.
    pub selector: Selector,
    /// The components learned.
    pub components: Vec<Component>,
    /// The values (state `candidate` until accepted).
    pub refs: Vec<ReferenceValue>,
}

/// A value only a minority of the cohort measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minority {
    /// Component.
    pub component: Component,
    /// Where.
    pub slot: Slot,
    /// The value.
    pub digest: String,
    /// What it is.
    pub detail: Option<String>,
    /// Hosts measuring it.
    pub hosts: Vec<String>,
    /// The value the quorum agreed on at this slot, if any.
    pub majority: Option<String>,
}

/// What a cohort agrees on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CohortProposal {
    /// Values a quorum agrees on.
    pub proposal: Proposal,
    /// Values below the quorum, with the hosts measuring them.
    pub minority: Vec<Minority>,
    /// Hosts in the cohort.
    pub hosts: usize,
}

/// What accepting a proposal changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefDiff {
    /// New values (`+ component slot digest (detail)`).
    pub added: Vec<String>,
    /// Values already present for the same hosts.
    pub unchanged: usize,
    /// Active values for the same hosts and components the proposal does not contain
    /// (candidates to deprecate once the new values are in use).
    pub not_in_proposal: Vec<String>,
}

fn reference(
    name: &str,
    selector: &Selector,
    e: &EventClaim,
    provenance: Provenance,
) -> ReferenceValue {
    let slot = e.slot();
    ReferenceValue {
        id: format!(
            "{name}/{}/{}:{}#{}/{}",
            e.component,
            slot.pcr,
            slot.event_type,
            slot.ordinal,
            e.digest.get(..16).unwrap_or(&e.digest)
        ),
        name: name.to_owned(),
        component: e.component,
        slot,
        digest: e.digest.clone(),
        detail: e.detail.clone(),
        selector: selector.clone(),
        provenance,
        valid_from: None,
        valid_until: None,
        state: RefState::Candidate { campaign: None },
    }
}

fn same_value(a: &ReferenceValue, b: &ReferenceValue) -> bool {
    a.component == b.component
        && a.slot.pcr == b.slot.pcr
        && a.slot.event_type == b.slot.event_type
        && a.digest == b.digest
        && a.selector == b.selector
}

/// Propose every value one host measures on `components`.
pub fn learn_from_host(
    claims: &Claims,
    components: &[Component],
    name: &str,
    selector: Selector,
    at: DateTime<Utc>,
) -> Result<Proposal, LearnError> {
    if components.is_empty() {
        return Err(LearnError::NoComponents);
    }
    selector.validate()?;
    let refs = claims
        .events
        .iter()
        .filter(|e| components.contains(&e.component))
        .map(|e| {
            reference(
                name,
                &selector,
                e,
                Provenance::LearnedFromHost {
                    host: claims.host.clone(),
                    at,
                },
            )
        })
        .collect();
    Ok(Proposal {
        name: name.to_owned(),
        selector,
        components: components.to_vec(),
        refs,
    })
}

/// Propose, slot by slot, the value at least `quorum_percent` of the cohort measures; show
/// every other value with its hosts as the minority.
pub fn learn_from_cohort(
    cohort: &[&Claims],
    components: &[Component],
    quorum_percent: u8,
    name: &str,
    selector: Selector,
    at: DateTime<Utc>,
) -> Result<CohortProposal, LearnError> {
    if cohort.is_empty() {
        return Err(LearnError::EmptyCohort);
    }
    if !(51..=100).contains(&quorum_percent) {
        return Err(LearnError::BadQuorum(quorum_percent));
    }
    if components.is_empty() {
        return Err(LearnError::NoComponents);
    }
    selector.validate()?;
    // (component, slot) -> digest -> (first claim, hosts)
    type Seen<'a> = BTreeMap<(Component, Slot), BTreeMap<&'a str, (&'a EventClaim, Vec<&'a str>)>>;
    let mut seen: Seen<'_> = BTreeMap::new();
    for h in cohort {
        for e in h
            .events
            .iter()
            .filter(|e| components.contains(&e.component))
        {
            let entry = seen
                .entry((e.component, e.slot()))
                .or_default()
                .entry(e.digest.as_str())
                .or_insert((e, Vec::new()));
            entry.1.push(h.host.as_str());
        }
    }
    let hosts = cohort.len();
    let mut refs = Vec::new();
    let mut minority = Vec::new();
    for ((component, slot), values) in seen {
        let top = values
            .iter()
            .max_by_key(|(_, (_, hs))| hs.len())
            .map(|(d, (e, hs))| (*d, *e, hs.len()));
        let agreed = top.filter(|(_, _, n)| {
            n.saturating_mul(100) >= hosts.saturating_mul(usize::from(quorum_percent))
        });
        if let Some((_, e, n)) = agreed {
            refs.push(reference(
                name,
                &selector,
                e,
                Provenance::LearnedFromCohort {
                    selector: selector.clone(),
                    agreeing: n,
                    hosts,
                    at,
                },
            ));
        }
        let majority = agreed.map(|(d, _, _)| d.to_owned());
        for (d, (e, hs)) in values {
            if Some(d) == majority.as_deref() {
                continue;
            }
            minority.push(Minority {
                component,
                slot: slot.clone(),
                digest: d.to_owned(),
                detail: e.detail.clone(),
                hosts: hs.iter().map(|h| (*h).to_owned()).collect(),
                majority: majority.clone(),
            });
        }
    }
    Ok(CohortProposal {
        proposal: Proposal {
            name: name.to_owned(),
            selector,
            components: components.to_vec(),
            refs,
        },
        minority,
        hosts,
    })
}

impl Proposal {
    /// What accepting would change in `store`.
    #[must_use]
    pub fn diff(&self, store: &RefStore) -> RefDiff {
        let mut d = RefDiff::default();
        for r in &self.refs {
            if store
                .all()
                .iter()
                .any(|x| same_value(x, r) && x.name == r.name)
            {
                d.unchanged = d.unchanged.saturating_add(1);
            } else {
                d.added.push(format!(
                    "+ {} {} {}{}",
                    r.component,
                    r.slot,
                    r.digest,
                    r.detail
                        .as_ref()
                        .map(|x| format!(" ({x})"))
                        .unwrap_or_default()
                ));
            }
        }
        for x in store.all().iter().filter(|x| {
            x.state == RefState::Active
                && x.selector == self.selector
                && self.components.contains(&x.component)
        }) {
            if !self.refs.iter().any(|r| same_value(x, r)) {
                d.not_in_proposal.push(format!(
                    "- {} {} {} {}{}",
                    x.name,
                    x.component,
                    x.slot,
                    x.digest,
                    x.detail
                        .as_ref()
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default()
                ));
            }
        }
        d
    }

    /// Accept into `store` with `state`; returns the diff it made. Values already present
    /// under the same name are left as they are.
    pub fn accept(self, store: &mut RefStore, state: &RefState) -> Result<RefDiff, RefError> {
        let diff = self.diff(store);
        for mut r in self.refs {
            if store
                .all()
                .iter()
                .any(|x| same_value(x, &r) && x.name == r.name)
            {
                continue;
            }
            r.state = state.clone();
            store.add(r)?;
        }
        Ok(diff)
    }
}
