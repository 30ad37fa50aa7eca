//! `EFI_GUID` and the GUIDs event logs use.

use core::fmt;

use serde::{Serialize, Serializer};

/// An `EFI_GUID` as stored (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

impl Guid {
    /// From the 16 bytes as stored.
    #[must_use]
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    /// From the textual fields `d1-d2-d3-d4[0..2]-d4[2..8]`.
    #[must_use]
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Self([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The bytes as stored.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A name for well-known GUIDs.
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        KNOWN.iter().find(|(g, _)| g == self).map(|(_, n)| *n)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let d2 = u16::from_le_bytes([b[4], b[5]]);
        let d3 = u16::from_le_bytes([b[6], b[7]]);
        write!(f, "{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-", b[8], b[9])?;
        for x in &b[10..] {
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `EFI_GLOBAL_VARIABLE` (SecureBoot, PK, KEK, Boot####, BootOrder).
pub const EFI_GLOBAL_VARIABLE: Guid = Guid::from_fields(
    0x8be4_df61,
    0x93ca,
    0x11d2,
    [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// `EFI_IMAGE_SECURITY_DATABASE_GUID` (db, dbx, dbt, dbr).
pub const EFI_IMAGE_SECURITY_DATABASE: Guid = Guid::from_fields(
    0xd719_b2cb,
    0x3d3a,
    0x4596,
    [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);
/// shim's `SHIM_LOCK_GUID` (MokList, MokListX, MokListTrusted, SbatLevel).
pub const SHIM_LOCK: Guid = Guid::from_fields(
    0x605d_ab50,
    0xe046,
    0x4300,
    [0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23],
);
/// `EFI_CERT_X509_GUID`.
pub const EFI_CERT_X509: Guid = Guid::from_fields(
    0xa5c0_59a1,
    0x94e4,
    0x4aa7,
    [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
);
/// `EFI_CERT_SHA1_GUID`.
pub const EFI_CERT_SHA1: Guid = Guid::from_fields(
    0x826c_a512,
    0xcf10,
    0x4ac9,
    [0xb1, 0x87, 0xbe, 0x01, 0x49, 0x66, 0x31, 0xbd],
);
/// `EFI_CERT_SHA224_GUID`.
pub const EFI_CERT_SHA224: Guid = Guid::from_fields(
    0x0b6e_5233,
    0xa65c,
    0x44c9,
    [0x94, 0x07, 0xd9, 0xab, 0x83, 0xbf, 0xc8, 0xbd],
);
/// `EFI_CERT_SHA256_GUID`.
pub const EFI_CERT_SHA256: Guid = Guid::from_fields(
    0xc1c4_1626,
    0x504c,
    0x4092,
    [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28],
);
/// `EFI_CERT_SHA384_GUID`.
pub const EFI_CERT_SHA384: Guid = Guid::from_fields(
    0xff3e_5307,
    0x9fd0,
    0x48c9,
    [0x85, 0xf1, 0x8a, 0xd5, 0x6c, 0x70, 0x1e, 0x01],
);
/// `EFI_CERT_SHA512_GUID`.
pub const EFI_CERT_SHA512: Guid = Guid::from_fields(
    0x093e_0fae,
    0xa6c4,
    0x4f50,
    [0x9f, 0x1b, 0xd4, 0x1e, 0x2b, 0x89, 0xc1, 0x9a],
);
/// `EFI_CERT_RSA2048_GUID`.
pub const EFI_CERT_RSA2048: Guid = Guid::from_fields(
    0x3c57_66e8,
    0x269c,
    0x4e34,
    [0xaa, 0x14, 0xed, 0x77, 0x6e, 0x85, 0xb3, 0xb6],
);
/// `EFI_CERT_X509_SHA256_GUID`.
pub const EFI_CERT_X509_SHA256: Guid = Guid::from_fields(
    0x3bd2_a492,
    0x96c0,
    0x4079,
    [0xb4, 0x20, 0xfc, 0xf9, 0x8e, 0xf1, 0x03, 0xed],
);
/// `EFI_CERT_X509_SHA384_GUID`.
pub const EFI_CERT_X509_SHA384: Guid = Guid::from_fields(
    0x7076_876e,
    0x80c2,
    0x4ee6,
    [0xaa, 0xd2, 0x28, 0xb3, 0x49, 0xa6, 0x86, 0x5b],
);
/// `EFI_CERT_X509_SHA512_GUID`.
pub const EFI_CERT_X509_SHA512: Guid = Guid::from_fields(
    0x446d_bf63,
    0x2502,
    0x4cda,
    [0xbc, 0xfa, 0x24, 0x65, 0xd2, 0xb0, 0xfe, 0x9d],
);
/// `EFI_CERT_TYPE_PKCS7_GUID`.
pub const EFI_CERT_PKCS7: Guid = Guid::from_fields(
    0x4aaf_d29d,
    0x68df,
    0x49ee,
    [0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7],
);
/// ACPI 2.0 table (handoff tables).
pub const EFI_ACPI_20_TABLE: Guid = Guid::from_fields(
    0x8868_e871,
    0xe4f1,
    0x11d3,
    [0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81],
);
/// SMBIOS table.
pub const SMBIOS_TABLE: Guid = Guid::from_fields(
    0xeb9d_2d31,
    0x2d88,
    0x11d3,
    [0x9a, 0x16, 0x00, 0x90, 0x27, 0x3f, 0xc1, 0x4d],
);
/// SMBIOS 3 table.
pub const SMBIOS3_TABLE: Guid = Guid::from_fields(
    0xf2fd_1544,
    0x9794,
    0x4a2c,
    [0x99, 0x2e, 0xe5, 0xbb, 0xcf, 0x20, 0xe3, 0x94],
);

const KNOWN: &[(Guid, &str)] = &[
    (EFI_GLOBAL_VARIABLE, "EFI_GLOBAL_VARIABLE"),
    (EFI_IMAGE_SECURITY_DATABASE, "EFI_IMAGE_SECURITY_DATABASE"),
    (SHIM_LOCK, "SHIM_LOCK"),
    (EFI_CERT_X509, "EFI_CERT_X509"),
    (EFI_CERT_SHA1, "EFI_CERT_SHA1"),
    (EFI_CERT_SHA224, "EFI_CERT_SHA224"),
    (EFI_CERT_SHA256, "EFI_CERT_SHA256"),
    (EFI_CERT_SHA384, "EFI_CERT_SHA384"),
    (EFI_CERT_SHA512, "EFI_CERT_SHA512"),
    (EFI_CERT_RSA2048, "EFI_CERT_RSA2048"),
    (EFI_CERT_X509_SHA256, "EFI_CERT_X509_SHA256"),
    (EFI_CERT_X509_SHA384, "EFI_CERT_X509_SHA384"),
    (EFI_CERT_X509_SHA512, "EFI_CERT_X509_SHA512"),
    (EFI_CERT_PKCS7, "EFI_CERT_TYPE_PKCS7"),
    (EFI_ACPI_20_TABLE, "ACPI 2.0"),
    (SMBIOS_TABLE, "SMBIOS"),
    (SMBIOS3_TABLE, "SMBIOS3"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_mixed_endian_fields() {
        assert_eq!(
            EFI_GLOBAL_VARIABLE.to_string(),
            "8be4df61-93ca-11d2-aa0d-00e098032b8c"
        );
        assert_eq!(EFI_CERT_X509.as_bytes()[..4], [0xa1, 0x59, 0xc0, 0xa5]);
    }
}
