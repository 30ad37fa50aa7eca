//! One behaviour suite, run against both backends: SQLite in a temporary directory and a
//! PostgreSQL server this test binary starts itself (`vouch_store::testing::TempPostgres`,
//! one server per binary, one fresh database per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use vouch_store::testing::TempPostgres;
use vouch_store::{
    Attestation, AuditEntry, Baseline, BaselineSource, Counters, EkOverride, Enrolment,
    FleetRecord, Host, HostStatus, ImaState, NewDocument, NonceCheck, Store, StoreError,
    StoreOptions, VerdictUpdate, sha256,
};

/// A store under test, and how to open it again.
struct Db {
    store: Store,
    url: String,
    options: StoreOptions,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn sqlite(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("vouch.db").display());
        let store = Store::open_url(&url, options).await.unwrap();
        assert_eq!(store.backend_name(), "sqlite");
        Self {
            store,
            url,
            options,
            _dir: Some(dir),
        }
    }

    async fn postgres(options: StoreOptions) -> Self {
        static SERVER: OnceLock<TempPostgres> = OnceLock::new();
        let server = SERVER.get_or_init(|| TempPostgres::start().expect("start PostgreSQL"));
        let url = server.create_database().await.unwrap();
        let store = Store::open_url(&url, options).await.unwrap();
        assert_eq!(store.backend_name(), "postgres");
        Self {
            store,
            url,
            options,
            _dir: None,
        }
    }

    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Store::open_url(&self.url, self.options).await.unwrap();
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn host(name: &str) -> Host {
    Host::new(
        name.to_owned(),
        vec![1, 2, 3],
        vec![4, 5, 6],
        vec![0, 0x0b, 9, 9],
        60,
        now(),
    )
}

fn pcrs(v: &str) -> vouch_store::Pcrs {
    BTreeMap::from([(
        "sha256".to_owned(),
        BTreeMap::from([("0".to_owned(), v.to_owned())]),
    )])
}

/// An approved host, inserted.
async fn approved(db: &Db, name: &str) -> Host {
    let mut h = host(name);
    h.approved_at = Some(now());
    h.approved_by = Some("test".into());
    h.status = HostStatus::Unreachable;
    db.store.insert_host(&h).await.unwrap();
    db.store.host_by_name(name).await.unwrap().unwrap()
}

fn attestation(h: &Host, clock: u64) -> Attestation {
    Attestation {
        host_id: h.id,
        at: now(),
        status: HostStatus::Trusted,
        reasons: vec![],
        counters: Some(Counters {
            reset_count: 1,
            restart_count: 0,
            clock,
        }),
        pcrs: Some(pcrs("00")),
    }
}

// ---- behaviours ----

async fn nonce_is_single_use(db: Db) {
    let h = approved(&db, "a").await;
    let t = now();
    db.store
        .issue_nonce(h.id, b"n1", true, t, t + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        db.store.consume_nonce(h.id, b"n1", t).await.unwrap(),
        NonceCheck::Valid {
            want_event_log: true
        }
    );
    assert_eq!(
        db.store.consume_nonce(h.id, b"n1", t).await.unwrap(),
        NonceCheck::Unknown
    );
}

async fn expired_nonce_refused(db: Db) {
    let h = approved(&db, "a").await;
    let t = now();
    db.store
        .issue_nonce(h.id, b"n1", false, t, t + Duration::seconds(1))
        .await
        .unwrap();
    let later = t + Duration::seconds(2);
    assert_eq!(
        db.store.consume_nonce(h.id, b"n1", later).await.unwrap(),
        NonceCheck::Expired
    );
    // And it is gone: a second try is not "expired" but unknown.
    assert_eq!(
        db.store.consume_nonce(h.id, b"n1", t).await.unwrap(),
        NonceCheck::Unknown
    );
}

async fn nonce_cannot_be_issued_twice(db: Db) {
    let a = approved(&db, "a").await;
    let b = approved(&db, "b").await;
    let t = now();
    let exp = t + Duration::minutes(2);
    db.store
        .issue_nonce(a.id, b"n1", false, t, exp)
        .await
        .unwrap();
    let err = db.store.issue_nonce(b.id, b"n1", false, t, exp).await;
    assert!(
        matches!(err, Err(StoreError::Duplicate("nonce"))),
        "{err:?}"
    );
}

