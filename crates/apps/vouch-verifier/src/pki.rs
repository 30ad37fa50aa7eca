//! The verifier's own CA: created on first start in the data directory, then reloaded. It
//! signs the server certificate (fresh at every start) and one client certificate per
//! enrolled host, whose subject CN and SAN URI carry the host id.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

/// File names in the data directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA private key (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";
/// Prefix of the SAN URI naming a host: `urn:vouch:host:<uuid>`.
pub const HOST_URI_PREFIX: &str = "urn:vouch:host:";

/// Why the PKI could not be set up or a certificate not issued.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Certificate generation or parsing.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Client verifier.
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// The CA and what it signs.
pub struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl core::fmt::Debug for Pki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Write `contents` to a new file with `mode` (never loosening an existing file's mode:
/// the file is created, not truncated).
pub(crate) fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.write_all(contents).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Validity of the verifier's CA, in years from its creation.
pub const CA_YEARS: i32 = 10;
/// Validity of the server certificate (made at every start), in years.
pub const SERVER_YEARS: i32 = 1;
/// Validity of a host's client certificate, in years (it is re-issued at every enrolment).
pub const CLIENT_YEARS: i32 = 5;

/// Set `params` valid from yesterday (clock skew) for `years` years, instead of rcgen's
/// defaults (1975 to 4096).
fn set_validity(params: &mut CertificateParams, years: i32) {
    use chrono::Datelike as _;
    let now = chrono::Utc::now();
    let from = now
        .checked_sub_signed(chrono::TimeDelta::days(1))
        .unwrap_or(now);
    let (m, d) = (
        u8::try_from(from.month()).unwrap_or(1),
        // The 29th of February does not exist every year: use the 28th at most.
        u8::try_from(from.day().min(28)).unwrap_or(1),
    );
    params.not_before = rcgen::date_time_ymd(from.year(), m, d);
    params.not_after = rcgen::date_time_ymd(from.year().saturating_add(years), m, d);
}

impl Pki {
    /// Load `ca.pem` + `ca.key` from `dir`, or create them (key mode 0600).
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let ca_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let key = KeyPair::from_pem(&key_pem)?;
            let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)?;
            let ca_der = pem_to_der(&ca_pem)?;
            return Ok(Self {
                ca_pem,
                ca_der,
                issuer,
            });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Vouch verifier CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        set_validity(&mut params, CA_YEARS);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        let ca_pem = cert.pem();
        write_new_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_new_file(&cert_path, ca_pem.as_bytes(), 0o644)?;
        Ok(Self {
            ca_der: cert.der().clone(),
            ca_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls server configuration: a fresh server certificate for `names`, and client
    /// certificates verified against this CA but optional (enrolment runs without one; the
    /// agent endpoints refuse requests that lack a verified one).
    pub fn server_config(&self, names: &[String]) -> Result<rustls::ServerConfig, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Vouch verifier");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, SERVER_YEARS);
        let cert = params.signed_by(&key, &self.issuer)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Verifier(e.to_string()))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.der().clone(), self.ca_der.clone()], key_der)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Issue a client certificate for `host_id` from a PKCS#10 request (its signature is
    /// checked). Subject and SANs of the request are replaced: CN = host id, one SAN URI
    /// `urn:vouch:host:<id>`, clientAuth only. Returns the PEM and the DER's SHA-256.
    pub fn issue_client(
        &self,
        csr_pem: &str,
        host_id: Uuid,
    ) -> Result<(String, [u8; 32]), PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, host_id.to_string());
        params.subject_alt_names = vec![SanType::URI(
            format!("{HOST_URI_PREFIX}{host_id}").try_into()?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, CLIENT_YEARS);
        csr.params = params;
        let cert = csr.signed_by(&self.issuer)?;
        Ok((cert.pem(), vouch_store::sha256(cert.der())))
    }
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| PkiError::Cert(rcgen::Error::CouldNotParseCertificate))
}

/// The host id a client certificate names: its SAN URI `urn:vouch:host:<id>`, else its
/// subject CN. Only called on certificates rustls has verified against the CA.
#[must_use]
pub fn host_id_of(cert_der: &[u8]) -> Option<Uuid> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name
                && let Some(id) = uri.strip_prefix(HOST_URI_PREFIX)
            {
                return Uuid::parse_str(id).ok();
            }
        }
    }
    let cn = cert.subject().iter_common_name().next()?;
    Uuid::parse_str(cn.as_str().ok()?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::arithmetic_side_effects, reason = "tests")]

    use super::*;

    fn years(der: &[u8]) -> i64 {
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        let v = cert.validity();
        let now = chrono::Utc::now().timestamp();
        assert!(v.not_before.timestamp() <= now, "valid from before now");
        assert!(
            now - v.not_before.timestamp() < 3 * 86_400,
            "not back-dated to 1975"
        );
        (v.not_after.timestamp() - v.not_before.timestamp()) / (365 * 86_400)
    }

    #[test]
    fn ca_and_client_certificates_have_real_validity_periods() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path()).unwrap();
        assert_eq!(years(&pki.ca_der), i64::from(CA_YEARS));
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::new(vec!["x".to_owned()])
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let (pem, _) = pki.issue_client(&csr, Uuid::new_v4()).unwrap();
        assert_eq!(years(&pem_to_der(&pem).unwrap()), i64::from(CLIENT_YEARS));
    }
}
