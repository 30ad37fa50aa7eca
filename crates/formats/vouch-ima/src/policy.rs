//! Runtime policy: which measured files (and buffers) a host may run.
//!
//! A [`PolicyDocument`] is the JSON an operator writes or `vouch ima policy from-dir` builds;
//! [`RuntimePolicy::compile`] turns it into hash maps keyed by path bytes, with digests
//! inline, so appraising an entry allocates nothing unless the entry is rejected.
//!
//! An entry is accepted when, in this order:
//! 1. it is a violation and the policy accepts violations (else rejected);
//! 2. it is the `boot_aggregate` (accepted here; [`crate::check_boot_aggregate`] checks it
//!    against the quoted boot PCRs);
//! 3. it carries an IMA signature by a configured key: a valid one accepts it, an invalid one
//!    rejects it whatever else the policy says; a signature by a key that is not configured
//!    is ignored;
//! 4. it is an ima-buf entry: accepted if its buffer is an allowed kexec command line, its
//!    digest is allowed for its name, or it is a configured certificate loaded on a keyring;
//! 5. its path matches an exclude glob;
//! 6. its path is in the allowlist with this digest, or the digest is allowed for any path.
//!
//! Everything else is rejected, so an empty policy rejects every entry (fail closed).
//! Globs: `*` matches any run of bytes (including `/`), `?` one byte; everything else is
//! literal.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ImaError;
use crate::list::Entry;
use crate::typed::{FileDigest, FileHashAlg, ImaSignature, TemplateData};

/// The policy as written (JSON). Digests are `algo:hex` or bare hex (SHA-1/256/384/512 by
/// length). Keylime's runtime policy `digests` map is accepted as `allow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// Format version (1).
    #[serde(default = "one")]
    pub version: u32,
    /// Path -> accepted digests.
    #[serde(default, alias = "digests")]
    pub allow: BTreeMap<String, Vec<String>>,
    /// Digests accepted whatever the path.
    #[serde(default)]
    pub any_path_digests: Vec<String>,
    /// Paths never appraised (globs).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// PEM or base64-DER X.509 certificates whose keys sign files (ima-sig, ima-modsig).
    #[serde(default)]
    pub keys: Vec<String>,
    /// ima-buf entry name -> accepted buffer digests.
    #[serde(default)]
    pub ima_buf: BTreeMap<String, Vec<String>>,
    /// Accepted kexec command lines (ima-buf `kexec-cmdline`), exact text.
    #[serde(default)]
    pub kexec_cmdlines: Vec<String>,
    /// Accept violation entries (ToMToU, open-writers). Default: reject.
    #[serde(default)]
    pub accept_violations: bool,
}

const fn one() -> u32 {
    1
}

impl PolicyDocument {
    /// A policy allowing each (path, sha256 digest) given.
    #[must_use]
    pub fn from_sha256_files(files: impl IntoIterator<Item = (String, [u8; 32])>) -> Self {
        let mut allow: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, d) in files {
            allow
                .entry(path)
                .or_default()
                .push(format!("sha256:{}", vouch_wire::hex_lower(&d)));
        }
        Self {
            version: 1,
            allow,
            ..Self::default()
        }
    }
}

/// A digest in a policy: algorithm (or `None` for bare hex) and bytes, inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PolicyDigest {
    alg: Option<FileHashAlg>,
    len: u8,
    bytes: [u8; 64],
}

