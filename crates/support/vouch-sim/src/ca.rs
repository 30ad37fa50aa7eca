//! The local CA that issues simulated EK certificates (TCG EK Credential Profile 2.x §3.2).

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, PublicKeyData,
    SerialNumber, SignatureAlgorithm,
};

use crate::SimError;
use crate::key::SimKey;
use crate::wire::{der, oid};

/// Fake, unregistered TCG vendor id ("VSM "): no real TPM carries it.
pub const SIM_MANUFACTURER: &str = "id:56534D20";
/// tpmModel of simulated TPMs.
pub const SIM_MODEL: &str = "vouch-sim";
/// tpmVersion of simulated TPMs.
pub const SIM_VERSION: &str = "id:00010000";

/// A certificate authority for simulated TPMs (ECDSA P-256). **Test and demo only.**
pub struct SimCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
}

impl core::fmt::Debug for SimCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimCa")
            .field("cert_bytes", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

impl SimCa {
    /// A fresh CA: a new P-256 key and a self-signed certificate.
    pub fn generate() -> Result<Self, SimError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Vouch simulated TPMs (TEST ONLY)");
        dn.push(
            DnType::CommonName,
            "Vouch Simulated TPM EK CA - NOT A REAL MANUFACTURER",
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(9999, 12, 31);
        let cert = params.self_signed(&key)?;
        let cert_der = cert.der().to_vec();
        let key_pkcs8 = key.serialize_der();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_der,
            key_pkcs8,
        })
    }

    /// A CA from its PKCS#8 key and DER certificate, as [`SimCa::key_pkcs8`] and
    /// [`SimCa::cert_der`] gave them.
    pub fn from_parts(key_pkcs8: &[u8], cert_der: &[u8]) -> Result<Self, SimError> {
        let key = KeyPair::try_from(key_pkcs8)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.to_vec().into(), key)?;
        Ok(Self {
            issuer,
            cert_der: cert_der.to_vec(),
            key_pkcs8: key_pkcs8.to_vec(),
        })
    }

    /// The CA certificate (DER): add it to a verifier's roots only for a demo.
    #[must_use]
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate as PEM.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        let b64 = base64_encode(&self.cert_der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(core::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// The CA's private key (PKCS#8 DER).
    #[must_use]
    pub fn key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }

    /// Issue an EK certificate for `ek` (RSA-2048): empty subject, critical SAN directoryName
    /// with tpmManufacturer/tpmModel/tpmVersion, EKU tcg-kp-EKCertificate, keyEncipherment.
    pub fn issue_ek_cert(&self, ek: &SimKey) -> Result<Vec<u8>, SimError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![2, 23, 133, 8, 1])];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(9999, 12, 31);
        params.use_authority_key_identifier_extension = true;
        // Serial: the first 16 bytes of SHA-256(modulus), positive.
        let digest = vouch_tpm2::HashAlg::Sha256.hash(ek.modulus());
        let mut serial = digest.as_bytes().get(..16).unwrap_or_default().to_vec();
        if let Some(first) = serial.first_mut() {
            *first &= 0x7F;
        }
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let mut san = CustomExtension::from_oid_content(&[2, 5, 29, 17], tcg_san());
        san.set_criticality(true);
        params.custom_extensions = vec![san];
        let spki = RsaSpki(ek.rsa_public_key_der()?);
        let cert = params.signed_by(&spki, &self.issuer)?;
        Ok(cert.der().to_vec())
    }
}

/// An RSA public key for rcgen: PKCS#1 bytes, written under rsaEncryption.
struct RsaSpki(Vec<u8>);

impl PublicKeyData for RsaSpki {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

/// `GeneralNames` with one directoryName: { tpmManufacturer, tpmModel, tpmVersion }, each its
/// own RDN, as most vendors encode it.
fn tcg_san() -> Vec<u8> {
    let attr = |arc: u64, value: &str| {
        let mut atv = oid(&[2, 23, 133, 2, arc]);
        atv.extend_from_slice(&der(0x0C, value.as_bytes()));
        der(0x31, &der(0x30, &atv))
    };
    let mut rdns = attr(1, SIM_MANUFACTURER);
    rdns.extend_from_slice(&attr(2, SIM_MODEL));
    rdns.extend_from_slice(&attr(3, SIM_VERSION));
    let name = der(0x30, &rdns);
    der(0x30, &der(0xA4, &name))
}

fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3).saturating_mul(4));
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let idx = usize::try_from((n >> shift) & 0x3F).unwrap_or(0);
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}
