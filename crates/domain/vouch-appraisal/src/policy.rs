//! Policy as data: versioned, validated, diffable rules per component, applied to hosts by
//! label selector.
//!
//! ```json
//! {"schema": 1, "id": "r750", "version": 3, "selector": {"labels": {"cohort": "r750"}},
//!  "rules": [
//!    {"component": "platform_firmware"},
//!    {"component": "secure_boot", "secure_boot": {"require_enabled": true,
//!       "allowed_db": ["<sha256 of cert DER>"], "dbx_must_contain": ["<hash>"]}},
//!    {"component": "kernel", "ignore": ["EV_EVENT_TAG"],
//!       "cmdline": {"forbid": ["init=", "selinux=0"]}},
//!    {"component": "raw_pcrs", "pins": {"14": "<sha256>"}}],
//!  "rego": {"module": "package vouch\nimport rego.v1\ndeny contains msg if { ... }"}}
//! ```
//!
//! Every rule on a component requires each event on the component's PCRs to match a reference
//! value (see [`crate::refs`]); an event the rule does not account for fails, unless its type
//! is listed in `ignore`. A policy without rules is refused.
//!
//! `rego` (optional) holds operator rules in Rego for checks the rules above cannot express;
//! [`crate::rego`] gives the input shape and the deny contract. They add checks to the built-in
//! rules and never replace them: a policy with a Rego module still needs at least one rule (an
//! empty rule list is refused as before), and a deny can only make the verdict worse. The
//! module is compiled by [`Policy::new`], which refuses the policy if it does not compile,
//! declares another package than `vouch`, has no `deny` rule or is over 64 KiB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::combinator::{AllOf, EmptyCombinator};
use crate::model::{Component, EmptySelector, Labels, Selector};
use crate::rego::{CompiledRules, RegoError, RegoRules};

/// The policy schema version this crate reads.
pub const SCHEMA: u32 = 1;

/// Secure Boot requirements (PCR 7), over bound variable data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureBootRule {
    /// `SecureBoot` must be measured as 1.
    #[serde(default)]
    pub require_enabled: bool,
    /// If set: every PK certificate must be one of these (SHA-256 of the DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pk: Option<Vec<String>>,
    /// If set: every KEK certificate must be one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_kek: Option<Vec<String>>,
    /// If set: every db certificate must be one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_db: Option<Vec<String>>,
    /// dbx must contain each of these entries (hash or certificate SHA-256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dbx_must_contain: Vec<String>,
}

/// Kernel command line requirements (over a bound command line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdlineRule {
    /// Parameters that must be present (`lockdown=integrity`): whole words, or a prefix ending
    /// in `=` that must start a word.
    #[serde(default)]
    pub require: Vec<String>,
    /// Parameters that must be absent, same matching.
    #[serde(default)]
    pub forbid: Vec<String>,
}

impl CmdlineRule {
    fn has(cmdline: &str, param: &str) -> bool {
        cmdline.split_whitespace().any(|w| {
            if param.ends_with('=') {
                w.starts_with(param)
            } else {
                w == param || w.split_once('=').is_some_and(|(k, _)| k == param)
            }
        })
    }

    /// Required parameters missing from `cmdline`.
    #[must_use]
    pub fn missing<'a>(&'a self, cmdline: &str) -> Vec<&'a str> {
        self.require
            .iter()
            .filter(|p| !Self::has(cmdline, p))
            .map(String::as_str)
            .collect()
    }

    /// Forbidden parameters present in `cmdline`.
    #[must_use]
    pub fn present<'a>(&'a self, cmdline: &str) -> Vec<&'a str> {
        self.forbid
            .iter()
            .filter(|p| Self::has(cmdline, p))
            .map(String::as_str)
            .collect()
    }
}

/// A rule for one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The component.
    pub component: Component,
    /// Event types on the component's PCRs that this rule does not check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Secure Boot requirements (component `secure_boot` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_boot: Option<SecureBootRule>,
    /// Command line requirements (component `kernel` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<CmdlineRule>,
    /// Raw PCR pins, PCR -> lower-case hex in the claims' bank (component `raw_pcrs` only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<u32, String>,
}

