//! Appraisal throughput: one host's claims against a typical policy, the same with a small
//! Rego operator rule, and triage of a 100,000-host fleet.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs,
    reason = "benchmark set-up: a failure is a broken benchmark"
)]

use std::hint::black_box;

use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use vouch_appraisal::*;
use vouch_sim::{KeyPool, SimTpm};
use vouch_tpm2::{AkVerifier, HashAlg, PcrBankSelection, PcrSelection, PublicArea, verify_quote};

const LOGS: [(&str, &[u8]); 3] = [
    (
        "qemu-ovmf",
        include_bytes!("../../../../testdata/eventlogs/qemu-ubuntu2004-1.bin"),
    ),
    (
        "gce-shielded",
        include_bytes!("../../../../testdata/eventlogs/gce-rhel8-sb.bin"),
    ),
    (
        "supermicro",
        include_bytes!("../../../../testdata/eventlogs/supermicro-xcat-2.bin"),
    ),
];
const COMPONENTS: [Component; 6] = [
    Component::PlatformFirmware,
    Component::FirmwareConfig,
    Component::OptionRoms,
    Component::BootChain,
    Component::SecureBoot,
    Component::Kernel,
];

fn claims(pool: &KeyPool, cohort: &str, log: &[u8]) -> Claims {
    let mut tpm = SimTpm::builder()
        .ek_key(pool.key(0).unwrap().clone())
        .ak_key(pool.key(1).unwrap().clone())
        .build()
        .unwrap();
    tpm.boot_with_event_log(log).unwrap();
    let sel = PcrSelection::new(vec![
        PcrBankSelection::new(HashAlg::Sha256, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]).unwrap(),
    ])
    .unwrap();
    let q = tpm.quote(b"bench", &sel).unwrap();
    let ak = AkVerifier::new(&PublicArea::decode_tpmt(&tpm.ak_public().unwrap()).unwrap()).unwrap();
    let vq = verify_quote(&ak, &q.attest, &q.signature, b"bench", &q.pcrs).unwrap();
    let labels = Labels::from([("cohort".to_owned(), cohort.to_owned())]);
    Claims::derive(&format!("{cohort}-0"), labels, &vq, log).unwrap()
}

/// Three cohorts' references (learned, active) and policies with Secure Boot and command line
/// rules, plus a running firmware campaign: what a verifier holds in production.
fn setup() -> (Engine, Vec<Claims>) {
    let pool = KeyPool::generate(2).unwrap();
    let t0 = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let mut refs = RefStore::new();
    let mut policies = Vec::new();
    let mut bases = Vec::new();
    for (cohort, log) in LOGS {
        let c = claims(&pool, cohort, log);
        let sel = Selector::label("cohort", cohort);
        for comp in COMPONENTS {
            learn_from_host(&c, &[comp], &format!("{cohort}/{comp}"), sel.clone(), t0)
                .unwrap()
                .accept(&mut refs, &RefState::Active)
                .unwrap();
        }
        let mut rules: Vec<Rule> = COMPONENTS.iter().map(|c| Rule::references(*c)).collect();
        if let Some(db) = &c.secure_boot.db
            && c.secure_boot.state == SecureBootState::Enabled
        {
            rules[4].secure_boot = Some(SecureBootRule {
                require_enabled: true,
                allowed_db: Some(db.certificates.iter().map(|x| x.sha256.clone()).collect()),
                dbx_must_contain: c
                    .secure_boot
                    .dbx
                    .as_ref()
                    .and_then(|d| d.hashes.first().cloned())
                    .into_iter()
                    .collect(),
                ..SecureBootRule::default()
            });
        }
        rules[5].cmdline = Some(CmdlineRule {
            require: vec![],
            forbid: vec!["init=".into()],
        });
        policies.push(
            Policy::new(PolicyDoc {
                schema: policy::SCHEMA,
                id: cohort.into(),
                version: 1,
                description: None,
                selector: sel,
                rules,
                rego: None,
            })
            .unwrap(),
        );
        bases.push(c);
    }
    let mut camp = Campaign::new(
        "fw",
        Selector::label("cohort", "qemu-ovmf"),
        Component::PlatformFirmware,
        "qemu-ovmf/platform_firmware",
        "bios-next",
        vec![1, 20, 100],
        "s",
    )
    .unwrap();
    camp.start().unwrap();
    (
        Engine::new(PolicySet::new(policies), refs, vec![camp]),
        bases,
    )
}

