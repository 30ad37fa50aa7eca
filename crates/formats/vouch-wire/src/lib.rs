//! One bounds-checked reader for untrusted bytes.
//!
//! Every Vouch parser of attacker-controlled input (TPM 2.0 structures, TCG event logs, IMA lists)
//! reads through [`Reader`]. It never panics, never indexes by hand, and never allocates: a
//! length prefix becomes a sub-reader over borrowed bytes, fixed fields are [`Reader::take`], and
//! [`Reader::finish`] rejects trailing bytes. Every failure is a small, `Copy` [`DecodeError`]
//! that names what was wrong and the absolute byte offset where it was found.
//!
//! Trust assumptions: none. Input may be truncated, oversized, or adversarial.

use core::fmt;

/// What went wrong while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ended before a field of `needed` bytes could be read (`available` were left).
    #[error("truncated: needed {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that remained.
        available: usize,
    },
    /// Bytes remained after a structure that must consume its whole input.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// A length field exceeds the limit the format allows.
    #[error("length {length} exceeds the limit of {limit}")]
    TooLong {
        /// The length that was declared.
        length: u64,
        /// The largest length allowed here.
        limit: u64,
    },
    /// A tag, magic number or enumeration value that this format does not allow.
    #[error("unexpected value {value:#x} for {what}")]
    BadValue {
        /// Which field.
        what: &'static str,
        /// The value read.
        value: u64,
    },
    /// A structural rule of the format was broken.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A decoding failure: what went wrong and the absolute offset in the input where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Byte offset from the start of the outermost input.
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte offset {}", self.kind, self.offset)
    }
}

impl core::error::Error for DecodeError {}

impl DecodeError {
    /// A new error at `offset`.
    #[must_use]
    pub const fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

/// A cursor over borrowed bytes that never reads past its end.
///
/// Offsets reported in errors are absolute: a sub-reader made by [`Reader::sub`] or
/// [`Reader::sized_u16`] keeps the offset of its first byte in the outer input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `bytes`, starting at offset 0.
    #[must_use]
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over `bytes` that reports offsets starting at `base`.
    #[must_use]
    pub const fn with_base(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    /// Absolute offset of the next byte to be read.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// An error of `kind` at the current offset.
    #[must_use]
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.offset())
    }

    /// An error of `kind` at `offset` (absolute), for fields already consumed.
    #[must_use]
    pub const fn error_at(kind: DecodeErrorKind, offset: usize) -> DecodeError {
        DecodeError::new(kind, offset)
    }

    /// Consume exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        let end = self.pos.checked_add(n).filter(|_| n <= available);
        match end.and_then(|end| self.bytes.get(self.pos..end).map(|s| (s, end))) {
            Some((slice, end)) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.error(DecodeErrorKind::Truncated {
                needed: n,
                available,
            })),
        }
    }

    /// Consume a fixed-size array.
    pub fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    /// Consume every remaining byte.
    pub fn rest_bytes(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos = self.bytes.len();
        rest
    }

    /// A sub-reader over the next `n` bytes; this reader moves past them.
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let bytes = self.bytes(n)?;
        Ok(Reader::with_base(bytes, base))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.take::<1>()?))
    }
    /// Big-endian u16 (TPM 2.0 wire order).
    pub fn u16_be(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    /// Big-endian u32 (TPM 2.0 wire order).
    pub fn u32_be(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    /// Big-endian u64 (TPM 2.0 wire order).
    pub fn u64_be(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
    /// Little-endian u16 (TCG event logs, UEFI).
    pub fn u16_le(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    /// Little-endian u32 (TCG event logs, UEFI).
    pub fn u32_le(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    /// Little-endian u64 (TCG event logs, UEFI).
    pub fn u64_le(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    /// A TPM2B: big-endian u16 size, then that many bytes, at most `limit`.
    pub fn tpm2b(&mut self, limit: u16) -> Result<&'a [u8], DecodeError> {
        let at = self.offset();
        let size = self.u16_be()?;
        if size > limit {
            return Err(DecodeError::new(
                DecodeErrorKind::TooLong {
                    length: u64::from(size),
                    limit: u64::from(limit),
                },
                at,
            ));
        }
        self.bytes(usize::from(size))
    }

    /// A sub-reader over a TPM2B's contents (big-endian u16 size prefix), at most `limit` bytes.
    pub fn sized_u16(&mut self, limit: u16) -> Result<Reader<'a>, DecodeError> {
        let at = self.offset();
        let size = self.u16_be()?;
        if size > limit {
            return Err(DecodeError::new(
                DecodeErrorKind::TooLong {
                    length: u64::from(size),
                    limit: u64::from(limit),
                },
                at,
            ));
        }
        self.sub(usize::from(size))
    }

    /// Little-endian u32 length, at most `limit`, then a sub-reader over that many bytes.
    pub fn sized_u32_le(&mut self, limit: u32) -> Result<Reader<'a>, DecodeError> {
        let at = self.offset();
        let size = self.u32_le()?;
        if size > limit {
            return Err(DecodeError::new(
                DecodeErrorKind::TooLong {
                    length: u64::from(size),
                    limit: u64::from(limit),
                },
                at,
            ));
        }
        let n = usize::try_from(size).map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::TooLong {
                    length: u64::from(size),
                    limit: u64::from(limit),
                },
                at,
            )
        })?;
        self.sub(n)
    }

    /// Succeed only if every byte has been read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(DecodeErrorKind::TrailingBytes(n))),
        }
    }
}

/// Lowercase hexadecimal of `bytes`.
#[must_use]
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(d));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reports_truncation_with_absolute_offset() {
        let data = [9u8, 0, 2, 1, 2];
        let mut r = Reader::new(&data);
        r.u8().unwrap();
        let mut sub = r.sized_u16(16).unwrap();
        assert_eq!(sub.u16_be().unwrap(), 0x0102);
        let err = sub.u8().unwrap_err();
        assert_eq!(err.offset, 5);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::Truncated {
                needed: 1,
                available: 0
            }
        ));
    }

    #[test]
    fn refuses_sub_reader_longer_than_input() {
        let data = [0u8, 4, 1, 2];
        let err = Reader::new(&data).sized_u16(16).unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        ));
    }

    #[test]
    fn rejects_trailing_bytes_on_finish() {
        let data = [1u8, 2, 3];
        let mut r = Reader::new(&data);
        r.u16_be().unwrap();
        let err = r.finish().unwrap_err();
        assert_eq!(err, DecodeError::new(DecodeErrorKind::TrailingBytes(1), 2));
    }

    #[test]
    fn rejects_tpm2b_longer_than_limit() {
        let data = [0u8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let err = Reader::new(&data).tpm2b(8).unwrap_err();
        assert!(matches!(
            err.kind,
            DecodeErrorKind::TooLong {
                length: 9,
                limit: 8
            }
        ));
        assert_eq!(err.offset, 0);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex_lower(&[0xAB, 0x01]), "ab01");
    }

    proptest! {
        #[test]
        fn never_reads_past_the_end(data in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..80) {
            let mut r = Reader::new(&data);
            match r.bytes(n) {
                Ok(s) => prop_assert_eq!(s.len(), n),
                Err(e) => prop_assert!(n > data.len() && e.offset == 0),
            }
        }
    }
}
