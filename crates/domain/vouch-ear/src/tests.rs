use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use vouch_appraisal::{PolicyRef, Status, TrustVector, Verdict};

use super::*;

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const HOST: &str = "host-17";

fn verdict() -> Verdict {
    Verdict {
        host: HOST.to_owned(),
        policy: Some(PolicyRef {
            id: "r750".to_owned(),
            version: 3,
        }),
        status: Status::Affirming,
        trust_vector: TrustVector {
            instance_identity: 2,
            configuration: 2,
            executables: 3,
            hardware: 2,
            ..TrustVector::default()
        },
        reasons: Vec::new(),
        notes: Vec::new(),
    }
}

fn issuer() -> EarIssuer {
    EarIssuer::generate(IssuerConfig::default()).unwrap()
}

fn nonce() -> Nonce {
    Nonce::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).unwrap()
}

fn keys(i: &EarIssuer, now: u64) -> VerificationKeys {
    i.verification_keys(now).unwrap()
}

fn part(token: &str, n: usize) -> serde_json::Value {
    let p = token.split('.').nth(n).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn forge(header: &serde_json::Value, claims: &serde_json::Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[test]
fn issued_token_verifies() {
    let i = issuer();
    let n = nonce();
    let token = i.issue(&verdict(), HOST, Some(&n), NOW).unwrap();
    let claims = verify(&token, &keys(&i, NOW), HOST, Some(n.as_bytes()), NOW + 1).unwrap();
    assert_eq!(claims.sub, HOST);
    assert_eq!(claims.iat, NOW);
    assert_eq!(claims.exp, NOW + 300);
    assert_eq!(claims.status, Status::Affirming);
    assert_eq!(claims.nonce.as_ref(), Some(&n));
    let a = claims.appraisal().unwrap();
    assert_eq!(a.trust_vector, verdict().trust_vector);
    assert_eq!(a.policy_ids, vec!["vouch:policy/r750@3".to_owned()]);
    let header = part(&token, 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], i.current_kid());
}

#[test]
fn signature_is_plain_es256_over_the_signing_input() {
    // Independent of jsonwebtoken: aws-lc-rs checks r||s over "header.payload".
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert_eq!(sig.len(), 64);
    let ks = keys(&i, NOW);
    let key = ks.get(i.current_kid()).unwrap();
    assert!(verify::raw_es256_ok(key, input.as_bytes(), &sig));
    assert!(!verify::raw_es256_ok(key, b"other input", &sig));
}

#[test]
fn claims_use_the_draft_04_names() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, Some(&nonce()), NOW).unwrap();
    let got = part(&token, 1);
    let want = serde_json::json!({
        "eat_profile": "tag:ietf.org,2026:rats/ear#04",
        "iat": NOW,
        "exp": NOW + 300,
        "sub": HOST,
        "ear_verifier_id": {
            "developer": "https://example.invalid/vouch",
            "build": concat!("vouch-verifier ", env!("CARGO_PKG_VERSION")),
        },
        "ear_status": "affirming",
        "submods": { HOST: {
            "ear_status": "affirming",
            "ear_trustworthiness_vector": {
                "instance-identity": 2, "configuration": 2, "executables": 3, "file-system": 0,
                "hardware": 2, "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0,
            },
            "ear_appraisal_policy_ids": ["vouch:policy/r750@3"],
        }},
        "eat_nonce": "AQIDBAUGBwgJCgsM",
    });
    assert_eq!(got, want);
}

#[test]
fn policy_ids_are_omitted_without_a_policy_and_nonce_without_one_given() {
    let i = issuer();
    let mut v = verdict();
    v.policy = None;
    let token = i.issue(&v, HOST, None, NOW).unwrap();
    let got = part(&token, 1);
    assert!(
        got["submods"][HOST]
            .get("ear_appraisal_policy_ids")
            .is_none()
    );
    assert!(got.get("eat_nonce").is_none());
    verify(&token, &keys(&i, NOW), HOST, None, NOW).unwrap();
}

