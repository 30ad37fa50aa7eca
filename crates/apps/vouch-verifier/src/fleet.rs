//! Fleet appraisal documents (issue 4) stored as data: policies (`PUT /api/v1/policies/{id}`)
//! and the reference store (`PUT /api/v1/references`), each validated before it is stored,
//! versioned (a stored version is never overwritten) and audited.
//!
//! * A policy is a `vouch_appraisal::PolicyDoc`, checked with `Policy::new` (schema, rules,
//!   selector). Its `version` is its own: putting an existing version with the same content
//!   is a no-op, with other content a 409; a version older than the newest stored one is a 409.
//! * The reference store is a `vouch_appraisal::RefStore`; every value is re-added through
//!   `RefStore::add` (unique ids, digest shape, selector), and each put stores the next
//!   version of the single document `references/default`.
//!
//! Each good evidence is appraised with the newest versions of them (see `engine`).
//!
//! Operations over the fleet's latest claims (stored per host with each attestation):
//! `GET /api/v1/references` (releases and how many hosts measure each), learning from a host
//! or a cohort (`POST /api/v1/references/learn`: a proposal, its minority and its diff against
//! the stored values; stored only with `accept`), and lifecycle changes
//! (`POST /api/v1/references/{name}/{revoke|deprecate|activate}`), which report the hosts
//! that measure a value of the release no other release covers. Every change is a new
//! reference store version (optimistic: a concurrent change is a 409) and is audited.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vouch_api::fleet::{
    LearnRequest, LearnResponse, RefStateChanged, RefStateRequest, ReferencesView, ReleaseSummary,
};
use vouch_appraisal::{
    Claims, Component, Engine, Policy, PolicyDoc, PolicySet, RefState, RefStore, Selector,
    learn_from_cohort, learn_from_host,
};
use vouch_store::{DOC_POLICY, DOC_REFERENCES};

use crate::admin::Actor;
use crate::error::ApiError;
use crate::state::AppState;

/// The id of the reference store document.
pub const REFERENCES_ID: &str = "default";

/// A stored (or already stored) document version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentStored {
    /// `policy` or `references`.
    pub kind: String,
    /// Document id.
    pub id: String,
    /// Version stored.
    pub version: u32,
    /// False when this exact version was already stored with the same content.
    pub created: bool,
    /// Reference values in the document (references only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<usize>,
}

/// `PUT /api/v1/policies/{id}`.
pub async fn put_policy(
    state: &AppState,
    admin: &Actor,
    id: &str,
    body: serde_json::Value,
) -> Result<DocumentStored, ApiError> {
    let doc: PolicyDoc = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("not a policy document: {e}")))?;
    let policy = Policy::new(doc).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let doc = policy.doc();
    if doc.id != id {
        return Err(ApiError::BadRequest(format!(
            "policy id {:?} does not match the path {id:?}",
            doc.id
        )));
    }
    let json = serde_json::to_value(doc).map_err(ApiError::internal)?;
    let store = state.store();
    let newest = store
        .latest_appraisal_documents(DOC_POLICY)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .map(|d| d.version);
    if newest.is_some_and(|v| doc.version < v) {
        return Err(ApiError::Conflict(format!(
            "policy {id:?} version {} is older than the stored version {}",
            doc.version,
            newest.unwrap_or_default()
        )));
    }
    let now = Utc::now();
    let stored = |created| DocumentStored {
        kind: DOC_POLICY.to_owned(),
        id: id.to_owned(),
        version: doc.version,
        created,
        references: None,
    };
    let written = store
        .put_appraisal_document(DOC_POLICY, id, doc.version, &json, now)
        .await?;
    crate::engine::invalidate(state);
    if !written {
        let existing = store
            .appraisal_document(DOC_POLICY, id, doc.version)
            .await?;
        if existing.as_ref() == Some(&json) {
            return Ok(stored(false));
        }
        return Err(ApiError::Conflict(format!(
            "policy {id:?} version {} is stored with other content; increment the version",
            doc.version
        )));
    }
    state
        .audit(
            &admin.0,
            "policy_put",
            &format!("policy:{id}"),
            serde_json::json!({"version": doc.version, "rules": doc.rules.len()}),
            now,
        )
        .await?;
    Ok(stored(true))
}

