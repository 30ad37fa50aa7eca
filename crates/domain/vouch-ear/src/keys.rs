//! ES256 signing keys: generation, `kid`, rotation with a grace period, JWKS, storage.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use vouch_appraisal::Verdict;

use crate::EarError;
use crate::claims::{EarClaims, Nonce, VerifierId};
use crate::verify::{PublicKey, VerificationKeys};

/// The file holding the current signing key (PKCS#8 v1 DER, mode 0600).
pub const SIGNING_KEY_FILE: &str = "ear-signing-key.p8";
/// The file holding the retired public keys still accepted (JSON, mode 0600).
pub const RETIRED_KEYS_FILE: &str = "ear-retired-keys.json";

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of 66
/// bytes); the 65-byte uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The `kid` of a P-256 public key (65-byte uncompressed point): base64url of the first 16
/// bytes of SHA-256 over its DER SubjectPublicKeyInfo.
#[must_use]
pub fn kid_of(point: &[u8; 65]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&P256_SPKI_PREFIX);
    ctx.update(point);
    let d = ctx.finish();
    let head = d.as_ref().get(..16).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(head)
}

/// How tokens are issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// Validity of a token in seconds (`exp - iat`); default 300.
    pub validity_secs: u64,
    /// How long a retired key stays in the JWKS and verifies after rotation, in seconds;
    /// never less than `validity_secs` (so every token issued before a rotation stays
    /// verifiable until it expires). Default 3600.
    pub grace_secs: u64,
    /// `ear_verifier_id`.
    pub verifier_id: VerifierId,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            validity_secs: 300,
            grace_secs: 3600,
            verifier_id: VerifierId::default(),
        }
    }
}

impl IssuerConfig {
    fn grace(&self) -> u64 {
        self.grace_secs.max(self.validity_secs)
    }
}

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    point: [u8; 65],
    encoding: EncodingKey,
}

impl SigningKey {
    fn generate() -> Result<Self, EarError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| EarError::Crypto("P-256 key generation failed".to_owned()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, EarError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| EarError::Crypto(format!("not a P-256 PKCS#8 key: {e}")))?;
        let point: [u8; 65] = pair.public_key().as_ref().try_into().map_err(|_| {
            EarError::Crypto("public key is not an uncompressed P-256 point".to_owned())
        })?;
        Ok(Self {
            kid: kid_of(&point),
            pkcs8: pkcs8.to_vec(),
            point,
            encoding: EncodingKey::from_ec_der(pkcs8),
        })
    }
}

/// A retired key: public half only, accepted until `retired_at + grace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RetiredKey {
    kid: String,
    /// base64url of the uncompressed point.
    point: String,
    /// When it stopped signing (Unix seconds).
    retired_at: u64,
}

impl RetiredKey {
    fn public_key(&self) -> Result<PublicKey, EarError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.point)
            .map_err(|e| EarError::KeyStore(format!("retired key {}: {e}", self.kid)))?;
        let point: [u8; 65] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| EarError::KeyStore(format!("retired key {}: not 65 bytes", self.kid)))?;
        PublicKey::from_point(point)
    }
}

/// Issues EAR tokens with a rotating ES256 key. No global state: the verifier keeps one in its
/// application state and persists it with [`EarIssuer::save`].
pub struct EarIssuer {
    config: IssuerConfig,
    current: SigningKey,
    retired: Vec<RetiredKey>,
}