impl PolicyDigest {
    fn parse(s: &str) -> Result<Self, ImaError> {
        let bad = || ImaError::Policy(format!("digest {s:?} is not [algo:]hex"));
        let (alg, hex) = match s.rsplit_once(':') {
            Some((a, h)) => (
                Some(FileHashAlg::from_name(a.as_bytes()).ok_or_else(|| {
                    ImaError::Policy(format!("unknown digest algorithm {a:?} in {s:?}"))
                })?),
                h,
            ),
            None => (None, s),
        };
        let hex = hex.as_bytes();
        let n = hex.len() / 2;
        if !hex.len().is_multiple_of(2) || n > 64 || n == 0 {
            return Err(bad());
        }
        if alg.is_some_and(|a| a.digest_len() != n)
            || (alg.is_none() && FileHashAlg::from_len(n).is_none())
        {
            return Err(ImaError::Policy(format!(
                "digest {s:?} has the wrong length for its algorithm"
            )));
        }
        let mut bytes = [0u8; 64];
        for (dst, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let s = core::str::from_utf8(pair).map_err(|_| bad())?;
            *dst = u8::from_str_radix(s, 16).map_err(|_| bad())?;
        }
        Ok(Self {
            alg,
            len: u8::try_from(n).map_err(|_| bad())?,
            bytes,
        })
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    fn matches(&self, d: &FileDigest<'_>) -> bool {
        self.as_bytes() == d.bytes
            && match self.alg {
                Some(a) => d.algo == Some(a),
                None => d.algo.is_some_and(|a| a.digest_len() == d.bytes.len()),
            }
    }
}

/// A compiled exclude glob.
#[derive(Debug, Clone)]
struct Glob {
    pattern: Box<[u8]>,
    literal_prefix: usize,
}

impl Glob {
    fn new(p: &str) -> Self {
        let pattern: Box<[u8]> = p.as_bytes().into();
        let literal_prefix = pattern
            .iter()
            .position(|c| *c == b'*' || *c == b'?')
            .unwrap_or(pattern.len());
        Self {
            pattern,
            literal_prefix,
        }
    }

    fn matches(&self, s: &[u8]) -> bool {
        let prefix = self.pattern.get(..self.literal_prefix).unwrap_or_default();
        s.starts_with(prefix) && glob_match(&self.pattern, s)
    }
}

/// Iterative glob match with single-star backtracking (linear in practice).
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match (p.get(pi), s.get(si)) {
            (Some(b'*'), _) => {
                star = Some((pi, si));
                pi = pi.saturating_add(1);
            }
            (Some(b'?'), _) => {
                pi = pi.saturating_add(1);
                si = si.saturating_add(1);
            }
            (Some(a), Some(b)) if a == b => {
                pi = pi.saturating_add(1);
                si = si.saturating_add(1);
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp.saturating_add(1);
                    si = ss.saturating_add(1);
                    star = Some((sp, si));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == b'*')
}

#[derive(Debug)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

/// A signing key from a certificate.
#[derive(Debug)]
struct SigningKey {
    kind: KeyKind,
    /// PKCS#1 RSAPublicKey or the uncompressed EC point.
    public: Vec<u8>,
    /// The certificate (DER), to recognise it when measured onto a keyring.
    cert_der: Vec<u8>,
}

fn verification_alg(
    kind: &KeyKind,
    h: FileHashAlg,
) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
    use aws_lc_rs::signature as s;
    Some(match (kind, h) {
        (KeyKind::Rsa, FileHashAlg::Sha1) => &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (KeyKind::Rsa, FileHashAlg::Sha256) => &s::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa, FileHashAlg::Sha384) => &s::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa, FileHashAlg::Sha512) => &s::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::EcP256, FileHashAlg::Sha1) => &s::ECDSA_P256_SHA1_ASN1,
        (KeyKind::EcP256, FileHashAlg::Sha256) => &s::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcP256, FileHashAlg::Sha384) => &s::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcP256, FileHashAlg::Sha512) => &s::ECDSA_P256_SHA512_ASN1,
        (KeyKind::EcP384, FileHashAlg::Sha256) => &s::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcP384, FileHashAlg::Sha384) => &s::ECDSA_P384_SHA384_ASN1,
        (KeyKind::EcP384, FileHashAlg::Sha512) => &s::ECDSA_P384_SHA512_ASN1,
        _ => return None,
    })
}