impl Rule {
    /// A rule that matches every event of `component` against reference values.
    #[must_use]
    pub fn references(component: Component) -> Self {
        Self {
            component,
            ignore: Vec::new(),
            secure_boot: None,
            cmdline: None,
            pins: BTreeMap::new(),
        }
    }

    /// The PCRs this rule covers.
    #[must_use]
    pub fn pcrs(&self) -> Vec<u32> {
        match self.component {
            Component::RawPcrs => self.pins.keys().copied().collect(),
            c => c.pcrs().to_vec(),
        }
    }
}

/// A policy, as stored and exchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// Schema version ([`SCHEMA`]).
    pub schema: u32,
    /// Id (stable across versions).
    pub id: String,
    /// Version, incremented on every change.
    pub version: u32,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The hosts it applies to.
    pub selector: Selector,
    /// The rules, all of which must pass.
    pub rules: Vec<Rule>,
    /// Operator rules in Rego, checked after the rules (see [`crate::rego`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rego: Option<RegoRules>,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON of the policy shape.
    #[error("policy is not valid JSON of the policy schema: {0}")]
    Json(String),
    /// A schema this crate does not read.
    #[error("policy schema {0} is not supported (this verifier reads schema {SCHEMA})")]
    Schema(u32),
    /// No id.
    #[error("policy has no id")]
    NoId,
    /// No rules: would accept everything.
    #[error("policy {0:?} has no rules: {1}")]
    Empty(String, EmptyCombinator),
    /// Selector with no labels.
    #[error("policy {0:?}: {1}")]
    Selector(String, EmptySelector),
    /// Two rules for one component.
    #[error("policy {0:?} has two rules for component {1}")]
    DuplicateRule(String, Component),
    /// An option on a component it does not apply to, or an empty list that would admit
    /// nothing or check nothing.
    #[error("policy {0:?}, rule {1}: {2}")]
    BadRule(String, Component, &'static str),
    /// An event type name this crate does not know.
    #[error("policy {0:?}, rule {1}: unknown event type {2:?} in ignore")]
    UnknownEventType(String, Component, String),
    /// The Rego module is refused.
    #[error("policy {0:?}: {1}")]
    Rego(String, RegoError),
}

/// A validated policy: its rules, and its Rego module compiled once (shared by clones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    doc: PolicyDoc,
    rules: AllOf<Rule>,
    rego: Option<CompiledRules>,
}

fn known_event_type(name: &str) -> bool {
    (0u32..=0x20)
        .chain(0x8000_0000..=0x8000_0020)
        .chain(0x8000_00E0..=0x8000_00E4)
        .any(|v| vouch_tcglog::EventType(v).name() == Some(name))
}