#[test]
fn unknown_kid_is_refused() {
    let ours = issuer();
    let theirs = issuer();
    let token = theirs.issue(&verdict(), HOST, None, NOW).unwrap();
    let err = verify(&token, &keys(&ours, NOW), HOST, None, NOW).unwrap_err();
    assert_eq!(err, EarError::UnknownKey(theirs.current_kid().to_owned()));
}

#[test]
fn token_without_kid_is_refused_as_unknown_key() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    let (_, rest) = token.split_once('.').unwrap();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"JWT"}"#);
    let err = verify(&format!("{header}.{rest}"), &keys(&i, NOW), HOST, None, NOW).unwrap_err();
    assert!(matches!(err, EarError::UnknownKey(_)), "{err:?}");
}

#[test]
fn key_swapped_under_a_known_kid_is_a_bad_signature() {
    // Another issuer's token relabelled with our kid: the kid is known, the signature is not ours.
    let ours = issuer();
    let theirs = issuer();
    let token = theirs.issue(&verdict(), HOST, None, NOW).unwrap();
    let mut header = part(&token, 0);
    header["kid"] = ours.current_kid().into();
    let (_, rest) = token.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let err = verify(&relabelled, &keys(&ours, NOW), HOST, None, NOW).unwrap_err();
    assert_eq!(err, EarError::BadSignature);
}

#[test]
fn after_rotation_old_tokens_verify_within_grace_and_new_tokens_use_the_new_kid() {
    let mut i = issuer();
    let old_kid = i.current_kid().to_owned();
    let old_token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    i.rotate(NOW + 10).unwrap();
    assert_ne!(i.current_kid(), old_kid);
    let new_token = i.issue(&verdict(), HOST, None, NOW + 20).unwrap();
    assert_eq!(part(&new_token, 0)["kid"], i.current_kid());

    let ks = keys(&i, NOW + 20);
    assert_eq!(ks.len(), 2);
    verify(&old_token, &ks, HOST, None, NOW + 20).unwrap();
    verify(&new_token, &ks, HOST, None, NOW + 20).unwrap();

    // The JWKS publishes both, current first, and a relying party using it agrees.
    let jwks = i.jwks();
    assert_eq!(jwks["keys"][0]["kid"], i.current_kid());
    assert_eq!(jwks["keys"][1]["kid"], old_kid.as_str());
    let from_jwks = VerificationKeys::from_jwks(&jwks).unwrap();
    verify(&old_token, &from_jwks, HOST, None, NOW + 20).unwrap();
}

#[test]
fn retired_key_is_dropped_after_the_grace_period() {
    let mut i = EarIssuer::generate(IssuerConfig {
        validity_secs: 300,
        grace_secs: 600,
        ..IssuerConfig::default()
    })
    .unwrap();
    let old_kid = i.current_kid().to_owned();
    i.rotate(NOW).unwrap();
    assert_eq!(keys(&i, NOW + 599).len(), 2);
    assert_eq!(keys(&i, NOW + 600).len(), 1);
    i.rotate(NOW + 600).unwrap();
    let kids: Vec<String> = i.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(!kids.contains(&old_kid));
}

#[test]
fn grace_period_is_never_shorter_than_token_validity() {
    let mut i = EarIssuer::generate(IssuerConfig {
        validity_secs: 300,
        grace_secs: 0,
        ..IssuerConfig::default()
    })
    .unwrap();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    i.rotate(NOW + 1).unwrap();
    verify(&token, &keys(&i, NOW + 299), HOST, None, NOW + 299).unwrap();
}

#[test]
fn expired_token_is_refused() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    verify(&token, &keys(&i, NOW), HOST, None, NOW + 299).unwrap();
    let err = verify(&token, &keys(&i, NOW), HOST, None, NOW + 300).unwrap_err();
    assert_eq!(
        err,
        EarError::Expired {
            exp: NOW + 300,
            now: NOW + 300
        }
    );
}

#[test]
fn token_from_the_future_is_not_yet_valid() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    verify(&token, &keys(&i, NOW), HOST, None, NOW - IAT_LEEWAY_SECS).unwrap();
    let err = verify(
        &token,
        &keys(&i, NOW),
        HOST,
        None,
        NOW - IAT_LEEWAY_SECS - 1,
    )
    .unwrap_err();
    assert!(matches!(err, EarError::NotYetValid { .. }), "{err:?}");
}

