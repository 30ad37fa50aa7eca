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
use vouch_store::{Baseline, BaselineSource, EkOverride, Host, HostStatus, Role};

use crate::error::ApiError;
use crate::state::AppState;

/// History entries shown in [`HostDetail`].
const DETAIL_HISTORY: u32 = 20;

/// A caller holding a token of role `admin` (the token's name).
#[derive(Debug, Clone)]
pub struct Admin(pub String);

/// A caller holding a token of role `operator` or above (the token's name).
#[derive(Debug, Clone)]
pub struct Operator(pub String);

/// A caller holding any valid token: `reader` or above (the token's name).
#[derive(Debug, Clone)]
pub struct Reader(pub String);

/// Who did an operator action (the token's name), as the audit log records it.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl From<Admin> for Actor {
    fn from(a: Admin) -> Self {
        Self(a.0)
    }
}

impl From<Operator> for Actor {
    fn from(o: Operator) -> Self {
        Self(o.0)
    }
}

/// Check the bearer token: rate-limited per source before the store is asked, unknown and
/// expired tokens are 401, a role below `need` is 403.
pub(crate) async fn authenticate(
    parts: &Parts,
    state: &AppState,
    need: Role,
) -> Result<String, ApiError> {
    let peer = parts.extensions.get::<crate::agent::PeerAddr>().copied();
    state.inner.limits.check(
        crate::ratelimit::Class::Admin,
        &crate::agent::PeerAddr::source(peer),
    )?;
    let unauthorized = || ApiError::Unauthorized("missing or invalid API token".into());
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let t = state
        .store()
        .token(&vouch_store::sha256(token.as_bytes()))
        .await?
        .ok_or_else(unauthorized)?;
    if t.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::Unauthorized(format!(
            "token {:?} has expired",
            t.name
        )));
    }
    if t.role < need {
        return Err(ApiError::Forbidden(format!(
            "token {:?} has role {}; this needs {need}",
            t.name, t.role
        )));
    }
    Ok(t.name)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, Role::Admin).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, Role::Operator).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, Role::Reader).await.map(Self)
    }
}

/// A host as lists show it.
#[must_use]
pub fn summary(h: &Host) -> HostSummary {
    HostSummary {
        id: h.id.to_string(),
        name: h.name.clone(),
        status: h.status,
        reasons: h.reasons.clone(),
        last_attestation: h.last_seen.map(|t| t.to_rfc3339()),
        tpm_manufacturer: h.tpm_manufacturer.clone(),
        labels: h.labels.clone(),
    }
}

fn record(a: &vouch_store::Attestation) -> AttestationRecord {
    AttestationRecord {
        at: a.at.to_rfc3339(),
        status: a.status,
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

/// `GET /api/v1/hosts` (removed hosts are left out unless `all`).
pub async fn list(state: &AppState, all: bool) -> Result<Vec<HostSummary>, ApiError> {
    Ok(state
        .store()
        .list_hosts(all)
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
    admin: &Actor,
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
    let before = h.status;
    f(&mut h)?;
    before.check_transition(h.status)?;
    let stored = state.store().update_host(&h, now).await?;
    state.audit(&admin.0, action, name, detail, now).await?;
    state.inner.due.notify_waiters();
    Ok(summary(&stored))
}

/// `POST /api/v1/hosts/{name}/approve`.
pub async fn approve(state: &AppState, admin: &Actor, name: &str) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    change(state, admin, name, "approve", serde_json::json!({}), |h| {
        if h.status == HostStatus::Enrolling {
            return Err(ApiError::Conflict(
                "host has not activated its credential yet".into(),
            ));
        }
        if let Some(labels) = h.pending_labels.take() {
            // The labels asked for at re-enrolment take effect now; the next evidence must
            // carry a log so claims are derived again under them.
            h.labels = labels;
            h.needs_event_log = true;
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
    .inspect(|s| {
        if let Ok(id) = uuid::Uuid::parse_str(&s.id) {
            crate::engine::claims_outdated(state, id);
        }
    })
}

/// `POST /api/v1/hosts/{name}/readmit`: a removed host's name and EK may enrol again. It
/// starts over (no baseline) and waits for an operator's approval: no auto-approval rule
/// brings back a host an operator removed.
pub async fn readmit(state: &AppState, admin: &Actor, name: &str) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    let mut h = host(state, name).await?;
    if h.status != HostStatus::Removed {
        return Err(ApiError::Conflict(format!(
            "host {name:?} is not removed (status {})",
            h.status
        )));
    }
    h.readmitted_by = Some(admin.0.clone());
    h.status.check_transition(HostStatus::Removed)?;
    h.reasons = vec![format!(
        "removed; re-admitted by {}: may enrol again, then waits for approval",
        admin.0
    )];
    let stored = state.store().update_host(&h, now).await?;
    state
        .audit(&admin.0, "readmit", name, serde_json::json!({}), now)
        .await?;
    Ok(summary(&stored))
}

/// `POST /api/v1/hosts/{name}/clear`: lift a sticky finding (a detected TPM state rollback).
/// The host's counters are re-based on its next quote; it attests at once.
pub async fn clear(
    state: &AppState,
    admin: &Actor,
    name: &str,
    req: vouch_api::ClearRequest,
) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    if req.reason.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "clearing a finding needs a reason".into(),
        ));
    }
    let before = host(state, name).await?;
    let Some(finding) = before.hold_reason.clone() else {
        return Err(ApiError::Conflict(format!(
            "host {name:?} has no finding to clear"
        )));
    };
    let detail = serde_json::json!({"reason": req.reason, "finding": finding});
    change(state, admin, name, "clear", detail, |h| {
        h.hold_reason = None;
        h.counters = None;
        h.next_due = now;
        Ok(())
    })
    .await
}

