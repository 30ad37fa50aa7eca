//! Verification of EAR tokens, as a relying party (or our own tests) does it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::EarError;
use crate::claims::{EAR_PROFILE, EarClaims};
use crate::keys::kid_of;

/// Seconds an `iat` may lie in the verifier's future (clocks of issuer and relying party
/// differ). `exp` has no leeway.
pub const IAT_LEEWAY_SECS: u64 = 30;

/// One ES256 public key (P-256) with its `kid`.
#[derive(Debug, Clone)]
pub struct PublicKey {
    kid: String,
    point: [u8; 65],
    decoding: DecodingKey,
}

impl PublicKey {
    /// A key from its uncompressed point (`04 || x || y`), checked to be on the curve; its
    /// `kid` is derived with [`kid_of`].
    pub fn from_point(point: [u8; 65]) -> Result<Self, EarError> {
        Self::with_kid(kid_of(&point), point)
    }

    fn with_kid(kid: String, point: [u8; 65]) -> Result<Self, EarError> {
        if point.first() != Some(&0x04) || !on_curve(&point) {
            return Err(EarError::Malformed(format!("key {kid}: not a P-256 point")));
        }
        Ok(Self {
            kid,
            point,
            decoding: DecodingKey::from_ec_der(&point),
        })
    }

    /// The `kid`.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The RFC 7517 JWK (kty EC, crv P-256, x, y, kid, alg ES256, use sig).
    #[must_use]
    pub fn jwk(&self) -> serde_json::Value {
        jwk_with_kid(&self.kid, &self.point)
    }

    pub(crate) fn jwk_of(point: &[u8; 65]) -> serde_json::Value {
        jwk_with_kid(&kid_of(point), point)
    }
}

fn jwk_with_kid(kid: &str, point: &[u8; 65]) -> serde_json::Value {
    let x = point.get(1..33).unwrap_or_default();
    let y = point.get(33..65).unwrap_or_default();
    serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
    })
}

/// Whether `point` is a valid P-256 public key. ECDSA verification in aws-lc-rs does not say
/// why it failed, so a key off the curve would only show up as "bad signature"; an ECDH
/// agreement with a fresh private key succeeds exactly when the peer point is valid.
fn on_curve(point: &[u8; 65]) -> bool {
    use aws_lc_rs::agreement::{
        ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey as Peer, agree_ephemeral,
    };
    use aws_lc_rs::rand::SystemRandom;
    let Ok(me) = EphemeralPrivateKey::generate(&ECDH_P256, &SystemRandom::new()) else {
        return false;
    };
    agree_ephemeral(me, Peer::new(&ECDH_P256, point), (), |_| Ok(())).is_ok()
}

/// The keys a token may be signed with, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct VerificationKeys {
    keys: BTreeMap<String, PublicKey>,
}

impl VerificationKeys {
    /// Add a key; `Malformed` if its `kid` is already present.
    pub fn insert(&mut self, key: PublicKey) -> Result<(), EarError> {
        if self.keys.contains_key(&key.kid) {
            return Err(EarError::Malformed(format!("duplicate kid {}", key.kid)));
        }
        self.keys.insert(key.kid.clone(), key);
        Ok(())
    }

