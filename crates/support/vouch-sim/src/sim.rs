//! The simulated TPM: EK, AK, PCRs, quote, credential activation, boot and tampering.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::cipher::{AES_128, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeyPair, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use vouch_tcglog::EventLog;
use vouch_tpm2::credential::kdfa;
use vouch_tpm2::{Digest, HashAlg, PcrSelection, PcrValues, PublicArea};
use vouch_wire::Reader;

use crate::SimError;
use crate::ca::SimCa;
use crate::key::SimKey;
use crate::store;
use crate::wire::tpm2b;

/// The PCR banks a simulated TPM has, in TPM_ALG_ID order.
pub const BANKS: [HashAlg; 2] = [HashAlg::Sha1, HashAlg::Sha256];
/// PCRs per bank (PC Client: 24).
pub const NUM_PCRS: u32 = 24;
/// `firmwareVersion` reported in every quote.
pub const FIRMWARE_VERSION: u64 = 0x2024_0001_0000_0001;
/// Where a persisted simulator keeps its event log, named as Linux's securityfs names it.
pub const EVENT_LOG_FILE: &str = "binary_bios_measurements";

/// Where a persisted simulator keeps its IMA measurement list (binary, SHA-1 template
/// hashes), relative to its directory; `vouch agent --tpm sim:DIR` reads it by default.
pub const IMA_LOG_FILE: &str = "ima/binary_runtime_measurements";

const PCRS: usize = NUM_PCRS as usize;
const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;
const TPM_ALG_RSASSA: u16 = 0x0014;
/// TPM2B_DATA holds at most sizeof(TPMT_HA).
const MAX_QUALIFYING_DATA: usize = 66;

/// The TCG EK Credential Profile 2.x default EK templates the simulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkTemplate {
    /// Template L-1: RSA-2048, SHA-256, AES-128-CFB, PolicyA (Profile 2.x §B.3.3).
    RsaL1,
}

impl EkTemplate {
    /// PolicyA_SHA256: TPM2_PolicySecret(TPM_RH_ENDORSEMENT).
    pub const POLICY_A_SHA256: [u8; 32] = [
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7,
        0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14,
        0x69, 0xaa,
    ];
    /// fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt.
    pub const ATTRIBUTES: u32 = 0x0003_00b2;

    /// The `TPMT_PUBLIC` this template yields for an RSA key with `modulus`.
    pub fn public_area(self, modulus: &[u8]) -> Result<Vec<u8>, SimError> {
        let mut out = Vec::with_capacity(320);
        out.extend_from_slice(&0x0001u16.to_be_bytes()); // TPM_ALG_RSA
        out.extend_from_slice(&HashAlg::Sha256.tpm_alg_id().to_be_bytes());
        out.extend_from_slice(&Self::ATTRIBUTES.to_be_bytes());
        tpm2b(&mut out, &Self::POLICY_A_SHA256)?;
        out.extend_from_slice(&0x0006u16.to_be_bytes()); // AES
        out.extend_from_slice(&128u16.to_be_bytes());
        out.extend_from_slice(&0x0043u16.to_be_bytes()); // CFB
        out.extend_from_slice(&0x0010u16.to_be_bytes()); // scheme NULL
        out.extend_from_slice(&2048u16.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes()); // exponent: default 65537
        tpm2b(&mut out, modulus)?;
        Ok(out)
    }
}

