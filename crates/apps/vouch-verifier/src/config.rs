//! Service configuration and the auto-approval selector.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use vouch_store::Labels;

/// PCRs the verifier quotes by default: the boot PCRs a UEFI event log speaks for.
pub const DEFAULT_PCR_SELECTION: &str = "sha256:0,1,2,3,4,5,6,7,8,9,14";

/// Everything `vouch serve` needs. Build with [`ServeConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port; see [`crate::ServerHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Data directory: `ca.pem`, `ca.key`, `admin.token`, and `vouch.db` for SQLite.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; `None` for SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Extra trusted EK CA certificates (PEM or DER files), beside the bundled vendor roots.
    pub ek_roots: Option<PathBuf>,
    /// A firmware catalogue (`vouch firmware catalog`): machine states name the firmware build
    /// whose volume digests a log measures.
    pub firmware_catalog: Option<PathBuf>,
    /// Default attestation interval.
    pub interval: Duration,
    /// Hosts matching any selector are approved automatically, if their EK chains to an
    /// allowed root (never with an EK override). Empty: every host waits for an operator.
    pub auto_approve: Vec<Selector>,
    /// PCR selection to quote, tpm2-tools syntax (`sha256:0,1,...+sha1:0,...`).
    pub pcr_selection: String,
    /// Attestation records kept per host.
    pub history_limit: u32,
    /// Lifetime of a challenge nonce.
    pub nonce_ttl: Duration,
    /// How long `GET /api/v1/agent/challenge` waits for the host to become due.
    pub long_poll: Duration,
    /// Lifetime of an enrolment credential challenge.
    pub enrolment_ttl: Duration,
    /// Extra DNS names / IP addresses for the server certificate (the listen address,
    /// `localhost` and `127.0.0.1` are always included).
    pub server_names: Vec<String>,
    /// Require IMA from every host: quote `sha256:10` too and appraise the measurement list
    /// (hosts with an IMA runtime policy always do, whatever this says).
    pub ima: bool,
    /// Trust the EK manufacturer roots bundled with Vouch (on by default; off with
    /// `--no-bundled-ek-roots`, then only `ek_roots` count).
    pub bundled_ek_roots: bool,
    /// Auto-approve only hosts whose EK certificate chains to a root in this directory
    /// (`--auto-approve-roots`): the bundled roots include cloud vendors' vTPM CAs, which any
    /// customer of that cloud can obtain an EK certificate from.
    pub auto_approve_roots: Option<PathBuf>,
    /// Auto-approve only TPMs whose EK name (hex, one per line, `#` comments) is listed in this
    /// file (`--auto-approve-eks`).
    pub auto_approve_eks: Option<PathBuf>,
    /// Open connections at most; further connections are closed at once.
    pub max_connections: usize,
    /// A client must send a request's headers within this time.
    pub header_timeout: Duration,
    /// A request (headers, body and answer; the challenge long-poll included) must complete
    /// within this time.
    pub request_timeout: Duration,
    /// Enrolment requests per second per source address (token bucket; burst 4x).
    pub enrol_rate: u32,
    /// Pending (not yet activated) enrolments one source address may hold; they expire
    /// after `enrolment_ttl`. Hosts behind one NAT share a source: size it for the largest
    /// batch of hosts enrolling at once behind one address.
    pub max_pending_per_source: u32,
    /// Operator API requests per second per source address (token bucket; burst 4x).
    pub admin_rate: u32,
}

