//! The scripted timeline.

#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "simulation driver: counters and day offsets over at most a few thousand hosts; \
              indices come from enumerating the same vectors or from `i % 3` into the three cohorts"
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use vouch_appraisal::{
    Campaign, Claims, Component, Engine, Labels, Policy, PolicyDoc, PolicySet, RefState, RefStore,
    RolloutStatus, Rule, SecureBootRule, Selector, Status, TriageGroup, Verdict, learn_from_cohort,
    learn_from_host, triage,
};
use vouch_sim::{KeyPool, SimCa, SimTpm};
use vouch_tpm2::{AkVerifier, HashAlg, PcrBankSelection, PcrSelection, PublicArea, verify_quote};

use crate::FleetError;
use crate::logedit;

/// The three platform cohorts and the real logs their hosts boot from.
const COHORTS: [(&str, &[u8]); 3] = [
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
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const LEARNED: [Component; 6] = [
    Component::PlatformFirmware,
    Component::FirmwareConfig,
    Component::OptionRoms,
    Component::BootChain,
    Component::SecureBoot,
    Component::Kernel,
];
/// Hosts per cohort the baseline is learned from.
const LEARN_SAMPLE: usize = 200;
const QUOTED_PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/// How to run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Hosts (at least 60).
    pub hosts: usize,
    /// Chooses which hosts update, straggle, run the revoked firmware or are tampered with.
    pub seed: u64,
    /// Worker threads for quoting and appraisal.
    pub threads: usize,
    /// Distinct RSA keys shared by the simulated TPMs.
    pub key_pool: usize,
}

impl SimConfig {
    /// Defaults: 16 shared keys, one thread per core.
    #[must_use]
    pub fn new(hosts: usize, seed: u64) -> Self {
        Self {
            hosts,
            seed,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            key_pool: 16,
        }
    }
}

/// The confusion matrix (the `vouch fleet simulate --json` contract).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Hosts simulated.
    pub hosts: usize,
    /// Hosts that took a legitimate firmware or boot loader update (and were not tampered).
    pub legit_updated: usize,
    /// Hosts flagged in a round where they should have been affirmed.
    pub false_alarms: usize,
    /// Tampered hosts.
    pub tampered: usize,
    /// Tampered hosts not affirmed.
    pub tampered_flagged: usize,
    /// Tampered hosts whose reasons name exactly the tampered component.
    pub tampered_component_right: usize,
    /// Hosts left on the deprecated firmware.
    pub stragglers: usize,
    /// Stragglers flagged after the deprecation deadline.
    pub stragglers_flagged: usize,
    /// Hosts on the firmware that gets revoked.
    pub revoked: usize,
    /// Those flagged as soon as it is revoked and at the end.
    pub revoked_flagged: usize,
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The contract.
    pub summary: Summary,
    /// What happened, one line per step.
    pub timeline: Vec<String>,
    /// `vouch refs revoke` count of affected hosts.
    pub revoke_affected: usize,
    /// Rollout status after each wave.
    pub rollouts: Vec<(String, RolloutStatus)>,
    /// Triage of the final round.
    pub triage: Vec<TriageGroup>,
    /// Quotes taken and verified.
    pub quotes: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    FirmwareBlob,
    SecureBootOff,
    DbCertAdded,
    UnknownBootloader,
    CmdlineChanged,
}

impl Tamper {
    const ALL: [Self; 5] = [
        Self::FirmwareBlob,
        Self::SecureBootOff,
        Self::DbCertAdded,
        Self::UnknownBootloader,
        Self::CmdlineChanged,
    ];

    const fn component(self) -> Component {
        match self {
            Self::FirmwareBlob => Component::PlatformFirmware,
            Self::SecureBootOff | Self::DbCertAdded => Component::SecureBoot,
            Self::UnknownBootloader => Component::BootChain,
            Self::CmdlineChanged => Component::Kernel,
        }
    }