fn digest_alg(h: FileHashAlg) -> Option<&'static aws_lc_rs::digest::Algorithm> {
    use aws_lc_rs::digest as d;
    Some(match h {
        FileHashAlg::Sha1 => &d::SHA1_FOR_LEGACY_USE_ONLY,
        FileHashAlg::Sha256 => &d::SHA256,
        FileHashAlg::Sha384 => &d::SHA384,
        FileHashAlg::Sha512 => &d::SHA512,
        _ => return None,
    })
}

impl SigningKey {
    /// Verify `sig` over a file digest (v2) or over `struct ima_file_id` (v3).
    fn verify(&self, sig: &ImaSignature<'_>, file: &FileDigest<'_>) -> Result<(), SigError> {
        let h = sig.file_hash_alg().ok_or(SigError::UnsupportedHash)?;
        let alg = verification_alg(&self.kind, h).ok_or(SigError::UnsupportedHash)?;
        let dalg = digest_alg(h).ok_or(SigError::UnsupportedHash)?;
        let digest = if sig.version == 2 {
            if file.algo != Some(h) {
                return Err(SigError::HashMismatch);
            }
            aws_lc_rs::digest::Digest::import_less_safe(file.bytes, dalg)
                .map_err(|_| SigError::HashMismatch)?
        } else {
            let algo_id = file
                .algo
                .and_then(kernel_id)
                .ok_or(SigError::UnsupportedHash)?;
            let mut ctx = aws_lc_rs::digest::Context::new(dalg);
            ctx.update(&[sig.xattr_type, algo_id]);
            ctx.update(file.bytes);
            ctx.finish()
        };
        aws_lc_rs::signature::UnparsedPublicKey::new(alg, &self.public)
            .verify_digest(&digest, sig.signature)
            .map_err(|_| SigError::Invalid)
    }
}

const fn kernel_id(a: FileHashAlg) -> Option<u8> {
    match a {
        FileHashAlg::Md5 => Some(1),
        FileHashAlg::Sha1 => Some(2),
        FileHashAlg::Sha256 => Some(4),
        FileHashAlg::Sha384 => Some(5),
        FileHashAlg::Sha512 => Some(6),
        FileHashAlg::Sha224 => Some(7),
        FileHashAlg::Sm3 => Some(18),
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigError {
    /// The signature's hash algorithm is not supported with this key.
    UnsupportedHash,
    /// The signature is over a different hash algorithm than the measured digest.
    HashMismatch,
    /// The signature does not verify.
    Invalid,
}

/// The IMA key id of a certificate's key: the last 4 bytes of the SHA-1 of its
/// subjectPublicKey (what `evmctl` and the kernel's key lookup use).
#[must_use]
pub fn key_id(subject_public_key: &[u8]) -> [u8; 4] {
    let d = vouch_tpm2::HashAlg::Sha1.hash(subject_public_key);
    let b = d.as_bytes();
    let mut out = [0u8; 4];
    for (o, s) in out.iter_mut().zip(b.iter().skip(16)) {
        *o = *s;
    }
    out
}

fn decode_cert_text(text: &str) -> Result<Vec<Vec<u8>>, ImaError> {
    use x509_parser::pem::Pem;
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        let mut out = Vec::new();
        for pem in Pem::iter_from_buffer(t.as_bytes()) {
            let pem = pem.map_err(|e| ImaError::Policy(format!("key PEM: {e}")))?;
            out.push(pem.contents);
        }
        Ok(out)
    } else {
        Err(ImaError::Policy(
            "keys must be PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
        ))
    }
}

fn signing_key(der: Vec<u8>) -> Result<(Vec<[u8; 4]>, SigningKey), ImaError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| ImaError::Policy(format!("key certificate: {e}")))?;
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    let kind = match oid.as_str() {
        "1.2.840.113549.1.1.1" => KeyKind::Rsa,
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => KeyKind::EcP256,
                "1.3.132.0.34" => KeyKind::EcP384,
                c => return Err(ImaError::Policy(format!("unsupported EC curve {c}"))),
            }
        }
        o => return Err(ImaError::Policy(format!("unsupported key algorithm {o}"))),
    };
    let public = spki.subject_public_key.data.to_vec();
    let mut ids = vec![key_id(&public)];
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(ski) = ext.parsed_extension() {
            let b = ski.0;
            if let Some(tail) = b.get(b.len().saturating_sub(4)..)
                && let Ok(id) = <[u8; 4]>::try_from(tail)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
    }
    drop(cert);
    Ok((
        ids,
        SigningKey {
            kind,
            public,
            cert_der: der,
        },
    ))
}

