//! AR4SI trustworthiness vectors (draft-ietf-rats-ar4si, §2.3 "Trustworthiness Claims").
//!
//! Values are the draft's: 0 is "no claim"; 2-31 affirming, 32-95 warning, 96-127
//! contraindicated (and the negative ranges mirrored, -1 "verifier malfunction" is none).

use serde::{Deserialize, Serialize};

/// AR4SI claim values used by this crate (names as in draft-ietf-rats-ar4si).
pub mod ar4si {
    /// No claim is being made.
    pub const NO_CLAIM: i8 = 0;
    /// instance-identity: recognized_instance.
    pub const TRUSTWORTHY_INSTANCE: i8 = 2;
    /// configuration: approved_config.
    pub const APPROVED_CONFIG: i8 = 2;
    /// configuration: unsafe_config (known vulnerabilities, or an approval that lapsed).
    pub const UNSAFE_CONFIG: i8 = 32;
    /// configuration: unavailable_config (elements relevant to security are unavailable).
    pub const UNAVAIL_CONFIG_ELEMS: i8 = 36;
    /// configuration: unsupportable_config.
    pub const UNSUPPORTABLE_CONFIG: i8 = 96;
    /// executables: approved_boot (only approved executables loaded during boot).
    pub const APPROVED_BOOT: i8 = 3;
    /// executables: unsafe_rt (recognized, but known bugs or vulnerabilities).
    pub const UNSAFE_RUNTIME: i8 = 32;
    /// executables: unrecognized_rt.
    pub const UNRECOGNIZED_RUNTIME: i8 = 33;
    /// executables: contraindicated_rt.
    pub const CONTRAINDICATED_RUNTIME: i8 = 96;
    /// hardware: genuine_hw.
    pub const GENUINE_HARDWARE: i8 = 2;
    /// hardware: unsafe_hw (genuine, known vulnerabilities).
    pub const UNSAFE_HARDWARE: i8 = 32;
    /// hardware: contraindicated_hw.
    pub const CONTRAINDICATED_HARDWARE: i8 = 96;
    /// hardware: unrecognized_hw.
    pub const UNRECOGNIZED_HARDWARE: i8 = 97;
}

/// The overall status (AR4SI tier): the worst tier of any claim made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No claim was made (nothing could be appraised).
    None,
    /// Every claim made is in the affirming tier.
    Affirming,
    /// At least one claim is in the warning tier, none contraindicated.
    Warning,
    /// At least one claim is contraindicated.
    Contraindicated,
}

impl Status {
    /// The tier of one AR4SI value.
    #[must_use]
    pub const fn of(value: i8) -> Self {
        match value {
            -1..=1 => Self::None,
            2..=31 | -32..=-2 => Self::Affirming,
            32..=95 | -96..=-33 => Self::Warning,
            _ => Self::Contraindicated,
        }
    }

    /// The name (`affirming`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }
}

/// One of the eight AR4SI trustworthiness claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustCategory {
    /// instance-identity.
    InstanceIdentity,
    /// configuration.
    Configuration,
    /// executables.
    Executables,
    /// file-system.
    FileSystem,
    /// hardware.
    Hardware,
    /// runtime-opaque.
    RuntimeOpaque,
    /// storage-opaque.
    StorageOpaque,
    /// sourced-data.
    SourcedData,
}

/// The AR4SI trust vector. Unset claims are 0 ("no claim"): this verifier appraises boot
/// evidence and makes no claim about file systems (IMA), runtime or storage opacity, or
/// sourced data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrustVector {
    /// instance-identity.
    pub instance_identity: i8,
    /// configuration.
    pub configuration: i8,
    /// executables.
    pub executables: i8,
    /// file-system.
    pub file_system: i8,
    /// hardware.
    pub hardware: i8,
    /// runtime-opaque.
    pub runtime_opaque: i8,
    /// storage-opaque.
    pub storage_opaque: i8,
    /// sourced-data.
    pub sourced_data: i8,
}

impl TrustVector {
    fn slot(&mut self, c: TrustCategory) -> &mut i8 {
        match c {
            TrustCategory::InstanceIdentity => &mut self.instance_identity,
            TrustCategory::Configuration => &mut self.configuration,
            TrustCategory::Executables => &mut self.executables,
            TrustCategory::FileSystem => &mut self.file_system,
            TrustCategory::Hardware => &mut self.hardware,
            TrustCategory::RuntimeOpaque => &mut self.runtime_opaque,
            TrustCategory::StorageOpaque => &mut self.storage_opaque,
            TrustCategory::SourcedData => &mut self.sourced_data,
        }
    }

    /// The value of one claim.
    #[must_use]
    pub const fn get(&self, c: TrustCategory) -> i8 {
        match c {
            TrustCategory::InstanceIdentity => self.instance_identity,
            TrustCategory::Configuration => self.configuration,
            TrustCategory::Executables => self.executables,
            TrustCategory::FileSystem => self.file_system,
            TrustCategory::Hardware => self.hardware,
            TrustCategory::RuntimeOpaque => self.runtime_opaque,
            TrustCategory::StorageOpaque => self.storage_opaque,
            TrustCategory::SourcedData => self.sourced_data,
        }
    }

    /// Set a claim to `value` unless it already holds a worse one (higher tier, or the same
    /// tier and a higher value). Appraisal only ever makes a claim worse.
    pub fn worsen(&mut self, c: TrustCategory, value: i8) {
        let slot = self.slot(c);
        if (Status::of(value), value) > (Status::of(*slot), *slot) {
            *slot = value;
        }
    }

    /// The overall status: the worst tier among the claims made; `None` when none is made.
    #[must_use]
    pub fn status(&self) -> Status {
        [
            self.instance_identity,
            self.configuration,
            self.executables,
            self.file_system,
            self.hardware,
            self.runtime_opaque,
            self.storage_opaque,
            self.sourced_data,
        ]
        .into_iter()
        .map(Status::of)
        .max()
        .unwrap_or(Status::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_draft_ranges() {
        assert_eq!(Status::of(0), Status::None);
        assert_eq!(Status::of(-1), Status::None);
        assert_eq!(Status::of(2), Status::Affirming);
        assert_eq!(Status::of(3), Status::Affirming);
        assert_eq!(Status::of(32), Status::Warning);
        assert_eq!(Status::of(33), Status::Warning);
        assert_eq!(Status::of(96), Status::Contraindicated);
        assert_eq!(Status::of(97), Status::Contraindicated);
        assert_eq!(Status::of(99), Status::Contraindicated);
    }

    #[test]
    fn empty_vector_is_none_and_worst_claim_wins() {
        let mut v = TrustVector::default();
        assert_eq!(v.status(), Status::None);
        v.worsen(TrustCategory::Hardware, ar4si::GENUINE_HARDWARE);
        assert_eq!(v.status(), Status::Affirming);
        v.worsen(TrustCategory::Executables, ar4si::UNRECOGNIZED_RUNTIME);
        assert_eq!(v.status(), Status::Warning);
        v.worsen(TrustCategory::Hardware, ar4si::CONTRAINDICATED_HARDWARE);
        assert_eq!(v.status(), Status::Contraindicated);
        // Never improves.
        v.worsen(TrustCategory::Hardware, ar4si::GENUINE_HARDWARE);
        assert_eq!(v.hardware, ar4si::CONTRAINDICATED_HARDWARE);
    }
}
