//! UEFI PI firmware volumes in a firmware image, and the digests a measured boot records for
//! them.
//!
//! UEFI firmware measures its firmware volumes into PCR 0 as `EV_EFI_PLATFORM_FIRMWARE_BLOB`
//! events (TCG PC Client PFP §10.4.2): the digest of the volume's bytes in memory. Many
//! volumes are stored compressed in the flash image (EDK II's `FVMAIN_COMPACT` holds the PEI
//! and DXE volumes in one LZMA-compressed GUID-defined section), so the digest of the flash
//! file is not what the log shows. [`volumes`] walks an image the way the firmware unpacks
//! it — firmware volume headers, FFS files, sections, LZMA GUID-defined sections, firmware
//! volume image sections — and returns every volume it finds with its SHA-1, SHA-256 and
//! SHA-384 digests, so a verifier can tell which firmware build a log's blob events came from.
//!
//! Formats: UEFI Platform Initialization Specification 1.8, Volume 3 (§3.2.1
//! `EFI_FIRMWARE_VOLUME_HEADER`, §3.2.3 `EFI_FFS_FILE_HEADER`/`EFI_FFS_FILE_HEADER2`, §3.2.4
//! sections, `EFI_GUID_DEFINED_SECTION`, `EFI_SECTION_FIRMWARE_VOLUME_IMAGE`); the LZMA
//! section format of EDK II's `LzmaCustomDecompressLib` (GUID
//! `EE4E5898-3914-4259-9D6E-DC7BD79403CF`, LZMA "alone" stream: properties, unpacked size,
//! data).
//!
//! # Trust assumptions and limits
//!
//! * The image is untrusted input: every length is checked against its container, nothing
//!   panics, volumes nest at most [`MAX_DEPTH`] deep and compressed sections too, at most [`MAX_VOLUMES`] volumes are
//!   reported, and decompression stops at [`MAX_UNPACKED`] bytes per section and
//!   [`MAX_UNPACKED_TOTAL`] per image.
//! * A volume's digest predicts the firmware's measurement only when the firmware does not
//!   write into the volume before measuring it. EDK II's DXE volume is measured as unpacked
//!   (checked against Debian's OVMF 2022.11 under QEMU); its PEI volume is not, because the
//!   PEI modules running from it in RAM update their globals first. Match on the volumes that
//!   agree, and never read a missing match as proof of tampering on its own.
//! * Sections with other encapsulations (EFI standard compression, LZMA with the x86 filter,
//!   signed sections) are listed in [`Image::skipped`], not unpacked.

use serde::Serialize;
use vouch_tpm2::HashAlg;
use vouch_wire::Reader;

/// Deepest nesting followed (volume in a section in a file in a volume ...).
pub const MAX_DEPTH: usize = 8;
/// Most volumes reported.
pub const MAX_VOLUMES: usize = 256;
/// Largest unpacked size of one compressed section.
pub const MAX_UNPACKED: usize = 64 * 1024 * 1024;
/// Largest unpacked size of all compressed sections of one image.
pub const MAX_UNPACKED_TOTAL: usize = 256 * 1024 * 1024;

const FVH_SIGNATURE: &[u8; 4] = b"_FVH";
const FV_HEADER_MIN: usize = 56;
/// `EFI_FVB2_ERASE_POLARITY`: free space reads as 0xFF.
const ERASE_POLARITY: u32 = 0x0000_0800;
/// `FFS_ATTRIB_LARGE_FILE`.
const FFS_LARGE_FILE: u8 = 0x01;
const FFS_TYPE_RAW: u8 = 0x01;
const FFS_TYPE_PAD: u8 = 0xF0;
const SECTION_GUID_DEFINED: u8 = 0x02;
const SECTION_FIRMWARE_VOLUME_IMAGE: u8 = 0x17;
/// `LZMA_CUSTOM_DECOMPRESS_GUID` in its in-memory (little-endian fields) byte order.
const LZMA_GUID: [u8; 16] = [
    0x98, 0x58, 0x4E, 0xEE, 0x14, 0x39, 0x59, 0x42, 0x9D, 0x6E, 0xDC, 0x7B, 0xD7, 0x94, 0x03, 0xCF,
];