/// `PUT /api/v1/references`.
pub async fn put_references(
    state: &AppState,
    admin: &Actor,
    body: serde_json::Value,
) -> Result<DocumentStored, ApiError> {
    let raw: RefStore = serde_json::from_value(body)
        .map_err(|e| ApiError::BadRequest(format!("not a reference store: {e}")))?;
    let mut refs = RefStore::new();
    for r in raw.all() {
        refs.add(r.clone())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let json = serde_json::to_value(&refs).map_err(ApiError::internal)?;
    let store = state.store();
    let version = store
        .latest_appraisal_documents(DOC_REFERENCES)
        .await?
        .into_iter()
        .find(|d| d.id == REFERENCES_ID)
        .map_or(Some(1), |d| d.version.checked_add(1))
        .ok_or_else(|| ApiError::Conflict("reference store version overflow".into()))?;
    let now = Utc::now();
    let written = store
        .put_appraisal_document(DOC_REFERENCES, REFERENCES_ID, version, &json, now)
        .await?;
    crate::engine::invalidate(state);
    if !written {
        return Err(ApiError::Conflict(
            "the reference store was changed concurrently; retry".into(),
        ));
    }
    let count = refs.all().len();
    state
        .audit(
            &admin.0,
            "references_put",
            &format!("references:{REFERENCES_ID}"),
            serde_json::json!({"version": version, "references": count}),
            now,
        )
        .await?;
    Ok(DocumentStored {
        kind: DOC_REFERENCES.to_owned(),
        id: REFERENCES_ID.to_owned(),
        version,
        created: true,
        references: Some(count),
    })
}

// ---- Reading, learning and lifecycle changes ----

/// Every host's latest claims, decoded (hosts without claims, or whose stored claims no
/// longer decode, are left out: they are refreshed at the host's next attestation).
pub(crate) async fn fleet_claims(
    state: &AppState,
) -> Result<(Vec<vouch_store::FleetEntry>, Vec<Claims>), ApiError> {
    let entries = state.store().fleet_snapshot().await?;
    let mut claims = Vec::with_capacity(entries.len());
    for e in &entries {
        if let Some(json) = &e.claims {
            match serde_json::from_value::<Claims>(json.clone()) {
                Ok(c) => claims.push(c),
                Err(err) => {
                    tracing::warn!(host = %e.name, error = %err, "stored claims do not decode");
                }
            }
        }
    }
    Ok((entries, claims))
}

/// The stored reference store and its version.
pub(crate) async fn load_refs(state: &AppState) -> Result<(RefStore, Option<u32>), ApiError> {
    match state
        .store()
        .latest_appraisal_documents(DOC_REFERENCES)
        .await?
        .into_iter()
        .find(|d| d.id == REFERENCES_ID)
    {
        Some(d) => Ok((
            serde_json::from_value(d.json)
                .map_err(|e| ApiError::internal(format!("stored reference store: {e}")))?,
            Some(d.version),
        )),
        None => Ok((RefStore::new(), None)),
    }
}

/// The next version of the reference store document after `previous`.
pub(crate) fn next_version(previous: Option<u32>) -> Result<u32, ApiError> {
    previous
        .map_or(Some(1), |v| v.checked_add(1))
        .ok_or_else(|| ApiError::Conflict("reference store version overflow".into()))
}

/// Store `refs` as the version after `previous` (409 when someone else stored it first).
async fn save_refs(
    state: &AppState,
    refs: &RefStore,
    previous: Option<u32>,
) -> Result<u32, ApiError> {
    let version = next_version(previous)?;
    let json = serde_json::to_value(refs).map_err(ApiError::internal)?;
    let written = state
        .store()
        .put_appraisal_document(DOC_REFERENCES, REFERENCES_ID, version, &json, Utc::now())
        .await?;
    crate::engine::invalidate(state);
    if !written {
        return Err(ApiError::Conflict(
            "the reference store was changed concurrently; retry".into(),
        ));
    }
    Ok(version)
}

/// Grace period of a deprecation when no deadline is given.
const DEFAULT_GRACE: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// An RFC 3339 deadline, or [`DEFAULT_GRACE`] from `now`.
pub(crate) fn deadline(
    text: Option<&str>,
    field: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    match text {
        Some(t) => Ok(DateTime::parse_from_rfc3339(t)
            .map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))?
            .with_timezone(&Utc)),
        None => Ok(now.checked_add_signed(DEFAULT_GRACE).unwrap_or(now)),
    }
}

