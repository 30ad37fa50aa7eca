//! The ASCII list (`ascii_runtime_measurements[_<alg>]`), converted to the binary form.
//!
//! A line is `PCR TEMPLATE-HASH TEMPLATE-NAME FIELD...`, fields separated by one space, as
//! `ima_ascii_measurements_show()` prints them: digests as `algo:hex`, names as text,
//! signatures and buffers as hex, `iuid`/`igid`/`imode` as decimal. The conversion rebuilds
//! the template data the kernel hashed, so template hashes can be checked and PCR 10
//! replayed by the binary code path. The ASCII form is lossy where a path contains a space
//! in a template with more than one text field, or a newline: prefer the binary list.

use vouch_tpm2::HashAlg;

use crate::ImaError;
use crate::template::{FieldId, TemplateDescriptor};

/// True when `bytes` look like an ASCII list (a decimal PCR, then a space; no NUL byte).
#[must_use]
pub fn looks_like_ascii(bytes: &[u8]) -> bool {
    let first_digit = bytes.first().is_some_and(u8::is_ascii_digit);
    let head = bytes.get(..bytes.len().min(512)).unwrap_or_default();
    first_digit
        && !head.contains(&0)
        && head
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
            .checked_add(0)
            .and_then(|n| head.get(n))
            == Some(&b' ')
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => c.checked_sub(b'0'),
        b'a'..=b'f' => c.checked_sub(b'a').and_then(|v| v.checked_add(10)),
        b'A'..=b'F' => c.checked_sub(b'A').and_then(|v| v.checked_add(10)),
        _ => None,
    }
}

fn push_hex(out: &mut Vec<u8>, hex: &[u8]) -> Option<()> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    for pair in hex.chunks_exact(2) {
        let hi = hex_val(*pair.first()?)?;
        let lo = hex_val(*pair.get(1)?)?;
        out.push(hi.wrapping_shl(4) | lo);
    }
    Some(())
}

fn push_u32(out: &mut Vec<u8>, v: usize) -> Option<()> {
    out.extend_from_slice(&u32::try_from(v).ok()?.to_le_bytes());
    Some(())
}

/// Encode one field's text as the kernel stores it.
fn encode_field(out: &mut Vec<u8>, id: FieldId, text: &[u8], legacy: bool) -> Option<()> {
    match id {
        FieldId::D if legacy => push_hex(out, text),
        FieldId::D | FieldId::DNg | FieldId::DNgV2 | FieldId::DModsig => {
            if text.is_empty() {
                return Some(());
            }
            let colon = text.iter().rposition(|c| *c == b':')?;
            out.extend_from_slice(text.get(..=colon)?);
            out.push(0);
            push_hex(out, text.get(colon.checked_add(1)?..)?)
        }
        FieldId::N if legacy => {
            out.extend_from_slice(text);
            Some(())
        }
        FieldId::N | FieldId::NNg => {
            out.extend_from_slice(text);
            out.push(0);
            Some(())
        }
        FieldId::Iuid | FieldId::Igid => {
            let v: u32 = core::str::from_utf8(text).ok()?.parse().ok()?;
            out.extend_from_slice(&v.to_le_bytes());
            Some(())
        }
        FieldId::Imode => {
            let v: u16 = core::str::from_utf8(text).ok()?.parse().ok()?;
            out.extend_from_slice(&v.to_le_bytes());
            Some(())
        }
        FieldId::XattrNames => {
            out.extend_from_slice(text);
            Some(())
        }
        FieldId::Sig
        | FieldId::Buf
        | FieldId::Modsig
        | FieldId::Evmsig
        | FieldId::XattrLengths
        | FieldId::XattrValues => push_hex(out, text),
        FieldId::Unknown => {
            let mark = out.len();
            if push_hex(out, text).is_none() {
                out.truncate(mark);
                out.extend_from_slice(text);
            }
            Some(())
        }
    }
}

