//! Signed attestation results for relying parties: EAR tokens.
//!
//! Implements the JWT serialisation of an EAT Attestation Result, **draft-ietf-rats-ear-04**
//! (May 2026; profile `tag:ietf.org,2026:rats/ear#04`), whose trustworthiness vector and status
//! tiers are those of **draft-ietf-rats-ar4si** (as carried by [`vouch_appraisal::TrustVector`]
//! and [`vouch_appraisal::Status`]); `eat_nonce` follows RFC 9711 §4.1 (8 to 64 bytes,
//! base64url in JSON). Tokens are compact JWS (RFC 7515) with `alg: ES256` (P-256, RFC 7518
//! §3.4) and a `kid`; public keys are published as an RFC 7517 JWK set.
//!
//! Claim names follow revision -04, which replaced the dotted names of the individual drafts
//! (`ear.status`, `ear.verifier-id`, `ear.trustworthiness-vector`, and the profile
//! `tag:github.com,2023:veraison/ear`) by `ear_status`, `ear_verifier_id`,
//! `ear_trustworthiness_vector`, and made `ear_appraisal_policy_ids` an array. Veraison's `ear`
//! crate 0.6 reads this revision; its interop test is in `tests/veraison_interop.rs`.
//!
//! ```json
//! {
//!   "eat_profile": "tag:ietf.org,2026:rats/ear#04",
//!   "iat": 1767225600, "exp": 1767225900, "sub": "host-17",
//!   "ear_verifier_id": { "developer": "...", "build": "vouch-verifier 0.1.0" },
//!   "ear_status": "affirming",
//!   "submods": { "host-17": {
//!     "ear_status": "affirming",
//!     "ear_trustworthiness_vector": { "instance-identity": 2, "configuration": 2, "executables": 3, ... },
//!     "ear_appraisal_policy_ids": ["vouch:policy/r750@3"] } },
//!   "eat_nonce": "AAECAwQFBgc"
//! }
//! ```
//!
//! # What a relying party may conclude from a token that [`verify`] accepts
//!
//! - The Vouch verifier holding the private key of `kid` (a key the relying party obtained
//!   from that verifier's `/.well-known/jwks.json` over an authenticated channel) appraised
//!   the host named by `sub`, at `iat`, under the policy named in `ear_appraisal_policy_ids`,
//!   and reached that status and trust vector.
//! - With a nonce: the token was made after the relying party chose that nonce (freshness
//!   of the *result*, not of the evidence: the verdict is the verifier's latest for the host,
//!   appraised from the host's most recent quote).
//! - Nothing about the host beyond what the verifier appraises (boot chain, Secure Boot state,
//!   firmware; claims left at 0 are "no claim", not "fine"), nothing about the host after `iat`,
//!   and nothing if the verifier, its data directory (which holds the signing key) or its
//!   reference values are compromised. The `sub` is the verifier's host id, bound to the TPM's
//!   EK and AK at enrolment; mapping it to a network identity is the relying party's job.
//! - Tokens are bearer statements: anyone holding one can present it until `exp` (default 5
//!   minutes). Retired keys stay published and verifiable for a grace period of at least the
//!   token validity, so rotation never invalidates a token before it expires.
//!
//! # Trust assumptions of this crate
//!
//! The JWKS given to [`verify`] is trusted; the token is not: the `alg` is read and checked
//! (ES256 only, never `none`) before anything else, the key is found by `kid` only among the
//! given keys, the signature is checked over the bytes received, and no claim is looked at
//! before it. The clock is the caller's (`now`, Unix seconds).

mod claims;
mod keys;
mod verify;

#[cfg(test)]
mod tests;

pub use claims::{
    Appraisal, EAR_PROFILE, EarClaims, NONCE_MAX, NONCE_MIN, Nonce, VerifierId, policy_id,
};
pub use keys::{EarIssuer, IssuerConfig, RETIRED_KEYS_FILE, SIGNING_KEY_FILE, kid_of};
pub use verify::{IAT_LEEWAY_SECS, PublicKey, VerificationKeys, verify};

/// Why a token could not be issued or was refused. Variants say what failed; never branch on
/// the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EarError {
    /// The token's `kid` is missing or names no key we were given.
    #[error("token signed with an unknown key (kid {0})")]
    UnknownKey(String),
    /// The signature does not verify with the key its `kid` names.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `iat` is in the future (beyond the leeway), or after `exp`.
    #[error("token not yet valid: issued at {iat} (now {now})")]
    NotYetValid {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The token is about another host (`sub` or submodule).
    #[error("token is for host {found:?}, expected {expected:?}")]
    WrongHost {
        /// The host the caller asked about.
        expected: String,
        /// The token's `sub`.
        found: String,
    },
    /// The caller gave a nonce and the token does not echo it.
    #[error("token does not echo the expected nonce")]
    NonceMismatch,
    /// Not a well-formed EAR JWT of our profile.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is anything but ES256 (including `none`).
    #[error("unsupported algorithm {0:?}: only ES256 is accepted")]
    UnsupportedAlgorithm(String),
    /// A nonce outside 8 to 64 bytes, or not base64url.
    #[error("invalid nonce: {0}")]
    InvalidNonce(String),
    /// Key generation, parsing or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// The key directory could not be read or written, or holds an unsafe or corrupt file.
    #[error("key store: {0}")]
    KeyStore(String),
}
