//! Framing: the two log formats, the Spec ID event, and the lazy event iterator.
//!
//! Nothing here allocates. An [`Event`] borrows its digests and data from the input; the
//! iterator yields `Result<Event<'a>, DecodeError>` and stops after the first error.

use core::fmt;

use vouch_tpm2::{Digest, HashAlg};
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::TcgLogError;
use crate::event_type::EventType;

/// The largest event data accepted (16 MiB). Real events are at most a few hundred KiB.
pub const MAX_EVENT_DATA: u32 = 16 * 1024 * 1024;
/// The most digest algorithms a Spec ID event may list, and so the most digests per event.
pub const MAX_ALGORITHMS: usize = 16;
/// The largest digest size accepted for an algorithm this crate does not know.
pub const MAX_UNKNOWN_DIGEST: u16 = 512;
/// The PCR index of the trailer event Windows appends (`EV_NO_ACTION` only).
pub const TRAILER_PCR: u32 = 0xFFFF_FFFF;

const SPEC_ID_03: &[u8; 16] = b"Spec ID Event03\0";
const LEGACY_HEADER_LEN: usize = 32;

/// Which framing the log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// TCG 1.2 / PFP legacy: every event is a `TCG_PCClientPCREvent` with one SHA-1 digest.
    LegacySha1,
    /// TCG 2.0 crypto-agile: a Spec ID event, then `TCG_PCR_EVENT2` records.
    CryptoAgile,
}

/// One `TCG_EfiSpecIdEventAlgorithmSize` entry: an algorithm ID and its digest size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSize {
    id: u16,
    size: u16,
}

impl AlgorithmSize {
    /// The TPM_ALG_ID.
    #[must_use]
    pub const fn id(&self) -> u16 {
        self.id
    }
    /// The digest size in bytes the Spec ID event declares.
    #[must_use]
    pub const fn size(&self) -> u16 {
        self.size
    }
    /// The algorithm, if this crate knows it.
    #[must_use]
    pub const fn alg(&self) -> Option<HashAlg> {
        HashAlg::from_tpm_alg_id(self.id)
    }
}

/// The algorithms of a crypto-agile log: at most [`MAX_ALGORITHMS`] distinct IDs, each known
/// algorithm with its true digest size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmTable {
    entries: [AlgorithmSize; MAX_ALGORITHMS],
    len: usize,
}

impl AlgorithmTable {
    const EMPTY: Self = Self {
        entries: [AlgorithmSize { id: 0, size: 0 }; MAX_ALGORITHMS],
        len: 0,
    };

    /// The entries, in Spec ID order.
    #[must_use]
    pub fn as_slice(&self) -> &[AlgorithmSize] {
        self.entries.get(..self.len).unwrap_or_default()
    }

    fn position(&self, id: u16) -> Option<usize> {
        self.as_slice().iter().position(|a| a.id == id)
    }

    fn push(&mut self, entry: AlgorithmSize) -> bool {
        match self.entries.get_mut(self.len) {
            Some(slot) => {
                *slot = entry;
                self.len = self.len.saturating_add(1);
                true
            }
            None => false,
        }
    }
}

/// The `TCG_EfiSpecIDEvent` that opens a crypto-agile log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecIdEvent<'a> {
    platform_class: u32,
    spec_version_major: u8,
    spec_version_minor: u8,
    spec_errata: u8,
    uintn_size: u8,
    algorithms: AlgorithmTable,
    vendor_info: &'a [u8],
    /// Bytes of vendor info that follow the event's declared size (tpm2-tools compatibility).
    vendor_overrun: usize,
}