impl ServeConfig {
    /// Defaults: SQLite, 60 s interval, the default PCR selection, 100 history records per
    /// host, 2 min nonces, 20 s long-poll, 5 min enrolments, no auto-approval, bundled EK
    /// roots, 16,384 connections, 10 s to send headers, 60 s per request, 20 enrolments and
    /// 50 operator requests per second per source, 256 pending enrolments per source.
    #[must_use]
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            database_url: None,
            ek_roots: None,
            firmware_catalog: None,
            interval: Duration::from_secs(60),
            auto_approve: Vec::new(),
            pcr_selection: DEFAULT_PCR_SELECTION.to_owned(),
            history_limit: 100,
            nonce_ttl: Duration::from_secs(120),
            long_poll: Duration::from_secs(20),
            enrolment_ttl: Duration::from_secs(300),
            server_names: Vec::new(),
            ima: false,
            bundled_ek_roots: true,
            auto_approve_roots: None,
            auto_approve_eks: None,
            max_connections: 16_384,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            enrol_rate: 20,
            max_pending_per_source: 256,
            admin_rate: 50,
        }
    }
}

/// `selection` with PCR 10 added to its SHA-256 bank (a SHA-256 bank is added if it has none),
/// and the same in tpm2-tools syntax: what hosts with IMA quote.
pub fn with_ima_pcr(
    selection: &vouch_tpm2::PcrSelection,
) -> Result<(vouch_tpm2::PcrSelection, String), vouch_tpm2::PcrSelectionError> {
    use vouch_tpm2::{HashAlg, PcrBankSelection, PcrSelection};
    let mut banks = Vec::new();
    let mut spec = Vec::new();
    let mut has_sha256 = false;
    for b in selection.banks() {
        let mut idx: Vec<u32> = b.indices().collect();
        if b.alg() == HashAlg::Sha256 {
            has_sha256 = true;
            if !idx.contains(&vouch_ima::IMA_PCR) {
                idx.push(vouch_ima::IMA_PCR);
                idx.sort_unstable();
            }
        }
        spec.push(format!(
            "{}:{}",
            b.alg().name(),
            idx.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ));
        banks.push(PcrBankSelection::new(b.alg(), &idx)?);
    }
    if !has_sha256 {
        banks.push(PcrBankSelection::new(
            HashAlg::Sha256,
            &[vouch_ima::IMA_PCR],
        )?);
        spec.push(format!("sha256:{}", vouch_ima::IMA_PCR));
    }
    Ok((PcrSelection::new(banks)?, spec.join("+")))
}

/// Read an `--auto-approve-eks` file: one EK name in hex per line (`tpm2_readpublic` prints it
/// as `name:`), blank lines and `#` comments ignored.
pub fn parse_ek_allowlist(text: &str) -> Result<std::collections::HashSet<Vec<u8>>, String> {
    let mut out = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bytes = hex::decode(line)
            .ok()
            .filter(|b| b.len() > 2)
            .ok_or_else(|| {
                format!(
                    "line {}: not an EK name in hex: {line:?}",
                    n.saturating_add(1)
                )
            })?;
        out.insert(bytes);
    }
    Ok(out)
}

/// Which hosts an auto-approval rule (or an IMA policy assignment) applies to, in the
/// grammar fleet policies use: `all`, or terms joined by `,` that must all match: `name=GLOB`
/// (the host name) and `KEY=GLOB` (a label; `*` any run, `?` one character), e.g.
/// `name=edge-*,site=lon*`. The older spelling `label:KEY=GLOB` is still read
/// ([`Selector::deprecated`] says so, and the verifier warns at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    terms: Vec<(Term, String)>,
    deprecated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    All,
    Name,
    Label(String),
}

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad selector {0:?}: expected `all`, or name=GLOB and KEY=GLOB terms joined by ','")]
pub struct SelectorError(String);

