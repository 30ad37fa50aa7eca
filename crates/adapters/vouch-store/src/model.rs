//! The records the store keeps, as Rust types (independent of the wire API and of the backend).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// PCR values: bank name (`sha256`) -> PCR index (decimal string) -> lowercase hex.
pub type Pcrs = BTreeMap<String, BTreeMap<String, String>>;

/// Labels a host declares or an operator sets.
pub type Labels = BTreeMap<String, String>;

/// Where a host stands: the domain's one definition ([`vouch_model::HostStatus`]).
pub use vouch_model::HostStatus;

/// How a baseline came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// Learned from the first good attestation after approval.
    Learned,
    /// Pinned by an operator.
    Pinned,
}

/// The accepted reference state of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Accepted PCR values.
    pub pcrs: Pcrs,
    /// Machine state (JSON of `vouch_tcglog::MachineState`) from the log accepted with it.
    pub machine_state: Option<serde_json::Value>,
    /// Learned or pinned.
    pub source: BaselineSource,
    /// When.
    pub set_at: DateTime<Utc>,
    /// Who pinned it (`None` when learned).
    pub set_by: Option<String>,
}

/// TPM clock and counters from the last verified quote (`TPMS_CLOCK_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// resetCount: TPM resets (boots).
    pub reset_count: u32,
    /// restartCount: TPM restarts (resume from hibernation) since the last reset.
    pub restart_count: u32,
    /// clock: milliseconds the TPM has been powered.
    pub clock: u64,
}

/// One enrolled (or enrolling) host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Stable id; also in the host's client certificate.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Status.
    pub status: HostStatus,
    /// Why the host has its status.
    pub reasons: Vec<String>,
    /// Labels.
    pub labels: Labels,
    /// The EK's `TPMT_PUBLIC`.
    pub ek_public: Vec<u8>,
    /// The EK certificate (DER as received), if any.
    pub ek_cert: Option<Vec<u8>>,
    /// The operator whose EK override let this host enrol without a valid EK chain.
    pub ek_override_by: Option<String>,
    /// The AK's `TPMT_PUBLIC`.
    pub ak_public: Vec<u8>,
    /// The AK's TPM name.
    pub ak_name: Vec<u8>,
    /// TPM manufacturer (from the EK certificate).
    pub tpm_manufacturer: Option<String>,
    /// TPM model (from the EK certificate).
    pub tpm_model: Option<String>,
    /// SHA-256 of the client certificate issued at activation: only that certificate is
    /// accepted for this host.
    pub client_cert_sha256: Option<Vec<u8>>,
    /// When the host was approved.
    pub approved_at: Option<DateTime<Utc>>,
    /// Who approved it (`auto:<selector>` for automatic approval).
    pub approved_by: Option<String>,
    /// The accepted baseline.
    pub baseline: Option<Baseline>,
    /// The event log accepted with the baseline (to name the first differing event).
    pub baseline_event_log: Option<Vec<u8>>,
    /// PCR values of the last verified quote.
    pub last_pcrs: Option<Pcrs>,
    /// Machine state of the last accepted event log.
    pub last_machine_state: Option<serde_json::Value>,
    /// Counters of the last verified quote (the high-water mark).
    pub counters: Option<Counters>,
    /// The last accepted event log (it replayed to a verified quote).
    pub event_log: Option<Vec<u8>>,
    /// SHA-256 of `event_log`.
    pub event_log_sha256: Option<Vec<u8>>,
    /// The next evidence must carry a full event log.
    pub needs_event_log: bool,
    /// Attestation interval.
    pub interval_secs: i64,
    /// When the host is next due (also the lease of an outstanding challenge).
    pub next_due: DateTime<Utc>,
    /// A trusted host becomes unreachable after this time without valid evidence.
    pub stale_after: Option<DateTime<Utc>>,
    /// Last verified evidence (whatever its verdict).
    pub last_seen: Option<DateTime<Utc>>,
    /// Last trusted verdict.
    pub last_good: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version: [`crate::Store::update_host`] refuses a stale copy.
    pub version: i64,
    /// The EK's TPM name (nameAlg + digest of its public area): unique across hosts, so one
    /// TPM has one identity. `None` only on rows written before it was recorded.
    pub ek_name: Option<Vec<u8>>,
    /// A finding that stays until an operator clears it (a TPM state rollback): while set,
    /// every appraisal of the host is untrusted with this reason.
    pub hold_reason: Option<String>,
    /// Labels the host asked for at a re-enrolment, waiting for an operator's approval.
    pub pending_labels: Option<Labels>,
    /// The operator who re-admitted this removed host (a tombstone lets nobody enrol under
    /// its name or EK until then).
    pub readmitted_by: Option<String>,
}

