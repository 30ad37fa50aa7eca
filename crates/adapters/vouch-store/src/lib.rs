//! Vouch's durable state on SQLite (default, one file in the data directory, WAL) or
//! PostgreSQL (by URL, shared by several verifier replicas).
//!
//! # Shape
//!
//! One concrete [`Store`] that dispatches on an enum of two sqlx pools rather than a trait
//! with two implementations: the SQL is written once, in the portable subset both engines
//! speak (`$N` parameters, `RETURNING`, `ON CONFLICT`, `LIMIT`), and the [`with_pool!`] macro
//! instantiates each statement for both pool types. Only the migrations differ per backend
//! (`migrations/sqlite`, `migrations/postgres`; embedded with `sqlx::migrate!` and run at
//! open). Queries are runtime `query`/`query_as` (no compile-time database needed). A trait
//! would add an object-safety and async-trait layer for no second caller.
//!
//! # Trust assumptions and what fails closed
//!
//! * The database is trusted storage: whoever can write it can make any host trusted. Secrets
//!   are never stored in clear: enrolment credentials and admin tokens are kept as SHA-256
//!   hashes ([`sha256`]); the caller hashes, so the clear value never reaches this crate.
//! * Nonces are single use by construction: a nonce is a primary key (issuing the same one
//!   twice fails with [`StoreError::Duplicate`]) and [`Store::consume_nonce`] is one atomic
//!   `DELETE ... RETURNING`, so of two concurrent consumers at most one sees
//!   [`NonceCheck::Valid`]; an expired nonce is deleted and refused.
//! * Enrolments are single use the same way ([`Store::take_enrolment`]).
//! * Host updates are optimistic: [`Store::update_host`] and [`Store::apply_attestation`]
//!   write only if the row still has the version that was read, else
//!   [`StoreError::Conflict`]; two replicas can never interleave a read-modify-write.
//! * Scheduling across replicas: [`Store::claim_due`] is a single `UPDATE` guarded by
//!   `next_due <= now` that moves `next_due` to the end of a lease, so exactly one replica
//!   (and one challenge) wins a due host.
//! * A host that was trusted when a verifier starts is demoted ([`Store::demote_trusted`]):
//!   nothing read back from storage is reported as trusted before fresh evidence.
//! * History is bounded: [`Store::apply_attestation`] prunes a host's history to the newest
//!   [`StoreOptions::history_limit`] records in the same transaction.
//! * A host's IMA state (running PCR 10, entries replayed) is written in the transaction of
//!   the attestation that produced it ([`Store::apply_attestation_with_ima`]), so it can never
//!   run ahead of or behind the host's recorded verdict. IMA runtime policies are stored once
//!   by the SHA-256 of their content ([`Store::put_ima_policy`]) and shared by reference.
//! * Appraisal documents (policies, reference stores) are versioned and never overwritten:
//!   [`Store::put_appraisal_document`] inserts a new `(kind, id, version)` or reports that it
//!   exists.

mod model;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use sha2::Digest as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;
use uuid::Uuid;

pub use model::{
    ApiToken, AppraisalDocument, Attestation, AuditEntry, Baseline, BaselineSource, Counters,
    DOC_CAMPAIGN, DOC_POLICY, DOC_REFERENCES, EkOverride, Enrolment, FleetEntry, FleetRecord, Host,
    HostStatus, ImaContext, ImaPolicy, ImaState, Labels, NewDocument, NonceCheck, Pcrs, Refusal,
    Role, STALE_REASON, VerdictUpdate,
};

/// The status column as read: a stored `trusted` past its freshness limit reads `unreachable`
/// (the SQL twin of [`Host::fresh_at`]; `$1` is now).
macro_rules! effective_status {
    () => {
        "CASE WHEN h.status = 'trusted' AND (h.stale_after IS NULL OR h.stale_after <= $1) \
         THEN 'unreachable' ELSE h.status END"
    };
}

#[cfg(feature = "testing")]
pub mod testing;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// File name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "vouch.db";

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed at open.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The record was changed by someone else since it was read; read it again.
    #[error("the record was changed concurrently")]
    Conflict,
    /// A unique value already exists.
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// A stored value does not decode (a row written by something other than this crate).
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL (expected sqlite:PATH or postgres://...)")]
    UnsupportedUrl,
}

impl StoreError {
    /// True when the store was closed (the verifier is shutting down): nothing was changed.
    #[must_use]
    pub const fn is_closed(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::PoolClosed))
    }
}

/// Result alias.
pub type Result<T, E = StoreError> = core::result::Result<T, E>;

const UPSERT_HOST_VERDICT: &str = "INSERT INTO host_verdicts (host_id, verdict, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (host_id) DO UPDATE SET verdict = excluded.verdict, \
     updated_at = excluded.updated_at";
const UPSERT_HOST_CLAIMS: &str = "INSERT INTO host_claims (host_id, claims, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (host_id) DO UPDATE SET claims = excluded.claims, \
     updated_at = excluded.updated_at";

/// Tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Attestation records kept per host (older ones are pruned on insert). At least 1.
    pub history_limit: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { history_limit: 100 }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    history_limit: i64,
}

/// Run `$body` with `$pool` bound to the backend's pool; the body is compiled once per backend.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// SHA-256, the only form in which secrets reach the store.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Timestamps are stored with microsecond precision (PostgreSQL's), on both backends alike.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The host columns, in [`bind_host!`] order (a macro so statements stay `&'static str`).
macro_rules! host_columns {
    () => {
        "id, name, status, reasons, labels, ek_public, ek_cert, ek_override_by, \
    ak_public, ak_name, tpm_manufacturer, tpm_model, client_cert_sha256, approved_at, approved_by, \
    baseline, baseline_event_log, last_pcrs, last_machine_state, reset_count, restart_count, clock, \
    event_log, event_log_sha256, needs_event_log, interval_secs, next_due, stale_after, last_seen, \
    last_good, created_at, updated_at, version, ek_name, hold_reason, pending_labels, readmitted_by"
    };
}

/// Bind every host column in [`host_columns!`] order, starting at `$1` = id.
macro_rules! bind_host {
    ($q:expr, $r:expr) => {
        $q.bind($r.id)
            .bind(&$r.name)
            .bind(&$r.status)
            .bind(&$r.reasons)
            .bind(&$r.labels)
            .bind(&$r.ek_public)
            .bind(&$r.ek_cert)
            .bind(&$r.ek_override_by)
            .bind(&$r.ak_public)
            .bind(&$r.ak_name)
            .bind(&$r.tpm_manufacturer)
            .bind(&$r.tpm_model)
            .bind(&$r.client_cert_sha256)
            .bind($r.approved_at)
            .bind(&$r.approved_by)
            .bind(&$r.baseline)
            .bind(&$r.baseline_event_log)
            .bind(&$r.last_pcrs)
            .bind(&$r.last_machine_state)
            .bind($r.reset_count)
            .bind($r.restart_count)
            .bind($r.clock)
            .bind(&$r.event_log)
            .bind(&$r.event_log_sha256)
            .bind($r.needs_event_log)
            .bind($r.interval_secs)
            .bind($r.next_due)
            .bind($r.stale_after)
            .bind($r.last_seen)
            .bind($r.last_good)
            .bind($r.created_at)
            .bind($r.updated_at)
            .bind($r.version)
            .bind(&$r.ek_name)
            .bind(&$r.hold_reason)
            .bind(&$r.pending_labels)
            .bind(&$r.readmitted_by)
    };
}

