//! Rollout campaigns (issue 4, scope 4) stored as versioned documents (`campaign/{id}`):
//! `PUT /api/v1/rollouts/{id}` plans one (the new release's values must already be stored,
//! normally learned as candidates of this campaign), `POST /api/v1/rollouts/{id}/{action}`
//! starts it, advances it a wave, completes it (new release active, old one deprecated until
//! a date, written with the campaign in one transaction) or aborts it, and
//! `GET /api/v1/rollouts[/{id}]` says how many of the cohort's hosts measure the old release,
//! the new one, or neither, from their latest claims.
//!
//! The engine admits a candidate value only for hosts in the waves a running campaign has
//! reached, so a host that moves early, or to something else, is flagged while the canaries
//! stay trusted. Every change is audited.

use chrono::Utc;
use vouch_api::fleet::{RolloutAction, RolloutRequest, RolloutView};
use vouch_appraisal::{Campaign, CampaignState, Claims, RefStore};
use vouch_store::{DOC_CAMPAIGN, DOC_REFERENCES, NewDocument};

use crate::admin::Actor;
use crate::engine::load_campaigns;
use crate::error::ApiError;
use crate::fleet::{
    REFERENCES_ID, deadline, fleet_claims, load_refs, next_version, parse_component, parse_selector,
};
use crate::state::AppState;

/// Most `unknown` hosts named in a view.
const MAX_NAMED: usize = 100;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn view(c: &Campaign, version: u32, refs: &RefStore, claims: &[Claims]) -> RolloutView {
    let status = c.status(refs, claims);
    let (state, wave) = match c.state() {
        CampaignState::Planned => ("planned", None),
        CampaignState::Running { wave } => ("running", Some(wave.saturating_add(1))),
        CampaignState::Completed => ("completed", None),
        CampaignState::Aborted => ("aborted", None),
    };
    let admitted_percent = match c.state() {
        CampaignState::Running { wave } => c.waves().get(*wave).copied().unwrap_or(0),
        CampaignState::Completed => 100,
        CampaignState::Planned | CampaignState::Aborted => 0,
    };
    let unknown_hosts = claims
        .iter()
        .filter(|h| {
            c.selector().selects(&h.labels) && c.status(refs, std::iter::once(*h)).unknown == 1
        })
        .take(MAX_NAMED)
        .map(|h| h.host.clone())
        .collect();
    RolloutView {
        id: c.id().to_owned(),
        selector: c.selector().to_string(),
        component: c.component().to_string(),
        from: c.from_release().to_owned(),
        to: c.to_release().to_owned(),
        waves: c.waves().to_vec(),
        state: state.to_owned(),
        wave,
        admitted_percent,
        hosts: status.hosts,
        old: status.old,
        new: status.new,
        unknown: status.unknown,
        unknown_hosts,
        version,
    }
}

async fn find(state: &AppState, id: &str) -> Result<(Campaign, u32), ApiError> {
    load_campaigns(state)
        .await?
        .into_iter()
        .find(|(c, _)| c.id() == id)
        .ok_or_else(|| ApiError::NotFound(format!("no rollout campaign {id:?}")))
}

/// `GET /api/v1/rollouts`.
pub async fn list(state: &AppState) -> Result<Vec<RolloutView>, ApiError> {
    let (refs, _) = load_refs(state).await?;
    let (_, claims) = fleet_claims(state).await?;
    Ok(load_campaigns(state)
        .await?
        .iter()
        .map(|(c, v)| view(c, *v, &refs, &claims))
        .collect())
}

/// `GET /api/v1/rollouts/{id}`.
pub async fn get(state: &AppState, id: &str) -> Result<RolloutView, ApiError> {
    let (c, v) = find(state, id).await?;
    let (refs, _) = load_refs(state).await?;
    let (_, claims) = fleet_claims(state).await?;
    Ok(view(&c, v, &refs, &claims))
}