/// The AK's `TPMT_PUBLIC`: RSA-2048 restricted signing key, RSASSA/SHA-256, as
/// `tpm2_createak -G rsa -g sha256 -s rsassa` and tss-esapi's `create_ak` make it.
fn ak_public_area(modulus: &[u8]) -> Result<Vec<u8>, SimError> {
    // fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign
    const ATTRIBUTES: u32 = 0x0005_0072;
    let mut out = Vec::with_capacity(300);
    out.extend_from_slice(&0x0001u16.to_be_bytes());
    out.extend_from_slice(&HashAlg::Sha256.tpm_alg_id().to_be_bytes());
    out.extend_from_slice(&ATTRIBUTES.to_be_bytes());
    tpm2b(&mut out, &[])?;
    out.extend_from_slice(&0x0010u16.to_be_bytes()); // symmetric NULL
    out.extend_from_slice(&TPM_ALG_RSASSA.to_be_bytes());
    out.extend_from_slice(&HashAlg::Sha256.tpm_alg_id().to_be_bytes());
    out.extend_from_slice(&2048u16.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    tpm2b(&mut out, modulus)?;
    Ok(out)
}

fn name_of(public: &[u8]) -> Result<Vec<u8>, SimError> {
    PublicArea::decode_tpmt(public)
        .map(|p| p.name())
        .map_err(|_| SimError::Crypto("own public area does not decode"))
}

/// A qualified name (TPM 2.0 Part 1 §16.6): `nameAlg || H_nameAlg(parentQN || name)`; the
/// qualified name of a hierarchy is its 4-byte handle. The name's algorithm is used.
#[must_use]
pub fn qualified_name(parent_qualified_name: &[u8], name: &[u8]) -> Vec<u8> {
    let alg = name
        .get(..2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .and_then(|id| HashAlg::from_tpm_alg_id(u16::from_be_bytes(id)))
        .unwrap_or(HashAlg::Sha256);
    let mut out = alg.tpm_alg_id().to_be_bytes().to_vec();
    out.extend_from_slice(alg.hash_parts(&[parent_qualified_name, name]).as_bytes());
    out
}

fn bank_slot(alg: HashAlg) -> Option<usize> {
    BANKS.iter().position(|b| *b == alg)
}

fn all_ones(alg: HashAlg) -> Digest {
    let ones = [0xFFu8; vouch_tpm2::MAX_DIGEST];
    Digest::new(alg, ones.get(..alg.digest_len()).unwrap_or_default()).unwrap_or(alg.zero())
}

/// The value TPM2_Startup(CLEAR) gives a PCR on a PC Client TPM (PTP §4.6.2): 17-22 all
/// ones (only a dynamic launch resets them to zero), PCR 0 at the start locality, others zero.
fn startup_value(alg: HashAlg, index: u32, pcr0_locality: u8) -> Digest {
    match index {
        0 => Digest::locality_start(alg, pcr0_locality),
        17..=22 => all_ones(alg),
        _ => alg.zero(),
    }
}

/// PCRs, counters, clock and event log: everything but the keys.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) pcrs: [[Digest; PCRS]; BANKS.len()],
    pub(crate) reset_count: u32,
    pub(crate) restart_count: u32,
    pub(crate) clock_epoch_unix_ms: u64,
    pub(crate) last_clock_ms: u64,
    pub(crate) event_log: Vec<u8>,
    pub(crate) log_changed: bool,
    /// The IMA list of an in-memory TPM (a persisted one keeps it in [`IMA_LOG_FILE`]).
    pub(crate) ima_log: Vec<u8>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl State {
    pub(crate) fn fresh() -> Self {
        let mut s = Self {
            pcrs: [[HashAlg::Sha1.zero(); PCRS]; BANKS.len()],
            reset_count: 0,
            restart_count: 0,
            clock_epoch_unix_ms: unix_ms(),
            last_clock_ms: 0,
            event_log: Vec::new(),
            log_changed: true,
            ima_log: Vec::new(),
        };
        s.reset_pcrs(0);
        s
    }

    fn reset_pcrs(&mut self, pcr0_locality: u8) {
        for (alg, bank) in BANKS.iter().zip(self.pcrs.iter_mut()) {
            for (i, v) in (0u32..).zip(bank.iter_mut()) {
                *v = startup_value(*alg, i, pcr0_locality);
            }
        }
    }

    /// _TPM_Init + TPM2_Startup(CLEAR) after a reset: resetCount + 1, restartCount 0.
    fn tpm_reset(&mut self, pcr0_locality: u8) {
        self.reset_pcrs(pcr0_locality);
        self.reset_count = self.reset_count.saturating_add(1);
        self.restart_count = 0;
    }

    fn pcr_mut(&mut self, alg: HashAlg, index: u32) -> Result<&mut Digest, SimError> {
        bank_slot(alg)
            .and_then(|s| self.pcrs.get_mut(s))
            .and_then(|b| b.get_mut(usize::try_from(index).ok()?))
            .ok_or(SimError::NoSuchPcr { bank: alg, index })
    }

    fn pcr(&self, alg: HashAlg, index: u32) -> Option<Digest> {
        bank_slot(alg)
            .and_then(|s| self.pcrs.get(s))
            .and_then(|b| b.get(usize::try_from(index).ok()?))
            .copied()
    }

    /// TPM Clock in ms: monotonic, advancing with wall time since the TPM was made.
    fn clock(&mut self) -> u64 {
        let now = unix_ms().saturating_sub(self.clock_epoch_unix_ms);
        self.last_clock_ms = self.last_clock_ms.max(now);
        self.last_clock_ms
    }

    fn set_log(&mut self, log: Vec<u8>) {
        self.event_log = log;
        self.log_changed = true;
    }
}

struct Ak {
    key: SimKey,
    pair: KeyPair,
    public: Vec<u8>,
    name: Vec<u8>,
    qualified_name: Vec<u8>,
}

/// A quote as the simulated TPM returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimQuote {
    /// The raw `TPMS_ATTEST` that was signed.
    pub attest: Vec<u8>,
    /// The marshalled `TPMT_SIGNATURE` (RSASSA, SHA-256).
    pub signature: Vec<u8>,
    /// The values of the quoted PCRs.
    pub pcrs: PcrValues,
}

/// Options for a new simulated TPM: inject keys and a CA to make creation cheap.
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct SimTpmBuilder {
    ca: Option<Arc<SimCa>>,
    ek: Option<SimKey>,
    ak: Option<SimKey>,
}

impl SimTpmBuilder {
    /// Issue the EK certificate with this CA (default: a fresh CA per TPM).
    pub fn ca(mut self, ca: Arc<SimCa>) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Use this EK private key (default: generate one).
    pub fn ek_key(mut self, key: SimKey) -> Self {
        self.ek = Some(key);
        self
    }

    /// Use this AK private key when the AK is first used (default: generate it then).
    pub fn ak_key(mut self, key: SimKey) -> Self {
        self.ak = Some(key);
        self
    }

    /// An in-memory TPM.
    pub fn build(self) -> Result<SimTpm, SimError> {
        let (tpm, _) = self.assemble(None)?;
        Ok(tpm)
    }

    /// A TPM persisted in `dir` (created if absent); fails if `dir` already holds one.
    pub fn create_dir(self, dir: &Path) -> Result<SimTpm, SimError> {
        std::fs::create_dir_all(dir).map_err(SimError::io(dir))?;
        let _lock = store::lock(dir)?;
        if store::exists(dir) {
            return Err(SimError::CorruptState {
                path: dir.to_path_buf(),
                reason: "a simulated TPM already lives here; open it with SimTpm::open_dir".into(),
            });
        }
        let own_ca = self.ca.is_none();
        let (tpm, ca) = self.assemble(Some(dir.to_path_buf()))?;
        if own_ca {
            store::write_atomic(&dir.join(store::CA_KEY), ca.key_pkcs8())?;
        }
        store::write_atomic(&dir.join(store::CA_CERT), &tpm.ca_cert)?;
        store::write_atomic(&dir.join(store::EK_CERT), &tpm.ek_cert)?;
        if let Some(ak) = &tpm.pending_ak {
            store::write_atomic(&dir.join(store::AK_KEY), ak.pkcs8())?;
        }
        // The EK key last: its presence marks a complete TPM.
        store::save_state(dir, &tpm.state)?;
        store::write_atomic(&dir.join(store::EK_KEY), tpm.ek.pkcs8())?;
        Ok(tpm)
    }

    fn assemble(self, dir: Option<PathBuf>) -> Result<(SimTpm, Arc<SimCa>), SimError> {
        let ca = match self.ca {
            Some(ca) => ca,
            None => Arc::new(SimCa::generate()?),
        };
        let ek = match self.ek {
            Some(k) => k,
            None => SimKey::generate()?,
        };
        let ek_cert = ca.issue_ek_cert(&ek)?;
        let tpm = SimTpm::from_parts(
            ek,
            ek_cert,
            ca.cert_der().to_vec(),
            self.ak,
            State::fresh(),
            dir,
        )?;
        Ok((tpm, ca))
    }
}

/// A simulated TPM 2.0. See the crate documentation for what it models and its trust status.
pub struct SimTpm {
    ek: SimKey,
    ek_public: Vec<u8>,
    ek_qualified_name: Vec<u8>,
    ek_cert: Vec<u8>,
    ca_cert: Vec<u8>,
    ak: Option<Ak>,
    pending_ak: Option<SimKey>,
    state: State,
    dir: Option<PathBuf>,
}

impl core::fmt::Debug for SimTpm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimTpm")
            .field("dir", &self.dir)
            .field("reset_count", &self.state.reset_count)
            .field("has_ak", &self.ak.is_some())
            .finish_non_exhaustive()
    }
}