#[derive(Debug, sqlx::FromRow)]
struct HostRow {
    id: Uuid,
    name: String,
    status: String,
    reasons: Json<Vec<String>>,
    labels: Json<Labels>,
    ek_public: Vec<u8>,
    ek_cert: Option<Vec<u8>>,
    ek_override_by: Option<String>,
    ak_public: Vec<u8>,
    ak_name: Vec<u8>,
    tpm_manufacturer: Option<String>,
    tpm_model: Option<String>,
    client_cert_sha256: Option<Vec<u8>>,
    approved_at: Option<DateTime<Utc>>,
    approved_by: Option<String>,
    baseline: Option<Json<Baseline>>,
    baseline_event_log: Option<Vec<u8>>,
    last_pcrs: Option<Json<Pcrs>>,
    last_machine_state: Option<Json<serde_json::Value>>,
    reset_count: Option<i64>,
    restart_count: Option<i64>,
    clock: Option<i64>,
    event_log: Option<Vec<u8>>,
    event_log_sha256: Option<Vec<u8>>,
    needs_event_log: bool,
    interval_secs: i64,
    next_due: DateTime<Utc>,
    stale_after: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    last_good: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    ek_name: Option<Vec<u8>>,
    hold_reason: Option<String>,
    pending_labels: Option<Json<Labels>>,
    readmitted_by: Option<String>,
}

fn token_from_row(
    (name, role, created_at, expires_at): (String, String, DateTime<Utc>, Option<DateTime<Utc>>),
) -> Result<ApiToken> {
    Ok(ApiToken {
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("token role {role:?}")))?,
        name,
        created_at,
        expires_at,
    })
}

fn status_from(s: &str) -> Result<HostStatus> {
    HostStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("host status {s:?}")))
}

fn counters_to_row(c: Option<Counters>) -> Result<(Option<i64>, Option<i64>, Option<i64>)> {
    match c {
        None => Ok((None, None, None)),
        Some(c) => {
            let clock = i64::try_from(c.clock)
                .map_err(|_| StoreError::Corrupt(format!("clock {} out of range", c.clock)))?;
            Ok((
                Some(i64::from(c.reset_count)),
                Some(i64::from(c.restart_count)),
                Some(clock),
            ))
        }
    }
}

fn counters_from_row(r: Option<i64>, s: Option<i64>, c: Option<i64>) -> Result<Option<Counters>> {
    let (Some(r), Some(s), Some(c)) = (r, s, c) else {
        return Ok(None);
    };
    let bad = |what: &str, v: i64| StoreError::Corrupt(format!("{what} {v} out of range"));
    Ok(Some(Counters {
        reset_count: u32::try_from(r).map_err(|_| bad("resetCount", r))?,
        restart_count: u32::try_from(s).map_err(|_| bad("restartCount", s))?,
        clock: u64::try_from(c).map_err(|_| bad("clock", c))?,
    }))
}

impl HostRow {
    fn from_host(h: &Host) -> Result<Self> {
        let (reset_count, restart_count, clock) = counters_to_row(h.counters)?;
        Ok(Self {
            id: h.id,
            name: h.name.clone(),
            status: h.status.as_str().to_owned(),
            reasons: Json(h.reasons.clone()),
            labels: Json(h.labels.clone()),
            ek_public: h.ek_public.clone(),
            ek_cert: h.ek_cert.clone(),
            ek_override_by: h.ek_override_by.clone(),
            ak_public: h.ak_public.clone(),
            ak_name: h.ak_name.clone(),
            tpm_manufacturer: h.tpm_manufacturer.clone(),
            tpm_model: h.tpm_model.clone(),
            client_cert_sha256: h.client_cert_sha256.clone(),
            approved_at: h.approved_at.map(ts),
            approved_by: h.approved_by.clone(),
            baseline: h.baseline.clone().map(Json),
            baseline_event_log: h.baseline_event_log.clone(),
            last_pcrs: h.last_pcrs.clone().map(Json),
            last_machine_state: h.last_machine_state.clone().map(Json),
            reset_count,
            restart_count,
            clock,
            event_log: h.event_log.clone(),
            event_log_sha256: h.event_log_sha256.clone(),
            needs_event_log: h.needs_event_log,
            interval_secs: h.interval_secs,
            next_due: ts(h.next_due),
            stale_after: h.stale_after.map(ts),
            last_seen: h.last_seen.map(ts),
            last_good: h.last_good.map(ts),
            created_at: ts(h.created_at),
            updated_at: ts(h.updated_at),
            version: h.version,
            ek_name: h.ek_name.clone(),
            hold_reason: h.hold_reason.clone(),
            pending_labels: h.pending_labels.clone().map(Json),
            readmitted_by: h.readmitted_by.clone(),
        })
    }

    fn into_host(self) -> Result<Host> {
        Ok(Host {
            id: self.id,
            status: status_from(&self.status)?,
            name: self.name,
            reasons: self.reasons.0,
            labels: self.labels.0,
            ek_public: self.ek_public,
            ek_cert: self.ek_cert,
            ek_override_by: self.ek_override_by,
            ak_public: self.ak_public,
            ak_name: self.ak_name,
            tpm_manufacturer: self.tpm_manufacturer,
            tpm_model: self.tpm_model,
            client_cert_sha256: self.client_cert_sha256,
            approved_at: self.approved_at,
            approved_by: self.approved_by,
            baseline: self.baseline.map(|j| j.0),
            baseline_event_log: self.baseline_event_log,
            last_pcrs: self.last_pcrs.map(|j| j.0),
            last_machine_state: self.last_machine_state.map(|j| j.0),
            counters: counters_from_row(self.reset_count, self.restart_count, self.clock)?,
            event_log: self.event_log,
            event_log_sha256: self.event_log_sha256,
            needs_event_log: self.needs_event_log,
            interval_secs: self.interval_secs,
            next_due: self.next_due,
            stale_after: self.stale_after,
            last_seen: self.last_seen,
            last_good: self.last_good,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            ek_name: self.ek_name,
            hold_reason: self.hold_reason,
            pending_labels: self.pending_labels.map(|j| j.0),
            readmitted_by: self.readmitted_by,
        }
        .fresh_at(Utc::now()))
    }
}

