//! The appraisal engine: claims + policy + reference values + campaigns -> verdict.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::claims::{ClaimKind, Claims, EventClaim, KeyDbClaim, SecureBootState};
use crate::model::{Component, EventRef};
use crate::policy::{Policy, PolicySet, Rule, SecureBootRule};
use crate::refs::{RefState, RefStore, ReferenceValue};
use crate::rego::CompiledRules;
use crate::rollout::Campaign;
use crate::trust::{Status, TrustCategory, TrustVector, ar4si};

/// What a reason found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// No policy applies to the host (or two apply equally).
    NoPolicy,
    /// A PCR a rule covers is not in the quote.
    PcrNotQuoted,
    /// An event no reference value accounts for.
    Unrecognized,
    /// An event whose value is revoked.
    Revoked,
    /// An event whose value was deprecated and whose deadline has passed.
    DeprecatedExpired,
    /// An event whose value is deprecated; accepted until the deadline (a note).
    DeprecatedUntil,
    /// A candidate value the host is not admitted to (yet).
    CandidateNotAdmitted,
    /// A value outside its validity window.
    OutsideValidity,
    /// Secure Boot is not enabled.
    SecureBootNotEnabled,
    /// A PK/KEK/db certificate not on the allow-list.
    CertificateNotAllowed,
    /// dbx lacks a required entry.
    DbxMissingEntry,
    /// Secure Boot data needed by a rule is not measured or not bound to its digest.
    SecureBootDataUnavailable,
    /// A forbidden command line parameter is present.
    CmdlineForbidden,
    /// A required command line parameter is missing.
    CmdlineMissing,
    /// No bound kernel command line, but a rule needs it.
    CmdlineUnavailable,
    /// A pinned PCR differs.
    PcrPinMismatch,
    /// An operator rule (the policy's Rego module) denies the host.
    OperatorRule,
    /// The policy's operator rules could not be evaluated for the host (fails closed).
    OperatorRuleError,
}

/// One reason: what was found, where, expected versus actual, and the reference used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The component, if the reason is about one.
    pub component: Option<Component>,
    /// What was found.
    pub finding: Finding,
    /// The AR4SI claim it sets.
    pub category: TrustCategory,
    /// The AR4SI value it sets.
    pub claim: i8,
    /// The event, if one is at fault.
    pub event: Option<EventRef>,
    /// What was expected (reference names and values).
    pub expected: Vec<String>,
    /// What was measured.
    pub actual: Option<String>,
    /// The reference value (release name and id) the decision used.
    pub reference: Option<String>,
    /// One line for people.
    pub message: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The policy a verdict was reached under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Id.
    pub id: String,
    /// Version.
    pub version: u32,
}

/// The result of appraising one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[must_use]
pub struct Verdict {
    /// The host.
    pub host: String,
    /// The policy applied.
    pub policy: Option<PolicyRef>,
    /// Overall status.
    pub status: Status,
    /// AR4SI trust vector.
    pub trust_vector: TrustVector,
    /// Why the status is not affirming (empty when it is).
    pub reasons: Vec<Reason>,
    /// Things that do not lower the status (a deprecated value inside its grace period).
    pub notes: Vec<Reason>,
}

/// A verdict that is not affirming.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host {host} is {status:?}: {first}")]
pub struct NotAffirming {
    /// The host.
    pub host: String,
    /// Its status.
    pub status: Status,
    /// The first reason.
    pub first: String,
}

impl Verdict {
    /// `Ok` only when the status is affirming: the check relying parties should call.
    pub fn require_affirming(&self) -> Result<(), NotAffirming> {
        if self.status == Status::Affirming && self.reasons.is_empty() {
            Ok(())
        } else {
            Err(NotAffirming {
                host: self.host.clone(),
                status: self.status,
                first: self
                    .reasons
                    .first()
                    .map_or_else(|| "no claim made".to_owned(), |r| r.message.clone()),
            })
        }
    }