impl SimTpm {
    /// Options for a new TPM.
    pub fn builder() -> SimTpmBuilder {
        SimTpmBuilder::default()
    }

    /// A fresh in-memory TPM with new keys and its own CA (one RSA keygen now, one at first
    /// AK use).
    pub fn new() -> Result<Self, SimError> {
        Self::builder().build()
    }

    /// Open the TPM persisted in `dir`, creating one with fresh keys and CA if `dir` holds none.
    pub fn open_dir(dir: &Path) -> Result<Self, SimError> {
        if !store::exists(dir) {
            match Self::builder().create_dir(dir) {
                Ok(tpm) => return Ok(tpm),
                // Another process created it first: open theirs.
                Err(SimError::CorruptState { .. }) if store::exists(dir) => {}
                Err(e) => return Err(e),
            }
        }
        let _lock = store::lock(dir)?;
        let ek = SimKey::from_pkcs8(&store::read(&dir.join(store::EK_KEY))?)?;
        let ek_cert = store::read(&dir.join(store::EK_CERT))?;
        let ca_cert = store::read(&dir.join(store::CA_CERT))?;
        let state = store::load_state(dir)?;
        let mut tpm = Self::from_parts(ek, ek_cert, ca_cert, None, state, Some(dir.to_path_buf()))?;
        if let Some(ak) = store::read_optional(&dir.join(store::AK_KEY))? {
            tpm.install_ak(SimKey::from_pkcs8(&ak)?)?;
        }
        Ok(tpm)
    }

