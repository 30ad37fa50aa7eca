//! Files written by tpm2-tools 5.x, so operators can verify what `tpm2_quote` produced.
//!
//! `tpm2_quote -o FILE` writes PCR values in one of two formats (`-F`):
//! * `serialized` (the default): the host-endian in-memory C structures of tpm2-tss:
//!   `TPML_PCR_SELECTION` (u32 count + 16 padded 8-byte `TPMS_PCR_SELECTION`s = 132 bytes),
//!   a u32 count of `TPML_DIGEST`s, then that many `TPML_DIGEST`s (u32 count + 8 padded
//!   66-byte `TPM2B_DIGEST`s = 532 bytes each), values in selection order. Little-endian is
//!   assumed: tpm2-tools writes host order and every platform Vouch supports is little-endian.
//! * `values`: the digests concatenated in selection order, nothing else.

use vouch_wire::{DecodeError, DecodeErrorKind, Reader};

use crate::alg::{Digest, HashAlg};
use crate::pcr::{PcrBankSelection, PcrSelection, PcrValues};

const SELECTION_STRUCT: usize = 132;
const DIGEST_LIST_STRUCT: usize = 532;
const MAX_DIGEST_LISTS: u32 = 64;

/// Read a `tpm2_quote -o` file. `quote_selection` (from the quote itself) is needed for the
/// `values` format and, for `serialized`, is ignored in favour of the file's own selection.
pub fn parse_pcrs_file(
    bytes: &[u8],
    quote_selection: Option<&PcrSelection>,
) -> Result<PcrValues, DecodeError> {
    let looks_serialized = bytes.len() >= SELECTION_STRUCT.saturating_add(4)
        && bytes
            .len()
            .checked_sub(SELECTION_STRUCT.saturating_add(4))
            .is_some_and(|rest| rest % DIGEST_LIST_STRUCT == 0);
    if looks_serialized {
        return parse_serialized(bytes);
    }
    match quote_selection {
        Some(sel) => parse_values(bytes, sel),
        None => Err(DecodeError::new(
            DecodeErrorKind::Invalid(
                "not a serialized PCR file, and no selection to read raw values",
            ),
            0,
        )),
    }
}

fn parse_serialized(bytes: &[u8]) -> Result<PcrValues, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut sel_r = r.sub(SELECTION_STRUCT)?;
    let at = sel_r.offset();
    let count = sel_r.u32_le()?;
    if count > 16 {
        return Err(Reader::error_at(
            DecodeErrorKind::TooLong {
                length: count.into(),
                limit: 16,
            },
            at,
        ));
    }
    let mut banks = Vec::new();
    for _ in 0..count {
        let alg_at = sel_r.offset();
        let id = sel_r.u16_le()?;
        let alg = HashAlg::from_tpm_alg_id(id).ok_or_else(|| {
            Reader::error_at(
                DecodeErrorKind::BadValue {
                    what: "PCR bank",
                    value: id.into(),
                },
                alg_at,
            )
        })?;
        let size_at = sel_r.offset();
        let size = sel_r.u8()?;
        let bitmap: [u8; 4] = sel_r.take()?;
        sel_r.skip(1)?; // structure padding
        if size > 4 {
            return Err(Reader::error_at(
                DecodeErrorKind::TooLong {
                    length: size.into(),
                    limit: 4,
                },
                size_at,
            ));
        }
        let used = bitmap.get(..usize::from(size)).unwrap_or_default();
        banks.push(PcrBankSelection::from_bitmap(alg, used));
    }
    let selection = PcrSelection::new(banks)
        .map_err(|_| Reader::error_at(DecodeErrorKind::Invalid("bank selected twice"), at))?;
    let lists_at = r.offset();
    let lists = r.u32_le()?;
    if lists > MAX_DIGEST_LISTS {
        return Err(Reader::error_at(
            DecodeErrorKind::TooLong {
                length: lists.into(),
                limit: MAX_DIGEST_LISTS.into(),
            },
            lists_at,
        ));
    }
    let mut digests: Vec<(usize, &[u8])> = Vec::new();
    for _ in 0..lists {
        let mut list = r.sub(DIGEST_LIST_STRUCT)?;
        let n_at = list.offset();
        let n = list.u32_le()?;
        if n > 8 {
            return Err(Reader::error_at(
                DecodeErrorKind::TooLong {
                    length: n.into(),
                    limit: 8,
                },
                n_at,
            ));
        }
        for _ in 0..n {
            let mut d = list.sub(66)?;
            let off = d.offset();
            let size = d.u16_le()?;
            let value = d.bytes(usize::from(size).min(64))?;
            digests.push((off, value));
        }
    }
    r.finish()?;
    let mut values = PcrValues::new();
    let mut it = digests.into_iter();
    for (bank, index) in selection.iter() {
        let (off, value) = it.next().ok_or_else(|| {
            Reader::error_at(
                DecodeErrorKind::Invalid("fewer PCR values than selected"),
                lists_at,
            )
        })?;
        let digest = Digest::new(bank, value).map_err(|_| {
            Reader::error_at(
                DecodeErrorKind::Invalid("PCR value length does not match its bank"),
                off,
            )
        })?;
        values.insert(index, digest);
    }
    Ok(values)
}

