//! Fleet appraisal on each evidence (issue 4): the host's claims are derived from the verified
//! quote and its accepted event log and, when a stored policy selects the host, appraised by
//! the engine built from the stored policies, reference store and rollout campaigns
//! ([`crate::fleet`], [`crate::rollout`]).
//!
//! * A host a policy selects (by its labels plus the `detected.*` labels of its evidence) is
//!   *fleet-managed*: the engine's verdict replaces the per-host baseline (a firmware update
//!   rolled out by a campaign must not alarm because it differs from the host's first boot).
//!   All the evidence checks (quote, counters, log replay, IMA) still apply first.
//! * No policy stored, or none selects the host: no engine verdict; the host's status is the
//!   baseline appraisal's. Its claims are still stored, for learning and peer comparison.
//! * A contraindicated verdict makes the host untrusted with the verdict's reasons. A warning
//!   (known values outside their lifecycle: a candidate the host is not admitted to yet, a
//!   deprecated release past its deadline) leaves it trusted, with the verdict's reasons shown
//!   as its reasons; its EAR says warning, so a relying party that needs affirming refuses it.
//! * Claims that cannot be derived (for example a log that does not replay to the quote) while
//!   a policy selects the host by its own labels fail closed: untrusted.
//! * Claims and verdict are written in the attestation's transaction
//!   ([`vouch_store::Store::apply_attestation_full`]); an attestation without a verdict deletes
//!   the stored one, so a stored verdict always belongs to the stored status.
//!
//! The engine is cached, keyed by the `(kind, id, version)` of every document it was built
//! from. At most once per [`RECHECK`] an evidence asks the store for the newest versions (one
//! small query) and the engine is rebuilt only when one changed; a document written through
//! this replica invalidates the cache at once, so other replicas apply it within a second.
//!
//! Labels: the host's stored labels (enrolment and operator) plus `detected.tpm_vendor` and
//! `detected.tpm_model` from its EK certificate (recorded only when the certificate chained
//! to a trusted manufacturer CA) and, from bound log events, `detected.firmware_version`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use vouch_appraisal::{Campaign, Claims, Engine, Labels, Policy, PolicyDoc, PolicySet, RefStore};
use vouch_store::{
    DOC_CAMPAIGN, DOC_POLICY, DOC_REFERENCES, FleetRecord, Host, HostStatus, VerdictUpdate,
};
use vouch_tpm2::VerifiedQuote;

use crate::appraise::Appraisal;
use crate::error::ApiError;
use crate::fleet::REFERENCES_ID;
use crate::state::AppState;

/// `(kind, id, version)` of every document an engine was built from, sorted.
pub(crate) type DocKey = Vec<(String, String, u32)>;

/// How long a replica uses its engine before asking the store whether a document changed.
/// Changes made through this replica apply at once ([`invalidate`]); others within this.
pub(crate) const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The cached engine: `None` when no policy is stored.
#[derive(Debug, Default)]
pub(crate) struct EngineCache {
    built: Option<(DocKey, Option<Arc<Engine>>)>,
    checked_at: Option<std::time::Instant>,
    /// Hosts whose claims this process has written since it started: the others get theirs
    /// written at their next attestation even when nothing changed (after an upgrade or a
    /// restart, every host's claims are current after one round).
    claims_written: std::collections::HashSet<uuid::Uuid>,
}

/// Forget the cached engine: the next evidence rebuilds it (after a document write here).
pub(crate) fn invalidate(state: &AppState) {
    if let Ok(mut cache) = state.inner.engine.lock() {
        cache.built = None;
        cache.checked_at = None;
    }
}

/// Record that `host`'s claims are stored as of now.
pub(crate) fn claims_stored(state: &AppState, host: uuid::Uuid) {
    if let Ok(mut cache) = state.inner.engine.lock() {
        cache.claims_written.insert(host);
    }
}

/// Forget that `host`'s claims are current (its labels changed): they are written again at
/// its next attestation.
pub(crate) fn claims_outdated(state: &AppState, host: uuid::Uuid) {
    if let Ok(mut cache) = state.inner.engine.lock() {
        cache.claims_written.remove(&host);
    }
}

fn claims_current(state: &AppState, host: uuid::Uuid) -> bool {
    state
        .inner
        .engine
        .lock()
        .is_ok_and(|c| c.claims_written.contains(&host))
}