    fn from_parts(
        ek: SimKey,
        ek_cert: Vec<u8>,
        ca_cert: Vec<u8>,
        ak: Option<SimKey>,
        state: State,
        dir: Option<PathBuf>,
    ) -> Result<Self, SimError> {
        let ek_public = EkTemplate::RsaL1.public_area(ek.modulus())?;
        let ek_qualified_name =
            qualified_name(&TPM_RH_ENDORSEMENT.to_be_bytes(), &name_of(&ek_public)?);
        Ok(Self {
            ek,
            ek_public,
            ek_qualified_name,
            ek_cert,
            ca_cert,
            ak: None,
            pending_ak: ak,
            state,
            dir,
        })
    }

    fn install_ak(&mut self, key: SimKey) -> Result<(), SimError> {
        let public = ak_public_area(key.modulus())?;
        let name = name_of(&public)?;
        let qualified_name = qualified_name(&self.ek_qualified_name, &name);
        let pair = key.signing_pair()?;
        self.ak = Some(Ak {
            key,
            pair,
            public,
            name,
            qualified_name,
        });
        Ok(())
    }

    /// Run `f` on the current state. A persisted TPM is locked, reloaded first and, if
    /// `mutates`, saved after.
    fn transact<T>(
        &mut self,
        mutates: bool,
        f: impl FnOnce(&mut Self) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let Some(dir) = self.dir.clone() else {
            return f(self);
        };
        let _lock = store::lock(&dir)?;
        self.state = store::load_state(&dir)?;
        if self.ak.is_none()
            && let Some(ak) = store::read_optional(&dir.join(store::AK_KEY))?
        {
            self.install_ak(SimKey::from_pkcs8(&ak)?)?;
        }
        let had_ak = self.ak.is_some();
        let out = f(self)?;
        if !had_ak && let Some(ak) = &self.ak {
            store::write_atomic(&dir.join(store::AK_KEY), ak.key.pkcs8())?;
        }
        if mutates {
            store::save_state(&dir, &self.state)?;
        }
        Ok(out)
    }

