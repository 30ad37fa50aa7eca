//! A parsed EK certificate: owned, lenient about the encodings vendors actually ship, and
//! carrying the raw bytes its signature covers.

use aws_lc_rs::digest;
use serde::Serialize;
use x509_parser::prelude::{
    ASN1Time, GeneralName, ParsedExtension, SubjectPublicKeyInfo, X509Certificate, X509Name,
};
use x509_parser::public_key::PublicKey;

use crate::error::EkCertError;
use crate::sig::SignatureAlgorithm;
use crate::vendor::TpmManufacturer;
use crate::{MAX_CERT_LEN, envelope};

/// TCG tpmManufacturer attribute (EK Credential Profile §3.1.2, in the subjectAltName directoryName).
pub const OID_TPM_MANUFACTURER: &str = "2.23.133.2.1";
/// TCG tpmModel attribute.
pub const OID_TPM_MODEL: &str = "2.23.133.2.2";
/// TCG tpmVersion attribute.
pub const OID_TPM_VERSION: &str = "2.23.133.2.3";
/// TCG EK certificate extended key usage (tcg-kp-EKCertificate).
pub const OID_EKU_EK_CERTIFICATE: &str = "2.23.133.8.1";

/// A point in time from a certificate's validity, as Unix seconds and RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertTime {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub rfc3339: String,
}

impl CertTime {
    fn from_asn1(t: ASN1Time) -> Self {
        let dt = t.to_datetime();
        let rfc3339 = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        Self {
            unix: t.timestamp(),
            rfc3339,
        }
    }
}

impl core::fmt::Display for CertTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.rfc3339)
    }
}

/// Whether a certificate's validity period covers a given time. A fact to report, never a
/// reason by itself to reject (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ValidityStatus {
    /// `now` is after notAfter.
    pub expired: bool,
    /// `now` is before notBefore.
    pub not_yet_valid: bool,
}

/// A distinguished name: the raw DER (compared first), its RFC 4514 text, and a normalized form
/// used when raw bytes differ (e.g. PrintableString vs UTF8String, case, or an unsorted SET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    raw: Vec<u8>,
    text: String,
    normalized: Vec<Vec<(String, String)>>,
}

impl Name {
    fn from_x509(name: &X509Name<'_>) -> Self {
        let mut text_rdns = Vec::new();
        let mut normalized = Vec::new();
        for rdn in name.iter() {
            let mut text_atvs = Vec::new();
            let mut norm_atvs = Vec::new();
            for atv in rdn.iter() {
                let oid = atv.attr_type().to_id_string();
                let value = attr_text(atv);
                text_atvs.push(format!("{}={}", short_name(&oid), escape_rfc4514(&value)));
                norm_atvs.push((oid, normalize_value(&value)));
            }
            norm_atvs.sort();
            // OpenSSL's RFC 2253 output reverses the attributes of a multi-valued RDN too.
            text_atvs.reverse();
            text_rdns.push(text_atvs.join("+"));
            normalized.push(norm_atvs);
        }
        text_rdns.reverse();
        Self {
            raw: name.as_raw().to_vec(),
            text: text_rdns.join(","),
            normalized,
        }
    }

    /// RFC 4514 text, last RDN first, as OpenSSL's `-nameopt RFC2253` prints it (including its
    /// reversed order inside a multi-valued RDN).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The DER encoding exactly as in the certificate.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.raw
    }

    /// True when the name has no attributes (EK certificates often have an empty subject).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.normalized.iter().all(Vec::is_empty)
    }

    /// RFC 5280 §7.1 name matching: identical DER, or equal after normalization. Empty names
    /// never match.
    #[must_use]
    pub fn matches(&self, other: &Self) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && (self.raw == other.raw || self.normalized == other.normalized)
    }
}

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.text)
    }
}

fn attr_text(atv: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    match atv.as_str() {
        Ok(s) => s.to_owned(),
        Err(_) => match core::str::from_utf8(atv.as_slice()) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
            _ => format!("#{}", vouch_wire::hex_lower(atv.as_slice())),
        },
    }
}