/// Reason a trusted host reads as unreachable once its last good appraisal is older than its
/// freshness limit (two intervals).
pub const STALE_REASON: &str = "no valid evidence within two attestation intervals";

impl Host {
    /// True when the host is trusted *now*: its stored status is trusted and its freshness
    /// limit (`stale_after`) has not passed. A missing limit is never fresh.
    #[must_use]
    pub fn trusted_at(&self, now: DateTime<Utc>) -> bool {
        self.status == HostStatus::Trusted && self.stale_after.is_some_and(|t| now < t)
    }

    /// The host as of `now`: a stored `trusted` whose freshness limit has passed reads
    /// `unreachable` ([`STALE_REASON`]). Applied to every host the store returns, so no
    /// reader (list, show, EAR, metrics, the agent's own status) can report a verdict older
    /// than its limit, whether or not the sweep that persists the change has run or could
    /// write.
    #[must_use]
    pub fn fresh_at(mut self, now: DateTime<Utc>) -> Self {
        let reasons = core::mem::take(&mut self.reasons);
        (self.status, self.reasons) = fresh_status(self.status, self.stale_after, reasons, now);
        self
    }
}

/// A stored status and its reasons as of `now` (see [`Host::fresh_at`]).
pub(crate) fn fresh_status(
    status: HostStatus,
    stale_after: Option<DateTime<Utc>>,
    reasons: Vec<String>,
    now: DateTime<Utc>,
) -> (HostStatus, Vec<String>) {
    if status == HostStatus::Trusted && stale_after.is_none_or(|t| now >= t) {
        (HostStatus::Unreachable, vec![STALE_REASON.to_owned()])
    } else {
        (status, reasons)
    }
}

impl Host {
    /// A new host in [`HostStatus::Enrolling`], due now, with no history.
    #[must_use]
    pub fn new(
        name: String,
        ek_public: Vec<u8>,
        ak_public: Vec<u8>,
        ak_name: Vec<u8>,
        interval_secs: i64,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            name,
            status: HostStatus::Enrolling,
            reasons: Vec::new(),
            labels: Labels::new(),
            ek_public,
            ek_cert: None,
            ek_override_by: None,
            ak_public,
            ak_name,
            tpm_manufacturer: None,
            tpm_model: None,
            client_cert_sha256: None,
            approved_at: None,
            approved_by: None,
            baseline: None,
            baseline_event_log: None,
            last_pcrs: None,
            last_machine_state: None,
            counters: None,
            event_log: None,
            event_log_sha256: None,
            needs_event_log: true,
            interval_secs,
            next_due: now,
            stale_after: None,
            last_seen: None,
            last_good: None,
            created_at: now,
            updated_at: now,
            version: 0,
            ek_name: None,
            hold_reason: None,
            pending_labels: None,
            readmitted_by: None,
        }
    }
}