fn hex_digest(s: &str) -> bool {
    matches!(s.len(), 40 | 64 | 96 | 128)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Policy {
    /// Validate a policy document.
    pub fn new(doc: PolicyDoc) -> Result<Self, PolicyError> {
        if doc.schema != SCHEMA {
            return Err(PolicyError::Schema(doc.schema));
        }
        if doc.id.trim().is_empty() {
            return Err(PolicyError::NoId);
        }
        let id = doc.id.clone();
        doc.selector
            .validate()
            .map_err(|e| PolicyError::Selector(id.clone(), e))?;
        let bad = |c, why| PolicyError::BadRule(id.clone(), c, why);
        let mut seen = Vec::new();
        for r in &doc.rules {
            let c = r.component;
            if seen.contains(&c) {
                return Err(PolicyError::DuplicateRule(id.clone(), c));
            }
            seen.push(c);
            if r.secure_boot.is_some() && c != Component::SecureBoot {
                return Err(bad(
                    c,
                    "secure_boot options apply to component secure_boot only",
                ));
            }
            if r.cmdline.is_some() && c != Component::Kernel {
                return Err(bad(c, "cmdline options apply to component kernel only"));
            }
            if (c == Component::RawPcrs) == r.pins.is_empty() {
                return Err(bad(c, "raw_pcrs needs pins, and only raw_pcrs takes pins"));
            }
            if r.pins.keys().any(|p| *p >= vouch_tpm2::pcr::MAX_PCRS) {
                return Err(bad(c, "pinned PCR index out of range"));
            }
            if r.pins.values().any(|v| !hex_digest(v)) {
                return Err(bad(c, "pinned PCR value is not a digest in lower-case hex"));
            }
            if let Some(sb) = &r.secure_boot {
                let lists = [&sb.allowed_pk, &sb.allowed_kek, &sb.allowed_db];
                if lists.iter().any(|l| l.as_ref().is_some_and(Vec::is_empty)) {
                    return Err(bad(
                        c,
                        "an empty allow-list admits no certificate; omit it instead",
                    ));
                }
            }
            if let Some(cl) = &r.cmdline
                && cl.require.is_empty()
                && cl.forbid.is_empty()
            {
                return Err(bad(c, "a cmdline rule needs require or forbid"));
            }
            if let Some(t) = r.ignore.iter().find(|t| !known_event_type(t)) {
                return Err(PolicyError::UnknownEventType(id.clone(), c, t.clone()));
            }
        }
        // Rego adds checks to the rules, it does not replace them: no rules is still refused.
        let rules = AllOf::new(doc.rules.clone()).map_err(|e| PolicyError::Empty(id.clone(), e))?;
        let rego = doc
            .rego
            .as_ref()
            .map(CompiledRules::compile)
            .transpose()
            .map_err(|e| PolicyError::Rego(id, e))?;
        Ok(Self { doc, rules, rego })
    }

    /// Parse and validate JSON.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        let doc: PolicyDoc =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::new(doc)
    }

    /// The document.
    #[must_use]
    pub const fn doc(&self) -> &PolicyDoc {
        &self.doc
    }

    /// The rules (never empty).
    #[must_use]
    pub const fn rules(&self) -> &AllOf<Rule> {
        &self.rules
    }

    /// The compiled operator rules, if the policy has a Rego module.
    pub(crate) const fn operator_rules(&self) -> Option<&CompiledRules> {
        self.rego.as_ref()
    }

    /// The rule for a component.
    #[must_use]
    pub fn rule(&self, c: Component) -> Option<&Rule> {
        self.rules.items().iter().find(|r| r.component == c)
    }

    /// What changed from `self` to `newer`, rule by rule.
    #[must_use]
    pub fn diff(&self, newer: &Self) -> PolicyDiff {
        let mut changes = Vec::new();
        if self.doc.selector != newer.doc.selector {
            changes.push(format!(
                "selector: {} -> {}",
                self.doc.selector, newer.doc.selector
            ));
        }
        let json = |r: &Rule| serde_json::to_string(r).unwrap_or_default();
        for c in Component::ALL {
            match (self.rule(c), newer.rule(c)) {
                (None, Some(r)) => changes.push(format!("+ {c}: {}", json(r))),
                (Some(r), None) => changes.push(format!("- {c}: {}", json(r))),
                (Some(a), Some(b)) if a != b => {
                    changes.push(format!("~ {c}: {} -> {}", json(a), json(b)));
                }
                _ => {}
            }
        }
        match (&self.doc.rego, &newer.doc.rego) {
            (None, Some(r)) => changes.push(format!("+ rego: {} bytes", r.module.len())),
            (Some(r), None) => changes.push(format!("- rego: {} bytes", r.module.len())),
            (Some(a), Some(b)) if a != b => changes.push(format!(
                "~ rego: {} bytes -> {} bytes",
                a.module.len(),
                b.module.len()
            )),
            _ => {}
        }
        PolicyDiff {
            id: newer.doc.id.clone(),
            from_version: self.doc.version,
            to_version: newer.doc.version,
            changes,
        }
    }
}