fn short_name(oid: &str) -> &str {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => other,
    }
}

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let count = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || Some(i) == count.checked_sub(1));
        if matches!(c, '\\' | '"' | '+' | ',' | ';' | '<' | '>')
            || edge_space
            || (i == 0 && c == '#')
        {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

fn normalize_value(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Elliptic curves of EK and CA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    #[serde(rename = "P-256")]
    P256,
    /// NIST P-384 (secp384r1).
    #[serde(rename = "P-384")]
    P384,
    /// NIST P-521 (secp521r1).
    #[serde(rename = "P-521")]
    P521,
}

impl EcCurve {
    fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "1.2.840.10045.3.1.7" => Some(Self::P256),
            "1.3.132.0.34" => Some(Self::P384),
            "1.3.132.0.35" => Some(Self::P521),
            _ => None,
        }
    }

    /// Bytes in one coordinate.
    #[must_use]
    pub const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// Key size in bits.
    #[must_use]
    pub const fn bits(self) -> usize {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }

    /// The curve's name, e.g. `P-256`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }
}

/// The subject public key, as raw big-endian integers a verifier can compare with a TPM's
/// TPMT_PUBLIC (RSA: `unique.rsa` is the modulus; ECC: `unique.ecc.x`/`.y`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EkPublicKey {
    /// An RSA key.
    Rsa {
        /// Modulus, big-endian, without leading zero bytes.
        #[serde(serialize_with = "ser_hex")]
        modulus: Vec<u8>,
        /// Public exponent, big-endian, without leading zero bytes.
        #[serde(serialize_with = "ser_hex")]
        exponent: Vec<u8>,
    },
    /// An uncompressed point on a supported curve.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// X coordinate, big-endian, exactly [`EcCurve::coordinate_len`] bytes.
        #[serde(serialize_with = "ser_hex")]
        x: Vec<u8>,
        /// Y coordinate, big-endian, exactly [`EcCurve::coordinate_len`] bytes.
        #[serde(serialize_with = "ser_hex")]
        y: Vec<u8>,
    },
    /// Any other key (algorithm OID, curve OID or point encoding this crate does not handle).
    Other {
        /// What it is.
        algorithm: String,
    },
}

fn ser_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&vouch_wire::hex_lower(bytes))
}

impl EkPublicKey {
    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let alg = spki.algorithm.algorithm.to_id_string();
        match alg.as_str() {
            // rsaEncryption, RSASSA-PSS keys.
            "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => Self::Rsa {
                    modulus: strip_leading_zeros(rsa.modulus).to_vec(),
                    exponent: strip_leading_zeros(rsa.exponent).to_vec(),
                },
                _ => Self::Other {
                    algorithm: format!("{alg} (unparsable RSA key)"),
                },
            },
            "1.2.840.10045.2.1" => {
                let curve_oid = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                let Some(curve) = EcCurve::from_oid(&curve_oid) else {
                    return Self::Other {
                        algorithm: format!("ecPublicKey on curve {curve_oid}"),
                    };
                };
                let point: &[u8] = &spki.subject_public_key.data;
                let n = curve.coordinate_len();
                match point.split_first() {
                    Some((0x04, xy)) if xy.len() == n.saturating_mul(2) => {
                        let (x, y) = xy.split_at(n);
                        Self::Ec {
                            curve,
                            x: x.to_vec(),
                            y: y.to_vec(),
                        }
                    }
                    _ => Self::Other {
                        algorithm: format!(
                            "ecPublicKey {} with a non-uncompressed point",
                            curve.name()
                        ),
                    },
                }
            }
            _ => Self::Other { algorithm: alg },
        }
    }

    /// Key size in bits (RSA modulus bits, curve size), 0 for other keys.
    #[must_use]
    pub fn bits(&self) -> usize {
        match self {
            Self::Rsa { modulus, .. } => {
                let lead = modulus
                    .first()
                    .map_or(0, |b| 8_usize.saturating_sub(b.leading_zeros() as usize));
                modulus
                    .len()
                    .saturating_sub(1)
                    .saturating_mul(8)
                    .saturating_add(lead)
            }
            Self::Ec { curve, .. } => curve.bits(),
            Self::Other { .. } => 0,
        }
    }

    /// The RSA modulus (big-endian, no leading zeros), if this is an RSA key.
    #[must_use]
    pub fn rsa_modulus(&self) -> Option<&[u8]> {
        match self {
            Self::Rsa { modulus, .. } => Some(modulus),
            _ => None,
        }
    }

    /// The RSA public exponent (big-endian, no leading zeros), if this is an RSA key.
    #[must_use]
    pub fn rsa_exponent(&self) -> Option<&[u8]> {
        match self {
            Self::Rsa { exponent, .. } => Some(exponent),
            _ => None,
        }
    }

    /// The curve and (x, y) coordinates (big-endian, fixed width), if this is an EC key.
    #[must_use]
    pub fn ec_point(&self) -> Option<(EcCurve, &[u8], &[u8])> {
        match self {
            Self::Ec { curve, x, y } => Some((*curve, x, y)),
            _ => None,
        }
    }

    /// Short description, e.g. `RSA-2048` or `EC P-256`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa { .. } => format!("RSA-{}", self.bits()),
            Self::Ec { curve, .. } => format!("EC {}", curve.name()),
            Self::Other { algorithm } => algorithm.clone(),
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// TPM identity from the subjectAltName directoryName (EK Credential Profile §3.2.9).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TpmInfo {
    /// tpmManufacturer (2.23.133.2.1), decoded.
    pub manufacturer: Option<TpmManufacturer>,
    /// tpmModel (2.23.133.2.2), e.g. `ST33HTPHAHB4`.
    pub model: Option<String>,
    /// tpmVersion (2.23.133.2.3), e.g. `id:00490004`.
    pub version: Option<String>,
}

/// basicConstraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BasicConstraints {
    /// cA.
    pub ca: bool,
    /// pathLenConstraint.
    pub path_len: Option<u32>,
}

/// A parsed certificate. Construct with [`EkCert::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkCert {
    der: Vec<u8>,
    padding_bytes: usize,
    tbs: Vec<u8>,
    signature_algorithm: SignatureAlgorithm,
    signature: Vec<u8>,
    subject: Name,
    issuer: Name,
    serial: Vec<u8>,
    not_before: CertTime,
    not_after: CertTime,
    public_key: EkPublicKey,
    spki_bits: Vec<u8>,
    tpm: TpmInfo,
    san_critical: bool,
    ek_eku: bool,
    basic_constraints: Option<BasicConstraints>,
    key_cert_sign: Option<bool>,
    sha256: [u8; 32],
}

impl EkCert {
    /// Parse one certificate from DER (optionally followed by 0xFF or 0x00 NV padding, which is
    /// measured and reported by [`EkCert::padding_bytes`]) or from PEM (the first CERTIFICATE
    /// block). At most [`MAX_CERT_LEN`] bytes are accepted.
    pub fn parse(input: &[u8]) -> Result<Self, EkCertError> {
        if input.len() > MAX_CERT_LEN {
            return Err(EkCertError::TooLarge {
                len: input.len(),
                limit: MAX_CERT_LEN,
            });
        }
        if looks_like_pem(input) {
            let der = pem_certificates(input)?
                .into_iter()
                .next()
                .ok_or_else(|| EkCertError::Pem("no CERTIFICATE block".to_owned()))?;
            Self::parse_der(&der)
        } else {
            Self::parse_der(input)
        }
    }

