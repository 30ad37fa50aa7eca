//! Peer comparison and triage across a cohort.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::appraise::{Engine, Finding, Verdict};
use crate::claims::Claims;
use crate::model::{Component, Slot};
use crate::refs::RefState;
use crate::trust::Status;

/// The values a cohort measures at one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotDistribution {
    /// Component.
    pub component: Component,
    /// Where.
    pub slot: Slot,
    /// (digest, hosts measuring it, detail), most common first.
    pub values: Vec<(String, usize, Option<String>)>,
}

/// Per component and slot, the distribution of observed values across `cohort`.
#[must_use]
pub fn distribution(cohort: &[&Claims], component: Component) -> Vec<SlotDistribution> {
    let mut m: BTreeMap<Slot, HashMap<&str, (usize, Option<&str>)>> = BTreeMap::new();
    for h in cohort {
        for e in h.component(component) {
            let v = m
                .entry(e.slot())
                .or_default()
                .entry(&e.digest)
                .or_insert((0, e.detail.as_deref()));
            v.0 = v.0.saturating_add(1);
        }
    }
    m.into_iter()
        .map(|(slot, vals)| {
            let mut values: Vec<(String, usize, Option<String>)> = vals
                .into_iter()
                .map(|(d, (n, det))| (d.to_owned(), n, det.map(str::to_owned)))
                .collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            SlotDistribution {
                component,
                slot,
                values,
            }
        })
        .collect()
}

/// A value no cohort peer shares and no reference covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outlier {
    /// Host.
    pub host: String,
    /// Cohort name (for the message).
    pub cohort: String,
    /// Component.
    pub component: Component,
    /// Where.
    pub slot: Slot,
    /// The host's value.
    pub digest: String,
    /// What the host's event says it is.
    pub detail: Option<String>,
    /// Hosts in the cohort.
    pub cohort_size: usize,
    /// The most common value at this slot and how many measure it.
    pub majority: Option<(String, usize)>,
    /// The (non-revoked) reference release covering the majority value.
    pub majority_reference: Option<String>,
}

impl fmt::Display for Outlier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} digest {} seen on 1 of {} hosts of cohort {}",
            self.host,
            self.component,
            self.slot,
            self.digest.get(..16).unwrap_or(&self.digest),
            self.cohort_size,
            self.cohort
        )?;
        if let Some((d, n)) = &self.majority {
            write!(f, "; {n} measure {}", d.get(..16).unwrap_or(d))?;
        }
        match &self.majority_reference {
            Some(r) => write!(f, ", reference {r}"),
            None => write!(f, ", no reference"),
        }
    }
}

/// Outliers of `cohort` on every component.
#[must_use]
pub fn outliers(engine: &Engine, cohort_name: &str, cohort: &[&Claims]) -> Vec<Outlier> {
    let mut out = Vec::new();
    let covered = |component: Component, slot: &Slot, digest: &str, h: &Claims| {
        engine.refs().all().iter().find(|r| {
            r.component == component
                && r.slot.pcr == slot.pcr
                && r.slot.event_type == slot.event_type
                && r.digest == digest
                && !matches!(r.state, RefState::Revoked { .. })
                && r.selector.selects(&h.labels)
        })
    };
    for component in Component::ALL {
        for d in distribution(cohort, component) {
            let majority = d.values.first().map(|(v, n, _)| (v.clone(), *n));
            for (digest, n, _) in d.values.iter().filter(|(_, n, _)| *n == 1) {
                let _ = n;
                let Some(h) = cohort.iter().find(|h| {
                    h.component(component)
                        .any(|e| e.slot() == d.slot && e.digest == *digest)
                }) else {
                    continue;
                };
                if covered(component, &d.slot, digest, h).is_some() {
                    continue;
                }
                let detail = h
                    .component(component)
                    .find(|e| e.slot() == d.slot)
                    .and_then(|e| e.detail.clone());
                let majority_reference = majority
                    .as_ref()
                    .and_then(|(m, _)| covered(component, &d.slot, m, h))
                    .map(|r| r.name.clone());
                out.push(Outlier {
                    host: h.host.clone(),
                    cohort: cohort_name.to_owned(),
                    component,
                    slot: d.slot.clone(),
                    digest: digest.clone(),
                    detail,
                    cohort_size: cohort.len(),
                    majority: majority.clone().filter(|(m, _)| m != digest),
                    majority_reference,
                });
            }
        }
    }
    out
}

/// One cause a group of failing hosts shares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Cause {
    /// Component.
    pub component: Option<Component>,
    /// Finding.
    pub finding: Finding,
    /// The measured value or the reference involved.
    pub value: String,
}

/// How a group of failing hosts reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    /// A lifecycle decision (revoked or deprecated value): expected, act on the hosts.
    Lifecycle,
    /// Many hosts measure the same new value: most likely an update in progress; learn or roll
    /// it out if it is legitimate.
    LikelyUpdate,
    /// Few hosts, a value nobody else has: investigate as possible tampering.
    Isolated,
}

/// Failing hosts that share their causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriageGroup {
    /// The causes (sorted).
    pub causes: Vec<Cause>,
    /// The hosts.
    pub hosts: Vec<String>,
    /// The reading.
    pub assessment: Assessment,
}

/// `vouch fleet triage`: group non-affirming verdicts by their causes. A group with at least
/// `update_threshold` hosts reads as an update in progress; smaller groups as isolated.
#[must_use]
pub fn triage<'a>(
    verdicts: impl IntoIterator<Item = &'a Verdict>,
    update_threshold: usize,
) -> Vec<TriageGroup> {
    let mut groups: HashMap<Vec<Cause>, Vec<String>> = HashMap::new();
    for v in verdicts {
        if v.status == Status::Affirming && v.reasons.is_empty() {
            continue;
        }
        let mut causes: Vec<Cause> = v
            .reasons
            .iter()
            .map(|r| Cause {
                component: r.component,
                finding: r.finding,
                value: match r.finding {
                    Finding::Revoked
                    | Finding::DeprecatedExpired
                    | Finding::CandidateNotAdmitted => r.reference.clone().unwrap_or_default(),
                    _ => r.actual.clone().unwrap_or_default(),
                },
            })
            .collect();
        causes.sort();
        causes.dedup();
        groups.entry(causes).or_default().push(v.host.clone());
    }
    let mut out: Vec<TriageGroup> = groups
        .into_iter()
        .map(|(causes, mut hosts)| {
            hosts.sort();
            let lifecycle = !causes.is_empty()
                && causes.iter().all(|c| {
                    matches!(
                        c.finding,
                        Finding::Revoked
                            | Finding::DeprecatedExpired
                            | Finding::CandidateNotAdmitted
                    )
                });
            let assessment = if lifecycle {
                Assessment::Lifecycle
            } else if hosts.len() >= update_threshold.max(2) {
                Assessment::LikelyUpdate
            } else {
                Assessment::Isolated
            };
            TriageGroup {
                causes,
                hosts,
                assessment,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.hosts
            .len()
            .cmp(&a.hosts.len())
            .then_with(|| a.causes.cmp(&b.causes))
    });
    out
}
