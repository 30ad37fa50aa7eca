//! Appraisal of TPM 2.0 boot evidence for fleets: typed claims, policy as data, reference
//! values with a lifecycle, rollouts, peer comparison, triage and AR4SI verdicts.
//!
//! The Verifier's appraisal step of IETF RATS (RFC 9334 §3, "Appraisal Policy for Evidence",
//! "Reference Values"): [`Claims::derive`] turns a verified quote and a TCG PC Client event
//! log (TCG PC Client Platform Firmware Profile, v1.06 r52, PCR usage §3.3.4) into typed
//! claims per component; [`Engine::appraise`] checks them against a [`Policy`] selected by
//! host labels, [`RefStore`] reference values and running [`Campaign`]s, and returns a
//! [`Verdict`]: an AR4SI trust vector and status (draft-ietf-rats-ar4si-07 §2.3, values as
//! in the draft), with reasons that name the event (index, PCR, type), the expected and
//! actual values and the reference used. A policy may add operator rules in Rego
//! ([`rego`], evaluated by `regorus`) for checks over the claims that the built-in rules
//! cannot express.
//!
//! Pure and synchronous: no I/O, no clock (`now` is an argument), no global state. The
//! verifier stores policies, references and campaigns and runs appraisal on a blocking pool.
//! The one exception: a Rego evaluation is cut off after [`rego::TIME_LIMIT`] of wall-clock
//! time, which fails the verdict closed.
//!
//! # Trust assumptions
//!
//! * [`Claims::derive`] must be given a quote verified (`vouch_tpm2::verify_quote`) with the
//!   host's AK, and that AK must be bound to the host's EK (credential activation) whose
//!   certificate chains to a trusted manufacturer: the engine then sets instance-identity to
//!   "recognized". It does not check the quote itself.
//! * The log is untrusted. It is used only if it replays to the quoted PCRs; only events on
//!   quoted PCRs become claims; decoded data (S-CRTM version, Secure Boot variables, key
//!   databases, kernel command line) is used only when the event's digest is the hash of that
//!   data. Everything else is matched by digest alone.
//! * Host labels select the policy. Operator and enrolment labels are trusted as the verifier
//!   stores them; `detected.*` labels come only from bound evidence.
//! * Fail closed: an empty policy, combinator, selector or allow-list is refused when built;
//!   a host no policy selects gets status `none`, never `affirming`; an event on a covered PCR
//!   that no reference accounts for fails unless the rule ignores its type.
//! * Operator rules (a policy's Rego module) are trusted code of the verifier's administrators,
//!   like the rest of the policy. They run after the built-in rules and can only add failures:
//!   each element of `data.vouch.deny` contraindicates a claim, nothing a module returns makes a
//!   claim better, so no module turns a failing host affirming. A module that does not compile
//!   is refused with its policy; one that cannot be evaluated for a host (runtime error, a
//!   `deny` of the wrong shape, too many denials, oversized input, over the time limit) fails
//!   that host's verdict closed (`operator_rule_error`, contraindicated). Input shape and deny
//!   contract: [`rego`].
//! * Known limit: matching is per event, so firmware that stops measuring a component is not
//!   noticed unless the PCR is pinned (`raw_pcrs`) — the measurement chain below it (S-CRTM,
//!   firmware volumes) is what is matched.

pub mod appraise;
pub mod claims;
pub mod combinator;
pub mod fleet;
pub mod learn;
pub mod model;
pub mod policy;
pub mod refs;
pub mod rego;
pub mod rollout;
pub mod trust;

pub use appraise::{Engine, Finding, NotAffirming, PolicyRef, Reason, Verdict};
pub use claims::{
    Binding, CertId, ClaimKind, Claims, ClaimsError, CmdlineClaim, EventClaim, KeyDbClaim,
    SecureBootClaims, SecureBootState,
};
pub use combinator::{AllOf, AnyOf, EmptyCombinator};
pub use fleet::{
    Assessment, Cause, Outlier, SlotDistribution, TriageGroup, distribution, outliers, triage,
};
pub use learn::{
    CohortProposal, LearnError, Minority, Proposal, RefDiff, learn_from_cohort, learn_from_host,
};
pub use model::{
    BadSelector, Component, EmptySelector, EventRef, Labels, Selector, Slot, UnknownComponent,
};
pub use policy::{
    CmdlineRule, Policy, PolicyDiff, PolicyDoc, PolicyError, PolicySet, Rule, SecureBootRule,
    SelectError,
};
pub use refs::{Provenance, RefError, RefState, RefStore, ReferenceValue};
pub use rego::{RegoError, RegoRules};
pub use rollout::{Campaign, CampaignState, NotAdmitted, RolloutError, RolloutStatus};
pub use trust::{Status, TrustCategory, TrustVector, ar4si};

#[cfg(test)]
mod tests;
