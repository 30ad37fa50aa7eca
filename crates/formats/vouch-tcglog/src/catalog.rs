//! Known firmware builds, named by the digests of the firmware volumes they measure.
//!
//! A log's `EV_S_CRTM_VERSION` names the firmware only when the vendor filled it in (Debian's
//! OVMF measures an empty string), but every UEFI firmware measures its volumes into PCR 0
//! (`EV_EFI_PLATFORM_FIRMWARE_BLOB[2]`). A [`FirmwareCatalog`] maps volume digests, computed
//! from the vendor's image (`vouch firmware catalog`, crate `vouch-fv`), to a build name;
//! [`crate::MachineState::identify_firmware`] then names the build a log booted.
//!
//! The match uses the blob event's own digest, which the replay binds to the quoted PCR 0, so
//! the name is as trustworthy as the catalogue. A volume the firmware writes into before
//! measuring it (EDK II's PEI volume) never matches; one matching volume is enough to name the
//! build, and no match names nothing (it is not, on its own, evidence of tampering).

use serde::{Deserialize, Serialize};

use crate::data::EventData;
use crate::log::EventLog;

/// One volume of a known build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownVolume {
    /// `FvLength`.
    pub length: u64,
    /// SHA-1 of the volume, lower-case hex.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
    /// SHA-384.
    pub sha384: String,
}

/// A known firmware build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownFirmware {
    /// What to call it (`OVMF 2022.11-6+deb12u2`).
    pub name: String,
    /// Where the digests came from (an image file name, a vendor manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its volumes.
    pub volumes: Vec<KnownVolume>,
}

/// Known firmware builds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareCatalog {
    /// The builds.
    pub firmware: Vec<KnownFirmware>,
}

/// The build a log's firmware volume measurement matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifiedFirmware {
    /// The build's name.
    pub name: String,
    /// Where its digests came from.
    pub source: Option<String>,
    /// The blob event that matched.
    pub event: usize,
    /// `bank:digest` of that event.
    pub digest: String,
}

impl FirmwareCatalog {
    /// Add a build; a build of the same name is replaced.
    pub fn insert(&mut self, fw: KnownFirmware) {
        self.firmware.retain(|f| f.name != fw.name);
        self.firmware.push(fw);
    }

    /// The first build one of whose volumes a PCR 0 firmware blob event of `log` measures
    /// (same length, same digest in one of the event's banks).
    #[must_use]
    pub fn identify(&self, log: &EventLog<'_>) -> Option<IdentifiedFirmware> {
        for ev in log.events().map_while(Result::ok) {
            let EventData::FirmwareBlob(blob) = ev.decoded() else {
                continue;
            };
            if ev.pcr() != 0 {
                continue;
            }
            // Strongest bank first: the name cites the best digest that matched.
            let mut digests: Vec<_> = ev.digests().iter().collect();
            digests.sort_by_key(|d| core::cmp::Reverse(d.bytes().len()));
            for d in digests {
                let Some(alg) = d.alg() else { continue };
                let hex = vouch_wire::hex_lower(d.bytes());
                let found = self.firmware.iter().find(|f| {
                    f.volumes.iter().any(|v| {
                        v.length == blob.length
                            && match alg.name() {
                                "sha1" => v.sha1 == hex,
                                "sha256" => v.sha256 == hex,
                                "sha384" => v.sha384 == hex,
                                _ => false,
                            }
                    })
                });
                if let Some(f) = found {
                    return Some(IdentifiedFirmware {
                        name: f.name.clone(),
                        source: f.source.clone(),
                        event: ev.index(),
                        digest: format!("{}:{hex}", alg.name()),
                    });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    const LOG: &[u8] = include_bytes!("../../../../testdata/eventlogs/qemu-ubuntu2004-1.bin");

    /// The digests of the log's second firmware blob event (the DXE volume, 0xb00000 bytes).
    fn dxe_volume(log: &EventLog<'_>) -> KnownVolume {
        let ev = log
            .events()
            .map(Result::unwrap)
            .filter(|e| matches!(e.decoded(), EventData::FirmwareBlob(_)))
            .nth(1)
            .unwrap();
        let hex = |bank: &str| {
            ev.digests()
                .iter()
                .find(|d| d.alg().is_some_and(|a| a.name() == bank))
                .map(|d| vouch_wire::hex_lower(d.bytes()))
                .unwrap_or_default()
        };
        KnownVolume {
            length: 0xB0_0000,
            sha1: hex("sha1"),
            sha256: hex("sha256"),
            sha384: "00".repeat(48),
        }
    }

    #[test]
    fn a_measured_volume_in_the_catalogue_names_the_build() {
        let log = EventLog::parse(LOG).unwrap();
        let mut cat = FirmwareCatalog::default();
        cat.insert(KnownFirmware {
            name: "other".into(),
            source: None,
            volumes: vec![KnownVolume {
                length: 0xB0_0000,
                sha1: "11".repeat(20),
                sha256: "11".repeat(32),
                sha384: "11".repeat(48),
            }],
        });
        cat.insert(KnownFirmware {
            name: "OVMF test build".into(),
            source: Some("OVMF_CODE.fd".into()),
            volumes: vec![dxe_volume(&log)],
        });
        let id = cat.identify(&log).unwrap();
        assert_eq!(id.name, "OVMF test build");
        assert_eq!(id.event, 3);
        assert!(id.digest.starts_with("sha1:") || id.digest.starts_with("sha256:"));
        let mut state = crate::MachineState::from_log(&log).unwrap();
        state.identify_firmware(&log, &cat);
        assert_eq!(state.firmware_identified, Some(id));
    }

    #[test]
    fn same_digest_with_another_length_or_no_catalogue_names_nothing() {
        let log = EventLog::parse(LOG).unwrap();
        let mut v = dxe_volume(&log);
        v.length = 0xE_0000;
        let cat = FirmwareCatalog {
            firmware: vec![KnownFirmware {
                name: "x".into(),
                source: None,
                volumes: vec![v],
            }],
        };
        assert_eq!(cat.identify(&log), None);
        assert_eq!(FirmwareCatalog::default().identify(&log), None);
        // Without identification the state's JSON has no such key (stored baselines unchanged).
        let state = crate::MachineState::from_log(&log).unwrap();
        let json = serde_json::to_value(&state).unwrap();
        assert!(json.get("firmware_identified").is_none());
    }

    #[test]
    fn catalogue_round_trips_and_refuses_unknown_fields() {
        let log = EventLog::parse(LOG).unwrap();
        let cat = FirmwareCatalog {
            firmware: vec![KnownFirmware {
                name: "b".into(),
                source: None,
                volumes: vec![dxe_volume(&log)],
            }],
        };
        let text = serde_json::to_string(&cat).unwrap();
        assert_eq!(serde_json::from_str::<FirmwareCatalog>(&text).unwrap(), cat);
        assert!(serde_json::from_str::<FirmwareCatalog>(r#"{"firmware":[],"x":1}"#).is_err());
    }
}
