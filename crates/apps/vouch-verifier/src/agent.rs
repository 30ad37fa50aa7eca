//! The agent side: enrolment (EK chain, AK binding by MakeCredential, client certificate),
//! challenges (scheduling, nonces) and evidence (decode, consume nonce, verify, appraise).

use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::rand::SecureRandom as _;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use vouch_api::{
    ActivateRequest, ActivateResponse, ChallengeResponse, EnrolRequest, EnrolResponse,
    EvidenceRequest, EvidenceResponse,
};
use vouch_ima::policy::RuntimePolicy;
use vouch_store::{Enrolment, Host, HostStatus, ImaContext, NonceCheck, StoreError};
use vouch_tpm2::{AkVerifier, EkPublic, PublicArea, PublicKey};
use vouch_x509::EkCert;

use crate::appraise::{self, NONCE_LEN, Policy};
use crate::error::ApiError;
use crate::ima::{ImaInputs, ImaOutcome, ImaTail};
use crate::state::{AppState, metric};

/// The verified client certificate of a TLS connection, as the accept loop saw it; put in
/// the request extensions. rustls has checked its chain to the verifier CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Host id from the certificate (SAN URI `urn:vouch:host:<id>`, else subject CN).
    pub host_id: Uuid,
    /// SHA-256 of the certificate DER.
    pub cert_sha256: [u8; 32],
}

/// The host behind a mutual-TLS request: the certificate must be the one issued to it at
/// its latest activation, and the host must not be removed.
#[derive(Debug)]
pub struct AgentHost(pub Host);

impl FromRequestParts<AppState> for AgentHost {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let id = parts
            .extensions
            .get::<ClientIdentity>()
            .copied()
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "this endpoint needs the host's client certificate (mutual TLS)".into(),
                )
            })?;
        let host = state
            .store()
            .host_by_id(id.host_id)
            .await?
            .filter(|h| h.client_cert_sha256.as_deref() == Some(id.cert_sha256.as_slice()))
            .ok_or_else(|| {
                ApiError::Unauthorized("client certificate is not current for any host".into())
            })?;
        if host.status == HostStatus::Removed {
            return Err(ApiError::Forbidden(
                "host was removed by an operator".into(),
            ));
        }
        Ok(Self(host))
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ApiError::internal("random number generator failed"))?;
    Ok(b)
}

pub(crate) fn after(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(t)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn decode_public(bytes: &[u8]) -> Option<PublicArea<'_>> {
    PublicArea::decode_tpmt(bytes)
        .or_else(|_| PublicArea::decode_tpm2b(bytes))
        .ok()
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// The EK certificate's key must be the TPM's EK.
fn same_key(cert: &EkCert, ek: &PublicArea<'_>) -> bool {
    let k = cert.ek_public_key();
    match ek.key() {
        PublicKey::Rsa {
            exponent, modulus, ..
        } => {
            k.rsa_modulus()
                .is_some_and(|m| strip_zeros(m) == strip_zeros(modulus))
                && k.rsa_exponent()
                    .is_some_and(|e| strip_zeros(e) == strip_zeros(&exponent.to_be_bytes()))
        }
        PublicKey::Ecc { x, y, .. } => k.ec_point().is_some_and(|(_, cx, cy)| {
            strip_zeros(cx) == strip_zeros(x) && strip_zeros(cy) == strip_zeros(y)
        }),
        PublicKey::Other { .. } => false,
    }
}

/// Check the EK certificate: parses, chains to an allowed root, and certifies this EK.
fn check_ek_cert(
    state: &AppState,
    cert: Option<&[u8]>,
    ek: &PublicArea<'_>,
    now: DateTime<Utc>,
) -> Result<EkCert, String> {
    let bytes = cert.ok_or("no EK certificate was presented")?;
    let cert = EkCert::parse(bytes).map_err(|e| format!("EK certificate does not parse: {e}"))?;
    let chain = state
        .inner
        .roots
        .verify(&cert, &[], now.timestamp())
        .map_err(|e| format!("EK certificate does not chain to an allowed root: {e}"))?;
    if chain.anchor().is_none() {
        return Err("EK certificate does not chain to an allowed root".into());
    }
    if !same_key(&cert, ek) {
        return Err("the EK certificate certifies a different key than the TPM's EK".into());
    }
    Ok(cert)
}

/// The TCP peer of a request, as the accept loop saw it; put in the request extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl PeerAddr {
    /// The peer's IP address as text (`unknown` for requests that did not come over TCP).
    #[must_use]
    pub fn source(peer: Option<Self>) -> String {
        peer.map_or_else(|| "unknown".to_owned(), |p| p.0.ip().to_string())
    }
}