/// 100,000 hosts: a third per cohort; in the GCE cohort 10% run a firmware nobody has learned
/// yet (an update in progress) and 10 hosts carry an unknown boot loader each.
fn fleet(bases: &[Claims]) -> Vec<Claims> {
    let mut out = Vec::with_capacity(100_000);
    for i in 0..100_000usize {
        let mut c = bases[i % 3].clone();
        c.host = format!("host-{i:06}");
        if i % 3 == 1 && i % 30 == 1 {
            let e = c
                .events
                .iter_mut()
                .find(|e| e.kind == ClaimKind::ScrtmVersion)
                .unwrap();
            e.digest = HashAlg::Sha256.hash(b"GCE Virtual Firmware v2").to_hex();
        }
        if i % 3 == 1 && (i / 3) % 3_000 == 7 && i / 3 < 30_000 {
            let e = c
                .events
                .iter_mut()
                .filter(|e| e.kind == ClaimKind::BootApplication)
                .nth(1)
                .unwrap();
            e.digest = HashAlg::Sha256.hash(c.host.as_bytes()).to_hex();
        }
        out.push(c);
    }
    out
}

fn bench(c: &mut Criterion) {
    let (engine, bases) = setup();
    let now = DateTime::from_timestamp(1_750_000_100, 0).unwrap();
    for (i, (cohort, _)) in LOGS.iter().enumerate() {
        engine.appraise(&bases[i], now).require_affirming().unwrap();
        c.bench_function(
            &format!(
                "appraise one host ({cohort}, {} events)",
                bases[i].events.len()
            ),
            |b| {
                b.iter(|| engine.appraise(black_box(&bases[i]), now));
            },
        );
    }

    // The GCE policy plus a small operator rule: a count and a command line combination.
    let module = r#"package vouch
import rego.v1

deny contains msg if {
    apps := [e | some e in input.claims.events; e.source.pcr == 4; e.kind == "boot_application"]
    count(apps) > 3
    msg := sprintf("%d boot applications on PCR 4, at most 3 allowed", [count(apps)])
}

deny contains {"message": "iommu=off together with nosmt", "component": "kernel"} if {
    words := split(input.claims.cmdline.text, " ")
    "iommu=off" in words
    "nosmt" in words
}
"#;
    let policies = engine
        .policies()
        .policies()
        .iter()
        .map(|p| {
            let mut doc = p.doc().clone();
            if doc.id == "gce-shielded" {
                doc.rego = Some(RegoRules {
                    module: module.into(),
                });
            }
            Policy::new(doc).unwrap()
        })
        .collect();
    let with_rego = Engine::new(
        PolicySet::new(policies),
        engine.refs().clone(),
        engine.campaigns().to_vec(),
    );
    with_rego
        .appraise(&bases[1], now)
        .require_affirming()
        .unwrap();
    c.bench_function(
        &format!(
            "appraise one host with a Rego operator rule (gce-shielded, {} events)",
            bases[1].events.len()
        ),
        |b| {
            b.iter(|| with_rego.appraise(black_box(&bases[1]), now));
        },
    );

    let fleet = fleet(&bases);
    let verdicts: Vec<Verdict> = fleet.iter().map(|c| engine.appraise(c, now)).collect();
    let groups = triage(&verdicts, 1000);
    assert_eq!(groups.len(), 11, "one update group and ten isolated hosts");
    assert_eq!(groups[0].assessment, Assessment::LikelyUpdate);
    let mut g = c.benchmark_group("fleet of 100,000 hosts");
    g.sample_size(10);
    g.bench_function("triage of the verdicts", |b| {
        b.iter(|| triage(black_box(&verdicts), 1000))
    });
    g.bench_function("appraise every host's claims, then triage", |b| {
        b.iter(|| {
            let v: Vec<Verdict> = fleet.iter().map(|c| engine.appraise(c, now)).collect();
            triage(&v, 1000)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
