//! Operator rules in Rego (OPA's policy language, v1 syntax), evaluated by `regorus`, for
//! checks over the typed claims that the built-in rules cannot express: counts ("no more than
//! three boot applications on PCR 4"), combinations ("not both `iommu=off` and `nosmt`"),
//! version comparisons (`semver.compare`) or patterns (`regex.match`).
//!
//! A policy carries one module in `rego.module`:
//!
//! ```json
//! {"schema": 1, "id": "r750", "version": 4, "selector": "all",
//!  "rules": [{"component": "boot_chain"}],
//!  "rego": {"module": "package vouch\nimport rego.v1\n\ndeny contains msg if {\n  apps := [e | some e in input.claims.events; e.kind == \"boot_application\"]\n  count(apps) > 3\n  msg := sprintf(\"%d boot applications on PCR 4, at most 3 allowed\", [count(apps)])\n}\n"}}
//! ```
//!
//! # The module
//!
//! Rego v1 (`if`/`contains` required; `import rego.v1` is accepted and not needed), declaring
//! `package vouch` and a rule `deny`, at most [`MAX_MODULE_BYTES`]. [`crate::Policy::new`]
//! parses and analyses it once and refuses the policy when it does not compile; each appraisal
//! evaluates a clone of that compiled engine.
//!
//! # Input
//!
//! `input` is
//!
//! ```json
//! {"now": "2025-06-15T14:13:20Z", "claims": { ...the host's Claims... }}
//! ```
//!
//! `now` is the appraisal time (RFC 3339, UTC; use it rather than `time.now_ns()`, so that a
//! verdict depends only on its arguments), and `claims` is [`Claims`] as serialised by serde:
//! `host`, `labels` (object), `bank`, `events` (array of `{component, kind, source: {index, pcr,
//! event_type}, ordinal, digest, detail, binding}`, `component` and `kind` in snake_case),
//! `secure_boot` (`state`, `state_source`, `pk`, `kek`, `db`, `dbx`), `cmdline` (`{text,
//! source}` or null) and `pcrs` (object, PCR number as a string key -> hex). Serialised
//! claims larger than [`MAX_INPUT_BYTES`] are not evaluated (the verdict fails closed).
//!
//! Only what the quote binds is evidence: an event's `digest`, `detail` when `binding` is
//! `"bound"`, `secure_boot`, `cmdline`, `pcrs` and the `detected.*` labels. A `detail` with
//! `binding: "unbound"` is what the (untrusted) log says; a rule that trusts it can be fooled.
//!
//! # The deny contract
//!
//! `data.vouch.deny` must evaluate to a set (or an array) of at most [`MAX_DENIALS`] elements,
//! empty when the host passes. Each element is either a message string, or an object
//!
//! ```json
//! {"message": "...", "component": "boot_chain", "category": "executables"}
//! ```
//!
//! with `component` optional (a component name as in rules) and `category` optional: one of
//! the AR4SI claims this verifier makes, `configuration` (the default), `executables` or
//! `hardware`. Messages are non-empty and at most [`MAX_MESSAGE_BYTES`]. Each element becomes a
//! [`crate::Reason`] with finding `operator_rule`, the contraindicated value of its category
//! (`unsupportable_config`, `contraindicated_rt`, `contraindicated_hw`) and reference
//! `<policy id> v<version> rego`.
//!
//! # Fail closed
//!
//! Anything else is an evaluation failure, and the verdict gets one reason with finding
//! `operator_rule_error` (configuration: `unsupportable_config`, so contraindicated): a runtime
//! error (a conflict, a division by zero, a builtin given a bad argument: builtin errors are
//! strict; a call to a function that does not exist, which regorus finds only when it is
//! reached), `deny` undefined or not a set/array, an element of another shape, more than
//! [`MAX_DENIALS`] elements, input over [`MAX_INPUT_BYTES`], or an evaluation running longer
//! than [`TIME_LIMIT`].
//!
//! # Trust and bounds
//!
//! The module is trusted code of the verifier's administrators, like the rest of the policy.
//! Its results can only add failures to the built-in rules' verdict: a deny never makes a claim
//! better, so no module can make a failing host affirming. regorus has no fuel counter; the
//! evaluation is bounded by the module size limit, the input size limit and regorus's
//! cooperative wall-clock timer ([`TIME_LIMIT`], checked between evaluation steps, so a single
//! builtin call such as `numbers.range` over a huge range runs to completion, and memory is not
//! capped). A module that hits the timer is a broken module, and the verdict fails closed;
//! this is the one place where the wall clock can influence a verdict.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use regorus::utils::limits::ExecutionTimerConfig;
use serde::{Deserialize, Serialize};

