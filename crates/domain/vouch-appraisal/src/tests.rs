//! Behaviour tests on real logs booted into a simulated TPM and quoted for real.

use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use vouch_sim::{KeyPool, SimTpm};
use vouch_tpm2::{AkVerifier, HashAlg, PcrBankSelection, PcrSelection, PublicArea, verify_quote};

use crate::*;

const GCE: &[u8] = include_bytes!("../../../../testdata/eventlogs/gce-rhel8-sb.bin");
const QEMU: &[u8] = include_bytes!("../../../../testdata/eventlogs/qemu-ubuntu2004-1.bin");

fn keys() -> &'static KeyPool {
    static K: OnceLock<KeyPool> = OnceLock::new();
    K.get_or_init(|| KeyPool::generate(2).unwrap())
}

fn claims_for(host: &str, cohort: &str, log: &[u8]) -> Claims {
    let quote_log = log;
    let mut tpm = SimTpm::builder()
        .ek_key(keys().key(0).unwrap().clone())
        .ak_key(keys().key(1).unwrap().clone())
        .build()
        .unwrap();
    tpm.boot_with_event_log(quote_log).unwrap();
    let sel = PcrSelection::new(vec![
        PcrBankSelection::new(HashAlg::Sha256, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]).unwrap(),
    ])
    .unwrap();
    let q = tpm.quote(b"nonce", &sel).unwrap();
    let ak_pub = tpm.ak_public().unwrap();
    let ak = AkVerifier::new(&PublicArea::decode_tpmt(&ak_pub).unwrap()).unwrap();
    let vq = verify_quote(&ak, &q.attest, &q.signature, b"nonce", &q.pcrs).unwrap();
    Claims::derive(
        host,
        Labels::from([("cohort".into(), cohort.into())]),
        &vq,
        log,
    )
    .unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn gce() -> &'static Claims {
    static C: OnceLock<Claims> = OnceLock::new();
    C.get_or_init(|| claims_for("gce-1", "gce", GCE))
}

fn policy(cohort: &str, rules: Vec<Rule>) -> Policy {
    Policy::new(PolicyDoc {
        schema: policy::SCHEMA,
        id: cohort.into(),
        version: 1,
        description: None,
        selector: Selector::label("cohort", cohort),
        rules,
        rego: None,
    })
    .unwrap()
}

fn all_rules() -> Vec<Rule> {
    [
        Component::PlatformFirmware,
        Component::FirmwareConfig,
        Component::OptionRoms,
        Component::BootChain,
        Component::SecureBoot,
        Component::Kernel,
    ]
    .into_iter()
    .map(Rule::references)
    .collect()
}

const LEARNED: [Component; 6] = [
    Component::PlatformFirmware,
    Component::FirmwareConfig,
    Component::OptionRoms,
    Component::BootChain,
    Component::SecureBoot,
    Component::Kernel,
];

fn engine_for(c: &Claims, rules: Vec<Rule>) -> Engine {
    let mut refs = RefStore::new();
    learn_from_host(c, &LEARNED, "base", Selector::label("cohort", "gce"), t0())
        .unwrap()
        .accept(&mut refs, &RefState::Active)
        .unwrap();
    Engine::new(PolicySet::new(vec![policy("gce", rules)]), refs, vec![])
}

fn with_digest(c: &Claims, event_type: &str, nth: usize, digest: &str) -> Claims {
    let mut c = c.clone();
    let e = c
        .events
        .iter_mut()
        .filter(|e| e.source.event_type == event_type)
        .nth(nth)
        .unwrap();
    e.digest = digest.into();
    c
}

