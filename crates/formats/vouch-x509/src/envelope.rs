//! A minimal walk over the outer DER envelope of a certificate, done before x509-parser sees it.
//!
//! It finds where the certificate ends (so NV padding after it can be measured), and reports
//! structural damage with an exact byte offset. Lengths may be non-minimally encoded (BER), as
//! on some field EK certificates; indefinite lengths and multi-byte tags are refused.

use vouch_wire::{DecodeErrorKind, Reader};

/// Universal SEQUENCE, constructed.
const TAG_SEQUENCE: u8 = 0x30;
/// Universal BIT STRING.
const TAG_BIT_STRING: u8 = 0x03;

/// Offsets of the parts of a certificate, relative to the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// Length of the whole Certificate TLV.
    pub(crate) der_len: usize,
    /// Offset of the tbsCertificate TLV.
    pub(crate) tbs_offset: usize,
}

/// Read one tag and length; returns (tag, content reader).
fn tlv<'a>(r: &mut Reader<'a>) -> Result<(u8, Reader<'a>), vouch_wire::DecodeError> {
    let tag_offset = r.offset();
    let tag = r.u8()?;
    if tag & 0x1f == 0x1f {
        return Err(Reader::error_at(
            DecodeErrorKind::BadValue {
                what: "DER tag (multi-byte tags are not used here)",
                value: u64::from(tag),
            },
            tag_offset,
        ));
    }
    let first = r.u8()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = first & 0x7f;
        if n == 0 {
            return Err(r.error(DecodeErrorKind::Invalid("indefinite DER length")));
        }
        if n > 4 {
            return Err(r.error(DecodeErrorKind::BadValue {
                what: "DER length-of-length",
                value: u64::from(n),
            }));
        }
        let mut len: u32 = 0;
        for _ in 0..n {
            len = len.checked_shl(8).unwrap_or(u32::MAX) | u32::from(r.u8()?);
        }
        usize::try_from(len).map_err(|_| {
            r.error(DecodeErrorKind::TooLong {
                length: u64::from(len),
                limit: u64::from(u32::MAX),
            })
        })?
    };
    Ok((tag, r.sub(len)?))
}

fn expect_tag(
    tag: u8,
    want: u8,
    what: &'static str,
    offset: usize,
) -> Result<(), vouch_wire::DecodeError> {
    if tag == want {
        Ok(())
    } else {
        Err(Reader::error_at(
            DecodeErrorKind::BadValue {
                what,
                value: u64::from(tag),
            },
            offset,
        ))
    }
}

/// Walk `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`.
/// Bytes after the outer SEQUENCE are left for the caller to judge.
pub(crate) fn walk(bytes: &[u8]) -> Result<Envelope, vouch_wire::DecodeError> {
    let mut outer = Reader::new(bytes);
    let (tag, mut cert) = tlv(&mut outer)?;
    expect_tag(tag, TAG_SEQUENCE, "Certificate tag", 0)?;
    let der_len = outer.offset();

    let tbs_offset = cert.offset();
    let (tag, _tbs) = tlv(&mut cert)?;
    expect_tag(tag, TAG_SEQUENCE, "tbsCertificate tag", tbs_offset)?;
    let alg_offset = cert.offset();
    let (tag, _alg) = tlv(&mut cert)?;
    expect_tag(tag, TAG_SEQUENCE, "signatureAlgorithm tag", alg_offset)?;
    let sig_offset = cert.offset();
    let (tag, _sig) = tlv(&mut cert)?;
    expect_tag(tag, TAG_BIT_STRING, "signatureValue tag", sig_offset)?;
    cert.finish()?;
    Ok(Envelope {
        der_len,
        tbs_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_indefinite_length() {
        let err = walk(&[0x30, 0x80, 0, 0]).unwrap_err();
        assert_eq!(err.offset, 2);
    }

    #[test]
    fn reports_truncation_offset() {
        // SEQUENCE claiming 10 bytes with 2 present.
        let err = walk(&[0x30, 0x0a, 0x30, 0x00]).unwrap_err();
        assert!(matches!(
            err.kind,
            DecodeErrorKind::Truncated {
                needed: 10,
                available: 2
            }
        ));
        assert_eq!(err.offset, 2);
    }

    #[test]
    fn accepts_non_minimal_length_and_measures_der() {
        // 30 81 08 {30 00, 30 00, 03 02 00 00} + padding: long-form length where short form would do.
        let bytes = [
            0x30, 0x81, 0x08, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x00, 0x00, 0xff, 0xff,
        ];
        let env = walk(&bytes).unwrap();
        assert_eq!(env.der_len, 11);
        assert_eq!(env.tbs_offset, 3);
    }

    #[test]
    fn rejects_wrong_signature_tag() {
        let bytes = [0x30, 0x06, 0x30, 0x00, 0x30, 0x00, 0x04, 0x00];
        let err = walk(&bytes).unwrap_err();
        assert_eq!(err.offset, 6);
    }
}
