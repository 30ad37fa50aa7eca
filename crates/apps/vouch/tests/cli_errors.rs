//! Operator mistakes with the CLI's connection settings get one line on stderr that says what
//! failed and what to check, once (issue 10, scope 10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure here is a failed test"
)]

use std::process::Command;

fn hosts_list(url: &str, ca: &std::path::Path, token: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["hosts", "list", "--url", url, "--ca"])
        .arg(ca)
        .arg("--token")
        .arg(format!("@{}", token.display()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{url} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(
        err.matches("cannot reach the verifier").count(),
        1,
        "said once: {err}"
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_mistakes_say_once_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        vouch_verifier::ServeConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("v"));
    let server = vouch_verifier::serve(config).await.unwrap();
    let port = server.local_addr().port();
    let (ca, token) = (server.ca_path(), server.admin_token_path());
    let other = tempfile::tempdir().unwrap();
    let other_ca = {
        let c = vouch_verifier::serve(vouch_verifier::ServeConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            other.path().join("v"),
        ))
        .await
        .unwrap();
        let p = c.ca_path();
        c.shutdown().await;
        p
    };
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap().port();
    drop(free);
    let cases = [
        (
            format!("http://127.0.0.1:{port}"),
            ca.clone(),
            "use an https:// URL",
        ),
        (
            format!("https://127.0.0.1:{closed}"),
            ca.clone(),
            "nothing listens there",
        ),
        (
            format!("https://127.0.0.1:{port}"),
            other_ca,
            "not signed by the CA you gave",
        ),
    ];
    for (url, ca, hint) in cases {
        let err = tokio::task::spawn_blocking({
            let token = token.clone();
            move || hosts_list(&url, &ca, &token)
        })
        .await
        .unwrap();
        assert!(err.contains(hint), "{hint:?} in {err}");
    }
    server.shutdown().await;
}