    const fn cohorts(self) -> &'static [usize] {
        match self {
            Self::FirmwareBlob => &[A],
            Self::SecureBootOff | Self::DbCertAdded => &[B, C],
            Self::UnknownBootloader | Self::CmdlineChanged => &[A, B, C],
        }
    }

    fn apply(self, log: &[u8], cert: &[u8]) -> Result<Vec<u8>, FleetError> {
        match self {
            Self::FirmwareBlob => logedit::firmware_blob_changed(log),
            Self::SecureBootOff => logedit::secure_boot_off(log),
            Self::DbCertAdded => logedit::db_cert_added(log, cert),
            Self::UnknownBootloader => logedit::new_boot_application(log, 1, "unknown bootloader"),
            Self::CmdlineChanged => logedit::cmdline_changed(log, "init=/bin/sh"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Normal,
    Straggler,
    RevokedFirmware,
    Tampered(Tamper),
}

struct Host {
    id: String,
    cohort: usize,
    labels: Labels,
    tpm: SimTpm,
    ak: AkVerifier,
    role: Role,
    updated: bool,
    false_alarm: bool,
}

/// SplitMix64: deterministic choices from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let n = u64::try_from(i + 1).unwrap_or(u64::MAX);
            let j = usize::try_from(self.next() % n).unwrap_or(0);
            v.swap(i, j);
        }
    }
}

struct Outcome {
    verdict: Verdict,
    claims: Option<Claims>,
}

fn selection() -> Result<PcrSelection, FleetError> {
    let bank = PcrBankSelection::new(HashAlg::Sha256, &QUOTED_PCRS)
        .map_err(|e| FleetError::Config(e.to_string()))?;
    PcrSelection::new(vec![bank]).map_err(|e| FleetError::Config(e.to_string()))
}

/// One attestation, exactly as the verifier would do it: fresh nonce, quote, signature and
/// nonce and PCR digest verified, log replayed against the quote, claims, appraisal.
fn attest(
    h: &mut Host,
    engine: &Engine,
    sel: &PcrSelection,
    now: DateTime<Utc>,
    round: u32,
    seed: u64,
    keep_claims: bool,
) -> Result<Outcome, FleetError> {
    let nonce =
        HashAlg::Sha256.hash_parts(&[&seed.to_le_bytes(), &round.to_le_bytes(), h.id.as_bytes()]);
    let q = h.tpm.quote(nonce.as_bytes(), sel)?;
    let vq = verify_quote(&h.ak, &q.attest, &q.signature, nonce.as_bytes(), &q.pcrs)?;
    let claims = Claims::derive(&h.id, h.labels.clone(), &vq, h.tpm.event_log())?;
    let verdict = engine.appraise(&claims, now);
    Ok(Outcome {
        verdict,
        claims: keep_claims.then_some(claims),
    })
}

struct Run {
    hosts: Vec<Host>,
    sel: PcrSelection,
    seed: u64,
    threads: usize,
    round: u32,
    quotes: usize,
    timeline: Vec<String>,
}

