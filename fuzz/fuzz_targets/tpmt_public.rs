#![no_main]
//! TPMT_PUBLIC / TPM2B_PUBLIC decoding, name computation, and the AK and EK preparations that
//! follow decoding in the verifier.

use libfuzzer_sys::fuzz_target;
use vouch_tpm2::credential::EkPublic;
use vouch_tpm2::{AkVerifier, PublicArea};

fuzz_target!(|data: &[u8]| {
    for area in [PublicArea::decode_tpmt(data), PublicArea::decode_tpm2b(data)].into_iter().flatten() {
        let _ = area.name();
        let _ = area.describe();
        let _ = AkVerifier::new(&area);
        let _ = EkPublic::from_public_area(&area);
    }
    // TPM 1.2 public keys share this entry point (TPM_PUBKEY).
    let _ = vouch_tpm2::tpm12::Tpm12PublicKey::decode(data);
});
