//! PCR selections (`TPML_PCR_SELECTION`), digest lists (`TPML_DIGEST`) and PCR value sets.

use std::collections::BTreeMap;

use serde::Serialize;
use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::alg::{Digest, HashAlg};

/// Highest PCR index + 1 that a selection may name (`sizeofSelect` of at most 4 bytes).
pub const MAX_PCRS: u32 = 32;

/// PCR values per bank: bank -> PCR index -> value. Ordered, so iteration is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PcrValues {
    banks: BTreeMap<HashAlg, BTreeMap<u32, Digest>>,
}

impl PcrValues {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Set one PCR. The value's algorithm names the bank.
    pub fn insert(&mut self, index: u32, value: Digest) {
        self.banks
            .entry(value.alg())
            .or_default()
            .insert(index, value);
    }

    /// One PCR's value.
    #[must_use]
    pub fn get(&self, bank: HashAlg, index: u32) -> Option<&Digest> {
        self.banks.get(&bank).and_then(|b| b.get(&index))
    }

    /// Mutable access to one PCR's value.
    pub fn get_mut(&mut self, bank: HashAlg, index: u32) -> Option<&mut Digest> {
        self.banks.get_mut(&bank).and_then(|b| b.get_mut(&index))
    }

    /// The banks present.
    pub fn banks(&self) -> impl Iterator<Item = HashAlg> + '_ {
        self.banks.keys().copied()
    }

    /// One bank's PCRs, in index order.
    pub fn bank(&self, bank: HashAlg) -> impl Iterator<Item = (u32, &Digest)> + '_ {
        self.banks
            .get(&bank)
            .into_iter()
            .flat_map(|b| b.iter().map(|(i, d)| (*i, d)))
    }

    /// Every (bank, index, value), banks in algorithm order, PCRs in index order.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u32, &Digest)> + '_ {
        self.banks
            .iter()
            .flat_map(|(alg, b)| b.iter().map(move |(i, d)| (*alg, *i, d)))
    }

    /// Number of PCR values across all banks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.banks.values().map(BTreeMap::len).sum()
    }

    /// True when no value is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One bank's selection (`TPMS_PCR_SELECTION`): a hash and a bitmap of PCR indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcrBankSelection {
    alg: HashAlg,
    mask: u32,
}

impl PcrBankSelection {
    /// A selection of `indices` (each below [`MAX_PCRS`]) in bank `alg`.
    pub fn new(alg: HashAlg, indices: &[u32]) -> Result<Self, PcrSelectionError> {
        let mut mask = 0u32;
        for &i in indices {
            if i >= MAX_PCRS {
                return Err(PcrSelectionError::IndexOutOfRange(i));
            }
            mask |= 1u32.wrapping_shl(i);
        }
        Ok(Self { alg, mask })
    }

    /// A selection from a `pcrSelect` bitmap (bit i of byte j selects PCR 8*j + i); bytes past
    /// the fourth are ignored (a selection holds at most [`MAX_PCRS`] PCRs).
    #[must_use]
    pub fn from_bitmap(alg: HashAlg, bitmap: &[u8]) -> Self {
        let mut mask = 0u32;
        for (byte_index, byte) in bitmap.iter().take(4).enumerate() {
            let shift = u32::try_from(byte_index).unwrap_or(0).wrapping_mul(8);
            mask |= u32::from(*byte).wrapping_shl(shift);
        }
        Self { alg, mask }
    }

    /// The bank.
    #[must_use]
    pub const fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Selected PCR indices, ascending (the order the TPM hashes them in).
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        (0..MAX_PCRS).filter(move |i| self.mask & 1u32.wrapping_shl(*i) != 0)
    }

    /// True when `index` is selected.
    #[must_use]
    pub const fn contains(&self, index: u32) -> bool {
        index < MAX_PCRS && self.mask & 1u32.wrapping_shl(index) != 0
    }

    /// Number of PCRs selected.
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.mask.count_ones()
    }
}

/// A `TPML_PCR_SELECTION`: the banks and PCRs a quote covers, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrSelection {
    banks: Vec<PcrBankSelection>,
}

/// An invalid PCR selection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcrSelectionError {
    /// A PCR index beyond what a selection can express.
    #[error("PCR index {0} is out of range (at most {max})", max = MAX_PCRS - 1)]
    IndexOutOfRange(u32),
    /// The same bank was selected twice.
    #[error("bank {0} is selected more than once")]
    DuplicateBank(HashAlg),
    /// A selection string such as `sha256:0,1,7` could not be read.
    #[error("cannot read PCR selection {0:?}: expected BANK:I,J,... joined by '+'")]
    Syntax(String),
}

/// The TPM's limit on banks in one selection (TPM_NUM_PCR_BANKS is at most 16 in practice).
const MAX_BANKS: u32 = 16;

impl PcrSelection {
    /// A selection from per-bank selections; a bank may appear once.
    pub fn new(banks: Vec<PcrBankSelection>) -> Result<Self, PcrSelectionError> {
        for (i, b) in banks.iter().enumerate() {
            if banks
                .iter()
                .skip(i.saturating_add(1))
                .any(|o| o.alg == b.alg)
            {
                return Err(PcrSelectionError::DuplicateBank(b.alg));
            }
        }
        Ok(Self { banks })
    }

