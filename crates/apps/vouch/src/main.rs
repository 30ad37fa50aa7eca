//! `vouch`: the one binary. Wiring only: every decision lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_credential;
mod cmd_ekcert;
mod cmd_eventlog;
mod cmd_quote;
mod keyfile;

/// Vouch: prove, continuously and at fleet scale, that hosts were not tampered with below the OS.
#[derive(Debug, Parser)]
#[command(name = "vouch", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read, replay and summarise TCG PC Client (UEFI measured boot) event logs.
    Eventlog(cmd_eventlog::Args),
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
        Command::Eventlog(args) => cmd_eventlog::run(args),
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