#[test]
fn claims_name_secure_boot_keys_cmdline_and_firmware_from_bound_data() {
    let c = gce();
    assert_eq!(c.bank, "sha256");
    assert_eq!(c.secure_boot.state, SecureBootState::Enabled);
    assert_eq!(c.secure_boot.state_source.as_ref().unwrap().index, 3);
    let db = c.secure_boot.db.as_ref().unwrap();
    assert_eq!(db.certificates.len(), 2);
    assert!(
        db.certificates
            .iter()
            .any(|x| x.subject.as_deref() == Some("Microsoft Corporation UEFI CA 2011"))
    );
    assert_eq!(c.secure_boot.dbx.as_ref().unwrap().hashes.len(), 183);
    assert!(
        c.cmdline
            .as_ref()
            .unwrap()
            .text
            .contains("vmlinuz-4.18.0-240.22.1.el8_3")
    );
    assert_eq!(c.cmdline.as_ref().unwrap().source.pcr, 8);
    assert_eq!(
        c.labels["detected.firmware_version"],
        "GCE Virtual Firmware v1"
    );
    let apps: Vec<_> = c
        .component(Component::BootChain)
        .filter(|e| e.kind == ClaimKind::BootApplication)
        .collect();
    assert_eq!(apps.len(), 3);
    assert_eq!(apps[1].source.index, 26);
    assert!(c.events.iter().all(|e| e.digest.len() == 64));
}

#[test]
fn refuses_a_log_that_does_not_replay_to_the_quote() {
    let mut tpm = SimTpm::builder()
        .ek_key(keys().key(0).unwrap().clone())
        .ak_key(keys().key(1).unwrap().clone())
        .build()
        .unwrap();
    tpm.boot_with_event_log(QEMU).unwrap();
    let sel = PcrSelection::new(vec![
        PcrBankSelection::new(HashAlg::Sha256, &[0, 4, 7]).unwrap(),
    ])
    .unwrap();
    let q = tpm.quote(b"n", &sel).unwrap();
    let ak = AkVerifier::new(&PublicArea::decode_tpmt(&tpm.ak_public().unwrap()).unwrap()).unwrap();
    let vq = verify_quote(&ak, &q.attest, &q.signature, b"n", &q.pcrs).unwrap();
    assert!(matches!(
        Claims::derive("h", Labels::new(), &vq, GCE),
        Err(ClaimsError::QuoteMismatch(_))
    ));
    // Only quoted PCRs become claims.
    let c = Claims::derive("h", Labels::new(), &vq, QEMU).unwrap();
    assert!(c.events.iter().all(|e| [0, 4, 7].contains(&e.source.pcr)));
}

#[test]
fn affirms_learned_host_and_names_an_unknown_firmware_event() {
    let c = gce();
    let engine = engine_for(c, all_rules());
    let v = engine.appraise(c, t0());
    assert_eq!(v.status, Status::Affirming, "{:?}", v.reasons);
    v.require_affirming().unwrap();
    assert_eq!(v.trust_vector.hardware, ar4si::GENUINE_HARDWARE);
    assert_eq!(v.trust_vector.executables, ar4si::APPROVED_BOOT);
    assert_eq!(
        v.trust_vector.instance_identity,
        ar4si::TRUSTWORTHY_INSTANCE
    );

    let bad = with_digest(c, "EV_S_CRTM_VERSION", 0, &"11".repeat(32));
    let v = engine.appraise(&bad, t0());
    assert_eq!(v.status, Status::Contraindicated);
    assert!(v.require_affirming().is_err());
    assert_eq!(v.failing_components(), vec![Component::PlatformFirmware]);
    let r = &v.reasons[0];
    assert_eq!(r.finding, Finding::Unrecognized);
    assert_eq!(r.claim, ar4si::UNRECOGNIZED_HARDWARE);
    let ev = r.event.as_ref().unwrap();
    assert_eq!(
        (ev.index, ev.pcr, ev.event_type.as_str()),
        (1, 0, "EV_S_CRTM_VERSION")
    );
    assert!(r.actual.as_ref().unwrap().starts_with(&"11".repeat(32)));
    assert!(
        r.expected[0].starts_with("base [active]"),
        "{:?}",
        r.expected
    );
    assert!(
        r.message.contains("event 1 (PCR 0, EV_S_CRTM_VERSION)"),
        "{}",
        r.message
    );

    let bad = with_digest(c, "EV_EFI_BOOT_SERVICES_APPLICATION", 1, &"22".repeat(32));
    let v = engine.appraise(&bad, t0());
    assert_eq!(v.status, Status::Warning);
    assert_eq!(v.trust_vector.executables, ar4si::UNRECOGNIZED_RUNTIME);
    assert_eq!(v.failing_components(), vec![Component::BootChain]);
}