    /// The components named by reasons, sorted and deduplicated.
    #[must_use]
    pub fn failing_components(&self) -> Vec<Component> {
        let mut v: Vec<Component> = self.reasons.iter().filter_map(|r| r.component).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Severity of a failure, mapped per category to an AR4SI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Unrecognized,
    Unsafe,
    Unavailable,
    Contraindicated,
}

fn category(component: Component, kind: Option<ClaimKind>) -> TrustCategory {
    match component {
        Component::PlatformFirmware | Component::OptionRoms => TrustCategory::Hardware,
        Component::BootChain => TrustCategory::Executables,
        Component::Kernel if kind != Some(ClaimKind::KernelCmdline) => TrustCategory::Executables,
        _ => TrustCategory::Configuration,
    }
}

fn claim_value(cat: TrustCategory, component: Component, sev: Severity) -> i8 {
    match (cat, sev) {
        (_, Severity::Unavailable) => ar4si::UNAVAIL_CONFIG_ELEMS,
        (TrustCategory::Hardware, Severity::Unrecognized) => ar4si::UNRECOGNIZED_HARDWARE,
        (TrustCategory::Hardware, Severity::Unsafe) => ar4si::UNSAFE_HARDWARE,
        (TrustCategory::Hardware, Severity::Contraindicated) => ar4si::CONTRAINDICATED_HARDWARE,
        (TrustCategory::Executables, Severity::Unrecognized) => ar4si::UNRECOGNIZED_RUNTIME,
        (TrustCategory::Executables, Severity::Unsafe) => ar4si::UNSAFE_RUNTIME,
        (TrustCategory::Executables, Severity::Contraindicated) => ar4si::CONTRAINDICATED_RUNTIME,
        // Configuration: an unrecognized Secure Boot configuration is unsupportable; other
        // unrecognized configuration (boot order, command line) is unsafe.
        (_, Severity::Unrecognized) if component == Component::SecureBoot => {
            ar4si::UNSUPPORTABLE_CONFIG
        }
        (_, Severity::Unrecognized | Severity::Unsafe) => ar4si::UNSAFE_CONFIG,
        (_, Severity::Contraindicated) => ar4si::UNSUPPORTABLE_CONFIG,
    }
}

/// How a measurement matched the references (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    Revoked,
    OutsideValidity,
    CandidateNotAdmitted,
    DeprecatedExpired,
    CandidateAdmitted,
    DeprecatedUntil,
    Active,
}

fn short(d: &str) -> &str {
    d.get(..16).unwrap_or(d)
}

fn describe(r: &ReferenceValue) -> String {
    format!(
        "{} [{}] {}{}",
        r.name,
        r.state.name(),
        short(&r.digest),
        r.detail
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )
}

/// The engine: policies, reference values and campaigns, indexed for appraisal.
#[derive(Debug, Clone)]
pub struct Engine {
    policies: PolicySet,
    refs: RefStore,
    campaigns: Vec<Campaign>,
    by_digest: HashMap<String, Vec<usize>>,
}

struct Ctx<'a> {
    claims: &'a Claims,
    now: DateTime<Utc>,
    vector: TrustVector,
    reasons: Vec<Reason>,
    notes: Vec<Reason>,
}

impl Ctx<'_> {
    #[allow(
        clippy::too_many_arguments,
        reason = "one constructor for every reason field"
    )]
    fn fail(
        &mut self,
        component: Component,
        kind: Option<ClaimKind>,
        finding: Finding,
        sev: Severity,
        event: Option<EventRef>,
        expected: Vec<String>,
        actual: Option<String>,
        reference: Option<String>,
        message: String,
    ) {
        let cat = category(component, kind);
        let claim = claim_value(cat, component, sev);
        self.vector.worsen(cat, claim);
        self.reasons.push(Reason {
            component: Some(component),
            finding,
            category: cat,
            claim,
            event,
            expected,
            actual,
            reference,
            message,
        });
    }
}

impl Engine {
    /// Build the engine.
    #[must_use]
    pub fn new(policies: PolicySet, refs: RefStore, campaigns: Vec<Campaign>) -> Self {
        let mut by_digest: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in refs.all().iter().enumerate() {
            by_digest.entry(r.digest.clone()).or_default().push(i);
        }
        Self {
            policies,
            refs,
            campaigns,
            by_digest,
        }
    }

    /// The reference values.
    #[must_use]
    pub const fn refs(&self) -> &RefStore {
        &self.refs
    }