    fn ensure_ak(&mut self) -> Result<&Ak, SimError> {
        if self.ak.is_none() {
            let key = match self.pending_ak.take() {
                Some(k) => k,
                None => SimKey::generate()?,
            };
            self.install_ak(key)?;
        }
        self.ak
            .as_ref()
            .ok_or(SimError::Crypto("AK missing after creation"))
    }

    /// The directory a persisted TPM lives in.
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reload a persisted TPM's state (another process may have changed it).
    pub fn refresh(&mut self) -> Result<(), SimError> {
        self.transact(false, |_| Ok(()))
    }

    /// The EK `TPMT_PUBLIC` (template L-1).
    #[must_use]
    pub fn ek_public(&self) -> &[u8] {
        &self.ek_public
    }

    /// The EK certificate (DER, no NV padding).
    #[must_use]
    pub fn ek_certificate(&self) -> &[u8] {
        &self.ek_cert
    }

    /// The certificate of the CA that issued the EK certificate (DER).
    #[must_use]
    pub fn ca_certificate(&self) -> &[u8] {
        &self.ca_cert
    }

    /// The AK `TPMT_PUBLIC`, creating the AK on first use.
    pub fn ak_public(&mut self) -> Result<Vec<u8>, SimError> {
        self.transact(false, |t| Ok(t.ensure_ak()?.public.clone()))
    }

    /// The AK name, creating the AK on first use.
    pub fn ak_name(&mut self) -> Result<Vec<u8>, SimError> {
        self.transact(false, |t| Ok(t.ensure_ak()?.name.clone()))
    }

    /// resetCount as of the last operation.
    #[must_use]
    pub const fn reset_count(&self) -> u32 {
        self.state.reset_count
    }

    /// restartCount as of the last operation.
    #[must_use]
    pub const fn restart_count(&self) -> u32 {
        self.state.restart_count
    }

    /// The event log as of the last operation (empty after a plain [`SimTpm::reboot`]).
    #[must_use]
    pub fn event_log(&self) -> &[u8] {
        &self.state.event_log
    }

    /// One PCR as of the last operation.
    #[must_use]
    pub fn pcr(&self, bank: HashAlg, index: u32) -> Option<Digest> {
        self.state.pcr(bank, index)
    }

    /// TPM2_PCR_Read of `selection`.
    pub fn read_pcrs(&mut self, selection: &PcrSelection) -> Result<PcrValues, SimError> {
        self.transact(false, |t| t.collect(selection))
    }