/// `PUT /api/v1/rollouts/{id}`: plan a campaign (409 if the id exists).
pub async fn create(
    state: &AppState,
    admin: &Actor,
    id: &str,
    req: RolloutRequest,
) -> Result<RolloutView, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::BadRequest(
            "a campaign id is 1-64 characters of A-Z a-z 0-9 - _ .".into(),
        ));
    }
    let selector = parse_selector(&req.selector)?;
    let component = parse_component(&req.component)?;
    let (refs, _) = load_refs(state).await?;
    for release in [&req.from, &req.to] {
        if refs.named(release).next().is_none() {
            return Err(ApiError::BadRequest(format!(
                "no reference release named {release:?}: learn or import it first"
            )));
        }
    }
    // A candidate of another campaign would never be admitted by this one.
    if let Some(other) = refs.named(&req.to).find_map(|r| match &r.state {
        vouch_appraisal::RefState::Candidate { campaign } if campaign.as_deref() != Some(id) => {
            Some(campaign.clone().unwrap_or_else(|| "no campaign".to_owned()))
        }
        _ => None,
    }) {
        return Err(ApiError::BadRequest(format!(
            "release {:?} is a candidate of {other:?}, not of this campaign {id:?}: learn it with --candidate-for {id}",
            req.to
        )));
    }
    let waves = if req.waves.is_empty() {
        vec![1, 20, 100]
    } else {
        req.waves.clone()
    };
    let salt = req.salt.clone().unwrap_or_else(|| id.to_owned());
    let c = Campaign::new(id, selector, component, &req.from, &req.to, waves, &salt)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if load_campaigns(state)
        .await?
        .iter()
        .any(|(x, _)| x.id() == id)
    {
        return Err(ApiError::Conflict(format!(
            "rollout campaign {id:?} exists"
        )));
    }
    let json = serde_json::to_value(&c).map_err(ApiError::internal)?;
    let now = Utc::now();
    let written = state
        .store()
        .put_appraisal_document(DOC_CAMPAIGN, id, 1, &json, now)
        .await?;
    crate::engine::invalidate(state);
    if !written {
        return Err(ApiError::Conflict(format!(
            "rollout campaign {id:?} exists"
        )));
    }
    state
        .audit(
            &admin.0,
            "rollout_create",
            &format!("rollout:{id}"),
            serde_json::json!({"selector": req.selector, "component": req.component,
                "from": req.from, "to": req.to, "waves": c.waves()}),
            now,
        )
        .await?;
    let (_, claims) = fleet_claims(state).await?;
    Ok(view(&c, 1, &refs, &claims))
}

/// `POST /api/v1/rollouts/{id}/{start|advance|complete|abort}`.
pub async fn act(
    state: &AppState,
    admin: &Actor,
    id: &str,
    action: &str,
    req: RolloutAction,
) -> Result<RolloutView, ApiError> {
    let (mut c, version) = find(state, id).await?;
    let (mut refs, refs_version) = load_refs(state).await?;
    let now = Utc::now();
    let bad = |e: vouch_appraisal::RolloutError| ApiError::Conflict(e.to_string());
    let mut refs_changed = false;
    match action {
        "start" => c.start().map_err(bad)?,
        "advance" => {
            c.advance().map_err(bad)?;
        }
        "complete" => {
            let until = deadline(req.deprecate_until.as_deref(), "deprecate_until", now)?;
            c.complete(&mut refs, until).map_err(bad)?;
            refs_changed = true;
        }
        "abort" => c.abort(),
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown action {other:?} (start, advance, complete, abort)"
            )));
        }
    }
    let next = version
        .checked_add(1)
        .ok_or_else(|| ApiError::Conflict("campaign version overflow".into()))?;
    let c_json = serde_json::to_value(&c).map_err(ApiError::internal)?;
    let r_json = serde_json::to_value(&refs).map_err(ApiError::internal)?;
    let r_next = next_version(refs_version)?;
    let mut docs = vec![NewDocument {
        kind: DOC_CAMPAIGN,
        id,
        version: next,
        json: &c_json,
    }];
    if refs_changed {
        docs.push(NewDocument {
            kind: DOC_REFERENCES,
            id: REFERENCES_ID,
            version: r_next,
            json: &r_json,
        });
    }
    let written = state.store().put_appraisal_documents(&docs, now).await?;
    crate::engine::invalidate(state);
    if !written {
        return Err(ApiError::Conflict(
            "the campaign or the reference store changed concurrently; retry".into(),
        ));
    }
    state
        .audit(
            &admin.0,
            &format!("rollout_{action}"),
            &format!("rollout:{id}"),
            serde_json::json!({"version": next, "state": c.state(),
                "references_version": refs_changed.then_some(r_next)}),
            now,
        )
        .await?;
    let (_, claims) = fleet_claims(state).await?;
    Ok(view(&c, next, &refs, &claims))
}
