//! The shared swtpm harness (`vouch-testkit`), plus running the `vouch` binary under test in a
//! TPM's working directory.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::process::{Command, Output};

pub use vouch_testkit::swtpm::*;

/// Run the `vouch` binary under test in a TPM's working directory.
pub trait RunVouch {
    /// `vouch ARGS`, in the test directory.
    fn vouch(&self, args: &[&str]) -> Output;
}

impl RunVouch for Swtpm {
    fn vouch(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }
}
