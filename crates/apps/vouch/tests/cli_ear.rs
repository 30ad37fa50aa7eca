//! `vouch hosts ear` against a verifier served in process: the printed token verifies with the
//! keys the verifier serves at `/.well-known/jwks.json`, for that host and nonce only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test code: a failure here is a failed test"
)]

mod support;

use chrono::Utc;
use vouch_store::{Host, HostStatus};

fn vouch_hosts(handle: &vouch_verifier::ServerHandle, args: &[&str]) -> std::process::Output {
    support::inproc::vouch(handle)
        .arg("hosts")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_ear_prints_a_token_that_verifies_for_that_host_only() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        vouch_verifier::ServeConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let handle = vouch_verifier::serve(config).await.unwrap();
    let now = Utc::now();
    let mut h = Host::new("web-1".into(), vec![1], vec![2], vec![3], 60, now);
    h.status = HostStatus::Trusted;
    h.approved_at = Some(now);
    // Trusted only while its last good appraisal is fresh.
    h.stale_after = Some(now + chrono::TimeDelta::minutes(5));
    handle
        .verifier()
        .state()
        .store()
        .insert_host(&h)
        .await
        .unwrap();

    let nonce = "AAECAwQFBgcICQoLDA0ODw"; // 16 bytes
    let out =
        tokio::task::block_in_place(|| vouch_hosts(&handle, &["ear", "web-1", "--nonce", nonce]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let keys =
        support::inproc::jwks_keys(&handle.url(), &std::fs::read(handle.ca_path()).unwrap()).await;
    let now = u64::try_from(Utc::now().timestamp()).unwrap();
    let want = vouch_ear::Nonce::from_base64url(nonce).unwrap();
    let claims = vouch_ear::verify(&token, &keys, "web-1", Some(want.as_bytes()), now).unwrap();
    assert_eq!(claims.nonce, Some(want));
    assert_eq!(claims.status.name(), "affirming");
    assert!(vouch_ear::verify(&token, &keys, "web-2", None, now).is_err());

    let out = tokio::task::block_in_place(|| vouch_hosts(&handle, &["ear", "nope"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    handle.shutdown().await;
}
