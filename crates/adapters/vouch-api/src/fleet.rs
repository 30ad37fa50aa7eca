//! Fleet reference-value operations (issue 4): learning, lifecycle changes, rollout campaigns,
//! triage, EAR key rotation. Selectors are written as text (`all` or `key=value,...`) and
//! components by name (`platform_firmware`, `boot_chain`, ...); the verifier parses and
//! validates them. Domain documents (reference values, proposals) travel as JSON objects in
//! the shape `vouch-appraisal` serializes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn default_quorum() -> u8 {
    80
}

/// `POST /api/v1/references/learn`: propose reference values from one host's or a cohort's
/// latest claims; with `accept`, store them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnRequest {
    /// Release name of the new values (`bios-2.19`).
    pub name: String,
    /// Learn from this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_host: Option<String>,
    /// Learn from the hosts this selector selects (`cohort=r750`): values a quorum agrees on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_cohort: Option<String>,
    /// Components to learn (`platform_firmware`, `boot_chain`, ...).
    pub components: Vec<String>,
    /// Hosts the new values apply to; defaults to `from_cohort` (required with `from_host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Percentage of the cohort that must agree on a value (51-100).
    #[serde(default = "default_quorum")]
    pub quorum_percent: u8,
    /// Store the proposal (otherwise only show it and its diff).
    #[serde(default)]
    pub accept: bool,
    /// Store the values as candidates of this rollout campaign instead of active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_for: Option<String>,
}

/// The answer to a [`LearnRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LearnResponse {
    /// Release name.
    pub name: String,
    /// Hosts learned from.
    pub hosts: usize,
    /// Proposed reference values (`vouch_appraisal::ReferenceValue` objects).
    #[schema(value_type = Vec<Object>)]
    pub proposed: Vec<serde_json::Value>,
    /// Values the quorum did not agree on, with their hosts (`vouch_appraisal::Minority`).
    #[schema(value_type = Vec<Object>)]
    pub minority: Vec<serde_json::Value>,
    /// Lines added (`+ component slot digest (detail)`).
    pub added: Vec<String>,
    /// Values already stored under this name.
    pub unchanged: usize,
    /// Active values for the same hosts and components the proposal lacks (`- ...`).
    pub not_in_proposal: Vec<String>,
    /// True when stored.
    pub accepted: bool,
    /// The reference store version written when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// One release (values sharing a name) in the reference store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseSummary {
    /// Name.
    pub name: String,
    /// Lifecycle states of its values (usually one).
    pub states: Vec<String>,
    /// Number of values.
    pub values: usize,
    /// Components covered.
    pub components: Vec<String>,
    /// Selectors of its values.
    pub selectors: Vec<String>,
    /// Hosts whose latest claims measure one of its values.
    pub hosts_measuring: usize,
}

/// `GET /api/v1/references`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReferencesView {
    /// Stored version (none before the first put).
    pub version: Option<u32>,
    /// Releases, in store order.
    pub releases: Vec<ReleaseSummary>,
    /// The whole store (`vouch_appraisal::RefStore`).
    #[schema(value_type = Object)]
    pub references: serde_json::Value,
}

/// `POST /api/v1/references/{name}/{revoke|deprecate|activate}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefStateRequest {
    /// Why (required to revoke: the advisory, e.g. `CVE-2024-xxxx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Deprecate: accepted until this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A lifecycle change and the hosts it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefStateChanged {
    /// Release name.
    pub name: String,
    /// New state (`revoked`, `deprecated`, `active`).
    pub state: String,
    /// Values changed.
    pub values: usize,
    /// Hosts whose latest claims measure a value of this release that no other release
    /// covers: contraindicated at their next attestation (revoke), flagged after the deadline
    /// (deprecate).
    pub affected_hosts: usize,
    /// Their names (sorted).
    pub hosts: Vec<String>,
    /// The reference store version written.
    pub version: u32,
}

/// `PUT /api/v1/rollouts/{id}`: plan a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// Cohort (`cohort=r750`).
    pub selector: String,
    /// Component updated (`platform_firmware`).
    pub component: String,
    /// Release hosts move from.
    pub from: String,
    /// Release hosts move to (its values must be stored, normally as candidates of this id).
    pub to: String,
    /// Waves in percent of the cohort, increasing, ending at 100 (default 1, 20, 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<u8>,
    /// Decides which hosts fall in which wave (default: the campaign id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// `POST /api/v1/rollouts/{id}/{start|advance|complete|abort}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutAction {
    /// Complete: the old release stays accepted (deprecated) until this time (RFC 3339;
    /// default 30 days from now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecate_until: Option<String>,
}

/// A campaign and where its cohort's hosts are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    /// Id.
    pub id: String,
    /// Cohort.
    pub selector: String,
    /// Component.
    pub component: String,
    /// Old release.
    pub from: String,
    /// New release.
    pub to: String,
    /// Waves (percent).
    pub waves: Vec<u8>,
    /// `planned`, `running`, `completed`, `aborted`.
    pub state: String,
    /// Current wave (1-based) while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    /// Percent of the cohort admitted to the new release.
    pub admitted_percent: u8,
    /// Hosts of the cohort with claims.
    pub hosts: usize,
    /// Hosts measuring the old release.
    pub old: usize,
    /// Hosts measuring the new release.
    pub new: usize,
    /// Hosts measuring neither (or a mix): flagged by appraisal.
    pub unknown: usize,
    /// Names of the `unknown` hosts (at most 100).
    pub unknown_hosts: Vec<String>,
    /// Stored campaign version.
    pub version: u32,
}

/// A group of failing hosts sharing their causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriageGroupView {
    /// `likely_update`, `lifecycle` or `isolated`.
    pub assessment: String,
    /// Hosts (sorted).
    pub hosts: Vec<String>,
    /// The causes, one line each (`component finding value`).
    pub causes: Vec<String>,
    /// One line for people.
    pub explanation: String,
}

/// A host that is not trusted without an engine verdict (its evidence failed before
/// appraisal, or it is unreachable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotAppraised {
    /// Host.
    pub host: String,
    /// Status.
    pub status: String,
    /// First reason.
    pub reason: String,
}

/// `GET /api/v1/fleet/triage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FleetTriage {
    /// Hosts (not removed).
    pub hosts: usize,
    /// Hosts with an engine verdict.
    pub appraised: usize,
    /// Of those, affirming.
    pub affirming: usize,
    /// Failing hosts grouped by cause, largest group first.
    pub groups: Vec<TriageGroupView>,
    /// Values no cohort peer shares and no reference covers, with their context.
    pub outliers: Vec<String>,
    /// Hosts failing before appraisal.
    pub not_appraised: Vec<NotAppraised>,
}

/// `POST /api/v1/ear/rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EarKeyRotated {
    /// The key that signs from now on.
    pub kid: String,
    /// The key it replaced (still published for the grace period).
    pub previous_kid: String,
    /// Every key in `/.well-known/jwks.json` now.
    pub published: Vec<String>,
}