/// A pending credential challenge. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// Id handed to the agent.
    pub id: Uuid,
    /// Host name the agent asked for.
    pub host_name: String,
    /// SHA-256 of the credential secret.
    pub secret_sha256: [u8; 32],
    /// After this, activation is refused.
    pub expires_at: DateTime<Utc>,
    /// EK `TPMT_PUBLIC`.
    pub ek_public: Vec<u8>,
    /// EK certificate DER, if presented.
    pub ek_cert: Option<Vec<u8>>,
    /// The EK certificate chained to an allowed root and its key is the EK's.
    pub ek_chain_ok: bool,
    /// Operator whose override allowed enrolment without a valid chain.
    pub ek_override_by: Option<String>,
    /// AK `TPMT_PUBLIC`.
    pub ak_public: Vec<u8>,
    /// AK name.
    pub ak_name: Vec<u8>,
    /// TPM manufacturer.
    pub tpm_manufacturer: Option<String>,
    /// TPM model.
    pub tpm_model: Option<String>,
    /// Labels the agent declared.
    pub labels: Labels,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The source address that asked (pending enrolments are capped per source).
    pub source: String,
}

/// An operator's permission for one TPM (its EK) to enrol under one host name without a
/// valid EK chain, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkOverride {
    /// Host name.
    pub host_name: String,
    /// The EK's TPM name the override is for: no other TPM can use it. `None` only on
    /// overrides recorded before overrides were bound to an EK; such an override allows
    /// nothing.
    pub ek_name: Option<Vec<u8>>,
    /// Who allowed it.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// After this the override allows nothing. `None` only on legacy overrides (which allow
    /// nothing either).
    pub expires_at: Option<DateTime<Utc>>,
}

impl EkOverride {
    /// True when this override lets the TPM with EK name `ek_name` enrol at `now`.
    #[must_use]
    pub fn allows(&self, ek_name: &[u8], now: DateTime<Utc>) -> bool {
        self.ek_name.as_deref() == Some(ek_name) && self.expires_at.is_some_and(|t| now < t)
    }
}

/// A role an API token carries; each role can do what the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads what a relying party needs: host status, EARs, metrics, fleet views.
    Reader,
    /// Runs the fleet: approves, attests, removes hosts, manages references and rollouts.
    Operator,
    /// Everything, including tokens, EK overrides and key rotation.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Self; 3] = [Self::Reader, Self::Operator, Self::Admin];

    /// The stored (and wire) name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parse a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API token as stored (the token itself never is: only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Unique name (the actor in the audit log).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// After this it is refused.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A refused enrolment or rejected evidence, kept for operators (`vouch hosts list --all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When.
    pub at: DateTime<Utc>,
    /// The host name asked for (or the host's name).
    pub host_name: String,
    /// `enrolment` or `evidence`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// The peer address.
    pub peer: String,
}

/// What consuming a nonce found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum NonceCheck {
    /// Issued to this host, unused and unexpired: now consumed.
    Valid {
        /// The challenge asked for a full event log.
        want_event_log: bool,
    },
    /// Issued to this host but expired (now deleted).
    Expired,
    /// Never issued to this host, or already used.
    Unknown,
}

/// One attestation in a host's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// Host.
    pub host_id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Resulting status.
    pub status: HostStatus,
    /// Reasons.
    pub reasons: Vec<String>,
    /// Counters of the quote, when it verified.
    pub counters: Option<Counters>,
    /// Quoted PCR values, when the quote verified.
    pub pcrs: Option<Pcrs>,
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (admin token name, `agent:<host>`, `system`).
    pub actor: String,
    /// What (`approve`, `remove`, `ek_override`, ...).
    pub action: String,
    /// On what (a host name).
    pub target: String,
    /// Details.
    pub detail: serde_json::Value,
}