impl<'a> SpecIdEvent<'a> {
    /// `platformClass` (0 client, 1 server).
    #[must_use]
    pub const fn platform_class(&self) -> u32 {
        self.platform_class
    }
    /// `(specVersionMajor, specVersionMinor, specErrata)`.
    #[must_use]
    pub const fn spec_version(&self) -> (u8, u8, u8) {
        (
            self.spec_version_major,
            self.spec_version_minor,
            self.spec_errata,
        )
    }
    /// `uintnSize`: 1 for 32-bit UINTN, 2 for 64-bit.
    #[must_use]
    pub const fn uintn_size(&self) -> u8 {
        self.uintn_size
    }
    /// The algorithms and digest sizes every later event uses.
    #[must_use]
    pub const fn algorithms(&self) -> &AlgorithmTable {
        &self.algorithms
    }
    /// `vendorInfo`.
    #[must_use]
    pub const fn vendor_info(&self) -> &'a [u8] {
        self.vendor_info
    }

    /// Decode the data of a Spec ID event. `after` is what follows the event in the log: a
    /// few producers (a tpm2-tools fixture) leave `vendorInfo` out of the event's size; when
    /// the data ends exactly at `vendorInfoSize`, the vendor info is read from there, as
    /// tpm2-tools does.
    pub(crate) fn decode(data: &mut Reader<'a>, after: &Reader<'a>) -> Result<Self, DecodeError> {
        let sig = data.take::<16>()?;
        if &sig != SPEC_ID_03 {
            return Err(data.error(DecodeErrorKind::Invalid("not a Spec ID Event03")));
        }
        let platform_class = data.u32_le()?;
        let spec_version_minor = data.u8()?;
        let spec_version_major = data.u8()?;
        let spec_errata = data.u8()?;
        let uintn_size = data.u8()?;
        let n_at = data.offset();
        let n = data.u32_le()?;
        if n == 0 {
            return Err(Reader::error_at(
                DecodeErrorKind::Invalid("Spec ID event lists no algorithms"),
                n_at,
            ));
        }
        if usize::try_from(n).map_or(true, |n| n > MAX_ALGORITHMS) {
            return Err(Reader::error_at(
                DecodeErrorKind::TooLong {
                    length: n.into(),
                    limit: MAX_ALGORITHMS as u64,
                },
                n_at,
            ));
        }
        let mut algorithms = AlgorithmTable::EMPTY;
        for _ in 0..n {
            let at = data.offset();
            let id = data.u16_le()?;
            let size = data.u16_le()?;
            let size_ok = match HashAlg::from_tpm_alg_id(id) {
                Some(alg) => usize::from(size) == alg.digest_len(),
                None => size > 0 && size <= MAX_UNKNOWN_DIGEST,
            };
            if !size_ok {
                return Err(Reader::error_at(
                    DecodeErrorKind::BadValue {
                        what: "Spec ID digest size",
                        value: size.into(),
                    },
                    at,
                ));
            }
            if algorithms.position(id).is_some() || !algorithms.push(AlgorithmSize { id, size }) {
                return Err(Reader::error_at(
                    DecodeErrorKind::BadValue {
                        what: "duplicate Spec ID algorithm",
                        value: id.into(),
                    },
                    at,
                ));
            }
        }
        let vendor_size = usize::from(data.u8()?);
        let (vendor_info, vendor_overrun) = if data.is_empty() && vendor_size > 0 {
            let mut ahead = after.clone();
            (ahead.bytes(vendor_size)?, vendor_size)
        } else {
            let v = data.bytes(vendor_size)?;
            data.clone().finish()?;
            (v, 0)
        };
        Ok(Self {
            platform_class,
            spec_version_major,
            spec_version_minor,
            spec_errata,
            uintn_size,
            algorithms,
            vendor_info,
            vendor_overrun,
        })
    }
}

/// One digest carried by an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDigest<'a> {
    alg_id: u16,
    bytes: &'a [u8],
}

