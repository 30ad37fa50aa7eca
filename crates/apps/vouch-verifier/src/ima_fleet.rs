//! Fleet view of IMA rejections (issue 5, scope 5): a binary unknown to the runtime policy
//! that appears on many hosts of a cohort at once reads as an update in progress; one that
//! appears on a single host reads as possible tampering.
//!
//! The same reading as the boot-evidence triage of `vouch_appraisal::fleet::triage` (a value
//! shared by at least a threshold of hosts is `likely_update`, a value on one host is
//! `isolated`), applied per (cohort, path, digest) rather than per set of causes, with a third
//! reading in between (`spreading`: more than one host but fewer than the threshold).
//!
//! Pure over what the store returns ([`triage`] over [`HostInput`]s): each host's current
//! reasons (those of its latest attestation) are scanned for the runtime-policy rejections
//! that [`crate::ima`] writes (`IMA entry N: PATH ALG:HEX: REASON`), including the sticky
//! "earlier in this boot" one. Only rejections meaning "unknown to the policy" count
//! (path not in the allowlist, or digest not allowed for the path); bad signatures, forged
//! entries and replay failures are not binaries to roll out and are left to the host view.
//!
//! Known limits: the verifier lists at most five rejections per attestation (the rest are
//! counted, not named), so a host running many unknown binaries at once shows only the first
//! ones; a rejection from an attestation before the latest is seen only when it was the boot's
//! first failure (which stays in the reasons until a reboot).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use vouch_ima::policy::Reason;

use crate::admin::Reader;
use crate::error::ApiError;
use crate::state::AppState;

/// Labels that name a host's cohort, in order of preference.
pub const COHORT_LABELS: [&str; 2] = ["cohort", "role"];
/// Cohort of hosts without any of [`COHORT_LABELS`].
pub const DEFAULT_COHORT: &str = "all";
/// Host names shown in an explanation before the rest are counted.
const NAMED_HOSTS: usize = 5;

/// One host as the triage needs it.
#[derive(Debug, Clone, Copy)]
pub struct HostInput<'a> {
    /// Host name.
    pub name: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its current reasons (latest attestation).
    pub reasons: &'a [String],
}

/// The cohort of a host: its `cohort` label, else its `role` label, else `all`.
#[must_use]
pub fn cohort_of(labels: &BTreeMap<String, String>) -> &str {
    COHORT_LABELS
        .iter()
        .find_map(|k| labels.get(*k))
        .map_or(DEFAULT_COHORT, String::as_str)
}

/// Why the policy did not know the binary.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The path is not in the allowlist and the digest is not allowed for any path.
    NotInPolicy,
    /// The path is in the allowlist, but not with this digest.
    DigestNotAllowed,
}

/// How a group reads (names as in `vouch_appraisal::Assessment`, plus `spreading`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    /// On exactly one host of the cohort: investigate as possible tampering.
    Isolated,
    /// On more than one host but fewer than the update threshold.
    Spreading,
    /// On at least the update threshold of the cohort's hosts: most likely an update; push
    /// a policy update if it is legitimate.
    LikelyUpdate,
}

/// Hosts of a cohort that ran the same binary unknown to their policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImaTriageGroup {
    /// File path as measured.
    pub path: String,
    /// `alg:hex` file digest.
    pub digest: String,
    /// Why the policy rejected it (the most common finding when hosts differ).
    pub finding: Finding,
    /// Cohort name.
    pub cohort: String,
    /// Hosts in the cohort (all listed hosts with that cohort, whatever their status).
    pub cohort_size: usize,
    /// Hosts on which it was rejected (sorted).
    pub hosts: Vec<String>,
    /// Hosts needed for `likely_update`: max(2, ceil(5% of `cohort_size`)).
    pub update_threshold: usize,
    /// The reading.
    pub assessment: Assessment,
    /// One line for an operator.
    pub explanation: String,
}

/// `GET /api/v1/ima/triage`: every group, isolated ones first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImaTriage {
    /// Hosts considered (not removed).
    pub hosts: usize,
    /// The groups: isolated, then spreading, then likely updates; larger groups first.
    pub groups: Vec<ImaTriageGroup>,
}

/// max(2, ceil(5% of `cohort_size`)).
#[must_use]
pub fn update_threshold(cohort_size: usize) -> usize {
    cohort_size.saturating_mul(5).div_ceil(100).max(2)
}