use crate::claims::Claims;
use crate::model::Component;
use crate::trust::TrustCategory;

/// The largest module accepted, in bytes of source text.
pub const MAX_MODULE_BYTES: usize = 64 * 1024;
/// The largest input evaluated, in bytes of JSON. A 1 MiB event log (the verifier's limit)
/// gives claims well below this.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// The most elements `deny` may hold.
pub const MAX_DENIALS: usize = 64;
/// The longest deny message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Wall-clock budget of one evaluation. Well-behaved rules take microseconds.
pub const TIME_LIMIT: Duration = Duration::from_secs(1);
/// The package the module must declare.
pub const PACKAGE: &str = "vouch";

/// Evaluation steps between two looks at the clock.
const CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(16) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};
const ENTRY_POINT: &str = "data.vouch.deny";
const MODULE_NAME: &str = "vouch.rego";

/// Operator rules as stored and exchanged: the Rego module source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegoRules {
    /// Rego v1 source declaring `package vouch` and a rule `deny`.
    pub module: String,
}

/// Why a module was refused (carried by [`crate::PolicyError::Rego`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegoError {
    /// Over [`MAX_MODULE_BYTES`].
    #[error("rego module is {0} bytes; the limit is {MAX_MODULE_BYTES}")]
    TooLarge(usize),
    /// A parse or analysis error, as regorus reports it (with the offending line).
    #[error("rego module does not compile: {0}")]
    Compile(String),
    /// Another package than `vouch`.
    #[error("rego module must declare `package {PACKAGE}`, not {0}")]
    Package(String),
    /// No `deny` rule.
    #[error("rego module declares no `deny` rule")]
    NoDeny,
}

/// Why operator rules could not be evaluated for one host (the verdict fails closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EvalError {
    #[error("claims are {0} bytes of JSON; the limit is {MAX_INPUT_BYTES}")]
    InputTooLarge(usize),
    #[error("claims could not be serialised: {0}")]
    Input(String),
    #[error("{0}")]
    Runtime(String),
    #[error("data.vouch.deny is undefined (declare it as `deny contains msg if {{...}}`)")]
    Undefined,
    #[error("data.vouch.deny is not a set or an array")]
    NotASet,
    #[error("data.vouch.deny has more than {MAX_DENIALS} elements")]
    TooMany,
    #[error("data.vouch.deny element {0}: {1}")]
    Element(String, String),
}

/// One deny element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denial {
    pub message: String,
    pub component: Option<Component>,
    pub category: TrustCategory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyObject {
    message: String,
    #[serde(default)]
    component: Option<Component>,
    #[serde(default)]
    category: Option<TrustCategory>,
}

#[derive(Serialize)]
struct Input<'a> {
    now: String,
    claims: &'a Claims,
}

/// A compiled module: the source (for equality and `Debug`) and the analysed engine, shared.
#[derive(Clone)]
pub(crate) struct CompiledRules {
    source: RegoRules,
    engine: Arc<regorus::Engine>,
}

