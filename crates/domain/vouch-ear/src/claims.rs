//! The EAR claims set in its JSON (JWT) serialisation, draft-ietf-rats-ear-04 §3 and §4.1.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vouch_appraisal::{PolicyRef, Status, TrustVector, Verdict};

use crate::EarError;

/// The `eat_profile` of the EAR this crate issues (draft-ietf-rats-ear-04 §3: the profile
/// defined by that revision of the draft).
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#04";

/// Shortest nonce accepted in `eat_nonce` (RFC 9711 §4.1: 8 to 64 bytes).
pub const NONCE_MIN: usize = 8;
/// Longest nonce accepted in `eat_nonce`.
pub const NONCE_MAX: usize = 64;

/// A relying party's nonce, 8 to 64 bytes; serialised as base64url without padding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    /// A nonce from raw bytes; `InvalidNonce` unless 8 to 64 bytes long.
    pub fn new(bytes: &[u8]) -> Result<Self, EarError> {
        if (NONCE_MIN..=NONCE_MAX).contains(&bytes.len()) {
            Ok(Self(bytes.to_vec()))
        } else {
            Err(EarError::InvalidNonce(format!(
                "{} bytes, expected {NONCE_MIN} to {NONCE_MAX}",
                bytes.len()
            )))
        }
    }

    /// A nonce from its base64url text (padding optional), as a relying party sends it in a
    /// query string.
    pub fn from_base64url(text: &str) -> Result<Self, EarError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| EarError::InvalidNonce(format!("not base64url: {e}")))?;
        Self::new(&bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The base64url text (no padding).
    #[must_use]
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_base64url())
    }
}

impl Serialize for Nonce {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_base64url(&text).map_err(serde::de::Error::custom)
    }
}

/// `ear_verifier_id`: who built the verifier that made the appraisal (draft-ietf-rats-ear-04 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierId {
    /// The organisation that developed the verifier.
    pub developer: String,
    /// The build of the verifier (name and version).
    pub build: String,
}

impl Default for VerifierId {
    fn default() -> Self {
        Self {
            developer: "https://example.invalid/vouch".to_owned(),
            build: concat!("vouch-verifier ", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// One appraisal in `submods` (draft-ietf-rats-ear-04 §3, `ear-appraisal`). The status and the
/// trust vector are the appraisal engine's own types, which already serialise as the draft's
/// status names and AR4SI kebab-case claim keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appraisal {
    /// `ear_status`: the AR4SI tier of the host.
    #[serde(rename = "ear_status")]
    pub status: Status,
    /// `ear_trustworthiness_vector`: the AR4SI claims (0 = no claim).
    #[serde(rename = "ear_trustworthiness_vector")]
    pub trust_vector: TrustVector,
    /// `ear_appraisal_policy_ids`: the policy the verdict was reached under (absent when none).
    #[serde(
        rename = "ear_appraisal_policy_ids",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub policy_ids: Vec<String>,
}

/// The EAR claims set Vouch issues: one submodule, named by the host id, which is also the JWT
/// `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarClaims {
    /// `eat_profile`: [`EAR_PROFILE`].
    #[serde(rename = "eat_profile")]
    pub profile: String,
    /// `iat`: issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// `exp`: end of validity, seconds since the Unix epoch.
    pub exp: u64,
    /// `sub`: the host id the result is about.
    pub sub: String,
    /// `ear_verifier_id`.
    #[serde(rename = "ear_verifier_id")]
    pub verifier_id: VerifierId,
    /// `ear_status`: the overall status (equal to the only submodule's).
    #[serde(rename = "ear_status")]
    pub status: Status,
    /// `submods`: `{host id: appraisal}`.
    pub submods: BTreeMap<String, Appraisal>,
    /// `eat_nonce`: the relying party's nonce, when it gave one.
    #[serde(rename = "eat_nonce", default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
}

/// The text of `ear_appraisal_policy_ids` for a policy: `vouch:policy/{id}@{version}`.
#[must_use]
pub fn policy_id(policy: &PolicyRef) -> String {
    format!("vouch:policy/{}@{}", policy.id, policy.version)
}

impl EarClaims {
    /// The claims for `verdict` about `host_id`, valid from `iat` until `exp`.
    pub fn from_verdict(
        verdict: &Verdict,
        host_id: &str,
        verifier_id: VerifierId,
        nonce: Option<Nonce>,
        iat: u64,
        exp: u64,
    ) -> Self {
        let appraisal = Appraisal {
            status: verdict.status,
            trust_vector: verdict.trust_vector,
            policy_ids: verdict.policy.iter().map(policy_id).collect(),
        };
        Self {
            profile: EAR_PROFILE.to_owned(),
            iat,
            exp,
            sub: host_id.to_owned(),
            verifier_id,
            status: verdict.status,
            submods: BTreeMap::from([(host_id.to_owned(), appraisal)]),
            nonce,
        }
    }

    /// The appraisal of the host named by `sub`, if the token has one.
    #[must_use]
    pub fn appraisal(&self) -> Option<&Appraisal> {
        self.submods.get(&self.sub)
    }
}