/// Why an enrolment was refused: logged once, kept for operators, audited when it concerns
/// an existing identity.
async fn refuse(
    state: &AppState,
    name: &str,
    peer: &str,
    err: ApiError,
    audit: Option<serde_json::Value>,
) -> ApiError {
    let now = Utc::now();
    let reason = err.to_string();
    tracing::warn!(host = %name, %peer, %reason, "enrolment refused");
    let refusal = vouch_store::Refusal {
        at: now,
        host_name: name.to_owned(),
        kind: "enrolment".to_owned(),
        reason: reason.clone(),
        peer: peer.to_owned(),
    };
    if let Err(e) = state.store().record_refusal(&refusal, REFUSALS_KEPT).await {
        tracing::error!(error = %e, "refusal not recorded");
    }
    if let Some(detail) = audit
        && let Err(e) = state
            .audit(&format!("agent:{name}"), "enrol_refused", name, detail, now)
            .await
    {
        tracing::error!(error = %e, "refusal not audited");
    }
    err
}

/// Keep a rejected evidence (4xx) for operators: logged once with host, reason and peer.
pub async fn record_rejected_evidence(
    state: &AppState,
    host: &str,
    peer: Option<PeerAddr>,
    err: &ApiError,
) {
    let peer = PeerAddr::source(peer);
    let reason = err.to_string();
    tracing::warn!(host, %peer, %reason, "evidence rejected");
    let r = vouch_store::Refusal {
        at: Utc::now(),
        host_name: host.to_owned(),
        kind: "evidence".to_owned(),
        reason,
        peer,
    };
    if let Err(e) = state.store().record_refusal(&r, REFUSALS_KEPT).await {
        tracing::error!(error = %e, "rejected evidence not recorded");
    }
}

/// Refusals (enrolments and evidence) kept for operators.
pub const REFUSALS_KEPT: u32 = 1000;

/// The EK's TPM name, the identity of the TPM.
fn ek_name_of(ek_public: &[u8]) -> Result<Vec<u8>, ApiError> {
    decode_public(ek_public)
        .map(|ek| ek.name())
        .ok_or_else(|| ApiError::BadRequest("ek_public is not a TPMT_PUBLIC".into()))
}

/// Refuse an enrolment that would give a TPM a second identity or bring back a removed one.
async fn check_identity(
    state: &AppState,
    name: &str,
    ek_name: &[u8],
) -> Result<(), (ApiError, Option<serde_json::Value>)> {
    let store = state.store();
    let by_name = store
        .host_by_name(name)
        .await
        .map_err(|e| (e.into(), None))?;
    if let Some(h) = &by_name
        && h.status == HostStatus::Removed
        && h.readmitted_by.is_none()
    {
        return Err((
            ApiError::Forbidden(format!(
                "host {name:?} was removed by an operator; it can enrol again only after \
                 `vouch hosts readmit {name}`"
            )),
            Some(serde_json::json!({"refused": "removed", "ek_name": hex::encode(ek_name)})),
        ));
    }
    if let Some(h) = &by_name
        && h.status != HostStatus::Removed
        && h.ek_name.as_deref().is_some_and(|n| n != ek_name)
    {
        return Err((
            ApiError::Conflict(format!(
                "host name {name:?} is enrolled with a different TPM (EK)"
            )),
            Some(serde_json::json!({"refused": "name_taken", "ek_name": hex::encode(ek_name)})),
        ));
    }
    let by_ek = store
        .host_by_ek_name(ek_name)
        .await
        .map_err(|e| (e.into(), None))?;
    if let Some(h) = by_ek
        && h.name != name
    {
        let (err, why) = if h.status == HostStatus::Removed && h.readmitted_by.is_none() {
            (
                ApiError::Forbidden(format!(
                    "this TPM (EK) belonged to host {:?}, which an operator removed; it can \
                     enrol again only after `vouch hosts readmit {}`",
                    h.name, h.name
                )),
                "ek_removed",
            )
        } else {
            (
                ApiError::Conflict(format!(
                    "this TPM (EK) is already enrolled as host {:?}: one TPM has one identity",
                    h.name
                )),
                "ek_enrolled",
            )
        };
        return Err((
            err,
            Some(serde_json::json!({"refused": why, "existing_host": h.name,
                "ek_name": hex::encode(ek_name)})),
        ));
    }
    Ok(())
}

