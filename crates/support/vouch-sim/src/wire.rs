//! Small encoders: TPM2B fields and the few DER structures rcgen has no type for.

use crate::SimError;

/// Append `u16 size || body` (a TPM2B).
pub(crate) fn tpm2b(out: &mut Vec<u8>, body: &[u8]) -> Result<(), SimError> {
    let len = u16::try_from(body.len()).map_err(|_| SimError::Crypto("TPM2B too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// One DER TLV with a definite length.
pub(crate) fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let significant = bytes.get(first..).unwrap_or_default();
        out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0));
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// DER of an OBJECT IDENTIFIER's content octets.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let (first, second) = (
        arcs.first().copied().unwrap_or(0),
        arcs.get(1).copied().unwrap_or(0),
    );
    let mut all = vec![first.saturating_mul(40).saturating_add(second)];
    all.extend(arcs.iter().skip(2).copied());
    for arc in all {
        let mut chunk = vec![u8::try_from(arc & 0x7F).unwrap_or(0)];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | u8::try_from(rest & 0x7F).unwrap_or(0));
            rest >>= 7;
        }
        chunk.reverse();
        body.extend_from_slice(&chunk);
    }
    der(0x06, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_tcg_oid_and_long_lengths() {
        assert_eq!(
            oid(&[2, 23, 133, 2, 1]),
            [0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x01]
        );
        let long = der(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(long.len(), 304);
    }
}