#[test]
fn ignored_event_types_and_uncovered_pcrs() {
    let c = gce();
    let mut kernel = Rule::references(Component::Kernel);
    kernel.ignore = vec!["EV_IPL".into()];
    let engine = engine_for(c, vec![kernel]);
    let bad = with_digest(c, "EV_IPL", 3, &"33".repeat(32));
    engine.appraise(&bad, t0()).require_affirming().unwrap();
    // A rule on a PCR the quote does not cover fails closed.
    let mut unquoted = c.clone();
    unquoted.pcrs.remove(&9);
    let engine = engine_for(c, vec![Rule::references(Component::Kernel)]);
    let v = engine.appraise(&unquoted, t0());
    assert_eq!(v.reasons[0].finding, Finding::PcrNotQuoted);
    assert_ne!(v.status, Status::Affirming);
}

#[test]
fn no_policy_is_none_never_affirming() {
    let c = gce();
    let engine = Engine::new(PolicySet::default(), RefStore::new(), vec![]);
    let v = engine.appraise(c, t0());
    assert_eq!(v.status, Status::None);
    assert_eq!(v.reasons[0].finding, Finding::NoPolicy);
    assert!(v.require_affirming().is_err());
}

#[test]
fn lifecycle_deprecated_until_deadline_then_flagged_revoked_at_once() {
    let c = gce();
    let mut refs = RefStore::new();
    learn_from_host(c, &LEARNED, "base", Selector::label("cohort", "gce"), t0())
        .unwrap()
        .accept(&mut refs, &RefState::Active)
        .unwrap();
    let deadline = t0() + TimeDelta::days(30);
    refs.deprecate("base", deadline).unwrap();
    let e = Engine::new(
        PolicySet::new(vec![policy("gce", all_rules())]),
        refs.clone(),
        vec![],
    );
    let v = e.appraise(c, t0());
    v.require_affirming().unwrap();
    assert!(
        v.notes
            .iter()
            .any(|n| n.finding == Finding::DeprecatedUntil)
    );
    let v = e.appraise(c, deadline + TimeDelta::seconds(1));
    assert_eq!(v.status, Status::Warning);
    assert!(
        v.reasons
            .iter()
            .all(|r| r.finding == Finding::DeprecatedExpired)
    );
    assert_eq!(v.trust_vector.hardware, ar4si::UNSAFE_HARDWARE);

    refs.revoke("base", t0(), "CVE-2099-0001").unwrap();
    let e = Engine::new(
        PolicySet::new(vec![policy("gce", all_rules())]),
        refs,
        vec![],
    );
    let v = e.appraise(c, t0());
    assert_eq!(v.status, Status::Contraindicated);
    assert!(v.reasons[0].message.contains("CVE-2099-0001"));
    assert_eq!(e.count_affected("base", [c]), 1);
    let other = claims_for("q", "gce", QEMU);
    assert_eq!(
        e.count_affected("base", [c, &other]),
        2,
        "separators are shared"
    );
}

#[test]
fn candidate_is_accepted_only_for_admitted_hosts() {
    let c = gce();
    let mut refs = RefStore::new();
    let mut p =
        learn_from_host(c, &LEARNED, "new", Selector::label("cohort", "gce"), t0()).unwrap();
    for r in &mut p.refs {
        r.id = format!("n-{}", r.id);
    }
    p.accept(
        &mut refs,
        &RefState::Candidate {
            campaign: Some("fw".into()),
        },
    )
    .unwrap();
    let mut camp = Campaign::new(
        "fw",
        Selector::label("cohort", "gce"),
        Component::PlatformFirmware,
        "old",
        "new",
        vec![100],
        "s",
    )
    .unwrap();
    let pol = PolicySet::new(vec![policy("gce", all_rules())]);
    let e = Engine::new(pol.clone(), refs.clone(), vec![camp.clone()]);
    let v = e.appraise(c, t0());
    assert!(
        v.reasons
            .iter()
            .all(|r| r.finding == Finding::CandidateNotAdmitted)
    );
    assert_eq!(v.status, Status::Warning);
    camp.start().unwrap();
    let e = Engine::new(pol, refs, vec![camp]);
    e.appraise(c, t0()).require_affirming().unwrap();
}

