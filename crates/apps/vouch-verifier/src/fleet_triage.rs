//! `GET /api/v1/fleet/triage` (`vouch fleet triage`): the live fleet's failing hosts grouped by
//! cause, so an update in progress (many hosts, one new value) is told apart from one
//! tampered host (a value nobody else measures), with the peer context of every outlier.
//!
//! Input: each host's latest engine verdict and claims, as stored with its attestation.
//! * Hosts with a non-affirming verdict are grouped by their causes
//!   ([`vouch_appraisal::triage`]); a group reaches "likely update" at max(2, 5% of the
//!   appraised hosts).
//! * Per cohort (label `cohort`, else `role`, else everyone) of at least three hosts, values
//!   that no cohort peer
//!   shares and no reference covers are outliers ([`vouch_appraisal::outliers`]), reported
//!   as "X seen on 1 of N hosts of cohort C; M measure Y, reference R".
//! * Hosts that are not trusted and have no verdict (their evidence failed before appraisal,
//!   or they are unreachable) are listed with their first reason: triage never hides them.

use std::collections::BTreeMap;

use vouch_api::fleet::{FleetTriage, NotAppraised, TriageGroupView};
use vouch_appraisal::{Assessment, Claims, Engine, PolicySet, Status, TriageGroup, Verdict};
use vouch_store::HostStatus;

use crate::error::ApiError;
use crate::fleet::fleet_claims;
use crate::state::AppState;

/// Smallest cohort whose hosts are compared with their peers: with fewer, every value is
/// "seen on 1 host" and means nothing.
const MIN_PEERS: usize = 3;

/// The label naming a host's cohort for peer comparison.
fn cohort_of(labels: &vouch_appraisal::Labels) -> String {
    ["cohort", "role"]
        .iter()
        .find_map(|k| labels.get(*k).map(|v| format!("{k}={v}")))
        .unwrap_or_else(|| "all".to_owned())
}

fn group_view(g: &TriageGroup) -> TriageGroupView {
    let causes: Vec<String> = g
        .causes
        .iter()
        .map(|c| {
            let component = c
                .component
                .map_or_else(|| "-".to_owned(), |c| c.to_string());
            let finding = serde_json::to_value(c.finding)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let value = if c.value.len() > 80 {
                format!("{}…", c.value.get(..80).unwrap_or(&c.value))
            } else {
                c.value.clone()
            };
            format!("{component} {finding} {value}")
                .trim_end()
                .to_owned()
        })
        .collect();
    let (assessment, reading) = match g.assessment {
        Assessment::LikelyUpdate => (
            "likely_update",
            "many hosts measure the same new value: an update in progress? learn or roll it out if legitimate",
        ),
        Assessment::Lifecycle => (
            "lifecycle",
            "a revoked, expired or not-yet-admitted release: update these hosts",
        ),
        Assessment::Isolated => (
            "isolated",
            "few hosts, a value their peers do not share: investigate as possible tampering",
        ),
    };
    let n = g.hosts.len();
    let explanation = format!(
        "{n} host{} ({}{}): {}; {reading}",
        if n == 1 { "" } else { "s" },
        g.hosts
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if n > 5 { ", ..." } else { "" },
        causes.first().map_or("no cause named", String::as_str),
    );
    TriageGroupView {
        assessment: assessment.to_owned(),
        hosts: g.hosts.clone(),
        causes,
        explanation,
    }
}

/// Build the triage from the stored verdicts and claims.
pub async fn triage(state: &AppState) -> Result<FleetTriage, ApiError> {
    let (entries, claims) = fleet_claims(state).await?;
    let mut verdicts = Vec::new();
    let mut not_appraised = Vec::new();
    for e in &entries {
        let verdict = e
            .verdict
            .as_ref()
            .and_then(|v| serde_json::from_value::<Verdict>(v.clone()).ok());
        match verdict {
            Some(v) => verdicts.push(v),
            None if matches!(e.status, HostStatus::Untrusted | HostStatus::Unreachable) => {
                not_appraised.push(NotAppraised {
                    host: e.name.clone(),
                    status: e.status.to_string(),
                    reason: e
                        .reasons
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "no reason recorded".to_owned()),
                });
            }
            None => {}
        }
    }
    let threshold = verdicts.len().div_ceil(20).max(2);
    let groups = vouch_appraisal::triage(&verdicts, threshold);
    let affirming = verdicts
        .iter()
        .filter(|v| v.status == Status::Affirming && v.reasons.is_empty())
        .count();
    let (refs, _) = crate::fleet::load_refs(state).await?;
    let engine = Engine::new(PolicySet::new(Vec::new()), refs, Vec::new());
    let mut cohorts: BTreeMap<String, Vec<&Claims>> = BTreeMap::new();
    for c in &claims {
        cohorts.entry(cohort_of(&c.labels)).or_default().push(c);
    }
    let mut outliers = Vec::new();
    for (name, members) in cohorts.iter().filter(|(_, m)| m.len() >= MIN_PEERS) {
        for o in vouch_appraisal::outliers(&engine, name, members) {
            outliers.push(o.to_string());
        }
    }
    Ok(FleetTriage {
        hosts: entries.len(),
        appraised: verdicts.len(),
        affirming,
        groups: groups.iter().map(group_view).collect(),
        outliers,
        not_appraised,
    })
}
