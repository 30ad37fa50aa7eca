//! Faults under a running verifier (issue 10), in process with simulated TPMs and the real
//! agent. When the store stops taking writes (a full, then read-only data directory under
//! SQLite; PostgreSQL stopped), no host reads trusted through any path (the list, one host,
//! its EAR, `/metrics`) once its freshness limit has passed, no affirming EAR is signed for
//! it, `/readyz` says the verifier cannot vouch, `/healthz` stays fast, and once the store
//! takes writes again the hosts are trusted again by attesting, without a restart. Half-sent
//! connections are closed by the header timeout, and an enrolment flood from a source without
//! the TPM creates no host, is rate limited and never holds more pending enrolments than the
//! per-source cap.
//!
//! The read-only data directory is the loop-mounted ext4 filesystem with every file and
//! directory on it made immutable (`chattr +i`: writes fail with `EPERM`, creating files too,
//! for root as well). `mount -o remount,ro` cannot be used: the kernel refuses it (`EBUSY`)
//! while the verifier holds its SQLite files open for writing, and the ext4 emergency
//! read-only state (after an error with `errors=remount-ro`) cannot be undone without
//! unmounting, so the verifier could never recover in place.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test code: a failure here is a failed test"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vouch_api::{AdminClient, HostStatus};

use support::inproc::{SimFleet, SimHost, wait_for};

const LOG: &[u8] = include_bytes!("../demo/qemu-ubuntu2004-1.bin");

/// [`SimFleet`]'s attestation interval: a host is stale two intervals after its last good
/// appraisal.
const INTERVAL: Duration = Duration::from_secs(1);