/// `POST /api/v1/agent/enrol`. Nothing about the host is stored until it activates: a
/// pending enrolment lives apart, expires, and each source may hold only a few.
pub async fn enrol(
    state: &AppState,
    req: EnrolRequest,
    peer: Option<PeerAddr>,
) -> Result<EnrolResponse, ApiError> {
    let now = Utc::now();
    let source = PeerAddr::source(peer);
    let name = req.name.clone();
    if !valid_name(&req.name) {
        return Err(refuse(
            state,
            &name,
            &source,
            ApiError::BadRequest("host name must be 1-64 characters of A-Z a-z 0-9 - _ .".into()),
            None,
        )
        .await);
    }
    if let Some(k) = req
        .labels
        .keys()
        .find(|k| vouch_model::is_reserved_label(k))
    {
        return Err(refuse(
            state,
            &name,
            &source,
            ApiError::BadRequest(format!(
                "label {k:?} is reserved: detected.* and reported.* labels come from evidence, \
                 never from the agent"
            )),
            None,
        )
        .await);
    }
    let Some(ek) = decode_public(&req.ek_public.0) else {
        return Err(refuse(
            state,
            &name,
            &source,
            ApiError::BadRequest("ek_public is not a TPMT_PUBLIC".into()),
            None,
        )
        .await);
    };
    let Some(ak) = decode_public(&req.ak_public.0) else {
        return Err(refuse(
            state,
            &name,
            &source,
            ApiError::BadRequest("ak_public is not a TPMT_PUBLIC".into()),
            None,
        )
        .await);
    };
    if let Err(e) = AkVerifier::new(&ak) {
        return Err(refuse(
            state,
            &name,
            &source,
            ApiError::BadRequest(format!("AK refused: {e}")),
            None,
        )
        .await);
    }
    let ek_pub = match EkPublic::from_public_area(&ek) {
        Ok(k) => k,
        Err(e) => {
            return Err(refuse(
                state,
                &name,
                &source,
                ApiError::BadRequest(format!("EK refused: {e}")),
                None,
            )
            .await);
        }
    };
    let ek_name = ek.name();
    if let Err((err, audit)) = check_identity(state, &name, &ek_name).await {
        return Err(refuse(state, &name, &source, err, audit).await);
    }

    let cert = check_ek_cert(
        state,
        req.ek_certificate.as_ref().map(|b| b.0.as_slice()),
        &ek,
        now,
    );
    let store = state.store();
    let (chain_ok, override_by) = match &cert {
        Ok(_) => (true, None),
        Err(why) => match store.ek_override(&req.name).await? {
            Some(o) if o.allows(&ek_name, now) => {
                state
                    .audit(
                        &format!("agent:{}", req.name),
                        "enrol_with_ek_override",
                        &req.name,
                        serde_json::json!({"ek_problem": why, "override_by": o.actor,
                            "ek_name": hex::encode(&ek_name)}),
                        now,
                    )
                    .await?;
                (false, Some(o.actor))
            }
            Some(o) => {
                let err = ApiError::Forbidden(format!(
                    "{why}; the EK override for {:?} {} ",
                    req.name,
                    if o.ek_name.as_deref() == Some(ek_name.as_slice()) {
                        "has expired"
                    } else {
                        "is for another TPM (EK)"
                    }
                ));
                return Err(refuse(
                    state,
                    &name,
                    &source,
                    err,
                    Some(serde_json::json!({"refused": "ek_override_mismatch",
                        "ek_name": hex::encode(&ek_name)})),
                )
                .await);
            }
            None => {
                let err = ApiError::Forbidden(format!(
                    "{why}; an operator can allow this TPM with POST /api/v1/hosts/{}/ek-override",
                    req.name
                ));
                return Err(refuse(state, &name, &source, err, None).await);
            }
        },
    };
    let secret = random_bytes::<32>()?;
    let ak_name = ak.name();
    let blob = vouch_tpm2::make_credential(&ek_pub, &ak_name, &secret)
        .map_err(|e| ApiError::BadRequest(format!("cannot make a credential for this EK: {e}")))?;
    let tpm = cert.as_ref().ok().map(EkCert::tpm);
    let enrolment = Enrolment {
        id: Uuid::new_v4(),
        host_name: req.name.clone(),
        secret_sha256: vouch_store::sha256(&secret),
        expires_at: after(now, state.inner.config.enrolment_ttl),
        ek_public: req.ek_public.0.clone(),
        ek_cert: req.ek_certificate.as_ref().map(|b| b.0.clone()),
        ek_chain_ok: chain_ok,
        ek_override_by: override_by,
        ak_public: req.ak_public.0.clone(),
        ak_name,
        tpm_manufacturer: tpm
            .and_then(|t| t.manufacturer.as_ref())
            .map(|m| m.name.map_or_else(|| m.raw.clone(), str::to_owned)),
        tpm_model: tpm.and_then(|t| t.model.clone()),
        labels: req.labels.clone(),
        created_at: now,
        source,
    };
    let cap = state.inner.config.max_pending_per_source;
    if !store.insert_enrolment_capped(&enrolment, cap, now).await? {
        return Err(refuse(
            state,
            &name,
            &enrolment.source,
            ApiError::TooManyRequests {
                message: format!(
                    "{} has {cap} enrolments pending; activate them or let them expire",
                    enrolment.source
                ),
                retry_after_secs: state.inner.config.enrolment_ttl.as_secs().max(1),
            },
            None,
        )
        .await);
    }
    tracing::info!(host = %req.name, chain_ok, "credential issued");
    Ok(EnrolResponse {
        enrolment_id: enrolment.id.to_string(),
        id_object: blob.id_object.into(),
        encrypted_secret: blob.encrypted_secret.into(),
    })
}