async fn nonce_of_another_host_refused(db: Db) {
    let a = approved(&db, "a").await;
    let b = approved(&db, "b").await;
    let t = now();
    db.store
        .issue_nonce(a.id, b"n1", false, t, t + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        db.store.consume_nonce(b.id, b"n1", t).await.unwrap(),
        NonceCheck::Unknown
    );
    // Host b's attempt did not burn host a's nonce.
    assert!(matches!(
        db.store.consume_nonce(a.id, b"n1", t).await.unwrap(),
        NonceCheck::Valid { .. }
    ));
}

async fn concurrent_consumers_get_one_valid_nonce(db: Db) {
    let h = approved(&db, "a").await;
    let t = now();
    db.store
        .issue_nonce(h.id, b"n1", false, t, t + Duration::minutes(2))
        .await
        .unwrap();
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { s.consume_nonce(h.id, b"n1", t).await.unwrap() })
        })
        .collect();
    let mut valid = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), NonceCheck::Valid { .. }) {
            valid += 1;
        }
    }
    assert_eq!(valid, 1);
}

async fn host_round_trips_every_field(db: Db) {
    let t = now();
    let mut h = host("full");
    h.status = HostStatus::Untrusted;
    h.reasons = vec!["PCR sha256:4 differs".into()];
    h.labels = BTreeMap::from([("site".into(), "lon".into())]);
    h.ek_cert = Some(vec![0x30, 0x82]);
    h.ek_override_by = Some("ops".into());
    h.tpm_manufacturer = Some("STM".into());
    h.tpm_model = Some("ST33".into());
    h.client_cert_sha256 = Some(vec![7; 32]);
    h.approved_at = Some(t);
    h.approved_by = Some("auto:name=edge-*".into());
    h.baseline = Some(Baseline {
        pcrs: pcrs("aa"),
        machine_state: Some(serde_json::json!({"secure_boot": "enabled"})),
        source: BaselineSource::Learned,
        set_at: t,
        set_by: None,
    });
    h.baseline_event_log = Some(vec![1; 100]);
    h.last_pcrs = Some(pcrs("bb"));
    h.last_machine_state = Some(serde_json::json!({"kernel_cmdline": "ro"}));
    h.counters = Some(Counters {
        reset_count: 7,
        restart_count: 2,
        clock: u64::from(u32::MAX) + 5,
    });
    h.event_log = Some(vec![2; 50]);
    h.event_log_sha256 = Some(sha256(&[2; 50]).to_vec());
    h.needs_event_log = false;
    h.stale_after = Some(t + Duration::seconds(120));
    h.last_seen = Some(t);
    h.last_good = Some(t);
    db.store.insert_host(&h).await.unwrap();
    assert_eq!(db.store.host_by_name("full").await.unwrap().unwrap(), h);
    assert_eq!(db.store.host_by_id(h.id).await.unwrap().unwrap(), h);
    assert!(db.store.host_by_name("other").await.unwrap().is_none());
}

async fn host_name_is_unique(db: Db) {
    db.store.insert_host(&host("a")).await.unwrap();
    let err = db.store.insert_host(&host("a")).await;
    assert!(matches!(err, Err(StoreError::Duplicate("host"))), "{err:?}");
}

async fn stale_host_update_is_refused(db: Db) {
    let h = approved(&db, "a").await;
    let mut first = h.clone();
    first.reasons = vec!["first".into()];
    let stored = db.store.update_host(&first, now()).await.unwrap();
    assert_eq!(stored.version, h.version + 1);
    let mut second = h.clone();
    second.reasons = vec!["second".into()];
    assert!(matches!(
        db.store.update_host(&second, now()).await,
        Err(StoreError::Conflict)
    ));
    let read = db.store.host_by_name("a").await.unwrap().unwrap();
    assert_eq!(read.reasons, vec!["first".to_owned()]);
    assert_eq!(read, stored);
}