#[test]
fn secure_boot_and_cmdline_rules() {
    let c = gce();
    let db: Vec<String> = c
        .secure_boot
        .db
        .as_ref()
        .unwrap()
        .certificates
        .iter()
        .map(|x| x.sha256.clone())
        .collect();
    let dbx0 = c.secure_boot.dbx.as_ref().unwrap().hashes[0].clone();
    let mut sb = Rule::references(Component::SecureBoot);
    sb.secure_boot = Some(SecureBootRule {
        require_enabled: true,
        allowed_db: Some(db[..1].to_vec()),
        dbx_must_contain: vec![dbx0, "ab".repeat(32)],
        ..SecureBootRule::default()
    });
    let mut k = Rule::references(Component::Kernel);
    k.cmdline = Some(CmdlineRule {
        require: vec!["ro".into()],
        forbid: vec!["crashkernel=".into()],
    });
    let e = engine_for(c, vec![sb, k]);
    let v = e.appraise(c, t0());
    let findings: Vec<Finding> = v.reasons.iter().map(|r| r.finding).collect();
    assert_eq!(
        findings,
        vec![
            Finding::CertificateNotAllowed,
            Finding::DbxMissingEntry,
            Finding::CmdlineForbidden
        ]
    );
    assert_eq!(v.status, Status::Contraindicated);
    assert!(
        v.reasons[0]
            .actual
            .as_ref()
            .unwrap()
            .contains("Windows Production PCA 2011")
    );

    let mut off = c.clone();
    off.secure_boot.state = SecureBootState::Disabled;
    let mut sb = Rule::references(Component::SecureBoot);
    sb.secure_boot = Some(SecureBootRule {
        require_enabled: true,
        ..SecureBootRule::default()
    });
    let e = engine_for(c, vec![sb]);
    e.appraise(c, t0()).require_affirming().unwrap();
    let v = e.appraise(&off, t0());
    assert_eq!(v.reasons[0].finding, Finding::SecureBootNotEnabled);
    assert_eq!(v.reasons[0].event.as_ref().unwrap().index, 3);
    assert_eq!(v.trust_vector.configuration, ar4si::UNSUPPORTABLE_CONFIG);
}

#[test]
fn cohort_learning_proposes_the_quorum_and_shows_the_minority() {
    let a = gce();
    let b = claims_for("gce-2", "gce", GCE);
    let mut odd = claims_for("gce-3", "gce", GCE);
    odd.host = "gce-3".into();
    let odd = with_digest(&odd, "EV_S_CRTM_VERSION", 0, &"44".repeat(32));
    let cohort = [a, &b, &odd];
    assert_eq!(
        learn_from_cohort(&[], &LEARNED, 60, "x", Selector::All, t0()),
        Err(LearnError::EmptyCohort)
    );
    assert_eq!(
        learn_from_cohort(&cohort, &LEARNED, 50, "x", Selector::All, t0()),
        Err(LearnError::BadQuorum(50))
    );
    let p = learn_from_cohort(
        &cohort,
        &LEARNED,
        60,
        "bios-1",
        Selector::label("cohort", "gce"),
        t0(),
    )
    .unwrap();
    assert_eq!(p.hosts, 3);
    assert_eq!(p.minority.len(), 1);
    assert_eq!(p.minority[0].hosts, vec!["gce-3"]);
    assert_eq!(p.minority[0].slot.event_type, "EV_S_CRTM_VERSION");
    let mut store = RefStore::new();
    let diff = p.proposal.diff(&store);
    assert_eq!(diff.added.len(), p.proposal.refs.len());
    let accepted = p
        .proposal
        .clone()
        .accept(&mut store, &RefState::Active)
        .unwrap();
    assert_eq!(accepted.unchanged, 0);
    let again = p.proposal.diff(&store);
    assert!(again.added.is_empty());
    // 100% quorum: the CRTM slot has no quorum, so nothing is proposed there.
    let p = learn_from_cohort(
        &cohort,
        &LEARNED,
        100,
        "bios-1",
        Selector::label("cohort", "gce"),
        t0(),
    )
    .unwrap();
    assert!(
        p.proposal
            .refs
            .iter()
            .all(|r| r.slot.event_type != "EV_S_CRTM_VERSION")
    );
    assert_eq!(
        p.minority
            .iter()
            .filter(|m| m.slot.event_type == "EV_S_CRTM_VERSION")
            .count(),
        2
    );
}