fn interval_secs(state: &AppState) -> i64 {
    i64::try_from(state.inner.config.interval.as_secs()).unwrap_or(i64::MAX)
}

/// Labels added, removed or changed, as `+k=v`, `-k=v`, `~k=old->new`.
fn label_diff(old: &vouch_store::Labels, new: &vouch_store::Labels) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            None => out.push(format!("+{k}={v}")),
            Some(o) if o != v => out.push(format!("~{k}={o}->{v}")),
            Some(_) => {}
        }
    }
    for (k, v) in old {
        if !new.contains_key(k) {
            out.push(format!("-{k}={v}"));
        }
    }
    out
}

/// Whether a host may be approved without an operator: its EK chained (never with an EK
/// override), it is not a re-admitted tombstone, a selector matches, and the site's
/// restrictions hold (`--auto-approve-roots`, `--auto-approve-eks`).
fn auto_approval(state: &AppState, h: &Host, e: &Enrolment, ek_name: &[u8]) -> Option<String> {
    if !e.ek_chain_ok || h.readmitted_by.is_some() {
        return None;
    }
    let cfg = &state.inner.config;
    let selector = cfg
        .auto_approve
        .iter()
        .find(|s| s.matches(&h.name, &h.labels))?;
    if let Some(allowed) = &state.inner.auto_approve_eks
        && !allowed.contains(ek_name)
    {
        tracing::info!(host = %h.name, "not auto-approved: EK not in --auto-approve-eks");
        return None;
    }
    if let Some(roots) = &state.inner.auto_approve_roots {
        let chained = e
            .ek_cert
            .as_deref()
            .and_then(|der| EkCert::parse(der).ok())
            .and_then(|cert| roots.verify(&cert, &[], Utc::now().timestamp()).ok())
            .is_some_and(|chain| chain.anchor().is_some());
        if !chained {
            tracing::info!(host = %h.name,
                "not auto-approved: EK certificate does not chain to --auto-approve-roots");
            return None;
        }
    }
    Some(format!("auto:{selector}"))
}