async fn state_survives_reopen(mut db: Db) {
    let h = approved(&db, "a").await;
    let t = now();
    db.store
        .issue_nonce(h.id, b"n1", false, t, t + Duration::minutes(2))
        .await
        .unwrap();
    let stored = db
        .store
        .apply_attestation(&h, &attestation(&h, 10), t)
        .await
        .unwrap();
    db.store
        .add_admin_token("initial", &sha256(b"secret"), t)
        .await
        .unwrap();
    db.store
        .audit(&AuditEntry {
            at: t,
            actor: "initial".into(),
            action: "approve".into(),
            target: "a".into(),
            detail: serde_json::json!({"why": "test"}),
        })
        .await
        .unwrap();
    db.reopen().await;
    assert_eq!(db.store.host_by_name("a").await.unwrap().unwrap(), stored);
    assert_eq!(db.store.history(h.id, 10).await.unwrap().len(), 1);
    assert_eq!(
        db.store.admin_token_name(&sha256(b"secret")).await.unwrap(),
        Some("initial".into())
    );
    assert_eq!(db.store.audit_log(10).await.unwrap()[0].action, "approve");
    assert!(matches!(
        db.store.consume_nonce(h.id, b"n1", t).await.unwrap(),
        NonceCheck::Valid { .. }
    ));
}

async fn history_retention_prunes_oldest(db: Db) {
    let h = approved(&db, "a").await;
    let other = approved(&db, "b").await;
    let mut cur = h.clone();
    for clock in 1..=5 {
        cur = db
            .store
            .apply_attestation(&cur, &attestation(&cur, clock), now())
            .await
            .unwrap();
    }
    db.store
        .apply_attestation(&other, &attestation(&other, 99), now())
        .await
        .unwrap();
    let hist = db.store.history(h.id, 100).await.unwrap();
    let clocks: Vec<u64> = hist.iter().map(|a| a.counters.unwrap().clock).collect();
    assert_eq!(clocks, vec![5, 4, 3], "limit 3, newest first");
    assert_eq!(db.store.history(other.id, 100).await.unwrap().len(), 1);
}

async fn attestation_with_stale_host_is_not_recorded(db: Db) {
    let h = approved(&db, "a").await;
    db.store.update_host(&h, now()).await.unwrap();
    assert!(matches!(
        db.store
            .apply_attestation(&h, &attestation(&h, 1), now())
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(db.store.history(h.id, 10).await.unwrap().is_empty());
}

async fn due_host_is_claimed_once(db: Db) {
    let h = approved(&db, "a").await;
    let t = now() + Duration::seconds(1);
    let lease = t + Duration::minutes(2);
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { s.claim_due(h.id, t, lease).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(
        db.store.host_by_id(h.id).await.unwrap().unwrap().next_due,
        lease
    );
    // Not due again before the lease ends; due after it.
    assert!(!db.store.claim_due(h.id, t, lease).await.unwrap());
    assert!(
        db.store
            .claim_due(h.id, lease, lease + Duration::minutes(2))
            .await
            .unwrap()
    );
}

async fn unapproved_host_is_never_due(db: Db) {
    let h = host("a");
    db.store.insert_host(&h).await.unwrap();
    let t = now() + Duration::hours(1);
    assert!(!db.store.claim_due(h.id, t, t).await.unwrap());
}

async fn restart_demotes_trusted_hosts(db: Db) {
    let mut h = approved(&db, "a").await;
    h.status = HostStatus::Trusted;
    h.next_due = now() + Duration::hours(1);
    db.store.update_host(&h, now()).await.unwrap();
    approved(&db, "b").await;
    let t = now();
    assert_eq!(
        db.store
            .demote_trusted(t, "verifier restarted")
            .await
            .unwrap(),
        1
    );
    let read = db.store.host_by_name("a").await.unwrap().unwrap();
    assert_eq!(read.status, HostStatus::Unreachable);
    assert_eq!(read.reasons, vec!["verifier restarted".to_owned()]);
    assert_eq!(read.next_due, t);
}

async fn stale_trusted_host_becomes_unreachable(db: Db) {
    let t = now();
    let mut fresh = approved(&db, "fresh").await;
    fresh.status = HostStatus::Trusted;
    fresh.stale_after = Some(t + Duration::seconds(60));
    db.store.update_host(&fresh, t).await.unwrap();
    let mut stale = approved(&db, "stale").await;
    stale.status = HostStatus::Trusted;
    stale.stale_after = Some(t - Duration::seconds(1));
    db.store.update_host(&stale, t).await.unwrap();
    let mut bad = approved(&db, "bad").await;
    bad.status = HostStatus::Untrusted;
    bad.stale_after = Some(t - Duration::seconds(1));
    db.store.update_host(&bad, t).await.unwrap();
    let names = db
        .store
        .mark_stale_unreachable(t, "no evidence")
        .await
        .unwrap();
    assert_eq!(names, vec!["stale".to_owned()]);
    let counts: BTreeMap<HostStatus, i64> = db
        .store
        .count_by_status()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counts[&HostStatus::Trusted], 1);
    assert_eq!(counts[&HostStatus::Unreachable], 1);
    assert_eq!(counts[&HostStatus::Untrusted], 1);
    assert_eq!(counts[&HostStatus::Removed], 0);
}

async fn enrolment_is_single_use(db: Db) {
    let t = now();
    let e = Enrolment {
        id: uuid::Uuid::new_v4(),
        host_name: "a".into(),
        secret_sha256: sha256(b"secret"),
        expires_at: t + Duration::minutes(5),
        ek_public: vec![1],
        ek_cert: None,
        ek_chain_ok: false,
        ek_override_by: Some("ops".into()),
        ak_public: vec![2],
        ak_name: vec![3],
        tpm_manufacturer: None,
        tpm_model: None,
        labels: BTreeMap::from([("role".into(), "edge".into())]),
        created_at: t,
        source: "192.0.2.7".into(),
    };
    db.store.insert_enrolment(&e).await.unwrap();
    assert_eq!(
        db.store.take_enrolment(e.id).await.unwrap(),
        Some(e.clone())
    );
    assert_eq!(db.store.take_enrolment(e.id).await.unwrap(), None);
}

async fn pending_enrolments_per_source_never_exceed_the_cap_under_concurrency(db: Db) {
    let t = now();
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let e = Enrolment {
                id: uuid::Uuid::new_v4(),
                host_name: format!("h{i}"),
                secret_sha256: sha256(b"secret"),
                expires_at: t + Duration::minutes(5),
                ek_public: vec![1],
                ek_cert: None,
                ek_chain_ok: true,
                ek_override_by: None,
                ak_public: vec![2],
                ak_name: vec![3],
                tpm_manufacturer: None,
                tpm_model: None,
                labels: BTreeMap::new(),
                created_at: t,
                source: "198.51.100.9".into(),
            };
            store.insert_enrolment_capped(&e, 3, t).await.unwrap()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap());
    }
    assert_eq!(accepted, 3);
    assert_eq!(
        db.store
            .pending_enrolments_from("198.51.100.9", t)
            .await
            .unwrap(),
        3
    );
    // Expired ones do not count.
    assert_eq!(
        db.store
            .pending_enrolments_from("198.51.100.9", t + Duration::minutes(6))
            .await
            .unwrap(),
        0
    );
}