#[test]
fn peers_outliers_and_triage_tell_an_update_from_one_tampered_host() {
    let base = gce();
    let engine = engine_for(base, all_rules());
    let mut fleet: Vec<Claims> = (0..20)
        .map(|i| {
            let mut c = base.clone();
            c.host = format!("h{i}");
            c
        })
        .collect();
    for c in fleet.iter_mut().take(8) {
        *c = with_digest(c, "EV_S_CRTM_VERSION", 0, &"55".repeat(32)); // an update, 8 hosts
    }
    fleet[19] = with_digest(
        &fleet[19],
        "EV_EFI_BOOT_SERVICES_APPLICATION",
        1,
        &"66".repeat(32),
    );
    let refs: Vec<&Claims> = fleet.iter().collect();
    let out = outliers(&engine, "gce", &refs);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].host, "h19");
    let msg = out[0].to_string();
    assert!(
        msg.contains("seen on 1 of 20 hosts of cohort gce; 19 measure"),
        "{msg}"
    );
    assert!(msg.contains("reference base"), "{msg}");
    let dist = distribution(&refs, Component::PlatformFirmware);
    let crtm = dist
        .iter()
        .find(|d| d.slot.event_type == "EV_S_CRTM_VERSION")
        .unwrap();
    assert_eq!(
        crtm.values.iter().map(|v| v.1).collect::<Vec<_>>(),
        vec![12, 8]
    );

    let verdicts: Vec<Verdict> = fleet.iter().map(|c| engine.appraise(c, t0())).collect();
    let groups = triage(&verdicts, 3);
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].hosts.len(), 8);
    assert_eq!(groups[0].assessment, Assessment::LikelyUpdate);
    assert_eq!(groups[1].hosts, vec!["h19"]);
    assert_eq!(groups[1].assessment, Assessment::Isolated);
    assert!(triage(&[], 3).is_empty());
}

#[test]
fn rollout_status_counts_old_new_unknown() {
    let base = gce();
    let newer = with_digest(base, "EV_S_CRTM_VERSION", 0, &"77".repeat(32));
    let unknown = with_digest(base, "EV_S_CRTM_VERSION", 0, &"88".repeat(32));
    let mut refs = RefStore::new();
    learn_from_host(
        base,
        &[Component::PlatformFirmware],
        "old",
        Selector::label("cohort", "gce"),
        t0(),
    )
    .unwrap()
    .accept(&mut refs, &RefState::Active)
    .unwrap();
    learn_from_host(
        &newer,
        &[Component::PlatformFirmware],
        "new",
        Selector::label("cohort", "gce"),
        t0(),
    )
    .unwrap()
    .accept(
        &mut refs,
        &RefState::Candidate {
            campaign: Some("c".into()),
        },
    )
    .unwrap();
    let c = Campaign::new(
        "c",
        Selector::label("cohort", "gce"),
        Component::PlatformFirmware,
        "old",
        "new",
        vec![1, 20, 100],
        "s",
    )
    .unwrap();
    let s = c.status(&refs, [base, base, &newer, &unknown]);
    assert_eq!((s.hosts, s.old, s.new, s.unknown), (4, 2, 1, 1));
}

#[test]
fn platform_identity_the_log_reports_becomes_reported_labels_never_detected() {
    const SP: &[u8] = include_bytes!("../../../../testdata/eventlogs/gce-sp800155.bin");
    let c = claims_for("sp-1", "gce", SP);
    assert_eq!(c.labels["reported.platform_manufacturer"], "Google, Inc.");
    assert_eq!(c.labels["reported.platform_model"], "Google Compute Engine");
    assert_eq!(c.labels["reported.firmware_version"], "2.7");
    assert!(
        c.labels.keys().all(|k| !k.starts_with("detected.platform")),
        "{:?}",
        c.labels
    );
    assert!(!gce().labels.keys().any(|k| k.starts_with("reported.")));
}

// Operator rules in Rego.

