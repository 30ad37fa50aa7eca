//! "Firmware update day" through the service, in process: seven simulated hosts (vouch-sim
//! TPMs booted from a real firmware log, the real agent, `vouch serve` on SQLite), driven by
//! the operator CLI (`vouch refs`, `vouch policy`, `vouch rollout`, `vouch fleet triage`,
//! `vouch keys`) as the README's worked example does it:
//!
//! 1. the cohort's values are learned from its hosts (quorum) and a policy selects it;
//! 2. new firmware is learned from a lab host as a candidate of a campaign; canaries admitted
//!    by wave 1 reboot into it and stay trusted, a host that moves early is flagged, and
//!    `rollout status` counts old / new / unknown;
//! 3. the last wave admits everyone; completing makes the new release active and deprecates
//!    the old one; revoking the old release names the one straggler, which is then untrusted;
//! 4. a host with an implanted firmware volume is untrusted and `fleet triage` reads it as
//!    isolated (and an outlier of its cohort), apart from the straggler's lifecycle problem;
//! 5. the EAR key rotates: tokens signed before still verify with the published keys.
//!
//! It runs on SQLite and on PostgreSQL (started by the test on a free loopback port).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::too_many_arguments,
    reason = "test code: a failure here is a failed test"
)]

mod support;

use support::inproc::{SimFleet, SimHost};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use vouch_api::{AdminClient, HostStatus, HostSummary};
use vouch_appraisal::{Campaign, Component, Selector};

const LOG: &[u8] = include_bytes!("../demo/qemu-ubuntu2004-1.bin");
const COHORT: &str = "c1";
const HOSTS: usize = 6;

/// The operator CLI pointed at the verifier under test.
struct Cli<'a>(&'a vouch_verifier::ServerHandle);