    fn collect(&self, selection: &PcrSelection) -> Result<PcrValues, SimError> {
        let mut out = PcrValues::new();
        for (bank, index) in selection.iter() {
            let v = self
                .state
                .pcr(bank, index)
                .ok_or(SimError::NoSuchPcr { bank, index })?;
            out.insert(index, v);
        }
        Ok(out)
    }

    /// TPM2_PCR_Extend of one bank: `PCR = H(PCR || digest)`. The log is not touched, so
    /// extending outside a boot makes the log disagree with the PCRs (tampering).
    pub fn extend(&mut self, pcr: u32, digest: &Digest) -> Result<(), SimError> {
        self.transact(true, |t| {
            t.state
                .pcr_mut(digest.alg(), pcr)?
                .extend(digest.as_bytes());
            Ok(())
        })
    }

    /// Replace the event log without touching the PCRs (tampering).
    pub fn set_event_log(&mut self, log: &[u8]) -> Result<(), SimError> {
        self.transact(true, |t| {
            t.state.set_log(log.to_vec());
            Ok(())
        })
    }

    /// A reboot with no measurements: TPM reset (resetCount + 1, restartCount 0), PCRs at their
    /// startup values, the event log emptied.
    pub fn reboot(&mut self) -> Result<(), SimError> {
        self.transact(true, |t| {
            t.state.tpm_reset(0);
            t.state.set_log(Vec::new());
            t.clear_ima()
        })
    }

    /// Boot "as" the machine that wrote `log`: a TPM reset, PCR 0 started at the locality the
    /// log's `StartupLocality`/H-CRTM event gives, then every extended event's digests
    /// extended into the banks the simulator has, in log order (the rules of
    /// [`vouch_tcglog::replay`]: a PCR 17-22 the log extends starts from zero, as after a
    /// dynamic launch). The log becomes this TPM's event log. A log that does not frame is
    /// refused before anything changes.
    pub fn boot_with_event_log(&mut self, log: &[u8]) -> Result<(), SimError> {
        let parsed = EventLog::parse(log)?;
        let replay = vouch_tcglog::replay(&parsed)?;
        self.transact(true, |t| {
            t.state.tpm_reset(replay.pcr0_locality());
            t.clear_ima()?;
            let mut started = [0u32; BANKS.len()];
            for ev in parsed.events() {
                let ev = ev?;
                let pcr = ev.pcr();
                if !ev.is_extended() || pcr >= NUM_PCRS {
                    continue;
                }
                let bit = 1u32.checked_shl(pcr).unwrap_or(0);
                for d in ev.digests().iter() {
                    let Some(digest) = d.digest() else { continue };
                    let Some(slot) = bank_slot(digest.alg()) else {
                        continue;
                    };
                    let Some(mask) = started.get_mut(slot) else {
                        continue;
                    };
                    let first = *mask & bit == 0;
                    *mask |= bit;
                    let value = t.state.pcr_mut(digest.alg(), pcr)?;
                    if first && (17..=22).contains(&pcr) {
                        *value = digest.alg().zero();
                    }
                    value.extend(digest.as_bytes());
                }
            }
            t.state.set_log(log.to_vec());
            Ok(())
        })
    }