fn rego_policy(module: &str) -> Result<Policy, PolicyError> {
    Policy::new(PolicyDoc {
        schema: policy::SCHEMA,
        id: "gce".into(),
        version: 7,
        description: None,
        selector: Selector::label("cohort", "gce"),
        rules: all_rules(),
        rego: Some(RegoRules {
            module: module.into(),
        }),
    })
}

fn rego_engine(c: &Claims, module: &str) -> Engine {
    let base = engine_for(c, all_rules());
    Engine::new(
        PolicySet::new(vec![rego_policy(module).unwrap()]),
        base.refs().clone(),
        vec![],
    )
}

/// At most `max` boot applications on PCR 4: a count the built-in rules cannot express.
fn max_boot_apps(max: usize) -> String {
    format!(
        r#"package vouch
import rego.v1

apps := [e | some e in input.claims.events; e.source.pcr == 4; e.kind == "boot_application"]

deny contains msg if {{
    count(apps) > {max}
    msg := sprintf("%d boot applications on PCR 4, at most {max} allowed", [count(apps)])
}}
"#
    )
}

/// The verdict fails closed on an operator rule error: one reason, contraindicated.
fn assert_fails_closed(v: &Verdict, why: &str) {
    assert_eq!(v.status, Status::Contraindicated, "{:?}", v.reasons);
    assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
    let r = &v.reasons[0];
    assert_eq!(r.finding, Finding::OperatorRuleError);
    assert_eq!(r.claim, ar4si::UNSUPPORTABLE_CONFIG);
    assert_eq!(r.reference.as_deref(), Some("gce v7 rego"));
    assert!(
        r.message.contains("could not be evaluated"),
        "{}",
        r.message
    );
    assert!(r.message.contains(why), "{} lacks {why:?}", r.message);
    assert!(!r.message.contains('\n'), "{}", r.message);
    assert!(v.require_affirming().is_err());
}

#[test]
fn operator_rule_contraindicates_an_otherwise_affirming_host() {
    let c = gce();
    engine_for(c, all_rules())
        .appraise(c, t0())
        .require_affirming()
        .unwrap();
    let v = rego_engine(c, &max_boot_apps(2)).appraise(c, t0());
    assert_eq!(v.status, Status::Contraindicated, "{:?}", v.reasons);
    assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
    let r = &v.reasons[0];
    assert_eq!(r.finding, Finding::OperatorRule);
    assert_eq!(r.category, TrustCategory::Configuration);
    assert_eq!(r.claim, ar4si::UNSUPPORTABLE_CONFIG);
    assert_eq!(r.component, None);
    assert_eq!(r.reference.as_deref(), Some("gce v7 rego"));
    assert_eq!(
        r.message,
        "operator rule: 3 boot applications on PCR 4, at most 2 allowed"
    );
    assert_eq!(v.trust_vector.configuration, ar4si::UNSUPPORTABLE_CONFIG);
    // The built-in claims are untouched.
    assert_eq!(v.trust_vector.executables, ar4si::APPROVED_BOOT);
    assert_eq!(v.trust_vector.hardware, ar4si::GENUINE_HARDWARE);
    assert_eq!(
        serde_json::to_value(r.finding).unwrap(),
        serde_json::json!("operator_rule")
    );
}

#[test]
fn operator_rule_satisfied_keeps_the_host_affirming() {
    let c = gce();
    let v = rego_engine(c, &max_boot_apps(3)).appraise(c, t0());
    v.require_affirming().unwrap();
    assert!(v.notes.is_empty());
}

#[test]
fn operator_rule_cannot_make_a_failing_host_affirming() {
    let c = gce();
    let e = rego_engine(c, &max_boot_apps(3));
    let bad = with_digest(c, "EV_S_CRTM_VERSION", 0, &"11".repeat(32));
    let v = e.appraise(&bad, t0());
    assert_eq!(v.status, Status::Contraindicated);
    assert_eq!(v.reasons[0].finding, Finding::Unrecognized);
}