#[derive(Debug, sqlx::FromRow)]
struct EnrolmentRow {
    id: Uuid,
    host_name: String,
    secret_sha256: Vec<u8>,
    expires_at: DateTime<Utc>,
    ek_public: Vec<u8>,
    ek_cert: Option<Vec<u8>>,
    ek_chain_ok: bool,
    ek_override_by: Option<String>,
    ak_public: Vec<u8>,
    ak_name: Vec<u8>,
    tpm_manufacturer: Option<String>,
    tpm_model: Option<String>,
    labels: Json<Labels>,
    created_at: DateTime<Utc>,
    source: String,
}

impl EnrolmentRow {
    fn into_enrolment(self) -> Result<Enrolment> {
        Ok(Enrolment {
            id: self.id,
            host_name: self.host_name,
            secret_sha256: <[u8; 32]>::try_from(self.secret_sha256.as_slice())
                .map_err(|_| StoreError::Corrupt("enrolment secret hash".into()))?,
            expires_at: self.expires_at,
            ek_public: self.ek_public,
            ek_cert: self.ek_cert,
            ek_chain_ok: self.ek_chain_ok,
            ek_override_by: self.ek_override_by,
            ak_public: self.ak_public,
            ak_name: self.ak_name,
            tpm_manufacturer: self.tpm_manufacturer,
            tpm_model: self.tpm_model,
            labels: self.labels.0,
            created_at: self.created_at,
            source: self.source,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct AttestationRow {
    host_id: Uuid,
    at: DateTime<Utc>,
    status: String,
    reasons: Json<Vec<String>>,
    reset_count: Option<i64>,
    restart_count: Option<i64>,
    clock: Option<i64>,
    pcrs: Option<Json<Pcrs>>,
}

#[derive(Debug, sqlx::FromRow)]
struct AuditRow {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: String,
    detail: Json<serde_json::Value>,
}

const UPSERT_IMA_STATE: &str = "INSERT INTO ima_state (host_id, reset_count, entry_count, \
    template_hash_alg, convention, pcr10, boot_aggregate_ok, policy_sha256, failure, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (host_id) DO UPDATE SET \
    reset_count = excluded.reset_count, entry_count = excluded.entry_count, \
    template_hash_alg = excluded.template_hash_alg, convention = excluded.convention, \
    pcr10 = excluded.pcr10, boot_aggregate_ok = excluded.boot_aggregate_ok, \
    policy_sha256 = excluded.policy_sha256, failure = excluded.failure, \
    updated_at = excluded.updated_at";

#[derive(Debug)]
struct ImaRow {
    host_id: Uuid,
    reset_count: i64,
    entry_count: i64,
    template_hash_alg: String,
    convention: String,
    pcr10: Json<BTreeMap<String, String>>,
    boot_aggregate_ok: bool,
    policy_sha256: Option<Vec<u8>>,
    failure: Option<String>,
    updated_at: DateTime<Utc>,
}

impl ImaRow {
    fn from_state(s: &ImaState) -> Result<Self> {
        Ok(Self {
            host_id: s.host_id,
            reset_count: i64::from(s.reset_count),
            entry_count: i64::try_from(s.entry_count).map_err(|_| {
                StoreError::Corrupt(format!("IMA entry count {} out of range", s.entry_count))
            })?,
            template_hash_alg: s.template_hash_alg.clone(),
            convention: s.convention.clone(),
            pcr10: Json(s.pcr10.clone()),
            boot_aggregate_ok: s.boot_aggregate_ok,
            policy_sha256: s.policy_sha256.clone(),
            failure: s.failure.clone(),
            updated_at: ts(s.updated_at),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ImaContextRow {
    ima_policy_id: Option<Uuid>,
    policy_hash: Option<Vec<u8>>,
    host_id: Option<Uuid>,
    reset_count: Option<i64>,
    entry_count: Option<i64>,
    template_hash_alg: Option<String>,
    convention: Option<String>,
    pcr10: Option<Json<BTreeMap<String, String>>>,
    boot_aggregate_ok: Option<bool>,
    policy_sha256: Option<Vec<u8>>,
    failure: Option<String>,
    updated_at: Option<DateTime<Utc>>,
}

impl ImaContextRow {
    fn into_context(self) -> Result<ImaContext> {
        let policy = match (self.ima_policy_id, self.policy_hash) {
            (Some(id), Some(h)) => Some((
                id,
                <[u8; 32]>::try_from(h.as_slice())
                    .map_err(|_| StoreError::Corrupt("IMA policy hash".into()))?,
            )),
            _ => None,
        };
        let state = match (
            self.host_id,
            self.reset_count,
            self.entry_count,
            self.template_hash_alg,
            self.convention,
            self.pcr10,
            self.boot_aggregate_ok,
            self.updated_at,
        ) {
            (
                Some(host_id),
                Some(r),
                Some(n),
                Some(template_hash_alg),
                Some(convention),
                Some(pcr10),
                Some(boot_aggregate_ok),
                Some(updated_at),
            ) => Some(ImaState {
                host_id,
                reset_count: u32::try_from(r)
                    .map_err(|_| StoreError::Corrupt(format!("IMA resetCount {r}")))?,
                entry_count: u64::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("IMA entry count {n}")))?,
                template_hash_alg,
                convention,
                pcr10: pcr10.0,
                boot_aggregate_ok,
                policy_sha256: self.policy_sha256,
                failure: self.failure,
                updated_at,
            }),
            _ => None,
        };
        Ok(ImaContext { policy, state })
    }
}

const UPDATE_HOST: &str = "UPDATE hosts SET name = $2, status = $3, reasons = $4, labels = $5, \
    ek_public = $6, ek_cert = $7, ek_override_by = $8, ak_public = $9, ak_name = $10, \
    tpm_manufacturer = $11, tpm_model = $12, client_cert_sha256 = $13, approved_at = $14, \
    approved_by = $15, baseline = $16, baseline_event_log = $17, last_pcrs = $18, \
    last_machine_state = $19, reset_count = $20, restart_count = $21, clock = $22, \
    event_log = $23, event_log_sha256 = $24, needs_event_log = $25, interval_secs = $26, \
    next_due = $27, stale_after = $28, last_seen = $29, last_good = $30, created_at = $31, \
    updated_at = $32, version = $33, ek_name = $34, hold_reason = $35, pending_labels = $36, \
    readmitted_by = $37 WHERE id = $1 AND version = $38";

impl Store {
    /// Open (creating if needed) the SQLite database at `path` in WAL mode with full
    /// synchronous commits, and run the migrations.
    pub async fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(connect)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(Self::with_backend(Backend::Sqlite(pool), options))
    }

    /// Connect to PostgreSQL and run the migrations (sqlx serialises concurrent migrators
    /// with an advisory lock, so replicas may start together).
    pub async fn open_postgres(url: &str, options: StoreOptions) -> Result<Self> {
        let connect = sqlx::postgres::PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Self::with_backend(Backend::Postgres(pool), options))
    }

    /// Open by URL: `postgres://...` / `postgresql://...`, or `sqlite:PATH`.
    pub async fn open_url(url: &str, options: StoreOptions) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url, options).await
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            Self::open_sqlite(Path::new(path), options).await
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    fn with_backend(backend: Backend, options: StoreOptions) -> Self {
        Self {
            backend,
            history_limit: i64::from(options.history_limit.max(1)),
        }
    }

    /// `sqlite` or `postgres`.
    #[must_use]
    pub const fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Close the pool (waits for connections to be returned).
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await);
    }

    // ---- hosts ----

    /// Insert a new host. Fails with [`StoreError::Duplicate`] if the name or id exists.
    pub async fn insert_host(&self, host: &Host) -> Result<()> {
        let row = HostRow::from_host(host)?;
        const SQL: &str = concat!(
            "INSERT INTO hosts (",
            host_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37)"
        );
        let done = with_pool!(self, |p| bind_host!(sqlx::query(SQL), row)
            .execute(p)
            .await
            .map(|_| ()));
        done.map_err(|e| {
            if unique_violation(&e) {
                StoreError::Duplicate("host")
            } else {
                e.into()
            }
        })
    }

