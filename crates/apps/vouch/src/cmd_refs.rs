//! `vouch refs list|learn|revoke|deprecate|activate|import` and `vouch policy put|list|diff`: fleet
//! reference values and policies in a running verifier (issue 4). Connection settings as for
//! `vouch hosts` ([`crate::conn`]). `--json` prints the API's answer unchanged.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use vouch_api::fleet::{LearnRequest, LearnResponse, RefStateChanged, RefStateRequest};

use crate::conn::{Conn, block_on};

/// Arguments of `vouch refs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Releases in the reference store: state, components, hosts measuring them.
    List {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Propose reference values from a host or a cohort, show the diff; `--accept` stores them.
    Learn(LearnArgs),
    /// Revoke a release (known-vulnerable): every host measuring it is contraindicated at its
    /// next attestation. Prints how many hosts are affected.
    Revoke {
        /// Release name.
        name: String,
        /// The advisory (required).
        #[arg(long)]
        reason: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Deprecate a release: accepted until a date, then stragglers are flagged.
    Deprecate {
        /// Release name.
        name: String,
        /// Deadline (RFC 3339; default 30 days from now).
        #[arg(long)]
        until: Option<String>,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Make a release active.
    Activate {
        /// Release name.
        name: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Replace the reference store with a file (a `RefStore` JSON document).
    Import {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct LearnArgs {
    /// Release name for the new values (`bios-2.19`).
    #[arg(long)]
    name: String,
    /// Learn every value this host measures on the components.
    #[arg(
        long,
        conflicts_with = "from_cohort",
        required_unless_present = "from_cohort"
    )]
    from_host: Option<String>,
    /// Learn the values a quorum of these hosts agrees on (`cohort=r750`); shows the minority.
    #[arg(long)]
    from_cohort: Option<String>,
    /// Components (comma-separated): platform_firmware, firmware_config, option_roms,
    /// boot_chain, secure_boot, kernel.
    #[arg(long, value_delimiter = ',', required = true)]
    components: Vec<String>,
    /// Hosts the values apply to (default: the cohort; required with --from-host).
    #[arg(long)]
    selector: Option<String>,
    /// Percentage of the cohort that must agree.
    #[arg(long, default_value_t = 80)]
    quorum: u8,
    /// Store the proposal (otherwise only show it).
    #[arg(long)]
    accept: bool,
    /// Store the values as candidates of this rollout campaign instead of active.
    #[arg(long)]
    candidate_for: Option<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `vouch policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: PolicyCmd,
}

#[derive(Debug, Subcommand)]
enum PolicyCmd {
    /// Store a policy document (JSON: schema, id, version, selector, rules); versions are never
    /// overwritten.
    Put {
        /// The file.
        file: PathBuf,
    },
    /// The newest version of every policy (JSON array).
    List,
    /// What storing a policy file would change against the stored newest version of its id.
    Diff {
        /// The file.
        file: PathBuf,
    },
}

fn print_learn(r: &LearnResponse) {
    println!(
        "{} value(s) proposed for release {} from {} host(s)",
        r.proposed.len(),
        r.name,
        r.hosts
    );
    for line in &r.added {
        println!("  {line}");
    }
    if r.unchanged > 0 {
        println!("  ({} value(s) already stored)", r.unchanged);
    }
    for line in &r.not_in_proposal {
        println!("  {line}   (active, not in the proposal)");
    }
    if !r.minority.is_empty() {
        println!("minority (values the quorum did not agree on):");
        for m in &r.minority {
            let hosts = m
                .get("hosts")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len);
            println!(
                "  {} {} {} on {hosts} host(s){}",
                m.get("component")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?"),
                m.get("digest")
                    .and_then(serde_json::Value::as_str)
                    .map_or("?", |d| d.get(..16).unwrap_or(d)),
                m.get("detail")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(""),
                m.get("majority")
                    .and_then(serde_json::Value::as_str)
                    .map(|d| format!("; majority {}", d.get(..16).unwrap_or(d)))
                    .unwrap_or_default()
            );
        }
    }
    match r.version {
        Some(v) => println!("accepted: reference store version {v}"),
        None => println!("not stored (add --accept to store it)"),
    }
}

fn print_change(c: &RefStateChanged) {
    println!(
        "release {}: {} value(s) now {}; {} host(s) affected (reference store version {})",
        c.name, c.values, c.state, c.affected_hosts, c.version
    );
    for h in c.hosts.iter().take(20) {
        println!("  {h}");
    }
    if c.hosts.len() > 20 {
        println!("  ... and {} more", c.hosts.len().saturating_sub(20));
    }
}

fn policy_of(json: serde_json::Value) -> anyhow::Result<vouch_appraisal::Policy> {
    let doc: vouch_appraisal::PolicyDoc = serde_json::from_value(json)?;
    Ok(vouch_appraisal::Policy::new(doc)?)
}

fn read_json(file: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", file.display()))
}

/// Run `vouch refs ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    block_on(async move {
        match args.command {
            Cmd::List { json } => {
                let v = client.references().await?;
                if json {
                    println!("{}", serde_json::to_string(&v)?);
                    return Ok(ExitCode::SUCCESS);
                }
                println!(
                    "reference store version {}",
                    v.version
                        .map_or_else(|| "(none stored)".to_owned(), |n| n.to_string())
                );
                for r in &v.releases {
                    println!(
                        "{:<32} {:<22} {:>4} value(s)  {:>6} host(s)  {}  [{}]",
                        r.name,
                        r.states.join(","),
                        r.values,
                        r.hosts_measuring,
                        r.components.join(","),
                        r.selectors.join(" | ")
                    );
                }
            }
            Cmd::Learn(a) => {
                let req = LearnRequest {
                    name: a.name,
                    from_host: a.from_host,
                    from_cohort: a.from_cohort,
                    components: a.components,
                    selector: a.selector,
                    quorum_percent: a.quorum,
                    accept: a.accept,
                    candidate_for: a.candidate_for,
                };
                let r = client.learn(&req).await?;
                if a.json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    print_learn(&r);
                }
            }
            Cmd::Revoke { name, reason, json } => {
                let req = RefStateRequest {
                    reason: Some(reason),
                    until: None,
                };
                let c = client.set_release_state(&name, "revoke", &req).await?;
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    print_change(&c);
                }
            }
            Cmd::Deprecate { name, until, json } => {
                let req = RefStateRequest {
                    reason: None,
                    until,
                };
                let c = client.set_release_state(&name, "deprecate", &req).await?;
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    print_change(&c);
                }
            }
            Cmd::Activate { name, json } => {
                let c = client
                    .set_release_state(&name, "activate", &RefStateRequest::default())
                    .await?;
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    print_change(&c);
                }
            }
            Cmd::Import { file } => {
                let stored = client.put_references(&read_json(&file)?).await?;
                println!("{}", serde_json::to_string(&stored)?);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Run `vouch policy ...`.
pub fn run_policy(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    block_on(async move {
        match args.command {
            PolicyCmd::Put { file } => {
                let doc = read_json(&file)?;
                let id = doc
                    .get("id")
                    .and_then(serde_json::Value::as_str)
                    .context("the policy document has no \"id\"")?
                    .to_owned();
                let stored = client.put_policy(&id, &doc).await?;
                println!("{}", serde_json::to_string(&stored)?);
            }
            PolicyCmd::List => {
                println!("{}", serde_json::to_string(&client.policies().await?)?);
            }
            PolicyCmd::Diff { file } => {
                let newer = policy_of(read_json(&file)?)
                    .with_context(|| format!("{} is not a valid policy", file.display()))?;
                let id = newer.doc().id.clone();
                let stored = client
                    .policies()
                    .await?
                    .into_iter()
                    .find(|p| p.get("id").and_then(serde_json::Value::as_str) == Some(&id));
                match stored {
                    None => println!(
                        "policy {id} is not stored yet: putting it adds version {}",
                        newer.doc().version
                    ),
                    Some(doc) => {
                        let older = policy_of(doc).context("the stored policy")?;
                        let d = older.diff(&newer);
                        println!(
                            "policy {}: version {} -> {}",
                            d.id, d.from_version, d.to_version
                        );
                        if d.changes.is_empty() {
                            println!("  (no rule changes)");
                        }
                        for c in &d.changes {
                            println!("  {c}");
                        }
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
