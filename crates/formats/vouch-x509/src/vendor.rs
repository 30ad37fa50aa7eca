//! TPM manufacturer identifiers: the four-byte TPM_PT_MANUFACTURER values of the TCG Vendor ID
//! Registry (Family 1.2 and 2.0, v1.07), as they appear hex-encoded ("id:53544D20") in the
//! tpmManufacturer attribute (2.23.133.2.1) of an EK certificate.

use serde::Serialize;

/// (vendor id with trailing spaces and NULs removed, vendor name).
const VENDORS: &[(&str, &str)] = &[
    ("AMD", "AMD"),
    ("ANT", "Ant Group"),
    ("ATML", "Atmel"),
    ("BRCM", "Broadcom"),
    ("CSCO", "Cisco"),
    ("FLYS", "Flyslice Technologies"),
    ("ROCC", "Fuzhou Rockchip"),
    ("GOOG", "Google"),
    ("HPI", "HPI"),
    ("HPE", "HPE"),
    ("HISI", "Huawei"),
    ("IBM", "IBM"),
    ("IFX", "Infineon"),
    ("INTC", "Intel"),
    ("LEN", "Lenovo"),
    ("MSFT", "Microsoft"),
    ("NSM", "National Semiconductor"),
    ("NTZ", "Nationz"),
    ("NSG", "NSING"),
    ("NTC", "Nuvoton Technology"),
    ("QCOM", "Qualcomm"),
    ("SMSC", "SMSC"),
    ("SMSN", "Samsung"),
    ("SNS", "Sinosun"),
    ("STM", "STMicroelectronics"),
    ("TXN", "Texas Instruments"),
    ("WEC", "Winbond"),
    ("SECE", "SecEdge"),
    ("PRSE", "Primesense"),
];

/// A decoded tpmManufacturer attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TpmManufacturer {
    /// The attribute exactly as written in the certificate, e.g. `id:53544D20`.
    pub raw: String,
    /// The four bytes as ASCII when they are printable, e.g. `STM ` (trailing space kept).
    pub code: Option<String>,
    /// The vendor's name from the TCG registry, e.g. `STMicroelectronics`.
    pub name: Option<&'static str>,
}

impl TpmManufacturer {
    /// Decode `id:XXXXXXXX` (the `id:` prefix is optional, hex case-insensitive).
    #[must_use]
    pub fn decode(raw: &str) -> Self {
        let hex = raw
            .strip_prefix("id:")
            .or_else(|| raw.strip_prefix("ID:"))
            .unwrap_or(raw);
        let code = decode_hex4(hex).and_then(|bytes| {
            let printable = bytes
                .iter()
                .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == 0);
            printable.then(|| {
                bytes
                    .iter()
                    .filter(|b| **b != 0)
                    .map(|b| char::from(*b))
                    .collect::<String>()
            })
        });
        let name = code.as_deref().and_then(vendor_name).or_else(|| {
            // Software TPMs built on IBM's reference code (libtpms, hence swtpm) report IBM's
            // PCI vendor id 0x1014 instead of the registry's "IBM " code.
            decode_hex4(hex)
                .filter(|b| *b == [0x00, 0x00, 0x10, 0x14])
                .map(|_| "IBM (libtpms / swtpm)")
        });
        Self {
            raw: raw.to_owned(),
            code,
            name,
        }
    }
}

/// The registry name of a vendor code such as `IFX`, `STM ` or `AMD\0` (trailing spaces and NULs
/// are ignored).
#[must_use]
pub fn vendor_name(code: &str) -> Option<&'static str> {
    let trimmed = code.trim_end_matches([' ', '\0']);
    VENDORS
        .iter()
        .find(|(id, _)| *id == trimmed)
        .map(|(_, name)| *name)
}

fn decode_hex4(hex: &str) -> Option<[u8; 4]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 8 {
        return None;
    }
    let mut out = [0u8; 4];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = core::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_stm_manufacturer_id() {
        let m = TpmManufacturer::decode("id:53544D20");
        assert_eq!(m.code.as_deref(), Some("STM "));
        assert_eq!(m.name, Some("STMicroelectronics"));
    }

    #[test]
    fn decodes_nul_padded_and_lowercase_ids() {
        assert_eq!(TpmManufacturer::decode("id:414d4400").name, Some("AMD"));
        assert_eq!(
            TpmManufacturer::decode("id:49465800").name,
            Some("Infineon")
        );
        assert_eq!(TpmManufacturer::decode("id:474F4F47").name, Some("Google"));
    }

    #[test]
    fn keeps_unknown_and_malformed_ids_raw() {
        let m = TpmManufacturer::decode("id:5A5A5A5A");
        assert_eq!(m.code.as_deref(), Some("ZZZZ"));
        assert_eq!(m.name, None);
        let bad = TpmManufacturer::decode("id:53544");
        assert_eq!(bad.code, None);
        assert_eq!(bad.raw, "id:53544");
        let binary = TpmManufacturer::decode("id:0102FF03");
        assert_eq!(binary.code, None);
    }
}

#[cfg(test)]
mod swtpm_tests {
    use super::*;

    #[test]
    fn names_swtpm_manufacturer_id() {
        let m = TpmManufacturer::decode("id:00001014");
        assert_eq!(m.name, Some("IBM (libtpms / swtpm)"));
        assert_eq!(
            TpmManufacturer::decode("id:53544D20").name,
            Some("STMicroelectronics")
        );
        assert_eq!(TpmManufacturer::decode("id:00001015").name, None);
    }
}