type DigestSet = Vec<PolicyDigest>;

/// A compiled runtime policy.
#[derive(Debug)]
pub struct RuntimePolicy {
    allow: HashMap<Box<[u8]>, DigestSet>,
    any_path: HashMap<Box<[u8]>, DigestSet>,
    excludes: Vec<Glob>,
    keys: Vec<SigningKey>,
    key_ids: HashMap<[u8; 4], Vec<usize>>,
    ima_buf: HashMap<Box<[u8]>, DigestSet>,
    kexec_cmdlines: HashSet<Box<[u8]>>,
    accept_violations: bool,
}

impl RuntimePolicy {
    /// Compile a policy document.
    pub fn compile(doc: &PolicyDocument) -> Result<Self, ImaError> {
        if doc.version != 1 {
            return Err(ImaError::Policy(format!(
                "unsupported policy version {}",
                doc.version
            )));
        }
        let mut allow: HashMap<Box<[u8]>, DigestSet> = HashMap::with_capacity(doc.allow.len());
        for (path, digests) in &doc.allow {
            let set = allow.entry(path.as_bytes().into()).or_default();
            for d in digests {
                set.push(PolicyDigest::parse(d)?);
            }
        }
        let mut any_path: HashMap<Box<[u8]>, DigestSet> = HashMap::new();
        for d in &doc.any_path_digests {
            let pd = PolicyDigest::parse(d)?;
            any_path.entry(pd.as_bytes().into()).or_default().push(pd);
        }
        let mut ima_buf: HashMap<Box<[u8]>, DigestSet> = HashMap::new();
        for (name, digests) in &doc.ima_buf {
            let set = ima_buf.entry(name.as_bytes().into()).or_default();
            for d in digests {
                set.push(PolicyDigest::parse(d)?);
            }
        }
        let mut keys = Vec::new();
        let mut key_ids: HashMap<[u8; 4], Vec<usize>> = HashMap::new();
        for text in &doc.keys {
            for der in decode_cert_text(text)? {
                let (ids, key) = signing_key(der)?;
                let i = keys.len();
                keys.push(key);
                for id in ids {
                    key_ids.entry(id).or_default().push(i);
                }
            }
        }
        Ok(Self {
            allow,
            any_path,
            excludes: doc.excludes.iter().map(|g| Glob::new(g)).collect(),
            keys,
            key_ids,
            ima_buf,
            kexec_cmdlines: doc
                .kexec_cmdlines
                .iter()
                .map(|c| c.as_bytes().into())
                .collect(),
            accept_violations: doc.accept_violations,
        })
    }

    /// Number of allowlisted paths.
    #[must_use]
    pub fn path_count(&self) -> usize {
        self.allow.len()
    }

    fn excluded(&self, path: &[u8]) -> bool {
        self.excludes.iter().any(|g| g.matches(path))
    }

    fn digest_allowed(&self, path: &[u8], d: &FileDigest<'_>) -> Option<Accepted> {
        if self
            .allow
            .get(path)
            .is_some_and(|set| set.iter().any(|p| p.matches(d)))
        {
            return Some(Accepted::Allowlisted);
        }
        if self
            .any_path
            .get(d.bytes)
            .is_some_and(|set| set.iter().any(|p| p.matches(d)))
        {
            return Some(Accepted::AnyPathDigest);
        }
        None
    }

