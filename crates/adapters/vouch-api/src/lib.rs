//! The Vouch REST API: the request and response types exchanged by the verifier
//! (`vouch serve`), the host agent (`vouch agent`) and the operator CLI, and a typed client.
//!
//! Binary TPM structures travel as standard base64 ([`Bytes`]) and are kept byte for byte:
//! the verifier checks every signature over exactly the bytes the TPM produced. PCR values
//! travel as `{bank: {index: lowercase hex}}`, the same shape as `vouch eventlog replay --json`.
//!
//! Routes (all under `https://VERIFIER`):
//!
//! | route | auth | body -> response |
//! | --- | --- | --- |
//! | `POST /api/v1/agent/enrol` | TLS, no client cert | [`EnrolRequest`] -> [`EnrolResponse`] |
//! | `POST /api/v1/agent/activate` | TLS, no client cert | [`ActivateRequest`] -> [`ActivateResponse`] |
//! | `GET /api/v1/agent/challenge` | mutual TLS (host cert) | -> [`ChallengeResponse`] (long-poll) |
//! | `POST /api/v1/agent/evidence` | mutual TLS | [`EvidenceRequest`] -> [`EvidenceResponse`] |
//! | `GET /api/v1/agent/status` | mutual TLS | -> [`HostSummary`] |
//! | `GET /api/v1/hosts` | admin bearer token | -> `[HostSummary]` |
//! | `GET /api/v1/hosts/{name}` | admin | -> [`HostDetail`] |
//! | `POST /api/v1/hosts/{name}/approve` | admin | -> [`HostSummary`] |
//! | `POST /api/v1/hosts/{name}/attest` | admin | -> [`HostSummary`] (due now) |
//! | `DELETE /api/v1/hosts/{name}` | admin | -> [`HostSummary`] (removed) |
//! | `POST /api/v1/hosts/{name}/ek-override` | admin | [`EkOverrideRequest`] -> [`HostSummary`] |
//! | `POST /api/v1/ima/policies` | admin | IMA runtime policy JSON -> [`ImaPolicyCreated`] |
//! | `POST /api/v1/hosts/{name}/ima-policy` | admin | [`ImaPolicyAssignment`] -> [`HostSummary`] |
//! | `POST /api/v1/ima/assign` | admin | [`ImaPolicySelectorAssignment`] -> `[HostSummary]` |
//! | `POST /api/v1/hosts/{name}/readmit` | operator | -> [`HostSummary`] (a removed host may enrol again) |
//! | `POST /api/v1/hosts/{name}/clear` | operator | [`ClearRequest`] -> [`HostSummary`] |
//! | `GET /api/v1/enrolments` | reader | -> [`EnrolmentsView`] |
//! | `POST /api/v1/tokens`, `GET /api/v1/tokens`, `DELETE /api/v1/tokens/{name}` | admin | [`TokenRequest`] -> [`TokenCreated`] |
//! | `GET /metrics` | reader | Prometheus text |
//! | `GET /api/openapi.json`, `/api/docs`, `/healthz`, `/readyz` | none | |
//!
//! Token roles: `reader` (GET routes, EARs, metrics), `operator` (every change to hosts and
//! fleet documents), `admin` (tokens, EK overrides, EAR key rotation).
//!
//! Errors are `{"error": "..."}` ([`ApiErrorBody`]) with a 4xx/5xx status.
//!
//! Trust assumptions: none of these types is trusted because it parsed; the verifier decodes
//! and verifies every TPM structure inside them with the evidence core.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

pub mod client;
pub mod fleet;

pub use client::{AdminClient, AgentClient, ClientError};

/// Opaque bytes, base64 (standard alphabet, padded) on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl core::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_encoding("base64")
            .description(Some("bytes, standard base64"))
            .into()
    }
}

impl utoipa::ToSchema for Bytes {}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

/// PCR values: bank name (`sha1`, `sha256`, ...) -> PCR index (decimal string) -> lowercase hex.
pub type PcrMap = BTreeMap<String, BTreeMap<String, String>>;

/// Where a host stands: the domain's one definition ([`vouch_model::HostStatus`]), with its
/// lifecycle ([`vouch_model::HostStatus::can_become`]).
pub use vouch_model::HostStatus;

/// Step 1 of enrolment: the agent presents its TPM's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrolRequest {
    /// Host name, unique in the fleet.
    pub name: String,
    /// The EK's `TPMT_PUBLIC`, as the TPM returns it.
    pub ek_public: Bytes,
    /// The EK certificate read from the TPM's NV (may carry trailing 0xFF padding), if any.
    pub ek_certificate: Option<Bytes>,
    /// The AK's `TPMT_PUBLIC`.
    pub ak_public: Bytes,
    /// Labels the host declares (site, role, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The verifier's credential challenge: only the TPM holding the EK, with the AK loaded, can
