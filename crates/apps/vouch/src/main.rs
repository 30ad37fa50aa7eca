//! `vouch`: the one binary. Wiring only: every decision lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_agent;
mod cmd_credential;
mod cmd_demo;
mod cmd_ekcert;
mod cmd_eventlog;
mod cmd_firmware;
mod cmd_fleet;
mod cmd_fleet_ima;
mod cmd_hosts;
mod cmd_ima;
mod cmd_keys;
mod cmd_loadgen;
mod cmd_quote;
mod cmd_refs;
mod cmd_rollout;
mod cmd_serve;
mod cmd_tokens;
mod conn;
mod keyfile;
mod logging;

/// Vouch: prove, continuously and at fleet scale, that hosts were not tampered with below the OS.
#[derive(Debug, Parser)]
#[command(name = "vouch", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the verifier service (HTTPS API, enrolment, attestation loop).
    Serve(cmd_serve::Args),
    /// Run the host agent: enrol this TPM and answer attestation challenges.
    Agent(cmd_agent::Args),
    /// Operator commands: list, show, approve, attest, remove hosts.
    Hosts(cmd_hosts::Args),
    /// A verifier on SQLite and a simulated fleet; two hosts are tampered with and caught.
    Demo(cmd_demo::Args),
    /// Fleet reference values: `simulate` runs the scripted rollout/revocation/tamper timeline;
    /// `ima-triage` reads binaries unknown to the IMA policy per cohort (update or tampering).
    Fleet(cmd_fleet::Args),
    /// Fleet reference values in a running verifier: list, learn (from a host or a cohort),
    /// revoke, deprecate, activate, import.
    Refs(cmd_refs::Args),
    /// Fleet appraisal policies in a running verifier: put, list.
    Policy(cmd_refs::PolicyArgs),
    /// Update campaigns: create, start, advance, complete, abort, status, list.
    Rollout(cmd_rollout::Args),
    /// The verifier's signing keys: rotate the EAR key.
    Keys(cmd_keys::Args),
    /// API tokens with roles (admin, operator, reader): create, list, revoke.
    Tokens(cmd_tokens::Args),
    /// Load-test a running verifier with simulated hosts over HTTPS.
    Loadgen(cmd_loadgen::Args),
    /// Read, replay and summarise TCG PC Client (UEFI measured boot) event logs.
    Eventlog(cmd_eventlog::Args),
    /// Replay and appraise Linux IMA runtime measurement lists; build runtime policies.
    Ima(cmd_ima::Args),
    /// UEFI firmware images: their volumes and the digests a measured boot records; catalogue
    /// builds so machine states name the firmware a log booted.
    Firmware(cmd_firmware::Args),
    /// Verify TPM 2.0 quotes.
    Quote(cmd_quote::Args),
    /// Parse and validate TPM endorsement key certificates.
    Ekcert(cmd_ekcert::Args),
    /// Credential activation, verifier side (TPM2_MakeCredential without a TPM).
    Credential(cmd_credential::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd_serve::run(args),
        Command::Agent(args) => cmd_agent::run(args),
        Command::Hosts(args) => cmd_hosts::run(args),
        Command::Demo(args) => cmd_demo::run(args),
        Command::Fleet(args) => cmd_fleet::run(args),
        Command::Loadgen(args) => cmd_loadgen::run(args),
        Command::Refs(args) => cmd_refs::run(args),
        Command::Policy(args) => cmd_refs::run_policy(args),
        Command::Rollout(args) => cmd_rollout::run(args),
        Command::Keys(args) => cmd_keys::run(args),
        Command::Tokens(args) => cmd_tokens::run(args),
        Command::Eventlog(args) => cmd_eventlog::run(args),
        Command::Ima(args) => cmd_ima::run(args),
        Command::Firmware(args) => cmd_firmware::run(args),
        Command::Quote(args) => cmd_quote::run(args),
        Command::Ekcert(args) => cmd_ekcert::run(args),
        Command::Credential(args) => cmd_credential::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One line: the reason chain joined, so scripts can read it.
            eprintln!("vouch: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
