//! A verifier served in process (`vouch_verifier::serve`): the operator CLI pointed at it, host
//! status polling, and the EAR keys it publishes.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::process::Command;
use std::time::{Duration, Instant};

use vouch_api::{AdminClient, HostStatus, HostSummary};

/// `vouch` with `VOUCH_URL`, `VOUCH_CA` and `VOUCH_TOKEN` (as `@file`) set for `server`.
pub fn vouch(server: &vouch_verifier::ServerHandle) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.env("VOUCH_URL", server.url())
        .env("VOUCH_CA", server.ca_path())
        .env(
            "VOUCH_TOKEN",
            format!("@{}", server.admin_token_path().display()),
        );
    cmd
}

/// Poll until `name` has status `want` (60 s at most); its summary then.
pub async fn wait_for(admin: &AdminClient, name: &str, want: HostStatus) -> HostSummary {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hosts = admin.hosts().await.unwrap();
        if let Some(h) = hosts.iter().find(|h| h.name == name && h.status == want) {
            return h.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name} never {want:?}: {hosts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The keys the verifier at `url` publishes at `/.well-known/jwks.json`.
pub async fn jwks_keys(url: &str, ca_pem: &[u8]) -> vouch_ear::VerificationKeys {
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .build()
        .unwrap();
    let jwks: serde_json::Value = http
        .get(format!("{url}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    vouch_ear::VerificationKeys::from_jwks(&jwks).unwrap()
}
