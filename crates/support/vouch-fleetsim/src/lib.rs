//! Simulated fleets through a scripted timeline, appraised by [`vouch_appraisal`].
//!
//! Hosts are [`vouch_sim::SimTpm`]s booted from real firmware event logs (three cohorts from
//! `testdata/eventlogs`); every appraisal is a real TPM2_Quote over a fresh nonce, verified with
//! [`vouch_tpm2::verify_quote`], the log replayed and compared with the quote, claims derived
//! and appraised. Updates and tampering are consistent edits of those real logs
//! ([`logedit`]). See [`run`] for the timeline.
//!
//! # Trust assumptions
//!
//! None: this is a test and demo harness. Keys come from a small shared [`vouch_sim::KeyPool`]
//! (hosts share RSA keys to make thousands of TPMs cheap); that changes nothing in the
//! appraisal path, which is the production one.

pub mod logedit;
mod timeline;

pub use timeline::{Report, SimConfig, Summary, run};

/// Everything that can go wrong in a simulation.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The simulated TPM failed.
    #[error(transparent)]
    Sim(#[from] vouch_sim::SimError),
    /// A log did not frame or replay.
    #[error(transparent)]
    Log(#[from] vouch_tcglog::TcgLogError),
    /// A log edit could not be made.
    #[error("log edit: {0}")]
    Edit(&'static str),
    /// A quote did not verify (a bug in the simulator or the verifier).
    #[error("quote: {0}")]
    Quote(#[from] vouch_tpm2::QuoteError),
    /// Claims could not be derived.
    #[error(transparent)]
    Claims(#[from] vouch_appraisal::ClaimsError),
    /// A policy was refused.
    #[error(transparent)]
    Policy(#[from] vouch_appraisal::PolicyError),
    /// Reference values were refused.
    #[error(transparent)]
    Refs(#[from] vouch_appraisal::RefError),
    /// Learning was refused.
    #[error(transparent)]
    Learn(#[from] vouch_appraisal::LearnError),
    /// A campaign was refused.
    #[error(transparent)]
    Rollout(#[from] vouch_appraisal::RolloutError),
    /// A configuration the timeline cannot run.
    #[error("simulation: {0}")]
    Config(String),
}