fn parse_values(bytes: &[u8], selection: &PcrSelection) -> Result<PcrValues, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut values = PcrValues::new();
    for (bank, index) in selection.iter() {
        let off = r.offset();
        let raw = r.bytes(bank.digest_len())?;
        let d = Digest::new(bank, raw)
            .map_err(|_| Reader::error_at(DecodeErrorKind::Invalid("PCR value length"), off))?;
        values.insert(index, d);
    }
    r.finish()?;
    Ok(values)
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "test fixture layout arithmetic"
)]
mod tests {
    use super::*;

    fn serialized(sel: &[(u16, [u8; 4])], digests: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(sel.len()).unwrap().to_le_bytes());
        for (alg, bm) in sel {
            out.extend_from_slice(&alg.to_le_bytes());
            out.push(3);
            out.extend_from_slice(bm);
            out.push(0);
        }
        out.resize(SELECTION_STRUCT, 0);
        let lists: Vec<&[&[u8]]> = digests.chunks(8).collect();
        out.extend_from_slice(&u32::try_from(lists.len()).unwrap().to_le_bytes());
        for l in lists {
            let start = out.len();
            out.extend_from_slice(&u32::try_from(l.len()).unwrap().to_le_bytes());
            for d in l {
                let s = out.len();
                out.extend_from_slice(&u16::try_from(d.len()).unwrap().to_le_bytes());
                out.extend_from_slice(d);
                out.resize(s + 66, 0);
            }
            out.resize(start + DIGEST_LIST_STRUCT, 0);
        }
        out
    }

    #[test]
    fn reads_serialized_file_across_digest_lists() {
        let vals: Vec<[u8; 32]> = (0..10u8).map(|i| [i; 32]).collect();
        let refs: Vec<&[u8]> = vals.iter().map(|v| &v[..]).collect();
        let file = serialized(&[(0x000B, [0xFF, 0x03, 0, 0])], &refs);
        let pcrs = parse_pcrs_file(&file, None).unwrap();
        assert_eq!(pcrs.len(), 10);
        assert_eq!(pcrs.get(HashAlg::Sha256, 9).unwrap().as_bytes(), &[9u8; 32]);
    }

    #[test]
    fn rejects_serialized_file_with_wrong_digest_length() {
        let file = serialized(&[(0x0004, [0x01, 0, 0, 0])], &[&[0u8; 32]]);
        assert!(parse_pcrs_file(&file, None).is_err());
    }

    #[test]
    fn reads_values_file_with_quote_selection() {
        let sel = PcrSelection::parse_spec("sha1:0,7").unwrap();
        let mut file = vec![1u8; 20];
        file.extend_from_slice(&[7u8; 20]);
        let pcrs = parse_pcrs_file(&file, Some(&sel)).unwrap();
        assert_eq!(pcrs.get(HashAlg::Sha1, 7).unwrap().as_bytes(), &[7u8; 20]);
        assert!(parse_pcrs_file(&file[..39], Some(&sel)).is_err());
    }
}