    /// Write `host` back if nobody changed it since it was read (same `version`); returns
    /// the stored copy with its new version and `updated_at = now`.
    pub async fn update_host(&self, host: &Host, now: DateTime<Utc>) -> Result<Host> {
        let mut next = host.clone();
        next.version = host.version.saturating_add(1);
        next.updated_at = now;
        let row = HostRow::from_host(&next)?;
        let affected = with_pool!(self, |p| bind_host!(sqlx::query(UPDATE_HOST), row)
            .bind(host.version)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        match affected {
            Ok(1) => row.into_host(),
            Ok(_) => Err(StoreError::Conflict),
            Err(e) if unique_violation(&e) => Err(StoreError::Duplicate("host")),
            Err(e) => Err(e.into()),
        }
    }

    /// Write the host and record one attestation in one transaction, pruning the host's
    /// history to the configured limit. Same version check as [`Store::update_host`].
    pub async fn apply_attestation(
        &self,
        host: &Host,
        record: &Attestation,
        now: DateTime<Utc>,
    ) -> Result<Host> {
        self.apply_attestation_with_ima(host, record, None, now)
            .await
    }

    /// [`Store::apply_attestation`], also writing the host's IMA state (when given) in the same
    /// transaction.
    pub async fn apply_attestation_with_ima(
        &self,
        host: &Host,
        record: &Attestation,
        ima: Option<&ImaState>,
        now: DateTime<Utc>,
    ) -> Result<Host> {
        self.apply_attestation_full(host, record, ima, &FleetRecord::default(), now)
            .await
    }

    /// [`Store::apply_attestation_with_ima`], also writing what fleet appraisal made of the
    /// attestation (the host's claims and verdict, see [`FleetRecord`]) in the same
    /// transaction: a stored verdict always belongs to the stored host status.
    pub async fn apply_attestation_full(
        &self,
        host: &Host,
        record: &Attestation,
        ima: Option<&ImaState>,
        fleet: &FleetRecord,
        now: DateTime<Utc>,
    ) -> Result<Host> {
        let ima_row = ima.map(ImaRow::from_state).transpose()?;
        let mut next = host.clone();
        next.version = host.version.saturating_add(1);
        next.updated_at = now;
        let row = HostRow::from_host(&next)?;
        let (reset_count, restart_count, clock) = counters_to_row(record.counters)?;
        let limit = self.history_limit;
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let affected = bind_host!(sqlx::query(UPDATE_HOST), row)
                .bind(host.version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if affected != 1 {
                tx.rollback().await?;
                return Err(StoreError::Conflict);
            }
            sqlx::query(
                "INSERT INTO attestations (host_id, at, status, reasons, reset_count, \
                 restart_count, clock, pcrs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.host_id)
            .bind(ts(record.at))
            .bind(record.status.as_str())
            .bind(Json(&record.reasons))
            .bind(reset_count)
            .bind(restart_count)
            .bind(clock)
            .bind(record.pcrs.as_ref().map(Json))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM attestations WHERE host_id = $1 AND id NOT IN \
                 (SELECT id FROM attestations WHERE host_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(record.host_id)
            .bind(limit)
            .execute(&mut *tx)
            .await?;
            if let Some(r) = &ima_row {
                sqlx::query(UPSERT_IMA_STATE)
                    .bind(r.host_id)
                    .bind(r.reset_count)
                    .bind(r.entry_count)
                    .bind(&r.template_hash_alg)
                    .bind(&r.convention)
                    .bind(&r.pcr10)
                    .bind(r.boot_aggregate_ok)
                    .bind(&r.policy_sha256)
                    .bind(&r.failure)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(c) = &fleet.claims {
                sqlx::query(UPSERT_HOST_CLAIMS)
                    .bind(record.host_id)
                    .bind(Json(c))
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
            }
            match &fleet.verdict {
                VerdictUpdate::Set(v) => {
                    sqlx::query(UPSERT_HOST_VERDICT)
                        .bind(record.host_id)
                        .bind(Json(v))
                        .bind(ts(now))
                        .execute(&mut *tx)
                        .await?;
                }
                VerdictUpdate::Clear => {
                    sqlx::query("DELETE FROM host_verdicts WHERE host_id = $1")
                        .bind(record.host_id)
                        .execute(&mut *tx)
                        .await?;
                }
                VerdictUpdate::Keep => {}
            }
            tx.commit().await?;
        });
        row.into_host()
    }

    /// The host with this name.
    pub async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        const SQL: &str = concat!("SELECT ", host_columns!(), " FROM hosts WHERE name = $1");
        let row: Option<HostRow> = with_pool!(self, |p| sqlx::query_as(SQL)
            .bind(name)
            .fetch_optional(p)
            .await)?;
        row.map(HostRow::into_host).transpose()
    }

    /// The host with this id.
    pub async fn host_by_id(&self, id: Uuid) -> Result<Option<Host>> {
        const SQL: &str = concat!("SELECT ", host_columns!(), " FROM hosts WHERE id = $1");
        let row: Option<HostRow> = with_pool!(self, |p| sqlx::query_as(SQL)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(HostRow::into_host).transpose()
    }

    /// The host (removed ones included: their tombstone keeps the EK) whose EK has this TPM
    /// name.
    pub async fn host_by_ek_name(&self, ek_name: &[u8]) -> Result<Option<Host>> {
        const SQL: &str = concat!("SELECT ", host_columns!(), " FROM hosts WHERE ek_name = $1");
        let row: Option<HostRow> = with_pool!(self, |p| sqlx::query_as(SQL)
            .bind(ek_name)
            .fetch_optional(p)
            .await)?;
        row.map(HostRow::into_host).transpose()
    }

    /// Ids and EK public areas of hosts written before EK names were recorded.
    pub async fn hosts_without_ek_name(&self) -> Result<Vec<(Uuid, Vec<u8>)>> {
        Ok(with_pool!(self, |p| sqlx::query_as(
            "SELECT id, ek_public FROM hosts WHERE ek_name IS NULL"
        )
        .fetch_all(p)
        .await)?)
    }

    /// Record a host's EK name (only where none is recorded yet).
    pub async fn set_ek_name(&self, id: Uuid, ek_name: &[u8]) -> Result<()> {
        let done = with_pool!(self, |p| sqlx::query(
            "UPDATE hosts SET ek_name = $2 WHERE id = $1 AND ek_name IS NULL"
        )
        .bind(id)
        .bind(ek_name)
        .execute(p)
        .await
        .map(|_| ()));
        done.map_err(|e| {
            if unique_violation(&e) {
                StoreError::Duplicate("EK")
            } else {
                e.into()
            }
        })
    }

    /// All hosts by name; removed ones only if asked.
    pub async fn list_hosts(&self, include_removed: bool) -> Result<Vec<Host>> {
        const SQL: &str = concat!(
            "SELECT ",
            host_columns!(),
            " FROM hosts WHERE status <> 'removed' OR $1 ORDER BY name"
        );
        let rows: Vec<HostRow> = with_pool!(self, |p| sqlx::query_as(SQL)
            .bind(include_removed)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(HostRow::into_host).collect()
    }

    /// Claim a due host for one challenge: if it is approved, not removed, and
    /// `next_due <= now`, move `next_due` to `lease_until` and return true. One `UPDATE`, so
    /// among replicas (and concurrent requests) exactly one claim succeeds.
    pub async fn claim_due(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let affected = with_pool!(self, |p| sqlx::query(
            "UPDATE hosts SET next_due = $3, version = version + 1 WHERE id = $1 \
             AND next_due <= $2 AND approved_at IS NOT NULL AND status <> 'removed'"
        )
        .bind(id)
        .bind(ts(now))
        .bind(ts(lease_until))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// Make a host due at `at` (an operator's "attest now").
    pub async fn set_due(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let affected = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE hosts SET next_due = $2, updated_at = $2, version = version + 1 WHERE id = $1"
        )
        .bind(id)
        .bind(ts(at))
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(affected == 1)
    }

    /// Trusted hosts whose `stale_after` has passed become unreachable with `reason`.
    /// Returns their names.
    pub async fn mark_stale_unreachable(
        &self,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<String>> {
        let reasons = Json(vec![reason.to_owned()]);
        let names: Vec<(String,)> = with_pool!(self, |p| sqlx::query_as(
            "UPDATE hosts SET status = 'unreachable', reasons = $2, updated_at = $1, \
             version = version + 1 WHERE status = 'trusted' AND stale_after IS NOT NULL \
             AND stale_after < $1 RETURNING name"
        )
        .bind(ts(now))
        .bind(&reasons)
        .fetch_all(p)
        .await)?;
        Ok(names.into_iter().map(|(n,)| n).collect())
    }

    /// Every trusted host becomes unreachable with `reason` and due now: used when a
    /// verifier starts, so no host is shown trusted on stored state alone.
    pub async fn demote_trusted(&self, now: DateTime<Utc>, reason: &str) -> Result<u64> {
        let reasons = Json(vec![reason.to_owned()]);
        Ok(with_pool!(self, |p| sqlx::query(
            "UPDATE hosts SET status = 'unreachable', reasons = $2, next_due = $1, \
             updated_at = $1, version = version + 1 WHERE status = 'trusted'"
        )
        .bind(ts(now))
        .bind(&reasons)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Number of hosts per status as of now (every status, zero included; a trusted host past
    /// its freshness limit counts as unreachable).
    pub async fn count_by_status(&self) -> Result<Vec<(HostStatus, i64)>> {
        const SQL: &str = concat!(
            "SELECT s, COUNT(*) FROM (SELECT ",
            effective_status!(),
            " AS s FROM hosts h) e GROUP BY s"
        );
        let rows: Vec<(String, i64)> = with_pool!(self, |p| sqlx::query_as(SQL)
            .bind(ts(Utc::now()))
            .fetch_all(p)
            .await)?;
        let mut out: Vec<(HostStatus, i64)> = HostStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for (status, n) in rows {
            let status = status_from(&status)?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = n;
            }
        }
        Ok(out)
    }

    // ---- nonces ----

    /// Record a nonce issued to a host. The nonce is a primary key: issuing the same bytes
    /// twice fails with [`StoreError::Duplicate`].
    pub async fn issue_nonce(
        &self,
        host_id: Uuid,
        nonce: &[u8],
        want_event_log: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let done = with_pool!(self, |p| sqlx::query(
            "INSERT INTO nonces (nonce, host_id, want_event_log, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(nonce)
        .bind(host_id)
        .bind(want_event_log)
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(p)
        .await
        .map(|_| ()));
        done.map_err(|e| {
            if unique_violation(&e) {
                StoreError::Duplicate("nonce")
            } else {
                e.into()
            }
        })
    }

    /// Consume a nonce: one atomic delete of (nonce, host). Unknown, used, another host's, and
    /// expired nonces are refused; a found nonce is gone afterwards whatever its verdict.
    pub async fn consume_nonce(
        &self,
        host_id: Uuid,
        nonce: &[u8],
        now: DateTime<Utc>,
    ) -> Result<NonceCheck> {
        let row: Option<(DateTime<Utc>, bool)> = with_pool!(self, |p| sqlx::query_as(
            "DELETE FROM nonces WHERE nonce = $1 AND host_id = $2 \
             RETURNING expires_at, want_event_log"
        )
        .bind(nonce)
        .bind(host_id)
        .fetch_optional(p)
        .await)?;
        Ok(match row {
            None => NonceCheck::Unknown,
            Some((expires_at, _)) if expires_at <= now => NonceCheck::Expired,
            Some((_, want_event_log)) => NonceCheck::Valid { want_event_log },
        })
    }

    /// Delete expired nonces and enrolments; returns how many rows went.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        with_pool!(self, |p| {
            let a = sqlx::query("DELETE FROM nonces WHERE expires_at <= $1")
                .bind(ts(now))
                .execute(p)
                .await?
                .rows_affected();
            let b = sqlx::query("DELETE FROM enrolments WHERE expires_at <= $1")
                .bind(ts(now))
                .execute(p)
                .await?
                .rows_affected();
            Ok(a.saturating_add(b))
        })
    }

    // ---- enrolments and EK overrides ----

    /// Record a pending credential challenge.
    pub async fn insert_enrolment(&self, e: &Enrolment) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO enrolments (id, host_name, secret_sha256, expires_at, ek_public, \
             ek_cert, ek_chain_ok, ek_override_by, ak_public, ak_name, tpm_manufacturer, \
             tpm_model, labels, created_at, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        )
        .bind(e.id)
        .bind(&e.host_name)
        .bind(e.secret_sha256.as_slice())
        .bind(ts(e.expires_at))
        .bind(&e.ek_public)
        .bind(&e.ek_cert)
        .bind(e.ek_chain_ok)
        .bind(&e.ek_override_by)
        .bind(&e.ak_public)
        .bind(&e.ak_name)
        .bind(&e.tpm_manufacturer)
        .bind(&e.tpm_model)
        .bind(Json(&e.labels))
        .bind(ts(e.created_at))
        .bind(&e.source)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Record a pending credential challenge only if its source holds fewer than `cap`
    /// unexpired ones at `now`; false (nothing written) otherwise. The count and the insert
    /// are one step: one statement under SQLite's single writer, and a per-source advisory
    /// lock for the transaction on PostgreSQL, so concurrent enrolments cannot all slip
    /// under the cap.
    pub async fn insert_enrolment_capped(
        &self,
        e: &Enrolment,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        const SQL: &str = "INSERT INTO enrolments (id, host_name, secret_sha256, expires_at, \
             ek_public, ek_cert, ek_chain_ok, ek_override_by, ak_public, ak_name, \
             tpm_manufacturer, tpm_model, labels, created_at, source) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
             WHERE (SELECT COUNT(*) FROM enrolments WHERE source = $15 AND expires_at > $16) < $17";
        macro_rules! insert {
            ($exec:expr) => {
                sqlx::query(SQL)
                    .bind(e.id)
                    .bind(&e.host_name)
                    .bind(e.secret_sha256.as_slice())
                    .bind(ts(e.expires_at))
                    .bind(&e.ek_public)
                    .bind(&e.ek_cert)
                    .bind(e.ek_chain_ok)
                    .bind(&e.ek_override_by)
                    .bind(&e.ak_public)
                    .bind(&e.ak_name)
                    .bind(&e.tpm_manufacturer)
                    .bind(&e.tpm_model)
                    .bind(Json(&e.labels))
                    .bind(ts(e.created_at))
                    .bind(&e.source)
                    .bind(ts(now))
                    .bind(i64::from(cap))
                    .execute($exec)
                    .await?
                    .rows_affected()
            };
        }
        let affected = match &self.backend {
            Backend::Sqlite(p) => insert!(p),
            Backend::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(&e.source)
                    .execute(&mut *tx)
                    .await?;
                let n = insert!(&mut *tx);
                tx.commit().await?;
                n
            }
        };
        Ok(affected == 1)
    }

    /// Take (delete and return) an enrolment: each one can be activated at most once, right
    /// or wrong. The caller checks the secret hash and the expiry.
    pub async fn take_enrolment(&self, id: Uuid) -> Result<Option<Enrolment>> {
        let row: Option<EnrolmentRow> = with_pool!(self, |p| sqlx::query_as(
            "DELETE FROM enrolments WHERE id = $1 RETURNING id, host_name, secret_sha256, \
             expires_at, ek_public, ek_cert, ek_chain_ok, ek_override_by, ak_public, ak_name, \
             tpm_manufacturer, tpm_model, labels, created_at, source"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.map(EnrolmentRow::into_enrolment).transpose()
    }

    /// Allow (or re-allow) one EK to enrol under a host name without a valid EK chain, until
    /// the override expires.
    pub async fn set_ek_override(&self, o: &EkOverride) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO ek_overrides (host_name, actor, reason, created_at, ek_name, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host_name) DO UPDATE SET \
             actor = excluded.actor, reason = excluded.reason, created_at = excluded.created_at, \
             ek_name = excluded.ek_name, expires_at = excluded.expires_at"
        )
        .bind(&o.host_name)
        .bind(&o.actor)
        .bind(&o.reason)
        .bind(ts(o.created_at))
        .bind(&o.ek_name)
        .bind(o.expires_at.map(ts))
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The EK override for a host name, if any (expired ones too: [`EkOverride::allows`]
    /// decides).
    pub async fn ek_override(&self, host_name: &str) -> Result<Option<EkOverride>> {
        type Row = (
            String,
            String,
            String,
            DateTime<Utc>,
            Option<Vec<u8>>,
            Option<DateTime<Utc>>,
        );
        let row: Option<Row> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT host_name, actor, reason, created_at, ek_name, expires_at \
                 FROM ek_overrides WHERE host_name = $1",
            )
            .bind(host_name)
            .fetch_optional(p)
            .await
        })?;
        Ok(row.map(
            |(host_name, actor, reason, created_at, ek_name, expires_at)| EkOverride {
                host_name,
                ek_name,
                actor,
                reason,
                created_at,
                expires_at,
            },
        ))
    }

    /// Pending enrolments from `source` that have not expired.
    pub async fn pending_enrolments_from(&self, source: &str, now: DateTime<Utc>) -> Result<i64> {
        let (n,): (i64,) = with_pool!(self, |p| sqlx::query_as(
            "SELECT COUNT(*) FROM enrolments WHERE source = $1 AND expires_at > $2"
        )
        .bind(source)
        .bind(ts(now))
        .fetch_one(p)
        .await)?;
        Ok(n)
    }

    /// Pending enrolments that have not expired, newest first (at most `limit`).
    pub async fn pending_enrolments(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Enrolment>> {
        let rows: Vec<EnrolmentRow> = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, host_name, secret_sha256, expires_at, ek_public, ek_cert, ek_chain_ok, \
             ek_override_by, ak_public, ak_name, tpm_manufacturer, tpm_model, labels, created_at, \
             source FROM enrolments WHERE expires_at > $1 ORDER BY created_at DESC LIMIT $2"
        )
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(EnrolmentRow::into_enrolment).collect()
    }

    // ---- refusals ----

    /// Record a refused enrolment or rejected evidence, keeping the newest `keep` overall.
    pub async fn record_refusal(&self, r: &Refusal, keep: u32) -> Result<()> {
        with_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO refusals (at, host_name, kind, reason, peer) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ts(r.at))
            .bind(&r.host_name)
            .bind(&r.kind)
            .bind(&r.reason)
            .bind(&r.peer)
            .execute(p)
            .await?;
            sqlx::query(
                "DELETE FROM refusals WHERE id NOT IN \
                 (SELECT id FROM refusals ORDER BY id DESC LIMIT $1)",
            )
            .bind(i64::from(keep))
            .execute(p)
            .await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// The newest refusals, newest first (at most `limit`).
    pub async fn refusals(&self, limit: u32) -> Result<Vec<Refusal>> {
        let rows: Vec<(DateTime<Utc>, String, String, String, String)> =
            with_pool!(self, |p| sqlx::query_as(
                "SELECT at, host_name, kind, reason, peer FROM refusals ORDER BY id DESC LIMIT $1"
            )
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(at, host_name, kind, reason, peer)| Refusal {
                at,
                host_name,
                kind,
                reason,
                peer,
            })
            .collect())
    }

    // ---- readiness ----

    /// Prove the store takes writes: upsert this replica's heartbeat row.
    pub async fn heartbeat(&self, replica: &str, now: DateTime<Utc>) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO replica_heartbeats (replica, at) VALUES ($1, $2) \
             ON CONFLICT (replica) DO UPDATE SET at = excluded.at"
        )
        .bind(replica)
        .bind(ts(now))
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    // ---- history ----

    /// A host's attestations, newest first, at most `limit`.
    pub async fn history(&self, host_id: Uuid, limit: u32) -> Result<Vec<Attestation>> {
        let rows: Vec<AttestationRow> = with_pool!(self, |p| sqlx::query_as(
            "SELECT host_id, at, status, reasons, reset_count, restart_count, clock, pcrs \
             FROM attestations WHERE host_id = $1 ORDER BY id DESC LIMIT $2"
        )
        .bind(host_id)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(Attestation {
                    host_id: r.host_id,
                    at: r.at,
                    status: status_from(&r.status)?,
                    reasons: r.reasons.0,
                    counters: counters_from_row(r.reset_count, r.restart_count, r.clock)?,
                    pcrs: r.pcrs.map(|j| j.0),
                })
            })
            .collect()
    }

    // ---- audit ----

    /// Append to the audit log.
    pub async fn audit(&self, e: &AuditEntry) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(ts(e.at))
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(Json(&e.detail))
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = with_pool!(self, |p| sqlx::query_as(
            "SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1"
        )
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                at: r.at,
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail.0,
            })
            .collect())
    }

    // ---- API tokens ----

    /// Store an API token by its SHA-256 (see [`sha256`]). Names are unique
    /// ([`StoreError::Duplicate`]).
    pub async fn add_token(&self, token: &ApiToken, token_sha256: &[u8; 32]) -> Result<Uuid> {
        let id = Uuid::new_v4();
        let done = with_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO admin_tokens (id, name, token_sha256, created_at, role, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(&token.name)
            .bind(token_sha256.as_slice())
            .bind(ts(token.created_at))
            .bind(token.role.as_str())
            .bind(token.expires_at.map(ts))
            .execute(p)
            .await
            .map(|_| ())
        });
        done.map_err(|e| {
            if unique_violation(&e) {
                StoreError::Duplicate("token")
            } else {
                e.into()
            }
        })?;
        Ok(id)
    }

    /// Store an admin token by its SHA-256 (see [`sha256`]).
    pub async fn add_admin_token(
        &self,
        name: &str,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        self.add_token(
            &ApiToken {
                name: name.to_owned(),
                role: Role::Admin,
                created_at: now,
                expires_at: None,
            },
            token_sha256,
        )
        .await
    }

    /// The token with this SHA-256, if one exists (expired ones too: the caller decides).
    pub async fn token(&self, token_sha256: &[u8; 32]) -> Result<Option<ApiToken>> {
        type Row = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);
        let row: Option<Row> = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT name, role, created_at, expires_at FROM admin_tokens WHERE token_sha256 = $1"
        )
        .bind(token_sha256.as_slice())
        .fetch_optional(p)
        .await
        })?;
        row.map(token_from_row).transpose()
    }

    /// Every token, by name.
    pub async fn tokens(&self) -> Result<Vec<ApiToken>> {
        type Row = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);
        let rows: Vec<Row> = with_pool!(self, |p| sqlx::query_as(
            "SELECT name, role, created_at, expires_at FROM admin_tokens ORDER BY name"
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(token_from_row).collect()
    }

    /// Delete the token named `name`; false when there is none.
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "DELETE FROM admin_tokens WHERE name = $1"
        )
        .bind(name)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The name of the admin token with this SHA-256, if one exists.
    pub async fn admin_token_name(&self, token_sha256: &[u8; 32]) -> Result<Option<String>> {
        Ok(self.token(token_sha256).await?.map(|t| t.name))
    }

    /// How many admin tokens exist.
    pub async fn admin_token_count(&self) -> Result<i64> {
        let (n,): (i64,) = with_pool!(self, |p| sqlx::query_as(
            "SELECT COUNT(*) FROM admin_tokens WHERE role = 'admin'"
        )
        .fetch_one(p)
        .await)?;
        Ok(n)
    }

    // ---- IMA ----

    /// Store an IMA runtime policy by content: the same `sha256` returns the existing id
    /// (stored once, however many hosts use it).
    pub async fn put_ima_policy(
        &self,
        sha256: &[u8; 32],
        policy: &serde_json::Value,
        paths: u64,
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let paths = i64::try_from(paths)
            .map_err(|_| StoreError::Corrupt(format!("policy path count {paths}")))?;
        let id = Uuid::new_v4();
        let (found,): (Uuid,) = with_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO ima_policies (id, sha256, policy, paths, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(id)
            .bind(sha256.as_slice())
            .bind(Json(policy))
            .bind(paths)
            .bind(ts(now))
            .execute(p)
            .await?;
            sqlx::query_as("SELECT id FROM ima_policies WHERE sha256 = $1")
                .bind(sha256.as_slice())
                .fetch_one(p)
                .await
        })?;
        Ok(found)
    }

    /// A stored IMA runtime policy.
    pub async fn ima_policy(&self, id: Uuid) -> Result<Option<ImaPolicy>> {
        type Row = (Uuid, Vec<u8>, Json<serde_json::Value>, i64, DateTime<Utc>);
        let row: Option<Row> = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, sha256, policy, paths, created_at FROM ima_policies WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.map(|(id, sha, policy, paths, created_at)| {
            Ok(ImaPolicy {
                id,
                sha256: <[u8; 32]>::try_from(sha.as_slice())
                    .map_err(|_| StoreError::Corrupt("IMA policy hash".into()))?,
                policy: policy.0,
                paths: u64::try_from(paths)
                    .map_err(|_| StoreError::Corrupt(format!("IMA policy paths {paths}")))?,
                created_at,
            })
        })
        .transpose()
    }

    /// Set (or clear) a host's IMA runtime policy. False when the host does not exist.
    pub async fn set_host_ima_policy(&self, host_id: Uuid, policy: Option<Uuid>) -> Result<bool> {
        let affected = with_pool!(self, |p| sqlx::query(
            "UPDATE hosts SET ima_policy_id = $2 WHERE id = $1"
        )
        .bind(host_id)
        .bind(policy)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// A host's IMA policy reference and running state, in one query.
    pub async fn ima_context(&self, host_id: Uuid) -> Result<ImaContext> {
        let row: Option<ImaContextRow> = with_pool!(self, |p| sqlx::query_as(
            "SELECT h.ima_policy_id, p.sha256 AS policy_hash, s.host_id, s.reset_count, \
             s.entry_count, s.template_hash_alg, s.convention, s.pcr10, s.boot_aggregate_ok, \
             s.policy_sha256, s.failure, s.updated_at FROM hosts h \
             LEFT JOIN ima_policies p ON p.id = h.ima_policy_id \
             LEFT JOIN ima_state s ON s.host_id = h.id WHERE h.id = $1"
        )
        .bind(host_id)
        .fetch_optional(p)
        .await)?;
        row.map_or_else(|| Ok(ImaContext::default()), ImaContextRow::into_context)
    }

    // ---- Fleet appraisal ----

    /// Store version `version` of document `(kind, id)`. False (nothing written) when that
    /// version already exists: versions are never overwritten.
    pub async fn put_appraisal_document(
        &self,
        kind: &str,
        id: &str,
        version: u32,
        json: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let affected = with_pool!(self, |p| sqlx::query(
            "INSERT INTO appraisal_documents (kind, id, version, json, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, id, version) DO NOTHING"
        )
        .bind(kind)
        .bind(id)
        .bind(i64::from(version))
        .bind(Json(json))
        .bind(ts(now))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(affected == 1)
    }

    /// The newest version of every document of `kind`, by id.
    pub async fn latest_appraisal_documents(&self, kind: &str) -> Result<Vec<AppraisalDocument>> {
        type Row = (String, i64, Json<serde_json::Value>, DateTime<Utc>);
        let rows: Vec<Row> = with_pool!(self, |p| sqlx::query_as(
            "SELECT d.id, d.version, d.json, d.created_at FROM appraisal_documents d \
             WHERE d.kind = $1 AND d.version = (SELECT MAX(e.version) FROM appraisal_documents e \
             WHERE e.kind = d.kind AND e.id = d.id) ORDER BY d.id"
        )
        .bind(kind)
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(id, version, json, created_at)| {
                Ok(AppraisalDocument {
                    kind: kind.to_owned(),
                    id,
                    version: u32::try_from(version).map_err(|_| {
                        StoreError::Corrupt(format!("appraisal document version {version}"))
                    })?,
                    json: json.0,
                    created_at,
                })
            })
            .collect()
    }

    /// One version of a document.
    pub async fn appraisal_document(
        &self,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<(Json<serde_json::Value>,)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT json FROM appraisal_documents WHERE kind = $1 AND id = $2 AND version = $3"
        )
        .bind(kind)
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(j,)| j.0))
    }

    /// Record the latest engine verdict (JSON) of a host, replacing the previous one.
    pub async fn put_host_verdict(
        &self,
        host_id: Uuid,
        verdict: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        with_pool!(self, |p| sqlx::query(UPSERT_HOST_VERDICT)
            .bind(host_id)
            .bind(Json(verdict))
            .bind(ts(now))
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The latest engine verdict of a host and when it was recorded.
    pub async fn host_verdict(
        &self,
        host_id: Uuid,
    ) -> Result<Option<(serde_json::Value, DateTime<Utc>)>> {
        let row: Option<(Json<serde_json::Value>, DateTime<Utc>)> =
            with_pool!(self, |p| sqlx::query_as(
                "SELECT verdict, updated_at FROM host_verdicts WHERE host_id = $1"
            )
            .bind(host_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(v, t)| (v.0, t)))
    }

    /// Forget a host's engine verdict (its latest attestation had none).
    pub async fn clear_host_verdict(&self, host_id: Uuid) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "DELETE FROM host_verdicts WHERE host_id = $1"
        )
        .bind(host_id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Store several document versions in one transaction (a campaign step and the reference
    /// store it changes). False, and nothing written, when any of them already exists.
    pub async fn put_appraisal_documents(
        &self,
        docs: &[NewDocument<'_>],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for d in docs {
                let affected = sqlx::query(
                    "INSERT INTO appraisal_documents (kind, id, version, json, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, id, version) DO NOTHING",
                )
                .bind(d.kind)
                .bind(d.id)
                .bind(i64::from(d.version))
                .bind(Json(d.json))
                .bind(ts(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if affected != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// `(kind, id, newest version)` of every stored document, sorted: a cheap key telling a
    /// cache whether any document changed.
    pub async fn appraisal_document_versions(&self) -> Result<Vec<(String, String, u32)>> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT kind, id, MAX(version) FROM appraisal_documents GROUP BY kind, id \
             ORDER BY kind, id"
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(kind, id, v)| {
                let v = u32::try_from(v)
                    .map_err(|_| StoreError::Corrupt(format!("appraisal document version {v}")))?;
                Ok((kind, id, v))
            })
            .collect()
    }

    /// Every host that is not removed, with its latest claims and engine verdict: the input of
    /// learning from a cohort, rollout status, revocation impact and triage.
    pub async fn fleet_snapshot(&self) -> Result<Vec<FleetEntry>> {
        type Row = (
            Uuid,
            String,
            String,
            Option<DateTime<Utc>>,
            Json<Vec<String>>,
            Json<Labels>,
            Option<Json<serde_json::Value>>,
            Option<Json<serde_json::Value>>,
        );
        let rows: Vec<Row> = with_pool!(self, |p| sqlx::query_as(
            "SELECT h.id, h.name, h.status, h.stale_after, h.reasons, h.labels, c.claims, \
             v.verdict FROM hosts h LEFT JOIN host_claims c ON c.host_id = h.id \
             LEFT JOIN host_verdicts v ON v.host_id = h.id \
             WHERE h.status <> 'removed' ORDER BY h.name"
        )
        .fetch_all(p)
        .await)?;
        let now = Utc::now();
        rows.into_iter()
            .map(
                |(host_id, name, status, stale_after, reasons, labels, claims, verdict)| {
                    let (status, reasons) =
                        model::fresh_status(status_from(&status)?, stale_after, reasons.0, now);
                    Ok(FleetEntry {
                        host_id,
                        name,
                        status,
                        reasons,
                        labels: labels.0,
                        claims: claims.map(|c| c.0),
                        verdict: verdict.map(|v| v.0),
                    })
                },
            )
            .collect()
    }

    /// The latest claims of a host and when they were derived.
    pub async fn host_claims(
        &self,
        host_id: Uuid,
    ) -> Result<Option<(serde_json::Value, DateTime<Utc>)>> {
        let row: Option<(Json<serde_json::Value>, DateTime<Utc>)> =
            with_pool!(self, |p| sqlx::query_as(
                "SELECT claims, updated_at FROM host_claims WHERE host_id = $1"
            )
            .bind(host_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(c, t)| (c.0, t)))
    }
}