impl<'a> EventDigest<'a> {
    /// The TPM_ALG_ID.
    #[must_use]
    pub const fn alg_id(&self) -> u16 {
        self.alg_id
    }
    /// The algorithm, if known.
    #[must_use]
    pub const fn alg(&self) -> Option<HashAlg> {
        HashAlg::from_tpm_alg_id(self.alg_id)
    }
    /// The digest bytes (of the size the Spec ID event declares).
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// As a [`Digest`], if the algorithm is known.
    #[must_use]
    pub fn digest(&self) -> Option<Digest> {
        self.alg().and_then(|alg| Digest::new(alg, self.bytes).ok())
    }
}

/// The digests of one event: a SHA-1 digest (legacy) or a validated `TPML_DIGEST_VALUES`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digests<'a> {
    /// Concatenated (u16 alg id LE, digest) entries, or 20 bytes of SHA-1 when `algs` is None.
    raw: &'a [u8],
    algs: Option<AlgorithmTable>,
}

impl fmt::Debug for Digests<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Digests<'a> {
    /// Every digest, in log order.
    pub fn iter(&self) -> DigestIter<'a> {
        DigestIter {
            r: Reader::new(self.raw),
            algs: self.algs,
            legacy_done: false,
        }
    }

    /// The digest of `alg`, if the event carries one.
    #[must_use]
    pub fn get(&self, alg: HashAlg) -> Option<Digest> {
        self.iter()
            .find(|d| d.alg_id == alg.tpm_alg_id())
            .and_then(|d| d.digest())
    }

    /// Number of digests.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when the event carries no digest (never, for a parsed event).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The digest to show a person: SHA-256 if present, else the first one.
    #[must_use]
    pub fn preferred(&self) -> Option<EventDigest<'a>> {
        self.iter()
            .find(|d| d.alg() == Some(HashAlg::Sha256))
            .or_else(|| self.iter().next())
    }
}

/// Iterator over an event's digests.
#[derive(Debug, Clone)]
pub struct DigestIter<'a> {
    r: Reader<'a>,
    algs: Option<AlgorithmTable>,
    legacy_done: bool,
}

impl<'a> Iterator for DigestIter<'a> {
    type Item = EventDigest<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        match &self.algs {
            None => {
                if self.legacy_done {
                    return None;
                }
                self.legacy_done = true;
                Some(EventDigest {
                    alg_id: HashAlg::Sha1.tpm_alg_id(),
                    bytes: self.r.rest_bytes(),
                })
            }
            Some(algs) => {
                // Validated at parse time: every id is in the table and every digest present.
                let alg_id = self.r.u16_le().ok()?;
                let size = algs.as_slice().iter().find(|a| a.id == alg_id)?.size;
                let bytes = self.r.bytes(usize::from(size)).ok()?;
                Some(EventDigest { alg_id, bytes })
            }
        }
    }
}

/// One event, borrowed from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    index: usize,
    offset: usize,
    pcr: u32,
    event_type: EventType,
    digests: Digests<'a>,
    data: &'a [u8],
    data_offset: usize,
}

impl<'a> Event<'a> {
    /// Position in the log, counting from 0 (the Spec ID event of a crypto-agile log is 0).
    #[must_use]
    pub const fn index(&self) -> usize {
        self.index
    }
    /// Byte offset of the event's first byte in the log.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }
    /// PCR index: below 32, or [`TRAILER_PCR`] for a Windows `EV_NO_ACTION` trailer.
    #[must_use]
    pub const fn pcr(&self) -> u32 {
        self.pcr
    }
    /// The event type.
    #[must_use]
    pub const fn event_type(&self) -> EventType {
        self.event_type
    }
    /// The digests.
    #[must_use]
    pub const fn digests(&self) -> &Digests<'a> {
        &self.digests
    }
    /// The event data (`event` field), exactly as logged.
    #[must_use]
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }
    /// Byte offset of the event data in the log.
    #[must_use]
    pub const fn data_offset(&self) -> usize {
        self.data_offset
    }
    /// True when replay extends this event (every type but `EV_NO_ACTION`).
    #[must_use]
    pub fn is_extended(&self) -> bool {
        self.event_type != EventType::EV_NO_ACTION
    }
    /// A reader over the data that reports absolute offsets.
    #[must_use]
    pub fn data_reader(&self) -> Reader<'a> {
        Reader::with_base(self.data, self.data_offset)
    }
}

