//! Fleet appraisal on each good evidence (issue 4): when the existing checks passed (quote,
//! counters, event log replay, baseline, IMA), the host's claims are derived from the verified
//! quote and its accepted event log and appraised by the engine built from the stored policies
//! and reference store ([`crate::fleet`]).
//!
//! * No policy stored, or none selects the host (by its labels plus the `detected.*` labels of
//!   its evidence): no engine verdict; the host's status is the baseline appraisal's.
//! * A contraindicated verdict makes the host untrusted with the verdict's reasons; a warning
//!   leaves it trusted (the EAR says warning).
//! * Claims that cannot be derived (for example a log that does not replay to the quote) while
//!   a policy selects the host by its own labels fail closed: untrusted.
//! * The verdict is stored per host (`host_verdicts`) after the attestation; the EAR of a host
//!   whose latest attestation has one uses it. Any attestation without one clears it.
//!
//! The engine is rebuilt from the stored documents for each evidence (simple and always
//! current; a cache keyed by document versions is the obvious next step at fleet scale).

use chrono::{DateTime, Utc};
use vouch_appraisal::{Claims, Engine, Policy, PolicyDoc, PolicySet, RefStore, Status, Verdict};
use vouch_store::{DOC_POLICY, DOC_REFERENCES, Host, HostStatus};
use vouch_tpm2::VerifiedQuote;

use crate::appraise::Appraisal;
use crate::error::ApiError;
use crate::fleet::REFERENCES_ID;
use crate::state::AppState;

async fn load(state: &AppState) -> Result<Option<(PolicySet, RefStore)>, ApiError> {
    let store = state.store();
    let docs = store.latest_appraisal_documents(DOC_POLICY).await?;
    if docs.is_empty() {
        return Ok(None);
    }
    let mut policies = Vec::with_capacity(docs.len());
    for d in docs {
        let doc: PolicyDoc = serde_json::from_value(d.json)
            .map_err(|e| ApiError::internal(format!("stored policy {}: {e}", d.id)))?;
        policies.push(
            Policy::new(doc)
                .map_err(|e| ApiError::internal(format!("stored policy {}: {e}", d.id)))?,
        );
    }
    let refs = match store
        .latest_appraisal_documents(DOC_REFERENCES)
        .await?
        .into_iter()
        .find(|d| d.id == REFERENCES_ID)
    {
        Some(d) => serde_json::from_value(d.json)
            .map_err(|e| ApiError::internal(format!("stored reference store: {e}")))?,
        None => RefStore::new(),
    };
    Ok(Some((PolicySet::new(policies), refs)))
}

fn demote(out: &mut Appraisal, before: &Host, reasons: Vec<String>) {
    out.host.status = HostStatus::Untrusted;
    out.host.reasons.clone_from(&reasons);
    out.host.last_good = before.last_good;
    out.record.status = HostStatus::Untrusted;
    out.record.reasons = reasons;
}

/// Run the engine on an attestation that passed the existing checks; demote the host when the
/// verdict is contraindicated. Returns the verdict when a policy applied.
pub(crate) async fn appraise(
    state: &AppState,
    before: &Host,
    out: &mut Appraisal,
    quote: Option<&VerifiedQuote>,
    now: DateTime<Utc>,
) -> Result<Option<Verdict>, ApiError> {
    if out.host.status != HostStatus::Trusted {
        return Ok(None);
    }
    let (Some(quote), Some(log)) = (quote, out.host.event_log.clone()) else {
        return Ok(None);
    };
    let Some((policies, refs)) = load(state).await? else {
        return Ok(None);
    };
    let claims = match Claims::derive(&out.host.name, out.host.labels.clone(), quote, &log) {
        Ok(c) => c,
        Err(e) => {
            if policies.select(&out.host.labels).is_ok() {
                demote(
                    out,
                    before,
                    vec![format!(
                        "fleet appraisal: claims cannot be derived from the evidence: {e}"
                    )],
                );
            }
            return Ok(None);
        }
    };
    let verdict = Engine::new(policies, refs, Vec::new()).appraise(&claims, now);
    if verdict.policy.is_none() {
        if let Some(r) = verdict.reasons.first() {
            tracing::debug!(host = %out.host.name, reason = %r, "no fleet policy applies");
        }
        return Ok(None);
    }
    if verdict.status == Status::Contraindicated {
        demote(
            out,
            before,
            verdict.reasons.iter().map(|r| r.message.clone()).collect(),
        );
    }
    Ok(Some(verdict))
}

/// Record (or clear) the host's latest engine verdict after its attestation was stored.
pub(crate) async fn record(
    state: &AppState,
    host: &Host,
    verdict: Option<&Verdict>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    match verdict {
        Some(v) => {
            let json = serde_json::to_value(v).map_err(ApiError::internal)?;
            state.store().put_host_verdict(host.id, &json, now).await?;
        }
        None => state.store().clear_host_verdict(host.id).await?,
    }
    Ok(())
}