    /// Appraise one entry.
    pub fn appraise<'a>(&self, entry: &Entry<'a>) -> Verdict<'a> {
        let data = match TemplateData::decode(entry) {
            Ok(d) => d,
            Err(e) => return self.reject(entry, TemplateData::default(), Reason::Undecodable(e)),
        };
        if entry.is_violation() {
            return if self.accept_violations {
                Verdict::Accepted(Accepted::Violation)
            } else {
                self.reject(entry, data, Reason::Violation)
            };
        }
        let path = data.name.unwrap_or_default();
        if path == b"boot_aggregate" {
            return Verdict::Accepted(Accepted::BootAggregate);
        }
        let Some(digest) = data.digest else {
            return self.reject(entry, data, Reason::NoDigest);
        };
        // Signatures: a configured key decides; a bad signature always rejects.
        for (raw, file) in [(data.sig, Some(digest)), (data.modsig, data.modsig_digest)] {
            let (Some(raw), Some(file)) = (raw, file) else {
                continue;
            };
            if raw.first() != Some(&crate::typed::EVM_IMA_XATTR_DIGSIG)
                && raw.first() != Some(&crate::typed::IMA_VERITY_DIGSIG)
            {
                continue; // an appended PKCS#7 signature (modsig): not checked here
            }
            let sig = match ImaSignature::decode(raw) {
                Ok(s) => s,
                Err(e) => return self.reject(entry, data, Reason::Undecodable(e)),
            };
            if let Some(candidates) = self.key_ids.get(&sig.key_id) {
                let mut last = SigError::Invalid;
                for k in candidates.iter().filter_map(|i| self.keys.get(*i)) {
                    match k.verify(&sig, &file) {
                        Ok(()) => {
                            return Verdict::Accepted(Accepted::Signed { key_id: sig.key_id });
                        }
                        Err(e) => last = e,
                    }
                }
                return self.reject(
                    entry,
                    data,
                    Reason::BadSignature {
                        key_id: sig.key_id,
                        error: last,
                    },
                );
            }
        }
        if let Some(buf) = data.buf {
            if path == b"kexec-cmdline" && self.kexec_cmdlines.contains(buf) {
                return Verdict::Accepted(Accepted::ImaBuf);
            }
            if self
                .ima_buf
                .get(path)
                .is_some_and(|set| set.iter().any(|p| p.matches(&digest)))
            {
                return Verdict::Accepted(Accepted::ImaBuf);
            }
            if self.keys.iter().any(|k| k.cert_der.as_slice() == buf) {
                return Verdict::Accepted(Accepted::ImaBuf);
            }
            return self.reject(entry, data, Reason::BufferNotAllowed);
        }
        if self.excluded(path) {
            return Verdict::Accepted(Accepted::Excluded);
        }
        match self.digest_allowed(path, &digest) {
            Some(a) => Verdict::Accepted(a),
            None if self.allow.contains_key(path) => {
                self.reject(entry, data, Reason::DigestNotAllowed)
            }
            None => self.reject(entry, data, Reason::NotInPolicy),
        }
    }

    #[cold]
    fn reject<'a>(&self, entry: &Entry<'a>, data: TemplateData<'a>, reason: Reason) -> Verdict<'a> {
        Verdict::Rejected(Rejection {
            index: entry.index(),
            path: data.name.unwrap_or_default(),
            digest: data.digest,
            reason,
        })
    }
}

/// The policy's decision on one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict<'a> {
    /// Accepted, and why.
    Accepted(Accepted),
    /// Rejected: path, digest and reason.
    Rejected(Rejection<'a>),
}

/// Why an entry was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Accepted {
    /// Path and digest in the allowlist.
    Allowlisted,
    /// Digest allowed for any path.
    AnyPathDigest,
    /// Path matches an exclude glob.
    Excluded,
    /// Valid IMA signature by a configured key.
    Signed {
        /// The key id.
        key_id: [u8; 4],
    },
    /// An allowed ima-buf entry.
    ImaBuf,
    /// The boot_aggregate (checked against the boot PCRs separately).
    BootAggregate,
    /// A violation, and the policy accepts violations.
    Violation,
}

