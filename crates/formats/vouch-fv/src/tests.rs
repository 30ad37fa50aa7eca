#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code: a failure here is a failed test"
)]

use proptest::prelude::*;

use super::*;

/// A volume with the given files (each `(type, body)`), erase polarity 1.
fn volume(files: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (ty, content) in files {
        while !body.len().is_multiple_of(8) {
            body.push(0xFF);
        }
        let size = 24 + content.len();
        let mut h = vec![0x11; 16];
        h.extend_from_slice(&[0, 0, *ty, 0]);
        h.extend_from_slice(&(size as u32).to_le_bytes()[..3]);
        h.push(0xF8);
        body.extend_from_slice(&h);
        body.extend_from_slice(content);
    }
    let hdr_len = 72usize;
    let mut total = hdr_len + body.len();
    total = (total + 7) & !7;
    total += 64; // free space
    let mut v = vec![0u8; 16];
    v.extend_from_slice(&[0x78, 0xe5, 0x8c, 0x8c, 0x3d, 0x8a, 0x1c, 0x4f]);
    v.extend_from_slice(&[0x99, 0x35, 0x89, 0x61, 0x85, 0xc3, 0x2d, 0xd3]);
    v.extend_from_slice(&(total as u64).to_le_bytes());
    v.extend_from_slice(b"_FVH");
    v.extend_from_slice(&ERASE_POLARITY.to_le_bytes());
    v.extend_from_slice(&(hdr_len as u16).to_le_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0, 2]); // checksum, ext offset, reserved, revision
    v.extend_from_slice(&[0; 16]); // block map
    assert_eq!(v.len(), hdr_len);
    v.extend_from_slice(&body);
    v.resize(total, 0xFF);
    v
}

fn section(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut s = ((4 + body.len()) as u32).to_le_bytes()[..3].to_vec();
    s.push(ty);
    s.extend_from_slice(body);
    while !s.len().is_multiple_of(4) {
        s.push(0);
    }
    s
}

fn lzma_section(inner: &[u8]) -> Vec<u8> {
    let mut packed = Vec::new();
    lzma_rs::lzma_compress(&mut &inner[..], &mut packed).unwrap();
    let mut body = LZMA_GUID.to_vec();
    body.extend_from_slice(&24u16.to_le_bytes()); // data offset from the section start
    body.extend_from_slice(&1u16.to_le_bytes()); // EFI_GUIDED_SECTION_PROCESSING_REQUIRED
    body.extend_from_slice(&packed);
    section(SECTION_GUID_DEFINED, &body)
}

/// An EDK II-like image: an outer volume whose one file holds an LZMA section with two
/// firmware volume image sections (PEI and DXE), then a second top-level volume (SEC).
fn image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let pei = volume(&[(0x06, section(0x10, b"pei module"))]);
    let dxe = volume(&[(0x07, section(0x10, b"dxe driver")), (0x07, vec![])]);
    let mut inner = section(SECTION_FIRMWARE_VOLUME_IMAGE, &pei);
    inner.extend_from_slice(&section(SECTION_FIRMWARE_VOLUME_IMAGE, &dxe));
    let main = volume(&[(0xF0, vec![0xFF; 12]), (0x0B, lzma_section(&inner))]);
    let sec = volume(&[(0x03, section(0x10, b"sec"))]);
    let mut img = main;
    img.extend_from_slice(&sec);
    (img, pei, dxe)
}

#[test]
fn volumes_inside_lzma_sections_are_found_with_the_digest_of_their_bytes() {
    let (img, pei, dxe) = image();
    let found = volumes(&img).unwrap();
    let digests: Vec<&str> = found.volumes.iter().map(|v| v.sha256.as_str()).collect();
    for v in [&pei, &dxe] {
        let want = HashAlg::Sha256.hash(v).to_hex();
        assert!(digests.contains(&want.as_str()), "{found:#?}");
    }
    assert_eq!(found.volumes.len(), 4, "{found:#?}");
    let nested: Vec<&Volume> = found.volumes.iter().filter(|v| v.depth == 1).collect();
    assert_eq!(nested.len(), 2);
    assert!(nested.iter().all(|v| v.path.contains("/lzma/section@0x")));
    assert_ne!(nested[0].path, nested[1].path);
    assert_eq!(nested[0].length, pei.len() as u64);
    assert_eq!(
        nested[1].sha384,
        HashAlg::Sha384.hash(&dxe).to_hex(),
        "every bank"
    );
    assert_eq!(nested[1].digest("sha1"), Some(nested[1].sha1.as_str()));
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
}

#[test]
fn damaged_lzma_section_is_reported_and_the_rest_still_read() {
    let (mut img, _, _) = image();
    // Corrupt the LZMA stream (after the GUID section header of the second file).
    let at = img.windows(16).position(|w| w == LZMA_GUID).unwrap() + 20 + 13;
    for b in &mut img[at..at + 64] {
        *b ^= 0x5A;
    }
    let found = volumes(&img).unwrap();
    assert_eq!(found.volumes.iter().filter(|v| v.depth == 0).count(), 2);
    assert!(
        found
            .skipped
            .iter()
            .any(|s| s.reason.contains("LZMA") || s.reason.contains("volume")),
        "{found:#?}"
    );
}

#[test]
fn other_encapsulations_are_listed_not_unpacked() {
    let mut body = vec![0xAB; 16];
    body.extend_from_slice(&24u16.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(b"payload");
    let img = volume(&[(0x07, section(SECTION_GUID_DEFINED, &body))]);
    let found = volumes(&img).unwrap();
    assert_eq!(found.volumes.len(), 1);
    assert!(found.skipped[0].reason.contains("not unpacked"));
}

#[test]
fn an_image_without_a_volume_is_refused() {
    assert_eq!(volumes(&[0u8; 4096]), Err(FvError::NoVolume));
    assert_eq!(volumes(b""), Err(FvError::NoVolume));
}

#[test]
fn a_volume_claiming_more_than_the_image_is_not_a_volume() {
    let mut v = volume(&[]);
    let too_long = (v.len() as u64 + 1).to_le_bytes();
    v[32..40].copy_from_slice(&too_long);
    assert_eq!(volumes(&v), Err(FvError::NoVolume));
}

#[test]
fn guid_is_written_in_registry_format() {
    assert_eq!(guid(&LZMA_GUID), "ee4e5898-3914-4259-9d6e-dc7bd79403cf");
}

/// Debian's OVMF (installed by scripts/deps.sh): the layout QEMU boots, PEI and DXE volumes
/// of the sizes the firmware's log reports (0xe0000 and 0xc00000).
#[test]
fn debian_ovmf_code_holds_the_pei_and_dxe_volumes_its_log_measures() {
    let path = "/usr/share/OVMF/OVMF_CODE_4M.fd";
    let img = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (scripts/deps.sh installs the ovmf package)"));
    let found = volumes(&img).unwrap();
    let lengths: Vec<u64> = found
        .volumes
        .iter()
        .filter(|v| v.path.contains("/lzma/"))
        .map(|v| v.length)
        .collect();
    assert_eq!(lengths, vec![0xE0000, 0xC0_0000], "{found:#?}");
    assert_eq!(found.volumes.iter().filter(|v| v.depth == 0).count(), 2);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = volumes(&bytes);
    }

    #[test]
    fn a_mutated_image_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let (mut img, _, _) = image();
        let n = img.len();
        for (i, b) in flips {
            img[i.index(n)] ^= b;
        }
        let _ = volumes(&img);
    }
}
