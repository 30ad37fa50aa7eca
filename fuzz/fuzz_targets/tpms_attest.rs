#![no_main]
//! TPMS_ATTEST and TPM2B_ATTEST decoding, and the full quote check on arbitrary bytes.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vouch_tpm2::{AkVerifier, Attest, PcrValues, PublicArea, verify_quote};

/// A real RSA AK (GCE vTPM) so fuzzed attestations reach the signature check.
const AK: &str = "0001000b00050072000000100014000b0800000000000100cbad6f089c698224431f4a08869b56bb69965d554959fe600fae2b318de9c1744d18122d45551bbf38080809a274045d7c1e34f92278b35903420318308ce98848a4b64f398de838fb7b67d818f56eb6265802e42a0a1b23a4adee1b025e74f6bd1ae3629df6123eff94eb208a8945c93539e11393626812d4f5f7198b7aa168a215d88861868cef9dad68f9bf59e17159703cdba1c490cd729734489e5f05d0e79aebef43653e025d56f26f12c67556450d8a10cacf529ac9f1a6c71f4d33b359fa5477005763e00db3d10a8a783e015534ba02415e5c4904446911a7e7bb9d80153f016a42d733b11f5c0220fd39324405d8c3a35d99b1240e874d58e63d67";

fn ak() -> &'static AkVerifier {
    static AK_V: OnceLock<AkVerifier> = OnceLock::new();
    AK_V.get_or_init(|| {
        let bytes: Vec<u8> = (0..AK.len() / 2)
            .map(|i| u8::from_str_radix(&AK[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        AkVerifier::new(&PublicArea::decode_tpmt(bytes).unwrap()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = Attest::decode(data);
    let _ = Attest::decode_tpm2b(data);
    // Also as `u16 attest length || attest || signature`, the seed layout, so mutations reach
    // the signature, nonce and PCR checks.
    if let Some((len, rest)) = data.split_first_chunk::<2>() {
        let split = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (attest, sig) = rest.split_at(split);
        let _ = Attest::decode(attest);
        let _ = verify_quote(ak(), attest, sig, &[0x90, 0x09], &PcrValues::new());
    }
});