async fn expired_entries_are_purged(db: Db) {
    let h = approved(&db, "a").await;
    let t = now();
    db.store
        .issue_nonce(h.id, b"old", false, t, t + Duration::seconds(1))
        .await
        .unwrap();
    db.store
        .issue_nonce(h.id, b"new", false, t, t + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .purge_expired(t + Duration::seconds(2))
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        db.store.consume_nonce(h.id, b"new", t).await.unwrap(),
        NonceCheck::Valid { .. }
    ));
}

async fn admin_tokens_are_found_by_hash_only(db: Db) {
    let t = now();
    db.store
        .add_admin_token("initial", &sha256(b"tok"), t)
        .await
        .unwrap();
    assert_eq!(db.store.admin_token_count().await.unwrap(), 1);
    assert_eq!(
        db.store.admin_token_name(&sha256(b"tok")).await.unwrap(),
        Some("initial".into())
    );
    assert_eq!(
        db.store.admin_token_name(&sha256(b"tok2")).await.unwrap(),
        None
    );
    assert!(matches!(
        db.store.add_admin_token("again", &sha256(b"tok"), t).await,
        Err(StoreError::Duplicate(_))
    ));
}

async fn ek_override_is_kept_and_replaced(db: Db) {
    let t = now();
    assert!(db.store.ek_override("a").await.unwrap().is_none());
    let mut o = EkOverride {
        host_name: "a".into(),
        ek_name: Some(vec![0, 0x0b, 1, 2]),
        actor: "ops".into(),
        reason: "no EK cert on this board".into(),
        created_at: t,
        expires_at: Some(t + Duration::hours(1)),
    };
    db.store.set_ek_override(&o).await.unwrap();
    o.actor = "ops2".into();
    db.store.set_ek_override(&o).await.unwrap();
    let read = db.store.ek_override("a").await.unwrap().unwrap();
    assert_eq!(read, o);
    // It allows exactly its EK, and only until it expires.
    assert!(read.allows(&[0, 0x0b, 1, 2], t));
    assert!(!read.allows(&[0, 0x0b, 1, 3], t));
    assert!(!read.allows(&[0, 0x0b, 1, 2], t + Duration::hours(2)));
    // A legacy override (no EK, no expiry) allows nothing.
    let legacy = EkOverride {
        ek_name: None,
        expires_at: None,
        ..o
    };
    assert!(!legacy.allows(&[0, 0x0b, 1, 2], t));
}

