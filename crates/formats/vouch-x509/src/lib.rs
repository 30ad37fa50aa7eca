//! TPM 2.0 endorsement key (EK) certificates: lenient parsing and chain validation to vendor roots.
//!
//! Implements the certificate side of the **TCG EK Credential Profile for TPM Family 2.0, Level 0,
//! Version 2.5 (Revision 2) / 2.6**, on top of **RFC 5280** path validation, restricted to what
//! EK certificates need:
//!
//! * [`EkCert::parse`] reads DER or PEM. DER may be followed by NV padding (STMicro TPMs store the
//!   certificate in a 1600-byte NV index and pad it with 0xFF): the padding is measured and
//!   reported by [`EkCert::padding_bytes`]; any other trailing data is an error. Parsing is done
//!   by x509-parser, which tolerates what field certificates contain: non-minimal INTEGER
//!   encodings (older ST serials), multi-valued RDNs whose SET is not DER-sorted (Nuvoton CAs),
//!   critical subjectAltNames holding only a directoryName. The TPM manufacturer, model and
//!   version come from that directoryName (TCG OIDs 2.23.133.2.1/2/3; see [`TpmInfo`] and
//!   [`TpmManufacturer`]).
//! * [`RootStore::verify`] builds a path leaf → intermediates → trust anchor and checks each
//!   signature **over the raw tbsCertificate bytes as received** (never a re-encoding) with
//!   aws-lc-rs: RSA PKCS#1 v1.5 (SHA-1/256/384/512), RSA-PSS (MGF1 with the same hash, salt =
//!   hash length), ECDSA P-256/P-384/P-521 with SHA-1/256/384/512. It also checks name chaining,
//!   basicConstraints cA, keyCertSign and pathLenConstraint on issuers.
//!
//! # Trust assumptions
//!
//! * **Trust anchors** are the self-signed certificates among the vendor CAs bundled from this
//!   crate's `roots/` directory (Infineon, STMicro/GlobalSign, Nuvoton, Intel, AMD, NationZ,
//!   Verisign, Google, ...; provenance in `roots/README.md`), plus whatever the operator adds with
//!   [`RootStore::add_anchor`] / [`RootStore::add_dir`]. Bundled CAs that are not self-signed are
//!   intermediates: usable to build a path, never trusted on their own.
//! * **Validity dates are reported, not enforced.** Each [`ChainLink`] says whether the
//!   certificate was expired or not yet valid at the given time. An EK certificate is issued once
//!   at manufacturing and attests a key fused into the chip for the chip's life; vendors issue
//!   them (and their CAs) with validity periods shorter than hardware lifetimes, and some with odd
//!   dates. Rejecting them would reject genuine TPMs; the caller's policy decides.
//! * **Unknown critical extensions are ignored** (the profile makes the SAN critical when the
//!   subject is empty); the tcg-kp-EKCertificate EKU is reported ([`EkCert::has_ek_eku`]), not
//!   required. Revocation is not checked.
//! * Input is untrusted: nothing here panics, and every size is bounded ([`MAX_CERT_LEN`],
//!   [`MAX_ROOT_FILE_LEN`], [`MAX_ROOTS`], [`MAX_CHAIN_DEPTH`], [`MAX_SIGNATURE_CHECKS`]).
//!
//! # Adding a root
//!
//! Drop the DER or PEM file into `crates/formats/vouch-x509/roots/` and rebuild: `build.rs`
//! embeds every `.der`/`.cer`/`.crt`/`.pem` file there. At run time, [`RootStore::add_dir`]
//! (`vouch ekcert verify --roots DIR`, the verifier's `--ek-roots DIR`) adds the certificates of
//! a directory as trust anchors.

mod cert;
mod envelope;
mod error;
mod sig;
mod store;
mod vendor;

pub use cert::{
    BasicConstraints, CertSummary, CertTime, EcCurve, EkCert, EkPublicKey, Name,
    OID_EKU_EK_CERTIFICATE, OID_TPM_MANUFACTURER, OID_TPM_MODEL, OID_TPM_VERSION, TpmInfo,
    ValidityStatus,
};
pub use error::EkCertError;
pub use sig::{SigHash, SignatureAlgorithm};
pub use store::{ChainLink, Origin, RootStore, VerifiedChain, load_certs_from_dir, parse_file};
pub use vendor::{TpmManufacturer, vendor_name};

/// Largest input [`EkCert::parse`] accepts (DER plus padding, or PEM text).
pub const MAX_CERT_LEN: usize = 64 * 1024;
/// Largest root file [`load_certs_from_dir`] reads.
pub const MAX_ROOT_FILE_LEN: usize = 4 * 1024 * 1024;
/// Most certificates a store, a directory or a list of supplied intermediates may hold.
pub const MAX_ROOTS: usize = 4096;
/// Longest chain (leaf and anchor included) path building will try.
pub const MAX_CHAIN_DEPTH: usize = 8;
/// Most signature verifications one path search may do.
pub const MAX_SIGNATURE_CHECKS: usize = 256;

/// Parse `cert` (DER or PEM) and verify it against `store` at time `now` (Unix seconds): the
/// parsed certificate, and the chain or the reason it does not validate.
pub fn parse_and_verify(
    cert: &[u8],
    store: &RootStore,
    now: i64,
) -> Result<(EkCert, Result<VerifiedChain, EkCertError>), EkCertError> {
    let cert = EkCert::parse(cert)?;
    let chain = store.verify(&cert, &[], now);
    Ok((cert, chain))
}