/// A TCG event log whose first event has been read and whose format is known.
#[derive(Debug, Clone, Copy)]
pub struct EventLog<'a> {
    bytes: &'a [u8],
    format: LogFormat,
    spec_id: Option<SpecIdEvent<'a>>,
}

impl<'a> EventLog<'a> {
    /// Read the first event and decide the format. Later events are read lazily by
    /// [`EventLog::events`]; use [`crate::Replay`] to check the whole log.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, TcgLogError> {
        if bytes.is_empty() {
            return Err(DecodeError::new(
                DecodeErrorKind::Invalid("empty input is not an event log"),
                0,
            )
            .into());
        }
        let mut r = Reader::new(bytes);
        let first = read_legacy(&mut r, 0)?;
        let spec_id =
            if first.event_type == EventType::EV_NO_ACTION && first.data.starts_with(SPEC_ID_03) {
                Some(SpecIdEvent::decode(&mut first.data_reader(), &r)?)
            } else {
                None
            };
        let format = if spec_id.is_some() {
            LogFormat::CryptoAgile
        } else {
            LogFormat::LegacySha1
        };
        Ok(Self {
            bytes,
            format,
            spec_id,
        })
    }

    /// The framing.
    #[must_use]
    pub const fn format(&self) -> LogFormat {
        self.format
    }

    /// The Spec ID event of a crypto-agile log.
    #[must_use]
    pub const fn spec_id(&self) -> Option<&SpecIdEvent<'a>> {
        self.spec_id.as_ref()
    }

    /// The raw bytes.
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every event, lazily, starting with the first (the Spec ID event, if any).
    #[must_use]
    pub fn events(&self) -> Events<'a> {
        Events {
            r: Reader::new(self.bytes),
            algs: self.spec_id.map(|s| s.algorithms),
            vendor_overrun: self.spec_id.map_or(0, |s| s.vendor_overrun),
            index: 0,
            done: false,
            fill_end: [None; 2],
        }
    }
}

/// The lazy event iterator. Fused: after an error or the end it yields `None`.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    r: Reader<'a>,
    algs: Option<AlgorithmTable>,
    vendor_overrun: usize,
    index: usize,
    done: bool,
    /// For fill bytes 0x00 and 0xFF: the offset in the input of the first byte, at or after
    /// where the last scan started, that is not that fill byte (`usize::MAX`: none).
    fill_end: [Option<usize>; 2],
}

impl<'a> Events<'a> {
    /// True when everything left is 0x00 or 0xFF fill (a log read from a fixed-size buffer).
    fn rest_is_fill(&mut self) -> bool {
        let rest = self.r.rest();
        let Some(&first) = rest.first() else {
            return true;
        };
        let slot = match first {
            0x00 => 0,
            0xFF => 1,
            _ => return false,
        };
        let here = self.r.offset();
        if let Some(Some(end)) = self.fill_end.get(slot).copied()
            && end >= here
        {
            return end == usize::MAX;
        }
        let end = rest
            .iter()
            .position(|b| *b != first)
            .map_or(usize::MAX, |p| p.saturating_add(here));
        if let Some(s) = self.fill_end.get_mut(slot) {
            *s = Some(end);
        }
        end == usize::MAX
    }

    fn read_next(&mut self) -> Result<Event<'a>, DecodeError> {
        let index = self.index;
        match (self.algs, index) {
            (None, _) => read_legacy(&mut self.r, index),
            (Some(_), 0) => {
                let ev = read_legacy(&mut self.r, index)?;
                self.r.skip(self.vendor_overrun)?;
                Ok(ev)
            }
            (Some(algs), _) => read_agile(&mut self.r, index, &algs),
        }
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<Event<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || (self.index > 0 && self.rest_is_fill()) {
            self.done = true;
            return None;
        }
        let item = self.read_next();
        match &item {
            Ok(_) => self.index = self.index.saturating_add(1),
            Err(_) => self.done = true,
        }
        Some(item)
    }
}