/// `POST /api/v1/agent/activate`: the host row is created (or re-enrolled) only here, once
/// the TPM proved it holds both the EK and the AK.
pub async fn activate(
    state: &AppState,
    req: ActivateRequest,
    peer: Option<PeerAddr>,
) -> Result<ActivateResponse, ApiError> {
    let now = Utc::now();
    let store = state.store();
    let source = PeerAddr::source(peer);
    let id = Uuid::parse_str(&req.enrolment_id)
        .map_err(|_| ApiError::BadRequest("enrolment_id is not a uuid".into()))?;
    let e = store
        .take_enrolment(id)
        .await?
        .ok_or_else(|| ApiError::Forbidden("unknown or already used enrolment".into()))?;
    if e.expires_at <= now {
        return Err(ApiError::Forbidden("enrolment expired; enrol again".into()));
    }
    let presented = vouch_store::sha256(&req.secret.0);
    if aws_lc_rs::constant_time::verify_slices_are_equal(&presented, &e.secret_sha256).is_err() {
        return Err(refuse(
            state,
            &e.host_name,
            &source,
            ApiError::Forbidden(
                "wrong credential secret: the AK is not in the TPM holding this EK".into(),
            ),
            None,
        )
        .await);
    }
    let ek_name = ek_name_of(&e.ek_public)?;
    // Checked again: another enrolment of this TPM or name may have activated meanwhile.
    if let Err((err, audit)) = check_identity(state, &e.host_name, &ek_name).await {
        return Err(refuse(state, &e.host_name, &source, err, audit).await);
    }

    let existing = store.host_by_name(&e.host_name).await?;
    let keep = existing
        .as_ref()
        .filter(|h| h.status != HostStatus::Removed && h.ek_public == e.ek_public);
    if existing
        .as_ref()
        .is_some_and(|h| h.status != HostStatus::Removed)
        && keep.is_none()
    {
        return Err(ApiError::Conflict(format!(
            "host name {:?} is enrolled with a different TPM (EK)",
            e.host_name
        )));
    }
    // A host re-enrolling with the same TPM keeps its approval and baseline; a new or
    // re-admitted one starts over.
    let mut h = match keep {
        Some(h) => h.clone(),
        None => {
            let mut fresh = Host::new(
                e.host_name.clone(),
                e.ek_public.clone(),
                e.ak_public.clone(),
                e.ak_name.clone(),
                interval_secs(state),
                now,
            );
            if let Some(old) = &existing {
                fresh.id = old.id;
                fresh.version = old.version;
                fresh.created_at = old.created_at;
                fresh.readmitted_by.clone_from(&old.readmitted_by);
            }
            fresh.labels.clone_from(&e.labels);
            fresh
        }
    };
    h.ek_public.clone_from(&e.ek_public);
    h.ek_name = Some(ek_name.clone());
    h.ek_cert.clone_from(&e.ek_cert);
    h.ek_override_by.clone_from(&e.ek_override_by);
    if h.ak_public != e.ak_public {
        // A new AK: counters of the old one mean nothing for it.
        h.counters = None;
    }
    h.ak_public.clone_from(&e.ak_public);
    h.ak_name.clone_from(&e.ak_name);
    h.tpm_manufacturer.clone_from(&e.tpm_manufacturer);
    h.tpm_model.clone_from(&e.tpm_model);
    h.needs_event_log = true;
    h.next_due = now;

    // Labels select policies: a change at re-enrolment waits for an operator.
    let label_change = keep.is_some() && h.labels != e.labels;
    let diff = label_diff(&h.labels, &e.labels);
    if label_change {
        h.pending_labels = Some(e.labels.clone());
        h.approved_at = None;
        h.approved_by = None;
    }
    if h.approved_at.is_none()
        && !label_change
        && let Some(by) = auto_approval(state, &h, &e, &ek_name)
    {
        h.approved_at = Some(now);
        h.approved_by = Some(by);
    }
    h.readmitted_by = None;
    if h.approved_at.is_some() {
        h.status = HostStatus::Unreachable;
        h.reasons = vec!["approved; awaiting first attestation".into()];
    } else {
        h.status = HostStatus::AwaitingApproval;
        h.reasons = vec![if label_change {
            format!(
                "labels changed at re-enrolment ({}); awaiting operator approval",
                diff.join(", ")
            )
        } else if e.ek_chain_ok {
            "awaiting operator approval".into()
        } else {
            "enrolled with an EK override; awaiting operator approval".into()
        }];
    }
    let (pem, sha) = state
        .inner
        .pki
        .issue_client(&req.csr_pem, h.id)
        .map_err(|e| ApiError::BadRequest(format!("cannot issue a certificate: {e}")))?;
    h.client_cert_sha256 = Some(sha.to_vec());
    if let Some(old) = &existing {
        old.status.check_transition(h.status)?;
    } else if !HostStatus::INITIAL.contains(&h.status) {
        return Err(ApiError::internal(format!(
            "a new host cannot start {}",
            h.status
        )));
    }
    let stored = if existing.is_some() {
        store.update_host(&h, now).await?
    } else {
        store.insert_host(&h).await?;
        h.clone()
    };
    state
        .audit(
            &format!("agent:{}", h.name),
            "enrol",
            &h.name,
            serde_json::json!({"host_id": h.id, "status": stored.status.as_str(),
                "approved_by": stored.approved_by, "ek_override_by": stored.ek_override_by,
                "ek_name": hex::encode(&ek_name), "pending_labels": diff}),
            now,
        )
        .await?;
    tracing::info!(host = %h.name, status = %stored.status, "host enrolled");
    state.inner.due.notify_waiters();
    Ok(ActivateResponse {
        host_id: h.id.to_string(),
        status: stored.status,
        client_certificate_pem: pem,
        ca_certificate_pem: state.inner.pki.ca_pem().to_owned(),
    })
}

