//! EK certificate entry points on arbitrary bytes: `EkCert::parse` (DER, padded DER, PEM),
//! `parse_file` (multi-certificate PEM), and path building against the bundled roots with the
//! input also offered as an intermediate. None may panic.
#![no_main]

use std::sync::OnceLock;

use vouch_x509::{EkCert, RootStore, parse_file};

fn store() -> &'static RootStore {
    static STORE: OnceLock<RootStore> = OnceLock::new();
    STORE.get_or_init(|| RootStore::bundled().unwrap_or_default())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_file(data);
    if let Ok(cert) = EkCert::parse(data) {
        let _ = cert.summary();
        let _ = store().verify(&cert, std::slice::from_ref(&cert), 1_767_225_600);
        let _ = cert.is_self_signed();
    }
});