pub(crate) fn parse_selector(text: &str) -> Result<Selector, ApiError> {
    let s: Selector = text
        .parse()
        .map_err(|e: vouch_appraisal::BadSelector| ApiError::BadRequest(e.to_string()))?;
    s.validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(s)
}

pub(crate) fn parse_component(text: &str) -> Result<Component, ApiError> {
    text.parse()
        .map_err(|e: vouch_appraisal::UnknownComponent| ApiError::BadRequest(e.to_string()))
}

/// An engine over `refs` alone (no policy): for questions about reference coverage.
fn coverage(refs: RefStore) -> Engine {
    Engine::new(PolicySet::new(Vec::new()), refs, Vec::new())
}

/// `GET /api/v1/references`. A host counts as measuring a release when a value of the
/// release selects it and it measures that value.
pub async fn references(state: &AppState) -> Result<ReferencesView, ApiError> {
    let (refs, version) = load_refs(state).await?;
    let (_, claims) = fleet_claims(state).await?;
    let mut releases = Vec::new();
    for name in refs.names() {
        let mut states: Vec<String> = Vec::new();
        let mut components: Vec<String> = Vec::new();
        let mut selectors: Vec<String> = Vec::new();
        let mut digests = std::collections::HashSet::new();
        let mut values = 0usize;
        let release: Vec<_> = refs.named(name).collect();
        for r in &release {
            values = values.saturating_add(1);
            for (list, item) in [
                (&mut states, r.state.name().to_owned()),
                (&mut components, r.component.to_string()),
                (&mut selectors, r.selector.to_string()),
            ] {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
            digests.insert((
                r.component,
                r.slot.pcr,
                r.slot.event_type.clone(),
                &r.digest,
            ));
        }
        let hosts_measuring = claims
            .iter()
            .filter(|c| release.iter().any(|r| r.selector.selects(&c.labels)))
            .filter(|c| {
                c.events.iter().any(|e| {
                    digests.contains(&(
                        e.component,
                        e.source.pcr,
                        e.source.event_type.clone(),
                        &e.digest,
                    ))
                })
            })
            .count();
        releases.push(ReleaseSummary {
            name: name.to_owned(),
            states,
            values,
            components,
            selectors,
            hosts_measuring,
        });
    }
    Ok(ReferencesView {
        version,
        releases,
        references: serde_json::to_value(&refs).map_err(ApiError::internal)?,
    })
}

/// `GET /api/v1/policies`: the newest version of every policy document.
pub async fn policies(state: &AppState) -> Result<Vec<serde_json::Value>, ApiError> {
    Ok(state
        .store()
        .latest_appraisal_documents(DOC_POLICY)
        .await?
        .into_iter()
        .map(|d| d.json)
        .collect())
}

fn to_values<T: Serialize>(items: &[T]) -> Result<Vec<serde_json::Value>, ApiError> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).map_err(ApiError::internal))
        .collect()
}