impl Run {
    /// Attest every host selected by `which` in parallel; outcomes in host order.
    fn attest_all(
        &mut self,
        engine: &Engine,
        now: DateTime<Utc>,
        which: &(dyn Fn(&Host) -> bool + Sync),
        keep: &(dyn Fn(&Host) -> bool + Sync),
    ) -> Result<Vec<(usize, Outcome)>, FleetError> {
        self.round += 1;
        let (round, seed, sel) = (self.round, self.seed, &self.sel);
        let chunk = self.hosts.len().div_ceil(self.threads.max(1)).max(1);
        let mut out = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .hosts
                .chunks_mut(chunk)
                .enumerate()
                .map(|(ci, hosts)| {
                    s.spawn(move || {
                        let mut v = Vec::new();
                        for (i, h) in hosts.iter_mut().enumerate() {
                            if which(h) {
                                let k = keep(h);
                                v.push((
                                    ci * chunk + i,
                                    attest(h, engine, sel, now, round, seed, k)?,
                                ));
                            }
                        }
                        Ok::<_, FleetError>(v)
                    })
                })
                .collect();
            for h in handles {
                let v = h
                    .join()
                    .map_err(|_| FleetError::Config("an appraisal thread panicked".into()))??;
                out.extend(v);
            }
            Ok::<(), FleetError>(())
        })?;
        self.quotes += out.len();
        Ok(out)
    }

    /// A full round: every host attests; anyone flagged while `expect_flagged` says it should
    /// be affirmed is a false alarm. Returns the outcomes.
    fn round(
        &mut self,
        what: &str,
        engine: &Engine,
        now: DateTime<Utc>,
        expect_flagged: &(dyn Fn(&Host) -> bool + Sync),
        keep: &(dyn Fn(&Host) -> bool + Sync),
    ) -> Result<Vec<(usize, Outcome)>, FleetError> {
        let out = self.attest_all(engine, now, &|_| true, keep)?;
        let mut counts = [0usize; 4];
        let mut alarms = 0usize;
        for (i, o) in &out {
            let slot = match o.verdict.status {
                Status::Affirming => 0,
                Status::Warning => 1,
                Status::Contraindicated => 2,
                Status::None => 3,
            };
            counts[slot] += 1;
            let h = &mut self.hosts[*i];
            if o.verdict.require_affirming().is_err() && !expect_flagged(h) {
                h.false_alarm = true;
                alarms += 1;
            }
        }
        self.timeline.push(format!(
            "{}  {what}: {} hosts attested: {} affirming, {} warning, {} contraindicated, {} none; {} false alarms",
            now.format("%Y-%m-%d"),
            out.len(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            alarms
        ));
        Ok(out)
    }
}

fn cohort_policy(c: usize, sample: &Claims) -> Result<Policy, FleetError> {
    let name = COHORTS[c].0;
    let mut rules: Vec<Rule> = LEARNED.iter().map(|c| Rule::references(*c)).collect();
    if let Some(db) = &sample.secure_boot.db
        && sample.secure_boot.state == vouch_appraisal::SecureBootState::Enabled
    {
        let sb = SecureBootRule {
            require_enabled: true,
            allowed_db: Some(db.certificates.iter().map(|x| x.sha256.clone()).collect()),
            dbx_must_contain: sample
                .secure_boot
                .dbx
                .as_ref()
                .and_then(|d| d.hashes.first().cloned())
                .into_iter()
                .collect(),
            ..SecureBootRule::default()
        };
        if let Some(r) = rules
            .iter_mut()
            .find(|r| r.component == Component::SecureBoot)
        {
            r.secure_boot = Some(sb);
        }
    }
    if let Some(r) = rules.iter_mut().find(|r| r.component == Component::Kernel) {
        r.cmdline = Some(vouch_appraisal::CmdlineRule {
            require: vec![],
            forbid: vec!["init=".into()],
        });
    }
    Ok(Policy::new(PolicyDoc {
        schema: vouch_appraisal::policy::SCHEMA,
        id: format!("{name}-boot"),
        version: 1,
        description: Some(format!("measured boot of cohort {name}")),
        selector: Selector::label("cohort", name),
        rules,
        rego: None,
    })?)
}

fn lab_claims(
    id: &str,
    cohort: usize,
    log: &[u8],
    pool: &KeyPool,
    ca: &Arc<SimCa>,
    sel: &PcrSelection,
) -> Result<Claims, FleetError> {
    let key = |i: usize| {
        pool.key(i % pool.len())
            .cloned()
            .ok_or_else(|| FleetError::Config("empty key pool".into()))
    };
    let mut tpm = SimTpm::builder()
        .ca(ca.clone())
        .ek_key(key(0)?)
        .ak_key(key(1)?)
        .build()?;
    tpm.boot_with_event_log(log)?;
    let ak = AkVerifier::new(
        &PublicArea::decode_tpmt(&tpm.ak_public()?)
            .map_err(|e| FleetError::Config(e.to_string()))?,
    )?;
    let q = tpm.quote(b"lab", sel)?;
    let vq = verify_quote(&ak, &q.attest, &q.signature, b"lab", &q.pcrs)?;
    let labels = Labels::from([("cohort".to_owned(), COHORTS[cohort].0.to_owned())]);
    Ok(Claims::derive(id, labels, &vq, log)?)
}