/// Why an image could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FvError {
    /// No firmware volume header anywhere in the image.
    #[error("no UEFI firmware volume (\"_FVH\" header) in the image")]
    NoVolume,
    /// More volumes than [`MAX_VOLUMES`].
    #[error("more than {MAX_VOLUMES} firmware volumes")]
    TooManyVolumes,
    /// Decompression would exceed [`MAX_UNPACKED_TOTAL`].
    #[error("compressed sections unpack to more than {MAX_UNPACKED_TOTAL} bytes")]
    TooLarge,
}

/// One firmware volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Where it is: `0x0` for a volume at that image offset, nested ones as
    /// `0x0/file[9e21fd93-...]/lzma/section@0x80/fv@0x0`.
    pub path: String,
    /// Volumes around it (0: in the image itself; EDK II's PEI and DXE volumes are 1).
    pub depth: usize,
    /// `FvLength`.
    pub length: u64,
    /// `FileSystemGuid`.
    pub file_system: String,
    /// The `FvName` of the extended header, when there is one.
    pub name: Option<String>,
    /// SHA-1 of the volume's bytes, lower-case hex.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
    /// SHA-384.
    pub sha384: String,
}

impl Volume {
    /// The digest in `bank` (`sha1`, `sha256`, `sha384`).
    #[must_use]
    pub fn digest(&self, bank: &str) -> Option<&str> {
        match bank {
            "sha1" => Some(&self.sha1),
            "sha256" => Some(&self.sha256),
            "sha384" => Some(&self.sha384),
            _ => None,
        }
    }
}

/// A section that was not unpacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Where.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Everything found in an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Every volume, outer ones before the ones nested in them.
    pub volumes: Vec<Volume>,
    /// Encapsulations not unpacked, and damaged structures stepped over.
    pub skipped: Vec<Skipped>,
}

/// A GUID as `EFI_GUID` lays it out in memory, written the usual way.
fn guid(b: &[u8]) -> String {
    let g: [u8; 16] = match b.get(..16).and_then(|s| s.try_into().ok()) {
        Some(g) => g,
        None => return String::new(),
    };
    let [a0, a1, a2, a3, b0, b1, c0, c1, d @ ..] = g;
    let [d0, d1, e0, e1, e2, e3, e4, e5] = d;
    format!(
        "{a3:02x}{a2:02x}{a1:02x}{a0:02x}-{b1:02x}{b0:02x}-{c1:02x}{c0:02x}-{d0:02x}{d1:02x}-{e0:02x}{e1:02x}{e2:02x}{e3:02x}{e4:02x}{e5:02x}"
    )
}

/// A reader at `at` in `b` (structures sit at fixed offsets of their container).
fn at(b: &[u8], at: usize) -> Option<Reader<'_>> {
    b.get(at..).map(|rest| Reader::with_base(rest, at))
}

fn le16(b: &[u8], pos: usize) -> Option<u16> {
    at(b, pos)?.u16_le().ok()
}

fn le32(b: &[u8], pos: usize) -> Option<u32> {
    at(b, pos)?.u32_le().ok()
}

fn le64(b: &[u8], pos: usize) -> Option<u64> {
    at(b, pos)?.u64_le().ok()
}

/// The 24-bit little-endian sizes of FFS file and section headers.
fn le24(b: &[u8], pos: usize) -> Option<usize> {
    let [x, y, z] = at(b, pos)?.take::<3>().ok()?;
    Some(usize::from(x) | (usize::from(y) << 8) | (usize::from(z) << 16))
}

fn align(n: usize, to: usize) -> Option<usize> {
    let mask = to.checked_sub(1)?;
    n.checked_add(mask).map(|v| v & !mask)
}

struct Walker {
    out: Image,
    unpacked: usize,
    /// Compressed sections being unpacked around the current position.
    nest: usize,
}