async fn trusted_host_reads_unreachable_past_its_freshness_limit(db: Db) {
    let t = now();
    let mut fresh = approved(&db, "fresh").await;
    fresh.status = HostStatus::Trusted;
    fresh.stale_after = Some(t + Duration::seconds(60));
    db.store.update_host(&fresh, t).await.unwrap();
    let mut old = approved(&db, "old").await;
    old.status = HostStatus::Trusted;
    old.stale_after = Some(t - Duration::seconds(1));
    db.store.update_host(&old, t).await.unwrap();
    let mut unknown = approved(&db, "no-limit").await;
    unknown.status = HostStatus::Trusted;
    unknown.stale_after = None;
    db.store.update_host(&unknown, t).await.unwrap();
    // No sweep ran: every reader still sees only the fresh host trusted.
    for name in ["old", "no-limit"] {
        let h = db.store.host_by_name(name).await.unwrap().unwrap();
        assert_eq!(h.status, HostStatus::Unreachable, "{name}");
        assert_eq!(h.reasons, [vouch_store::STALE_REASON]);
        let by_id = db.store.host_by_id(h.id).await.unwrap().unwrap();
        assert_eq!(by_id.status, HostStatus::Unreachable);
    }
    let listed: BTreeMap<String, HostStatus> = db
        .store
        .list_hosts(false)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.name, h.status))
        .collect();
    assert_eq!(listed["fresh"], HostStatus::Trusted);
    assert_eq!(listed["old"], HostStatus::Unreachable);
    assert_eq!(listed["no-limit"], HostStatus::Unreachable);
    let counts: BTreeMap<HostStatus, i64> = db
        .store
        .count_by_status()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counts[&HostStatus::Trusted], 1);
    assert_eq!(counts[&HostStatus::Unreachable], 2);
    let snapshot = db.store.fleet_snapshot().await.unwrap();
    let trusted: Vec<&str> = snapshot
        .iter()
        .filter(|e| e.status == HostStatus::Trusted)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(trusted, ["fresh"]);
}

async fn one_ek_is_one_host(db: Db) {
    let a = approved(&db, "a").await;
    let b = approved(&db, "b").await;
    let ek = [0u8, 0x0b, 7, 7, 7];
    db.store.set_ek_name(a.id, &ek).await.unwrap();
    assert!(matches!(
        db.store.set_ek_name(b.id, &ek).await,
        Err(StoreError::Duplicate(_))
    ));
    let mut other = host("c");
    other.ek_name = Some(ek.to_vec());
    assert!(matches!(
        db.store.insert_host(&other).await,
        Err(StoreError::Duplicate(_))
    ));
    // A removed host keeps its EK: the tombstone is still found by it.
    let mut a = db.store.host_by_name("a").await.unwrap().unwrap();
    a.status = HostStatus::Removed;
    db.store.update_host(&a, now()).await.unwrap();
    let found = db.store.host_by_ek_name(&ek).await.unwrap().unwrap();
    assert_eq!(found.name, "a");
    assert_eq!(found.status, HostStatus::Removed);
    let missing: Vec<uuid::Uuid> = db
        .store
        .hosts_without_ek_name()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(missing, [b.id]);
}

async fn tokens_carry_roles_and_can_be_revoked(db: Db) {
    let t = now();
    let reader = vouch_store::ApiToken {
        name: "grafana".into(),
        role: vouch_store::Role::Reader,
        created_at: t,
        expires_at: Some(t + Duration::days(1)),
    };
    db.store.add_token(&reader, &sha256(b"r")).await.unwrap();
    db.store
        .add_admin_token("root", &sha256(b"a"), t)
        .await
        .unwrap();
    assert_eq!(
        db.store.token(&sha256(b"r")).await.unwrap(),
        Some(reader.clone())
    );
    assert_eq!(db.store.admin_token_count().await.unwrap(), 1);
    assert!(matches!(
        db.store.add_token(&reader, &sha256(b"other")).await,
        Err(StoreError::Duplicate(_))
    ));
    let names: Vec<String> = db
        .store
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["grafana", "root"]);
    assert!(db.store.revoke_token("grafana").await.unwrap());
    assert!(!db.store.revoke_token("grafana").await.unwrap());
    assert_eq!(db.store.token(&sha256(b"r")).await.unwrap(), None);
}