/// Run the timeline:
///
/// 1. **Enrolment and learning.** N hosts in three cohorts (QEMU/OVMF, GCE Shielded VM,
///    Supermicro) boot their cohort's real log; 2% of the Supermicro hosts (at least 2) run
///    an older BIOS. For every cohort and component, the values a 60% quorum of up to 200
///    hosts agrees on become active references; the Supermicro minority (the older BIOS) is
///    shown and accepted by the operator as `supermicro/bios-3.0a`. Policies: every component
///    matched against references; Secure Boot on with the learned db certificates and a dbx
///    entry where the cohort has Secure Boot; `init=` forbidden on the kernel command line.
/// 2. **Firmware update** on QEMU/OVMF: `bios-2.20` learned from a lab host, candidate for a
///    campaign in waves of 1%, 20% and 100%; each admitted host reboots into it except 1% (at
///    least 2) stragglers. Every host is appraised after every wave. The campaign completes:
///    `bios-2.20` active, the old firmware deprecated until day 45.
/// 3. **Boot loader update** on GCE: a new GRUB the same way, in three waves; completed.
/// 4. **Revocation** (day 20): `supermicro/bios-3.0a` revoked; the affected hosts counted.
/// 5. **Day 46**: 10 hosts tampered with, two of each kind (firmware volume changed,
///    Secure Boot off, an unknown certificate added to db, an unknown boot loader, `init=` on
///    the kernel command line), then the whole fleet attests; triage groups the failures.
///
/// Every step appraises every host; a host flagged when it should be affirmed is a false
/// alarm.
pub fn run(cfg: &SimConfig) -> Result<Report, FleetError> {
    let started = Instant::now();
    let n = cfg.hosts;
    if n < 60 {
        return Err(FleetError::Config(format!(
            "at least 60 hosts are needed, got {n}"
        )));
    }
    let mut rng = Rng(cfg.seed);
    let sel = selection()?;
    let pool = KeyPool::generate(cfg.key_pool.max(2))?;
    let ca = Arc::new(SimCa::generate()?);
    let t0 = DateTime::from_timestamp(1_748_736_000, 0).unwrap_or_default(); // 2025-06-01
    let day = |d: i64| t0 + TimeDelta::days(d);

    // Roles, chosen by the seed.
    let mut members: [Vec<usize>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..n {
        members[i % 3].push(i);
    }
    for m in &mut members {
        rng.shuffle(m);
    }
    let mut roles = vec![Role::Normal; n];
    let n_revoked = (members[C].len() / 50).max(2);
    let n_stragglers = (members[A].len() / 100).max(2);
    for i in members[C].iter().take(n_revoked) {
        roles[*i] = Role::RevokedFirmware;
    }
    for i in members[A].iter().take(n_stragglers) {
        roles[*i] = Role::Straggler;
    }
    let mut pool_order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut pool_order);
    for t in Tamper::ALL {
        let mut picked = 0;
        for i in &pool_order {
            if picked == 2 {
                break;
            }
            if roles[*i] == Role::Normal && t.cohorts().contains(&(i % 3)) {
                roles[*i] = Role::Tampered(t);
                picked += 1;
            }
        }
        if picked < 2 {
            return Err(FleetError::Config("not enough hosts to tamper with".into()));
        }
    }

    // Logs.
    let old_bios = logedit::new_firmware(COHORTS[C].1, "SMC BIOS 3.0a (2018-11)")?;
    let new_bios = logedit::new_firmware(COHORTS[A].1, "OVMF 2.20 (2025-05)")?;
    let new_grub = logedit::new_boot_application(COHORTS[B].1, 1, "grubx64.efi 2.06-2.el8")?;
    let unknown_cert = ca.cert_der().to_vec();

    // Hosts.
    let mut hosts = Vec::with_capacity(n);
    for (i, role) in roles.iter().enumerate() {
        let c = i % 3;
        let key = |k: usize| {
            pool.key(k % pool.len())
                .cloned()
                .ok_or_else(|| FleetError::Config("empty key pool".into()))
        };
        let mut tpm = SimTpm::builder()
            .ca(ca.clone())
            .ek_key(key(i)?)
            .ak_key(key(i + 1)?)
            .build()?;
        let log: &[u8] = if *role == Role::RevokedFirmware {
            &old_bios
        } else {
            COHORTS[c].1
        };
        tpm.boot_with_event_log(log)?;
        let ak = AkVerifier::new(
            &PublicArea::decode_tpmt(&tpm.ak_public()?)
                .map_err(|e| FleetError::Config(e.to_string()))?,
        )?;
        hosts.push(Host {
            id: format!("{}-{:05}", COHORTS[c].0, i / 3),
            cohort: c,
            labels: Labels::from([
                ("cohort".to_owned(), COHORTS[c].0.to_owned()),
                ("role".to_owned(), "worker".to_owned()),
            ]),
            tpm,
            ak,
            role: *role,
            updated: false,
            false_alarm: false,
        });
    }
    let mut run = Run {
        hosts,
        sel,
        seed: cfg.seed,
        threads: cfg.threads,
        round: 0,
        quotes: 0,
        timeline: Vec::new(),
    };
    run.timeline.push(format!(
        "{n} hosts in 3 cohorts ({}: {}, {}: {}, {}: {}); seed {}",
        COHORTS[A].0,
        members[A].len(),
        COHORTS[B].0,
        members[B].len(),
        COHORTS[C].0,
        members[C].len(),
        cfg.seed
    ));

    // 1. Learning from a sample of each cohort (the revoked-firmware hosts included).
    let sample: BTreeSet<usize> = members
        .iter()
        .flat_map(|m| {
            let mut v: Vec<usize> = m.iter().copied().take(LEARN_SAMPLE).collect();
            v.sort_unstable();
            v
        })
        .collect();
    let empty = Engine::new(PolicySet::default(), RefStore::new(), vec![]);
    let learned = run.attest_all(&empty, t0, &|h| sample.contains(&host_index(h)), &|_| true)?;
    let mut refs = RefStore::new();
    let mut policies = Vec::new();
    for c in [A, B, C] {
        let cohort: Vec<&Claims> = learned
            .iter()
            .filter(|(i, _)| run.hosts[*i].cohort == c)
            .filter_map(|(_, o)| o.claims.as_ref())
            .collect();
        let name = COHORTS[c].0;
        let selector = Selector::label("cohort", name);
        let mut minority_hosts = BTreeSet::new();
        let mut proposed = 0;
        for comp in LEARNED {
            let p = learn_from_cohort(
                &cohort,
                &[comp],
                60,
                &format!("{name}/{comp}/baseline"),
                selector.clone(),
                t0,
            )?;
            for m in &p.minority {
                minority_hosts.extend(m.hosts.iter().cloned());
            }
            proposed += p.proposal.refs.len();
            p.proposal.accept(&mut refs, &RefState::Active)?;
        }
        run.timeline.push(format!(
            "{}  learn {name}: {proposed} values agreed by a 60% quorum of {} hosts; minority on {} hosts",
            t0.format("%Y-%m-%d"),
            cohort.len(),
            minority_hosts.len()
        ));
        if c == C
            && let Some(old) = cohort.iter().find(|h| minority_hosts.contains(&h.host))
        {
            let p = learn_from_host(
                old,
                &[Component::PlatformFirmware],
                "supermicro/bios-3.0a",
                selector.clone(),
                t0,
            )?;
            let diff = p.accept(&mut refs, &RefState::Active)?;
            run.timeline.push(format!(
                "{}  operator accepts the minority firmware of {} as supermicro/bios-3.0a: {} new values",
                t0.format("%Y-%m-%d"),
                old.host,
                diff.added.len()
            ));
        }
        let majority = cohort
            .iter()
            .find(|h| !minority_hosts.contains(&h.host))
            .or_else(|| cohort.first())
            .ok_or_else(|| FleetError::Config("empty cohort".into()))?;
        policies.push(cohort_policy(c, majority)?);
    }
    drop(learned);
    let policies = PolicySet::new(policies);
    let mut campaigns: Vec<Campaign> = Vec::new();
    let none_flagged = |_: &Host| false;
    let keep_none = |_: &Host| false;

    let engine = Engine::new(policies.clone(), refs.clone(), campaigns.clone());
    run.round("baseline", &engine, day(0), &none_flagged, &keep_none)?;

    // 2 and 3. Two campaigns, three waves each.
    let mut rollouts = Vec::new();
    type Update<'a> = (usize, &'a str, Component, &'a str, &'a [u8], i64);
    let updates: [Update<'_>; 2] = [
        (
            A,
            "bios-2.20",
            Component::PlatformFirmware,
            "qemu-ovmf/bios-2.20",
            &new_bios,
            1,
        ),
        (
            B,
            "grub-2.06-2",
            Component::BootChain,
            "gce-shielded/grub-2.06-2",
            &new_grub,
            10,
        ),
    ];
    for (c, campaign_id, comp, release, log, start_day) in updates {
        let name = COHORTS[c].0;
        let lab = lab_claims(&format!("lab-{name}"), c, log, &pool, &ca, &run.sel)?;
        learn_from_host(
            &lab,
            &[comp],
            release,
            Selector::label("cohort", name),
            day(start_day),
        )?
        .accept(
            &mut refs,
            &RefState::Candidate {
                campaign: Some(campaign_id.into()),
            },
        )?;
        let mut camp = Campaign::new(
            campaign_id,
            Selector::label("cohort", name),
            comp,
            &format!("{name}/{comp}/baseline"),
            release,
            vec![1, 20, 100],
            &format!("{campaign_id}/{}", cfg.seed),
        )?;
        camp.start()?;
        for wave in 0..3usize {
            if wave > 0 {
                camp.advance()?;
            }
            let mut moved = 0;
            for h in run.hosts.iter_mut().filter(|h| h.cohort == c && !h.updated) {
                if h.role != Role::Straggler && camp.admits(&h.id, &h.labels).is_ok() {
                    h.tpm.boot_with_event_log(log)?;
                    h.updated = true;
                    moved += 1;
                }
            }
            campaigns.retain(|x| x.id() != campaign_id);
            campaigns.push(camp.clone());
            let engine = Engine::new(policies.clone(), refs.clone(), campaigns.clone());
            let now = day(start_day + i64::try_from(wave).unwrap_or(0));
            let what = format!(
                "{campaign_id} wave {} ({}%): {moved} hosts rebooted into {release}",
                wave + 1,
                camp.waves()[wave]
            );
            let out = run.round(&what, &engine, now, &none_flagged, &|h: &Host| {
                h.cohort == c
            })?;
            let status = camp.status(&refs, out.iter().filter_map(|(_, o)| o.claims.as_ref()));
            run.timeline.push(format!(
                "{}  rollout status {campaign_id}: {} old, {} new, {} unknown of {}",
                now.format("%Y-%m-%d"),
                status.old,
                status.new,
                status.unknown,
                status.hosts
            ));
            rollouts.push((format!("{campaign_id} wave {}", wave + 1), status));
        }
        camp.complete(&mut refs, day(45))?;
        campaigns.retain(|x| x.id() != campaign_id);
        campaigns.push(camp);
        run.timeline.push(format!(
            "{}  {campaign_id} completed: {release} active, {name}/{comp}/baseline deprecated until {}",
            day(start_day + 2).format("%Y-%m-%d"),
            day(45).format("%Y-%m-%d")
        ));
    }

    // 4. Revocation.
    refs.revoke(
        "supermicro/bios-3.0a",
        day(20),
        "SMC-SA-2025-01: SMM callout",
    )?;
    let engine = Engine::new(policies.clone(), refs.clone(), campaigns.clone());
    let revoked_role = |h: &Host| h.role == Role::RevokedFirmware;
    let out = run.round(
        "supermicro/bios-3.0a revoked",
        &engine,
        day(20),
        &revoked_role,
        &|h: &Host| h.cohort == C,
    )?;
    let revoke_affected = engine.count_affected(
        "supermicro/bios-3.0a",
        out.iter().filter_map(|(_, o)| o.claims.as_ref()),
    );
    let revoked_at_once: BTreeSet<usize> = out
        .iter()
        .filter(|(i, o)| {
            run.hosts[*i].role == Role::RevokedFirmware
                && o.verdict.status == Status::Contraindicated
        })
        .map(|(i, _)| *i)
        .collect();
    run.timeline.push(format!(
        "{}  vouch refs revoke supermicro/bios-3.0a: {revoke_affected} hosts affected",
        day(20).format("%Y-%m-%d")
    ));
    drop(out);

    // 5. Tampering, then day 46 (the deprecation deadline has passed).
    for h in &mut run.hosts {
        if let Role::Tampered(t) = h.role {
            let log = t.apply(h.tpm.event_log(), &unknown_cert)?;
            h.tpm.boot_with_event_log(&log)?;
        }
    }
    let engine = Engine::new(policies, refs, campaigns);
    let flagged_at_end = |h: &Host| h.role != Role::Normal;
    let out = run.round(
        "day 46: 10 hosts tampered with; deprecation deadline passed",
        &engine,
        day(46),
        &flagged_at_end,
        &keep_none,
    )?;

    let mut s = Summary {
        hosts: n,
        stragglers: n_stragglers,
        revoked: n_revoked,
        ..Summary::default()
    };
    for (i, o) in &out {
        let h = &run.hosts[*i];
        let flagged = o.verdict.require_affirming().is_err();
        match h.role {
            Role::Tampered(t) => {
                s.tampered += 1;
                s.tampered_flagged += usize::from(flagged);
                s.tampered_component_right +=
                    usize::from(flagged && o.verdict.failing_components() == [t.component()]);
            }
            Role::Straggler => s.stragglers_flagged += usize::from(flagged),
            Role::RevokedFirmware => {
                s.revoked_flagged += usize::from(flagged && revoked_at_once.contains(i));
            }
            Role::Normal => {}
        }
    }
    s.legit_updated = run
        .hosts
        .iter()
        .filter(|h| h.updated && !matches!(h.role, Role::Tampered(_)))
        .count();
    s.false_alarms = run.hosts.iter().filter(|h| h.false_alarm).count();
    let verdicts: Vec<&Verdict> = out.iter().map(|(_, o)| &o.verdict).collect();
    let groups = triage(verdicts, (n / 100).max(3));
    for g in &groups {
        let cause = g
            .causes
            .first()
            .map(|c| {
                format!(
                    "{} {:?} {}",
                    c.component.map_or("-", Component::name),
                    c.finding,
                    c.value.get(..40).unwrap_or(&c.value)
                )
            })
            .unwrap_or_default();
        run.timeline.push(format!(
            "{}  triage: {} host(s) {:?}: {cause}{}",
            day(46).format("%Y-%m-%d"),
            g.hosts.len(),
            g.assessment,
            if g.causes.len() > 1 {
                format!(" (+{} more causes)", g.causes.len() - 1)
            } else {
                String::new()
            }
        ));
    }
    Ok(Report {
        summary: s,
        timeline: run.timeline,
        revoke_affected,
        rollouts,
        triage: groups,
        quotes: run.quotes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn host_index(h: &Host) -> usize {
    // Ids are "<cohort>-<i / 3>": recover the index.
    h.id.rsplit('-')
        .next()
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(usize::MAX, |k| k * 3 + h.cohort)
}