/// recover the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrolResponse {
    /// Identifies this enrolment in [`ActivateRequest`].
    pub enrolment_id: String,
    /// `TPM2B_ID_OBJECT` contents (integrity HMAC and encrypted credential).
    pub id_object: Bytes,
    /// `TPM2B_ENCRYPTED_SECRET` contents (RSA-OAEP ciphertext or ECC point).
    pub encrypted_secret: Bytes,
}

/// Step 2: the recovered secret, and a CSR for the host's mutual-TLS identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivateRequest {
    /// From [`EnrolResponse`].
    pub enrolment_id: String,
    /// What TPM2_ActivateCredential returned.
    pub secret: Bytes,
    /// PKCS#10 certificate signing request (PEM) for the agent's TLS key.
    pub csr_pem: String,
}

/// The host's identity: a client certificate from the verifier's CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivateResponse {
    /// The host's id (also in the certificate).
    pub host_id: String,
    /// Status after enrolment: `awaiting_approval`, or `unreachable` (approved, not yet attested).
    pub status: HostStatus,
    /// The client certificate (PEM) for every later call.
    pub client_certificate_pem: String,
    /// The verifier CA certificate (PEM).
    pub ca_certificate_pem: String,
}

/// What the verifier wants from the host now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChallengeResponse {
    /// True when the host must attest now; then `nonce` and `pcr_selection` are set.
    pub due: bool,
    /// When not due: ask again after this many milliseconds.
    pub retry_after_ms: u64,
    /// A fresh, single-use, expiring nonce to quote with.
    pub nonce: Option<Bytes>,
    /// PCRs to quote, tpm2-tools syntax: `sha256:0,1,2,3,4,5,6,7,8,9,14`.
    pub pcr_selection: Option<String>,
    /// Send the full event log with this evidence (after a reboot, a PCR change, or when the
    /// verifier has none).
    pub want_event_log: bool,
    /// Host status, for the agent's log.
    pub status: HostStatus,
    /// IMA measurements wanted with this evidence (`None`: no IMA for this host). Absent in
    /// answers of verifiers that predate IMA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima: Option<ImaRequest>,
}

/// Which IMA measurement-list entries the verifier wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImaRequest {
    /// Index of the first entry wanted: the verifier has replayed entries `0..offset` of the
    /// boot `reset_count` names.
    pub offset: u64,
    /// The TPM resetCount (boot) the offset belongs to; `None` when the verifier has no IMA
    /// state for this host. An agent whose quote shows another resetCount (it rebooted) sends
    /// its list from entry 0.
    #[serde(default)]
    pub reset_count: Option<u32>,
}

/// The tail of the host's IMA measurement list (binary form, as securityfs gives it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImaEvidence {
    /// Index of the first entry in `entries`: the requested offset, or 0 to start over.
    pub offset: u64,
    /// Algorithm of the listed template hashes (`sha1` for `binary_runtime_measurements`).
    pub template_hash_alg: String,
    /// The raw binary entries from `offset` to the end of the list as read after the quote
    /// (at least what the quote covers; possibly empty).
    pub entries: Bytes,
}

/// Evidence answering a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceRequest {
    /// The nonce from the challenge.
    pub nonce: Bytes,
    /// Raw `TPMS_ATTEST` from TPM2_Quote.
    pub attest: Bytes,
    /// Marshalled `TPMT_SIGNATURE`.
    pub signature: Bytes,
    /// The PCR values the quote covers.
    pub pcrs: PcrMap,
    /// The UEFI event log (`binary_bios_measurements`), when asked for.
    pub event_log: Option<Bytes>,
    /// New IMA measurement-list entries, when the challenge asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ima: Option<ImaEvidence>,
    /// The running kernel's command line (`/proc/cmdline`), sent with the event log. Unverified
    /// text: the verifier shows it only when it hashes to the command-line digest the kernel's
    /// EFI stub measured into PCR 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_cmdline: Option<String>,
}

/// The verifier's verdict on the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceResponse {
    /// Resulting status.
    pub status: HostStatus,
    /// Why, when not trusted.
    pub reasons: Vec<String>,
    /// Milliseconds until the next attestation is due.
    pub next_due_ms: u64,
}

/// One host, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostSummary {
    /// Host id.
    pub id: String,
    /// Host name.
    pub name: String,
    /// Status.
    pub status: HostStatus,
    /// Reasons for the status (each names the PCR and, where known, the event).
    pub reasons: Vec<String>,
    /// Time of the last attestation (RFC 3339), if any.
    pub last_attestation: Option<String>,
    /// TPM manufacturer from the EK certificate.
    pub tpm_manufacturer: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One attestation in a host's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttestationRecord {
    /// When (RFC 3339).
    pub at: String,
    /// Resulting status.
    pub status: HostStatus,
    /// Reasons.
    pub reasons: Vec<String>,
    /// TPM resetCount (boots).
    pub reset_count: Option<u32>,
    /// TPM restartCount.
    pub restart_count: Option<u32>,
    /// TPM clock (ms).
    pub clock: Option<u64>,
}

