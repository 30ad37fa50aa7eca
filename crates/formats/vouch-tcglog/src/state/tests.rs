//! Only bound data becomes state: built logs with one unbound event each.

use vouch_tpm2::HashAlg;

use super::*;
use crate::tests::enc::{self, variable};

const BANKS: &[HashAlg] = &[HashAlg::Sha1, HashAlg::Sha256];

/// An event whose digests are the hashes of `hashed`, carrying `data`.
fn event(pcr: u32, ty: EventType, hashed: &[u8], data: &[u8]) -> Vec<u8> {
    let digests: Vec<_> = BANKS
        .iter()
        .map(|a| (a.tpm_alg_id(), a.hash(hashed).as_bytes().to_vec()))
        .collect();
    enc::agile_event(pcr, ty.0, &digests, data)
}

/// An event that measured `data`.
fn measured(pcr: u32, ty: EventType, data: &[u8]) -> Vec<u8> {
    event(pcr, ty, data, data)
}

fn state(events: &[Vec<u8>]) -> MachineState {
    let mut log = enc::spec_id(&[(0x0004, 20), (0x000B, 32)]);
    for e in events {
        log.extend_from_slice(e);
    }
    MachineState::from_log(&EventLog::parse(&log).unwrap()).unwrap()
}

fn unverified(s: &MachineState) -> Vec<(usize, StateField, UnverifiedReason)> {
    s.unverified
        .iter()
        .map(|u| (u.event, u.field, u.reason))
        .collect()
}

const CONFIG: EventType = EventType::EV_EFI_VARIABLE_DRIVER_CONFIG;

fn secure_boot(value: u8) -> Vec<u8> {
    variable(guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[value])
}

#[test]
fn bound_secure_boot_variable_is_read() {
    let s = state(&[measured(7, CONFIG, &secure_boot(1))]);
    assert_eq!(s.secure_boot, SecureBoot::Enabled);
    assert!(s.unverified.is_empty());
}

#[test]
fn rewritten_secure_boot_variable_is_unknown_and_listed() {
    let s = state(&[event(7, CONFIG, &secure_boot(1), &secure_boot(0))]);
    assert_eq!(s.secure_boot, SecureBoot::Unknown);
    assert_eq!(
        unverified(&s),
        [(1, StateField::SecureBoot, UnverifiedReason::NotBound)]
    );
}

#[test]
fn secure_boot_variable_hashed_without_its_name_is_unknown() {
    // Which variable it is rests on the name, which the digest does not cover.
    let s = state(&[event(7, CONFIG, &[1], &secure_boot(1))]);
    assert_eq!(s.secure_boot, SecureBoot::Unknown);
    assert_eq!(
        unverified(&s),
        [(1, StateField::SecureBoot, UnverifiedReason::NameNotCovered)]
    );
}

#[test]
fn unbound_variable_of_unreadable_name_marks_every_missing_secure_boot_field() {
    let garbled = variable(guid::EFI_GLOBAL_VARIABLE, "Pk", &[1, 2, 3]);
    let s = state(&[
        measured(7, CONFIG, &secure_boot(1)),
        event(7, CONFIG, b"what was measured", &garbled),
    ]);
    assert_eq!(s.secure_boot, SecureBoot::Enabled, "bound, kept");
    let u = UnverifiedReason::Unidentified;
    assert_eq!(
        unverified(&s),
        [
            (2, StateField::Pk, u),
            (2, StateField::Kek, u),
            (2, StateField::Db, u),
            (2, StateField::Dbx, u),
        ]
    );
}

#[test]
fn undecodable_pcr7_variable_that_is_unbound_marks_missing_fields() {
    let mut truncated = secure_boot(1);
    truncated.truncate(20);
    let s = state(&[event(7, CONFIG, &secure_boot(1), &truncated)]);
    assert_eq!(s.secure_boot, SecureBoot::Unknown);
    assert_eq!(s.undecodable_events.len(), 1);
    assert!(
        s.unverified
            .iter()
            .any(|u| u.field == StateField::SecureBoot && u.event == 1)
    );
}