    /// Parse DER, optionally followed by NV padding.
    pub fn parse_der(input: &[u8]) -> Result<Self, EkCertError> {
        if input.len() > MAX_CERT_LEN {
            return Err(EkCertError::TooLarge {
                len: input.len(),
                limit: MAX_CERT_LEN,
            });
        }
        let env = envelope::walk(input)?;
        let (der, trailing) = input.split_at_checked(env.der_len).unwrap_or((input, &[]));
        let is_padding = trailing.iter().all(|b| *b == 0xff) || trailing.iter().all(|b| *b == 0);
        if !is_padding {
            return Err(EkCertError::TrailingData {
                offset: env.der_len,
                len: trailing.len(),
            });
        }
        let cert = match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => cert,
            Err(e) => {
                return Err(EkCertError::Parse {
                    offset: env.tbs_offset,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Self::from_parsed(&cert, der, trailing.len()))
    }

    fn from_parsed(cert: &X509Certificate<'_>, der: &[u8], padding_bytes: usize) -> Self {
        let tbs = &cert.tbs_certificate;
        let mut tpm = TpmInfo::default();
        let mut san_critical = false;
        let mut ek_eku = false;
        let mut basic_constraints = None;
        let mut key_cert_sign = None;
        for ext in tbs.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    san_critical |= ext.critical;
                    for gn in &san.general_names {
                        if let GeneralName::DirectoryName(dn) = gn {
                            read_tpm_attributes(dn, &mut tpm);
                        }
                    }
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    ek_eku |= eku
                        .other
                        .iter()
                        .any(|o| o.to_id_string() == OID_EKU_EK_CERTIFICATE);
                }
                ParsedExtension::BasicConstraints(bc) => {
                    basic_constraints.get_or_insert(BasicConstraints {
                        ca: bc.ca,
                        path_len: bc.path_len_constraint,
                    });
                }
                ParsedExtension::KeyUsage(ku) => {
                    key_cert_sign.get_or_insert(ku.key_cert_sign());
                }
                _ => {}
            }
        }
        Self {
            der: der.to_vec(),
            padding_bytes,
            tbs: tbs.as_ref().to_vec(),
            signature_algorithm: SignatureAlgorithm::from_identifier(&cert.signature_algorithm),
            signature: cert.signature_value.data.to_vec(),
            subject: Name::from_x509(tbs.subject()),
            issuer: Name::from_x509(tbs.issuer()),
            serial: tbs.raw_serial().to_vec(),
            not_before: CertTime::from_asn1(tbs.validity().not_before),
            not_after: CertTime::from_asn1(tbs.validity().not_after),
            public_key: EkPublicKey::from_spki(tbs.public_key()),
            spki_bits: tbs.public_key().subject_public_key.data.to_vec(),
            tpm,
            san_critical,
            ek_eku,
            basic_constraints,
            key_cert_sign,
            sha256: sha256(der),
        }
    }

    /// The certificate's DER, without any padding.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// How many 0xFF / 0x00 padding bytes followed the DER in the input (0 for PEM).
    #[must_use]
    pub const fn padding_bytes(&self) -> usize {
        self.padding_bytes
    }

    /// The raw tbsCertificate bytes the signature covers.
    #[must_use]
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The signature algorithm.
    #[must_use]
    pub const fn signature_algorithm(&self) -> &SignatureAlgorithm {
        &self.signature_algorithm
    }

    /// The subject.
    #[must_use]
    pub const fn subject(&self) -> &Name {
        &self.subject
    }

    /// The issuer.
    #[must_use]
    pub const fn issuer(&self) -> &Name {
        &self.issuer
    }

    /// The serial number's content octets exactly as encoded (non-minimal encodings kept).
    #[must_use]
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number as lowercase hex of the integer (leading zero octets dropped, as
    /// OpenSSL prints it; `00` for zero).
    #[must_use]
    pub fn serial_hex(&self) -> String {
        let digits = strip_leading_zeros(&self.serial);
        if digits.is_empty() {
            "00".to_owned()
        } else {
            vouch_wire::hex_lower(digits)
        }
    }

    /// notBefore.
    #[must_use]
    pub const fn not_before(&self) -> &CertTime {
        &self.not_before
    }

    /// notAfter.
    #[must_use]
    pub const fn not_after(&self) -> &CertTime {
        &self.not_after
    }

    /// Whether the validity period covers `now` (Unix seconds).
    #[must_use]
    pub const fn validity_at(&self, now: i64) -> ValidityStatus {
        ValidityStatus {
            expired: now > self.not_after.unix,
            not_yet_valid: now < self.not_before.unix,
        }
    }

    /// The subject public key, for comparison with the TPM's EK public area.
    #[must_use]
    pub const fn ek_public_key(&self) -> &EkPublicKey {
        &self.public_key
    }

    /// The raw subjectPublicKey BIT STRING contents (PKCS#1 RSAPublicKey or an EC point).
    #[must_use]
    pub fn public_key_bits(&self) -> &[u8] {
        &self.spki_bits
    }

    /// TPM manufacturer, model and version from the subjectAltName.
    #[must_use]
    pub const fn tpm(&self) -> &TpmInfo {
        &self.tpm
    }

    /// Whether the subjectAltName extension is marked critical (the profile requires it when the
    /// subject is empty).
    #[must_use]
    pub const fn san_critical(&self) -> bool {
        self.san_critical
    }

    /// Whether extendedKeyUsage contains tcg-kp-EKCertificate (2.23.133.8.1).
    #[must_use]
    pub const fn has_ek_eku(&self) -> bool {
        self.ek_eku
    }

    /// basicConstraints, if present.
    #[must_use]
    pub const fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.basic_constraints
    }

    /// True when basicConstraints says cA.
    #[must_use]
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|bc| bc.ca)
    }

    /// keyCertSign from keyUsage, or `None` when the certificate has no keyUsage.
    #[must_use]
    pub const fn key_cert_sign(&self) -> Option<bool> {
        self.key_cert_sign
    }

    /// SHA-256 of the DER (the certificate's fingerprint).
    #[must_use]
    pub const fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// [`EkCert::sha256`] as lowercase hex.
    #[must_use]
    pub fn sha256_hex(&self) -> String {
        vouch_wire::hex_lower(&self.sha256)
    }

    /// The raw signature bits.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Verify this certificate's signature with `issuer`'s key, over the raw TBS bytes.
    pub(crate) fn verify_signed_by(&self, issuer: &Self) -> Result<(), crate::sig::SigFailure> {
        crate::sig::verify(
            &self.signature_algorithm,
            &issuer.public_key,
            &issuer.spki_bits,
            &self.tbs,
            &self.signature,
        )
    }

    /// True when subject and issuer match and the signature verifies with the certificate's own key.
    #[must_use]
    pub fn is_self_signed(&self) -> bool {
        self.subject.matches(&self.issuer) && self.verify_signed_by(self).is_ok()
    }

    /// A serialisable summary of the fields above.
    #[must_use]
    pub fn summary(&self) -> CertSummary {
        CertSummary {
            subject: self.subject.as_str().to_owned(),
            issuer: self.issuer.as_str().to_owned(),
            serial: self.serial_hex(),
            not_before: self.not_before.clone(),
            not_after: self.not_after.clone(),
            signature_algorithm: self.signature_algorithm.name(),
            public_key: self.public_key.clone(),
            public_key_description: self.public_key.describe(),
            tpm: self.tpm.clone(),
            san_critical: self.san_critical,
            ek_eku: self.ek_eku,
            basic_constraints: self.basic_constraints,
            padding_bytes: self.padding_bytes,
            sha256: self.sha256_hex(),
        }
    }
}

