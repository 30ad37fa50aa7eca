//! The agent's access to its TPM 2.0: the [`Tpm`] trait and the ways to open one.
//!
//! The agent needs five TPM operations (TPM 2.0 Library rev 1.59, Part 3): read the EK and its
//! certificate (TCG EK Credential Profile 2.x: template L-1, NV index `0x01c00002`), create and
//! keep an AK under the EK, `TPM2_ActivateCredential` to prove the AK lives beside the EK, and
//! `TPM2_Quote` with the PCR values it covers. Everything returned is raw TPM wire bytes, for
//! `vouch_tpm2` to decode on the verifier side.
//!
//! Backends, chosen by a [`TpmSpec`] and [`open`]:
//! * `device[:PATH]` and `swtpm:HOST:PORT`: the C TSS (`tss-esapi` 7.7 on libtss2-esys), behind
//!   the default-on `esapi` feature. This crate is the only one in Vouch that links libtss2.
//! * `sim:DIR`: the software TPM of [`vouch_sim`], persisted in `DIR`, for tests and demos.
//!
//! # Trust assumptions
//!
//! The agent trusts its TPM and nothing else here: the bytes it returns are evidence for the
//! verifier, which checks them (signatures over the raw bytes, EK certificate chains, the
//! credential round trip). A simulated TPM proves nothing about a machine; see [`vouch_sim`].

#[cfg(feature = "esapi")]
mod esapi;
mod sim;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use vouch_tpm2::{HashAlg, PcrSelection, PcrValues};

#[cfg(feature = "esapi")]
pub use esapi::EsapiTpm;
pub use vouch_sim::{SimError, SimTpm};

/// NV index of the RSA-2048 EK certificate (TCG EK Credential Profile 2.x §2.2.1.4).
pub const EK_CERT_NV_INDEX: u32 = 0x01c0_0002;
/// The kernel's resource-managed TPM device, the default for `device`.
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";

/// What the agent asks of a TPM.
pub trait Tpm: Send {
    /// EK public area (`TPMT_PUBLIC` bytes, no TPM2B size): RSA-2048, TCG default template L-1.
    fn ek_public(&mut self) -> Result<Vec<u8>, TpmError>;
    /// EK certificate DER from NV index 0x01c00002 (trailing 0xFF padding may be present),
    /// `None` if absent.
    fn ek_certificate(&mut self) -> Result<Option<Vec<u8>>, TpmError>;
    /// AK public area (`TPMT_PUBLIC` bytes): an RSA-2048 restricted signing key (RSASSA/SHA-256)
    /// under the EK, created on first use and persisted so its name is stable across restarts.
    fn ak_public(&mut self) -> Result<Vec<u8>, TpmError>;
    /// TPM2_ActivateCredential of (`TPM2B_ID_OBJECT` contents, `TPM2B_ENCRYPTED_SECRET`
    /// contents) as `vouch_tpm2::credential::CredentialBlob` holds them, for the AK under the
    /// EK. Returns the credential.
    fn activate_credential(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError>;
    /// TPM2_Quote with the AK over `selection`, qualifying data = `nonce`, plus the PCR values
    /// read for the selection (they hash to the quote's pcrDigest).
    fn quote(&mut self, nonce: &[u8], selection: &PcrSelection) -> Result<Quote, TpmError>;
}

/// A quote and the PCR values it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The raw `TPMS_ATTEST` that was signed.
    pub attest: Vec<u8>,
    /// The marshalled `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
    /// The values of the selected PCRs.
    pub pcrs: PcrValues,
}

