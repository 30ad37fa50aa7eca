//! Reading TPM key files as tpm2-tools and OpenSSL write them: `TPM2B_PUBLIC`, bare
//! `TPMT_PUBLIC`, or a PEM / DER SubjectPublicKeyInfo.

use anyhow::{Context, anyhow, bail};
use vouch_tpm2::{EccCurve, PublicArea};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as SpkiKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// A public key read from a file.
#[derive(Debug)]
pub enum KeyFile<'a> {
    /// The TPM's own description of the key, with attributes and name.
    Tpm(PublicArea<'a>),
    /// An RSA key without TPM attributes.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Exponent.
        e: Vec<u8>,
    },
    /// An ECC key without TPM attributes.
    Ecc {
        /// Curve.
        curve: EccCurve,
        /// Uncompressed point.
        point: Vec<u8>,
    },
}

/// Decode PEM armour if present, else return the bytes as they are.
pub fn pem_or_der(bytes: &[u8]) -> anyhow::Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(b"-----BEGIN") {
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(bytes).map_err(|e| anyhow!("cannot read PEM: {e}"))?;
        return Ok(std::borrow::Cow::Owned(pem.contents));
    }
    Ok(std::borrow::Cow::Borrowed(bytes))
}

/// Read a key file in any supported format. `owned` keeps decoded PEM alive.
pub fn read_key<'a>(bytes: &'a [u8], owned: &'a mut Vec<u8>) -> anyhow::Result<KeyFile<'a>> {
    if let Ok(area) = PublicArea::decode_tpm2b(bytes) {
        return Ok(KeyFile::Tpm(area));
    }
    if let Ok(area) = PublicArea::decode_tpmt(bytes) {
        return Ok(KeyFile::Tpm(area));
    }
    *owned = pem_or_der(bytes)?.into_owned();
    let (_, spki) = SubjectPublicKeyInfo::from_der(owned)
        .map_err(|e| anyhow!("not a TPM2B_PUBLIC, TPMT_PUBLIC or SubjectPublicKeyInfo: {e}"))?;
    match spki.parsed().context("unsupported public key")? {
        SpkiKey::RSA(rsa) => Ok(KeyFile::Rsa {
            n: rsa.modulus.to_vec(),
            e: rsa.exponent.to_vec(),
        }),
        SpkiKey::EC(point) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let curve = match curve_oid.as_str() {
                "1.2.840.10045.3.1.7" => EccCurve::NistP256,
                "1.3.132.0.34" => EccCurve::NistP384,
                "1.3.132.0.35" => EccCurve::NistP521,
                other => bail!("unsupported elliptic curve {other}"),
            };
            Ok(KeyFile::Ecc {
                curve,
                point: point.data().to_vec(),
            })
        }
        _ => bail!("unsupported public key type (RSA and NIST ECC only)"),
    }
}

/// Split an uncompressed point into coordinates.
pub fn point_xy(curve: EccCurve, point: &[u8]) -> anyhow::Result<(&[u8], &[u8])> {
    let len = curve.coordinate_len().context("unsupported curve")?;
    let body = point
        .strip_prefix(&[0x04])
        .context("ECC point is not uncompressed")?;
    match body.split_at_checked(len) {
        Some((x, y)) if y.len() == len => Ok((x, y)),
        _ => bail!("ECC point has {} bytes, expected twice {len}", body.len()),
    }
}