#[test]
fn operator_rule_objects_name_component_and_category() {
    let c = gce();
    // Over the bound command line and the appraisal time: not both `ro` and `crashkernel=`,
    // and a firmware label that must not be version 1 after a date.
    let module = r#"package vouch
import rego.v1

words := split(input.claims.cmdline.text, " ")

deny contains {"message": "command line has both ro and crashkernel=", "component": "kernel"} if {
    "ro" in words
    some w in words
    startswith(w, "crashkernel=")
}

deny contains {"message": msg, "component": "platform_firmware", "category": "hardware"} if {
    endswith(input.claims.labels["detected.firmware_version"], " v1")
    time.parse_rfc3339_ns(input.now) >= time.parse_rfc3339_ns("2025-01-01T00:00:00Z")
    msg := sprintf("firmware %s is retired as of %s", [input.claims.labels["detected.firmware_version"], input.now])
}

deny contains {"message": "three boot applications", "category": "executables"} if {
    count(data.vouch.apps) == 3
}

apps := [e | some e in input.claims.events; e.kind == "boot_application"]
"#;
    let v = rego_engine(c, module).appraise(c, t0());
    assert_eq!(v.status, Status::Contraindicated);
    assert!(v.reasons.iter().all(|r| r.finding == Finding::OperatorRule));
    let mut got: Vec<(Option<Component>, TrustCategory, i8, &str)> = v
        .reasons
        .iter()
        .map(|r| (r.component, r.category, r.claim, r.message.as_str()))
        .collect();
    got.sort_by_key(|g| g.3);
    assert_eq!(
        got,
        vec![
            (
                Some(Component::Kernel),
                TrustCategory::Configuration,
                ar4si::UNSUPPORTABLE_CONFIG,
                "kernel: operator rule: command line has both ro and crashkernel="
            ),
            (
                None,
                TrustCategory::Executables,
                ar4si::CONTRAINDICATED_RUNTIME,
                "operator rule: three boot applications"
            ),
            (
                Some(Component::PlatformFirmware),
                TrustCategory::Hardware,
                ar4si::CONTRAINDICATED_HARDWARE,
                "platform_firmware: operator rule: firmware GCE Virtual Firmware v1 is retired as of 2025-06-15T15:06:40Z"
            ),
        ]
    );
    assert_eq!(
        v.failing_components(),
        vec![Component::PlatformFirmware, Component::Kernel]
    );
    assert_eq!(v.trust_vector.hardware, ar4si::CONTRAINDICATED_HARDWARE);
    assert_eq!(v.trust_vector.executables, ar4si::CONTRAINDICATED_RUNTIME);
    // Before the date the firmware rule does not fire.
    let early = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let v = rego_engine(c, module).appraise(c, early);
    assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
}

#[test]
fn policy_with_a_rego_module_that_does_not_compile_is_refused() {
    let e = rego_policy("package vouch\ndeny contains msg if { x > 1 }").unwrap_err();
    assert!(
        matches!(&e, PolicyError::Rego(id, RegoError::Compile(m)) if id == "gce" && m.contains("undefined variable `x`")),
        "{e}"
    );
    assert!(matches!(
        rego_policy("package vouch\ndeny contains msg if {"),
        Err(PolicyError::Rego(_, RegoError::Compile(_)))
    ));
}

#[test]
fn policy_with_a_rego_module_outside_package_vouch_is_refused() {
    let e = rego_policy("package other\ndeny contains \"x\" if true").unwrap_err();
    assert_eq!(
        e,
        PolicyError::Rego("gce".into(), RegoError::Package("`package other`".into()))
    );
    assert!(
        e.to_string().contains("must declare `package vouch`"),
        "{e}"
    );
}

