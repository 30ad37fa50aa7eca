#![no_main]
//! TPMT_SIGNATURE decoding.

use libfuzzer_sys::fuzz_target;
use vouch_tpm2::Signature;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = Signature::decode(data) {
        let _ = (sig.hash(), sig.scheme_name());
    }
});