impl fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledRules")
            .field("module_bytes", &self.source.module.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for CompiledRules {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CompiledRules {}

/// regorus's multi-line diagnostic (location, source line, caret, message) on one line, for a
/// reason's message.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A deny element for an error message: compact JSON, at most 200 bytes.
fn show(v: &regorus::Value) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_else(|_| "(unprintable)".to_owned());
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl CompiledRules {
    /// Parse and analyse a module.
    pub(crate) fn compile(rules: &RegoRules) -> Result<Self, RegoError> {
        let len = rules.module.len();
        if len > MAX_MODULE_BYTES {
            return Err(RegoError::TooLarge(len));
        }
        let mut engine = regorus::Engine::new();
        // Rego v1 is regorus's default; say so, as the contract depends on it.
        engine.set_rego_v0(false);
        engine.set_strict_builtin_errors(true);
        // `print` output is collected in the per-evaluation clone and dropped, never written to
        // stderr.
        engine.set_gather_prints(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: TIME_LIMIT,
            check_interval: CHECK_INTERVAL,
        });
        let package = engine
            .add_policy(MODULE_NAME.to_owned(), rules.module.clone())
            .map_err(|e| RegoError::Compile(format!("{e:#}")))?;
        if package != format!("data.{PACKAGE}") {
            let declared = package.strip_prefix("data.").unwrap_or(&package);
            return Err(RegoError::Package(format!("`package {declared}`")));
        }
        if !engine
            .has_declared_rule_rooted_at(MODULE_NAME, "deny")
            .map_err(|e| RegoError::Compile(format!("{e:#}")))?
        {
            return Err(RegoError::NoDeny);
        }
        // Analyse now (unsafe variables, recursion, schedule), so that a module that cannot be
        // evaluated is refused here and each evaluation starts from a prepared engine.
        engine
            .compile_with_entrypoint(&ENTRY_POINT.into())
            .map_err(|e| RegoError::Compile(format!("{e:#}")))?;
        Ok(Self {
            source: rules.clone(),
            engine: Arc::new(engine),
        })
    }

    /// Evaluate `data.vouch.deny` over `claims` at `now`.
    pub(crate) fn evaluate(
        &self,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<Vec<Denial>, EvalError> {
        let input = serde_json::to_string(&Input {
            now: now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            claims,
        })
        .map_err(|e| EvalError::Input(e.to_string()))?;
        if input.len() > MAX_INPUT_BYTES {
            return Err(EvalError::InputTooLarge(input.len()));
        }
        let input = regorus::Value::from_json_str(&input)
            .map_err(|e| EvalError::Input(format!("{e:#}")))?;
        let mut engine = regorus::Engine::clone(&self.engine);
        engine.set_input(input);
        let deny = engine
            .eval_rule(ENTRY_POINT.to_owned())
            .map_err(|e| EvalError::Runtime(one_line(&format!("{e:#}"))))?;
        let elements: Vec<&regorus::Value> = match &deny {
            regorus::Value::Undefined => return Err(EvalError::Undefined),
            regorus::Value::Set(s) => s.iter().take(MAX_DENIALS.saturating_add(1)).collect(),
            regorus::Value::Array(a) => a.iter().take(MAX_DENIALS.saturating_add(1)).collect(),
            _ => return Err(EvalError::NotASet),
        };
        if elements.len() > MAX_DENIALS {
            return Err(EvalError::TooMany);
        }
        elements.into_iter().map(denial).collect()
    }
}

fn denial(v: &regorus::Value) -> Result<Denial, EvalError> {
    let bad = |why: &str| EvalError::Element(show(v), why.to_owned());
    let (message, component, category) = match v {
        regorus::Value::String(s) => (s.to_string(), None, None),
        regorus::Value::Object(_) => {
            let json = serde_json::to_value(v).map_err(|e| bad(&e.to_string()))?;
            let o: DenyObject = serde_json::from_value(json).map_err(|e| bad(&e.to_string()))?;
            (o.message, o.component, o.category)
        }
        _ => return Err(bad("not a message string or a {\"message\": ...} object")),
    };
    if message.trim().is_empty() {
        return Err(bad("empty message"));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(bad(&format!(
            "message longer than {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    let category = category.unwrap_or(TrustCategory::Configuration);
    if !matches!(
        category,
        TrustCategory::Configuration | TrustCategory::Executables | TrustCategory::Hardware
    ) {
        return Err(bad(
            "category must be configuration, executables or hardware (the claims this verifier makes)",
        ));
    }
    Ok(Denial {
        message,
        component,
        category,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(module: &str) -> Result<CompiledRules, RegoError> {
        CompiledRules::compile(&RegoRules {
            module: module.to_owned(),
        })
    }

    #[test]
    fn accepts_a_v1_module_in_package_vouch_with_deny() {
        compile("package vouch\nimport rego.v1\ndeny contains \"x\" if false").unwrap();
        compile("package vouch\ndeny contains msg if { msg := \"x\"; false }").unwrap();
    }

    #[test]
    fn refuses_a_module_that_does_not_parse_or_analyse() {
        for bad in [
            "package vouch\ndeny contains msg if {",
            // Rego v0 syntax.
            "package vouch\ndeny[msg] { msg := \"x\" }",
            // An unsafe variable: found by analysis, not by the parser.
            "package vouch\ndeny contains msg if { x > 1 }",
        ] {
            let e = compile(bad).unwrap_err();
            assert!(matches!(e, RegoError::Compile(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains("vouch.rego:"), "{e}");
        }
    }

    #[test]
    fn refuses_another_package_a_missing_deny_and_an_oversized_module() {
        assert_eq!(
            compile("package other\ndeny contains 1 if true").unwrap_err(),
            RegoError::Package("`package other`".into())
        );
        assert_eq!(
            compile("package vouch.sub\ndeny contains 1 if true").unwrap_err(),
            RegoError::Package("`package vouch.sub`".into())
        );
        assert_eq!(
            compile("package vouch\nallow if true").unwrap_err(),
            RegoError::NoDeny
        );
        let big = format!(
            "package vouch\ndeny contains 1 if false\n{}",
            "# padding\n".repeat(MAX_MODULE_BYTES / 10)
        );
        assert_eq!(compile(&big).unwrap_err(), RegoError::TooLarge(big.len()));
    }

    #[test]
    fn deny_elements_truth_table() {
        let ok = |v: &str| denial(&regorus::Value::from_json_str(v).unwrap());
        assert_eq!(
            ok(r#""m""#).unwrap(),
            Denial {
                message: "m".into(),
                component: None,
                category: TrustCategory::Configuration
            }
        );
        assert_eq!(
            ok(r#"{"message": "m", "component": "boot_chain", "category": "executables"}"#)
                .unwrap(),
            Denial {
                message: "m".into(),
                component: Some(Component::BootChain),
                category: TrustCategory::Executables
            }
        );
        for bad in [
            "1",
            "null",
            "[\"m\"]",
            r#""""#,
            r#"{"msg": "m"}"#,
            r#"{"message": "m", "extra": 1}"#,
            r#"{"message": "m", "component": "pcr_4"}"#,
            r#"{"message": "m", "category": "file-system"}"#,
            r#"{"message": 7}"#,
        ] {
            assert!(
                matches!(ok(bad), Err(EvalError::Element(..))),
                "{bad}: {:?}",
                ok(bad)
            );
        }
        let long = format!("\"{}\"", "m".repeat(MAX_MESSAGE_BYTES + 1));
        assert!(matches!(ok(&long), Err(EvalError::Element(..))));
    }

    #[test]
    fn compiled_rules_compare_and_debug_by_source() {
        let a = compile("package vouch\ndeny contains 1 if false").unwrap();
        let b = compile("package vouch\ndeny contains 1 if false").unwrap();
        let c = compile("package vouch\ndeny contains 2 if false").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(format!("{a:?}").contains("module_bytes"));
    }
}
