//! Operator actions, authorised by a bearer admin token (stored only as its SHA-256), each
//! written to the audit log.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vouch_api::{
    AttestationRecord, EkOverrideRequest, HostDetail, HostSummary, ImaPolicyAssignment,
    ImaPolicyCreated, ImaPolicySelectorAssignment,
};
use vouch_store::{Baseline, BaselineSource, EkOverride, Host, HostStatus};

use crate::error::ApiError;
use crate::state::AppState;

/// History entries shown in [`HostDetail`].
const DETAIL_HISTORY: u32 = 20;

/// An authenticated operator (the admin token's name).
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = || ApiError::Unauthorized("missing or invalid admin token".into());
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let name = state
            .store()
            .admin_token_name(&vouch_store::sha256(token.as_bytes()))
            .await?
            .ok_or_else(unauthorized)?;
        Ok(Self(name))
    }
}

/// Store status -> API status (the same six states).
#[must_use]
pub const fn api_status(s: HostStatus) -> vouch_api::HostStatus {
    match s {
        HostStatus::Enrolling => vouch_api::HostStatus::Enrolling,
        HostStatus::AwaitingApproval => vouch_api::HostStatus::AwaitingApproval,
        HostStatus::Trusted => vouch_api::HostStatus::Trusted,
        HostStatus::Untrusted => vouch_api::HostStatus::Untrusted,
        HostStatus::Unreachable => vouch_api::HostStatus::Unreachable,
        HostStatus::Removed => vouch_api::HostStatus::Removed,
    }
}

/// A host as lists show it.
#[must_use]
pub fn summary(h: &Host) -> HostSummary {
    HostSummary {
        id: h.id.to_string(),
        name: h.name.clone(),
        status: api_status(h.status),
        reasons: h.reasons.clone(),
        last_attestation: h.last_seen.map(|t| t.to_rfc3339()),
        tpm_manufacturer: h.tpm_manufacturer.clone(),
        labels: h.labels.clone(),
    }
}

fn record(a: &vouch_store::Attestation) -> AttestationRecord {
    AttestationRecord {
        at: a.at.to_rfc3339(),
        status: api_status(a.status),
        reasons: a.reasons.clone(),
        reset_count: a.counters.map(|c| c.reset_count),
        restart_count: a.counters.map(|c| c.restart_count),
        clock: a.counters.map(|c| c.clock),
    }
}

async fn host(state: &AppState, name: &str) -> Result<Host, ApiError> {
    state
        .store()
        .host_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no host named {name:?}")))
}

/// `GET /api/v1/hosts` (removed hosts are left out).
pub async fn list(state: &AppState) -> Result<Vec<HostSummary>, ApiError> {
    Ok(state
        .store()
        .list_hosts(false)
        .await?
        .iter()
        .map(summary)
        .collect())
}

/// `GET /api/v1/hosts/{name}`.
pub async fn detail(state: &AppState, name: &str) -> Result<HostDetail, ApiError> {
    let h = host(state, name).await?;
    let history = state.store().history(h.id, DETAIL_HISTORY).await?;
    let ek_certificate = h
        .ek_cert
        .as_deref()
        .and_then(|der| vouch_x509::EkCert::parse(der).ok())
        .map(|c| {
            let s = c.summary();
            format!("subject: {}; issuer: {}", s.subject, s.issuer)
        });
    Ok(HostDetail {
        summary: summary(&h),
        ak_name: hex::encode(&h.ak_name),
        ek_certificate,
        ek_override: h.ek_override_by.is_some(),
        baseline_pcrs: h.baseline.as_ref().map(|b| b.pcrs.clone()),
        machine_state: h.last_machine_state.clone(),
        history: history.iter().map(record).collect(),
    })
}

/// `GET /api/v1/hosts/{name}/history`.
pub async fn history(state: &AppState, name: &str) -> Result<Vec<AttestationRecord>, ApiError> {
    let h = host(state, name).await?;
    let limit = state.inner.config.history_limit;
    Ok(state
        .store()
        .history(h.id, limit)
        .await?
        .iter()
        .map(record)
        .collect())
}