/// A serialisable view of an [`EkCert`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial, lowercase hex of the content octets.
    pub serial: String,
    /// notBefore.
    pub not_before: CertTime,
    /// notAfter.
    pub not_after: CertTime,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// Public key.
    pub public_key: EkPublicKey,
    /// e.g. `RSA-2048`.
    pub public_key_description: String,
    /// TPM identity from the SAN.
    pub tpm: TpmInfo,
    /// SAN critical flag.
    pub san_critical: bool,
    /// EKU 2.23.133.8.1 present.
    pub ek_eku: bool,
    /// basicConstraints.
    pub basic_constraints: Option<BasicConstraints>,
    /// NV padding after the DER.
    pub padding_bytes: usize,
    /// SHA-256 fingerprint, hex.
    pub sha256: String,
}

fn read_tpm_attributes(dn: &X509Name<'_>, tpm: &mut TpmInfo) {
    for atv in dn.iter_attributes() {
        let oid = atv.attr_type().to_id_string();
        let slot = match oid.as_str() {
            OID_TPM_MANUFACTURER => {
                if tpm.manufacturer.is_none() {
                    tpm.manufacturer = Some(TpmManufacturer::decode(&attr_text(atv)));
                }
                continue;
            }
            OID_TPM_MODEL => &mut tpm.model,
            OID_TPM_VERSION => &mut tpm.version,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(attr_text(atv));
        }
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    if let Some(src) = d.as_ref().get(..32) {
        out.copy_from_slice(src);
    }
    out
}

pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    input.first() != Some(&0x30) && input.windows(10).any(|w| w == b"-----BEGIN")
}

/// Every CERTIFICATE block of a PEM text, as DER.
pub(crate) fn pem_certificates(input: &[u8]) -> Result<Vec<Vec<u8>>, EkCertError> {
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(input) {
        match pem {
            Ok(p) if p.label == "CERTIFICATE" || p.label == "X509 CERTIFICATE" => {
                out.push(p.contents)
            }
            Ok(_) => {}
            Err(x509_parser::error::PEMError::MissingHeader) if !out.is_empty() => break,
            Err(e) => return Err(EkCertError::Pem(e.to_string())),
        }
    }
    Ok(out)
}
