//! Strings as firmware writes them: UCS-2/UTF-16LE and ASCII, borrowed.

use core::fmt;

use serde::{Serialize, Serializer};
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

/// UTF-16LE text, borrowed; an even number of bytes, trailing NULs removed. Unpaired
/// surrogates are shown as U+FFFD.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ucs2<'a>(&'a [u8]);

impl<'a> Ucs2<'a> {
    /// Text from UTF-16LE bytes (odd length is refused); trailing NUL code units are dropped.
    pub fn new(bytes: &'a [u8], at: usize) -> Result<Self, DecodeError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(DecodeError::new(
                DecodeErrorKind::Invalid("odd-length UTF-16 string"),
                at,
            ));
        }
        let mut end = bytes.len();
        while end >= 2 && bytes.get(end.saturating_sub(2)..end) == Some(&[0, 0]) {
            end = end.saturating_sub(2);
        }
        Ok(Self(bytes.get(..end).unwrap_or_default()))
    }

    /// Read a NUL-terminated string from `r` (the terminator is consumed, not kept).
    pub fn read_terminated(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let rest = r.rest();
        let at = r.offset();
        let units = rest
            .chunks_exact(2)
            .position(|u| u == [0, 0])
            .ok_or_else(|| {
                DecodeError::new(
                    DecodeErrorKind::Invalid("UTF-16 string without terminator"),
                    at,
                )
            })?;
        let len = units.saturating_mul(2);
        let s = r.bytes(len)?;
        r.skip(2)?;
        Ok(Self(s))
    }

    /// The raw bytes (without trailing NULs).
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Code units.
    pub fn units(&self) -> impl Iterator<Item = u16> + 'a {
        self.0.chunks_exact(2).map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
    }

    /// True when empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compare with an ASCII/UTF-8 string without allocating.
    #[must_use]
    pub fn eq_str(&self, s: &str) -> bool {
        self.units().eq(s.encode_utf16())
    }
}

impl fmt::Display for Ucs2<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in char::decode_utf16(self.units()) {
            fmt::Write::write_char(f, c.unwrap_or(char::REPLACEMENT_CHARACTER))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Ucs2<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for Ucs2<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Printable text: UTF-8 without control characters other than tab/newline, trailing NULs
/// removed. `None` when the bytes are not such text.
#[must_use]
pub fn ascii_text(bytes: &[u8]) -> Option<&str> {
    let end = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |p| p.saturating_add(1));
    let trimmed = bytes.get(..end)?;
    let s = core::str::from_utf8(trimmed).ok()?;
    s.chars()
        .all(|c| !c.is_control() || c == '\t' || c == '\n' || c == '\r')
        .then_some(s)
}

/// UTF-16LE text that is printable (no NULs before the trailing ones, no controls) and
/// mostly ASCII, so that even-length ASCII is not taken for UTF-16.
#[must_use]
pub fn utf16_text(bytes: &[u8]) -> Option<Ucs2<'_>> {
    // systemd-boot has logged UTF-16 followed by a single NUL byte (odd length).
    let bytes = match bytes.split_last() {
        Some((0, head)) if !bytes.len().is_multiple_of(2) => head,
        _ => bytes,
    };
    if bytes.len() < 2 {
        return None;
    }
    let s = Ucs2::new(bytes, 0).ok()?;
    if s.is_empty() {
        return None;
    }
    let printable = char::decode_utf16(s.units())
        .all(|c| c.is_ok_and(|c| !c.is_control() || c == '\t' || c == '\n'));
    let ascii = s.units().filter(|u| *u < 0x80).count();
    let total = s.units().count();
    (printable && ascii.saturating_mul(2) >= total).then_some(s)
}

/// Text that may be UTF-16LE or ASCII (S-CRTM versions, descriptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FirmwareText<'a> {
    /// UTF-16LE.
    Utf16(Ucs2<'a>),
    /// ASCII / UTF-8.
    Ascii(&'a str),
}

impl<'a> FirmwareText<'a> {
    /// Decode `bytes`, preferring UTF-16 when it reads as text.
    pub fn decode(bytes: &'a [u8], at: usize) -> Result<Self, DecodeError> {
        if let Some(s) = utf16_text(bytes) {
            return Ok(Self::Utf16(s));
        }
        ascii_text(bytes)
            .map(Self::Ascii)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Invalid("not text"), at))
    }
}

impl fmt::Display for FirmwareText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Utf16(s) => s.fmt(f),
            Self::Ascii(s) => f.write_str(s),
        }
    }
}