    /// The policies.
    #[must_use]
    pub const fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The campaigns.
    #[must_use]
    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }

    /// References that could account for `e` on this host.
    fn matches<'a>(
        &'a self,
        claims: &'a Claims,
        e: &'a EventClaim,
    ) -> impl Iterator<Item = &'a ReferenceValue> + 'a {
        self.by_digest
            .get(e.digest.as_str())
            .into_iter()
            .flatten()
            .filter_map(|i| self.refs.all().get(*i))
            .filter(move |r| {
                r.component == e.component
                    && r.slot.pcr == e.source.pcr
                    && r.slot.event_type == e.source.event_type
                    && r.selector.selects(&claims.labels)
            })
    }

    fn rank(&self, r: &ReferenceValue, claims: &Claims, now: DateTime<Utc>) -> Match {
        if let RefState::Revoked { .. } = r.state {
            return Match::Revoked;
        }
        if !r.in_window(now) {
            return Match::OutsideValidity;
        }
        match &r.state {
            RefState::Active => Match::Active,
            RefState::Deprecated { until } if now <= *until => Match::DeprecatedUntil,
            RefState::Deprecated { .. } => Match::DeprecatedExpired,
            RefState::Candidate { campaign } => {
                let admitted = campaign.as_ref().is_some_and(|id| {
                    self.campaigns
                        .iter()
                        .any(|c| c.id() == id && c.admits(&claims.host, &claims.labels).is_ok())
                });
                if admitted {
                    Match::CandidateAdmitted
                } else {
                    Match::CandidateNotAdmitted
                }
            }
            RefState::Revoked { .. } => Match::Revoked,
        }
    }

    /// The best match for an event, if any reference covers it.
    fn best<'a>(
        &'a self,
        claims: &'a Claims,
        e: &'a EventClaim,
        now: DateTime<Utc>,
    ) -> Option<(Match, &'a ReferenceValue)> {
        self.matches(claims, e)
            .map(|r| (self.rank(r, claims, now), r))
            .max_by_key(|(m, _)| *m)
    }

    /// Appraise one host's claims at time `now`.
    pub fn appraise(&self, claims: &Claims, now: DateTime<Utc>) -> Verdict {
        let mut ctx = Ctx {
            claims,
            now,
            vector: TrustVector::default(),
            reasons: Vec::new(),
            notes: Vec::new(),
        };
        let policy = match self.policies.select(&claims.labels) {
            Ok(p) => p,
            Err(e) => {
                return Verdict {
                    host: claims.host.clone(),
                    policy: None,
                    status: Status::None,
                    trust_vector: TrustVector::default(),
                    reasons: vec![Reason {
                        component: None,
                        finding: Finding::NoPolicy,
                        category: TrustCategory::Configuration,
                        claim: ar4si::NO_CLAIM,
                        event: None,
                        expected: Vec::new(),
                        actual: None,
                        reference: None,
                        message: format!("not appraised: {e}"),
                    }],
                    notes: Vec::new(),
                };
            }
        };
        // The claims come from a quote verified with the host's enrolled AK.
        ctx.vector
            .worsen(TrustCategory::InstanceIdentity, ar4si::TRUSTWORTHY_INSTANCE);
        let _ = policy.rules().evaluate(|rule: &Rule| {
            self.apply_rule(&mut ctx, rule);
            Ok::<(), Vec<()>>(())
        });
        if let Some(rego) = policy.operator_rules() {
            apply_operator_rules(&mut ctx, policy, rego);
        }
        let status = ctx.vector.status();
        Verdict {
            host: claims.host.clone(),
            policy: Some(policy_ref(policy)),
            status,
            trust_vector: ctx.vector,
            reasons: ctx.reasons,
            notes: ctx.notes,
        }
    }

    fn apply_rule(&self, ctx: &mut Ctx<'_>, rule: &Rule) {
        let c = rule.component;
        // Approve first; failures below only make claims worse.
        match c {
            Component::PlatformFirmware | Component::OptionRoms => {
                ctx.vector
                    .worsen(TrustCategory::Hardware, ar4si::GENUINE_HARDWARE);
            }
            Component::BootChain => {
                ctx.vector
                    .worsen(TrustCategory::Executables, ar4si::APPROVED_BOOT);
            }
            Component::Kernel => {
                ctx.vector
                    .worsen(TrustCategory::Executables, ar4si::APPROVED_BOOT);
                ctx.vector
                    .worsen(TrustCategory::Configuration, ar4si::APPROVED_CONFIG);
            }
            _ => ctx
                .vector
                .worsen(TrustCategory::Configuration, ar4si::APPROVED_CONFIG),
        }
        let pins: Vec<u32>;
        let covered: &[u32] = if c == Component::RawPcrs {
            pins = rule.pins.keys().copied().collect();
            &pins
        } else {
            c.pcrs()
        };
        for &pcr in covered {
            if !ctx.claims.pcrs.contains_key(&pcr) {
                ctx.fail(
                    c,
                    None,
                    Finding::PcrNotQuoted,
                    Severity::Unavailable,
                    None,
                    vec![format!("PCR {pcr} in the quote")],
                    None,
                    None,
                    format!("{c}: PCR {pcr} is not covered by the quote"),
                );
            }
        }
        if c == Component::RawPcrs {
            for (pcr, want) in &rule.pins {
                if let Some(got) = ctx.claims.pcrs.get(pcr)
                    && got != want
                {
                    ctx.fail(
                        c,
                        None,
                        Finding::PcrPinMismatch,
                        Severity::Contraindicated,
                        None,
                        vec![want.clone()],
                        Some(got.clone()),
                        Some(format!("pin PCR {pcr}")),
                        format!(
                            "PCR {pcr} is {} but the policy pins {}",
                            short(got),
                            short(want)
                        ),
                    );
                }
            }
            return;
        }
        for e in ctx.claims.component(c) {
            if rule.ignore.contains(&e.source.event_type) {
                continue;
            }
            self.check_event(ctx, e);
        }
        if let Some(sb) = &rule.secure_boot {
            check_secure_boot(ctx, sb);
        }
        if let Some(cl) = &rule.cmdline {
            let claims = ctx.claims;
            match &claims.cmdline {
                None => ctx.fail(
                    c,
                    Some(ClaimKind::KernelCmdline),
                    Finding::CmdlineUnavailable,
                    Severity::Unavailable,
                    None,
                    vec!["a kernel command line bound to its digest".into()],
                    None,
                    None,
                    "kernel: no measured kernel command line whose digest matches its text".into(),
                ),
                Some(cmd) => {
                    let (text, src) = (&cmd.text, &cmd.source);
                    for p in cl.present(text) {
                        ctx.fail(
                            c,
                            Some(ClaimKind::KernelCmdline),
                            Finding::CmdlineForbidden,
                            Severity::Contraindicated,
                            Some(src.clone()),
                            vec![format!("no {p}")],
                            Some(text.clone()),
                            Some("policy cmdline.forbid".into()),
                            format!("kernel: {src}: command line contains forbidden {p:?}"),
                        );
                    }
                    for p in cl.missing(text) {
                        ctx.fail(
                            c,
                            Some(ClaimKind::KernelCmdline),
                            Finding::CmdlineMissing,
                            Severity::Contraindicated,
                            Some(src.clone()),
                            vec![p.to_owned()],
                            Some(text.clone()),
                            Some("policy cmdline.require".into()),
                            format!("kernel: {src}: command line lacks required {p:?}"),
                        );
                    }
                }
            }
        }
    }

    fn check_event(&self, ctx: &mut Ctx<'_>, e: &EventClaim) {
        let c = e.component;
        let best = self.best(ctx.claims, e, ctx.now);
        let actual = || {
            Some(match &e.detail {
                Some(d) => format!("{} ({d})", e.digest),
                None => e.digest.clone(),
            })
        };
        let Some((m, r)) = best else {
            let expected = self.expected_at(ctx.claims, e, ctx.now);
            let hint = expected
                .first()
                .map(|x| format!("; expected {x}"))
                .unwrap_or_default();
            ctx.fail(
                c,
                Some(e.kind),
                Finding::Unrecognized,
                Severity::Unrecognized,
                Some(e.source.clone()),
                expected,
                actual(),
                None,
                format!(
                    "{c}: {}: {:?} {} is not a known value{hint}",
                    e.source,
                    e.kind,
                    short(&e.digest)
                ),
            );
            return;
        };
        let reference = || Some(format!("{} ({})", r.name, r.id));
        let (finding, sev, what) = match m {
            Match::Active | Match::CandidateAdmitted => return,
            Match::DeprecatedUntil => {
                let until = match &r.state {
                    RefState::Deprecated { until } => until.to_rfc3339(),
                    _ => String::new(),
                };
                ctx.notes.push(Reason {
                    component: Some(c),
                    finding: Finding::DeprecatedUntil,
                    category: category(c, Some(e.kind)),
                    claim: ar4si::NO_CLAIM,
                    event: Some(e.source.clone()),
                    expected: Vec::new(),
                    actual: actual(),
                    reference: reference(),
                    message: format!(
                        "{c}: {}: {} is deprecated; accepted until {until}",
                        e.source, r.name
                    ),
                });
                return;
            }
            Match::DeprecatedExpired => (
                Finding::DeprecatedExpired,
                Severity::Unsafe,
                "is deprecated and its deadline has passed",
            ),
            Match::CandidateNotAdmitted => (
                Finding::CandidateNotAdmitted,
                Severity::Unsafe,
                "is a candidate not rolled out to this host",
            ),
            Match::OutsideValidity => (
                Finding::OutsideValidity,
                Severity::Unsafe,
                "is outside its validity window",
            ),
            Match::Revoked => (Finding::Revoked, Severity::Contraindicated, "is revoked"),
        };
        let detail = match &r.state {
            RefState::Revoked { reason, .. } => format!(" ({reason})"),
            RefState::Deprecated { until } => format!(" (deadline {})", until.to_rfc3339()),
            _ => String::new(),
        };
        let expected = self.expected_at(ctx.claims, e, ctx.now);
        ctx.fail(
            c,
            Some(e.kind),
            finding,
            sev,
            Some(e.source.clone()),
            expected,
            actual(),
            reference(),
            format!("{c}: {}: {} {what}{detail}", e.source, r.name),
        );
    }

    /// Acceptable values at an event's slot, for "expected" in reasons.
    fn expected_at(&self, claims: &Claims, e: &EventClaim, now: DateTime<Utc>) -> Vec<String> {
        let mut out: Vec<String> = self
            .refs
            .all()
            .iter()
            .filter(|r| {
                r.component == e.component
                    && r.slot.pcr == e.source.pcr
                    && r.slot.event_type == e.source.event_type
                    && r.slot.ordinal == e.ordinal
                    && r.selector.selects(&claims.labels)
                    && r.digest != e.digest
                    && self.rank(r, claims, now) > Match::DeprecatedExpired
            })
            .map(describe)
            .collect();
        out.dedup();
        out
    }

    /// How many of `hosts` measure a value of release `name` that no other release covers
    /// (what `vouch refs revoke` reports as affected).
    #[must_use]
    pub fn count_affected<'a>(
        &self,
        name: &str,
        hosts: impl IntoIterator<Item = &'a Claims>,
    ) -> usize {
        hosts
            .into_iter()
            .filter(|h| {
                h.events.iter().any(|e| {
                    let mut any = false;
                    let mut only_name = true;
                    for r in self.matches(h, e) {
                        any = true;
                        only_name &= r.name == name;
                    }
                    any && only_name
                })
            })
            .count()
    }
}