#[test]
fn unbound_kernel_command_line_is_unknown_not_an_earlier_one() {
    let first = b"kernel_cmdline: /vmlinuz ro quiet\0";
    let second = b"kernel_cmdline: /vmlinuz ro init=/bin/sh\0";
    let s = state(&[
        event(8, EventType::EV_IPL, b"/vmlinuz ro quiet", first),
        event(8, EventType::EV_IPL, b"/vmlinuz ro quiet", second),
    ]);
    assert_eq!(s.kernel_cmdline, None);
    assert_eq!(
        unverified(&s),
        [(2, StateField::KernelCmdline, UnverifiedReason::NotBound)]
    );
}

#[test]
fn bound_kernel_command_line_after_an_unbound_one_is_read() {
    let s = state(&[
        event(8, EventType::EV_IPL, b"x", b"kernel_cmdline: /vmlinuz ro\0"),
        event(
            8,
            EventType::EV_IPL,
            b"/vmlinuz ro quiet",
            b"kernel_cmdline: /vmlinuz ro quiet\0",
        ),
    ]);
    assert_eq!(s.kernel_cmdline.as_deref(), Some("/vmlinuz ro quiet"));
    assert!(s.unverified.is_empty());
}

#[test]
fn edk2_boot_variables_hashed_without_their_names_are_read() {
    let order = [1, 0, 0, 0];
    let s = state(&[event(
        1,
        EventType::EV_EFI_VARIABLE_BOOT,
        &order,
        &variable(guid::EFI_GLOBAL_VARIABLE, "BootOrder", &order),
    )]);
    assert_eq!(s.boot_order, [1, 0]);
    assert!(s.unverified.is_empty());
}

#[test]
fn rewritten_boot_order_is_empty_and_listed() {
    let s = state(&[event(
        1,
        EventType::EV_EFI_VARIABLE_BOOT,
        &[1, 0],
        &variable(guid::EFI_GLOBAL_VARIABLE, "BootOrder", &[2, 0]),
    )]);
    assert!(s.boot_order.is_empty());
    assert_eq!(
        unverified(&s),
        [(1, StateField::BootOrder, UnverifiedReason::NotBound)]
    );
}

#[test]
fn error_separator_counts_only_when_bound() {
    let error = 1u32.to_le_bytes();
    let normal = 0u32.to_le_bytes();
    let s = state(&[
        measured(0, EventType::EV_SEPARATOR, &error),
        event(1, EventType::EV_SEPARATOR, &normal, &error),
    ]);
    assert_eq!(s.error_separators, [0]);
    assert_eq!(
        unverified(&s),
        [(2, StateField::ErrorSeparators, UnverifiedReason::NotBound)]
    );
}

#[test]
fn unbound_s_crtm_version_leaves_the_firmware_version_unknown() {
    let s = state(&[
        event(0, EventType::EV_S_CRTM_VERSION, b"1.0\0", b"6.6\0"),
        measured(0, EventType::EV_S_CRTM_VERSION, b"2.0\0"),
    ]);
    assert_eq!(s.firmware_version, None, "the first version event decides");
    assert_eq!(
        unverified(&s),
        [(1, StateField::FirmwareVersion, UnverifiedReason::NotBound)]
    );
}

#[test]
fn unbound_authority_is_left_out_and_listed() {
    let cert = variable(guid::EFI_IMAGE_SECURITY_DATABASE, "db", &[0x30, 0x00]);
    let s = state(&[
        measured(7, EventType::EV_EFI_VARIABLE_AUTHORITY, &cert),
        event(7, EventType::EV_EFI_VARIABLE_AUTHORITY, b"other", &cert),
    ]);
    assert_eq!(s.authorities.len(), 1);
    assert_eq!(s.authorities.first().map(|a| a.event), Some(1));
    assert_eq!(
        unverified(&s),
        [(2, StateField::Authorities, UnverifiedReason::NotBound)]
    );
}

#[test]
fn state_without_unverified_fields_serialises_as_before() {
    let s = state(&[measured(7, CONFIG, &secure_boot(1))]);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json.get("unverified").is_none());
    let s = state(&[event(7, CONFIG, b"x", &secure_boot(1))]);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["unverified"],
        serde_json::json!([{"event": 1, "field": "secure_boot", "reason": "not_bound"}])
    );
}