impl core::iter::FusedIterator for Events<'_> {}

fn check_pcr(pcr: u32, event_type: EventType, at: usize) -> Result<(), DecodeError> {
    let ok = pcr < vouch_tpm2::pcr::MAX_PCRS
        || (pcr == TRAILER_PCR && event_type == EventType::EV_NO_ACTION);
    if ok {
        Ok(())
    } else {
        Err(Reader::error_at(
            DecodeErrorKind::BadValue {
                what: "PCR index",
                value: pcr.into(),
            },
            at,
        ))
    }
}

fn read_data<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], usize), DecodeError> {
    let data = r.sized_u32_le(MAX_EVENT_DATA)?;
    let at = data.offset();
    Ok((data.rest(), at))
}

/// A `TCG_PCClientPCREvent`: pcr, type, SHA-1 digest, size, data.
fn read_legacy<'a>(r: &mut Reader<'a>, index: usize) -> Result<Event<'a>, DecodeError> {
    let offset = r.offset();
    if r.remaining() < LEGACY_HEADER_LEN {
        return Err(r.error(DecodeErrorKind::Truncated {
            needed: LEGACY_HEADER_LEN,
            available: r.remaining(),
        }));
    }
    let pcr = r.u32_le()?;
    let event_type = EventType(r.u32_le()?);
    check_pcr(pcr, event_type, offset)?;
    let raw = r.bytes(HashAlg::Sha1.digest_len())?;
    let (data, data_offset) = read_data(r)?;
    Ok(Event {
        index,
        offset,
        pcr,
        event_type,
        digests: Digests { raw, algs: None },
        data,
        data_offset,
    })
}

/// A `TCG_PCR_EVENT2`: pcr, type, `TPML_DIGEST_VALUES`, size, data.
fn read_agile<'a>(
    r: &mut Reader<'a>,
    index: usize,
    algs: &AlgorithmTable,
) -> Result<Event<'a>, DecodeError> {
    let offset = r.offset();
    let pcr = r.u32_le()?;
    let event_type = EventType(r.u32_le()?);
    check_pcr(pcr, event_type, offset)?;
    let count_at = r.offset();
    let count = r.u32_le()?;
    if count == 0 {
        return Err(Reader::error_at(
            DecodeErrorKind::Invalid("event carries no digest"),
            count_at,
        ));
    }
    if usize::try_from(count).map_or(true, |c| c > algs.len) {
        return Err(Reader::error_at(
            DecodeErrorKind::TooLong {
                length: count.into(),
                limit: algs.len as u64,
            },
            count_at,
        ));
    }
    let start = r.rest();
    let mut seen = 0u32;
    for _ in 0..count {
        let at = r.offset();
        let id = r.u16_le()?;
        let Some(pos) = algs.position(id) else {
            return Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "digest algorithm not in the Spec ID event",
                    value: id.into(),
                },
                at,
            ));
        };
        let bit = 1u32
            .checked_shl(u32::try_from(pos).unwrap_or(u32::MAX))
            .unwrap_or(0);
        if seen & bit != 0 {
            return Err(Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "digest algorithm repeated in one event",
                    value: id.into(),
                },
                at,
            ));
        }
        seen |= bit;
        let size = algs.as_slice().get(pos).map_or(0, |a| a.size);
        r.skip(usize::from(size))?;
    }
    let used = start.len().saturating_sub(r.remaining());
    let raw = start.get(..used).unwrap_or_default();
    let (data, data_offset) = read_data(r)?;
    Ok(Event {
        index,
        offset,
        pcr,
        event_type,
        digests: Digests {
            raw,
            algs: Some(*algs),
        },
        data,
        data_offset,
    })
}