impl Cli<'_> {
    /// Run `vouch ARGS FILE` and require success.
    fn with_file(&self, args: &[&str], file: &Path) -> std::process::Output {
        let out = support::inproc::vouch(self.0)
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vouch {args:?} {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Run `vouch ARGS --json` against the verifier; parse its stdout.
    async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut cmd = support::inproc::vouch(self.0);
        cmd.args(args).arg("--json");
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "vouch {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "vouch {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// Make the host attest now and wait for an attestation newer than the request, of a boot
/// after `after_reset` when given (an attestation in flight may carry the previous boot).
async fn attest_after(admin: &AdminClient, name: &str, after_reset: Option<u32>) -> HostSummary {
    let before = admin
        .host(name)
        .await
        .unwrap()
        .history
        .first()
        .map(|a| a.at.clone());
    admin.attest(name).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = admin.host(name).await.unwrap();
        let newest = d.history.first();
        let fresh = newest.is_some_and(|a| {
            Some(&a.at) != before.as_ref()
                && after_reset.is_none_or(|r| a.reset_count.is_some_and(|n| n > r))
        });
        // A reboot may need two rounds (the first asks for the fresh log): wait for a settled one.
        if fresh
            && !d
                .summary
                .reasons
                .iter()
                .any(|r| r.contains("fresh event log"))
        {
            return d.summary;
        }
        assert!(Instant::now() < deadline, "{name} never attested again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn attest_now(admin: &AdminClient, name: &str) -> HostSummary {
    attest_after(admin, name, None).await
}

/// Reboot the host's TPM with `log` and wait for its appraisal of the new boot.
async fn reboot(admin: &AdminClient, host: &mut SimHost, log: &[u8]) -> HostSummary {
    let reset = admin
        .host(&host.name)
        .await
        .unwrap()
        .history
        .first()
        .and_then(|a| a.reset_count)
        .unwrap_or(0);
    host.tpm.boot_with_event_log(log).unwrap();
    attest_after(admin, &host.name, Some(reset)).await
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_update_day_from_learning_to_revocation_through_the_cli() {
    update_day(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_update_day_on_postgres() {
    let pg = vouch_store::testing::TempPostgres::start()
        .expect("start PostgreSQL (installed by scripts/deps.sh)");
    let url = pg.create_database().await.unwrap();
    update_day(Some(url)).await;
    drop(pg);
}

async fn update_day(database_url: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fleet = SimFleet::start(root, HOSTS + 1, database_url).await;
    let (server, url, ca_pem, admin) = (&fleet.server, &fleet.url, &fleet.ca_pem, &fleet.admin);
    let cli = Cli(server);

    let new_fw = vouch_fleetsim::logedit::new_firmware(LOG, "fw-2.0 test").unwrap();
    let mut hosts: Vec<SimHost> = (0..HOSTS)
        .map(|i| fleet.start_host(i, &format!("h{i}"), &[("cohort", COHORT)], LOG))
        .collect();
    let lab = fleet.start_host(HOSTS, "lab", &[("role", "lab")], &new_fw);
    for h in &hosts {
        support::inproc::wait_for(admin, &h.name, HostStatus::Trusted).await;
    }
    support::inproc::wait_for(admin, "lab", HostStatus::Trusted).await;

    // 1. Learn the cohort's values (quorum), store them, and a policy for the cohort. The
    //    firmware is its own release, so it can be rolled out and revoked on its own.
    for (name, components) in [
        ("fw-1", "platform_firmware"),
        (
            "base-1",
            "firmware_config,option_roms,boot_chain,secure_boot,kernel",
        ),
    ] {
        let learned = cli
            .json(&[
                "refs",
                "learn",
                "--name",
                name,
                "--from-cohort",
                "cohort=c1",
                "--components",
                components,
                "--accept",
            ])
            .await;
        assert_eq!(learned["hosts"], HOSTS);
        assert_eq!(learned["accepted"], true);
        assert!(learned["minority"].as_array().unwrap().is_empty());
        assert!(!learned["added"].as_array().unwrap().is_empty());
    }
    let rules: Vec<serde_json::Value> = [
        "platform_firmware",
        "firmware_config",
        "option_roms",
        "boot_chain",
        "secure_boot",
        "kernel",
    ]
    .iter()
    .map(|c| serde_json::json!({"component": c}))
    .collect();
    let policy = serde_json::json!({"schema": 1, "id": "c1-boot", "version": 1,
        "selector": {"labels": {"cohort": COHORT}}, "rules": rules});
    let policy_file = root.join("policy.json");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    cli.with_file(&["policy", "put"], &policy_file);
    // A version 2 that forbids a kernel parameter: the diff against the stored version 1.
    let mut v2 = policy.clone();
    v2["version"] = 2.into();
    v2["rules"][5]["cmdline"] = serde_json::json!({"forbid": ["init="]});
    let v2_file = root.join("policy-v2.json");
    std::fs::write(&v2_file, v2.to_string()).unwrap();
    let out = cli.with_file(&["policy", "diff"], &v2_file);
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("version 1 -> 2"), "{diff}");
    assert!(diff.contains("kernel") && diff.contains("init="), "{diff}");
    for h in &hosts {
        let s = attest_now(admin, &h.name).await;
        assert_eq!(s.status, HostStatus::Trusted, "{}: {:?}", h.name, s.reasons);
    }
    let refs = cli.json(&["refs", "list"]).await;
    let fw1 = refs["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "fw-1")
        .unwrap();
    assert_eq!(fw1["hosts_measuring"], HOSTS);

    // 2. New firmware learned from the lab host as a candidate, rolled out in two waves.
    let proposal = cli
        .json(&[
            "refs",
            "learn",
            "--name",
            "fw-2",
            "--from-host",
            "lab",
            "--components",
            "platform_firmware",
            "--selector",
            "cohort=c1",
            "--candidate-for",
            "fw-upd",
            "--accept",
        ])
        .await;
    assert_eq!(proposal["accepted"], true);
    // The old firmware's values are shown as what the proposal lacks (the diff).
    assert!(!proposal["not_in_proposal"].as_array().unwrap().is_empty());
    let waves = "50,100";
    let created = cli
        .json(&[
            "rollout",
            "create",
            "fw-upd",
            "--selector",
            "cohort=c1",
            "--component",
            "platform_firmware",
            "--from",
            "fw-1",
            "--to",
            "fw-2",
            "--waves",
            waves,
        ])
        .await;
    assert_eq!(created["state"], "planned");
    assert_eq!(created["old"], HOSTS);
    cli.json(&["rollout", "start", "fw-upd"]).await;
    // Which hosts wave 1 admits: the same function the verifier runs.
    let mut twin = Campaign::new(
        "fw-upd",
        Selector::label("cohort", COHORT),
        Component::PlatformFirmware,
        "fw-1",
        "fw-2",
        vec![50, 100],
        "fw-upd",
    )
    .unwrap();
    twin.start().unwrap();
    let labels = BTreeMap::from([("cohort".to_owned(), COHORT.to_owned())]);
    let (wave1, later): (Vec<usize>, Vec<usize>) =
        (0..HOSTS).partition(|i| twin.admits(&format!("h{i}"), &labels).is_ok());
    assert!(
        !wave1.is_empty() && later.len() >= 3,
        "salt gives wave 1 = {wave1:?}; the test needs a canary and three later hosts"
    );
    for i in &wave1 {
        let s = reboot(admin, &mut hosts[*i], &new_fw).await;
        assert_eq!(
            s.status,
            HostStatus::Trusted,
            "canary h{i}: {:?}",
            s.reasons
        );
    }
    let early = later[0];
    let s = reboot(admin, &mut hosts[early], &new_fw).await;
    // Known firmware, not rolled out to it yet: flagged (warning), not contraindicated.
    assert_eq!(
        s.status,
        HostStatus::Trusted,
        "early mover: {:?}",
        s.reasons
    );
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("fw-2") && r.contains("candidate")),
        "the reason names the candidate release: {:?}",
        s.reasons
    );
    let early_ear = admin.ear(&hosts[early].name, None).await.unwrap();
    let early_claims = vouch_ear::verify(
        &early_ear,
        &support::inproc::jwks_keys(url, ca_pem).await,
        &hosts[early].name,
        None,
        u64::try_from(chrono::Utc::now().timestamp()).unwrap(),
    )
    .unwrap();
    assert_eq!(early_claims.status, vouch_appraisal::Status::Warning);
    let status = cli.json(&["rollout", "status", "fw-upd"]).await;
    assert_eq!(status["state"], "running");
    assert_eq!(status["wave"], 1);
    assert_eq!(status["new"], wave1.len() + 1);
    assert_eq!(status["old"], HOSTS - wave1.len() - 1);
    assert_eq!(status["unknown"], 0);

    // 3. Everyone admitted; all but one straggler move; complete; revoke the old firmware.
    cli.json(&["rollout", "advance", "fw-upd"]).await;
    let s = attest_now(admin, &hosts[early].name).await;
    assert_eq!(
        s.status,
        HostStatus::Trusted,
        "admitted now: {:?}",
        s.reasons
    );
    assert!(s.reasons.is_empty(), "admitted now: {:?}", s.reasons);
    let straggler = *later.last().unwrap();
    for &i in later.iter().filter(|&&i| i != early && i != straggler) {
        let s = reboot(admin, &mut hosts[i], &new_fw).await;
        assert_eq!(s.status, HostStatus::Trusted, "h{i}: {:?}", s.reasons);
    }
    let until = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let done = cli
        .json(&["rollout", "complete", "fw-upd", "--deprecate-until", &until])
        .await;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["new"], HOSTS - 1);
    assert_eq!(done["old"], 1);
    let s = attest_now(admin, &hosts[straggler].name).await;
    assert_eq!(
        s.status,
        HostStatus::Trusted,
        "deprecated, inside its grace period: {:?}",
        s.reasons
    );
    let revoked = cli
        .json(&[
            "refs",
            "revoke",
            "fw-1",
            "--reason",
            "VU#0000 test advisory",
        ])
        .await;
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(revoked["affected_hosts"], 1);
    assert_eq!(
        names(&revoked["hosts"]),
        vec![hosts[straggler].name.clone()]
    );
    let s = attest_now(admin, &hosts[straggler].name).await;
    assert_eq!(s.status, HostStatus::Untrusted);
    assert!(
        s.reasons.iter().any(|r| r.contains("revoked")),
        "{:?}",
        s.reasons
    );

    // 4. An implanted firmware volume on one host: isolated, an outlier of its cohort.
    let tampered = wave1[0];
    let implant = vouch_fleetsim::logedit::firmware_blob_changed(&new_fw).unwrap();
    let s = reboot(admin, &mut hosts[tampered], &implant).await;
    assert_eq!(s.status, HostStatus::Untrusted);
    assert!(
        s.reasons.iter().any(|r| r.contains("platform_firmware")),
        "{:?}",
        s.reasons
    );
    let triage = cli.json(&["fleet", "triage"]).await;
    let groups = triage["groups"].as_array().unwrap();
    let group_of = |host: &str| {
        groups
            .iter()
            .find(|g| names(&g["hosts"]).contains(&host.to_owned()))
            .unwrap_or_else(|| panic!("{host} in no triage group: {triage:#}"))
    };
    assert_eq!(group_of(&hosts[tampered].name)["assessment"], "isolated");
    assert_eq!(group_of(&hosts[straggler].name)["assessment"], "lifecycle");
    assert!(
        triage["outliers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str().unwrap().starts_with(&hosts[tampered].name)),
        "{triage:#}"
    );

    // 5. EAR key rotation: an old token still verifies; new tokens use the new key.
    let good = hosts[wave1.get(1).copied().unwrap_or(later[1])]
        .name
        .clone();
    let before = admin.ear(&good, None).await.unwrap();
    let rotated = cli.json(&["keys", "rotate-ear"]).await;
    assert_ne!(rotated["kid"], rotated["previous_kid"]);
    let published = support::inproc::jwks_keys(url, ca_pem).await;
    assert_eq!(published.len(), 2);
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let old_claims = vouch_ear::verify(&before, &published, &good, None, now).unwrap();
    assert_eq!(old_claims.status, vouch_appraisal::Status::Affirming);
    let after = admin.ear(&good, None).await.unwrap();
    vouch_ear::verify(&after, &published, &good, None, now).unwrap();
    let header = |t: &str| -> serde_json::Value {
        use base64::Engine as _;
        let h = t.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header(&after)["kid"], rotated["kid"]);
    assert_eq!(header(&before)["kid"], rotated["previous_kid"]);

    // 6. An operator rule in Rego the built-in model cannot express (a change freeze holding
    //    one host back), stored with the policy; a module that does not compile is refused.
    let mut v2 = v2.clone();
    v2["rego"] = serde_json::json!({"module": format!(
        "package vouch\nimport rego.v1\n\
         deny contains {{\"message\": \"change freeze CF-42: {good} must not boot new firmware\", \"component\": \"platform_firmware\"}} if {{\n\
           input.claims.host == \"{good}\"\n\
         }}\n")});
    std::fs::write(&v2_file, v2.to_string()).unwrap();
    cli.with_file(&["policy", "put"], &v2_file);
    let s = attest_now(admin, &good).await;
    assert_eq!(s.status, HostStatus::Untrusted, "{:?}", s.reasons);
    assert!(
        s.reasons.iter().any(|r| r.contains("change freeze CF-42")),
        "{:?}",
        s.reasons
    );
    let mut broken = v2.clone();
    broken["version"] = 3.into();
    broken["rego"]["module"] = "package vouch\nimport rego.v1\ndeny contains x if {".into();
    let broken_file = root.join("policy-broken.json");
    std::fs::write(&broken_file, broken.to_string()).unwrap();
    let out = support::inproc::vouch(server)
        .args(["policy", "put"])
        .arg(&broken_file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a module that does not compile is refused"
    );

    for h in hosts.drain(..) {
        h.task.abort();
    }
    lab.task.abort();
    fleet.server.shutdown().await;
}