async fn refusals_are_kept_newest_first_and_bounded(db: Db) {
    let t = now();
    for i in 0..5 {
        let r = vouch_store::Refusal {
            at: t,
            host_name: format!("h{i}"),
            kind: "enrolment".into(),
            reason: "no".into(),
            peer: "127.0.0.1".into(),
        };
        db.store.record_refusal(&r, 3).await.unwrap();
    }
    let names: Vec<String> = db
        .store
        .refusals(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.host_name)
        .collect();
    assert_eq!(names, ["h4", "h3", "h2"]);
    db.store.heartbeat("replica-1", t).await.unwrap();
    db.store.heartbeat("replica-1", t).await.unwrap();
}

async fn removed_hosts_are_listed_only_on_request(db: Db) {
    let mut h = approved(&db, "gone").await;
    approved(&db, "here").await;
    h.status = HostStatus::Removed;
    db.store.update_host(&h, now()).await.unwrap();
    let names = |v: Vec<Host>| v.into_iter().map(|h| h.name).collect::<Vec<_>>();
    assert_eq!(names(db.store.list_hosts(false).await.unwrap()), ["here"]);
    assert_eq!(
        names(db.store.list_hosts(true).await.unwrap()),
        ["gone", "here"]
    );
}

fn ima_state(h: &Host, reset_count: u32, entry_count: u64) -> ImaState {
    ImaState {
        host_id: h.id,
        reset_count,
        entry_count,
        template_hash_alg: "sha1".into(),
        convention: "per_bank".into(),
        pcr10: BTreeMap::from([("sha256".to_owned(), "ab".repeat(32))]),
        boot_aggregate_ok: true,
        policy_sha256: Some(vec![7; 32]),
        failure: None,
        updated_at: now(),
    }
}