/// Read-modify-write a host with the store's version check, then audit.
async fn change(
    state: &AppState,
    admin: &Admin,
    name: &str,
    action: &str,
    detail: serde_json::Value,
    f: impl Fn(&mut Host) -> Result<(), ApiError>,
) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    let mut h = host(state, name).await?;
    if h.status == HostStatus::Removed && action != "remove" {
        return Err(ApiError::Conflict(format!("host {name:?} was removed")));
    }
    f(&mut h)?;
    let stored = state.store().update_host(&h, now).await?;
    state.audit(&admin.0, action, name, detail, now).await?;
    state.inner.due.notify_waiters();
    Ok(summary(&stored))
}

/// `POST /api/v1/hosts/{name}/approve`.
pub async fn approve(state: &AppState, admin: &Admin, name: &str) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    change(state, admin, name, "approve", serde_json::json!({}), |h| {
        if h.status == HostStatus::Enrolling {
            return Err(ApiError::Conflict(
                "host has not activated its credential yet".into(),
            ));
        }
        if h.approved_at.is_none() {
            h.approved_at = Some(now);
            h.approved_by = Some(admin.0.clone());
            h.status = HostStatus::Unreachable;
            h.reasons = vec!["approved; awaiting first attestation".into()];
        }
        h.next_due = now;
        Ok(())
    })
    .await
}

/// `POST /api/v1/hosts/{name}/attest`: due now.
pub async fn attest(state: &AppState, admin: &Admin, name: &str) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    change(state, admin, name, "attest", serde_json::json!({}), |h| {
        h.next_due = now;
        Ok(())
    })
    .await
}

/// `DELETE /api/v1/hosts/{name}`: removed; its certificate stops working at once.
pub async fn remove(state: &AppState, admin: &Admin, name: &str) -> Result<HostSummary, ApiError> {
    change(state, admin, name, "remove", serde_json::json!({}), |h| {
        h.status = HostStatus::Removed;
        h.reasons = vec![format!("removed by {}", admin.0)];
        h.client_cert_sha256 = None;
        Ok(())
    })
    .await
}

/// `POST /api/v1/hosts/{name}/ek-override`: allow this host name to enrol without a valid
/// EK certificate chain. Such hosts are never approved automatically.
pub async fn ek_override(
    state: &AppState,
    admin: &Admin,
    name: &str,
    req: EkOverrideRequest,
) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    if req.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("an EK override needs a reason".into()));
    }
    state
        .store()
        .set_ek_override(&EkOverride {
            host_name: name.to_owned(),
            actor: admin.0.clone(),
            reason: req.reason.clone(),
            created_at: now,
        })
        .await?;
    state
        .audit(
            &admin.0,
            "ek_override",
            name,
            serde_json::json!({"reason": req.reason}),
            now,
        )
        .await?;
    Ok(match state.store().host_by_name(name).await? {
        Some(h) => summary(&h),
        None => HostSummary {
            id: String::new(),
            name: name.to_owned(),
            status: vouch_api::HostStatus::Enrolling,
            reasons: vec!["EK override recorded; the host may now enrol".into()],
            last_attestation: None,
            tpm_manufacturer: None,
            labels: Default::default(),
        },
    })
}

/// What to do with a host's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaselineAction {
    /// Accept the host's latest quoted PCRs and machine state as its baseline.
    PinCurrent,
    /// Forget the baseline: the next good attestation learns a new one.
    Reset,
}

/// Body of `POST /api/v1/hosts/{name}/baseline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BaselineRequest {
    /// `pin_current` or `reset`.
    pub action: BaselineAction,
}

/// `POST /api/v1/hosts/{name}/baseline`.
pub async fn baseline(
    state: &AppState,
    admin: &Admin,
    name: &str,
    req: BaselineRequest,
) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    let detail = serde_json::json!({"action": req.action});
    change(state, admin, name, "baseline", detail, |h| {
        match req.action {
            BaselineAction::PinCurrent => {
                let pcrs = h.last_pcrs.clone().ok_or_else(|| {
                    ApiError::Conflict("the host has no verified quote to pin".into())
                })?;
                h.baseline = Some(Baseline {
                    pcrs,
                    machine_state: h.last_machine_state.clone(),
                    source: BaselineSource::Pinned,
                    set_at: now,
                    set_by: Some(admin.0.clone()),
                });
                h.baseline_event_log.clone_from(&h.event_log);
            }
            BaselineAction::Reset => {
                h.baseline = None;
                h.baseline_event_log = None;
                h.needs_event_log = true;
            }
        }
        h.next_due = now;
        Ok(())
    })
    .await
}

