//! Router behaviours driven with `tower::ServiceExt::oneshot` (no sockets), and one real
//! TLS socket test for the agent routes' client-certificate requirement.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "tests"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_store::{Host, HostStatus, NonceCheck};
use vouch_verifier::{ClientIdentity, ServeConfig, Verifier};

struct Fixture {
    verifier: Verifier,
    token: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let verifier = Verifier::build(config).await.unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    Fixture {
        verifier,
        token,
        _dir: dir,
    }
}

async fn call(f: &Fixture, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = f.verifier.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// A TPMT_PUBLIC of an RSA-2048 restricted signing key (RSASSA/SHA-256) with an arbitrary
/// odd modulus: a valid AK shape whose private key nobody has.
fn ak_public() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0x0001_u16.to_be_bytes()); // TPM_ALG_RSA
    p.extend_from_slice(&0x000b_u16.to_be_bytes()); // nameAlg SHA-256
    p.extend_from_slice(&0x0005_0072_u32.to_be_bytes()); // fixedTPM|fixedParent|sdo|uwa|restricted|sign
    p.extend_from_slice(&0_u16.to_be_bytes()); // authPolicy
    p.extend_from_slice(&0x0010_u16.to_be_bytes()); // symmetric NULL
    p.extend_from_slice(&0x0014_u16.to_be_bytes()); // RSASSA
    p.extend_from_slice(&0x000b_u16.to_be_bytes()); // SHA-256
    p.extend_from_slice(&2048_u16.to_be_bytes());
    p.extend_from_slice(&0_u32.to_be_bytes()); // exponent 65537
    p.extend_from_slice(&256_u16.to_be_bytes());
    let mut n = vec![0xc5_u8; 256];
    n[255] = 0xc7;
    p.extend_from_slice(&n);
    p
}

/// An approved, trusted host and the identity its certificate would give.
async fn trusted_host(f: &Fixture) -> (Host, ClientIdentity) {
    let now = Utc::now();
    let mut h = Host::new("h1".into(), vec![1], ak_public(), vec![0, 0x0b], 60, now);
    h.status = HostStatus::Trusted;
    h.reasons = vec![];
    h.approved_at = Some(now);
    h.stale_after = Some(now + Duration::minutes(2));
    let cert_sha256 = vouch_store::sha256(b"client cert");
    h.client_cert_sha256 = Some(cert_sha256.to_vec());
    let store = f.verifier.state().store();
    store.insert_host(&h).await.unwrap();
    let h = store.host_by_name("h1").await.unwrap().unwrap();
    (
        h.clone(),
        ClientIdentity {
            host_id: h.id,
            cert_sha256,
        },
    )
}

/// A structurally valid quote: TPMS_ATTEST carrying `nonce` and an RSASSA signature (not
/// verifiable; the tests here stop before signature checks).
fn quote(nonce: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut a = Vec::new();
    a.extend_from_slice(&0xff54_4347_u32.to_be_bytes());
    a.extend_from_slice(&0x8018_u16.to_be_bytes());
    a.extend_from_slice(&0_u16.to_be_bytes()); // qualifiedSigner
    a.extend_from_slice(&u16::try_from(nonce.len()).unwrap().to_be_bytes());
    a.extend_from_slice(nonce);
    a.extend_from_slice(&1000_u64.to_be_bytes()); // clock
    a.extend_from_slice(&1_u32.to_be_bytes()); // resetCount
    a.extend_from_slice(&0_u32.to_be_bytes()); // restartCount
    a.push(1); // safe
    a.extend_from_slice(&0_u64.to_be_bytes()); // firmwareVersion
    a.extend_from_slice(&1_u32.to_be_bytes()); // one bank
    a.extend_from_slice(&0x000b_u16.to_be_bytes());
    a.extend_from_slice(&[3, 0xff, 0x43, 0]); // PCRs 0-9, 14
    a.extend_from_slice(&32_u16.to_be_bytes());
    a.extend_from_slice(&[0; 32]);
    let mut s = Vec::new();
    s.extend_from_slice(&0x0014_u16.to_be_bytes()); // RSASSA
    s.extend_from_slice(&0x000b_u16.to_be_bytes());
    s.extend_from_slice(&256_u16.to_be_bytes());
    s.extend_from_slice(&[0; 256]);
    (a, s)
}

fn evidence_body(nonce: &[u8], event_log: Option<&[u8]>) -> serde_json::Value {
    let (attest, signature) = quote(nonce);
    let pcrs: serde_json::Map<String, serde_json::Value> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
        .iter()
        .map(|i| (i.to_string(), serde_json::json!("00".repeat(32))))
        .collect();
    serde_json::json!({
        "nonce": STANDARD.encode(nonce),
        "attest": STANDARD.encode(attest),
        "signature": STANDARD.encode(signature),
        "pcrs": {"sha256": pcrs},
        "event_log": event_log.map(|l| STANDARD.encode(l)),
    })
}