async fn ima_policies_are_stored_once_by_content(db: Db) {
    let doc = serde_json::json!({"version": 1, "allow": {"/usr/bin/true": ["ab"]}});
    let a = db
        .store
        .put_ima_policy(&[1; 32], &doc, 1, now())
        .await
        .unwrap();
    let b = db
        .store
        .put_ima_policy(&[1; 32], &doc, 1, now())
        .await
        .unwrap();
    assert_eq!(a, b, "the same content is stored once");
    let c = db
        .store
        .put_ima_policy(&[2; 32], &doc, 1, now())
        .await
        .unwrap();
    assert_ne!(a, c);
    let p = db.store.ima_policy(a).await.unwrap().unwrap();
    assert_eq!((p.sha256, p.paths, &p.policy), ([1; 32], 1, &doc));
    assert!(
        db.store
            .ima_policy(uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );

    let h = approved(&db, "a").await;
    assert_eq!(db.store.ima_context(h.id).await.unwrap().policy, None);
    assert!(db.store.set_host_ima_policy(h.id, Some(a)).await.unwrap());
    assert_eq!(
        db.store.ima_context(h.id).await.unwrap().policy,
        Some((a, [1; 32]))
    );
    // An unknown policy id is refused by the database.
    assert!(
        db.store
            .set_host_ima_policy(h.id, Some(uuid::Uuid::new_v4()))
            .await
            .is_err()
    );
    assert!(db.store.set_host_ima_policy(h.id, None).await.unwrap());
    assert_eq!(db.store.ima_context(h.id).await.unwrap().policy, None);
}

async fn ima_state_is_written_with_its_attestation(db: Db) {
    let h = approved(&db, "a").await;
    assert_eq!(db.store.ima_context(h.id).await.unwrap().state, None);
    let s1 = ima_state(&h, 3, 10_000);
    let h2 = db
        .store
        .apply_attestation_with_ima(&h, &attestation(&h, 1), Some(&s1), now())
        .await
        .unwrap();
    assert_eq!(
        db.store.ima_context(h.id).await.unwrap().state,
        Some(s1.clone())
    );
    // Updated in place.
    let mut s2 = ima_state(&h, 3, 10_100);
    s2.failure = Some("entry 10050: /tmp/x sha256:00: not in policy".into());
    s2.policy_sha256 = None;
    let h3 = db
        .store
        .apply_attestation_with_ima(&h2, &attestation(&h2, 2), Some(&s2), now())
        .await
        .unwrap();
    assert_eq!(
        db.store.ima_context(h.id).await.unwrap().state,
        Some(s2.clone())
    );
    // A stale host version writes neither the attestation nor the IMA state.
    let s3 = ima_state(&h, 4, 5);
    assert!(matches!(
        db.store
            .apply_attestation_with_ima(&h2, &attestation(&h2, 3), Some(&s3), now())
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        db.store.ima_context(h.id).await.unwrap().state,
        Some(s2.clone())
    );
    // Without IMA, the state stays.
    db.store
        .apply_attestation(&h3, &attestation(&h3, 4), now())
        .await
        .unwrap();
    assert_eq!(db.store.ima_context(h.id).await.unwrap().state, Some(s2));
}

async fn appraisal_documents_are_versioned_and_never_overwritten(db: Db) {
    let v1 = serde_json::json!({"id": "r750", "version": 1, "rules": ["a"]});
    let v2 = serde_json::json!({"id": "r750", "version": 2, "rules": ["a", "b"]});
    let s = &db.store;
    assert!(
        s.put_appraisal_document("policy", "r750", 1, &v1, now())
            .await
            .unwrap()
    );
    // The same version again is refused and changes nothing.
    assert!(
        !s.put_appraisal_document("policy", "r750", 1, &v2, now())
            .await
            .unwrap()
    );
    assert_eq!(
        s.appraisal_document("policy", "r750", 1).await.unwrap(),
        Some(v1.clone())
    );
    assert!(
        s.put_appraisal_document("policy", "r750", 2, &v2, now())
            .await
            .unwrap()
    );
    let other = serde_json::json!({"id": "edge"});
    assert!(
        s.put_appraisal_document("policy", "edge", 7, &other, now())
            .await
            .unwrap()
    );
    // Another kind with the same id is another document.
    assert!(
        s.put_appraisal_document("references", "r750", 1, &v1, now())
            .await
            .unwrap()
    );
    let latest = s.latest_appraisal_documents("policy").await.unwrap();
    let got: Vec<(&str, u32, &serde_json::Value)> = latest
        .iter()
        .map(|d| (d.id.as_str(), d.version, &d.json))
        .collect();
    assert_eq!(got, vec![("edge", 7, &other), ("r750", 2, &v2)]);
    assert!(latest.iter().all(|d| d.kind == "policy"));
    assert_eq!(
        s.appraisal_document("policy", "nope", 1).await.unwrap(),
        None
    );
}

async fn host_verdict_is_replaced_and_goes_with_the_host(db: Db) {
    let h = approved(&db, "v1").await;
    assert_eq!(db.store.host_verdict(h.id).await.unwrap(), None);
    let a = serde_json::json!({"status": "affirming"});
    let b = serde_json::json!({"status": "contraindicated"});
    db.store.put_host_verdict(h.id, &a, now()).await.unwrap();
    db.store.put_host_verdict(h.id, &b, now()).await.unwrap();
    assert_eq!(db.store.host_verdict(h.id).await.unwrap().unwrap().0, b);
    db.store.clear_host_verdict(h.id).await.unwrap();
    assert_eq!(db.store.host_verdict(h.id).await.unwrap(), None);
}

async fn fleet_record_is_written_with_its_attestation(db: Db) {
    let h = approved(&db, "f1").await;
    let claims = serde_json::json!({"host": "f1", "events": []});
    let verdict = serde_json::json!({"status": "warning"});
    let fleet = FleetRecord {
        claims: Some(claims.clone()),
        verdict: VerdictUpdate::Set(verdict.clone()),
    };
    let h2 = db
        .store
        .apply_attestation_full(&h, &attestation(&h, 1), None, &fleet, now())
        .await
        .unwrap();
    assert_eq!(db.store.host_claims(h.id).await.unwrap().unwrap().0, claims);
    let snap = db.store.fleet_snapshot().await.unwrap();
    let e = snap.iter().find(|e| e.name == "f1").unwrap();
    assert_eq!(
        (e.claims.as_ref(), e.verdict.as_ref()),
        (Some(&claims), Some(&verdict))
    );
    // A stale host version writes neither.
    let other = FleetRecord {
        claims: Some(serde_json::json!({"host": "f1", "events": [1]})),
        verdict: VerdictUpdate::Clear,
    };
    assert!(matches!(
        db.store
            .apply_attestation_full(&h, &attestation(&h, 2), None, &other, now())
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(db.store.host_claims(h.id).await.unwrap().unwrap().0, claims);
    assert_eq!(
        db.store.host_verdict(h.id).await.unwrap().unwrap().0,
        verdict
    );
    // No new claims keeps the stored ones; Keep keeps the verdict, Clear deletes it.
    let h3 = db
        .store
        .apply_attestation_full(
            &h2,
            &attestation(&h2, 3),
            None,
            &FleetRecord::default(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(db.store.host_claims(h.id).await.unwrap().unwrap().0, claims);
    assert_eq!(
        db.store.host_verdict(h.id).await.unwrap().unwrap().0,
        verdict
    );
    let clear = FleetRecord {
        claims: None,
        verdict: VerdictUpdate::Clear,
    };
    db.store
        .apply_attestation_full(&h3, &attestation(&h3, 4), None, &clear, now())
        .await
        .unwrap();
    assert_eq!(db.store.host_verdict(h.id).await.unwrap(), None);
    // Removed hosts are not in the snapshot.
    let mut gone = db.store.host_by_id(h.id).await.unwrap().unwrap();
    gone.status = HostStatus::Removed;
    db.store.update_host(&gone, now()).await.unwrap();
    assert!(
        db.store
            .fleet_snapshot()
            .await
            .unwrap()
            .iter()
            .all(|e| e.name != "f1")
    );
}

async fn document_batch_is_all_or_nothing(db: Db) {
    let a = serde_json::json!({"a": 1});
    let b = serde_json::json!({"b": 2});
    let s = &db.store;
    assert!(
        s.put_appraisal_document("references", "default", 1, &a, now())
            .await
            .unwrap()
    );
    // The second document exists already: the first is not written either.
    let batch = [
        NewDocument {
            kind: "campaign",
            id: "c",
            version: 1,
            json: &b,
        },
        NewDocument {
            kind: "references",
            id: "default",
            version: 1,
            json: &b,
        },
    ];
    assert!(!s.put_appraisal_documents(&batch, now()).await.unwrap());
    assert!(
        s.latest_appraisal_documents("campaign")
            .await
            .unwrap()
            .is_empty()
    );
    let ok = [
        NewDocument {
            kind: "campaign",
            id: "c",
            version: 1,
            json: &b,
        },
        NewDocument {
            kind: "references",
            id: "default",
            version: 2,
            json: &b,
        },
    ];
    assert!(s.put_appraisal_documents(&ok, now()).await.unwrap());
    let mut versions = s.appraisal_document_versions().await.unwrap();
    versions.sort();
    assert_eq!(
        versions,
        vec![
            ("campaign".to_owned(), "c".to_owned(), 1),
            ("references".to_owned(), "default".to_owned(), 2),
        ]
    );
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite(super::options()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::postgres(super::options()).await).await;
                }
            )*
        }
    };
}

fn options() -> StoreOptions {
    StoreOptions { history_limit: 3 }
}

suite!(
    nonce_is_single_use,
    expired_nonce_refused,
    nonce_cannot_be_issued_twice,
    nonce_of_another_host_refused,
    concurrent_consumers_get_one_valid_nonce,
    host_round_trips_every_field,
    host_name_is_unique,
    stale_host_update_is_refused,
    state_survives_reopen,
    history_retention_prunes_oldest,
    attestation_with_stale_host_is_not_recorded,
    due_host_is_claimed_once,
    unapproved_host_is_never_due,
    restart_demotes_trusted_hosts,
    stale_trusted_host_becomes_unreachable,
    enrolment_is_single_use,
    expired_entries_are_purged,
    admin_tokens_are_found_by_hash_only,
    ek_override_is_kept_and_replaced,
    trusted_host_reads_unreachable_past_its_freshness_limit,
    one_ek_is_one_host,
    tokens_carry_roles_and_can_be_revoked,
    refusals_are_kept_newest_first_and_bounded,
    pending_enrolments_per_source_never_exceed_the_cap_under_concurrency,
    removed_hosts_are_listed_only_on_request,
    ima_policies_are_stored_once_by_content,
    ima_state_is_written_with_its_attestation,
    appraisal_documents_are_versioned_and_never_overwritten,
    host_verdict_is_replaced_and_goes_with_the_host,
    fleet_record_is_written_with_its_attestation,
    document_batch_is_all_or_nothing,
);
