//! A software TPM 2.0 for tests, demos and fleet simulations.
//!
//! [`SimTpm`] produces the same wire structures a real TPM does, so everything downstream of
//! the agent (quote verification, credential activation, event-log replay) runs unchanged:
//!
//! * the EK public area is exactly what TCG EK Credential Profile 2.x template **L-1** gives
//!   (RSA-2048, nameAlg SHA-256, attributes `0x000300b2`, PolicyA, AES-128-CFB), with an EK
//!   certificate (TCG SAN directoryName, EKU 2.23.133.8.1) issued by a local [`SimCa`];
//! * the AK is an RSA-2048 restricted signing key (RSASSA/SHA-256) named as the TPM names it;
//! * `TPM2_Quote` yields a `TPMS_ATTEST` (TPM 2.0 Library rev 1.59 Part 2 §10.12) signed with
//!   RSASSA-PKCS1-v1_5/SHA-256 and a marshalled `TPMT_SIGNATURE`;
//! * `TPM2_ActivateCredential` implements the TPM side of Part 1 §24 (RSA-OAEP "IDENTITY",
//!   KDFa "INTEGRITY" HMAC over encIdentity || name, KDFa "STORAGE" AES-128-CFB), reusing
//!   [`vouch_tpm2::credential::kdfa`];
//! * PCR banks SHA-1 and SHA-256, 24 PCRs each, reset as TPM2_Startup(CLEAR) leaves them on a
//!   PC Client TPM (17-22 all ones, the rest zero, PCR 0 at the start locality), and
//!   [`SimTpm::boot_with_event_log`] extends a real TCG event log following
//!   [`vouch_tcglog::replay`]'s rules;
//! * PCR 10 and an IMA measurement list: [`SimTpm::load_ima_list`] replays a real binary list
//!   (SHA-1 template hashes, as `binary_runtime_measurements` has them) into PCR 10 as a
//!   Linux >= 5.11 kernel extends it (SHA-1 bank: the template hash; SHA-256 bank: the template
//!   data hashed with SHA-256, [`vouch_ima::Convention::PerBank`]; violations as all ones), and
//!   [`SimTpm::append_ima_entries`] measures more entries as a running kernel would.
//!
//! # Trust assumptions
//!
//! **This is a TEST and DEMO device. Its "EK" proves nothing**: the private keys are ordinary
//! files (or memory), the CA is generated on the spot, and anyone can mint such a TPM. A
//! production verifier must never list a [`SimCa`] among its default EK roots; a simulated host
//! is trusted only by a deployment that explicitly adds its CA for a demo. The certificate's
//! manufacturer is the unregistered, clearly fake vendor id `id:56534D20` ("VSM ").
//!
//! # Cost
//!
//! RSA-2048 key generation (~0.1 s) dominates creating a TPM. Fleets of thousands inject keys
//! from a [`KeyPool`], generated in parallel once and optionally cached in a directory
//! ([`KeyPool::load_or_generate`]); the rest of a TPM is a few KiB. A quote is one RSA-2048
//! signature.
//!
//! # Persistence
//!
//! A TPM opened with [`SimTpm::open_dir`] keeps its state in that directory so that separate
//! processes (a `vouch agent --tpm sim:DIR` and the test or demo driving it) share one
//! simulated host: keys as PKCS#8 (`ek.pk8`, `ak.pk8`), the EK certificate (`ek-cert.der`)
//! and its CA (`ca-cert.der`, plus `ca.pk8` when the CA was made for this TPM), PCRs and
//! counters (`state.json`), and the event log as `binary_bios_measurements`, where an agent
//! reads it as it would from sysfs, and the IMA measurement list as
//! `ima/binary_runtime_measurements` (see [`IMA_LOG_FILE`]). Every operation takes an exclusive lock on `DIR/lock`,
//! reloads, and writes back atomically (write to a temporary file, then rename).

mod ca;
mod key;
mod sim;
mod store;
mod wire;

pub use ca::SimCa;
pub use key::{KeyPool, SimKey};
pub use sim::{
    BANKS, EVENT_LOG_FILE, EkTemplate, FIRMWARE_VERSION, IMA_LOG_FILE, NUM_PCRS, SimQuote, SimTpm,
    SimTpmBuilder, qualified_name,
};

use std::path::PathBuf;

/// Everything that can go wrong in the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A key, certificate or signature operation failed in the crypto library.
    #[error("simulated TPM crypto failed: {0}")]
    Crypto(&'static str),
    /// A PKCS#8 key was rejected (not RSA-2048, or malformed).
    #[error("key rejected: {0}")]
    KeyRejected(String),
    /// Issuing or loading a certificate failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A PCR outside 0..24 or a bank the simulator does not have.
    #[error(
        "PCR {bank}:{index} does not exist in the simulated TPM (banks sha1, sha256; PCRs 0-23)"
    )]
    NoSuchPcr {
        /// Bank.
        bank: vouch_tpm2::HashAlg,
        /// Index.
        index: u32,
    },
    /// Qualifying data longer than a `TPM2B_DATA` holds.
    #[error("qualifying data of {0} bytes exceeds the 66-byte TPM2B_DATA limit")]
    NonceTooLong(usize),
    /// The event log could not be parsed or replayed.
    #[error("event log: {0}")]
    EventLog(#[from] vouch_tcglog::TcgLogError),
    /// The event log framing failed part-way.
    #[error("event log: {0}")]
    EventLogDecode(#[from] vouch_wire::DecodeError),
    /// An IMA measurement list that does not frame (nothing was measured).
    #[error("IMA measurement list: {0}")]
    Ima(vouch_ima::DecodeError),
    /// ActivateCredential: the credential blob is malformed.
    #[error("credential blob is malformed: {0}")]
    MalformedCredential(&'static str),
    /// ActivateCredential: the seed does not decrypt with this EK (TPM_RC_VALUE).
    #[error("the encrypted seed does not decrypt with this TPM's EK")]
    SeedDecrypt,
    /// ActivateCredential: the integrity HMAC does not match, so the credential was made for
    /// another EK or another key name (TPM_RC_INTEGRITY).
    #[error("credential integrity check failed: made for another EK or another AK name")]
    Integrity,
    /// KDFa failed.
    #[error(transparent)]
    Kdf(#[from] vouch_tpm2::CredentialError),
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state file has the wrong content.
    #[error("{path}: corrupt simulator state: {reason}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