fn post_evidence(id: Option<ClientIdentity>, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post("/api/v1/agent/evidence")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    if let Some(id) = id {
        req.extensions_mut().insert(id);
    }
    req
}

/// The host record and a still-valid nonce prove that nothing changed.
async fn assert_unchanged(f: &Fixture, before: &Host, nonce: &[u8]) {
    let store = f.verifier.state().store();
    let after = store.host_by_id(before.id).await.unwrap().unwrap();
    assert_eq!(&after, before, "host state changed");
    assert!(store.history(before.id, 10).await.unwrap().is_empty());
    assert!(matches!(
        store
            .consume_nonce(before.id, nonce, Utc::now())
            .await
            .unwrap(),
        NonceCheck::Valid { .. }
    ));
}

async fn issue_nonce(f: &Fixture, h: &Host) -> Vec<u8> {
    let nonce = vec![7u8; 32];
    let now = Utc::now();
    f.verifier
        .state()
        .store()
        .issue_nonce(h.id, &nonce, false, now, now + Duration::minutes(2))
        .await
        .unwrap();
    nonce
}

#[tokio::test]
async fn admin_routes_refuse_missing_or_wrong_token() {
    let f = fixture().await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        for (method, uri) in [
            ("GET", "/api/v1/hosts"),
            ("GET", "/api/v1/hosts/h1"),
            ("POST", "/api/v1/hosts/h1/approve"),
            ("POST", "/api/v1/hosts/h1/attest"),
            ("DELETE", "/api/v1/hosts/h1"),
            ("GET", "/api/v1/hosts/h1/history"),
            ("GET", "/api/v1/references"),
            ("POST", "/api/v1/references/learn"),
            ("POST", "/api/v1/references/fw-1/revoke"),
            ("GET", "/api/v1/policies"),
            ("GET", "/api/v1/rollouts"),
            ("GET", "/api/v1/rollouts/r1"),
            ("PUT", "/api/v1/rollouts/r1"),
            ("POST", "/api/v1/rollouts/r1/start"),
            ("GET", "/api/v1/fleet/triage"),
            ("POST", "/api/v1/ear/rotate"),
        ] {
            let mut req = Request::builder().method(method).uri(uri);
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let (status, body) = call(&f, req.body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {auth:?}");
            assert_eq!(body["error"], "missing or invalid API token");
        }
    }
    let req = Request::get("/api/v1/hosts")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&f, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}

#[tokio::test]
async fn admin_actions_are_audited() {
    let f = fixture().await;
    let (h, _) = trusted_host(&f).await;
    let req = Request::post("/api/v1/hosts/h1/attest")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(&f, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "h1");
    let log = f.verifier.state().store().audit_log(5).await.unwrap();
    assert_eq!(log[0].action, "attest");
    assert_eq!(log[0].actor, "initial");
    assert_eq!(log[0].target, h.name);
}

