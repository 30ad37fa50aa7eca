//! Signed attestation results for relying parties: `GET /api/v1/hosts/{name}/ear` returns an
//! EAR (draft-ietf-rats-ear, [`vouch_ear`]) for the host's **current** appraisal, signed with
//! the verifier's ES256 key kept in `DATA_DIR/ear` ([`EAR_DIR`]); the public keys are served at
//! `/.well-known/jwks.json`. Issuing a token is logged, not audited: it releases no secret,
//! only a signed copy of what `GET /api/v1/hosts/{name}` already shows the caller.
//!
//! # Which verdict
//!
//! When the host's latest attestation was appraised by the fleet engine (a stored policy
//! selected it: see `engine`), the token carries that verdict, with its policy id, as long
//! as the host is trusted or untrusted. Otherwise the verdict is built from the host's state,
//! claiming only what the verifier actually checked ([`verdict_of`]):
//!
//! * **trusted** (the last evidence passed every check): status `affirming`, with
//!   * `instance-identity` = 2 (trustworthy instance) when the EK certificate chained to an
//!     allowed root at enrolment and the AK was bound to that EK by credential activation;
//!     no claim (0) for a host enrolled under an operator's EK override;
//!   * `configuration` = 2 (approved config) and `hardware` = 2 (genuine hardware: the
//!     firmware measurements matched): the event log replayed to the quoted PCRs and the
//!     PCRs and machine state equal the host's baseline;
//!   * `executables` = 2 (approved runtime) only when IMA is appraised for the host (the
//!     service's IMA switch or a runtime policy); otherwise no claim;
//!   * no claim on file-system, runtime-opaque, storage-opaque or sourced-data.
//! * **untrusted**: status `contraindicated`, on the categories the reasons concern: quote
//!   signature or coverage failures and TPM counters going backwards contraindicate
//!   `instance-identity` (96); IMA failures contraindicate `executables` (96); every other
//!   reason (PCRs, event log, machine state, baseline) contraindicates `configuration` (96),
//!   so a reason the mapping does not recognise still fails closed.
//! * **anything else** (unreachable, awaiting approval, enrolling, removed): status `none`,
//!   an empty trust vector: there is no current appraisal to vouch for.

use std::path::Path;

use chrono::{DateTime, Utc};
use vouch_appraisal::{Status, TrustCategory, TrustVector, Verdict, ar4si};
use vouch_ear::{EarError, EarIssuer, IssuerConfig, Nonce, VerifierId};
use vouch_store::{Host, HostStatus};

use crate::error::ApiError;
use crate::state::AppState;

/// The EAR key directory under the data directory.
pub const EAR_DIR: &str = "ear";
/// The media type of the token.
pub const JWT_CONTENT_TYPE: &str = "application/jwt";

/// executables: approved_rt (only approved executables loaded during and after boot).
const APPROVED_RUNTIME: i8 = 2;
/// instance-identity: untrustworthy_instance.
const UNTRUSTWORTHY_INSTANCE: i8 = 96;

/// The `ear_verifier_id` of this verifier.
#[must_use]
pub fn verifier_id() -> VerifierId {
    VerifierId {
        developer: "https://vouch.invalid/verifier".to_owned(),
        build: concat!("vouch-verifier ", env!("CARGO_PKG_VERSION")).to_owned(),
    }
}

/// Load the issuer kept in `DATA_DIR/ear`, or create it there.
pub fn load_issuer(data_dir: &Path, now: DateTime<Utc>) -> Result<EarIssuer, EarError> {
    EarIssuer::load_or_create(
        &data_dir.join(EAR_DIR),
        IssuerConfig {
            verifier_id: verifier_id(),
            ..IssuerConfig::default()
        },
        unix(now),
    )
}

