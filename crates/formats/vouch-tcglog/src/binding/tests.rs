//! Which bytes a digest binds: one behaviour per convention, on built and real events.

use vouch_tpm2::HashAlg;

use super::{Binding, Coverage};
use crate::data::guid;
use crate::event_type::EventType;
use crate::log::EventLog;
use crate::tests::enc::{self, variable};

const SHA1: (u16, u16) = (0x0004, 20);
const SHA256: (u16, u16) = (0x000B, 32);
const BOTH: &[HashAlg] = &[HashAlg::Sha1, HashAlg::Sha256];

/// Run `f` on the only event of a two-bank log holding `event`.
fn with_event(event: &[u8], f: impl FnOnce(&crate::Event<'_>)) {
    let mut log = enc::spec_id(&[SHA1, SHA256]);
    log.extend_from_slice(event);
    let parsed = EventLog::parse(&log).unwrap();
    let ev = parsed.events().nth(1).unwrap().unwrap();
    f(&ev);
}

/// An event carrying `data` whose digests are the hashes of `hashed` (per bank).
fn event(pcr: u32, ty: EventType, hashed: [&[u8]; 2], data: &[u8]) -> Vec<u8> {
    let digests = BOTH
        .iter()
        .zip(hashed)
        .map(|(a, h)| (a.tpm_alg_id(), a.hash(h).as_bytes().to_vec()))
        .collect::<Vec<_>>();
    enc::agile_event(pcr, ty.0, &digests, data)
}

fn real_event(log: &str, index: usize, f: impl FnOnce(&crate::Event<'_>)) {
    let path = format!(
        "{}/../../../testdata/eventlogs/{log}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).unwrap();
    let parsed = EventLog::parse(&bytes).unwrap();
    let ev = parsed.events().nth(index).unwrap().unwrap();
    f(&ev);
}

#[test]
fn binds_data_hashed_in_every_bank() {
    let data = variable(guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[1]);
    with_event(
        &enc::measured(7, EventType::EV_EFI_VARIABLE_DRIVER_CONFIG.0, BOTH, &data),
        |ev| {
            assert_eq!(ev.coverage(), Some(Coverage::EventData));
            assert_eq!(ev.binding(), Binding::Bound);
            assert_eq!(ev.binding_in(HashAlg::Sha1), Binding::Bound);
        },
    );
}

#[test]
fn refuses_data_whose_unquoted_bank_was_fixed_up() {
    // SHA-1 still holds the digest of what was measured; SHA-256 was recomputed over the
    // rewritten data. A quote of SHA-1 alone would accept the replay: the data is not bound.
    let measured = variable(guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[1]);
    let rewritten = variable(guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[0]);
    with_event(
        &event(
            7,
            EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
            [&measured, &rewritten],
            &rewritten,
        ),
        |ev| {
            assert_eq!(ev.coverage(), None);
            assert_eq!(ev.binding(), Binding::Unbound);
            assert_eq!(ev.binding_in(HashAlg::Sha1), Binding::Unbound);
            assert_eq!(ev.binding_in(HashAlg::Sha256), Binding::Bound);
        },
    );
}

#[test]
fn refuses_an_event_with_no_digest_of_a_known_algorithm() {
    let mut log = enc::spec_id(&[(0x0099, 32)]);
    log.extend(enc::agile_event(
        7,
        EventType::EV_EFI_ACTION.0,
        &[(0x0099, HashAlg::Sha256.hash(b"x").as_bytes().to_vec())],
        b"x",
    ));
    let parsed = EventLog::parse(&log).unwrap();
    let ev = parsed.events().nth(1).unwrap().unwrap();
    assert_eq!(ev.coverage(), None);
    assert_eq!(ev.binding_in(HashAlg::Sha256), Binding::Unbound);
}

#[test]
fn never_binds_an_image_even_when_its_digest_is_the_hash_of_the_path() {
    with_event(
        &enc::measured(
            4,
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION.0,
            BOTH,
            &[0; 32],
        ),
        |ev| {
            assert_eq!(ev.coverage(), None);
            assert_eq!(ev.coverage_in(HashAlg::Sha256), None);
        },
    );
}

#[test]
fn binds_the_contents_of_an_edk2_boot_variable_but_not_its_name() {
    let option = [1, 0, 0, 0];
    let data = variable(guid::EFI_GLOBAL_VARIABLE, "BootOrder", &option);
    with_event(
        &event(
            1,
            EventType::EV_EFI_VARIABLE_BOOT,
            [&option, &option],
            &data,
        ),
        |ev| {
            assert_eq!(ev.coverage(), Some(Coverage::VariableData));
            assert_eq!(ev.binding(), Binding::Unbound, "the name is not covered");
        },
    );
    // EV_EFI_VARIABLE_BOOT2 is defined as hashed whole.
    with_event(
        &event(
            1,
            EventType::EV_EFI_VARIABLE_BOOT2,
            [&option, &option],
            &data,
        ),
        |ev| assert_eq!(ev.coverage(), None),
    );
}

#[test]
fn binds_grub_command_line_text_but_not_its_prefix() {
    let text: &[u8] = b"/vmlinuz root=/dev/sda1 ro";
    for (data, with_nul) in [
        (&b"kernel_cmdline: /vmlinuz root=/dev/sda1 ro\0"[..], false),
        (
            &b"grub_kernel_cmdline /vmlinuz root=/dev/sda1 ro\0"[..],
            true,
        ),
    ] {
        let hashed = if with_nul {
            [text, &[0]].concat()
        } else {
            text.to_vec()
        };
        with_event(
            &event(8, EventType::EV_IPL, [&hashed, &hashed], data),
            |ev| {
                assert_eq!(ev.coverage(), Some(Coverage::GrubText));
                assert_eq!(ev.binding(), Binding::Unbound, "the prefix is not covered");
            },
        );
    }
    // Text that is not GRUB's is not checked as such.
    with_event(
        &event(
            8,
            EventType::EV_IPL,
            [text, text],
            b"something: /vmlinuz root=/dev/sda1 ro",
        ),
        |ev| assert_eq!(ev.coverage(), None),
    );
}

#[test]
fn binds_systemd_boot_load_options_logged_one_byte_short() {
    // arch-sdboot-ws #24: the UTF-16 command line in PCR 8, logged without its last NUL byte.
    real_event("arch-sdboot-ws", 24, |ev| {
        assert_eq!(ev.event_type(), EventType::EV_IPL);
        assert_eq!(ev.coverage(), Some(Coverage::DataWithNul));
        assert_eq!(ev.binding(), Binding::Bound);
    });
}

#[test]
fn binds_authority_events_logged_with_structure_padding() {
    // shim's `Shim` authority (qemu-rhel8-pxe #29) and GCE firmware's `db` authority
    // (gce-cos85-sev #24): 6 bytes after the structure, the digest covers all but the last.
    for (log, index) in [("qemu-rhel8-pxe", 29), ("gce-cos85-sev", 24)] {
        real_event(log, index, |ev| {
            assert_eq!(ev.event_type(), EventType::EV_EFI_VARIABLE_AUTHORITY);
            assert_eq!(ev.coverage(), Some(Coverage::PaddedVariable), "{log}");
            assert_eq!(ev.binding(), Binding::Bound, "{log}");
        });
    }
}

#[test]
fn refuses_padding_beyond_the_structure_alignment() {
    let mut data = variable(guid::EFI_GLOBAL_VARIABLE, "db", &[1, 2, 3]);
    let covered = data.clone();
    data.extend_from_slice(&[0; 10]);
    with_event(
        &event(
            7,
            EventType::EV_EFI_VARIABLE_AUTHORITY,
            [&covered, &covered],
            &data,
        ),
        |ev| assert_eq!(ev.coverage(), None),
    );
}

#[test]
fn reads_tpm12_era_variables_as_covering_only_their_contents() {
    // thinkpad-tpm12 #9: `db` in PCR 7, SHA-1 over VariableData alone.
    real_event("thinkpad-tpm12", 9, |ev| {
        assert_eq!(ev.coverage(), Some(Coverage::VariableData));
        assert_eq!(ev.binding(), Binding::Unbound);
    });
}
