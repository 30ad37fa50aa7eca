//! A minimal DER walk over [`Reader`]: just enough to name an X.509 certificate's subject.
//! Certificates stay borrowed DER; nothing here validates them (that is vouch-x509's job).

use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

/// Read one TLV; returns the tag and a reader over the contents. Definite lengths only.
fn tlv<'a>(r: &mut Reader<'a>) -> Result<(u8, Reader<'a>), DecodeError> {
    let tag = r.u8()?;
    let at = r.offset();
    let first = r.u8()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "DER length",
                    value: first.into(),
                },
                at,
            ));
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = len.checked_shl(8).unwrap_or(usize::MAX) | usize::from(r.u8()?);
        }
        len
    };
    Ok((tag, r.sub(len)?))
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0A];

fn string_value(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, T61String (taken as Latin-1 subset)
        0x0C | 0x13 | 0x16 | 0x14 => core::str::from_utf8(v).ok().map(str::to_owned),
        // BMPString: UTF-16BE
        0x1E => {
            let units = v.chunks_exact(2).map(|c| {
                u16::from_be_bytes([
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ])
            });
            Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The subject's common name (or, lacking one, its organisation) of a DER certificate.
#[must_use]
pub fn subject_name(der: &[u8]) -> Option<String> {
    let subject = subject(der).ok()?;
    attribute(subject.clone(), OID_CN).or_else(|| attribute(subject, OID_O))
}

fn subject(der: &[u8]) -> Result<Reader<'_>, DecodeError> {
    let mut outer = Reader::new(der);
    let (_, mut cert) = tlv(&mut outer)?;
    let (_, mut tbs) = tlv(&mut cert)?;
    let (mut tag, mut field) = tlv(&mut tbs)?;
    if tag == 0xA0 {
        (tag, field) = tlv(&mut tbs)?; // serialNumber
    }
    let _ = (tag, field);
    tlv(&mut tbs)?; // signature
    tlv(&mut tbs)?; // issuer
    tlv(&mut tbs)?; // validity
    let (_, subject) = tlv(&mut tbs)?;
    Ok(subject)
}

fn attribute(mut name: Reader<'_>, oid: &[u8]) -> Option<String> {
    while !name.is_empty() {
        let (_, mut set) = tlv(&mut name).ok()?;
        while !set.is_empty() {
            let (_, mut atv) = tlv(&mut set).ok()?;
            let (_, id) = tlv(&mut atv).ok()?;
            if id.rest() == oid {
                let (tag, value) = tlv(&mut atv).ok()?;
                return string_value(tag, value.rest());
            }
        }
    }
    None
}

/// Length of the DER element at the start of `bytes` (header included), if well-formed.
#[must_use]
pub fn element_len(bytes: &[u8]) -> Option<usize> {
    let mut r = Reader::new(bytes);
    tlv(&mut r).ok()?;
    Some(r.offset())
}