#[test]
fn token_for_another_host_is_refused() {
    let i = issuer();
    let token = i.issue(&verdict(), "host-18", None, NOW).unwrap();
    let err = verify(&token, &keys(&i, NOW), HOST, None, NOW).unwrap_err();
    assert_eq!(
        err,
        EarError::WrongHost {
            expected: HOST.to_owned(),
            found: "host-18".to_owned()
        }
    );
}

#[test]
fn nonce_mismatch_is_refused() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, Some(&nonce()), NOW).unwrap();
    let err = verify(&token, &keys(&i, NOW), HOST, Some(&[9u8; 12]), NOW).unwrap_err();
    assert_eq!(err, EarError::NonceMismatch);
    // A token without a nonce does not satisfy a caller that sent one.
    let bare = i.issue(&verdict(), HOST, None, NOW).unwrap();
    let err = verify(&bare, &keys(&i, NOW), HOST, Some(nonce().as_bytes()), NOW).unwrap_err();
    assert_eq!(err, EarError::NonceMismatch);
}

#[test]
fn nonce_must_be_8_to_64_bytes_of_base64url() {
    assert!(matches!(
        Nonce::new(&[0; 7]),
        Err(EarError::InvalidNonce(_))
    ));
    assert!(Nonce::new(&[0; 8]).is_ok());
    assert!(Nonce::new(&[0; 64]).is_ok());
    assert!(matches!(
        Nonce::new(&[0; 65]),
        Err(EarError::InvalidNonce(_))
    ));
    assert!(matches!(
        Nonce::from_base64url("a+b/"),
        Err(EarError::InvalidNonce(_))
    ));
    let n = Nonce::from_base64url("AQIDBAUGBwgJCgsM").unwrap();
    assert_eq!(n, nonce());
    assert_eq!(Nonce::from_base64url("AQIDBAUGBwgJCgsM==").unwrap(), n);
}

#[test]
fn tampered_payload_is_refused() {
    let i = issuer();
    let mut v = verdict();
    v.status = Status::Contraindicated;
    v.trust_vector.executables = 96;
    let token = i.issue(&v, HOST, None, NOW).unwrap();
    let mut claims = part(&token, 1);
    claims["ear_status"] = "affirming".into();
    claims["submods"][HOST]["ear_status"] = "affirming".into();
    claims["submods"][HOST]["ear_trustworthiness_vector"]["executables"] = 3.into();
    let sig = token.rsplit('.').next().unwrap();
    let tampered = forge(&part(&token, 0), &claims, sig);
    let err = verify(&tampered, &keys(&i, NOW), HOST, None, NOW).unwrap_err();
    assert_eq!(err, EarError::BadSignature);
    // A flipped signature bit too.
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[10] ^= 1;
    let (input, _) = token.rsplit_once('.').unwrap();
    let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(
        verify(&flipped, &keys(&i, NOW), HOST, None, NOW).unwrap_err(),
        EarError::BadSignature
    );
}

#[test]
fn alg_none_is_refused() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": i.current_kid()});
    for sig in ["", "AAAA"] {
        let unsigned = forge(&header, &part(&token, 1), sig);
        let err = verify(&unsigned, &keys(&i, NOW), HOST, None, NOW).unwrap_err();
        assert_eq!(err, EarError::UnsupportedAlgorithm("none".to_owned()));
    }
}

#[test]
fn algorithms_other_than_es256_are_refused() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    let sig = token.rsplit('.').next().unwrap();
    for alg in ["HS256", "ES384", "RS256", "EdDSA", "es256"] {
        let header = serde_json::json!({"alg": alg, "kid": i.current_kid()});
        let err = verify(
            &forge(&header, &part(&token, 1), sig),
            &keys(&i, NOW),
            HOST,
            None,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err, EarError::UnsupportedAlgorithm(alg.to_owned()));
    }
}

