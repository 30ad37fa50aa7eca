//! The trust store (bundled vendor roots plus operator-supplied ones) and path building.

use std::path::Path;

use serde::Serialize;

use crate::cert::{CertTime, EkCert, looks_like_pem, pem_certificates};
use crate::error::EkCertError;
use crate::sig::SigFailure;
use crate::{MAX_CHAIN_DEPTH, MAX_ROOT_FILE_LEN, MAX_ROOTS, MAX_SIGNATURE_CHECKS};

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_roots.rs"));
}

/// Where a certificate in the store came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Embedded from `roots/` at build time (file name).
    Bundled(String),
    /// Loaded at run time (path).
    File(String),
    /// Passed in by the caller.
    Supplied,
}

/// A certificate and whether paths may end at it.
#[derive(Debug, Clone)]
struct Entry {
    cert: EkCert,
    anchor: bool,
    origin: Origin,
}

/// A set of trust anchors and intermediates to build EK certificate chains with.
///
/// Trust rules:
/// * bundled certificates ([`RootStore::bundled`]): the self-signed ones (subject = issuer and
///   the signature verifies with their own key) are trust anchors; the others are intermediates,
///   used to build paths but never trusted on their own;
/// * [`RootStore::add_anchor`] and [`RootStore::add_dir`] add operator-chosen trust anchors,
///   self-signed or not (the operator vouches for them), but only CA certificates: an EK
///   certificate put among the roots by mistake must not vouch for itself;
/// * [`RootStore::add_intermediate`] adds a certificate for path building only.
#[derive(Debug, Clone, Default)]
pub struct RootStore {
    entries: Vec<Entry>,
}

/// One certificate of a validated chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// Subject, RFC 4514.
    pub subject: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// notBefore.
    pub not_before: CertTime,
    /// notAfter.
    pub not_after: CertTime,
    /// The validity period had ended at the verification time.
    pub expired: bool,
    /// The validity period had not started at the verification time.
    pub not_yet_valid: bool,
    /// This is the trust anchor the path ends at.
    pub trust_anchor: bool,
    /// Where the certificate came from (`None` for the leaf).
    pub origin: Option<Origin>,
}

/// A chain from the leaf (index 0) to a trust anchor (last), every signature verified.
///
/// Expiry is reported per link and never makes a chain invalid: see the crate documentation.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedChain {
    links: Vec<ChainLink>,
}

impl VerifiedChain {
    /// The certificates, leaf first, trust anchor last.
    #[must_use]
    pub fn links(&self) -> &[ChainLink] {
        &self.links
    }

    /// The trust anchor the chain ends at.
    #[must_use]
    pub fn anchor(&self) -> Option<&ChainLink> {
        self.links.last()
    }

    /// True when any certificate of the chain was outside its validity period.
    #[must_use]
    pub fn any_outside_validity(&self) -> bool {
        self.links.iter().any(|l| l.expired || l.not_yet_valid)
    }
}

impl RootStore {
    /// A store with nothing in it: every verification fails with [`EkCertError::NoIssuer`].
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// The vendor CAs embedded from `roots/` at build time.
    pub fn bundled() -> Result<Self, EkCertError> {
        let mut store = Self::empty();
        for (name, bytes) in bundled::BUNDLED {
            let certs = parse_file(bytes).map_err(|e| in_file(name, e))?;
            for cert in certs {
                let anchor = cert.is_self_signed();
                store.push(cert, anchor, Origin::Bundled((*name).to_owned()))?;
            }
        }
        Ok(store)
    }

    /// Number of certificates.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the store holds no certificates.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The trust anchors.
    pub fn anchors(&self) -> impl Iterator<Item = &EkCert> {
        self.entries.iter().filter(|e| e.anchor).map(|e| &e.cert)
    }

    /// Every certificate (anchors and intermediates).
    pub fn certificates(&self) -> impl Iterator<Item = &EkCert> {
        self.entries.iter().map(|e| &e.cert)
    }

    /// Add a trust anchor chosen by the operator. It must be a CA certificate.
    pub fn add_anchor(&mut self, cert: EkCert) -> Result<(), EkCertError> {
        require_ca(&cert)?;
        self.push(cert, true, Origin::Supplied)
    }

    /// Add an intermediate, for path building only.
    pub fn add_intermediate(&mut self, cert: EkCert) -> Result<(), EkCertError> {
        self.push(cert, false, Origin::Supplied)
    }

    /// Add every certificate found in `dir` (see [`load_certs_from_dir`]) as a trust anchor.
    /// Every one must be a CA certificate, or nothing is added. Returns how many were added.
    pub fn add_dir(&mut self, dir: &Path) -> Result<usize, EkCertError> {
        let loaded = load_certs_from_dir(dir)?;
        for (path, cert) in &loaded {
            require_ca(cert).map_err(|e| in_file(path, e))?;
        }
        let n = loaded.len();
        for (path, cert) in loaded {
            self.push(cert, true, Origin::File(path))?;
        }
        Ok(n)
    }

