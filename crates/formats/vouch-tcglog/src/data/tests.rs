//! Decoding behaviours.

use super::*;
use crate::log::EventLog;
use crate::tests::enc;
use crate::tests::enc::variable;
use vouch_tpm2::HashAlg;

fn decode_one(ty: u32, data: &[u8], f: impl FnOnce(EventData<'_>)) {
    let mut log = enc::spec_id(&[(0xB, 32)]);
    log.extend(enc::measured(7, ty, &[HashAlg::Sha256], data));
    let parsed = EventLog::parse(&log).unwrap();
    let ev = parsed.events().nth(1).unwrap().unwrap();
    f(ev.decoded());
}

#[test]
fn decodes_secure_boot_flag() {
    decode_one(
        0x8000_0001,
        &variable(guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[1]),
        |d| {
            let EventData::Variable(v) = d else {
                panic!("{d:?}")
            };
            assert!(v.name.eq_str("SecureBoot"));
            assert_eq!(v.contents, VariableContents::Flag { value: Some(1) });
        },
    );
}

#[test]
fn keeps_truncated_variable_as_undecodable_not_an_error() {
    let mut v = variable(guid::EFI_GLOBAL_VARIABLE, "SecureBoot", &[1]);
    v.pop();
    decode_one(0x8000_0001, &v, |d| {
        let EventData::Undecodable { data, error } = d else {
            panic!("{d:?}")
        };
        assert_eq!(data.len(), v.len());
        assert!(matches!(error.kind, DecodeErrorKind::Truncated { .. }));
    });
}

#[test]
fn decodes_signature_list_with_hashes() {
    let mut list = guid::EFI_CERT_SHA256.as_bytes().to_vec();
    let n = 3u32;
    list.extend_from_slice(&(28 + n * 48).to_le_bytes());
    list.extend_from_slice(&0u32.to_le_bytes());
    list.extend_from_slice(&48u32.to_le_bytes());
    for i in 0..n {
        list.extend_from_slice(&[0x11; 16]);
        list.extend_from_slice(&[u8::try_from(i).unwrap(); 32]);
    }
    decode_one(
        0x8000_0001,
        &variable(guid::EFI_IMAGE_SECURITY_DATABASE, "dbx", &list),
        |d| {
            let EventData::Variable(v) = d else {
                panic!("{d:?}")
            };
            let VariableContents::SignatureDb(db) = v.contents else {
                panic!("{v:?}")
            };
            assert_eq!((db.entries, db.certificates), (3, 0));
            let entries: Vec<_> = db.iter().collect();
            assert_eq!(entries.len(), 3);
            assert_eq!(entries[2].kind, SignatureKind::Sha256);
            assert_eq!(entries[2].data, &[2u8; 32]);
        },
    );
}

#[test]
fn rejects_signature_list_with_partial_entry() {
    let mut list = guid::EFI_CERT_SHA256.as_bytes().to_vec();
    list.extend_from_slice(&(28u32 + 50).to_le_bytes());
    list.extend_from_slice(&0u32.to_le_bytes());
    list.extend_from_slice(&48u32.to_le_bytes());
    list.extend_from_slice(&[0; 50]);
    decode_one(
        0x8000_0001,
        &variable(guid::EFI_IMAGE_SECURITY_DATABASE, "db", &list),
        |d| {
            let EventData::Variable(v) = d else {
                panic!("{d:?}")
            };
            assert!(
                matches!(v.contents, VariableContents::Raw { note: Some(_) }),
                "{v:?}"
            );
        },
    );
}

#[test]
fn flags_error_separator() {
    decode_one(4, &[0xFF; 4], |d| {
        assert_eq!(d, EventData::Separator(Separator::Error(0xFFFF_FFFF)))
    });
    decode_one(4, &[1, 0, 0, 0], |d| {
        assert!(matches!(d, EventData::Separator(s) if s.is_error()))
    });
    decode_one(4, &[0; 4], |d| {
        assert_eq!(d, EventData::Separator(Separator::Normal))
    });
}

#[test]
fn classifies_grub_ipl_strings() {
    decode_one(0xD, b"kernel_cmdline: /vmlinuz root=/dev/sda1 ro\0", |d| {
        assert_eq!(
            d,
            EventData::Ipl(Ipl::KernelCmdline("/vmlinuz root=/dev/sda1 ro"))
        );
    });
    decode_one(0xD, b"grub_cmd: set root=hd0\0", |d| {
        assert_eq!(d, EventData::Ipl(Ipl::GrubCommand("set root=hd0")));
    });
}

#[test]
fn reads_systemd_boot_utf16_ipl() {
    let s: Vec<u8> = "initrd=\\a root=x\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    decode_one(0xD, &s, |d| {
        let EventData::Ipl(Ipl::Utf16(t)) = d else {
            panic!("{d:?}")
        };
        assert_eq!(t.to_string(), "initrd=\\a root=x");
    });
}

#[test]
fn keeps_unknown_types_as_raw() {
    decode_one(0x40E, &[1, 2, 3], |d| {
        assert_eq!(d, EventData::Raw(&[1, 2, 3]))
    });
}

#[test]
fn decodes_image_load_with_file_path() {
    let path: Vec<u8> = "\\EFI\\BOOT\\BOOTX64.EFI\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut dp = vec![4u8, 4];
    dp.extend_from_slice(&u16::try_from(path.len() + 4).unwrap().to_le_bytes());
    dp.extend_from_slice(&path);
    dp.extend_from_slice(&[0x7F, 0xFF, 4, 0]);
    let mut data = Vec::new();
    for v in [0x1000u64, 0x2000, 0, dp.len() as u64] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    data.extend_from_slice(&dp);
    decode_one(0x8000_0003, &data, |d| {
        let EventData::ImageLoad(i) = d else {
            panic!("{d:?}")
        };
        assert_eq!(i.length, 0x2000);
        assert_eq!(
            i.device_path.unwrap().to_string(),
            "\\EFI\\BOOT\\BOOTX64.EFI"
        );
    });
}

#[test]
fn decodes_blob2_description() {
    let mut data = vec![4u8];
    data.extend_from_slice(b"PEI\0");
    data.extend_from_slice(&0xFFC0_0000u64.to_le_bytes());
    data.extend_from_slice(&0x10_0000u64.to_le_bytes());
    decode_one(0x8000_000A, &data, |d| {
        assert_eq!(d.to_string(), "PEI base 0xffc00000 length 0x100000");
    });
}
