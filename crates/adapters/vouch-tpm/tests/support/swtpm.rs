//! The shared swtpm harness (`vouch-testkit`).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub use vouch_testkit::swtpm::*;