/// Everything about one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: HostSummary,
    /// AK name (hex).
    pub ak_name: String,
    /// EK certificate subject / issuer, if one was presented.
    pub ek_certificate: Option<String>,
    /// True when enrolment used an operator's EK override.
    pub ek_override: bool,
    /// The accepted baseline PCR values.
    pub baseline_pcrs: Option<PcrMap>,
    /// The machine state from the last accepted event log (JSON of `vouch eventlog state`).
    pub machine_state: Option<serde_json::Value>,
    /// Recent attestations, newest first.
    pub history: Vec<AttestationRecord>,
}

/// An operator's explicit permission for one TPM (named by its EK) to enrol under one host
/// name without an EK certificate chain, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EkOverrideRequest {
    /// Why (kept in the audit log).
    pub reason: String,
    /// The TPM name of the EK allowed (hex, as `tpm2_readpublic` prints `name:`); no other
    /// TPM can use the override. Required.
    #[serde(default)]
    pub ek_name: Option<String>,
    /// When the override stops allowing anything (RFC 3339; default 24 hours, at most 30
    /// days from now).
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Body of `POST /api/v1/hosts/{name}/clear`: lift a finding that stays until an operator
/// clears it (a TPM state rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClearRequest {
    /// Why the finding is acceptable (kept in the audit log).
    pub reason: String,
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Unique name (the actor the audit log shows).
    pub name: String,
    /// `admin`, `operator` or `reader`.
    pub role: String,
    /// Expiry (RFC 3339), if any.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// An API token as listed (the token itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Name.
    pub name: String,
    /// `admin`, `operator` or `reader`.
    pub role: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Expiry (RFC 3339), if any.
    pub expires_at: Option<String>,
}

/// A new API token: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The token's metadata.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer token.
    pub token: String,
}

/// A pending (not yet activated) enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingEnrolment {
    /// Host name asked for.
    pub name: String,
    /// Source address.
    pub source: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Expires (RFC 3339).
    pub expires_at: String,
    /// The EK certificate chained to an allowed root.
    pub ek_chain_ok: bool,
}

/// A refused enrolment or rejected evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefusalRecord {
    /// When (RFC 3339).
    pub at: String,
    /// Host name.
    pub name: String,
    /// `enrolment` or `evidence`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// Peer address.
    pub peer: String,
}

/// `GET /api/v1/enrolments`: pending enrolments and recent refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentsView {
    /// Pending, newest first.
    pub pending: Vec<PendingEnrolment>,
    /// Refused enrolments and rejected evidence, newest first.
    pub refused: Vec<RefusalRecord>,
}

/// A stored IMA runtime policy (stored once, by content, however many hosts use it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImaPolicyCreated {
    /// Policy id (the same id for the same content).
    pub id: String,
    /// SHA-256 of the canonical policy JSON (hex).
    pub sha256: String,
    /// Number of allowlisted paths.
    pub paths: u64,
}

/// Give one host an IMA runtime policy, or take it away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImaPolicyAssignment {
    /// Policy id from `POST /api/v1/ima/policies`; `null` removes the host's policy.
    pub policy_id: Option<String>,
}

/// Give every current host matching a selector an IMA runtime policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImaPolicySelectorAssignment {
    /// Policy id from `POST /api/v1/ima/policies`.
    pub policy_id: String,
    /// `name=GLOB` or `label:KEY=GLOB` terms joined by `,` (all must match).
    pub selector: String,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_as_base64() {
        let b = Bytes(vec![0, 1, 2, 255]);
        let s = serde_json::to_string(&b).unwrap();
        assert_eq!(s, "\"AAEC/w==\"");
        assert_eq!(serde_json::from_str::<Bytes>(&s).unwrap(), b);
        assert!(serde_json::from_str::<Bytes>("\"not base64!\"").is_err());
    }

    #[test]
    fn ima_fields_are_optional_both_ways() {
        // An old agent's evidence (no `ima`) still parses, and a new one without IMA writes
        // nothing an old verifier would not know.
        let old =
            r#"{"nonce":"AA==","attest":"AA==","signature":"AA==","pcrs":{},"event_log":null}"#;
        let ev: EvidenceRequest = serde_json::from_str(old).unwrap();
        assert_eq!(ev.ima, None);
        assert!(!serde_json::to_string(&ev).unwrap().contains("ima"));
        let ch = r#"{"due":true,"retry_after_ms":0,"nonce":null,"pcr_selection":null,"want_event_log":false,"status":"trusted","ima":{"offset":7}}"#;
        let ch: ChallengeResponse = serde_json::from_str(ch).unwrap();
        assert_eq!(
            ch.ima,
            Some(ImaRequest {
                offset: 7,
                reset_count: None
            })
        );
    }

    #[test]
    fn status_uses_snake_case_names() {
        assert_eq!(
            serde_json::to_string(&HostStatus::AwaitingApproval).unwrap(),
            "\"awaiting_approval\""
        );
        for s in [
            "enrolling",
            "awaiting_approval",
            "trusted",
            "untrusted",
            "unreachable",
            "removed",
        ] {
            assert_eq!(HostStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(HostStatus::parse("ok").is_none());
    }
}
