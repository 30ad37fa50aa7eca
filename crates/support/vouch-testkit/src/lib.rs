//! Test support shared by Vouch's test suites (dev-dependency only, never in a shipped binary).
//!
//! [`swtpm`]: a real swtpm (libtpms) provisioned with EK certificates from a per-test local
//! CA, on free loopback ports, driven with tpm2-tools, killed when dropped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test harness: a failed step is a failed test, reported with its context"
)]

pub mod swtpm;
