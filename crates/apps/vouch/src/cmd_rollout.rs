//! `vouch rollout create|start|advance|complete|abort|status|list`: update campaigns in a
//! running verifier (issue 4). A campaign makes a new release a candidate for a cohort, admitted
//! in waves (canaries first); `status` shows how many of the cohort's hosts measure the old
//! release, the new one, or neither. Connection settings as for `vouch hosts`.

use std::process::ExitCode;

use clap::Subcommand;
use vouch_api::fleet::{RolloutAction, RolloutRequest, RolloutView};

use crate::conn::{Conn, block_on};

/// Arguments of `vouch rollout`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Plan a campaign moving a cohort from one release to another.
    Create {
        /// Campaign id.
        id: String,
        /// Cohort (`cohort=r750`).
        #[arg(long)]
        selector: String,
        /// Component updated (`platform_firmware`, `boot_chain`, ...).
        #[arg(long)]
        component: String,
        /// Release the hosts move from.
        #[arg(long)]
        from: String,
        /// Release the hosts move to.
        #[arg(long)]
        to: String,
        /// Waves in percent, increasing, ending at 100.
        #[arg(long, value_delimiter = ',', default_value = "1,20,100")]
        waves: Vec<u8>,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Admit the first wave.
    Start {
        /// Campaign id.
        id: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Admit the next wave.
    Advance {
        /// Campaign id.
        id: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// After the last wave: the new release becomes active, the old one deprecated.
    Complete {
        /// Campaign id.
        id: String,
        /// The old release stays accepted until (RFC 3339; default 30 days from now).
        #[arg(long)]
        deprecate_until: Option<String>,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Stop: the new release is accepted nowhere it was not already active.
    Abort {
        /// Campaign id.
        id: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// How many hosts are on the old release, the new one, and neither.
    Status {
        /// Campaign id.
        id: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Every campaign (JSON array with --json).
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn print(v: &RolloutView) {
    let wave = v
        .wave
        .map(|w| format!(" wave {w}/{}", v.waves.len()))
        .unwrap_or_default();
    println!(
        "{}: {} {} -> {} on {} [{}{wave}, {}% admitted]",
        v.id, v.component, v.from, v.to, v.selector, v.state, v.admitted_percent
    );
    println!(
        "  {} host(s): {} old, {} new, {} unknown",
        v.hosts, v.old, v.new, v.unknown
    );
    if !v.unknown_hosts.is_empty() {
        println!("  unknown: {}", v.unknown_hosts.join(", "));
    }
}

fn show(v: &RolloutView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(v)?);
    } else {
        print(v);
    }
    Ok(())
}

/// Run `vouch rollout ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    block_on(async move {
        let none = RolloutAction::default();
        match args.command {
            Cmd::Create {
                id,
                selector,
                component,
                from,
                to,
                waves,
                json,
            } => {
                let req = RolloutRequest {
                    selector,
                    component,
                    from,
                    to,
                    waves,
                    salt: None,
                };
                show(&client.create_rollout(&id, &req).await?, json)?;
            }
            Cmd::Start { id, json } => {
                show(&client.rollout_action(&id, "start", &none).await?, json)?;
            }
            Cmd::Advance { id, json } => {
                show(&client.rollout_action(&id, "advance", &none).await?, json)?;
            }
            Cmd::Complete {
                id,
                deprecate_until,
                json,
            } => {
                let req = RolloutAction { deprecate_until };
                show(&client.rollout_action(&id, "complete", &req).await?, json)?;
            }
            Cmd::Abort { id, json } => {
                show(&client.rollout_action(&id, "abort", &none).await?, json)?;
            }
            Cmd::Status { id, json } => show(&client.rollout(&id).await?, json)?,
            Cmd::List { json } => {
                let all = client.rollouts().await?;
                if json {
                    println!("{}", serde_json::to_string(&all)?);
                } else {
                    for v in &all {
                        print(v);
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
