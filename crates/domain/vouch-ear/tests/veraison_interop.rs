//! Interop: Veraison's `ear` crate (0.6, draft-ietf-rats-ear-04) decodes a token we issue and
//! verifies its signature with the JWK we publish. `ear` is a dev-dependency only (its `cmw`
//! dependency build-depends on reqwest/native-tls/OpenSSL); it must never reach the verifier.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "tests"
)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use vouch_appraisal::{PolicyRef, Status, TrustVector, Verdict};
use vouch_ear::{EAR_PROFILE, EarIssuer, IssuerConfig, Nonce};

fn now() -> u64 {
    // `ear` checks `exp` against the system clock, so this test uses it too.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn verdict(status: Status, executables: i8) -> Verdict {
    Verdict {
        host: "node-a".to_owned(),
        policy: Some(PolicyRef {
            id: "r750".to_owned(),
            version: 3,
        }),
        status,
        trust_vector: TrustVector {
            instance_identity: 2,
            configuration: 2,
            executables,
            hardware: 2,
            ..TrustVector::default()
        },
        reasons: Vec::new(),
        notes: Vec::new(),
    }
}

#[test]
fn veraison_ear_crate_verifies_our_token_with_our_jwk() {
    let issuer = EarIssuer::generate(IssuerConfig::default()).unwrap();
    let nonce = Nonce::new(b"relying-party-nonce").unwrap();
    let now = now();
    let token = issuer
        .issue(&verdict(Status::Affirming, 3), "host-17", Some(&nonce), now)
        .unwrap();
    let jwk = issuer.jwks()["keys"][0].to_string();

    let ear = ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, jwk.as_bytes())
        .expect("ear 0.6 verifies our ES256 signature and parses our claims");
    ear.validate()
        .expect("our claims set is a valid EAR for ear 0.6");

    assert_eq!(ear.profile, EAR_PROFILE);
    assert_eq!(ear.profile, ear::EAR_PROFILE);
    assert_eq!(ear.iat, i64::try_from(now).unwrap());
    assert_eq!(ear.exp, Some(i64::try_from(now + 300).unwrap()));
    assert_eq!(
        ear.vid.build,
        concat!("vouch-verifier ", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        ear.status.map(|s| s.to_string()).as_deref(),
        Some("affirming")
    );
    let n = ear.nonce.as_ref().unwrap();
    assert_eq!(serde_json::to_value(n).unwrap(), nonce.to_base64url());

    let a = ear
        .submods
        .get("host-17")
        .expect("submodule named by the host id");
    assert_eq!(a.status.to_string(), "affirming");
    assert_eq!(a.policy_ids, vec!["vouch:policy/r750@3".to_owned()]);
    let tv = serde_json::to_value(a.trust_vector).unwrap();
    assert_eq!(tv["instance-identity"], 2);
    assert_eq!(tv["configuration"], 2);
    assert_eq!(tv["executables"], 3);
    assert_eq!(tv["hardware"], 2);
}

#[test]
fn veraison_ear_crate_reads_a_contraindicated_verdict() {
    let issuer = EarIssuer::generate(IssuerConfig::default()).unwrap();
    let token = issuer
        .issue(
            &verdict(Status::Contraindicated, 96),
            "host-18",
            None,
            now(),
        )
        .unwrap();
    let jwk = issuer.jwks()["keys"][0].to_string();
    let ear = ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, jwk.as_bytes()).unwrap();
    ear.validate().unwrap();
    let a = ear.submods.get("host-18").unwrap();
    assert_eq!(a.status.to_string(), "contraindicated");
    assert_eq!(
        serde_json::to_value(a.trust_vector).unwrap()["executables"],
        96
    );
    assert!(ear.nonce.is_none());
}

#[test]
fn veraison_ear_crate_refuses_our_token_under_another_key() {
    let issuer = EarIssuer::generate(IssuerConfig::default()).unwrap();
    let other = EarIssuer::generate(IssuerConfig::default()).unwrap();
    let token = issuer
        .issue(&verdict(Status::Affirming, 3), "host-17", None, now())
        .unwrap();
    let jwk = other.jwks()["keys"][0].to_string();
    assert!(ear::Ear::from_jwt_jwk(&token, ear::Algorithm::ES256, jwk.as_bytes()).is_err());
}

#[test]
fn we_check_the_signature_of_a_token_signed_by_the_veraison_ear_crate() {
    // The other direction: ear 0.6 signs with the P-256 key from its own documentation, we
    // read the matching JWK. Its claims set has no `sub`, so our verifier (which binds a token
    // to a host by `sub`) refuses it as malformed, but only after the signature has verified:
    // the same token with one signature bit flipped is a bad signature instead.
    let pem = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPp4XZRnRHSMhGg0t
6yjQCRV35J4TUY4idLgiCu6EyLqhRANCAAQbx8C533c2AKDwL/RtjVipVnnM2WRv
5w2wZNCJrubSK0StYKJ71CikDgkhw8M90ojfRIowqpl0uLA3kW3PEZy9
-----END PRIVATE KEY-----
";
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "veraison-test",
        "x": "G8fAud93NgCg8C_0bY1YqVZ5zNlkb-cNsGTQia7m0is",
        "y": "RK1gonvUKKQOCSHDwz3SiN9EijCqmXS4sDeRbc8RnL0",
    }]});
    let now = now();
    let mut e = ear::Ear::new();
    e.profile = ear::EAR_PROFILE.to_owned();
    e.iat = i64::try_from(now).unwrap();
    e.exp = Some(i64::try_from(now + 60).unwrap());
    e.vid = ear::VerifierID {
        developer: "https://veraison-project.org".to_owned(),
        build: "vts 0.0.1".to_owned(),
    };
    let mut a = ear::Appraisal::new();
    a.status = ear::TrustTier::Affirming;
    e.submods.insert("host-17".to_owned(), a);
    e.status = Some(ear::TrustTier::Affirming);
    let mut header = ear::new_jwt_header(&ear::Algorithm::ES256).unwrap();
    header.kid = Some("veraison-test".to_owned());
    let token = e.sign_jwt_pem_with_header(&header, pem.as_bytes()).unwrap();

    let keys = vouch_ear::VerificationKeys::from_jwks(&jwks).unwrap();
    let err = vouch_ear::verify(&token, &keys, "host-17", None, now).unwrap_err();
    assert!(matches!(&err, vouch_ear::EarError::Malformed(_)), "{err:?}");

    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[5] ^= 1;
    let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let err = vouch_ear::verify(&flipped, &keys, "host-17", None, now).unwrap_err();
    assert_eq!(err, vouch_ear::EarError::BadSignature);
}