#[test]
fn operator_rule_elements_of_the_wrong_shape_fail_closed() {
    let c = gce();
    for (deny, why) in [
        ("deny contains 42 if true", "not a message string"),
        (
            r#"deny contains {"msg": "m"} if true"#,
            "unknown field `msg`",
        ),
        (
            r#"deny contains {"message": "m", "category": "file-system"} if true"#,
            "category must be",
        ),
        (
            r#"deny contains {"message": "m", "component": "pcr4"} if true"#,
            "unknown variant `pcr4`",
        ),
        (r#"deny contains "" if true"#, "empty message"),
        (r#"deny := "m""#, "not a set or an array"),
        (r#"deny := ["m"] if false"#, "undefined"),
        (
            "deny contains x if { some x in numbers.range(1, 65) }",
            "more than 64 elements",
        ),
    ] {
        let e = rego_engine(c, &format!("package vouch\n{deny}\n"));
        assert_fails_closed(&e.appraise(c, t0()), why);
    }
    // An array with at most 64 messages is fine.
    let e = rego_engine(
        c,
        "package vouch\ndeny := [sprintf(\"m%d\", [x]) | some x in numbers.range(1, 64)]",
    );
    let v = e.appraise(c, t0());
    assert_eq!(v.reasons.len(), 64);
    assert!(v.reasons.iter().all(|r| r.finding == Finding::OperatorRule));
}

#[test]
fn operator_rule_runtime_errors_fail_closed() {
    let c = gce();
    for (module, why) in [
        (
            "deny contains \"m\" if { 1 / 0 > 0 }",
            "vouch.rego:2:26 | 2 | deny contains \"m\" if { 1 / 0 > 0 } | ^ error: divide by zero",
        ),
        (
            "deny contains \"m\" if { semver.compare(input.claims.host, \"1.0.0\") < 0 }",
            "invalid semver",
        ),
        (
            "x := 1 if true\nx := 2 if true\ndeny contains \"m\" if x > 0",
            "conflicts",
        ),
        (
            "deny contains \"m\" if { no.such_function(1) }",
            "no.such_function",
        ),
    ] {
        let e = rego_engine(c, &format!("package vouch\n{module}\n"));
        assert_fails_closed(&e.appraise(c, t0()), why);
    }
}

#[test]
fn operator_rule_over_oversized_claims_fails_closed() {
    let c = gce();
    let mut big = c.clone();
    big.cmdline.as_mut().unwrap().text = "x".repeat(rego::MAX_INPUT_BYTES);
    let e = rego_engine(c, &max_boot_apps(3));
    e.appraise(c, t0()).require_affirming().unwrap();
    assert_fails_closed(&e.appraise(&big, t0()), "the limit is");
}

#[test]
fn operator_rule_running_past_the_time_limit_fails_closed() {
    let c = gce();
    let module = "package vouch\ndeny contains \"m\" if {\n  some x in numbers.range(1, 100000)\n  some y in numbers.range(1, 100000)\n  x * y < 0\n}\n";
    let started = std::time::Instant::now();
    let v = rego_engine(c, module).appraise(c, t0());
    assert_fails_closed(&v, "time limit");
    assert!(
        started.elapsed() < rego::TIME_LIMIT * 10,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn policy_doc_with_rego_round_trips_json() {
    let p = rego_policy(&max_boot_apps(3)).unwrap();
    let json = serde_json::to_string(p.doc()).unwrap();
    assert!(
        json.contains(r#""rego":{"module":"package vouch"#),
        "{json}"
    );
    let back: PolicyDoc = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, p.doc());
    assert_eq!(Policy::from_json(&json).unwrap(), p);
    // Without a module the field is left out, and documents without it still read.
    let plain = policy("gce", all_rules());
    let json = serde_json::to_string(plain.doc()).unwrap();
    assert!(!json.contains("rego"), "{json}");
    assert!(matches!(
        Policy::from_json(&json.replace(
            r#""rules":"#,
            r#""rego":{"module":"package vouch","extra":1},"rules":"#
        )),
        Err(PolicyError::Json(_))
    ));
    // Policies differ, and diff, by their module.
    let q = rego_policy(&max_boot_apps(2)).unwrap();
    assert_ne!(p, q);
    let n = max_boot_apps(3).len();
    assert_eq!(
        p.diff(&q).changes,
        vec![format!("~ rego: {n} bytes -> {n} bytes")]
    );
    assert_eq!(plain.diff(&p).changes, vec![format!("+ rego: {n} bytes")]);
    assert_eq!(p.diff(&plain).changes, vec![format!("- rego: {n} bytes")]);
}

#[test]
fn policies_with_rego_and_the_engine_are_clone_send_and_sync() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<Policy>();
    shared::<PolicySet>();
    shared::<Engine>();
    let c = gce();
    let e = std::sync::Arc::new(rego_engine(c, &max_boot_apps(2)));
    let verdicts: Vec<Verdict> = (0..2)
        .map(|_| {
            let e = e.clone();
            let c = c.clone();
            std::thread::spawn(move || e.appraise(&c, t0()))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[0].reasons[0].finding, Finding::OperatorRule);
}