impl fmt::Debug for EarIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EarIssuer")
            .field("config", &self.config)
            .field("kid", &self.current.kid)
            .field(
                "retired",
                &self.retired.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl EarIssuer {
    /// A new issuer with a freshly generated key.
    pub fn generate(config: IssuerConfig) -> Result<Self, EarError> {
        Ok(Self {
            config,
            current: SigningKey::generate()?,
            retired: Vec::new(),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The `kid` of the key that signs now.
    #[must_use]
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// Make a new signing key current. The old one stops signing and stays verifiable (and in
    /// the JWKS) for the grace period; retired keys past it are dropped.
    pub fn rotate(&mut self, now: u64) -> Result<(), EarError> {
        let next = SigningKey::generate()?;
        let old = std::mem::replace(&mut self.current, next);
        self.retired.push(RetiredKey {
            kid: old.kid,
            point: URL_SAFE_NO_PAD.encode(old.point),
            retired_at: now,
        });
        self.prune(now);
        Ok(())
    }

    /// The issuer [`EarIssuer::rotate`] would make, leaving `self` as it is: save it first,
    /// then swap it in, so a key that signs was always persisted.
    pub fn rotated(&self, now: u64) -> Result<Self, EarError> {
        let mut next = Self {
            config: self.config.clone(),
            current: SigningKey::from_pkcs8(&self.current.pkcs8)?,
            retired: self.retired.clone(),
        };
        next.rotate(now)?;
        Ok(next)
    }

    /// Drop retired keys whose grace period has ended at `now`.
    pub fn prune(&mut self, now: u64) {
        let grace = self.config.grace();
        self.retired
            .retain(|k| k.retired_at.saturating_add(grace) > now);
    }

    /// Sign an EAR for `verdict` about `host_id` (the JWT `sub` and the submodule name), echoing
    /// the relying party's `nonce`, issued at `now` (Unix seconds) and valid for
    /// `validity_secs`. Returns the compact JWS with `alg: ES256`, `typ: JWT` and `kid`.
    pub fn issue(
        &self,
        verdict: &Verdict,
        host_id: &str,
        nonce: Option<&Nonce>,
        now: u64,
    ) -> Result<String, EarError> {
        self.issue_until(verdict, host_id, nonce, now, None)
    }

    /// [`EarIssuer::issue`], expiring no later than `not_after` (Unix seconds) when given: a
    /// token never outlives the appraisal it reports (the host's freshness limit). A
    /// `not_after` at or before `now` is refused.
    pub fn issue_until(
        &self,
        verdict: &Verdict,
        host_id: &str,
        nonce: Option<&Nonce>,
        now: u64,
        not_after: Option<u64>,
    ) -> Result<String, EarError> {
        if host_id.is_empty() {
            return Err(EarError::Malformed("empty host id".to_owned()));
        }
        let mut exp = now
            .checked_add(self.config.validity_secs)
            .ok_or_else(|| EarError::Malformed("exp overflows".to_owned()))?;
        if let Some(limit) = not_after {
            if limit <= now {
                return Err(EarError::Malformed(
                    "the appraisal has already expired".to_owned(),
                ));
            }
            exp = exp.min(limit);
        }
        let claims = EarClaims::from_verdict(
            verdict,
            host_id,
            self.config.verifier_id.clone(),
            nonce.cloned(),
            now,
            exp,
        );
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.current.encoding)
            .map_err(|e| EarError::Crypto(format!("signing failed: {e}")))
    }

    /// The keys this issuer's tokens verify with: the current one and the retired ones still
    /// in their grace period at `now`.
    pub fn verification_keys(&self, now: u64) -> Result<VerificationKeys, EarError> {
        let grace = self.config.grace();
        let mut keys = VerificationKeys::default();
        keys.insert(PublicKey::from_point(self.current.point)?)?;
        for k in self
            .retired
            .iter()
            .filter(|k| k.retired_at.saturating_add(grace) > now)
        {
            keys.insert(k.public_key()?)?;
        }
        Ok(keys)
    }

    /// The RFC 7517 JWK set for `/.well-known/jwks.json`: the current key first, then the
    /// retired keys kept for verification.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys = vec![PublicKey::jwk_of(&self.current.point)];
        for k in &self.retired {
            if let Ok(p) = k.public_key() {
                keys.push(p.jwk());
            }
        }
        serde_json::json!({ "keys": keys })
    }

    /// Write the signing key and the retired public keys to `dir` (created 0700 when missing),
    /// each file mode 0600, replaced atomically.
    pub fn save(&self, dir: &Path) -> Result<(), EarError> {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error(dir, &e))?;
        }
        write_private(&dir.join(SIGNING_KEY_FILE), &self.current.pkcs8)?;
        let retired = serde_json::to_vec_pretty(&self.retired)
            .map_err(|e| EarError::KeyStore(format!("retired keys: {e}")))?;
        write_private(&dir.join(RETIRED_KEYS_FILE), &retired)
    }

    /// Load the issuer saved in `dir`, or generate one and save it there. Refuses a key file
    /// readable by group or others. Retired keys past their grace period at `now` are dropped.
    pub fn load_or_create(dir: &Path, config: IssuerConfig, now: u64) -> Result<Self, EarError> {
        let key_path = dir.join(SIGNING_KEY_FILE);
        if !key_path.exists() {
            let issuer = Self::generate(config)?;
            issuer.save(dir)?;
            return Ok(issuer);
        }
        let current = SigningKey::from_pkcs8(&read_private(&key_path)?)?;
        let retired_path = dir.join(RETIRED_KEYS_FILE);
        let retired: Vec<RetiredKey> = if retired_path.exists() {
            serde_json::from_slice(&read_private(&retired_path)?)
                .map_err(|e| EarError::KeyStore(format!("{}: {e}", retired_path.display())))?
        } else {
            Vec::new()
        };
        for k in &retired {
            k.public_key()?;
        }
        let mut issuer = Self {
            config,
            current,
            retired,
        };
        issuer.prune(now);
        Ok(issuer)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> EarError {
    EarError::KeyStore(format!("{}: {e}", path.display()))
}

fn read_private(path: &Path) -> Result<Vec<u8>, EarError> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(EarError::KeyStore(format!(
            "{}: readable by group or others (mode {:o}); expected 0600",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    fs::read(path).map_err(|e| io_error(path, &e))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EarError> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, &e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error(&tmp, &e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, &e))
}