    fn push(&mut self, cert: EkCert, anchor: bool, origin: Origin) -> Result<(), EkCertError> {
        if let Some(existing) = self
            .entries
            .iter_mut()
            .find(|e| e.cert.sha256() == cert.sha256())
        {
            // The same certificate again: it may only gain trust, and keeps its first origin.
            existing.anchor |= anchor;
            return Ok(());
        }
        if self.entries.len() >= MAX_ROOTS {
            return Err(EkCertError::TooManyRoots(MAX_ROOTS));
        }
        self.entries.push(Entry {
            cert,
            anchor,
            origin,
        });
        Ok(())
    }

    /// Build and verify a path from `leaf` to a trust anchor, using the store's intermediates
    /// plus `intermediates` (e.g. certificates fetched from the leaf's AIA URL).
    ///
    /// Checks, at each step: issuer name = subject name (raw DER, then normalized), the
    /// signature over the raw tbsCertificate, the issuer's basicConstraints cA, keyCertSign when
    /// the issuer has a keyUsage, and pathLenConstraint. Validity dates are reported against
    /// `now` (Unix seconds) in each [`ChainLink`] and are not enforced. Critical extensions
    /// this crate does not understand are ignored (EK certificates routinely mark the SAN
    /// critical).
    pub fn verify(
        &self,
        leaf: &EkCert,
        intermediates: &[EkCert],
        now: i64,
    ) -> Result<VerifiedChain, EkCertError> {
        if intermediates.len() > MAX_ROOTS {
            return Err(EkCertError::TooManyRoots(MAX_ROOTS));
        }
        let mut pool: Vec<(&EkCert, bool, Option<&Origin>)> = self
            .entries
            .iter()
            .map(|e| (&e.cert, e.anchor, Some(&e.origin)))
            .collect();
        pool.extend(intermediates.iter().map(|c| (c, false, None)));

        // The leaf is itself a trust anchor.
        if let Some((_, _, origin)) = pool
            .iter()
            .find(|(c, anchor, _)| *anchor && c.sha256() == leaf.sha256())
        {
            return Ok(VerifiedChain {
                links: vec![link(leaf, true, origin.cloned(), now)],
            });
        }

        let mut search = Search {
            pool: &pool,
            budget: MAX_SIGNATURE_CHECKS,
            worst: None,
        };
        let mut path = vec![0_usize; 0];
        match search.extend(leaf, &mut path) {
            Some(()) => {
                let mut links = vec![link(leaf, false, None, now)];
                let last = path.len().saturating_sub(1);
                for (i, idx) in path.iter().enumerate() {
                    if let Some((cert, anchor, origin)) = pool.get(*idx) {
                        links.push(link(cert, *anchor && i == last, origin.cloned(), now));
                    }
                }
                Ok(VerifiedChain { links })
            }
            None => Err(search
                .worst
                .map(|(_, e)| e)
                .unwrap_or_else(|| EkCertError::NoIssuer {
                    depth: 0,
                    issuer: leaf.issuer().as_str().to_owned(),
                })),
        }
    }
}

fn link(cert: &EkCert, trust_anchor: bool, origin: Option<Origin>, now: i64) -> ChainLink {
    let v = cert.validity_at(now);
    ChainLink {
        subject: cert.subject().as_str().to_owned(),
        sha256: cert.sha256_hex(),
        not_before: cert.not_before().clone(),
        not_after: cert.not_after().clone(),
        expired: v.expired,
        not_yet_valid: v.not_yet_valid,
        trust_anchor,
        origin,
    }
}

/// Depth-first path search with a bounded number of signature checks.
struct Search<'p, 'c> {
    pool: &'p [(&'c EkCert, bool, Option<&'c Origin>)],
    budget: usize,
    /// The failure that got furthest: (depth reached, error).
    worst: Option<(usize, EkCertError)>,
}

impl Search<'_, '_> {
    fn record(&mut self, depth: usize, err: EkCertError) {
        if self.worst.as_ref().is_none_or(|(d, _)| depth > *d) {
            self.worst = Some((depth, err));
        }
    }

