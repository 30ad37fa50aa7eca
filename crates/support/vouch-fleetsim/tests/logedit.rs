//! Edited logs frame, replay, and carry data bound to their digests.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure is a test failure"
)]

use vouch_fleetsim::logedit;
use vouch_tcglog::{EventLog, EventType, MachineState, SecureBoot};
use vouch_tpm2::HashAlg;

const GCE: &[u8] = include_bytes!("../../../../testdata/eventlogs/gce-rhel8-sb.bin");
const QEMU: &[u8] = include_bytes!("../../../../testdata/eventlogs/qemu-ubuntu2004-1.bin");

fn state(log: &[u8]) -> MachineState {
    MachineState::from_log(&EventLog::parse(log).unwrap()).unwrap()
}

/// Every event of `t` on `pcr` has digest == hash(data) in every bank.
fn bound(log: &[u8], pcr: u32, t: EventType) -> bool {
    let parsed = EventLog::parse(log).unwrap();
    parsed
        .events()
        .map(Result::unwrap)
        .filter(|e| e.pcr() == pcr && e.event_type() == t)
        .all(|e| {
            e.digests()
                .iter()
                .all(|d| d.alg().unwrap().hash(e.data()).as_bytes() == d.bytes())
        })
}

#[test]
fn secure_boot_off_and_db_cert_added_are_bound_variable_edits() {
    let off = logedit::secure_boot_off(GCE).unwrap();
    assert_eq!(state(GCE).secure_boot, SecureBoot::Enabled);
    assert_eq!(state(&off).secure_boot, SecureBoot::Disabled);
    assert!(bound(&off, 7, EventType::EV_EFI_VARIABLE_DRIVER_CONFIG));
    assert_ne!(
        vouch_tcglog::parse_and_replay(&off).unwrap(),
        vouch_tcglog::parse_and_replay(GCE).unwrap()
    );

    let der = vouch_sim::SimCa::generate().unwrap().cert_der().to_vec();
    let added = logedit::db_cert_added(GCE, &der).unwrap();
    let db = state(&added).db.unwrap();
    assert_eq!(db.certificates.len(), 3);
    assert_eq!(
        db.certificates[2].sha256,
        HashAlg::Sha256.hash(&der).to_hex()
    );
    assert!(bound(&added, 7, EventType::EV_EFI_VARIABLE_DRIVER_CONFIG));
}

#[test]
fn cmdline_firmware_and_bootloader_edits() {
    let c = logedit::cmdline_changed(QEMU, "init=/bin/sh").unwrap();
    let cmd = state(&c).kernel_cmdline.unwrap();
    assert!(cmd.ends_with("init=/bin/sh"), "{cmd}");
    let parsed = EventLog::parse(&c).unwrap();
    let ev = parsed
        .events()
        .map(Result::unwrap)
        .find(|e| e.pcr() == 8 && e.data().starts_with(b"kernel_cmdline: "))
        .unwrap();
    let text = std::str::from_utf8(ev.data())
        .unwrap()
        .trim_end_matches('\0');
    let measured = text.strip_prefix("kernel_cmdline: ").unwrap();
    assert_eq!(
        ev.digests().get(HashAlg::Sha256).unwrap(),
        HashAlg::Sha256.hash(measured.as_bytes())
    );

    let fw = logedit::new_firmware(QEMU, "OVMF 2.20").unwrap();
    assert_eq!(state(&fw).firmware_version.as_deref(), Some("OVMF 2.20"));
    assert!(bound(&fw, 0, EventType::EV_S_CRTM_VERSION));
    assert_eq!(
        state(&fw).firmware_blobs,
        state(QEMU).firmware_blobs,
        "regions unchanged, digests new"
    );

    let gr = logedit::new_boot_application(GCE, 1, "grub 2").unwrap();
    let (a, b) = (state(GCE).boot_chain, state(&gr).boot_chain);
    assert_eq!(a[0], b[0]);
    assert_ne!(a[1].digests, b[1].digests);
    assert_eq!(a[2], b[2]);
    assert!(
        logedit::firmware_blob_changed(GCE).is_err(),
        "GCE logs no firmware blobs"
    );
}