/// `POST /api/v1/references/learn`.
pub async fn learn(
    state: &AppState,
    admin: &Actor,
    req: LearnRequest,
) -> Result<LearnResponse, ApiError> {
    if req.name.trim().is_empty() || req.name.len() > 128 {
        return Err(ApiError::BadRequest(
            "a release name of 1-128 characters is required".into(),
        ));
    }
    let components = req
        .components
        .iter()
        .map(|c| parse_component(c))
        .collect::<Result<Vec<_>, _>>()?;
    let now = Utc::now();
    let (proposal, minority, hosts) = match (&req.from_host, &req.from_cohort) {
        (Some(host), None) => {
            let selector = parse_selector(req.selector.as_deref().ok_or_else(|| {
                ApiError::BadRequest(
                    "learning from a host needs the selector of the hosts the values are for"
                        .into(),
                )
            })?)?;
            let h = state
                .store()
                .host_by_name(host)
                .await?
                .filter(|h| h.status != vouch_store::HostStatus::Removed)
                .ok_or_else(|| ApiError::NotFound(format!("no host named {host:?}")))?;
            let (json, _) = state.store().host_claims(h.id).await?.ok_or_else(|| {
                ApiError::Conflict(format!(
                    "host {host:?} has no claims yet: it has not attested with an event log"
                ))
            })?;
            let c: Claims = serde_json::from_value(json)
                .map_err(|e| ApiError::internal(format!("stored claims of {host}: {e}")))?;
            let p = learn_from_host(&c, &components, &req.name, selector, now)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            (p, Vec::new(), 1)
        }
        (None, Some(cohort)) => {
            let cohort_sel = parse_selector(cohort)?;
            let selector = match &req.selector {
                Some(s) => parse_selector(s)?,
                None => cohort_sel.clone(),
            };
            let (_, claims) = fleet_claims(state).await?;
            let members: Vec<&Claims> = claims
                .iter()
                .filter(|c| cohort_sel.selects(&c.labels))
                .collect();
            if members.is_empty() {
                return Err(ApiError::Conflict(format!(
                    "no host selected by {cohort_sel} has claims yet"
                )));
            }
            let p = learn_from_cohort(
                &members,
                &components,
                req.quorum_percent,
                &req.name,
                selector,
                now,
            )
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            (p.proposal, p.minority, p.hosts)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of from_host and from_cohort".into(),
            ));
        }
    };
    let (mut refs, previous) = load_refs(state).await?;
    let diff = proposal.diff(&refs);
    let proposed = to_values(&proposal.refs)?;
    let minority = to_values(&minority)?;
    let mut out = LearnResponse {
        name: req.name.clone(),
        hosts,
        proposed,
        minority,
        added: diff.added.clone(),
        unchanged: diff.unchanged,
        not_in_proposal: diff.not_in_proposal.clone(),
        accepted: false,
        version: None,
    };
    if !req.accept {
        return Ok(out);
    }
    if proposal.refs.is_empty() {
        return Err(ApiError::Conflict(
            "nothing to accept: no value reached the quorum".into(),
        ));
    }
    let ref_state = match &req.candidate_for {
        Some(id) => RefState::Candidate {
            campaign: Some(id.clone()),
        },
        None => RefState::Active,
    };
    proposal
        .accept(&mut refs, &ref_state)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let version = save_refs(state, &refs, previous).await?;
    state
        .audit(
            &admin.0,
            "references_learn",
            &format!("references:{REFERENCES_ID}"),
            serde_json::json!({
                "version": version, "name": req.name, "from_host": req.from_host,
                "from_cohort": req.from_cohort, "state": ref_state.name(),
                "added": diff.added.len(), "hosts": hosts,
            }),
            now,
        )
        .await?;
    out.accepted = true;
    out.version = Some(version);
    Ok(out)
}

/// `POST /api/v1/references/{name}/{revoke|deprecate|activate}`.
pub async fn set_release_state(
    state: &AppState,
    admin: &Actor,
    name: &str,
    action: &str,
    req: RefStateRequest,
) -> Result<RefStateChanged, ApiError> {
    let now = Utc::now();
    let new_state = match action {
        "revoke" => {
            let reason = req
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    ApiError::BadRequest("revoking needs a reason (the advisory)".into())
                })?;
            RefState::Revoked {
                at: now,
                reason: reason.to_owned(),
            }
        }
        "deprecate" => RefState::Deprecated {
            until: deadline(req.until.as_deref(), "until", now)?,
        },
        "activate" => RefState::Active,
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown action {other:?} (revoke, deprecate, activate)"
            )));
        }
    };
    let (mut refs, previous) = load_refs(state).await?;
    let values = refs.set_state(name, &new_state).map_err(|e| match e {
        vouch_appraisal::RefError::UnknownName(n) => {
            ApiError::NotFound(format!("no reference release named {n:?}"))
        }
        other => ApiError::BadRequest(other.to_string()),
    })?;
    let version = save_refs(state, &refs, previous).await?;
    let (_, claims) = fleet_claims(state).await?;
    let engine = coverage(refs);
    let mut hosts: Vec<String> = claims
        .iter()
        .filter(|c| engine.count_affected(name, [*c]) == 1)
        .map(|c| c.host.clone())
        .collect();
    hosts.sort();
    let state_name = new_state.name().to_owned();
    state
        .audit(
            &admin.0,
            &format!("references_{action}"),
            &format!("release:{name}"),
            serde_json::json!({"version": version, "state": new_state, "values": values,
                "affected_hosts": hosts.len()}),
            now,
        )
        .await?;
    Ok(RefStateChanged {
        name: name.to_owned(),
        state: state_name,
        values,
        affected_hosts: hosts.len(),
        hosts,
        version,
    })
}