impl core::str::FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SelectorError(s.to_owned());
        if s.trim() == "all" {
            return Ok(Self {
                text: s.to_owned(),
                terms: vec![(Term::All, String::new())],
                deprecated: false,
            });
        }
        let mut terms = Vec::new();
        let mut deprecated = false;
        for part in s.split(',') {
            let (key, glob) = part.trim().split_once('=').ok_or_else(bad)?;
            let key = key.trim();
            let term = if key == "name" {
                Term::Name
            } else if let Some(label) = key.strip_prefix("label:") {
                deprecated = true;
                Term::Label(label.to_owned())
            } else {
                Term::Label(key.to_owned())
            };
            if glob.is_empty() || matches!(&term, Term::Label(k) if k.is_empty() || k == "all") {
                return Err(bad());
            }
            terms.push((term, glob.trim().to_owned()));
        }
        Ok(Self {
            text: s.to_owned(),
            terms,
            deprecated,
        })
    }
}

impl core::fmt::Display for Selector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Selector {
    /// True when every term matches (`all` matches every host).
    #[must_use]
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        !self.terms.is_empty()
            && self.terms.iter().all(|(term, glob)| match term {
                Term::All => true,
                Term::Name => glob_match(glob, name),
                Term::Label(key) => labels.get(key).is_some_and(|v| glob_match(glob, v)),
            })
    }

    /// True when it was written in the old `label:KEY=GLOB` spelling.
    #[must_use]
    pub const fn deprecated(&self) -> bool {
        self.deprecated
    }
}

/// `*` matches any run of characters, `?` exactly one; everything else literally.
fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti) = (0_usize, 0_usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ti));
                gi = gi.saturating_add(1);
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                gi = gi.saturating_add(1);
                ti = ti.saturating_add(1);
            }
            _ => match star {
                Some((sg, st)) => {
                    gi = sg.saturating_add(1);
                    ti = st.saturating_add(1);
                    star = Some((sg, ti));
                }
                None => return false,
            },
        }
    }
    g.get(gi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_and_questions() {
        assert!(glob_match("edge-*", "edge-01"));
        assert!(glob_match("edge-*", "edge-"));
        assert!(!glob_match("edge-*", "core-01"));
        assert!(glob_match("e?ge-*1", "edge-0001"));
        assert!(!glob_match("edge", "edge-1"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn selector_requires_every_term() {
        let lon = Labels::from([("site".to_owned(), "london".to_owned())]);
        for text in ["name=edge-*,site=lon*", "name=edge-*,label:site=lon*"] {
            let s: Selector = text.parse().unwrap();
            assert!(s.matches("edge-1", &lon));
            assert!(!s.matches("edge-1", &Labels::new()));
            assert!(!s.matches("core-1", &lon));
        }
    }

    #[test]
    fn selector_reads_the_policy_grammar_and_the_old_spelling_with_a_note() {
        let all: Selector = "all".parse().unwrap();
        assert!(all.matches("anything", &Labels::new()));
        let policy_style: Selector = "cohort=r750,site=lon".parse().unwrap();
        assert!(!policy_style.deprecated());
        let labels = Labels::from([
            ("cohort".to_owned(), "r750".to_owned()),
            ("site".to_owned(), "lon".to_owned()),
        ]);
        assert!(policy_style.matches("h", &labels));
        let old: Selector = "label:site=lon".parse().unwrap();
        assert!(old.deprecated());
        assert!(old.matches("h", &labels));
    }

    #[test]
    fn ima_selection_adds_pcr10_to_the_sha256_bank() {
        let s = vouch_tpm2::PcrSelection::parse_spec(DEFAULT_PCR_SELECTION).unwrap();
        let (sel, spec) = with_ima_pcr(&s).unwrap();
        assert_eq!(spec, "sha256:0,1,2,3,4,5,6,7,8,9,10,14");
        assert_eq!(sel, vouch_tpm2::PcrSelection::parse_spec(&spec).unwrap());
        let s = vouch_tpm2::PcrSelection::parse_spec("sha1:0,7").unwrap();
        assert_eq!(with_ima_pcr(&s).unwrap().1, "sha1:0,7+sha256:10");
    }

    #[test]
    fn selector_rejects_garbage() {
        for bad in ["", "edge-*", "label:=x", "name=", "=x", "all=x", "a=1,"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }
}