    /// Extend `path` (pool indices above `cur`) until it reaches an anchor.
    fn extend(&mut self, cur: &EkCert, path: &mut Vec<usize>) -> Option<()> {
        let depth = path.len();
        if depth.saturating_add(1) >= MAX_CHAIN_DEPTH {
            self.record(depth, EkCertError::ChainTooLong(MAX_CHAIN_DEPTH));
            return None;
        }
        let issuer_depth = depth.saturating_add(1);
        let issuer_name = || cur.issuer().as_str().to_owned();
        let mut name_matched = false;
        for (idx, (cand, anchor, _)) in self.pool.iter().enumerate() {
            if !cur.issuer().matches(cand.subject()) {
                continue;
            }
            // No certificate twice on a path (cross-certification loops), and not the leaf itself.
            let on_path = path.iter().any(|i| {
                self.pool
                    .get(*i)
                    .is_some_and(|(c, _, _)| c.sha256() == cand.sha256())
            });
            if on_path || cand.sha256() == cur.sha256() {
                continue;
            }
            name_matched = true;
            if self.budget == 0 {
                self.record(
                    usize::MAX,
                    EkCertError::SearchBudgetExhausted(MAX_SIGNATURE_CHECKS),
                );
                return None;
            }
            self.budget = self.budget.saturating_sub(1);
            match cur.verify_signed_by(cand) {
                Ok(()) => {}
                Err(SigFailure::Invalid) => {
                    self.record(
                        depth,
                        EkCertError::BadSignature {
                            depth,
                            issuer: issuer_name(),
                        },
                    );
                    continue;
                }
                Err(SigFailure::Unsupported(algorithm)) => {
                    self.record(
                        depth,
                        EkCertError::UnsupportedSignatureAlgorithm { depth, algorithm },
                    );
                    continue;
                }
            }
            let subject = || cand.subject().as_str().to_owned();
            if !cand.is_ca() {
                self.record(
                    issuer_depth,
                    EkCertError::IssuerNotCa {
                        depth: issuer_depth,
                        subject: subject(),
                    },
                );
                continue;
            }
            if cand.key_cert_sign() == Some(false) {
                self.record(
                    issuer_depth,
                    EkCertError::IssuerKeyUsage {
                        depth: issuer_depth,
                        subject: subject(),
                    },
                );
                continue;
            }
            // CAs between this issuer and the leaf: path positions 1..=depth.
            let below = u32::try_from(depth).unwrap_or(u32::MAX);
            if cand
                .basic_constraints()
                .and_then(|bc| bc.path_len)
                .is_some_and(|limit| below > limit)
            {
                self.record(
                    issuer_depth,
                    EkCertError::PathLenExceeded {
                        depth: issuer_depth,
                        subject: subject(),
                    },
                );
                continue;
            }
            path.push(idx);
            if *anchor || self.extend(cand, path).is_some() {
                return Some(());
            }
            path.pop();
        }
        if !name_matched {
            self.record(
                depth,
                EkCertError::NoIssuer {
                    depth,
                    issuer: issuer_name(),
                },
            );
        }
        None
    }
}

fn require_ca(cert: &EkCert) -> Result<(), EkCertError> {
    if cert.is_ca() {
        Ok(())
    } else {
        Err(EkCertError::AnchorNotCa {
            subject: cert.subject().as_str().to_owned(),
            sha256: cert.sha256_hex(),
        })
    }
}

fn in_file(path: &str, err: EkCertError) -> EkCertError {
    EkCertError::InFile {
        path: path.to_owned(),
        source: Box::new(err),
    }
}

/// Every certificate in a root file: one DER certificate (NV padding allowed) or any number of
/// PEM CERTIFICATE blocks.
pub fn parse_file(bytes: &[u8]) -> Result<Vec<EkCert>, EkCertError> {
    if bytes.len() > MAX_ROOT_FILE_LEN {
        return Err(EkCertError::TooLarge {
            len: bytes.len(),
            limit: MAX_ROOT_FILE_LEN,
        });
    }
    if looks_like_pem(bytes) {
        let ders = pem_certificates(bytes)?;
        if ders.is_empty() {
            return Err(EkCertError::Pem("no CERTIFICATE block".to_owned()));
        }
        if ders.len() > MAX_ROOTS {
            return Err(EkCertError::TooManyRoots(MAX_ROOTS));
        }
        ders.iter().map(|der| EkCert::parse_der(der)).collect()
    } else {
        Ok(vec![EkCert::parse_der(bytes)?])
    }
}

/// Load every certificate from the files in `dir` whose names end in `.der`, `.cer`, `.crt` or
/// `.pem` (case-insensitive; other files, and subdirectories, are skipped), in file-name order.
/// A file that cannot be read or parsed fails the whole load, naming the file: a trust
/// configuration is all or nothing. Returns (path, certificate) pairs.
pub fn load_certs_from_dir(dir: &Path) -> Result<Vec<(String, EkCert)>, EkCertError> {
    let io = |path: &Path, e: std::io::Error| EkCertError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let wanted = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["der", "cer", "crt", "pem"].contains(&e.to_ascii_lowercase().as_str())
        });
        if wanted && path.is_file() {
            files.push(path);
        }
        if files.len() > MAX_ROOTS {
            return Err(EkCertError::TooManyRoots(MAX_ROOTS));
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let shown = path.display().to_string();
        let len = std::fs::metadata(&path).map_err(|e| io(&path, e))?.len();
        if len > MAX_ROOT_FILE_LEN as u64 {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            return Err(in_file(
                &shown,
                EkCertError::TooLarge {
                    len,
                    limit: MAX_ROOT_FILE_LEN,
                },
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        for cert in parse_file(&bytes).map_err(|e| in_file(&shown, e))? {
            if out.len() >= MAX_ROOTS {
                return Err(EkCertError::TooManyRoots(MAX_ROOTS));
            }
            out.push((shown.clone(), cert));
        }
    }
    Ok(out)
}