/// The AR4SI value of an operator rule's deny in `cat` (only the claims this verifier makes).
const fn contraindicated(cat: TrustCategory) -> i8 {
    match cat {
        TrustCategory::Hardware => ar4si::CONTRAINDICATED_HARDWARE,
        TrustCategory::Executables => ar4si::CONTRAINDICATED_RUNTIME,
        _ => ar4si::UNSUPPORTABLE_CONFIG,
    }
}

/// Evaluate the policy's Rego module after the built-in rules. Denials and failures only
/// worsen claims; a failure to evaluate is itself a contraindication.
fn apply_operator_rules(ctx: &mut Ctx<'_>, policy: &Policy, rego: &CompiledRules) {
    let reference = format!("{} v{} rego", policy.doc().id, policy.doc().version);
    match rego.evaluate(ctx.claims, ctx.now) {
        Ok(denials) => {
            for d in denials {
                let claim = contraindicated(d.category);
                ctx.vector.worsen(d.category, claim);
                let message = match d.component {
                    Some(c) => format!("{c}: operator rule: {}", d.message),
                    None => format!("operator rule: {}", d.message),
                };
                ctx.reasons.push(Reason {
                    component: d.component,
                    finding: Finding::OperatorRule,
                    category: d.category,
                    claim,
                    event: None,
                    expected: Vec::new(),
                    actual: None,
                    reference: Some(reference.clone()),
                    message,
                });
            }
        }
        Err(e) => {
            let category = TrustCategory::Configuration;
            let claim = contraindicated(category);
            ctx.vector.worsen(category, claim);
            ctx.reasons.push(Reason {
                component: None,
                finding: Finding::OperatorRuleError,
                category,
                claim,
                event: None,
                expected: Vec::new(),
                actual: None,
                message: format!(
                    "operator rule could not be evaluated ({reference}), failing closed: {e}"
                ),
                reference: Some(reference),
            });
        }
    }
}