/// Why an entry was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The path is not in the policy and its digest is not allowed for any path.
    NotInPolicy,
    /// The path is in the allowlist but not with this digest.
    DigestNotAllowed,
    /// The IMA signature by a configured key does not verify.
    BadSignature {
        /// The key id in the signature.
        key_id: [u8; 4],
        /// What failed.
        error: SigError,
    },
    /// An ima-buf entry the policy does not allow.
    BufferNotAllowed,
    /// A violation (the file changed while measured or open for write).
    Violation,
    /// The entry has no file digest.
    NoDigest,
    /// A field does not decode.
    Undecodable(vouch_wire::DecodeError),
}

impl core::fmt::Display for Reason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotInPolicy => {
                f.write_str("path not in the allowlist and digest not allowed for any path")
            }
            Self::DigestNotAllowed => f.write_str("digest not in the allowlist for this path"),
            Self::BadSignature { key_id, error } => write!(
                f,
                "IMA signature by key {} does not verify ({error:?})",
                vouch_wire::hex_lower(key_id)
            ),
            Self::BufferNotAllowed => f.write_str("ima-buf entry not allowed by the policy"),
            Self::Violation => f.write_str("measurement violation (ToMToU or open writers)"),
            Self::NoDigest => f.write_str("entry has no file digest"),
            Self::Undecodable(e) => write!(f, "template field does not decode: {e}"),
        }
    }
}

/// A rejected entry: which, what path and digest, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection<'a> {
    /// Entry index in the list.
    pub index: u64,
    /// The event name (path).
    pub path: &'a [u8],
    /// The measured digest.
    pub digest: Option<FileDigest<'a>>,
    /// Why.
    pub reason: Reason,
}

impl core::fmt::Display for Rejection<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "entry {}: {} {}: {}",
            self.index,
            String::from_utf8_lossy(self.path),
            self.digest
                .map_or_else(|| "(no digest)".to_owned(), |d| d.to_prefixed_hex()),
            self.reason
        )
    }
}

/// A rejection that owns its text (for reports that outlive the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedRejection {
    /// Entry index.
    pub index: u64,
    /// Path (lossy UTF-8).
    pub path: String,
    /// `algo:hex`, if any.
    pub digest: Option<String>,
    /// Why (text).
    pub reason: String,
}

impl From<&Rejection<'_>> for OwnedRejection {
    fn from(r: &Rejection<'_>) -> Self {
        Self {
            index: r.index,
            path: String::from_utf8_lossy(r.path).into_owned(),
            digest: r.digest.map(|d| d.to_prefixed_hex()),
            reason: r.reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_star_and_question_mark() {
        assert!(glob_match(b"/tmp/*", b"/tmp/a/b"));
        assert!(glob_match(b"/home/*/.cache/*", b"/home/u/.cache/x"));
        assert!(!glob_match(b"/home/*/.cache/*", b"/home/u/.config/x"));
        assert!(glob_match(b"/usr/lib/?.so", b"/usr/lib/a.so"));
        assert!(!glob_match(b"/usr/lib/?.so", b"/usr/lib/ab.so"));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"", b"x"));
    }

    #[test]
    fn rejects_digest_of_wrong_length_for_its_algorithm() {
        assert!(PolicyDigest::parse("sha256:00").is_err());
        assert!(PolicyDigest::parse(&"ab".repeat(32)).is_ok());
        assert!(PolicyDigest::parse(&format!("sha1:{}", "ab".repeat(20))).is_ok());
        assert!(PolicyDigest::parse("md7:00").is_err());
    }

    #[test]
    fn key_id_is_last_four_bytes_of_sha1() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d
        assert_eq!(key_id(b"abc"), [0x9c, 0xd0, 0xd8, 0x9d]);
    }
}
