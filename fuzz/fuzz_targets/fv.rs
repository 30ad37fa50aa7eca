//! Walk an arbitrary byte string as a UEFI firmware image: volumes, FFS files, sections, LZMA
//! sections. Nothing may panic, allocate past the unpack limits, or report a volume longer
//! than what contains it.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(image) = vouch_fv::volumes(data) else { return };
    assert!(image.volumes.len() <= vouch_fv::MAX_VOLUMES);
    for v in &image.volumes {
        assert!(v.depth <= vouch_fv::MAX_DEPTH);
        if v.depth == 0 {
            assert!(v.length <= data.len() as u64);
        }
        assert_eq!(v.sha256.len(), 64);
    }
});
