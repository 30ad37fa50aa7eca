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

use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vouch_appraisal::{Policy, PolicyDoc, RefStore};
use vouch_store::{DOC_POLICY, DOC_REFERENCES};

use crate::admin::Admin;
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
    admin: &Admin,
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
    if !store
        .put_appraisal_document(DOC_POLICY, id, doc.version, &json, now)
        .await?
    {
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
    admin: &Admin,
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
    if !store
        .put_appraisal_document(DOC_REFERENCES, REFERENCES_ID, version, &json, now)
        .await?
    {
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