/// The verifier's running IMA state for one host and boot: how far the host's measurement
/// list has been replayed against quoted PCR 10, and the value reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaState {
    /// Host.
    pub host_id: Uuid,
    /// The TPM resetCount (boot) this state belongs to; another boot starts over.
    pub reset_count: u32,
    /// Entries replayed (the offset the next list tail starts at).
    pub entry_count: u64,
    /// Algorithm of the list's template hashes (`sha1`, ...).
    pub template_hash_alg: String,
    /// How the host's kernel extends non-SHA-1 banks (`per_bank`, `sha1_padded`).
    pub convention: String,
    /// PCR 10 after `entry_count` entries: bank name -> lowercase hex.
    pub pcr10: BTreeMap<String, String>,
    /// The list's boot_aggregate matched the quoted boot PCRs.
    pub boot_aggregate_ok: bool,
    /// SHA-256 of the runtime policy the entries were appraised against (`None`: no policy).
    pub policy_sha256: Option<Vec<u8>>,
    /// The first failure seen in this boot (a rejected entry, a forged entry); it stays until
    /// the host reboots or gets a policy that accepts the whole list again.
    pub failure: Option<String>,
    /// When written.
    pub updated_at: DateTime<Utc>,
}

/// A stored IMA runtime policy: one row per distinct content, shared by every host using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaPolicy {
    /// Id.
    pub id: Uuid,
    /// SHA-256 of the policy JSON as stored.
    pub sha256: [u8; 32],
    /// The policy document (JSON).
    pub policy: serde_json::Value,
    /// Number of allowlisted paths.
    pub paths: u64,
    /// When first stored.
    pub created_at: DateTime<Utc>,
}

/// What the verifier needs to know about a host's IMA at challenge and evidence time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImaContext {
    /// The host's runtime policy: id and SHA-256 (the document is fetched only when the
    /// verifier has not compiled it yet).
    pub policy: Option<(Uuid, [u8; 32])>,
    /// The running state, if any.
    pub state: Option<ImaState>,
}

/// A stored appraisal document (issue 4): a policy (`kind` [`DOC_POLICY`]) or a reference
/// store (`kind` [`DOC_REFERENCES`]), one row per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppraisalDocument {
    /// What it is ([`DOC_POLICY`], [`DOC_REFERENCES`]).
    pub kind: String,
    /// Its id (a policy's id; `default` for the reference store).
    pub id: String,
    /// Its version.
    pub version: u32,
    /// The document.
    pub json: serde_json::Value,
    /// When stored.
    pub created_at: DateTime<Utc>,
}

/// `kind` of a policy document.
pub const DOC_POLICY: &str = "policy";
/// `kind` of a reference store document.
pub const DOC_REFERENCES: &str = "references";
/// `kind` of a rollout campaign document.
pub const DOC_CAMPAIGN: &str = "campaign";

/// A document version to store ([`crate::Store::put_appraisal_documents`]).
#[derive(Debug, Clone, Copy)]
pub struct NewDocument<'a> {
    /// Kind.
    pub kind: &'a str,
    /// Id.
    pub id: &'a str,
    /// Version (must not exist yet).
    pub version: u32,
    /// Content.
    pub json: &'a serde_json::Value,
}

/// What fleet appraisal made of one attestation, written in its transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetRecord {
    /// The host's claims derived from this attestation; `None` keeps the stored ones (nothing
    /// they are derived from changed, or the quote or log did not allow deriving new ones).
    pub claims: Option<serde_json::Value>,
    /// What happens to the host's stored engine verdict.
    pub verdict: VerdictUpdate,
}

/// The stored engine verdict after an attestation.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum VerdictUpdate {
    /// Leave it (no fleet policy is stored at all: there is none to replace).
    #[default]
    Keep,
    /// Replace it with this verdict.
    Set(serde_json::Value),
    /// Delete it (no policy applied to this attestation).
    Clear,
}

/// One host as fleet operations see it ([`crate::Store::fleet_snapshot`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEntry {
    /// Host id.
    pub host_id: Uuid,
    /// Host name.
    pub name: String,
    /// Status.
    pub status: HostStatus,
    /// Current reasons.
    pub reasons: Vec<String>,
    /// Labels.
    pub labels: Labels,
    /// Latest claims, if any were derived.
    pub claims: Option<serde_json::Value>,
    /// Latest engine verdict, if a policy applied to the latest attestation.
    pub verdict: Option<serde_json::Value>,
}