/// The reading of a binary on `hosts` of `cohort_size` hosts.
#[must_use]
pub fn classify(hosts: usize, cohort_size: usize) -> Assessment {
    if hosts <= 1 {
        Assessment::Isolated
    } else if hosts >= update_threshold(cohort_size) {
        Assessment::LikelyUpdate
    } else {
        Assessment::Spreading
    }
}

/// The (path, digest, finding) of every "unknown to the policy" rejection named in `reason`.
fn rejections(reason: &str) -> Vec<(&str, &str, Finding)> {
    let not_in_policy = format!(": {}", Reason::NotInPolicy);
    let not_allowed = format!(": {}", Reason::DigestNotAllowed);
    let mut out = Vec::new();
    // A reason names one entry; the sticky one prefixes it ("IMA: earlier ...: IMA entry N: ...").
    let Some((_, entry)) = reason.rsplit_once("IMA entry ") else {
        return out;
    };
    let Some((index, rest)) = entry.split_once(": ") else {
        return out;
    };
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return out;
    }
    let (named, finding) = if let Some(n) = rest.strip_suffix(not_in_policy.as_str()) {
        (n, Finding::NotInPolicy)
    } else if let Some(n) = rest.strip_suffix(not_allowed.as_str()) {
        (n, Finding::DigestNotAllowed)
    } else {
        return out;
    };
    if let Some((path, digest)) = named.rsplit_once(' ')
        && digest.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
        && !path.is_empty()
    {
        out.push((path, digest, finding));
    }
    out
}

/// `sha256:ab12cd34ef56…`.
fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => {
            format!("{alg}:{}…", hex.get(..12).unwrap_or(hex))
        }
        _ => d.to_owned(),
    }
}

fn explain(g: &ImaTriageGroup) -> String {
    let mut s = format!(
        "binary {} {} unknown to the policy on {} of {} hosts of cohort {}",
        g.path,
        short_digest(&g.digest),
        g.hosts.len(),
        g.cohort_size,
        g.cohort
    );
    if g.assessment != Assessment::LikelyUpdate {
        let named: Vec<&str> = g
            .hosts
            .iter()
            .take(NAMED_HOSTS)
            .map(String::as_str)
            .collect();
        let _ = write!(s, " ({}", named.join(", "));
        if g.hosts.len() > NAMED_HOSTS {
            let _ = write!(s, " and {} more", g.hosts.len().saturating_sub(NAMED_HOSTS));
        }
        s.push(')');
    }
    s.push_str(match g.assessment {
        Assessment::LikelyUpdate => ": likely an update; push a policy update",
        Assessment::Isolated => ": likely tampering; investigate the host",
        Assessment::Spreading => {
            ": below the update threshold; a staged update or spreading tampering, investigate"
        }
    });
    s
}

/// Group the hosts' "unknown to the policy" rejections by (cohort, path, digest) and read each
/// group (see [`classify`]).
#[must_use]
pub fn triage(hosts: &[HostInput<'_>]) -> ImaTriage {
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    type Key<'a> = (&'a str, &'a str, &'a str);
    let mut seen: BTreeMap<Key<'_>, (BTreeSet<&str>, BTreeMap<Finding, usize>)> = BTreeMap::new();
    for h in hosts {
        let cohort = cohort_of(h.labels);
        let n = sizes.entry(cohort).or_default();
        *n = n.saturating_add(1);
        for r in h.reasons {
            for (path, digest, finding) in rejections(r) {
                let e = seen.entry((cohort, path, digest)).or_default();
                e.0.insert(h.name);
                let f = e.1.entry(finding).or_default();
                *f = f.saturating_add(1);
            }
        }
    }
    let mut groups: Vec<ImaTriageGroup> = seen
        .into_iter()
        .map(|((cohort, path, digest), (names, findings))| {
            let cohort_size = sizes.get(cohort).copied().unwrap_or_default();
            let finding = findings
                .iter()
                .max_by_key(|(_, n)| **n)
                .map_or(Finding::NotInPolicy, |(f, _)| *f);
            let hosts: Vec<String> = names.into_iter().map(str::to_owned).collect();
            let mut g = ImaTriageGroup {
                path: path.to_owned(),
                digest: digest.to_owned(),
                finding,
                cohort: cohort.to_owned(),
                cohort_size,
                update_threshold: update_threshold(cohort_size),
                assessment: classify(hosts.len(), cohort_size),
                hosts,
                explanation: String::new(),
            };
            g.explanation = explain(&g);
            g
        })
        .collect();
    groups.sort_by(|a, b| {
        a.assessment
            .cmp(&b.assessment)
            .then_with(|| b.hosts.len().cmp(&a.hosts.len()))
            .then_with(|| a.cohort.cmp(&b.cohort))
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.digest.cmp(&b.digest))
    });
    ImaTriage {
        hosts: hosts.len(),
        groups,
    }
}