/// Differences between two versions of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// Policy id.
    pub id: String,
    /// Old version.
    pub from_version: u32,
    /// New version.
    pub to_version: u32,
    /// One line per change (`+`, `-`, `~`).
    pub changes: Vec<String>,
}

/// Why no policy applies to a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No policy selects the host.
    #[error("no policy selects this host")]
    NoPolicy,
    /// Two equally specific policies select the host.
    #[error("policies {0:?} and {1:?} both select this host with equal specificity")]
    Ambiguous(String, String),
}

/// The policies in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

impl PolicySet {
    /// A set of validated policies.
    #[must_use]
    pub fn new(policies: Vec<Policy>) -> Self {
        Self { policies }
    }

    /// The policies.
    #[must_use]
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policy for a host: the most specific selector that selects it. No policy, or a tie,
    /// is an error (the host is not appraised as trustworthy).
    pub fn select(&self, labels: &Labels) -> Result<&Policy, SelectError> {
        let mut best: Option<&Policy> = None;
        let mut tie: Option<&Policy> = None;
        for p in self
            .policies
            .iter()
            .filter(|p| p.doc.selector.selects(labels))
        {
            let s = p.doc.selector.specificity();
            match best {
                None => best = Some(p),
                Some(b) if s > b.doc.selector.specificity() => {
                    best = Some(p);
                    tie = None;
                }
                Some(b) if s == b.doc.selector.specificity() => tie = Some(p),
                Some(_) => {}
            }
        }
        match (best, tie) {
            (None, _) => Err(SelectError::NoPolicy),
            (Some(b), Some(t)) => Err(SelectError::Ambiguous(b.doc.id.clone(), t.doc.id.clone())),
            (Some(b), None) => Ok(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: Vec<Rule>) -> PolicyDoc {
        PolicyDoc {
            schema: SCHEMA,
            id: "p".into(),
            version: 1,
            description: None,
            selector: Selector::label("cohort", "a"),
            rules,
            rego: None,
        }
    }

    #[test]
    fn rejects_empty_policy() {
        assert!(matches!(
            Policy::new(doc(vec![])),
            Err(PolicyError::Empty(..))
        ));
        assert!(matches!(
            Policy::from_json(r#"{"schema":1,"id":"p","version":1,"selector":"all","rules":[]}"#),
            Err(PolicyError::Empty(..))
        ));
    }

    #[test]
    fn rego_adds_to_rules_and_does_not_replace_them() {
        let rego = Some(RegoRules {
            module: "package vouch\ndeny contains \"m\" if true".into(),
        });
        let mut only_rego = doc(vec![]);
        only_rego.rego = rego.clone();
        assert!(matches!(
            Policy::new(only_rego),
            Err(PolicyError::Empty(..))
        ));
        let mut both = doc(vec![Rule::references(Component::Kernel)]);
        both.rego = rego;
        assert!(Policy::new(both).unwrap().operator_rules().is_some());
        assert!(
            Policy::new(doc(vec![Rule::references(Component::Kernel)]))
                .unwrap()
                .operator_rules()
                .is_none()
        );
    }

    #[test]
    fn rejects_malformed_rules() {
        let mut sb = Rule::references(Component::BootChain);
        sb.secure_boot = Some(SecureBootRule::default());
        assert!(matches!(
            Policy::new(doc(vec![sb])),
            Err(PolicyError::BadRule(..))
        ));
        let mut empty_allow = Rule::references(Component::SecureBoot);
        empty_allow.secure_boot = Some(SecureBootRule {
            allowed_db: Some(vec![]),
            ..SecureBootRule::default()
        });
        assert!(matches!(
            Policy::new(doc(vec![empty_allow])),
            Err(PolicyError::BadRule(..))
        ));
        assert!(matches!(
            Policy::new(doc(vec![Rule::references(Component::RawPcrs)])),
            Err(PolicyError::BadRule(..))
        ));
        let mut ign = Rule::references(Component::Kernel);
        ign.ignore = vec!["EV_NOT_A_TYPE".into()];
        assert!(matches!(
            Policy::new(doc(vec![ign])),
            Err(PolicyError::UnknownEventType(..))
        ));
        assert!(matches!(
            Policy::new(doc(vec![
                Rule::references(Component::Kernel),
                Rule::references(Component::Kernel)
            ])),
            Err(PolicyError::DuplicateRule(..))
        ));
        let mut d = doc(vec![Rule::references(Component::Kernel)]);
        d.selector = Selector::Labels(BTreeMap::new());
        assert!(matches!(Policy::new(d), Err(PolicyError::Selector(..))));
        let mut d = doc(vec![Rule::references(Component::Kernel)]);
        d.schema = 2;
        assert_eq!(Policy::new(d), Err(PolicyError::Schema(2)));
        assert!(matches!(
            Policy::from_json(
                r#"{"schema":1,"id":"p","version":1,"selector":"all","rules":[{"component":"kernel","bogus":1}]}"#
            ),
            Err(PolicyError::Json(_))
        ));
    }

    #[test]
    fn round_trips_json_and_diffs() {
        let mut k = Rule::references(Component::Kernel);
        k.cmdline = Some(CmdlineRule {
            require: vec![],
            forbid: vec!["init=".into()],
        });
        let a = Policy::new(doc(vec![Rule::references(Component::PlatformFirmware), k])).unwrap();
        let json = serde_json::to_string(a.doc()).unwrap();
        let b = Policy::from_json(&json).unwrap();
        assert_eq!(a, b);
        assert!(a.diff(&b).changes.is_empty());
        let mut d2 = a.doc().clone();
        d2.version = 2;
        d2.rules.push(Rule::references(Component::BootChain));
        let c = Policy::new(d2).unwrap();
        let diff = a.diff(&c);
        assert_eq!(diff.changes.len(), 1);
        assert!(diff.changes[0].starts_with("+ boot_chain"));
    }

    #[test]
    fn cmdline_matching_truth_table() {
        let r = CmdlineRule {
            require: vec!["ro".into(), "lockdown=".into()],
            forbid: vec!["init=".into(), "single".into()],
        };
        assert_eq!(r.missing("ro lockdown=integrity"), Vec::<&str>::new());
        assert_eq!(r.missing("rootwait lockdown"), vec!["ro", "lockdown="]);
        assert_eq!(r.present("ro quiet"), Vec::<&str>::new());
        assert_eq!(r.present("ro init=/bin/sh singleuser"), vec!["init="]);
        assert_eq!(r.present("ro single"), vec!["single"]);
        assert_eq!(r.missing(""), vec!["ro", "lockdown="]);
    }

    #[test]
    fn selection_truth_table_including_empty_set() {
        let labels: Labels = [
            ("cohort".to_owned(), "a".to_owned()),
            ("site".to_owned(), "x".to_owned()),
        ]
        .into();
        assert_eq!(
            PolicySet::default().select(&labels),
            Err(SelectError::NoPolicy)
        );
        let p = |id: &str, sel: Selector| {
            let mut d = doc(vec![Rule::references(Component::Kernel)]);
            d.id = id.into();
            d.selector = sel;
            Policy::new(d).unwrap()
        };
        let all = p("all", Selector::All);
        let a = p("a", Selector::label("cohort", "a"));
        let b = p("b", Selector::label("cohort", "b"));
        let x = p("x", Selector::label("site", "x"));
        assert_eq!(
            PolicySet::new(vec![b.clone()]).select(&labels),
            Err(SelectError::NoPolicy)
        );
        assert_eq!(
            PolicySet::new(vec![all.clone()])
                .select(&labels)
                .unwrap()
                .doc()
                .id,
            "all"
        );
        assert_eq!(
            PolicySet::new(vec![all, a.clone(), b])
                .select(&labels)
                .unwrap()
                .doc()
                .id,
            "a"
        );
        assert!(matches!(
            PolicySet::new(vec![a, x]).select(&labels),
            Err(SelectError::Ambiguous(..))
        ));
    }
}