fn policy_ref(p: &Policy) -> PolicyRef {
    PolicyRef {
        id: p.doc().id.clone(),
        version: p.doc().version,
    }
}

fn check_secure_boot(ctx: &mut Ctx<'_>, rule: &SecureBootRule) {
    let c = Component::SecureBoot;
    let claims = ctx.claims;
    let sb = &claims.secure_boot;
    if rule.require_enabled && sb.state != SecureBootState::Enabled {
        let actual = match sb.state {
            SecureBootState::Disabled => "SecureBoot = 0",
            _ => "SecureBoot not measured or not bound to its digest",
        };
        ctx.fail(
            c,
            Some(ClaimKind::SecureBootVariable),
            Finding::SecureBootNotEnabled,
            Severity::Contraindicated,
            sb.state_source.clone(),
            vec!["SecureBoot = 1".into()],
            Some(actual.into()),
            Some("policy secure_boot.require_enabled".into()),
            format!(
                "secure_boot: {}: Secure Boot is not enabled ({actual})",
                sb.state_source
                    .as_ref()
                    .map_or_else(|| "no event".to_owned(), ToString::to_string)
            ),
        );
    }
    type AllowList<'a> = (&'a str, &'a Option<Vec<String>>, &'a Option<KeyDbClaim>);
    let lists: [AllowList<'_>; 3] = [
        ("PK", &rule.allowed_pk, &sb.pk),
        ("KEK", &rule.allowed_kek, &sb.kek),
        ("db", &rule.allowed_db, &sb.db),
    ];
    for (name, allowed, have) in lists {
        let Some(allowed) = allowed.as_ref() else {
            continue;
        };
        let Some(have) = have else {
            ctx.fail(
                c,
                Some(ClaimKind::KeyDatabase),
                Finding::SecureBootDataUnavailable,
                Severity::Unavailable,
                None,
                vec![format!("{name} measured and bound to its digest")],
                None,
                None,
                format!(
                    "secure_boot: {name} is not measured (or its data does not match its digest)"
                ),
            );
            continue;
        };
        for cert in &have.certificates {
            if !allowed.contains(&cert.sha256) {
                let who = cert
                    .subject
                    .clone()
                    .unwrap_or_else(|| "(no subject)".into());
                ctx.fail(
                    c,
                    Some(ClaimKind::KeyDatabase),
                    Finding::CertificateNotAllowed,
                    Severity::Contraindicated,
                    Some(have.source.clone()),
                    allowed.clone(),
                    Some(format!("{who} sha256:{}", cert.sha256)),
                    Some(format!("policy secure_boot.allowed_{}", name.to_ascii_lowercase())),
                    format!(
                        "secure_boot: {}: {name} holds a certificate not on the allow-list: {who} (sha256 {})",
                        have.source,
                        short(&cert.sha256)
                    ),
                );
            }
        }
    }
    if !rule.dbx_must_contain.is_empty() {
        match &sb.dbx {
            None => ctx.fail(
                c,
                Some(ClaimKind::KeyDatabase),
                Finding::SecureBootDataUnavailable,
                Severity::Unavailable,
                None,
                vec!["dbx measured and bound to its digest".into()],
                None,
                None,
                "secure_boot: dbx is not measured (or its data does not match its digest)".into(),
            ),
            Some(dbx) => {
                for want in &rule.dbx_must_contain {
                    let present = dbx.hashes.contains(want)
                        || dbx.certificates.iter().any(|x| x.sha256 == *want);
                    if !present {
                        ctx.fail(
                            c,
                            Some(ClaimKind::KeyDatabase),
                            Finding::DbxMissingEntry,
                            Severity::Unsafe,
                            Some(dbx.source.clone()),
                            vec![want.clone()],
                            None,
                            Some("policy secure_boot.dbx_must_contain".into()),
                            format!(
                                "secure_boot: {}: dbx lacks revocation {}",
                                dbx.source,
                                short(want)
                            ),
                        );
                    }
                }
            }
        }
    }
}