    /// The keys of an RFC 7517 JWK set (`{"keys": [...]}`), as served at
    /// `/.well-known/jwks.json`. Keys that are not P-256 signing keys for ES256 are skipped;
    /// a P-256 key without a `kid`, with bad coordinates or a duplicate `kid` is `Malformed`.
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<Self, EarError> {
        let list = jwks
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| EarError::Malformed("JWK set without a keys array".to_owned()))?;
        let mut out = Self::default();
        for jwk in list {
            let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
            let usable = field("kty") == Some("EC")
                && field("crv") == Some("P-256")
                && field("alg").is_none_or(|a| a == "ES256")
                && field("use").is_none_or(|u| u == "sig");
            if !usable {
                continue;
            }
            let kid =
                field("kid").ok_or_else(|| EarError::Malformed("JWK without kid".to_owned()))?;
            let coord = |name: &str| -> Result<Vec<u8>, EarError> {
                let bytes = field(name)
                    .map(|t| URL_SAFE_NO_PAD.decode(t))
                    .transpose()
                    .map_err(|e| EarError::Malformed(format!("JWK {kid}: {name}: {e}")))?
                    .ok_or_else(|| EarError::Malformed(format!("JWK {kid}: no {name}")))?;
                if bytes.len() == 32 {
                    Ok(bytes)
                } else {
                    Err(EarError::Malformed(format!(
                        "JWK {kid}: {name} is not 32 bytes"
                    )))
                }
            };
            let mut point = [0x04u8; 65];
            let (x, y) = (coord("x")?, coord("y")?);
            for (dst, src) in point.iter_mut().skip(1).zip(x.iter().chain(y.iter())) {
                *dst = *src;
            }
            out.insert(PublicKey::with_kid(kid.to_owned(), point)?)?;
        }
        Ok(out)
    }

    /// The key named `kid`.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.get(kid)
    }

    /// The `kid`s held.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key (then every token is refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verify an EAR token: ES256 only, signed by the key its `kid` names among `keys`, issued by
/// this profile, not expired at `now` (Unix seconds), about `expected_host` (JWT `sub` and the
/// only submodule), and echoing `expected_nonce` when one is given.
///
/// The checks run in that order, so the error names the first failure: a token with an unknown
/// key is `UnknownKey` whatever its claims say, and no claim is trusted before the signature has
/// been checked over the bytes received.
pub fn verify(
    token: &str,
    keys: &VerificationKeys,
    expected_host: &str,
    expected_nonce: Option<&[u8]>,
    now: u64,
) -> Result<EarClaims, EarError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EarError::Malformed(
            "not a compact JWS (three parts)".to_owned(),
        ));
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|e| EarError::Malformed(format!("header: {e}")))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header_bytes)
        .map_err(|e| EarError::Malformed(format!("header: {e}")))?;
    match header.get("alg").and_then(serde_json::Value::as_str) {
        Some("ES256") => {}
        Some(other) => return Err(EarError::UnsupportedAlgorithm(other.to_owned())),
        None => return Err(EarError::Malformed("header without alg".to_owned())),
    }
    if header.contains_key("crit") {
        return Err(EarError::Malformed(
            "critical header parameters are not supported".to_owned(),
        ));
    }
    let kid = header
        .get("kid")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| EarError::UnknownKey("(none)".to_owned()))?;
    let key = keys
        .keys
        .get(kid)
        .ok_or_else(|| EarError::UnknownKey(kid.to_owned()))?;

    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let claims: EarClaims = jsonwebtoken::decode(token, &key.decoding, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey => EarError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                EarError::UnsupportedAlgorithm(e.to_string())
            }
            _ => EarError::Malformed(e.to_string()),
        })?
        .claims;

    if claims.profile != EAR_PROFILE {
        return Err(EarError::Malformed(format!(
            "eat_profile {}",
            claims.profile
        )));
    }
    if now >= claims.exp {
        return Err(EarError::Expired {
            exp: claims.exp,
            now,
        });
    }
    if claims.iat > now.saturating_add(IAT_LEEWAY_SECS) || claims.iat > claims.exp {
        return Err(EarError::NotYetValid {
            iat: claims.iat,
            now,
        });
    }
    let only_submod = claims.submods.len() == 1 && claims.submods.contains_key(expected_host);
    if claims.sub != expected_host || !only_submod {
        return Err(EarError::WrongHost {
            expected: expected_host.to_owned(),
            found: claims.sub.clone(),
        });
    }
    if let Some(expected) = expected_nonce {
        let echoed = claims.nonce.as_ref().map(crate::Nonce::as_bytes);
        if echoed != Some(expected) {
            return Err(EarError::NonceMismatch);
        }
    }
    Ok(claims)
}

/// Check an ES256 signature over `signing_input` with aws-lc-rs alone (no JWT library): used
/// by tests as an independent check of what jsonwebtoken produces.
#[cfg(test)]
pub(crate) fn raw_es256_ok(key: &PublicKey, signing_input: &[u8], sig: &[u8]) -> bool {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.point)
        .verify(signing_input, sig)
        .is_ok()
}