/// Convert an ASCII list to the binary form; returns it with its template hash algorithm
/// (from the hex length of the first template hash).
pub fn to_binary(text: &[u8]) -> Result<(Vec<u8>, HashAlg), ImaError> {
    let mut out = Vec::with_capacity(text.len());
    let mut alg: Option<HashAlg> = None;
    let mut offset = 0usize;
    for (i, raw) in text.split(|c| *c == b'\n').enumerate() {
        let line_no = i.saturating_add(1);
        let at = offset;
        offset = offset.saturating_add(raw.len()).saturating_add(1);
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let err = |reason| ImaError::Ascii {
            line: line_no,
            offset: at,
            reason,
        };
        let mut parts = line.splitn(4, |c| *c == b' ');
        let pcr: u32 = parts
            .next()
            .and_then(|p| core::str::from_utf8(p).ok())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| err("PCR is not a decimal number"))?;
        let hash_hex = parts.next().ok_or_else(|| err("no template hash"))?;
        let this_alg = crate::list::TEMPLATE_HASH_ALGS
            .into_iter()
            .find(|a| a.digest_len().saturating_mul(2) == hash_hex.len())
            .ok_or_else(|| err("template hash has no known length"))?;
        if *alg.get_or_insert(this_alg) != this_alg {
            return Err(err("template hash length differs from the first line's"));
        }
        let name = parts.next().ok_or_else(|| err("no template name"))?;
        let rest = parts.next().unwrap_or_default();
        let desc = TemplateDescriptor::from_name(name)
            .ok_or_else(|| err("template name is not a template descriptor"))?;
        out.extend_from_slice(&pcr.to_le_bytes());
        push_hex(&mut out, hash_hex).ok_or_else(|| err("template hash is not hex"))?;
        push_u32(&mut out, name.len()).ok_or_else(|| err("template name too long"))?;
        out.extend_from_slice(name);

        // Split the fields; a name field absorbs extra spaces (a path with spaces).
        let ids: Vec<(FieldId, &[u8])> = desc.field_ids().collect();
        let mut tokens: Vec<(usize, usize)> = Vec::with_capacity(ids.len());
        let mut start = 0usize;
        for (i, c) in rest.iter().enumerate() {
            if *c == b' ' {
                tokens.push((start, i));
                start = i.saturating_add(1);
            }
        }
        tokens.push((start, rest.len()));
        let name_pos = ids
            .iter()
            .position(|(id, _)| matches!(id, FieldId::N | FieldId::NNg));
        while tokens.len() > ids.len() {
            let p = name_pos.ok_or_else(|| err("more fields than the template has"))?;
            let next = p.saturating_add(1);
            let end = tokens
                .get(next)
                .map(|t| t.1)
                .ok_or_else(|| err("more fields than the template has"))?;
            if let Some(t) = tokens.get_mut(p) {
                t.1 = end;
            }
            tokens.remove(next);
        }
        let mut tokens: Vec<&[u8]> = tokens
            .into_iter()
            .map(|(a, b)| rest.get(a..b).unwrap_or_default())
            .collect();
        while tokens.len() < ids.len() {
            tokens.push(b"");
        }
        if desc.is_legacy_ima() {
            let d = tokens.first().copied().unwrap_or_default();
            let n = tokens.get(1).copied().unwrap_or_default();
            push_hex(&mut out, d).ok_or_else(|| err("ima file digest is not hex"))?;
            push_u32(&mut out, n.len()).ok_or_else(|| err("name too long"))?;
            out.extend_from_slice(n);
            continue;
        }
        let mut data = Vec::new();
        for ((id, _), tok) in ids.iter().zip(&tokens) {
            let mut field = Vec::new();
            encode_field(&mut field, *id, tok, false)
                .ok_or_else(|| err("a field does not have the form its id requires"))?;
            push_u32(&mut data, field.len()).ok_or_else(|| err("field too long"))?;
            data.extend_from_slice(&field);
        }
        push_u32(&mut out, data.len()).ok_or_else(|| err("template data too long"))?;
        out.extend_from_slice(&data);
    }
    let alg = alg.ok_or(ImaError::Ascii {
        line: 1,
        offset: 0,
        reason: "no measurement lines",
    })?;
    Ok((out, alg))
}
