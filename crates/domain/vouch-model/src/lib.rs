//! The host model the domain owns: where a host stands ([`HostStatus`]) and how it may move
//! from one status to another ([`HostStatus::can_become`], the lifecycle as a transition
//! table). One definition, used by the store (what is kept), the API (what is shown) and the
//! verifier (what is decided), so the three cannot drift apart.
//!
//! # Trust assumptions
//!
//! Pure data and rules: nothing here reads input. The table is what the verifier enforces
//! before it writes a host: a transition it does not list is refused (fail closed: nothing is
//! written), for example a removed host can only come back through an operator's re-admission
//! and an enrolment that then waits for approval, never straight to `trusted`.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Label key prefixes only evidence may set: `detected.*` (bound measurements, the EK
/// certificate) and `reported.*` (what the platform reports in its log). Labels select fleet
/// policies, so a host must not be able to choose them: agents declaring one are refused.
pub const RESERVED_LABEL_PREFIXES: [&str; 2] = ["detected.", "reported."];

/// Whether `key` is a label only evidence may set ([`RESERVED_LABEL_PREFIXES`]).
#[must_use]
pub fn is_reserved_label(key: &str) -> bool {
    RESERVED_LABEL_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Where a host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Credential activation under way (rows written before pending enrolments were kept
    /// apart; a new enrolment stores no host until it activates).
    Enrolling,
    /// Enrolled; an operator must approve it (or a selector did not match, or its labels
    /// changed at re-enrolment).
    AwaitingApproval,
    /// The latest evidence was fully checked and passed, and it is fresh.
    Trusted,
    /// The latest evidence failed a check; the reasons say which.
    Untrusted,
    /// No valid evidence within its freshness limit (two intervals), since approval, or
    /// since a verifier restart.
    Unreachable,
    /// Removed by an operator: its certificate is no longer accepted, and its name and TPM
    /// are refused until an operator re-admits them.
    Removed,
}

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a host cannot go from {from} to {to}")]
pub struct TransitionError {
    /// Status before.
    pub from: HostStatus,
    /// Status asked for.
    pub to: HostStatus,
}

impl HostStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Enrolling,
        Self::AwaitingApproval,
        Self::Trusted,
        Self::Untrusted,
        Self::Unreachable,
        Self::Removed,
    ];

    /// The stored and wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enrolling => "enrolling",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Trusted => "trusted",
            Self::Untrusted => "untrusted",
            Self::Unreachable => "unreachable",
            Self::Removed => "removed",
        }
    }

    /// Parse a stored or wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The statuses a host may have when it is first stored (at its credential activation):
    /// approved (by a selector) and awaiting its first attestation, or awaiting an operator.
    pub const INITIAL: [Self; 2] = [Self::Unreachable, Self::AwaitingApproval];

    /// Whether a host in `self` may move to `next`. The lifecycle:
    ///
    /// * an appraisal moves an approved host between `trusted`, `untrusted` and
    ///   `unreachable` (a verdict, or its freshness running out);
    /// * a re-enrolment of a known host puts it in `awaiting_approval` (labels changed, not
    ///   approved yet) or `unreachable` (approved, awaiting its first attestation);
    /// * an operator's approval moves `awaiting_approval` to `unreachable`;
    /// * an operator may remove a host from any status;
    /// * `removed` stays `removed` (an operator's re-admission only allows an enrolment)
    ///   until that enrolment, which always waits for approval: no rule brings a removed
    ///   host back to `trusted`, `untrusted` or `unreachable` directly.
    #[must_use]
    pub const fn can_become(self, next: Self) -> bool {
        use HostStatus::{AwaitingApproval, Enrolling, Removed, Trusted, Unreachable, Untrusted};
        match (self, next) {
            (_, Removed) => true,
            (Removed, AwaitingApproval) => true,
            (Removed, _) => false,
            (_, Enrolling) => false,
            (Enrolling | AwaitingApproval, AwaitingApproval | Unreachable) => true,
            (Enrolling | AwaitingApproval, Trusted | Untrusted) => false,
            (Trusted | Untrusted | Unreachable, _) => true,
        }
    }

    /// [`HostStatus::can_become`] as a `Result`.
    pub const fn check_transition(self, next: Self) -> Result<(), TransitionError> {
        if self.can_become(next) {
            Ok(())
        } else {
            Err(TransitionError {
                from: self,
                to: next,
            })
        }
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::HostStatus::{
        self, AwaitingApproval, Enrolling, Removed, Trusted, Unreachable, Untrusted,
    };

    /// The whole lifecycle, spelled out: every allowed (from, to), and nothing else.
    const ALLOWED: &[(HostStatus, HostStatus)] = &[
        (Enrolling, AwaitingApproval),
        (Enrolling, Unreachable),
        (Enrolling, Removed),
        (AwaitingApproval, AwaitingApproval),
        (AwaitingApproval, Unreachable),
        (AwaitingApproval, Removed),
        (Trusted, AwaitingApproval),
        (Trusted, Trusted),
        (Trusted, Untrusted),
        (Trusted, Unreachable),
        (Trusted, Removed),
        (Untrusted, AwaitingApproval),
        (Untrusted, Trusted),
        (Untrusted, Untrusted),
        (Untrusted, Unreachable),
        (Untrusted, Removed),
        (Unreachable, AwaitingApproval),
        (Unreachable, Trusted),
        (Unreachable, Untrusted),
        (Unreachable, Unreachable),
        (Unreachable, Removed),
        (Removed, AwaitingApproval),
        (Removed, Removed),
    ];

    #[test]
    fn transition_table_lists_every_allowed_transition_and_nothing_else() {
        for from in HostStatus::ALL {
            for to in HostStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    ALLOWED.contains(&(from, to)),
                    "{from} -> {to}"
                );
                assert_eq!(from.check_transition(to).is_ok(), from.can_become(to));
            }
        }
    }

    #[test]
    fn removed_host_never_returns_to_a_verdict_directly() {
        for to in [Trusted, Untrusted, Unreachable, Enrolling] {
            assert!(!Removed.can_become(to), "removed -> {to}");
        }
        // A host waiting for approval gets no verdict before it is approved.
        assert!(!AwaitingApproval.can_become(Trusted));
    }

    #[test]
    fn evidence_label_prefixes_are_reserved() {
        for k in [
            "detected.firmware_version",
            "reported.platform_model",
            "detected.",
        ] {
            assert!(super::is_reserved_label(k), "{k}");
        }
        for k in ["site", "detected", "cohort.detected.x", "report.x"] {
            assert!(!super::is_reserved_label(k), "{k}");
        }
    }

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for s in HostStatus::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json.as_str().unwrap(), s.as_str());
            assert_eq!(HostStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(HostStatus::parse("trusted?"), None);
    }
}