/// `GET /api/v1/agent/challenge`: wait (up to the long-poll window) until the host is due,
/// claim it, and issue a fresh nonce.
pub async fn challenge(state: &AppState, host: Host) -> Result<ChallengeResponse, ApiError> {
    let cfg = &state.inner.config;
    let deadline = tokio::time::Instant::now()
        .checked_add(cfg.long_poll)
        .unwrap_or_else(tokio::time::Instant::now);
    let mut host = host;
    loop {
        let now = Utc::now();
        if host.approved_at.is_some()
            && host.next_due <= now
            && state
                .store()
                .claim_due(host.id, now, after(now, cfg.nonce_ttl))
                .await?
        {
            let ctx = state.store().ima_context(host.id).await?;
            let ima = (cfg.ima || ctx.policy.is_some()).then(|| {
                crate::ima::request(ctx.state.as_ref(), ctx.policy.as_ref().map(|(_, h)| h))
            });
            let pcr_selection = if ima.is_some() {
                state.inner.ima_selection_spec.clone()
            } else {
                cfg.pcr_selection.clone()
            };
            let want_event_log = host.needs_event_log || host.event_log.is_none();
            let nonce = random_bytes::<NONCE_LEN>()?;
            state
                .store()
                .issue_nonce(
                    host.id,
                    &nonce,
                    want_event_log,
                    now,
                    after(now, cfg.nonce_ttl),
                )
                .await?;
            return Ok(ChallengeResponse {
                due: true,
                retry_after_ms: 0,
                nonce: Some(nonce.to_vec().into()),
                pcr_selection: Some(pcr_selection),
                want_event_log,
                status: host.status,
                ima,
            });
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(ChallengeResponse {
                due: false,
                retry_after_ms: 250,
                nonce: None,
                pcr_selection: None,
                want_event_log: false,
                status: host.status,
                ima: None,
            });
        }
        // Sleep until due (re-checking every few seconds for other replicas' changes) or
        // until an operator makes a host due here.
        let until_due = host
            .next_due
            .signed_duration_since(now)
            .to_std()
            .unwrap_or_default();
        let nap = left
            .min(until_due.max(std::time::Duration::from_millis(50)))
            .min(std::time::Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = state.inner.due.notified() => {}
        }
        host = state
            .store()
            .host_by_id(host.id)
            .await?
            .filter(|h| h.status != HostStatus::Removed)
            .ok_or_else(|| ApiError::Forbidden("host was removed by an operator".into()))?;
    }
}