/// `GET /api/v1/enrolments`: pending enrolments and recent refusals.
pub async fn enrolments(state: &AppState) -> Result<vouch_api::EnrolmentsView, ApiError> {
    let now = Utc::now();
    let pending = state
        .store()
        .pending_enrolments(now, 1000)
        .await?
        .into_iter()
        .map(|e| vouch_api::PendingEnrolment {
            name: e.host_name,
            source: e.source,
            created_at: e.created_at.to_rfc3339(),
            expires_at: e.expires_at.to_rfc3339(),
            ek_chain_ok: e.ek_chain_ok,
        })
        .collect();
    let refused = state
        .store()
        .refusals(200)
        .await?
        .into_iter()
        .map(|r| vouch_api::RefusalRecord {
            at: r.at.to_rfc3339(),
            name: r.host_name,
            kind: r.kind,
            reason: r.reason,
            peer: r.peer,
        })
        .collect();
    Ok(vouch_api::EnrolmentsView { pending, refused })
}

fn token_info(t: &vouch_store::ApiToken) -> vouch_api::TokenInfo {
    vouch_api::TokenInfo {
        name: t.name.clone(),
        role: t.role.as_str().to_owned(),
        created_at: t.created_at.to_rfc3339(),
        expires_at: t.expires_at.map(|e| e.to_rfc3339()),
    }
}

fn parse_time(what: &str, text: &str) -> Result<chrono::DateTime<Utc>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::BadRequest(format!("{what}: not an RFC 3339 time ({e})")))
}

/// `POST /api/v1/tokens`: a new token with a role; its secret is returned once.
pub async fn create_token(
    state: &AppState,
    admin: &Actor,
    req: vouch_api::TokenRequest,
) -> Result<vouch_api::TokenCreated, ApiError> {
    let now = Utc::now();
    if !(1..=64).contains(&req.name.len())
        || !req
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(ApiError::BadRequest(
            "token name must be 1-64 characters of A-Z a-z 0-9 - _ . @".into(),
        ));
    }
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role {:?}: expected admin, operator or reader",
            req.role
        ))
    })?;
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|t| parse_time("expires_at", t))
        .transpose()?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::BadRequest("expires_at is in the past".into()));
    }
    let secret = format!("vouch_{}", hex::encode(crate::agent::random_bytes::<32>()?));
    let token = vouch_store::ApiToken {
        name: req.name.clone(),
        role,
        created_at: now,
        expires_at,
    };
    state
        .store()
        .add_token(&token, &vouch_store::sha256(secret.as_bytes()))
        .await
        .map_err(|e| match e {
            vouch_store::StoreError::Duplicate(_) => {
                ApiError::Conflict(format!("a token named {:?} exists", req.name))
            }
            other => other.into(),
        })?;
    state
        .audit(
            &admin.0,
            "token_create",
            &req.name,
            serde_json::json!({"role": role.as_str(), "expires_at": req.expires_at}),
            now,
        )
        .await?;
    Ok(vouch_api::TokenCreated {
        info: token_info(&token),
        token: secret,
    })
}