/// The stored documents, decoded and validated.
pub(crate) struct Documents {
    pub policies: Vec<Policy>,
    pub refs: RefStore,
    pub campaigns: Vec<(Campaign, u32)>,
    pub key: DocKey,
}

/// Load the newest version of every appraisal document.
pub(crate) async fn documents(state: &AppState) -> Result<Documents, ApiError> {
    let store = state.store();
    let mut key = DocKey::new();
    let mut policies = Vec::new();
    for d in store.latest_appraisal_documents(DOC_POLICY).await? {
        let doc: PolicyDoc = serde_json::from_value(d.json)
            .map_err(|e| ApiError::internal(format!("stored policy {}: {e}", d.id)))?;
        policies.push(
            Policy::new(doc)
                .map_err(|e| ApiError::internal(format!("stored policy {}: {e}", d.id)))?,
        );
        key.push((DOC_POLICY.to_owned(), d.id, d.version));
    }
    let (refs, refs_version) = crate::fleet::load_refs(state).await?;
    if let Some(v) = refs_version {
        key.push((DOC_REFERENCES.to_owned(), REFERENCES_ID.to_owned(), v));
    }
    let campaigns = load_campaigns(state).await?;
    for (c, v) in &campaigns {
        key.push((DOC_CAMPAIGN.to_owned(), c.id().to_owned(), *v));
    }
    key.sort();
    Ok(Documents {
        policies,
        refs,
        campaigns,
        key,
    })
}

/// The newest version of every rollout campaign, with its version.
pub(crate) async fn load_campaigns(state: &AppState) -> Result<Vec<(Campaign, u32)>, ApiError> {
    state
        .store()
        .latest_appraisal_documents(DOC_CAMPAIGN)
        .await?
        .into_iter()
        .map(|d| {
            serde_json::from_value(d.json)
                .map(|c| (c, d.version))
                .map_err(|e| ApiError::internal(format!("stored campaign {}: {e}", d.id)))
        })
        .collect()
}

impl Documents {
    /// The engine these documents make (`None` without a policy).
    pub(crate) fn engine(self) -> Option<Engine> {
        if self.policies.is_empty() {
            return None;
        }
        Some(Engine::new(
            PolicySet::new(self.policies),
            self.refs,
            self.campaigns.into_iter().map(|(c, _)| c).collect(),
        ))
    }
}

/// The engine for the newest stored documents, from the cache when none changed.
pub(crate) async fn current(state: &AppState) -> Result<Option<Arc<Engine>>, ApiError> {
    if let Ok(cache) = state.inner.engine.lock()
        && let (Some((_, engine)), Some(at)) = (&cache.built, cache.checked_at)
        && at.elapsed() < RECHECK
    {
        return Ok(engine.clone());
    }
    let mut newest = state.store().appraisal_document_versions().await?;
    newest.sort();
    if let Ok(mut cache) = state.inner.engine.lock()
        && let Some((key, engine)) = &cache.built
        && *key == newest
    {
        let engine = engine.clone();
        cache.checked_at = Some(std::time::Instant::now());
        return Ok(engine);
    }
    let docs = documents(state).await?;
    let key = docs.key.clone();
    let engine = docs.engine().map(Arc::new);
    if let Ok(mut cache) = state.inner.engine.lock() {
        cache.built = Some((key, engine.clone()));
        cache.checked_at = Some(std::time::Instant::now());
    }
    Ok(engine)
}