/// The host's compiled runtime policy, from the cache or compiled once from the store.
pub(crate) async fn compiled_policy(
    state: &AppState,
    id: Uuid,
    sha256: [u8; 32],
) -> Result<Arc<RuntimePolicy>, ApiError> {
    if let Some(p) = state
        .inner
        .ima_policies
        .lock()
        .map_err(|_| ApiError::internal("IMA policy cache poisoned"))?
        .get(&sha256)
    {
        return Ok(p.clone());
    }
    let stored = state
        .store()
        .ima_policy(id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("IMA policy {id} disappeared")))?;
    let compiled = tokio::task::spawn_blocking(move || {
        let doc: vouch_ima::policy::PolicyDocument = serde_json::from_value(stored.policy)
            .map_err(|e| format!("stored IMA policy {id} does not parse: {e}"))?;
        RuntimePolicy::compile(&doc).map_err(|e| format!("stored IMA policy {id}: {e}"))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let compiled = Arc::new(compiled);
    cache_policy(state, sha256, compiled.clone())?;
    Ok(compiled)
}

/// Keep a compiled policy (the cache is emptied if it ever holds more than 64: policies are
/// shared objects, few per fleet).
pub(crate) fn cache_policy(
    state: &AppState,
    sha256: [u8; 32],
    policy: Arc<RuntimePolicy>,
) -> Result<(), ApiError> {
    let mut cache = state
        .inner
        .ima_policies
        .lock()
        .map_err(|_| ApiError::internal("IMA policy cache poisoned"))?;
    if cache.len() >= 64 {
        cache.clear();
    }
    cache.insert(sha256, policy);
    Ok(())
}

/// IMA appraisal of one evidence (CPU-bound on the blocking pool), timed into the metrics.
async fn ima_appraisal(
    state: &AppState,
    host: &Host,
    ctx: &ImaContext,
    quote: &vouch_tpm2::VerifiedQuote,
    tail: Option<&ImaTail>,
    now: DateTime<Utc>,
) -> Result<ImaOutcome, ApiError> {
    let policy = match ctx.policy {
        Some((id, sha)) => Some((sha, compiled_policy(state, id, sha).await?)),
        None => None,
    };
    let started = Instant::now();
    let host_id = host.id;
    let previous = ctx.state.clone();
    let quoted = quote.pcrs.clone();
    let reset_count = quote.clock_info.reset_count;
    let tail = tail.cloned();
    let out = tokio::task::spawn_blocking(move || {
        crate::ima::appraise(
            tail.as_ref(),
            &ImaInputs {
                host_id,
                previous: previous.as_ref(),
                policy: policy.as_ref().map(|(h, p)| (h, p.as_ref())),
                quoted: &quoted,
                reset_count,
                now,
            },
        )
    })
    .await
    .map_err(ApiError::internal)?;
    let secs = started.elapsed().as_secs_f64();
    state.metrics(|| {
        metrics::histogram!(metric::IMA_DURATION).record(secs);
        metrics::counter!(metric::IMA_ENTRIES).increment(out.new_entries);
    });
    Ok(out)
}

/// `POST /api/v1/agent/evidence`.
pub async fn evidence(
    state: &AppState,
    host: Host,
    req: EvidenceRequest,
) -> Result<EvidenceResponse, ApiError> {
    let started = Instant::now();
    let result = evidence_inner(state, host, req).await;
    let label = match &result {
        Ok(r) if r.status == vouch_api::HostStatus::Trusted => "trusted",
        Ok(_) => "untrusted",
        Err(_) => "rejected",
    };
    let secs = started.elapsed().as_secs_f64();
    state.metrics(|| {
        metrics::counter!(metric::ATTESTATIONS, "result" => label).increment(1);
        metrics::histogram!(metric::DURATION).record(secs);
    });
    result
}

async fn evidence_inner(
    state: &AppState,
    host: Host,
    req: EvidenceRequest,
) -> Result<EvidenceResponse, ApiError> {
    // 1. Decode everything; a malformed request changes nothing (not even the nonce).
    let ev = appraise::decode(req)?;
    let now = Utc::now();
    // 2. The nonce: issued to this host, unused, unexpired. Consumed whatever follows.
    match state.store().consume_nonce(host.id, &ev.nonce, now).await? {
        NonceCheck::Valid { .. } => {}
        NonceCheck::Expired => {
            return Err(ApiError::Conflict(
                "nonce expired; ask for a new challenge".into(),
            ));
        }
        NonceCheck::Unknown => {
            tracing::warn!(host = %host.name, "evidence with an unknown or used nonce");
            return Err(ApiError::Conflict(
                "unknown or already used nonce (replayed evidence?)".into(),
            ));
        }
    }
    // 3. Verify and appraise; retry on a concurrent host update.
    let interval = TimeDelta::seconds(host.interval_secs.max(1));
    let engine = crate::engine::current(state).await?;
    let mut current = host;
    for _ in 0..3 {
        let ak_area = PublicArea::decode_tpmt(&current.ak_public)
            .map_err(|e| ApiError::internal(format!("stored AK does not decode: {e}")))?;
        let ak = AkVerifier::new(&ak_area)
            .map_err(|e| ApiError::internal(format!("stored AK refused: {e}")))?;
        let quote = vouch_tpm2::verify_quote(&ak, &ev.attest, &ev.signature, &ev.nonce, &ev.pcrs);
        let ctx = state.store().ima_context(current.id).await?;
        let ima_on = state.inner.config.ima || ctx.policy.is_some();
        let ima = match (&quote, ima_on) {
            (Ok(q), true) => {
                Some(ima_appraisal(state, &current, &ctx, q, ev.ima.as_ref(), now).await?)
            }
            _ => None,
        };
        let verified = quote.as_ref().ok().cloned();
        let mut derived = crate::engine::Derived::default();
        let policy = Policy {
            required: if ima_on {
                &state.inner.ima_selection
            } else {
                &state.inner.selection
            },
            interval,
            ima: ima.as_ref().map(|o| o.reasons.as_slice()),
            firmware: state.inner.firmware.as_ref(),
            fleet: engine.as_deref().is_some_and(|e| {
                crate::engine::selects(
                    e,
                    &current,
                    verified.as_ref(),
                    ev.event_log.as_deref(),
                    &mut derived,
                )
            }),
        };
        let mut out = appraise::appraise(
            &current,
            quote,
            ev.event_log.as_deref(),
            ev.kernel_cmdline.as_deref(),
            &policy,
            now,
        );
        let fleet = crate::engine::appraise(
            state,
            engine.as_deref(),
            &current,
            &mut out,
            verified.as_ref(),
            derived,
            now,
        )?;
        // The lifecycle: a verdict only for a host that may have one (never for a host
        // removed or waiting for approval since the challenge was issued).
        current.status.check_transition(out.host.status)?;
        let ima_state = ima
            .as_ref()
            .filter(|_| out.quote_accepted)
            .and_then(|o| o.state.as_ref());
        match state
            .store()
            .apply_attestation_full(&out.host, &out.record, ima_state, &fleet, now)
            .await
        {
            Ok(stored) => {
                if fleet.claims.is_some() {
                    crate::engine::claims_stored(state, stored.id);
                }
                tracing::info!(host = %stored.name, status = %stored.status,
                    reasons = ?stored.reasons, "attestation");
                return Ok(EvidenceResponse {
                    status: stored.status,
                    reasons: stored.reasons,
                    next_due_ms: u64::try_from(
                        stored
                            .next_due
                            .signed_duration_since(now)
                            .num_milliseconds()
                            .max(0),
                    )
                    .unwrap_or(0),
                });
            }
            Err(StoreError::Conflict) => {
                current = state
                    .store()
                    .host_by_id(current.id)
                    .await?
                    .ok_or_else(|| ApiError::NotFound("host disappeared".into()))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict(
        "the host changed concurrently; retry".into(),
    ))
}