    /// A new boot has an empty IMA list.
    fn clear_ima(&mut self) -> Result<(), SimError> {
        self.state.ima_log.clear();
        if let Some(dir) = &self.dir {
            let path = dir.join(IMA_LOG_FILE);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SimError::io(path)(e)),
            }
        }
        Ok(())
    }

    /// Extend every complete entry of `entries` (binary, SHA-1 template hashes) into PCR 10
    /// and append them to the list. The whole input must frame, else nothing changes.
    fn measure_ima(&mut self, entries: &[u8], replace: bool) -> Result<(), SimError> {
        let list = vouch_ima::MeasurementList::with_template_hash_alg(entries, HashAlg::Sha1);
        for e in list.entries() {
            e.map_err(SimError::Ima)?;
        }
        let start = if replace {
            BANKS.map(HashAlg::zero)
        } else {
            BANKS.map(|b| {
                self.state
                    .pcr(b, vouch_ima::IMA_PCR)
                    .unwrap_or_else(|| b.zero())
            })
        };
        let mut pcr = vouch_ima::RunningPcr10::resume(&start, 0, vouch_ima::Convention::PerBank);
        for e in list.entries() {
            pcr.consume(&e.map_err(SimError::Ima)?)
                .map_err(|e| SimError::CorruptState {
                    path: PathBuf::from(IMA_LOG_FILE),
                    reason: e.to_string(),
                })?;
        }
        for v in pcr.values() {
            *self.state.pcr_mut(v.alg(), vouch_ima::IMA_PCR)? = v;
        }
        match &self.dir {
            Some(dir) => {
                use std::io::Write as _;
                let path = dir.join(IMA_LOG_FILE);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(SimError::io(parent))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(!replace)
                    .write(true)
                    .truncate(replace)
                    .open(&path)
                    .map_err(SimError::io(&path))?;
                f.write_all(entries).map_err(SimError::io(&path))?;
            }
            None => {
                if replace {
                    self.state.ima_log.clear();
                }
                self.state.ima_log.extend_from_slice(entries);
            }
        }
        Ok(())
    }

    /// Replace the IMA measurement list with `list` (binary, SHA-1 template hashes, as
    /// `binary_runtime_measurements`) and set PCR 10 to its replay from zero in both banks
    /// (SHA-256 per bank, as Linux >= 5.11 extends it). A list that does not frame is refused
    /// before anything changes.
    pub fn load_ima_list(&mut self, list: &[u8]) -> Result<(), SimError> {
        self.transact(true, |t| t.measure_ima(list, true))
    }

    /// Measure more entries, as a running kernel appends them: extend each into PCR 10 and
    /// append it to the list. Input that does not frame is refused before anything changes.
    pub fn append_ima_entries(&mut self, entries: &[u8]) -> Result<(), SimError> {
        self.transact(true, |t| t.measure_ima(entries, false))
    }

    /// The IMA measurement list (read from [`IMA_LOG_FILE`] for a persisted TPM).
    pub fn ima_list(&mut self) -> Result<Vec<u8>, SimError> {
        self.transact(false, |t| match &t.dir {
            Some(dir) => Ok(store::read_optional(&dir.join(IMA_LOG_FILE))?.unwrap_or_default()),
            None => Ok(t.state.ima_log.clone()),
        })
    }

    /// TPM2_Quote with the AK (scheme RSASSA/SHA-256) over `selection`, qualifying data
    /// `nonce`; also returns the quoted PCR values.
    pub fn quote(&mut self, nonce: &[u8], selection: &PcrSelection) -> Result<SimQuote, SimError> {
        if nonce.len() > MAX_QUALIFYING_DATA {
            return Err(SimError::NonceTooLong(nonce.len()));
        }
        self.transact(true, |t| {
            let pcrs = t.collect(selection)?;
            let mut h = vouch_tpm2::Hasher::new(HashAlg::Sha256);
            for (bank, index) in selection.iter() {
                if let Some(v) = pcrs.get(bank, index) {
                    h.update(v.as_bytes());
                }
            }
            let pcr_digest = h.finish();
            let clock = t.state.clock();
            let (reset, restart) = (t.state.reset_count, t.state.restart_count);
            let ak = t.ensure_ak()?;
            let mut attest = Vec::with_capacity(160);
            attest.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
            attest.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
            tpm2b(&mut attest, &ak.qualified_name)?;
            tpm2b(&mut attest, nonce)?;
            attest.extend_from_slice(&clock.to_be_bytes());
            attest.extend_from_slice(&reset.to_be_bytes());
            attest.extend_from_slice(&restart.to_be_bytes());
            attest.push(1); // safe
            attest.extend_from_slice(&FIRMWARE_VERSION.to_be_bytes());
            attest.extend_from_slice(&selection.encode());
            tpm2b(&mut attest, pcr_digest.as_bytes())?;
            let mut sig = vec![0u8; ak.pair.public_modulus_len()];
            ak.pair
                .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &attest, &mut sig)
                .map_err(|_| SimError::Crypto("RSASSA sign"))?;
            let mut signature = Vec::with_capacity(sig.len().saturating_add(6));
            signature.extend_from_slice(&TPM_ALG_RSASSA.to_be_bytes());
            signature.extend_from_slice(&HashAlg::Sha256.tpm_alg_id().to_be_bytes());
            tpm2b(&mut signature, &sig)?;
            Ok(SimQuote {
                attest,
                signature,
                pcrs,
            })
        })
    }

    /// TPM2_ActivateCredential for the AK under the EK (Part 1 §24, Part 3 §12.5): recover the
    /// seed with the EK (RSA-OAEP-SHA256, label "IDENTITY"), check the integrity HMAC over
    /// `encIdentity || AK name` (a credential made for another name or EK fails closed), then
    /// decrypt the credential with AES-128-CFB.
    pub fn activate_credential(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, SimError> {
        self.transact(false, |t| {
            let ak_name = t.ensure_ak()?.name.clone();
            t.unwrap_credential(&ak_name, id_object, encrypted_secret)
        })
    }

    fn unwrap_credential(
        &self,
        name: &[u8],
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, SimError> {
        let alg = HashAlg::Sha256;
        let ek = PrivateDecryptingKey::from_pkcs8(self.ek.pkcs8())
            .map_err(|e| SimError::KeyRejected(e.to_string()))?;
        let oaep = OaepPrivateDecryptingKey::new(ek).map_err(|_| SimError::Crypto("OAEP key"))?;
        let mut seed_buf = vec![0u8; oaep.min_output_size()];
        let seed = oaep
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                encrypted_secret,
                &mut seed_buf,
                Some(b"IDENTITY\0"),
            )
            .map_err(|_| SimError::SeedDecrypt)?
            .to_vec();

        let mut r = Reader::new(id_object);
        let integrity = r
            .tpm2b(vouch_tpm2::alg::MAX_DIGEST_U16)
            .map_err(|_| SimError::MalformedCredential("integrity HMAC"))?;
        let enc_identity = r.rest_bytes();
        if integrity.len() != alg.digest_len() || enc_identity.len() < 2 {
            return Err(SimError::MalformedCredential("sizes"));
        }
        let digest_bits = u32::try_from(alg.digest_len().saturating_mul(8)).unwrap_or(256);
        let hmac_key = kdfa(alg, &seed, "INTEGRITY", &[], &[], digest_bits)?;
        let mut msg = enc_identity.to_vec();
        msg.extend_from_slice(name);
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, &hmac_key),
            &msg,
            integrity,
        )
        .map_err(|_| SimError::Integrity)?;

        let sym = kdfa(alg, &seed, "STORAGE", name, &[], 128)?;
        let key = UnboundCipherKey::new(&AES_128, &sym).map_err(|_| SimError::Crypto("AES key"))?;
        let dec = DecryptingKey::cfb128(key).map_err(|_| SimError::Crypto("AES-CFB"))?;
        let mut plain = enc_identity.to_vec();
        let plain = dec
            .decrypt(
                &mut plain,
                DecryptionContext::Iv128(FixedLength::from(&[0u8; 16])),
            )
            .map_err(|_| SimError::Crypto("AES-CFB decrypt"))?;
        let mut r = Reader::new(plain);
        let credential = r
            .tpm2b(vouch_tpm2::alg::MAX_DIGEST_U16)
            .map_err(|_| SimError::MalformedCredential("credential size"))?;
        r.finish()
            .map_err(|_| SimError::MalformedCredential("bytes after the credential"))?;
        Ok(credential.to_vec())
    }
}