/// `POST /api/v1/ima/policies`: store a runtime policy (validated and compiled first) once by
/// content; the same content gets the same id.
pub async fn add_ima_policy(
    state: &AppState,
    admin: &Admin,
    body: serde_json::Value,
) -> Result<ImaPolicyCreated, ApiError> {
    let now = Utc::now();
    let (doc, compiled) = tokio::task::spawn_blocking(move || {
        let doc: vouch_ima::policy::PolicyDocument = serde_json::from_value(body)
            .map_err(|e| ApiError::BadRequest(format!("not an IMA runtime policy: {e}")))?;
        let compiled = vouch_ima::policy::RuntimePolicy::compile(&doc)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok::<_, ApiError>((doc, compiled))
    })
    .await
    .map_err(ApiError::internal)??;
    // The canonical form (sorted maps, every field) is what is hashed and stored.
    let canonical = serde_json::to_vec(&doc).map_err(ApiError::internal)?;
    let sha = vouch_store::sha256(&canonical);
    let value: serde_json::Value =
        serde_json::from_slice(&canonical).map_err(ApiError::internal)?;
    let paths = u64::try_from(compiled.path_count()).unwrap_or(u64::MAX);
    let id = state
        .store()
        .put_ima_policy(&sha, &value, paths, now)
        .await?;
    crate::agent::cache_policy(state, sha, std::sync::Arc::new(compiled))?;
    state
        .audit(
            &admin.0,
            "ima_policy_add",
            &id.to_string(),
            serde_json::json!({"sha256": hex::encode(sha), "paths": paths}),
            now,
        )
        .await?;
    Ok(ImaPolicyCreated {
        id: id.to_string(),
        sha256: hex::encode(sha),
        paths,
    })
}

async fn policy_id(state: &AppState, id: &str) -> Result<uuid::Uuid, ApiError> {
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| ApiError::BadRequest("policy_id is not a uuid".into()))?;
    if state.store().ima_policy(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no IMA policy {id}")));
    }
    Ok(id)
}

async fn assign(state: &AppState, h: &Host, policy: Option<uuid::Uuid>) -> Result<(), ApiError> {
    let now = Utc::now();
    if !state.store().set_host_ima_policy(h.id, policy).await? {
        return Err(ApiError::NotFound(format!("no host named {:?}", h.name)));
    }
    // Attest now, under the new policy (which re-appraises the list from entry 0).
    state.store().set_due(h.id, now).await?;
    Ok(())
}

/// `POST /api/v1/hosts/{name}/ima-policy`: give a host a runtime policy (or none).
pub async fn set_ima_policy(
    state: &AppState,
    admin: &Admin,
    name: &str,
    req: ImaPolicyAssignment,
) -> Result<HostSummary, ApiError> {
    let h = host(state, name).await?;
    let policy = match &req.policy_id {
        Some(id) => Some(policy_id(state, id).await?),
        None => None,
    };
    assign(state, &h, policy).await?;
    state
        .audit(
            &admin.0,
            "ima_policy_set",
            name,
            serde_json::json!({"policy_id": policy}),
            Utc::now(),
        )
        .await?;
    state.inner.due.notify_waiters();
    Ok(summary(&host(state, name).await?))
}

/// `POST /api/v1/ima/assign`: give every current host matching a selector a runtime policy.
pub async fn assign_ima_policy(
    state: &AppState,
    admin: &Admin,
    req: ImaPolicySelectorAssignment,
) -> Result<Vec<HostSummary>, ApiError> {
    let selector: crate::config::Selector = req
        .selector
        .parse()
        .map_err(|e: crate::config::SelectorError| ApiError::BadRequest(e.to_string()))?;
    let policy = policy_id(state, &req.policy_id).await?;
    let mut out = Vec::new();
    for h in state.store().list_hosts(false).await? {
        if selector.matches(&h.name, &h.labels) {
            assign(state, &h, Some(policy)).await?;
            out.push(summary(&h));
        }
    }
    state
        .audit(
            &admin.0,
            "ima_policy_assign",
            &req.selector,
            serde_json::json!({"policy_id": policy,
                "hosts": out.iter().map(|h| h.name.clone()).collect::<Vec<_>>()}),
            Utc::now(),
        )
        .await?;
    state.inner.due.notify_waiters();
    Ok(out)
}