/// A writer that refuses to grow past a limit (bounds what a hostile LZMA stream can make).
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(std::io::Error::other("unpacked size limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Walker {
    fn skip(&mut self, path: &str, reason: impl Into<String>) {
        if self.out.skipped.len() < MAX_VOLUMES {
            self.out.skipped.push(Skipped {
                path: path.to_owned(),
                reason: reason.into(),
            });
        }
    }

    /// Scan `buf` for volumes at 8-byte aligned offsets (flash images pad between them).
    fn scan(&mut self, buf: &[u8], prefix: &str, depth: usize) -> Result<(), FvError> {
        let mut off = 0usize;
        while off.saturating_add(FV_HEADER_MIN) <= buf.len() {
            let len = self.volume_at(buf, off, prefix, depth)?;
            off = match len.and_then(|l| align(l, 8)) {
                Some(l) if l > 0 => off.saturating_add(l),
                _ => off.saturating_add(8),
            };
        }
        Ok(())
    }

    /// A volume at `off`, if there is a valid header there; returns its length.
    fn volume_at(
        &mut self,
        buf: &[u8],
        off: usize,
        prefix: &str,
        depth: usize,
    ) -> Result<Option<usize>, FvError> {
        let Some(v) = buf.get(off..) else {
            return Ok(None);
        };
        if v.get(40..44) != Some(FVH_SIGNATURE.as_slice()) {
            return Ok(None);
        }
        let (Some(fv_len), Some(attrs), Some(hdr_len), Some(ext_off)) =
            (le64(v, 32), le32(v, 44), le16(v, 48), le16(v, 52))
        else {
            return Ok(None);
        };
        let Ok(fv_len) = usize::try_from(fv_len) else {
            return Ok(None);
        };
        let hdr_len = usize::from(hdr_len);
        if fv_len < FV_HEADER_MIN || fv_len > v.len() || hdr_len < FV_HEADER_MIN || hdr_len > fv_len
        {
            return Ok(None);
        }
        let Some(fv) = v.get(..fv_len) else {
            return Ok(None);
        };
        if self.out.volumes.len() >= MAX_VOLUMES {
            return Err(FvError::TooManyVolumes);
        }
        let path = if prefix.is_empty() {
            format!("{off:#x}")
        } else {
            format!("{prefix}/fv@{off:#x}")
        };
        let ext_off = usize::from(ext_off);
        let mut files_at = hdr_len;
        let mut name = None;
        if ext_off != 0
            && let (Some(n), Some(ext_size)) =
                (fv.get(ext_off..), le32(fv, ext_off.saturating_add(16)))
        {
            name = Some(guid(n));
            files_at = ext_off.saturating_add(usize::try_from(ext_size).unwrap_or(usize::MAX));
        }
        self.out.volumes.push(Volume {
            path: path.clone(),
            depth,
            length: u64::try_from(fv_len).unwrap_or(u64::MAX),
            file_system: guid(fv.get(16..32).unwrap_or_default()),
            name,
            sha1: HashAlg::Sha1.hash(fv).to_hex(),
            sha256: HashAlg::Sha256.hash(fv).to_hex(),
            sha384: HashAlg::Sha384.hash(fv).to_hex(),
        });
        if depth < MAX_DEPTH {
            let erased = if attrs & ERASE_POLARITY != 0 {
                0xFF
            } else {
                0x00
            };
            self.files(fv, files_at, erased, &path, depth)?;
        }
        Ok(Some(fv_len))
    }

    fn files(
        &mut self,
        fv: &[u8],
        start: usize,
        erased: u8,
        path: &str,
        depth: usize,
    ) -> Result<(), FvError> {
        let mut off = align(start, 8).unwrap_or(usize::MAX);
        while let Some(h) = fv.get(off..off.saturating_add(24)) {
            if h.iter().all(|b| *b == erased) {
                break;
            }
            let (Some(ty), Some(attrs), Some(size)) = (h.get(18), h.get(19), le24(h, 20)) else {
                break;
            };
            let (size, hdr) = if attrs & FFS_LARGE_FILE != 0 {
                match le64(fv, off.saturating_add(24)).and_then(|s| usize::try_from(s).ok()) {
                    Some(s) => (s, 32),
                    None => break,
                }
            } else {
                (size, 24)
            };
            let Some(file) = fv
                .get(off..off.saturating_add(size))
                .filter(|_| size >= hdr)
            else {
                self.skip(path, format!("file header at {off:#x} overruns the volume"));
                break;
            };
            if *ty != FFS_TYPE_RAW && *ty != FFS_TYPE_PAD {
                let fpath = format!("{path}/file[{}]", guid(h));
                self.sections(file.get(hdr..).unwrap_or_default(), &fpath, depth)?;
            }
            off = match off.checked_add(size).and_then(|n| align(n, 8)) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(())
    }

    fn sections(&mut self, buf: &[u8], path: &str, depth: usize) -> Result<(), FvError> {
        let mut off = 0usize;
        while let Some(size) = le24(buf, off) {
            let Some(ty) = buf.get(off.saturating_add(3)).copied() else {
                break;
            };
            let (size, hdr) = if size == 0x00FF_FFFF {
                match le32(buf, off.saturating_add(4)).and_then(|s| usize::try_from(s).ok()) {
                    Some(s) => (s, 8),
                    None => break,
                }
            } else {
                (size, 4)
            };
            let Some(section) = buf
                .get(off..off.saturating_add(size))
                .filter(|_| size >= hdr)
            else {
                if size != 0 {
                    self.skip(path, format!("section at {off:#x} overruns its file"));
                }
                break;
            };
            let body = section.get(hdr..).unwrap_or_default();
            match ty {
                SECTION_FIRMWARE_VOLUME_IMAGE if depth < MAX_DEPTH => {
                    let before = self.out.volumes.len();
                    let spath = format!("{path}/section@{off:#x}");
                    self.volume_at(body, 0, &spath, depth.saturating_add(1))?;
                    if self.out.volumes.len() == before {
                        self.skip(path, "firmware volume image section without a valid volume");
                    }
                }
                SECTION_GUID_DEFINED if self.nest < MAX_DEPTH => {
                    self.guid_defined(section, hdr, path, depth)?;
                }
                _ => {}
            }
            off = match off.checked_add(size).and_then(|n| align(n, 4)) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(())
    }

    fn guid_defined(
        &mut self,
        section: &[u8],
        hdr: usize,
        path: &str,
        depth: usize,
    ) -> Result<(), FvError> {
        let g = section.get(hdr..hdr.saturating_add(16)).unwrap_or_default();
        let Some(data_off) = le16(section, hdr.saturating_add(16)) else {
            return Ok(());
        };
        let Some(payload) = section.get(usize::from(data_off)..) else {
            self.skip(path, "GUID-defined section data offset beyond the section");
            return Ok(());
        };
        if g != LZMA_GUID {
            self.skip(
                path,
                format!("GUID-defined section {} not unpacked", guid(g)),
            );
            return Ok(());
        }
        let room = MAX_UNPACKED_TOTAL.saturating_sub(self.unpacked);
        if room == 0 {
            return Err(FvError::TooLarge);
        }
        let mut out = Bounded {
            buf: Vec::new(),
            limit: room.min(MAX_UNPACKED),
        };
        let options = lzma_rs::decompress::Options {
            unpacked_size: lzma_rs::decompress::UnpackedSize::ReadFromHeader,
            memlimit: Some(MAX_UNPACKED),
            allow_incomplete: false,
        };
        let mut input = payload;
        if let Err(e) = lzma_rs::lzma_decompress_with_options(&mut input, &mut out, &options) {
            self.skip(path, format!("LZMA section does not unpack: {e}"));
            return Ok(());
        }
        self.unpacked = self.unpacked.saturating_add(out.buf.len());
        let lpath = format!("{path}/lzma");
        self.nest = self.nest.saturating_add(1);
        let r = self.sections(&out.buf, &lpath, depth);
        self.nest = self.nest.saturating_sub(1);
        r
    }
}

/// Every firmware volume in `image` (a flash image such as `OVMF_CODE.fd`, or one volume),
/// including the ones inside LZMA-compressed sections, with their digests.
pub fn volumes(image: &[u8]) -> Result<Image, FvError> {
    let mut w = Walker {
        out: Image::default(),
        unpacked: 0,
        nest: 0,
    };
    w.scan(image, "", 0)?;
    if w.out.volumes.is_empty() {
        return Err(FvError::NoVolume);
    }
    Ok(w.out)
}

#[cfg(test)]
mod tests;