#[tokio::test]
async fn agent_routes_need_a_current_client_certificate() {
    let f = fixture().await;
    let (h, id) = trusted_host(&f).await;
    // No identity at all.
    let (status, body) = call(
        &f,
        Request::get("/api/v1/agent/challenge")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("client certificate")
    );
    // A CA-signed certificate for this host id, but not the one issued at its activation.
    let stale = ClientIdentity {
        cert_sha256: [9; 32],
        ..id
    };
    let nonce = issue_nonce(&f, &h).await;
    let body = serde_json::to_vec(&evidence_body(&nonce, None)).unwrap();
    let (status, _) = call(&f, post_evidence(Some(stale), body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_unchanged(&f, &h, &nonce).await;
}

#[tokio::test]
async fn malformed_evidence_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let (h, id) = trusted_host(&f).await;
    let nonce = issue_nonce(&f, &h).await;
    let good = evidence_body(&nonce, None);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"{not json".to_vec()),
        ("missing fields", br#"{"nonce": "AAAA"}"#.to_vec()),
    ];
    let mut bad_b64 = good.clone();
    bad_b64["attest"] = "!!!".into();
    let mut bad_attest = good.clone();
    bad_attest["attest"] = STANDARD.encode([0xff, 0x54, 0x43, 0x47, 0x80]).into();
    let mut bad_sig = good.clone();
    bad_sig["signature"] = STANDARD.encode([0, 0x14]).into();
    let mut bad_pcr = good.clone();
    bad_pcr["pcrs"]["sha256"]["0"] = "abcd".into();
    let mut bad_bank = good.clone();
    bad_bank["pcrs"]["md5"] = serde_json::json!({"0": "00"});
    let mut bad_log = good.clone();
    bad_log["event_log"] = STANDARD.encode([1, 2, 3, 4, 5]).into();
    let mut short_nonce = good.clone();
    short_nonce["nonce"] = STANDARD.encode([7; 16]).into();
    for (name, v) in [
        ("bad base64", bad_b64),
        ("truncated attest", bad_attest),
        ("truncated signature", bad_sig),
        ("short PCR digest", bad_pcr),
        ("unknown bank", bad_bank),
        ("garbage event log", bad_log),
        ("short nonce", short_nonce),
    ] {
        cases.push((name, serde_json::to_vec(&v).unwrap()));
    }
    for (name, body) in cases {
        let (status, json) = call(&f, post_evidence(Some(id), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {json}");
        assert!(
            !json["error"].as_str().unwrap_or_default().is_empty(),
            "{name}: no message"
        );
    }
    assert_unchanged(&f, &h, &nonce).await;
}

#[tokio::test]
async fn oversized_evidence_is_refused_with_413() {
    let f = fixture().await;
    let (h, id) = trusted_host(&f).await;
    let nonce = issue_nonce(&f, &h).await;
    // An event log just over the 1 MiB limit: refused by size, with the limit named.
    let log = vec![0u8; 1024 * 1024 + 1];
    let body = serde_json::to_vec(&evidence_body(&nonce, Some(&log))).unwrap();
    let (status, json) = call(&f, post_evidence(Some(id), body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("1048576"),
        "{json}"
    );
    // A body over the route's limit: refused before parsing, still a JSON error.
    let log = vec![0u8; vouch_verifier::routes::EVIDENCE_BODY_LIMIT];
    let body = serde_json::to_vec(&evidence_body(&nonce, Some(&log))).unwrap();
    let (status, json) = call(&f, post_evidence(Some(id), body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json["error"].as_str().unwrap().contains("too large"),
        "{json}"
    );
    assert_unchanged(&f, &h, &nonce).await;
}

#[tokio::test]
async fn unknown_nonce_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let (h, id) = trusted_host(&f).await;
    let issued = issue_nonce(&f, &h).await;
    let body = serde_json::to_vec(&evidence_body(&[8u8; 32], None)).unwrap();
    let (status, json) = call(&f, post_evidence(Some(id), body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert!(json["error"].as_str().unwrap().contains("nonce"));
    assert_unchanged(&f, &h, &issued).await;
}

#[tokio::test]
async fn used_nonce_is_refused() {
    let f = fixture().await;
    let (h, id) = trusted_host(&f).await;
    let nonce = issue_nonce(&f, &h).await;
    let body = serde_json::to_vec(&evidence_body(&nonce, None)).unwrap();
    // First use: consumed; the (unsigned) quote fails verification -> untrusted, recorded.
    let (status, json) = call(&f, post_evidence(Some(id), body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "untrusted");
    assert!(
        json["reasons"][0]
            .as_str()
            .unwrap()
            .contains("quote verification failed")
    );
    let store = f.verifier.state().store();
    let after_first = store.host_by_id(h.id).await.unwrap().unwrap();
    // Replay: refused, nothing changes.
    let (status, _) = call(&f, post_evidence(Some(id), body)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(store.host_by_id(h.id).await.unwrap().unwrap(), after_first);
    assert_eq!(store.history(h.id, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn restart_shows_no_host_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let first = Verifier::build(config.clone()).await.unwrap();
    let now = Utc::now();
    let mut h = Host::new("h1".into(), vec![1], vec![2], vec![0, 0x0b], 60, now);
    h.status = HostStatus::Trusted;
    h.next_due = now + Duration::hours(1);
    first.state().store().insert_host(&h).await.unwrap();
    first.state().store().close().await;
    let second = Verifier::build(config).await.unwrap();
    let h = second
        .state()
        .store()
        .host_by_name("h1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.status, HostStatus::Unreachable);
    assert_eq!(h.reasons, [vouch_verifier::RESTART_REASON]);
    assert!(h.next_due <= Utc::now());
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let f = fixture().await;
    let (status, doc) = call(
        &f,
        Request::get("/api/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/agent/enrol",
        "/api/v1/agent/activate",
        "/api/v1/agent/challenge",
        "/api/v1/agent/evidence",
        "/api/v1/agent/status",
        "/api/v1/hosts",
        "/api/v1/hosts/{name}",
        "/api/v1/hosts/{name}/approve",
        "/api/v1/hosts/{name}/attest",
        "/api/v1/hosts/{name}/ek-override",
        "/api/v1/hosts/{name}/baseline",
        "/api/v1/hosts/{name}/history",
        "/api/v1/hosts/{name}/ima-policy",
        "/api/v1/ima/policies",
        "/api/v1/ima/assign",
        "/api/v1/ima/triage",
        "/api/v1/hosts/{name}/ear",
        "/api/v1/policies/{id}",
        "/api/v1/policies",
        "/api/v1/references",
        "/api/v1/references/learn",
        "/api/v1/references/{name}/{action}",
        "/api/v1/rollouts",
        "/api/v1/rollouts/{id}",
        "/api/v1/rollouts/{id}/{action}",
        "/api/v1/fleet/triage",
        "/api/v1/ear/rotate",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    let resp = f
        .verifier
        .router()
        .oneshot(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&text).contains("vouch_hosts{status=\"trusted\"}"),
        "{}",
        String::from_utf8_lossy(&text)
    );
}

/// Over a real TLS socket: the server certificate chains to DATA_DIR/ca.pem, and agent
/// routes refuse a client without a certificate, or with one from another CA.
#[tokio::test]
async fn agent_routes_refuse_clients_without_a_valid_certificate_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let server = vouch_verifier::serve(config).await.unwrap();
    assert_ne!(server.local_addr().port(), 0);
    let ca = std::fs::read(server.ca_path()).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.admin_token_path())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let ca = reqwest::Certificate::from_pem(&ca).unwrap();
    let anonymous = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .build()
        .unwrap();
    let url = |p: &str| format!("https://localhost:{}{p}", server.local_addr().port());
    let health = anonymous.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let resp = anonymous
        .get(url("/api/v1/agent/challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
    let resp = anonymous
        .post(url("/api/v1/agent/evidence"))
        .json(&evidence_body(&[1; 32], None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);

    // A client certificate from a CA the verifier does not know: the handshake fails.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["intruder".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", cert.pem(), key.serialize_pem()).as_bytes())
            .unwrap();
    let intruder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(identity)
        .build()
        .unwrap();
    let result = intruder.get(url("/api/v1/agent/challenge")).send().await;
    assert!(
        result.is_err(),
        "a foreign client certificate must not get through: {result:?}"
    );
    server.shutdown().await;
}

/// GET with the admin token; returns status, content type and the raw body.
async fn get_raw(f: &Fixture, uri: &str, auth: bool) -> (StatusCode, String, String) {
    let mut req = Request::get(uri);
    if auth {
        req = req.header(header::AUTHORIZATION, format!("Bearer {}", f.token));
    }
    let resp = f
        .verifier
        .router()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn served_keys(f: &Fixture) -> vouch_ear::VerificationKeys {
    let (status, _, body) = get_raw(f, "/.well-known/jwks.json", false).await;
    assert_eq!(status, StatusCode::OK);
    vouch_ear::VerificationKeys::from_jwks(&serde_json::from_str(&body).unwrap()).unwrap()
}

fn now_secs() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap()
}

#[tokio::test]
async fn ear_for_a_trusted_host_verifies_with_the_served_jwks() {
    let f = fixture().await;
    let (mut h, _) = trusted_host(&f).await;
    let nonce = vouch_ear::Nonce::new(&[7; 16]).unwrap();
    let uri = format!("/api/v1/hosts/h1/ear?nonce={}", nonce.to_base64url());

    assert_eq!(get_raw(&f, &uri, false).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_raw(&f, "/api/v1/hosts/nope/ear", true).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_raw(&f, "/api/v1/hosts/h1/ear?nonce=short", true)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let (status, ctype, token) = get_raw(&f, &uri, true).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(ctype, "application/jwt");
    let keys = served_keys(&f).await;
    let claims =
        vouch_ear::verify(&token, &keys, "h1", Some(nonce.as_bytes()), now_secs()).unwrap();
    assert_eq!(claims.nonce.as_ref(), Some(&nonce));
    assert_eq!(claims.status, vouch_appraisal::Status::Affirming);
    let tv = claims.appraisal().unwrap().trust_vector;
    assert_eq!(tv.configuration, vouch_appraisal::ar4si::APPROVED_CONFIG);
    assert_eq!(tv.hardware, vouch_appraisal::ar4si::GENUINE_HARDWARE);
    // No EK certificate on record and no IMA: no claim on identity or executables.
    assert_eq!(tv.instance_identity, 0);
    assert_eq!(tv.executables, 0);
    // Another host, or another nonce, is refused.
    assert!(matches!(
        vouch_ear::verify(&token, &keys, "h2", Some(nonce.as_bytes()), now_secs()),
        Err(vouch_ear::EarError::WrongHost { .. })
    ));
    assert_eq!(
        vouch_ear::verify(&token, &keys, "h1", Some(&[8; 16]), now_secs()).unwrap_err(),
        vouch_ear::EarError::NonceMismatch
    );

    // The same host, now untrusted for a PCR: contraindicated on configuration.
    h.status = HostStatus::Untrusted;
    h.reasons = vec!["PCR sha256:0 differs from the baseline".to_owned()];
    f.verifier
        .state()
        .store()
        .update_host(&h, Utc::now())
        .await
        .unwrap();
    let (status, _, token) = get_raw(&f, "/api/v1/hosts/h1/ear", true).await;
    assert_eq!(status, StatusCode::OK);
    let claims = vouch_ear::verify(&token, &keys, "h1", None, now_secs()).unwrap();
    assert_eq!(claims.status, vouch_appraisal::Status::Contraindicated);
    assert_eq!(claims.nonce, None);
    let tv = claims.appraisal().unwrap().trust_vector;
    assert_eq!(
        tv.configuration,
        vouch_appraisal::ar4si::UNSUPPORTABLE_CONFIG
    );
    assert_eq!(tv.executables, 0);
}

#[tokio::test]
async fn ear_expired_or_from_an_unknown_key_is_refused() {
    let f = fixture().await;
    trusted_host(&f).await;
    let keys = served_keys(&f).await;
    // The verifier's own key, persisted in DATA_DIR/ear, signing an hour ago.
    let issuer = vouch_ear::EarIssuer::load_or_create(
        &f._dir.path().join("ear"),
        vouch_ear::IssuerConfig::default(),
        now_secs(),
    )
    .unwrap();
    let verdict = vouch_verifier::ear::verdict_of(
        &f.verifier
            .state()
            .store()
            .host_by_name("h1")
            .await
            .unwrap()
            .unwrap(),
        false,
    );
    assert_eq!(verdict.status, vouch_appraisal::Status::Affirming);
    let old = issuer
        .issue(&verdict, "h1", None, now_secs() - 3600)
        .unwrap();
    assert!(matches!(
        vouch_ear::verify(&old, &keys, "h1", None, now_secs()),
        Err(vouch_ear::EarError::Expired { .. })
    ));
    // Issued now with the same key it verifies, so the refusal above is the expiry.
    let fresh = issuer.issue(&verdict, "h1", None, now_secs()).unwrap();
    vouch_ear::verify(&fresh, &keys, "h1", None, now_secs()).unwrap();
    // A key the verifier does not serve.
    let stranger = vouch_ear::EarIssuer::generate(vouch_ear::IssuerConfig::default()).unwrap();
    let forged = stranger.issue(&verdict, "h1", None, now_secs()).unwrap();
    assert!(matches!(
        vouch_ear::verify(&forged, &keys, "h1", None, now_secs()),
        Err(vouch_ear::EarError::UnknownKey(_))
    ));
}

async fn put_json(
    f: &Fixture,
    uri: &str,
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    call(
        f,
        Request::put(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
    .await
}

fn policy_doc(
    id: &str,
    version: u32,
    components: &[vouch_appraisal::Component],
) -> serde_json::Value {
    serde_json::to_value(vouch_appraisal::PolicyDoc {
        schema: 1,
        id: id.to_owned(),
        version,
        description: None,
        selector: vouch_appraisal::Selector::All,
        rules: components
            .iter()
            .map(|c| vouch_appraisal::Rule::references(*c))
            .collect(),
        rego: None,
    })
    .unwrap()
}

#[tokio::test]
async fn policies_are_validated_versioned_and_audited() {
    use vouch_appraisal::Component::{BootChain, Kernel};
    let f = fixture().await;
    let v1 = policy_doc("r750", 1, &[Kernel]);
    let (status, body) = put_json(&f, "/api/v1/policies/r750", &v1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["created"], true);
    // Same version, same content: no-op; other content: conflict.
    let (status, body) = put_json(&f, "/api/v1/policies/r750", &v1).await;
    assert_eq!(
        (status, &body["created"]),
        (StatusCode::OK, &serde_json::json!(false))
    );
    let other = policy_doc("r750", 1, &[Kernel, BootChain]);
    assert_eq!(
        put_json(&f, "/api/v1/policies/r750", &other).await.0,
        StatusCode::CONFLICT
    );
    let v2 = policy_doc("r750", 2, &[Kernel, BootChain]);
    assert_eq!(
        put_json(&f, "/api/v1/policies/r750", &v2).await.0,
        StatusCode::OK
    );
    // Older than the newest stored version.
    let v0 = policy_doc("r750", 0, &[Kernel]);
    assert_eq!(
        put_json(&f, "/api/v1/policies/r750", &v0).await.0,
        StatusCode::CONFLICT
    );
    // Invalid: no rules, id not the path's, not a policy at all.
    let empty = policy_doc("r750", 3, &[]);
    assert_eq!(
        put_json(&f, "/api/v1/policies/r750", &empty).await.0,
        StatusCode::BAD_REQUEST
    );
    let v3 = policy_doc("other", 3, &[Kernel]);
    assert_eq!(
        put_json(&f, "/api/v1/policies/r750", &v3).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put_json(
            &f,
            "/api/v1/policies/r750",
            &serde_json::json!({"id": "r750"})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let latest = f
        .verifier
        .state()
        .store()
        .latest_appraisal_documents(vouch_store::DOC_POLICY)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!((latest[0].version, &latest[0].json), (2, &v2));
    let audit = f.verifier.state().store().audit_log(50).await.unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.action == "policy_put").count(),
        2,
        "two versions stored, two audit entries"
    );
    // Without the admin token.
    let resp = f
        .verifier
        .router()
        .oneshot(
            Request::put("/api/v1/policies/r750")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&v2).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn references_are_validated_and_each_put_is_a_new_version() {
    let f = fixture().await;
    let reference = |id: &str, digest: &str| {
        serde_json::to_value(vouch_appraisal::ReferenceValue {
            id: id.to_owned(),
            name: "bios-2.19".into(),
            component: vouch_appraisal::Component::PlatformFirmware,
            slot: vouch_appraisal::Slot {
                pcr: 0,
                event_type: "EV_S_CRTM_VERSION".into(),
                ordinal: 0,
            },
            digest: digest.to_owned(),
            detail: None,
            selector: vouch_appraisal::Selector::All,
            provenance: vouch_appraisal::Provenance::Imported {
                operator: "alice".into(),
                at: Utc::now(),
                source: None,
            },
            valid_from: None,
            valid_until: None,
            state: vouch_appraisal::RefState::Active,
        })
        .unwrap()
    };
    let good = serde_json::json!({"refs": [reference("a", &"ab".repeat(32))]});
    let (status, body) = put_json(&f, "/api/v1/references", &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["version"], &body["references"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
    let (status, body) = put_json(&f, "/api/v1/references", &good).await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &serde_json::json!(2))
    );
    // A digest of the wrong shape, and a duplicate id, are refused.
    let bad = serde_json::json!({"refs": [reference("a", "xyz")]});
    assert_eq!(
        put_json(&f, "/api/v1/references", &bad).await.0,
        StatusCode::BAD_REQUEST
    );
    let dup = serde_json::json!({"refs": [reference("a", &"ab".repeat(32)), reference("a", &"cd".repeat(32))]});
    assert_eq!(
        put_json(&f, "/api/v1/references", &dup).await.0,
        StatusCode::BAD_REQUEST
    );
    let latest = f
        .verifier
        .state()
        .store()
        .latest_appraisal_documents(vouch_store::DOC_REFERENCES)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].version, 2);
}

/// The API contract is code: the OpenAPI document generated from the handlers must equal the
/// committed `openapi.json`. After an intended API change, regenerate it with
/// `VOUCH_UPDATE_OPENAPI=1 cargo test -p vouch-verifier --test router openapi` and review the diff.
#[test]
fn openapi_document_matches_the_committed_snapshot() {
    let generated =
        serde_json::to_string_pretty(&vouch_verifier::routes::openapi()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("VOUCH_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "the API changed: regenerate {} with VOUCH_UPDATE_OPENAPI=1 and review the diff",
        path.display()
    );
}

async fn post_json(
    f: &Fixture,
    uri: &str,
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    call(
        f,
        Request::post(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
    .await
}

/// A platform-firmware reference value for cohort `a` (the JSON of `ReferenceValue`).
fn ref_value(id: &str, name: &str, digest: char, state: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({"id": id, "name": name, "component": "platform_firmware",
        "slot": {"pcr": 0, "event_type": "EV_EFI_PLATFORM_FIRMWARE_BLOB", "ordinal": 0},
        "digest": digest.to_string().repeat(64), "detail": null,
        "selector": {"labels": {"cohort": "a"}},
        "provenance": {"kind": "imported", "operator": "t", "at": "2026-01-01T00:00:00Z",
            "source": null},
        "valid_from": null, "valid_until": null, "state": state})
}

#[tokio::test]
async fn fleet_operations_refuse_bad_requests_and_change_nothing() {
    let f = fixture().await;
    let learn = |extra: serde_json::Value| {
        let mut b = serde_json::json!({"name": "fw", "components": ["platform_firmware"]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, want) in [
        // Neither or both sources.
        (learn(serde_json::json!({})), StatusCode::BAD_REQUEST),
        (
            learn(serde_json::json!({"from_host": "h1", "from_cohort": "cohort=a"})),
            StatusCode::BAD_REQUEST,
        ),
        // A host learns only with the selector its values are for.
        (
            learn(serde_json::json!({"from_host": "h1"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            learn(serde_json::json!({"from_host": "nobody", "selector": "cohort=a"})),
            StatusCode::NOT_FOUND,
        ),
        (
            learn(serde_json::json!({"from_cohort": "cohort"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            learn(serde_json::json!({"from_cohort": "cohort=a", "components": ["pcr0"]})),
            StatusCode::BAD_REQUEST,
        ),
        // No host has claims yet.
        (
            learn(serde_json::json!({"from_cohort": "cohort=a"})),
            StatusCode::CONFLICT,
        ),
    ] {
        let (status, resp) = post_json(&f, "/api/v1/references/learn", &body).await;
        assert_eq!(status, want, "{body} -> {resp}");
    }
    let (status, _) = post_json(&f, "/api/v1/references/fw/revoke", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "revoking needs a reason");
    let (status, _) = post_json(
        &f,
        "/api/v1/references/fw/revoke",
        &serde_json::json!({"reason": "CVE"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such release");
    let (status, _) = post_json(&f, "/api/v1/references/fw/burn", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such action");
    let rollout = serde_json::json!({"selector": "cohort=a", "component": "platform_firmware",
        "from": "fw-1", "to": "fw-2"});
    let (status, _) = put_json(&f, "/api/v1/rollouts/r1", &rollout).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "releases must exist");
    let (status, _) = post_json(&f, "/api/v1/rollouts/r1/start", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let store = f.verifier.state().store();
    assert!(
        store
            .appraisal_document_versions()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.audit_log(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn rollout_moves_only_in_order_and_every_step_is_a_new_audited_version() {
    let f = fixture().await;
    // Two releases, stored as data (values need not be measured by anyone for this).
    let active = serde_json::json!({"state": "active"});
    let refs = serde_json::json!({"refs": [
        ref_value("a1", "fw-1", 'a', &active),
        ref_value("b1", "fw-2", 'b', &active),
    ]});
    let (status, body) = put_json(&f, "/api/v1/references", &refs).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rollout = serde_json::json!({"selector": "cohort=a", "component": "platform_firmware",
        "from": "fw-1", "to": "fw-2", "waves": [10, 100]});
    let (status, body) = put_json(&f, "/api/v1/rollouts/r1", &rollout).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "planned");
    let (status, _) = put_json(&f, "/api/v1/rollouts/r1", &rollout).await;
    assert_eq!(status, StatusCode::CONFLICT, "ids are unique");
    let (status, _) = post_json(&f, "/api/v1/rollouts/r1/advance", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not started");
    let (_, body) = post_json(&f, "/api/v1/rollouts/r1/start", &serde_json::json!({})).await;
    assert_eq!(
        (body["wave"].clone(), body["admitted_percent"].clone()),
        (1.into(), 10.into())
    );
    let (status, _) = post_json(&f, "/api/v1/rollouts/r1/complete", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not at the last wave");
    let (_, body) = post_json(&f, "/api/v1/rollouts/r1/advance", &serde_json::json!({})).await;
    assert_eq!(body["admitted_percent"], 100);
    let (status, body) = post_json(
        &f,
        "/api/v1/rollouts/r1/complete",
        &serde_json::json!({"deprecate_until": "2030-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "completed");
    assert_eq!(body["version"], 4);
    // Completing deprecated the old release in the same step.
    let req = Request::get("/api/v1/references")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .body(Body::empty())
        .unwrap();
    let (_, refs) = call(&f, req).await;
    let states: Vec<(String, String)> = refs["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["states"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("fw-1".to_owned(), "deprecated".to_owned()),
            ("fw-2".to_owned(), "active".to_owned())
        ]
    );
    assert_eq!(refs["version"], 2);
    let actions: Vec<String> = f
        .verifier
        .state()
        .store()
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "rollout_complete",
            "rollout_advance",
            "rollout_start",
            "rollout_create",
            "references_put"
        ]
    );
}

#[tokio::test]
async fn rollout_to_a_candidate_of_another_campaign_is_refused() {
    let f = fixture().await;
    let refs = serde_json::json!({"refs": [
        ref_value("a1", "fw-1", 'a', &serde_json::json!({"state": "active"})),
        ref_value("b1", "fw-2", 'b', &serde_json::json!({"state": "candidate", "campaign": "other"})),
    ]});
    let (status, body) = put_json(&f, "/api/v1/references", &refs).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rollout = serde_json::json!({"selector": "cohort=a", "component": "platform_firmware",
        "from": "fw-1", "to": "fw-2"});
    let (status, body) = put_json(&f, "/api/v1/rollouts/r1", &rollout).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("candidate of \"other\""),
        "{body}"
    );
    let (status, _) = put_json(&f, "/api/v1/rollouts/other", &rollout).await;
    assert_eq!(status, StatusCode::OK, "the campaign it was learned for");
}

/// A token of `role` created through the API with the initial admin token.
async fn token_with_role(f: &Fixture, name: &str, role: &str) -> String {
    let req = Request::post("/api/v1/tokens")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"name": name, "role": role}).to_string(),
        ))
        .unwrap();
    let (status, body) = call(f, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], role);
    body["token"].as_str().unwrap().to_owned()
}

/// Every operator route of the OpenAPI document (agent routes excluded), as (method, uri)
/// with path parameters filled in.
async fn operator_routes(f: &Fixture) -> Vec<(String, String)> {
    let (_, doc) = call(
        f,
        Request::get("/api/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let tags = op["tags"].as_array().cloned().unwrap_or_default();
            if tags.iter().any(|t| t == "agent") {
                continue;
            }
            let uri = path
                .replace("{name}", "h1")
                .replace("{id}", "p1")
                .replace("{action}", "start");
            out.push((method.to_uppercase(), uri));
        }
    }
    assert!(
        out.len() > 20,
        "the document lists the operator routes: {out:?}"
    );
    out
}

#[tokio::test]
async fn reader_token_reads_but_gets_403_on_every_changing_route() {
    let f = fixture().await;
    trusted_host(&f).await;
    let reader = token_with_role(&f, "grafana", "reader").await;
    let mut changing = 0;
    for (method, uri) in operator_routes(&f).await {
        let req = Request::builder()
            .method(method.as_str())
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {reader}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, body) = call(&f, req).await;
        if method == "GET" && !uri.starts_with("/api/v1/tokens") {
            assert!(
                status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                "reader must read {uri}: {status} {body}"
            );
        } else {
            changing += 1;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {body}");
        }
    }
    assert!(changing > 15, "only {changing} changing routes walked");
    // What a relying party needs: status, EAR and metrics.
    let (status, _, ear) = {
        let resp = f
            .verifier
            .router()
            .oneshot(
                Request::get("/api/v1/hosts/h1/ear")
                    .header(header::AUTHORIZATION, format!("Bearer {reader}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, (), String::from_utf8(bytes.to_vec()).unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ear.split('.').count(), 3, "a compact JWS");
    let metrics = |auth: Option<String>| {
        let mut req = Request::get("/metrics");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let router = f.verifier.router();
        async move {
            router
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        metrics(Some(format!("Bearer {reader}"))).await,
        StatusCode::OK
    );
    assert_eq!(metrics(None).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn operator_token_cannot_manage_tokens_overrides_or_keys() {
    let f = fixture().await;
    let op = token_with_role(&f, "ops", "operator").await;
    for (method, uri, body) in [
        ("POST", "/api/v1/tokens", r#"{"name":"x","role":"admin"}"#),
        ("GET", "/api/v1/tokens", ""),
        ("DELETE", "/api/v1/tokens/ops", ""),
        (
            "POST",
            "/api/v1/hosts/h1/ek-override",
            r#"{"reason":"r","ek_name":"000b00"}"#,
        ),
        ("POST", "/api/v1/ear/rotate", ""),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {op}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, body) = call(&f, req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {body}");
    }
    // An operator does run the fleet.
    let (status, _) = call(
        &f,
        Request::post("/api/v1/hosts/nobody/attest")
            .header(header::AUTHORIZATION, format!("Bearer {op}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revoked_or_expired_tokens_are_refused_and_the_last_admin_stays() {
    let f = fixture().await;
    let reader = token_with_role(&f, "r1", "reader").await;
    let get = |t: String| {
        let router = f.verifier.router();
        async move {
            router
                .oneshot(
                    Request::get("/api/v1/hosts")
                        .header(header::AUTHORIZATION, format!("Bearer {t}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(reader.clone()).await, StatusCode::OK);
    let del = |name: &str| {
        Request::delete(format!("/api/v1/tokens/{name}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _) = call(&f, del("r1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(reader).await, StatusCode::UNAUTHORIZED);
    // The only admin token cannot be revoked.
    let (status, body) = call(&f, del("initial")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // An expired token is refused.
    let t = Utc::now();
    f.verifier
        .state()
        .store()
        .add_token(
            &vouch_store::ApiToken {
                name: "old".into(),
                role: vouch_store::Role::Admin,
                created_at: t - Duration::days(2),
                expires_at: Some(t - Duration::days(1)),
            },
            &vouch_store::sha256(b"old-token"),
        )
        .await
        .unwrap();
    assert_eq!(get("old-token".into()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn readiness_and_liveness_answer_without_the_sweep() {
    let f = fixture().await;
    for (uri, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let (status, _, body) = get_raw(&f, uri, false).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(body, want);
    }
    // With the store closed, readiness fails and says why; liveness still answers.
    f.verifier.state().store().close().await;
    let (status, _, body) = get_raw(&f, "/readyz", false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("store"), "{body}");
    let (status, _, _) = get_raw(&f, "/healthz", false).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn trusted_host_past_its_freshness_limit_reads_unreachable_everywhere() {
    let f = fixture().await;
    let (mut h, id) = trusted_host(&f).await;
    // The last good appraisal is older than its limit; no sweep has run.
    h.stale_after = Some(Utc::now() - Duration::seconds(1));
    h.status = HostStatus::Trusted;
    f.verifier
        .state()
        .store()
        .update_host(&h, Utc::now())
        .await
        .unwrap();
    let (_, list) = call(
        &f,
        Request::get("/api/v1/hosts")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(list[0]["status"], "unreachable", "{list}");
    let (_, show) = call(
        &f,
        Request::get("/api/v1/hosts/h1")
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(show["status"], "unreachable");
    let mut req = Request::get("/api/v1/agent/status")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(id);
    let (_, own) = call(&f, req).await;
    assert_eq!(own["status"], "unreachable");
    let keys = served_keys(&f).await;
    let (status, _, token) = get_raw(&f, "/api/v1/hosts/h1/ear", true).await;
    assert_eq!(status, StatusCode::OK);
    let claims = vouch_ear::verify(&token, &keys, "h1", None, now_secs()).unwrap();
    assert_eq!(
        claims.status,
        vouch_appraisal::Status::None,
        "no affirming EAR for a stale host"
    );
    let (_, _, metrics) = get_raw(&f, "/metrics", true).await;
    assert!(
        metrics.contains("vouch_hosts{status=\"trusted\"} 0"),
        "{metrics}"
    );
}