/// `GET /api/v1/ima/triage` (admin): [`triage`] over every host that is not removed.
///
/// # Errors
/// 401 without a valid admin token; 500 if the store fails.
pub async fn triage_route(
    State(st): State<AppState>,
    _reader: Reader,
) -> Result<Json<ImaTriage>, ApiError> {
    let hosts = st.store().list_hosts(false).await?;
    let inputs: Vec<HostInput<'_>> = hosts
        .iter()
        .map(|h| HostInput {
            name: &h.name,
            labels: &h.labels,
            reasons: &h.reasons,
        })
        .collect();
    Ok(Json(triage(&inputs)))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test code"
)]
mod tests {
    use super::*;

    const D1: &str = "sha256:ab12cd34ef5600000000000000000000000000000000000000000000000000aa";
    const D2: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000bad";

    fn unknown(i: u64, path: &str, digest: &str) -> String {
        format!("IMA entry {i}: {path} {digest}: {}", Reason::NotInPolicy)
    }

    struct Fleet {
        hosts: Vec<(String, BTreeMap<String, String>, Vec<String>)>,
    }

    impl Fleet {
        fn new(cohort: &str, n: usize) -> Self {
            let mut f = Self { hosts: Vec::new() };
            f.add(cohort, n);
            f
        }

        fn add(&mut self, cohort: &str, n: usize) {
            for _ in 0..n {
                let i = self.hosts.len();
                let labels = BTreeMap::from([("cohort".to_owned(), cohort.to_owned())]);
                self.hosts
                    .push((format!("{cohort}-{i}"), labels, Vec::new()));
            }
        }

        fn run(&mut self, hosts: std::ops::Range<usize>, reason: &str) {
            for h in &mut self.hosts[hosts] {
                h.2.push(reason.to_owned());
            }
        }

        fn triage(&self) -> ImaTriage {
            let inputs: Vec<HostInput<'_>> = self
                .hosts
                .iter()
                .map(|(n, l, r)| HostInput {
                    name: n,
                    labels: l,
                    reasons: r,
                })
                .collect();
            triage(&inputs)
        }
    }

    #[test]
    fn empty_input_has_no_groups() {
        let t = triage(&[]);
        assert_eq!(t.hosts, 0);
        assert!(t.groups.is_empty());
        // Hosts without IMA rejections: none either.
        let mut f = Fleet::new("web", 3);
        f.run(0..1, "PCR 0 differs from the baseline");
        f.run(
            1..2,
            "IMA entry 4: template hash does not match its data (a forged entry)",
        );
        assert!(f.triage().groups.is_empty());
    }

    #[test]
    fn one_host_is_isolated_and_named() {
        let mut f = Fleet::new("web", 40);
        f.run(7..8, &unknown(12, "/tmp/.x/payload", D2));
        let t = f.triage();
        assert_eq!(t.hosts, 40);
        assert_eq!(t.groups.len(), 1);
        let g = &t.groups[0];
        assert_eq!(g.assessment, Assessment::Isolated);
        assert_eq!(g.hosts, ["web-7"]);
        assert_eq!(g.cohort_size, 40);
        assert_eq!(g.path, "/tmp/.x/payload");
        assert_eq!(g.digest, D2);
        assert_eq!(
            g.explanation,
            "binary /tmp/.x/payload sha256:000000000000… unknown to the policy on 1 of 40 \
             hosts of cohort web (web-7): likely tampering; investigate the host"
        );
    }

