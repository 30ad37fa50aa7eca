//! Shared service state, passed to every handler (no globals).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use vouch_store::{AuditEntry, Store};
use vouch_tpm2::PcrSelection;
use vouch_x509::RootStore;

use crate::config::ServeConfig;
use crate::pki::Pki;

/// Metric names.
pub mod metric {
    /// Counter, label `result`: trusted, untrusted, rejected.
    pub const ATTESTATIONS: &str = "vouch_attestations_total";
    /// Gauge, label `status`.
    pub const HOSTS: &str = "vouch_hosts";
    /// Histogram, seconds from evidence received to verdict stored.
    pub const DURATION: &str = "vouch_attestation_duration_seconds";
    /// Histogram, seconds of IMA appraisal (replay + template hashes + policy) per evidence.
    pub const IMA_DURATION: &str = "vouch_ima_appraisal_seconds";
    /// Counter: IMA entries appraised (new entries covered by a quote).
    pub const IMA_ENTRIES: &str = "vouch_ima_entries_total";
}

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub pki: Pki,
    pub roots: RootStore,
    pub config: ServeConfig,
    pub selection: PcrSelection,
    /// `selection` plus `sha256:10`, for hosts with IMA, and its tpm2-tools spelling.
    pub ima_selection: PcrSelection,
    pub ima_selection_spec: String,
    /// Compiled IMA runtime policies by SHA-256 (policies are few and shared by many hosts).
    pub ima_policies: std::sync::Mutex<
        std::collections::HashMap<[u8; 32], Arc<vouch_ima::policy::RuntimePolicy>>,
    >,
    pub recorder: PrometheusRecorder,
    pub prometheus: PrometheusHandle,
    /// Woken when an operator makes a host due (approve, attest, baseline).
    pub due: tokio::sync::Notify,
    /// Signs attestation results for relying parties ([`crate::ear`]); rotated by an admin.
    pub ear: std::sync::RwLock<vouch_ear::EarIssuer>,
    /// Known firmware builds (`--firmware-catalog`), named in machine states.
    pub firmware: Option<vouch_tcglog::FirmwareCatalog>,
    /// The fleet appraisal engine for the newest stored documents ([`crate::engine`]).
    pub engine: std::sync::Mutex<crate::engine::EngineCache>,
    /// `--auto-approve-roots`: auto-approval needs a chain to one of these.
    pub auto_approve_roots: Option<RootStore>,
    /// `--auto-approve-eks`: auto-approval needs one of these EK names.
    pub auto_approve_eks: Option<std::collections::HashSet<Vec<u8>>>,
    /// Token buckets for enrolment and operator routes.
    pub limits: crate::ratelimit::Limits,
    /// This process's id in the store (`replica_heartbeats`).
    pub replica_id: String,
}

impl core::fmt::Debug for AppState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.inner.store.backend_name())
            .finish_non_exhaustive()
    }
}

impl AppState {
    #[allow(
        clippy::too_many_arguments,
        reason = "the one constructor, wiring every shared service"
    )]
    pub(crate) fn new(
        store: Store,
        pki: Pki,
        roots: RootStore,
        config: ServeConfig,
        selection: PcrSelection,
        ima_selection: (PcrSelection, String),
        ear: vouch_ear::EarIssuer,
        firmware: Option<vouch_tcglog::FirmwareCatalog>,
        auto_approve: (
            Option<RootStore>,
            Option<std::collections::HashSet<Vec<u8>>>,
        ),
    ) -> Self {
        let limits = crate::ratelimit::Limits::new(config.enrol_rate, config.admin_rate);
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(metric::DURATION.to_owned()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(metric::IMA_DURATION.to_owned()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0,
                    ],
                )
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let prometheus = recorder.handle();
        Self {
            inner: Arc::new(Inner {
                store,
                pki,
                roots,
                config,
                selection,
                ima_selection: ima_selection.0,
                ima_selection_spec: ima_selection.1,
                ima_policies: std::sync::Mutex::default(),
                recorder,
                prometheus,
                due: tokio::sync::Notify::new(),
                ear: std::sync::RwLock::new(ear),
                engine: std::sync::Mutex::default(),
                firmware,
                auto_approve_roots: auto_approve.0,
                auto_approve_eks: auto_approve.1,
                limits,
                replica_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()),
            }),
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Record metrics into this service's own recorder (no process-global recorder).
    pub(crate) fn metrics<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.inner.recorder, f)
    }

    /// Append to the audit log.
    pub(crate) async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), vouch_store::StoreError> {
        tracing::info!(actor, action, target, "audit");
        self.inner
            .store
            .audit(&AuditEntry {
                at: now,
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: target.to_owned(),
                detail,
            })
            .await
    }
}