/// Unix seconds (0 before the epoch).
#[must_use]
pub fn unix(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

/// The category an untrusted host's reason concerns (see the module doc).
fn category_of(reason: &str) -> TrustCategory {
    if reason.starts_with("IMA") {
        TrustCategory::Executables
    } else if reason.starts_with("quote verification failed")
        || reason.starts_with("the quote does not cover")
        || reason.contains("rolled-back or replayed TPM state")
    {
        TrustCategory::InstanceIdentity
    } else {
        TrustCategory::Configuration
    }
}

/// The verdict a host's current state supports (see the module doc). `ima_checked`: IMA is
/// appraised for this host.
pub fn verdict_of(h: &Host, ima_checked: bool) -> Verdict {
    let mut tv = TrustVector::default();
    match h.status {
        HostStatus::Trusted => {
            if h.ek_cert.is_some() && h.ek_override_by.is_none() {
                tv.worsen(TrustCategory::InstanceIdentity, ar4si::TRUSTWORTHY_INSTANCE);
            }
            tv.worsen(TrustCategory::Configuration, ar4si::APPROVED_CONFIG);
            tv.worsen(TrustCategory::Hardware, ar4si::GENUINE_HARDWARE);
            if ima_checked {
                tv.worsen(TrustCategory::Executables, APPROVED_RUNTIME);
            }
        }
        HostStatus::Untrusted => {
            for r in &h.reasons {
                let c = category_of(r);
                let value = match c {
                    TrustCategory::InstanceIdentity => UNTRUSTWORTHY_INSTANCE,
                    TrustCategory::Executables => ar4si::CONTRAINDICATED_RUNTIME,
                    _ => ar4si::UNSUPPORTABLE_CONFIG,
                };
                tv.worsen(c, value);
            }
            if h.reasons.is_empty() {
                tv.worsen(TrustCategory::Configuration, ar4si::UNSUPPORTABLE_CONFIG);
            }
        }
        HostStatus::Enrolling
        | HostStatus::AwaitingApproval
        | HostStatus::Unreachable
        | HostStatus::Removed => {}
    }
    let status = match h.status {
        HostStatus::Trusted | HostStatus::Untrusted => tv.status(),
        _ => Status::None,
    };
    Verdict {
        host: h.name.clone(),
        policy: None,
        status,
        trust_vector: tv,
        reasons: Vec::new(),
        notes: Vec::new(),
    }
}

/// `GET /api/v1/hosts/{name}/ear[?nonce=...]`: the signed token.
pub async fn host_ear(
    state: &AppState,
    admin: &str,
    name: &str,
    nonce: Option<&str>,
) -> Result<String, ApiError> {
    let nonce = nonce
        .map(Nonce::from_base64url)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("nonce: {e}")))?;
    let h = state
        .store()
        .host_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no host named {name:?}")))?;
    let engine = match h.status {
        HostStatus::Trusted | HostStatus::Untrusted => state.store().host_verdict(h.id).await?,
        _ => None,
    };
    let verdict = match engine {
        Some((json, _)) => serde_json::from_value::<Verdict>(json)
            .map_err(|e| ApiError::internal(format!("stored verdict of {}: {e}", h.name)))?,
        None => {
            let ima_checked =
                state.inner.config.ima || state.store().ima_context(h.id).await?.policy.is_some();
            verdict_of(&h, ima_checked)
        }
    };
    // A token about a trusted host expires with the appraisal it reports (the host's
    // freshness limit), so no affirming token outlives it.
    let now = Utc::now();
    let not_after = match h.status {
        HostStatus::Trusted => h.stale_after.map(unix).filter(|t| *t > unix(now)),
        _ => None,
    };
    let verdict = if h.status == HostStatus::Trusted && not_after.is_none() {
        // Fresh when read, but its limit ends within this second: nothing to vouch for.
        verdict_of(
            &h.clone().fresh_at(
                now.checked_add_signed(chrono::TimeDelta::seconds(1))
                    .unwrap_or(now),
            ),
            false,
        )
    } else {
        verdict
    };
    let token = state
        .inner
        .ear
        .read()
        .map_err(|_| ApiError::internal("EAR issuer lock poisoned"))?
        .issue_until(&verdict, &h.name, nonce.as_ref(), unix(now), not_after)
        .map_err(|e| ApiError::internal(format!("EAR signing failed: {e}")))?;
    tracing::info!(
        actor = admin,
        host = %h.name,
        status = verdict.status.name(),
        nonce = nonce.is_some(),
        "EAR issued"
    );
    Ok(token)
}

/// The JWK set of the issuer (current key and retired keys still in their grace period).
#[must_use]
pub fn jwks(state: &AppState) -> serde_json::Value {
    state
        .inner
        .ear
        .read()
        .map_or_else(|_| serde_json::json!({"keys": []}), |issuer| issuer.jwks())
}

