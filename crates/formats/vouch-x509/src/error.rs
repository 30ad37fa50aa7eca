//! The one error type of this crate.

use vouch_wire::DecodeError;

/// Why an EK certificate could not be parsed, loaded or chained to a trust anchor.
///
/// Depths count from the certificate being verified: depth 0 is the leaf, depth 1 its issuer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EkCertError {
    /// The input is larger than any certificate this crate accepts.
    #[error("input of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Input length.
        len: usize,
        /// [`crate::MAX_CERT_LEN`] or [`crate::MAX_ROOT_FILE_LEN`].
        limit: usize,
    },
    /// The outer DER structure (Certificate SEQUENCE, its three fields) is malformed.
    #[error("malformed DER certificate envelope: {0}")]
    Der(#[from] DecodeError),
    /// PEM armour was present but could not be decoded.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// x509-parser rejected the certificate; `offset` is where the rejected element starts
    /// (the certificate or its tbsCertificate), relative to the start of the DER.
    #[error("cannot parse certificate at byte offset {offset}: {reason}")]
    Parse {
        /// Byte offset of the element that failed.
        offset: usize,
        /// x509-parser's reason.
        reason: String,
    },
    /// Bytes follow the DER certificate and they are not NV padding (all 0xFF or all 0x00).
    #[error("{len} trailing bytes after the certificate at offset {offset} are not NV padding")]
    TrailingData {
        /// Where the trailing bytes start (= DER length).
        offset: usize,
        /// How many there are.
        len: usize,
    },
    /// No certificate in the bundle (or supplied) has a subject matching this certificate's issuer
    /// and a key that verifies its signature.
    #[error("no issuer found for the certificate at depth {depth} (issuer \"{issuer}\")")]
    NoIssuer {
        /// Depth of the certificate whose issuer is missing.
        depth: usize,
        /// Its issuer name (RFC 4514).
        issuer: String,
    },
    /// Candidate issuers were found by name, but none of their keys verifies the signature.
    #[error("bad signature on the certificate at depth {depth} (issuer \"{issuer}\")")]
    BadSignature {
        /// Depth of the certificate whose signature fails.
        depth: usize,
        /// Its issuer name (RFC 4514).
        issuer: String,
    },
    /// The signature algorithm, or its combination with the issuer's key, is not supported.
    #[error("unsupported signature algorithm {algorithm} on the certificate at depth {depth}")]
    UnsupportedSignatureAlgorithm {
        /// Depth of the certificate carrying the signature.
        depth: usize,
        /// OID or description of the algorithm.
        algorithm: String,
    },
    /// The issuer at `depth` signed a certificate but is not a CA (basicConstraints cA absent/false).
    #[error("issuer at depth {depth} (\"{subject}\") is not a CA")]
    IssuerNotCa {
        /// Depth of the issuer.
        depth: usize,
        /// The issuer's subject (RFC 4514).
        subject: String,
    },
    /// The issuer has a keyUsage extension without keyCertSign.
    #[error("issuer at depth {depth} (\"{subject}\") lacks keyCertSign in its key usage")]
    IssuerKeyUsage {
        /// Depth of the issuer.
        depth: usize,
        /// The issuer's subject (RFC 4514).
        subject: String,
    },
    /// An issuer's pathLenConstraint is smaller than the number of CAs below it.
    #[error("path length constraint of the issuer at depth {depth} (\"{subject}\") exceeded")]
    PathLenExceeded {
        /// Depth of the constraining issuer.
        depth: usize,
        /// The issuer's subject (RFC 4514).
        subject: String,
    },
    /// The chain would be longer than [`crate::MAX_CHAIN_DEPTH`].
    #[error("no path to a trust anchor within {0} certificates")]
    ChainTooLong(usize),
    /// Path building gave up after [`crate::MAX_SIGNATURE_CHECKS`] signature checks.
    #[error("path search exhausted its budget of {0} signature checks")]
    SearchBudgetExhausted(usize),
    /// A certificate offered as a trust anchor is not a CA (no basicConstraints cA): an EK
    /// certificate dropped into a roots directory would otherwise vouch for itself.
    #[error("certificate \"{subject}\" (sha256 {sha256}) is not a CA and cannot be a trust anchor")]
    AnchorNotCa {
        /// Its subject (RFC 4514).
        subject: String,
        /// Its SHA-256 fingerprint, hex.
        sha256: String,
    },
    /// A root file or directory could not be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A certificate inside a root file failed to parse.
    #[error("in {path}: {source}")]
    InFile {
        /// The file.
        path: String,
        /// What failed.
        source: Box<EkCertError>,
    },
    /// A directory of roots held more certificates than [`crate::MAX_ROOTS`].
    #[error("more than {0} root certificates")]
    TooManyRoots(usize),
}
