//! The Vouch verifier (`vouch serve`) as a library: enrolment, scheduling, challenges,
//! appraisal, history and the operator API, over HTTPS with optional client certificates.
//!
//! Start it with [`serve`] (binds, returns a [`ServerHandle`] with the bound address and a
//! shutdown method), or build a [`Verifier`] and drive [`Verifier::router`] with
//! `tower::ServiceExt::oneshot` in tests. Routes and their JSON are those of `vouch-api`,
//! plus `POST /api/v1/hosts/{name}/baseline` ([`admin::BaselineRequest`]) and
//! `GET /api/v1/hosts/{name}/history`, and signed attestation results for relying parties
//! (`GET /api/v1/hosts/{name}/ear`, keys at `/.well-known/jwks.json`: see [`ear`]); the
//! OpenAPI document at `/api/openapi.json` is generated from the handlers
//! ([`routes::openapi`]), browsable at `/api/docs`. Fleet reference values (issue 4):
//! policies and the reference store as versioned documents ([`fleet`]), learning, revocation
//! and deprecation with the hosts affected, rollout campaigns ([`rollout`]), live triage
//! ([`fleet_triage`]) and the fleet engine applied to every evidence of a host a policy
//! selects (the `engine` module), with each host's claims and verdict stored in its
//! attestation's transaction.
//!
//! # Trust assumptions
//!
//! * The data directory and the database are trusted: they hold the CA key (`ca.key`,
//!   0600), the admin-token hashes and every host's baseline.
//! * A host's identity is its EK, trusted only through an EK certificate chain to the
//!   bundled vendor roots or `--ek-roots` ([`vouch_x509::RootStore`]) whose key equals the
//!   TPM's EK. Enrolment **fails closed** without one, unless an operator recorded an audited
//!   per-host override; such hosts are never approved automatically.
//! * The AK is bound to the EK by MakeCredential: only the TPM holding the EK can recover the
//!   32-byte secret (kept as a hash) with the AK loaded; it must be a restricted signing key.
//!   Activation issues a client certificate (CN and SAN URI = host id); agent routes accept
//!   only the certificate issued at the host's latest activation, and none once removed.
//! * Evidence is trusted only after: the nonce was issued to this host, is unused and
//!   unexpired (consumed atomically); the quote verifies with the stored AK over the raw
//!   bytes and covers the configured PCRs; the TPM counters did not go backwards; the event
//!   log replays to the quoted boot PCRs; PCRs and machine state equal the baseline, or,
//!   for a host a fleet policy selects, the engine's verdict over its claims is not
//!   contraindicated (operator policies, reference values and Rego rules are trusted as the
//!   admin API stored them). See [`appraise`]. Malformed or oversized evidence is refused with a 4xx before anything is
//!   consumed or changed.
//! * IMA (`ServeConfig::ima`, or a host with a runtime policy): the quote also covers
//!   `sha256:10`; the agent sends its measurement list from the offset the verifier asks for,
//!   and the list must replay to the quoted PCR 10 from the state stored per host and boot
//!   (see [`ima`]). PCR 10 is then left out of the baseline comparison: the list explains it.
//! * No host is reported trusted on stored state alone: at start every trusted host becomes
//!   `unreachable` ("verifier restarted; awaiting fresh evidence") and due now; a trusted
//!   host without valid evidence for two intervals becomes `unreachable`. The six states are
//!   those of `vouch_api::HostStatus`; an approved host that has not attested yet is
//!   `unreachable` ("approved; awaiting first attestation").
//! * Auto-approval ([`config::Selector`]): `all`, or `name=GLOB` / `KEY=GLOB` terms, joined by
//!   `,` (all must match); several selectors: any may match. Only with a valid EK chain.
//! * Operator routes need `Authorization: Bearer <token>` of a role at least the route's
//!   (`reader` < `operator` < `admin`, checked by the [`admin::Reader`], [`admin::Operator`]
//!   and [`admin::Admin`] extractors); tokens are stored as
//!   SHA-256 only, may expire, and are rate-limited per source. Every operator change is
//!   audited. Tokens and secrets are never logged.
//! * One TPM, one identity: the EK's TPM name is unique across hosts; a removed host's name
//!   and EK stay refused until an operator re-admits them; EK overrides name one EK and
//!   expire; agents cannot declare `detected.*` / `reported.*` labels, and a label change at
//!   re-enrolment waits for an operator (see [`agent`]).
//! * Freshness is judged when answering: a host reads `trusted` only while its last good
//!   appraisal is younger than two intervals (`vouch_store::Host::fresh_at`), so a store that
//!   cannot be written, or a sweep that cannot run, never keeps a host trusted; an EAR about
//!   a trusted host expires no later than that limit.
//! * Several replicas may share one PostgreSQL: nonces, claims and host updates are atomic in
//!   the store; each replica needs the same `ca.pem`/`ca.key` (copy the data directory). A
//!   restarting replica demotes the whole fleet's trusted hosts until they attest again.

pub mod admin;
pub mod agent;
pub mod appraise;
pub mod config;
pub mod ear;
mod engine;
pub mod error;
pub mod fleet;
pub mod fleet_triage;
pub mod ima;
pub mod ima_fleet;
pub mod pki;
pub mod ratelimit;
pub mod rollout;
pub mod routes;
mod server;
pub mod state;

pub use agent::{ClientIdentity, PeerAddr};
pub use config::{DEFAULT_PCR_SELECTION, Selector, ServeConfig};
pub use error::ApiError;
pub use server::{
    ADMIN_TOKEN_FILE, RESTART_REASON, STALE_REASON, ServeError, ServerHandle, Verifier, serve,
};
pub use state::AppState;