/// `POST /api/v1/ear/rotate`: a new signing key; the old one stays published (and tokens it
/// signed verifiable) for the grace period. Persisted in `DATA_DIR/ear` before it is used,
/// and audited.
pub async fn rotate(
    state: &AppState,
    admin: &str,
) -> Result<vouch_api::fleet::EarKeyRotated, ApiError> {
    let now = Utc::now();
    let out = {
        let mut issuer = state
            .inner
            .ear
            .write()
            .map_err(|_| ApiError::internal("EAR issuer lock poisoned"))?;
        let previous_kid = issuer.current_kid().to_owned();
        let next = issuer
            .rotated(unix(now))
            .map_err(|e| ApiError::internal(format!("EAR key rotation failed: {e}")))?;
        next.save(&state.inner.config.data_dir.join(EAR_DIR))
            .map_err(|e| ApiError::internal(format!("EAR key not saved: {e}")))?;
        *issuer = next;
        let published = issuer
            .verification_keys(unix(now))
            .map_err(|e| ApiError::internal(format!("EAR keys: {e}")))?
            .kids()
            .map(str::to_owned)
            .collect();
        vouch_api::fleet::EarKeyRotated {
            kid: issuer.current_kid().to_owned(),
            previous_kid,
            published,
        }
    };
    state
        .audit(
            admin,
            "ear_key_rotate",
            "ear",
            serde_json::json!({"kid": out.kid, "previous_kid": out.previous_kid}),
            now,
        )
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn host(status: HostStatus, reasons: &[&str]) -> Host {
        let mut h = Host::new("h".into(), vec![1], vec![2], vec![3], 60, Utc::now());
        h.status = status;
        h.reasons = reasons.iter().map(|r| (*r).to_owned()).collect();
        h
    }

    #[test]
    fn trusted_claims_only_what_was_checked() {
        let mut h = host(HostStatus::Trusted, &[]);
        h.ek_cert = Some(vec![0x30]);
        let v = verdict_of(&h, true);
        assert_eq!(v.status, Status::Affirming);
        assert_eq!(
            v.trust_vector.instance_identity,
            ar4si::TRUSTWORTHY_INSTANCE
        );
        assert_eq!(v.trust_vector.executables, APPROVED_RUNTIME);
        assert_eq!(v.trust_vector.file_system, 0);
        // Under an EK override: no identity claim; without IMA: no executables claim.
        h.ek_override_by = Some("alice".into());
        let v = verdict_of(&h, false);
        assert_eq!(v.status, Status::Affirming);
        assert_eq!(v.trust_vector.instance_identity, 0);
        assert_eq!(v.trust_vector.executables, 0);
        assert_eq!(v.trust_vector.configuration, ar4si::APPROVED_CONFIG);
    }

    #[test]
    fn untrusted_contraindicates_the_categories_of_its_reasons() {
        let v = verdict_of(
            &host(
                HostStatus::Untrusted,
                &["IMA /usr/bin/evil: digest not allowed"],
            ),
            true,
        );
        assert_eq!(v.status, Status::Contraindicated);
        assert_eq!(v.trust_vector.executables, ar4si::CONTRAINDICATED_RUNTIME);
        assert_eq!(v.trust_vector.configuration, 0);
        let v = verdict_of(
            &host(
                HostStatus::Untrusted,
                &["TPM clock went backwards (5 -> 3 ms): rolled-back or replayed TPM state"],
            ),
            false,
        );
        assert_eq!(v.trust_vector.instance_identity, UNTRUSTWORTHY_INSTANCE);
        assert_eq!(v.trust_vector.configuration, 0);
        let v = verdict_of(&host(HostStatus::Untrusted, &["something new"]), false);
        assert_eq!(v.status, Status::Contraindicated);
        assert_eq!(v.trust_vector.configuration, ar4si::UNSUPPORTABLE_CONFIG);
    }

    #[test]
    fn no_current_appraisal_is_status_none() {
        for s in [
            HostStatus::Unreachable,
            HostStatus::AwaitingApproval,
            HostStatus::Enrolling,
            HostStatus::Removed,
        ] {
            let v = verdict_of(&host(s, &["approved; awaiting first attestation"]), true);
            assert_eq!(v.status, Status::None);
            assert_eq!(v.trust_vector, TrustVector::default());
        }
    }
}