/// `GET /api/v1/tokens`.
pub async fn tokens(state: &AppState) -> Result<Vec<vouch_api::TokenInfo>, ApiError> {
    Ok(state
        .store()
        .tokens()
        .await?
        .iter()
        .map(token_info)
        .collect())
}

/// `DELETE /api/v1/tokens/{name}`: the token stops working at once. The last admin token
/// cannot be revoked (nobody could manage the verifier any more).
pub async fn revoke_token(
    state: &AppState,
    admin: &Actor,
    name: &str,
) -> Result<vouch_api::TokenInfo, ApiError> {
    let now = Utc::now();
    let all = state.store().tokens().await?;
    let t = all
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no token named {name:?}")))?;
    if t.role == Role::Admin && all.iter().filter(|t| t.role == Role::Admin).count() <= 1 {
        return Err(ApiError::Conflict(
            "this is the last admin token; create another admin token first".into(),
        ));
    }
    state.store().revoke_token(name).await?;
    state
        .audit(&admin.0, "token_revoke", name, serde_json::json!({}), now)
        .await?;
    Ok(token_info(t))
}

/// `POST /api/v1/hosts/{name}/attest`: due now.
pub async fn attest(state: &AppState, admin: &Actor, name: &str) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    change(state, admin, name, "attest", serde_json::json!({}), |h| {
        h.next_due = now;
        Ok(())
    })
    .await
}

/// `DELETE /api/v1/hosts/{name}`: removed; its certificate stops working at once.
pub async fn remove(state: &AppState, admin: &Actor, name: &str) -> Result<HostSummary, ApiError> {
    change(state, admin, name, "remove", serde_json::json!({}), |h| {
        h.status = HostStatus::Removed;
        h.reasons = vec![format!("removed by {}", admin.0)];
        h.client_cert_sha256 = None;
        Ok(())
    })
    .await
}

/// Longest an EK override may last.
pub const EK_OVERRIDE_MAX: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// An EK override's lifetime when the operator names none.
pub const EK_OVERRIDE_DEFAULT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// `POST /api/v1/hosts/{name}/ek-override`: allow one TPM (named by its EK) to enrol under
/// this host name without a valid EK certificate chain, until the override expires. Such
/// hosts are never approved automatically.
pub async fn ek_override(
    state: &AppState,
    admin: &Actor,
    name: &str,
    req: EkOverrideRequest,
) -> Result<HostSummary, ApiError> {
    let now = Utc::now();
    if req.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("an EK override needs a reason".into()));
    }
    let ek_name = req
        .ek_name
        .as_deref()
        .map(str::trim)
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() > 2)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "an EK override names the TPM it allows: ek_name (hex TPM name of the EK, as \
                 tpm2_readpublic prints it)"
                    .into(),
            )
        })?;
    let expires_at = match req.expires_at.as_deref() {
        Some(t) => parse_time("expires_at", t)?,
        None => now
            .checked_add_signed(EK_OVERRIDE_DEFAULT)
            .ok_or_else(|| ApiError::internal("time overflow"))?,
    };
    if expires_at <= now
        || now
            .checked_add_signed(EK_OVERRIDE_MAX)
            .is_some_and(|max| expires_at > max)
    {
        return Err(ApiError::BadRequest(
            "expires_at must be in the future and at most 30 days away".into(),
        ));
    }
    state
        .store()
        .set_ek_override(&EkOverride {
            host_name: name.to_owned(),
            ek_name: Some(ek_name.clone()),
            actor: admin.0.clone(),
            reason: req.reason.clone(),
            created_at: now,
            expires_at: Some(expires_at),
        })
        .await?;
    state
        .audit(
            &admin.0,
            "ek_override",
            name,
            serde_json::json!({"reason": req.reason, "ek_name": hex::encode(&ek_name),
                "expires_at": expires_at.to_rfc3339()}),
            now,
        )
        .await?;
    Ok(match state.store().host_by_name(name).await? {
        Some(h) => summary(&h),
        None => HostSummary {
            id: String::new(),
            name: name.to_owned(),
            status: vouch_api::HostStatus::Enrolling,
            reasons: vec![format!(
                "EK override recorded for EK {}; that TPM may enrol until {}",
                hex::encode(&ek_name),
                expires_at.to_rfc3339()
            )],
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
    admin: &Actor,
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
    admin: &Actor,
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
    admin: &Actor,
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
    admin: &Actor,
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