    #[test]
    fn many_hosts_are_a_likely_update_and_apart_from_an_isolated_one() {
        let mut f = Fleet::new("web", 40);
        f.run(0..37, &unknown(100, "/usr/bin/foo", D1));
        // The sticky form of the same rejection counts the same.
        f.hosts[39].2.push(format!(
            "IMA: earlier in this boot (until a reboot or a policy that accepts it): {}",
            unknown(5, "/tmp/evil", D2)
        ));
        let t = f.triage();
        assert_eq!(t.groups.len(), 2);
        assert_eq!(t.groups[0].assessment, Assessment::Isolated);
        assert_eq!(t.groups[0].hosts, ["web-39"]);
        let g = &t.groups[1];
        assert_eq!(g.assessment, Assessment::LikelyUpdate);
        assert_eq!(g.hosts.len(), 37);
        assert_eq!(g.finding, Finding::NotInPolicy);
        assert_eq!(
            g.explanation,
            "binary /usr/bin/foo sha256:ab12cd34ef56… unknown to the policy on 37 of 40 hosts \
             of cohort web: likely an update; push a policy update"
        );
    }

    #[test]
    fn threshold_edge_is_five_percent_rounded_up_and_at_least_two() {
        assert_eq!(update_threshold(0), 2);
        assert_eq!(update_threshold(1), 2);
        assert_eq!(update_threshold(40), 2);
        assert_eq!(update_threshold(41), 3);
        assert_eq!(update_threshold(100), 5);
        assert_eq!(update_threshold(101), 6);
        assert_eq!(classify(1, 1000), Assessment::Isolated);
        assert_eq!(classify(2, 40), Assessment::LikelyUpdate);
        assert_eq!(classify(49, 1000), Assessment::Spreading);
        assert_eq!(classify(50, 1000), Assessment::LikelyUpdate);

        // On 1000 hosts: 49 is spreading, 50 an update.
        let mut f = Fleet::new("db", 1000);
        f.run(0..49, &unknown(3, "/usr/sbin/a", D1));
        f.run(100..150, &unknown(3, "/usr/sbin/b", D1));
        let t = f.triage();
        assert_eq!(t.groups.len(), 2);
        assert_eq!(t.groups[0].assessment, Assessment::Spreading);
        assert_eq!(t.groups[0].path, "/usr/sbin/a");
        assert_eq!(t.groups[0].update_threshold, 50);
        assert!(t.groups[0].explanation.contains("and 44 more"));
        assert_eq!(t.groups[1].assessment, Assessment::LikelyUpdate);
        assert_eq!(t.groups[1].hosts.len(), 50);
    }

    #[test]
    fn cohorts_are_apart_and_unlabelled_hosts_are_all() {
        let mut f = Fleet::new("web", 10);
        f.add("db", 10);
        f.hosts.push(("bare".into(), BTreeMap::new(), Vec::new()));
        f.hosts.push((
            "r".into(),
            BTreeMap::from([("role".to_owned(), "db".to_owned())]),
            Vec::new(),
        ));
        // Same binary on 3 web hosts and 1 db host: an update in web, isolated in db.
        f.run(0..3, &unknown(9, "/usr/bin/foo", D1));
        f.run(10..11, &unknown(9, "/usr/bin/foo", D1));
        f.run(20..21, &unknown(9, "/opt/x", D2));
        f.hosts[21].2.push(format!(
            "IMA entry 2: /etc/app.conf {D2}: {}",
            Reason::DigestNotAllowed
        ));
        let t = f.triage();
        let find = |cohort: &str, path: &str| {
            t.groups
                .iter()
                .find(|g| g.cohort == cohort && g.path == path)
                .unwrap()
        };
        assert_eq!(
            find("web", "/usr/bin/foo").assessment,
            Assessment::LikelyUpdate
        );
        assert_eq!(find("db", "/usr/bin/foo").assessment, Assessment::Isolated);
        assert_eq!(find("db", "/usr/bin/foo").cohort_size, 11);
        assert_eq!(find("all", "/opt/x").hosts, ["bare"]);
        let conf = find("db", "/etc/app.conf");
        assert_eq!(conf.finding, Finding::DigestNotAllowed);
        assert_eq!(conf.hosts, ["r"]);
        assert_eq!(t.groups.len(), 4);
    }

    #[test]
    fn paths_with_spaces_and_colons_parse() {
        let r = unknown(1, "/opt/my app: v2/run", D1);
        assert_eq!(
            rejections(&r),
            [("/opt/my app: v2/run", D1, Finding::NotInPolicy)]
        );
        assert!(rejections("IMA entry x: /a sha256:00: nope").is_empty());
        assert!(rejections("IMA entry 1: /a (no digest): entry has no file digest").is_empty());
    }
}