#[test]
fn malformed_tokens_are_refused() {
    let i = issuer();
    let ks = keys(&i, NOW);
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.AA", &format!("{token}.x")] {
        let err = verify(bad, &ks, HOST, None, NOW).unwrap_err();
        assert!(matches!(err, EarError::Malformed(_)), "{bad}: {err:?}");
    }
    let header = serde_json::json!({"alg": "ES256", "kid": i.current_kid(), "crit": ["exp"]});
    let sig = token.rsplit('.').next().unwrap();
    let err = verify(&forge(&header, &part(&token, 1), sig), &ks, HOST, None, NOW).unwrap_err();
    assert!(matches!(err, EarError::Malformed(_)), "{err:?}");
}

#[test]
fn no_keys_refuses_every_token() {
    let i = issuer();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    let empty = VerificationKeys::default();
    assert!(empty.is_empty());
    assert!(matches!(
        verify(&token, &empty, HOST, None, NOW),
        Err(EarError::UnknownKey(_))
    ));
}

#[test]
fn jwks_has_the_rfc7517_members() {
    let i = issuer();
    let jwks = i.jwks();
    let k = &jwks["keys"][0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kid"], i.current_kid());
    for c in ["x", "y"] {
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(k[c].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
    // kid = base64url(SHA-256(SPKI)[..16]): 16 bytes, 22 characters.
    assert_eq!(i.current_kid().len(), 22);
}

#[test]
fn jwks_with_a_point_off_the_curve_is_refused() {
    let i = issuer();
    let mut jwks = i.jwks();
    let mut y = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["y"].as_str().unwrap())
        .unwrap();
    y[31] ^= 1;
    jwks["keys"][0]["y"] = URL_SAFE_NO_PAD.encode(y).into();
    assert!(matches!(
        VerificationKeys::from_jwks(&jwks),
        Err(EarError::Malformed(_))
    ));
}

#[test]
fn jwks_skips_keys_of_other_types() {
    let i = issuer();
    let mut jwks = i.jwks();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"kty": "RSA", "kid": "rsa-1", "n": "AQAB", "e": "AQAB"}));
    let ks = VerificationKeys::from_jwks(&jwks).unwrap();
    assert_eq!(ks.kids().collect::<Vec<_>>(), vec![i.current_kid()]);
}

#[test]
fn saved_keys_reload_with_mode_0600_and_keep_their_kids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ear");
    let mut i = EarIssuer::load_or_create(&path, IssuerConfig::default(), NOW).unwrap();
    let first = i.current_kid().to_owned();
    let token = i.issue(&verdict(), HOST, None, NOW).unwrap();
    i.rotate(NOW + 5).unwrap();
    i.save(&path).unwrap();
    for f in [SIGNING_KEY_FILE, RETIRED_KEYS_FILE] {
        let mode = std::fs::metadata(path.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let back = EarIssuer::load_or_create(&path, IssuerConfig::default(), NOW + 10).unwrap();
    assert_eq!(back.current_kid(), i.current_kid());
    assert_ne!(back.current_kid(), first);
    verify(&token, &keys(&back, NOW + 10), HOST, None, NOW + 10).unwrap();
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let i = EarIssuer::load_or_create(dir.path(), IssuerConfig::default(), NOW).unwrap();
    drop(i);
    let key = dir.path().join(SIGNING_KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = EarIssuer::load_or_create(dir.path(), IssuerConfig::default(), NOW).unwrap_err();
    assert!(matches!(err, EarError::KeyStore(_)), "{err:?}");
}

#[test]
fn debug_output_does_not_show_the_private_key() {
    let i = issuer();
    let text = format!("{i:?}");
    assert!(text.contains(i.current_kid()));
    assert!(!text.contains("pkcs8"));
}

#[test]
fn token_never_outlives_the_appraisal_it_reports() {
    let i = issuer();
    let now = 1_767_225_600;
    let token = i
        .issue_until(&verdict(), "host-17", None, now, Some(now + 30))
        .unwrap();
    assert_eq!(part(&token, 1)["exp"], now + 30);
    // A later limit than the validity keeps the validity.
    let token = i
        .issue_until(&verdict(), "host-17", None, now, Some(now + 100_000))
        .unwrap();
    assert_eq!(part(&token, 1)["exp"], now + 300);
    // An appraisal that has already expired is not signed.
    assert!(
        i.issue_until(&verdict(), "host-17", None, now, Some(now))
            .is_err()
    );
}