/// Pause between rounds of reads (a round is about ten operator requests; the operator API
/// allows 50 a second per source).
const ROUND_PAUSE: Duration = Duration::from_millis(300);

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Run `cmd`; panic with its output if it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTP client trusting only the verifier's CA.
fn https(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A 64 MiB ext4 image loop-mounted on `dir`; on drop (after the verifier using it is
/// stopped), made writable again and lazily unmounted, whatever happened.
struct LoopMount {
    dir: PathBuf,
}

impl LoopMount {
    fn new(image: &Path, dir: &Path) -> Self {
        run(Command::new("truncate").arg("-s").arg("64M").arg(image));
        run(Command::new("mkfs.ext4").arg("-q").arg("-F").arg(image));
        std::fs::create_dir_all(dir).unwrap();
        run(Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(image)
            .arg(dir));
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Make every file and directory on the filesystem immutable (nothing can be written or
    /// created, by root either), or writable again.
    fn set_read_only(&self, read_only: bool) {
        run(Command::new("chattr")
            .arg("-R")
            .arg(if read_only { "+i" } else { "-i" })
            .arg(&self.dir));
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&self.dir)
            .status();
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Write `path` until the filesystem has no space left (ever smaller writes, so no block is
/// left); the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0_u64;
    for chunk in [1 << 20, 4096, 512, 1] {
        let buf = vec![0x5a_u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
    written
}

/// Everything needed to read what the verifier says about hosts, over every path.
#[derive(Clone)]
struct Readers {
    admin: AdminClient,
    http: reqwest::Client,
    url: String,
    token: String,
    keys: Arc<vouch_ear::VerificationKeys>,
}

impl Readers {
    async fn new(fleet: &SimFleet) -> Self {
        Self {
            admin: fleet.admin.clone(),
            http: https(&fleet.ca_pem),
            url: fleet.url.clone(),
            token: std::fs::read_to_string(fleet.server.admin_token_path())
                .unwrap()
                .trim()
                .to_owned(),
            keys: Arc::new(support::inproc::jwks_keys(&fleet.url, &fleet.ca_pem).await),
        }
    }

    /// `GET /readyz`: its status and body.
    async fn readyz(&self) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }
}

fn rate_limited(e: &vouch_api::ClientError) -> bool {
    e.status() == Some(429)
}

/// Every way one of `names` reads trusted now, through the list, each host's detail, each
/// host's EAR (verified with the published keys) and the `/metrics` gauge. A path that fails
/// reads nothing (it fails closed); a rate-limited path is reported, since it proved nothing.
/// Panics on an EAR that does not verify or an affirming EAR that outlives the freshness limit.
async fn trusted_readings(r: Readers, names: &[&str]) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    {
        let r = r.clone();
        tasks.spawn(async move {
            match r.admin.hosts().await {
                Ok(hosts) => hosts
                    .into_iter()
                    .filter(|h| h.status == HostStatus::Trusted)
                    .map(|h| format!("list: {} trusted", h.name))
                    .collect(),
                Err(e) if rate_limited(&e) => vec![format!("list: {e}")],
                Err(_) => Vec::new(),
            }
        });
    }
    for name in names {
        let name = (*name).to_owned();
        let show = r.clone();
        let show_name = name.clone();
        tasks.spawn(async move {
            match show.admin.host(&show_name).await {
                Ok(h) if h.summary.status == HostStatus::Trusted => {
                    vec![format!("show: {show_name} trusted")]
                }
                Ok(_) => Vec::new(),
                Err(e) if rate_limited(&e) => vec![format!("show {show_name}: {e}")],
                Err(_) => Vec::new(),
            }
        });
        let ear = r.clone();
        tasks.spawn(async move {
            match ear.admin.ear(&name, None).await {
                Ok(token) => {
                    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
                    let claims = match vouch_ear::verify(&token, &ear.keys, &name, None, now) {
                        Ok(c) => c,
                        // Expired on arrival: it vouches for nothing.
                        Err(vouch_ear::EarError::Expired { .. }) => return Vec::new(),
                        Err(e) => panic!("EAR of {name} does not verify: {e}"),
                    };
                    if claims.status == vouch_appraisal::Status::Affirming {
                        // An affirming token expires with the appraisal it reports.
                        assert!(
                            claims.exp <= claims.iat + 2 * INTERVAL.as_secs() + 1,
                            "affirming EAR of {name} outlives its freshness limit: {claims:?}"
                        );
                        vec![format!("EAR: {name} affirming")]
                    } else {
                        Vec::new()
                    }
                }
                Err(e) if rate_limited(&e) => vec![format!("EAR {name}: {e}")],
                Err(_) => Vec::new(),
            }
        });
    }
    tasks.spawn(async move {
        let resp = r
            .http
            .get(format!("{}/metrics", r.url))
            .bearer_auth(&r.token)
            .send()
            .await;
        match resp {
            Ok(resp) if resp.status().is_success() => {
                let text = resp.text().await.unwrap_or_default();
                match text
                    .lines()
                    .find_map(|l| l.strip_prefix("vouch_hosts{status=\"trusted\"} "))
                    .map(|v| v.trim().parse::<f64>())
                {
                    Some(Ok(0.0)) => Vec::new(),
                    Some(Ok(n)) => vec![format!("metrics: {n} trusted")],
                    _ => vec![format!("metrics: no trusted gauge in\n{text}")],
                }
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                vec!["metrics: rate limited".to_owned()]
            }
            _ => Vec::new(),
        }
    });
    let mut out = Vec::new();
    while let Some(found) = tasks.join_next().await {
        out.extend(found.unwrap());
    }
    out.sort();
    out
}

/// Poll until every path reads every host in `names` trusted (the reads are meaningful).
async fn wait_all_paths_trusted(r: &Readers, names: &[&str]) {
    // list + show + EAR per host, and the gauge.
    let want = 3 * names.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = trusted_readings(r.clone(), names).await;
        if found.len() == want && found.iter().all(|f| !f.contains("rate limited")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every path reads every host trusted: {found:#?}"
        );
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// Poll until no path reads any host in `names` trusted (30 s at most); how long it took.
async fn wait_none_trusted(r: &Readers, names: &[&str]) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    loop {
        let found = trusted_readings(r.clone(), names).await;
        if found.is_empty() {
            return start.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "still read trusted long after the store stopped taking writes: {found:#?}"
        );
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// Read every path for `period` (at least two rounds): none may read any host trusted, and no
/// affirming EAR may be signed.
async fn assert_none_trusted_for(r: &Readers, names: &[&str], period: Duration) {
    let until = Instant::now() + period;
    let mut rounds = 0;
    while rounds < 2 || Instant::now() < until {
        let found = trusted_readings(r.clone(), names).await;
        assert!(
            found.is_empty(),
            "a host read trusted again while the store takes no writes: {found:#?}"
        );
        rounds += 1;
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// Poll until every host in `names` is listed trusted (60 s at most: agents back off while
/// the verifier fails); list errors while the store recovers are retried.
async fn wait_all_trusted_again(admin: &AdminClient, names: &[&str]) -> Duration {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    loop {
        let hosts = admin.hosts().await;
        if let Ok(hosts) = &hosts
            && names.iter().all(|n| {
                hosts
                    .iter()
                    .any(|h| h.name == *n && h.status == HostStatus::Trusted)
            })
        {
            return start.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "hosts not trusted again after the store recovered: {hosts:#?}"
        );
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// Poll `/readyz` until it answers `want` (30 s at most); its body then.
async fn wait_readyz(r: &Readers, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = r.readyz().await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz answers {status} {body:?}, not {want}"
        );
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

fn start_hosts(fleet: &SimFleet, names: &[&str]) -> Vec<SimHost> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| fleet.start_host(i, n, &[], LOG))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_read_only_data_dir_never_leaves_a_host_trusted_and_hosts_recover() {
    if !is_root() {
        eprintln!(
            "SKIPPED full_then_read_only_data_dir_never_leaves_a_host_trusted_and_hosts_recover: \
             loop-mounting an ext4 image needs root (CI runs it as root)"
        );
        return;
    }
    let names = ["h0", "h1", "h2"];
    let tmp = tempfile::tempdir().unwrap();
    // Declared before the fleet, so dropped after it: the verifier stops, then the unmount.
    let disk = LoopMount::new(&tmp.path().join("data.img"), &tmp.path().join("mnt"));
    let data_dir = disk.dir.join("verifier");
    let fleet = SimFleet::start_with(tmp.path(), names.len(), |c| c.data_dir = data_dir).await;
    let hosts = start_hosts(&fleet, &names);
    for n in names {
        wait_for(&fleet.admin, n, HostStatus::Trusted).await;
    }
    let readers = Readers::new(&fleet).await;
    wait_all_paths_trusted(&readers, &names).await;

    // The filesystem fills up, then becomes read-only.
    let filled = fill(&disk.dir.join("filler"));
    disk.set_read_only(true);
    let stale_in = wait_none_trusted(&readers, &names).await;
    // Nothing writes, so nothing becomes fresh: not past another freshness limit either.
    assert_none_trusted_for(&readers, &names, 2 * INTERVAL + Duration::from_secs(1)).await;
    let why = wait_readyz(&readers, 503).await;
    eprintln!(
        "filler {filled} bytes; no host trusted {stale_in:?} after the data directory became \
         read-only; /readyz: {why}"
    );

    // Writable again, space freed: the hosts attest and are trusted again, same verifier.
    disk.set_read_only(false);
    std::fs::remove_file(disk.dir.join("filler")).unwrap();
    let recovered_in = wait_all_trusted_again(&fleet.admin, &names).await;
    assert_eq!(wait_readyz(&readers, 200).await, "ready");
    eprintln!("trusted again {recovered_in:?} after the data directory was writable");

    for h in hosts {
        h.task.abort();
    }
    fleet.server.shutdown().await;
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_the_verifier_fails_closed_and_healthz_stays_fast() {
    let mut pg = vouch_store::testing::TempPostgres::start()
        .expect("start PostgreSQL (installed by scripts/deps.sh)");
    let database_url = pg.create_database().await.unwrap();
    let names = ["p0", "p1"];
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(tmp.path(), names.len(), Some(database_url)).await;
    let hosts = start_hosts(&fleet, &names);
    for n in names {
        wait_for(&fleet.admin, n, HostStatus::Trusted).await;
    }
    let readers = Readers::new(&fleet).await;
    wait_all_paths_trusted(&readers, &names).await;
    let healthz = || async {
        let t = Instant::now();
        let resp = readers
            .http
            .get(format!("{}/healthz", readers.url))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        (t.elapsed(), status, body)
    };
    // The connection is open before the fault: what is measured is the answer, not TLS.
    assert_eq!(healthz().await.1, 200);

    tokio::task::block_in_place(|| pg.stop());
    let stopped = Instant::now();
    // Store calls now wait for a connection until the pool gives up: start a round of reads,
    // and ask for liveness while they hang.
    let first_round = tokio::spawn(trusted_readings(readers.clone(), &["p0", "p1"]));
    let ready = tokio::spawn({
        let r = readers.clone();
        async move { r.readyz().await }
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (took, status, body) = healthz().await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(100),
        "/healthz took {slowest:?} with the store down"
    );
    let (status, why) = ready.await.unwrap();
    assert_eq!(status, 503, "/readyz with PostgreSQL stopped: {why}");
    let found = first_round.await.unwrap();
    assert!(
        found.is_empty(),
        "read trusted with PostgreSQL stopped: {found:#?}"
    );
    // Past the freshness limit: still nothing trusted, no affirming EAR.
    let limit = 2 * INTERVAL + Duration::from_millis(500);
    if let Some(rest) = limit.checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let found = trusted_readings(readers.clone(), &names).await;
    assert!(
        found.is_empty(),
        "read trusted past the freshness limit with PostgreSQL stopped: {found:#?}"
    );
    eprintln!(
        "PostgreSQL down {:?}; slowest /healthz {slowest:?}; /readyz: {why}",
        stopped.elapsed()
    );

    // The same server on the same port: the pool reconnects, the hosts attest again.
    tokio::task::block_in_place(|| pg.restart()).unwrap();
    let recovered_in = wait_all_trusted_again(&fleet.admin, &names).await;
    assert_eq!(wait_readyz(&readers, 200).await, "ready");
    eprintln!("trusted again {recovered_in:?} after PostgreSQL restarted");

    for h in hosts {
        h.task.abort();
    }
    fleet.server.shutdown().await;
    drop(pg);
}

/// How a half-sent connection stops: before any byte, inside a TLS record header, or inside
/// the ClientHello record's body.
const PARTIAL_TLS: [&[u8]; 3] = [
    b"",
    &[0x16, 0x03],
    // Handshake record, TLS 1.0 framing, 512 bytes announced; a ClientHello begins.
    &[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0,
    ],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_by_the_header_timeout() {
    const CONNECTIONS: usize = 150;
    let header_timeout = Duration::from_secs(2);
    let tmp = tempfile::tempdir().unwrap();
    let mut config =
        vouch_verifier::ServeConfig::new("127.0.0.1:0".parse().unwrap(), tmp.path().join("v"));
    config.header_timeout = header_timeout;
    let server = vouch_verifier::serve(config).await.unwrap();
    let addr = server.local_addr();

    // No TLS client is a dev-dependency of this crate, so the connections stop half-way
    // through the TLS handshake (which the same timeout bounds) instead of inside the
    // HTTP headers.
    let mut conns = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let opened = Instant::now();
        let sent = PARTIAL_TLS[i % PARTIAL_TLS.len()];
        tcp.write_all(sent).await.unwrap();
        conns.spawn(async move {
            let mut buf = [0_u8; 1024];
            let closed = loop {
                match tokio::time::timeout(Duration::from_secs(60), tcp.read(&mut buf)).await {
                    Ok(Ok(0) | Err(_)) => break opened.elapsed(),
                    // The server may answer a broken handshake with an alert, then close.
                    Ok(Ok(_)) => {}
                    Err(_) => panic!("connection {i} ({sent:?} sent) still open after 60 s"),
                }
            };
            (i, closed)
        });
    }
    let mut slowest = Duration::ZERO;
    let mut quickest = Duration::MAX;
    while let Some(done) = conns.join_next().await {
        let (i, closed) = done.unwrap();
        assert!(
            closed <= header_timeout + Duration::from_secs(15),
            "connection {i} closed only after {closed:?}"
        );
        slowest = slowest.max(closed);
        quickest = quickest.min(closed);
    }
    // Held until the timeout, not refused at once: it is the timeout that closed them.
    assert!(
        quickest + Duration::from_millis(100) >= header_timeout,
        "a half-sent connection was closed after {quickest:?}, before the header timeout"
    );
    eprintln!("{CONNECTIONS} half-sent connections closed after {quickest:?}..{slowest:?}");

    // The verifier still serves.
    let ca_pem = std::fs::read(server.ca_path()).unwrap();
    let resp = https(&ca_pem)
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "ok");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_flood_without_a_tpm_creates_no_hosts_and_is_rate_limited() {
    const REQUESTS: usize = 200;
    // Below the flood, so the cap is reached (the default is sized for NATed fleets).
    const CAP: u32 = 16;
    let cap = usize::try_from(CAP).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start_with(tmp.path(), 2, |c| c.max_pending_per_source = CAP).await;
    // A genuine EK and its certificate (chains to the trusted CA), and another TPM's AK: the
    // sender holds neither TPM, so no enrolment can ever be activated.
    let victim = vouch_sim::SimTpm::builder()
        .ca(fleet.ca.clone())
        .ek_key(fleet.keys.key(0).unwrap().clone())
        .ak_key(fleet.keys.key(1).unwrap().clone())
        .build()
        .unwrap();
    let mut other = vouch_sim::SimTpm::builder()
        .ca(fleet.ca.clone())
        .ek_key(fleet.keys.key(2).unwrap().clone())
        .ak_key(fleet.keys.key(3).unwrap().clone())
        .build()
        .unwrap();
    let ek_public = vouch_api::Bytes(victim.ek_public().to_vec());
    let ek_certificate = vouch_api::Bytes(victim.ek_certificate().to_vec());
    let ak_public = vouch_api::Bytes(other.ak_public().unwrap());
    let agent = vouch_api::AgentClient::anonymous(&fleet.url, &fleet.ca_pem).unwrap();

    // Watch the pending enrolments while the flood runs.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn({
        let admin = fleet.admin.clone();
        async move {
            let mut most = 0;
            loop {
                let view = admin.enrolments().await.unwrap();
                most = most.max(view.pending.len());
                if *stopped.borrow_and_update() {
                    return most;
                }
                tokio::select! {
                    _ = stopped.changed() => {}
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    });
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let req = vouch_api::EnrolRequest {
            name: format!("flood-{i}"),
            ek_public: ek_public.clone(),
            ek_certificate: Some(ek_certificate.clone()),
            ak_public: ak_public.clone(),
            labels: std::collections::BTreeMap::new(),
        };
        let agent = agent.clone();
        flood.spawn(async move { agent.enrol(&req).await.map_err(|e| e.status()) });
    }
    let (mut accepted, mut limited) = (0, 0);
    while let Some(answer) = flood.join_next().await {
        match answer.unwrap() {
            Ok(_) => accepted += 1,
            Err(Some(429)) => limited += 1,
            Err(other) => panic!("enrolment answered {other:?}, not 200 or 429"),
        }
    }
    stop.send(true).unwrap();
    let most_pending = watcher.await.unwrap();

    let pending_after = fleet.admin.enrolments().await.unwrap().pending.len();
    let store = fleet.server.verifier().state().store();
    let held = store
        .pending_enrolments_from("127.0.0.1", chrono::Utc::now())
        .await
        .unwrap();
    let dir = tmp.path().join("verifier");
    let bytes: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            std::fs::metadata(dir.join(format!("{}{s}", vouch_store::SQLITE_FILE))).ok()
        })
        .map(|m| m.len())
        .sum();
    eprintln!(
        "{accepted} accepted, {limited} refused with 429; pending: at most {most_pending} seen \
         during the flood, {pending_after} listed and {held} held from 127.0.0.1 after it; \
         SQLite {bytes} bytes"
    );

    assert_eq!(accepted + limited, REQUESTS);
    assert!(limited > 0, "no enrolment was refused with 429");
    // The cap holds however the requests interleave.
    assert!(
        most_pending <= cap && pending_after <= cap && held <= i64::from(CAP),
        "more enrolments pending than the per-source cap of {cap}: {most_pending} seen during \
         the flood, {pending_after} listed and {held} held after it"
    );
    assert!(
        (1..=cap).contains(&accepted),
        "{accepted} enrolments accepted; the per-source cap is {cap}"
    );
    // No host row, for these names or any other.
    let all = fleet.admin.all_hosts().await.unwrap();
    assert!(
        all.iter().all(|h| !h.name.starts_with("flood-")),
        "{all:#?}"
    );
    assert!(store.list_hosts(true).await.unwrap().is_empty());
    // The flood leaves the database small.
    assert!(bytes < 4 << 20, "SQLite files hold {bytes} bytes");
    fleet.server.shutdown().await;
}