    /// Parse tpm2-tools syntax: `sha256:0,1,2+sha1:7`.
    pub fn parse_spec(spec: &str) -> Result<Self, PcrSelectionError> {
        let syntax = || PcrSelectionError::Syntax(spec.to_owned());
        let mut banks = Vec::new();
        for part in spec.split('+') {
            let (alg, list) = part.split_once(':').ok_or_else(syntax)?;
            let alg = HashAlg::from_name(alg.trim()).ok_or_else(syntax)?;
            let mut idx = Vec::new();
            for n in list.split(',').filter(|s| !s.trim().is_empty()) {
                idx.push(n.trim().parse::<u32>().map_err(|_| syntax())?);
            }
            banks.push(PcrBankSelection::new(alg, &idx)?);
        }
        Self::new(banks)
    }

    /// Decode a `TPML_PCR_SELECTION` from `r`.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let count = r.u32_be()?;
        if count > MAX_BANKS {
            return Err(Reader::error_at(
                DecodeErrorKind::TooLong {
                    length: count.into(),
                    limit: MAX_BANKS.into(),
                },
                at,
            ));
        }
        let mut banks = Vec::new();
        for _ in 0..count {
            let alg_at = r.offset();
            let id = r.u16_be()?;
            let alg = HashAlg::from_tpm_alg_id(id).ok_or_else(|| {
                Reader::error_at(
                    DecodeErrorKind::BadValue {
                        what: "PCR bank hash algorithm",
                        value: id.into(),
                    },
                    alg_at,
                )
            })?;
            let size_at = r.offset();
            let size = r.u8()?;
            if size > 4 {
                return Err(Reader::error_at(
                    DecodeErrorKind::TooLong {
                        length: size.into(),
                        limit: 4,
                    },
                    size_at,
                ));
            }
            let bitmap = r.bytes(usize::from(size))?;
            if banks.iter().any(|b: &PcrBankSelection| b.alg == alg) {
                return Err(Reader::error_at(
                    DecodeErrorKind::Invalid("the same PCR bank is selected twice"),
                    alg_at,
                ));
            }
            banks.push(PcrBankSelection::from_bitmap(alg, bitmap));
        }
        Ok(Self { banks })
    }

    /// Encode as a `TPML_PCR_SELECTION` (3-byte bitmaps, as TPMs with 24 PCRs expect).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(self.banks.len()).unwrap_or(0).to_be_bytes());
        for b in &self.banks {
            out.extend_from_slice(&b.alg.tpm_alg_id().to_be_bytes());
            let size: u8 = if b.mask > 0x00FF_FFFF { 4 } else { 3 };
            out.push(size);
            out.extend_from_slice(
                b.mask
                    .to_le_bytes()
                    .get(..usize::from(size))
                    .unwrap_or_default(),
            );
        }
        out
    }

    /// The per-bank selections, in wire order.
    #[must_use]
    pub fn banks(&self) -> &[PcrBankSelection] {
        &self.banks
    }

    /// Total number of PCRs selected across banks.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.banks.iter().map(PcrBankSelection::count).sum()
    }

    /// (bank, index) pairs in the order the TPM hashes them for `pcrDigest`.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u32)> + '_ {
        self.banks
            .iter()
            .flat_map(|b| b.indices().map(move |i| (b.alg, i)))
    }
}

/// Decode a `TPML_DIGEST` (count, then `TPM2B_DIGEST`s), at most `max` entries.
pub fn decode_digest_list<'a>(r: &mut Reader<'a>, max: u32) -> Result<Vec<&'a [u8]>, DecodeError> {
    let at = r.offset();
    let count = r.u32_be()?;
    if count > max {
        return Err(Reader::error_at(
            DecodeErrorKind::TooLong {
                length: count.into(),
                limit: max.into(),
            },
            at,
        ));
    }
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(r.tpm2b(crate::alg::MAX_DIGEST_U16)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bank() -> impl Strategy<Value = HashAlg> {
        prop::sample::select(HashAlg::ALL.to_vec())
    }

    proptest! {
        /// encode then decode gives back the same selection, consuming every byte.
        #[test]
        fn selection_round_trips(entries in prop::collection::btree_map(bank(), 0u32..u32::MAX, 0..5)) {
            let banks: Vec<PcrBankSelection> = entries
                .into_iter()
                .map(|(alg, mask)| PcrBankSelection { alg, mask })
                .collect();
            let sel = PcrSelection::new(banks).unwrap();
            let bytes = sel.encode();
            let mut r = Reader::new(&bytes);
            let back = PcrSelection::decode(&mut r).unwrap();
            prop_assert!(r.finish().is_ok());
            prop_assert_eq!(back, sel);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = PcrSelection::decode(&mut Reader::new(&bytes));
        }
    }

    #[test]
    fn parses_tpm2_tools_spec_and_rejects_bad_ones() {
        let sel = PcrSelection::parse_spec("sha256:0,1,7+sha1:23").unwrap();
        assert_eq!(
            sel.iter().collect::<Vec<_>>(),
            vec![
                (HashAlg::Sha256, 0),
                (HashAlg::Sha256, 1),
                (HashAlg::Sha256, 7),
                (HashAlg::Sha1, 23)
            ]
        );
        assert!(PcrSelection::parse_spec("sha256:32").is_err());
        assert!(PcrSelection::parse_spec("md5:1").is_err());
        assert!(PcrSelection::parse_spec("sha1:1+sha1:2").is_err());
    }
}