/// The labels appraisal sees for a host: its stored labels plus what its EK certificate says.
pub(crate) fn host_labels(host: &Host) -> Labels {
    // Reserved keys come from evidence only (rows stored before they were refused at
    // enrolment may still carry some: they are ignored).
    let mut labels: Labels = host
        .labels
        .iter()
        .filter(|(k, _)| !vouch_model::is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = &host.tpm_manufacturer {
        labels.insert("detected.tpm_vendor".into(), v.clone());
    }
    if let Some(m) = &host.tpm_model {
        labels.insert("detected.tpm_model".into(), m.clone());
    }
    labels
}

/// Claims derived before the evidence checks, kept so appraisal does not derive them again
/// when the log the checks accept is the one they came from.
#[derive(Debug, Default)]
pub(crate) struct Derived {
    log: Vec<u8>,
    claims: Option<Claims>,
}

/// Does a policy select this host? Decided before the evidence checks (they skip the per-host
/// baseline for fleet-managed hosts): with the labels of the claims the evidence's log (or the
/// stored one) gives, else the host's own labels.
pub(crate) fn selects(
    engine: &Engine,
    host: &Host,
    quote: Option<&VerifiedQuote>,
    log: Option<&[u8]>,
    derived: &mut Derived,
) -> bool {
    let claims = quote
        .zip(log.or(host.event_log.as_deref()))
        .and_then(|(q, log)| {
            let c = Claims::derive(&host.name, host_labels(host), q, log).ok()?;
            derived.log = log.to_vec();
            Some(c)
        });
    let selected = engine
        .policies()
        .select(claims.as_ref().map_or(&host_labels(host), |c| &c.labels))
        .is_ok();
    derived.claims = claims;
    selected
}

fn demote(out: &mut Appraisal, before: &Host, reasons: Vec<String>) {
    out.host.status = HostStatus::Untrusted;
    out.host.reasons.clone_from(&reasons);
    out.host.last_good = before.last_good;
    out.record.status = HostStatus::Untrusted;
    out.record.reasons = reasons;
}

/// Derive the host's claims from an accepted attestation and, when a policy selects it and the
/// evidence checks passed, appraise them; demote the host on a contraindicated verdict.
/// Returns what to store with the attestation. Claims are written only when what they are
/// derived from changed (a new log, other labels) or this process has not written them yet:
/// a steady host costs no claims write per attestation.
pub(crate) fn appraise(
    state: &AppState,
    engine: Option<&Engine>,
    before: &Host,
    out: &mut Appraisal,
    quote: Option<&VerifiedQuote>,
    derived: Derived,
    now: DateTime<Utc>,
) -> Result<FleetRecord, ApiError> {
    let mut record = FleetRecord::default();
    if engine.is_some() {
        // Policies exist: a verdict from an earlier attestation must not outlive this one.
        record.verdict = VerdictUpdate::Clear;
    }
    if !out.quote_accepted || out.host.needs_event_log {
        return Ok(record);
    }
    let (Some(quote), Some(log)) = (quote, out.host.event_log.as_deref()) else {
        return Ok(record);
    };
    let write_claims = before.event_log_sha256 != out.host.event_log_sha256
        || before.labels != out.host.labels
        || !claims_current(state, out.host.id);
    if engine.is_none() && !write_claims {
        return Ok(record);
    }
    let reuse = derived
        .claims
        .filter(|c| derived.log == log && c.labels == host_labels(&out.host));
    let claims = match reuse.map_or_else(
        || Claims::derive(&out.host.name, host_labels(&out.host), quote, log),
        Ok,
    ) {
        Ok(c) => c,
        Err(e) => {
            if out.host.status == HostStatus::Trusted
                && engine.is_some_and(|en| en.policies().select(&host_labels(&out.host)).is_ok())
            {
                let reasons = vec![format!(
                    "fleet appraisal: claims cannot be derived from the evidence: {e}"
                )];
                demote(out, before, reasons);
            }
            return Ok(record);
        }
    };
    if write_claims {
        record.claims = Some(serde_json::to_value(&claims).map_err(ApiError::internal)?);
    }
    let Some(engine) = engine else {
        return Ok(record);
    };
    if out.host.status != HostStatus::Trusted {
        return Ok(record);
    }
    let verdict = engine.appraise(&claims, now);
    if verdict.policy.is_none() {
        if let Some(r) = verdict.reasons.first() {
            tracing::debug!(host = %out.host.name, reason = %r, "no fleet policy applies");
        }
        return Ok(record);
    }
    let messages: Vec<String> = verdict.reasons.iter().map(|r| r.message.clone()).collect();
    match verdict.status {
        vouch_appraisal::Status::Contraindicated => demote(out, before, messages),
        vouch_appraisal::Status::Warning => {
            // Still trusted (known releases, outside their lifecycle: a candidate not rolled
            // out to this host, a deprecation past its deadline), but never silently.
            out.host.reasons.clone_from(&messages);
            out.record.reasons = messages;
        }
        vouch_appraisal::Status::Affirming | vouch_appraisal::Status::None => {}
    }
    record.verdict =
        VerdictUpdate::Set(serde_json::to_value(&verdict).map_err(ApiError::internal)?);
    Ok(record)
}
