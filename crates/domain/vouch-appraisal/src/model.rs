//! Shared vocabulary: components, where a claim came from, labels and selectors.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A part of the boot that rules and reference values speak about (not a raw PCR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// PCR 0: S-CRTM version, firmware blobs, platform events.
    PlatformFirmware,
    /// PCR 1: firmware configuration (boot variables, platform configuration).
    FirmwareConfig,
    /// PCR 2 and 3: option ROMs and their configuration.
    OptionRoms,
    /// PCR 4: boot applications (shim, boot loader, kernel loaded by shim), in order.
    BootChain,
    /// PCR 7: Secure Boot state, PK/KEK/db/dbx, authorities.
    SecureBoot,
    /// PCR 8 and 9: GRUB commands, kernel command line, files the boot loader read.
    Kernel,
    /// Raw PCR values: the fallback for PCRs no component describes.
    RawPcrs,
}

impl Component {
    /// Every component, in PCR order.
    pub const ALL: [Self; 7] = [
        Self::PlatformFirmware,
        Self::FirmwareConfig,
        Self::OptionRoms,
        Self::BootChain,
        Self::SecureBoot,
        Self::Kernel,
        Self::RawPcrs,
    ];

    /// The component whose measurements a PCR holds (PC Client PFP §3.3.4.1 PCR usage).
    #[must_use]
    pub const fn of_pcr(pcr: u32) -> Option<Self> {
        match pcr {
            0 => Some(Self::PlatformFirmware),
            1 => Some(Self::FirmwareConfig),
            2 | 3 => Some(Self::OptionRoms),
            4 => Some(Self::BootChain),
            7 => Some(Self::SecureBoot),
            8 | 9 => Some(Self::Kernel),
            _ => None,
        }
    }

    /// The PCRs this component covers (none for [`Component::RawPcrs`]: its rule lists them).
    #[must_use]
    pub const fn pcrs(self) -> &'static [u32] {
        match self {
            Self::PlatformFirmware => &[0],
            Self::FirmwareConfig => &[1],
            Self::OptionRoms => &[2, 3],
            Self::BootChain => &[4],
            Self::SecureBoot => &[7],
            Self::Kernel => &[8, 9],
            Self::RawPcrs => &[],
        }
    }

    /// The name used in policies and reasons.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::PlatformFirmware => "platform_firmware",
            Self::FirmwareConfig => "firmware_config",
            Self::OptionRoms => "option_roms",
            Self::BootChain => "boot_chain",
            Self::SecureBoot => "secure_boot",
            Self::Kernel => "kernel",
            Self::RawPcrs => "raw_pcrs",
        }
    }
}

/// A name that is not a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown component {0:?} (one of platform_firmware, firmware_config, option_roms, boot_chain, secure_boot, kernel, raw_pcrs)"
)]
pub struct UnknownComponent(pub String);

impl core::str::FromStr for Component {
    type Err = UnknownComponent;

    /// The snake_case name (`platform_firmware`); `-` is accepted for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want = s.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|c| c.name() == want)
            .ok_or_else(|| UnknownComponent(s.to_owned()))
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a claim came from: the event that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventRef {
    /// Event index in the log (0 is the Spec ID event of a crypto-agile log).
    pub index: usize,
    /// PCR.
    pub pcr: u32,
    /// Event type name (`EV_EFI_PLATFORM_FIRMWARE_BLOB`, or hex when unknown).
    pub event_type: String,
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} (PCR {}, {})",
            self.index, self.pcr, self.event_type
        )
    }
}

/// Host labels: set at enrolment or by operators (`site`, `role`, `cohort`), and detected
/// from evidence (`detected.firmware_version`; the verifier adds `detected.tpm_vendor` and
/// `detected.tpm_model` from the EK certificate).
pub type Labels = BTreeMap<String, String>;

/// Which hosts a policy, reference value or campaign applies to.
///
/// There is no implicit "match everything": an empty label map is refused by
/// [`Selector::validate`]; a fleet-wide rule says [`Selector::All`] explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Every host (must be written explicitly).
    All,
    /// Hosts carrying every one of these labels with these values.
    Labels(BTreeMap<String, String>),
}

/// A selector that selects nothing it could be held to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a label selector must name at least one label (write `all` to select every host)")]
pub struct EmptySelector;

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad selector {0:?}: write `all` or comma-separated key=value labels (cohort=r750,site=lon)"
)]
pub struct BadSelector(pub String);

impl core::str::FromStr for Selector {
    type Err = BadSelector;

    /// `all`, or `key=value[,key=value...]` (the form [`Selector`]'s `Display` writes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "all" {
            return Ok(Self::All);
        }
        let mut m = BTreeMap::new();
        for term in s.split(',') {
            let (k, v) = term
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| BadSelector(s.to_owned()))?;
            if m.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(BadSelector(s.to_owned()));
            }
        }
        Ok(Self::Labels(m))
    }
}

impl Selector {
    /// A selector on one label.
    #[must_use]
    pub fn label(key: &str, value: &str) -> Self {
        Self::Labels(BTreeMap::from([(key.to_owned(), value.to_owned())]))
    }

    /// Refuse an empty label map.
    pub fn validate(&self) -> Result<(), EmptySelector> {
        match self {
            Self::Labels(m) if m.is_empty() => Err(EmptySelector),
            _ => Ok(()),
        }
    }

    /// Does this selector select a host with `labels`? An empty label map selects nothing.
    #[must_use]
    pub fn selects(&self, labels: &Labels) -> bool {
        match self {
            Self::All => true,
            Self::Labels(m) => {
                !m.is_empty() && m.iter().all(|(k, v)| labels.get(k).is_some_and(|x| x == v))
            }
        }
    }

    /// How specific the selector is (number of labels; `All` is 0).
    #[must_use]
    pub fn specificity(&self) -> usize {
        match self {
            Self::All => 0,
            Self::Labels(m) => m.len(),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Labels(m) => {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                Ok(())
            }
        }
    }
}

/// A measurement's position in a log: PCR, event type and its ordinal among the events of that
/// PCR and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    /// PCR.
    pub pcr: u32,
    /// Event type name.
    pub event_type: String,
    /// 0 for the first event of this PCR and type, 1 for the second, ...
    pub ordinal: u32,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PCR {} {} #{}",
            self.pcr,
            self.event_type,
            self.ordinal.saturating_add(1)
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn selector_text_round_trips_through_display() {
        for text in ["all", "cohort=r750", "cohort=r750,site=lon"] {
            let s: Selector = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        let s: Selector = " site = lon , cohort=r750 ".parse().unwrap();
        assert_eq!(s, "cohort=r750,site=lon".parse().unwrap());
    }

    #[test]
    fn selector_text_without_labels_or_with_repeats_is_refused() {
        for bad in ["", "cohort", "=x", "a=1,a=2", "a=1,"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn component_names_parse_as_serde_writes_them() {
        for c in Component::ALL {
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json.as_str().unwrap().parse::<Component>().unwrap(), c);
        }
        assert_eq!(
            "boot-chain".parse::<Component>().unwrap(),
            Component::BootChain
        );
        assert!("pcr0".parse::<Component>().is_err());
    }
}