/// Everything that can go wrong talking to a TPM.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// The simulated TPM failed.
    #[error("simulated TPM: {0}")]
    Sim(#[from] SimError),
    /// A TPM command failed in the TSS or the TPM.
    #[cfg(feature = "esapi")]
    #[error("TPM {op} failed: {source}")]
    Esapi {
        /// The operation.
        op: &'static str,
        /// The TSS error, with the TPM response code.
        source: tss_esapi::Error,
    },
    /// The spec names a backend this build leaves out.
    #[error("{0} needs vouch-tpm's `esapi` feature, which this build leaves out")]
    Unsupported(TpmSpec),
    /// A PCR bank in the selection is not allocated in this TPM.
    #[error("PCR bank {0} is not active in this TPM")]
    BankNotActive(HashAlg),
    /// The PCRs kept changing between the quote and reading them.
    #[error("the PCRs changed while quoting ({0} attempts)")]
    PcrsChanging(u32),
    /// The TPM returned something the TPM 2.0 specification does not allow.
    #[error("unexpected TPM response: {0}")]
    Unexpected(String),
    /// The persisted AK does not load into this TPM (the TPM was cleared or replaced).
    #[error(
        "the AK saved in {path} does not load into this TPM ({reason}); the TPM was cleared or replaced: move the file away to create a new AK (it must then be enrolled again)"
    )]
    AkUnloadable {
        /// The AK file.
        path: PathBuf,
        /// The TSS error.
        reason: String,
    },
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Which TPM to open, as the CLI spells it: `device[:PATH]`, `swtpm:HOST:PORT`, `sim:DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmSpec {
    /// A TPM character device, normally the kernel resource manager `/dev/tpmrm0`.
    Device(PathBuf),
    /// A swtpm on TCP (data port `port`, control port `port + 1`).
    Swtpm {
        /// Host name or address.
        host: String,
        /// Data port.
        port: u16,
    },
    /// A simulated TPM persisted in a directory (created on first open).
    Sim(PathBuf),
}

/// A [`TpmSpec`] string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TPM {spec:?}: {reason} (expected device[:PATH], swtpm:HOST:PORT or sim:DIR)")]
pub struct TpmSpecError {
    spec: String,
    reason: &'static str,
}

impl FromStr for TpmSpec {
    type Err = TpmSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| TpmSpecError {
            spec: s.to_owned(),
            reason,
        };
        let (kind, rest) = match s.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (s, None),
        };
        match (kind, rest) {
            ("device", None) => Ok(Self::Device(PathBuf::from(DEFAULT_DEVICE))),
            ("device", Some("")) => Err(err("empty device path")),
            ("device", Some(path)) => Ok(Self::Device(PathBuf::from(path))),
            ("swtpm", Some(addr)) => {
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| err("swtpm needs HOST:PORT"))?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() || host.contains(',') || host.contains('=') {
                    return Err(err("bad swtpm host"));
                }
                let port: u16 = port.parse().map_err(|_| err("bad swtpm port"))?;
                if port == 0 || port == u16::MAX {
                    return Err(err(
                        "swtpm port must be 1-65534 (the control port is PORT+1)",
                    ));
                }
                Ok(Self::Swtpm {
                    host: host.to_owned(),
                    port,
                })
            }
            ("swtpm", None) => Err(err("swtpm needs HOST:PORT")),
            ("sim", Some("")) | ("sim", None) => Err(err("sim needs a directory")),
            ("sim", Some(dir)) => Ok(Self::Sim(PathBuf::from(dir))),
            _ => Err(err("unknown TPM kind")),
        }
    }
}

impl fmt::Display for TpmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(p) => write!(f, "device:{}", p.display()),
            Self::Swtpm { host, port } if host.contains(':') => write!(f, "swtpm:[{host}]:{port}"),
            Self::Swtpm { host, port } => write!(f, "swtpm:{host}:{port}"),
            Self::Sim(d) => write!(f, "sim:{}", d.display()),
        }
    }
}

/// Open the TPM `spec` names. `state_dir` is where the tss-esapi backend keeps the AK blobs
/// (`ak.tpm2`: TPM2B_PUBLIC || TPM2B_PRIVATE, wrapped by the TPM); the simulator keeps its
/// whole state, AK included, in its own directory and ignores `state_dir`.
///
/// A `device` stays open for the agent's life: the kernel resource manager (`/dev/tpmrm0`)
/// lets other clients in. swtpm on TCP serves one connection at a time and has no resource
/// manager, so a `swtpm` TPM is connected for each operation and released after it (its
/// transient objects flushed), letting operators' tpm2-tools use the same TPM in between.
pub fn open(spec: &TpmSpec, state_dir: &Path) -> Result<Box<dyn Tpm>, TpmError> {
    match spec {
        TpmSpec::Sim(dir) => Ok(Box::new(SimTpm::open_dir(dir)?)),
        #[cfg(feature = "esapi")]
        TpmSpec::Device(_) => Ok(Box::new(EsapiTpm::open(spec, state_dir)?)),
        #[cfg(feature = "esapi")]
        TpmSpec::Swtpm { .. } => {
            // Fail now, not at the first operation, if the TPM cannot be reached.
            drop(EsapiTpm::open(spec, state_dir)?);
            Ok(Box::new(PerOperation {
                spec: spec.clone(),
                state_dir: state_dir.to_owned(),
            }))
        }
        #[cfg(not(feature = "esapi"))]
        TpmSpec::Device(_) | TpmSpec::Swtpm { .. } => {
            let _ = state_dir;
            Err(TpmError::Unsupported(spec.clone()))
        }
    }
}

/// A tss-esapi TPM connected for one operation at a time (see [`open`]).
#[cfg(feature = "esapi")]
#[derive(Debug)]
struct PerOperation {
    spec: TpmSpec,
    state_dir: PathBuf,
}

#[cfg(feature = "esapi")]
impl PerOperation {
    fn connect(&self) -> Result<EsapiTpm, TpmError> {
        EsapiTpm::open(&self.spec, &self.state_dir)
    }
}

#[cfg(feature = "esapi")]
impl Tpm for PerOperation {
    fn ek_public(&mut self) -> Result<Vec<u8>, TpmError> {
        self.connect()?.ek_public()
    }

    fn ek_certificate(&mut self) -> Result<Option<Vec<u8>>, TpmError> {
        self.connect()?.ek_certificate()
    }

    fn ak_public(&mut self) -> Result<Vec<u8>, TpmError> {
        self.connect()?.ak_public()
    }

    fn activate_credential(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        self.connect()?
            .activate_credential(id_object, encrypted_secret)
    }

    fn quote(&mut self, nonce: &[u8], selection: &PcrSelection) -> Result<Quote, TpmError> {
        self.connect()?.quote(nonce, selection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spec_form_and_prints_it_back() {
        for (text, spec) in [
            ("device", TpmSpec::Device("/dev/tpmrm0".into())),
            ("device:/dev/tpm0", TpmSpec::Device("/dev/tpm0".into())),
            (
                "swtpm:127.0.0.1:2321",
                TpmSpec::Swtpm {
                    host: "127.0.0.1".into(),
                    port: 2321,
                },
            ),
            (
                "swtpm:[::1]:2321",
                TpmSpec::Swtpm {
                    host: "::1".into(),
                    port: 2321,
                },
            ),
            ("sim:/tmp/host-1", TpmSpec::Sim("/tmp/host-1".into())),
        ] {
            let parsed: TpmSpec = text.parse().unwrap();
            assert_eq!(parsed, spec, "{text}");
            let again: TpmSpec = parsed.to_string().parse().unwrap();
            assert_eq!(again, spec, "{text} round trip");
        }
    }

    #[test]
    fn rejects_malformed_specs_with_the_reason() {
        for (text, reason) in [
            ("", "unknown TPM kind"),
            ("tpm", "unknown TPM kind"),
            ("device:", "empty device path"),
            ("swtpm", "swtpm needs HOST:PORT"),
            ("swtpm:localhost", "swtpm needs HOST:PORT"),
            ("swtpm::2321", "bad swtpm host"),
            ("swtpm:h,port=1:2321", "bad swtpm host"),
            ("swtpm:localhost:x", "bad swtpm port"),
            (
                "swtpm:localhost:0",
                "swtpm port must be 1-65534 (the control port is PORT+1)",
            ),
            ("sim:", "sim needs a directory"),
            ("sim", "sim needs a directory"),
        ] {
            let err = text.parse::<TpmSpec>().unwrap_err();
            assert_eq!(err.reason, reason, "{text}");
            assert!(err.to_string().contains("expected device[:PATH]"));
        }
    }
}
