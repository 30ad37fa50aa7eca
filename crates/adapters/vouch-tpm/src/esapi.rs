//! The TPM through the C TSS: tss-esapi 7.7 on libtss2-esys, TCTI `device:` or `swtpm:`.
//!
//! One [`Context`] per [`EsapiTpm`]. The EK (CreatePrimary from template L-1) and the AK are
//! loaded on first use and stay loaded: two of swtpm's three transient slots. Sessions are
//! flushed after every command that starts one, and transient objects left by a crashed
//! process are flushed when the TPM is opened (swtpm has no resource manager; under
//! `/dev/tpmrm0` the kernel shows each connection only its own handles, so this is a no-op).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tss_esapi::abstraction::{ak, ek};
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::{CapabilityType, SessionType, Tss2ResponseCodeKind};
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{
    AsymmetricAlgorithm, HashingAlgorithm, SignatureSchemeAlgorithm,
};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Data, EncryptedSecret, IdObject, PcrSelectSize, PcrSelectionList, PcrSlot,
    Private, Public, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, TctiNameConf};
use vouch_tpm2::{Digest, HashAlg, PcrSelection, PcrValues};

use crate::{EK_CERT_NV_INDEX, Quote, Tpm, TpmError, TpmSpec};

/// File in the state directory holding the AK: `TPM2B_PUBLIC || TPM2B_PRIVATE`.
pub const AK_FILE: &str = "ak.tpm2";
const TRANSIENT_FIRST: u32 = 0x8000_0000;
const NV_INDEX_FIRST: u32 = 0x0100_0000;
const QUOTE_ATTEMPTS: u32 = 3;

fn esapi(op: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Esapi { op, source }
}

fn transient_failure(e: &tss_esapi::Error) -> bool {
    matches!(
        e,
        tss_esapi::Error::Tss2Error(rc) if matches!(
            rc.kind(),
            Some(Tss2ResponseCodeKind::Retry | Tss2ResponseCodeKind::Yielded | Tss2ResponseCodeKind::Testing)
        )
    )
}

/// Run a TPM command, once more after a short pause if the TPM asked to be retried.
fn retrying<T>(
    ctx: &mut Context,
    op: &'static str,
    mut f: impl FnMut(&mut Context) -> tss_esapi::Result<T>,
) -> Result<T, TpmError> {
    match f(ctx) {
        Err(e) if transient_failure(&e) => {
            std::thread::sleep(Duration::from_millis(50));
            f(ctx).map_err(esapi(op))
        }
        r => r.map_err(esapi(op)),
    }
}

fn hashing_alg(alg: HashAlg) -> HashingAlgorithm {
    match alg {
        HashAlg::Sha1 => HashingAlgorithm::Sha1,
        HashAlg::Sha256 => HashingAlgorithm::Sha256,
        HashAlg::Sha384 => HashingAlgorithm::Sha384,
        HashAlg::Sha512 => HashingAlgorithm::Sha512,
        HashAlg::Sm3_256 => HashingAlgorithm::Sm3_256,
    }
}

fn vouch_alg(alg: HashingAlgorithm) -> Option<HashAlg> {
    match alg {
        HashingAlgorithm::Sha1 => Some(HashAlg::Sha1),
        HashingAlgorithm::Sha256 => Some(HashAlg::Sha256),
        HashingAlgorithm::Sha384 => Some(HashAlg::Sha384),
        HashingAlgorithm::Sha512 => Some(HashAlg::Sha512),
        HashingAlgorithm::Sm3_256 => Some(HashAlg::Sm3_256),
        _ => None,
    }
}

fn slot_index(slot: PcrSlot) -> u32 {
    u32::from(slot).trailing_zeros()
}

/// The selection in the caller's bank order: tss-esapi's builder would sort the banks, and a
/// TPM quotes banks in the order asked.
fn selection_list(selection: &PcrSelection) -> Result<PcrSelectionList, TpmError> {
    let mut tpml = tss_esapi::tss2_esys::TPML_PCR_SELECTION::default();
    for bank in selection.banks() {
        let slots = bank
            .indices()
            .map(|i| {
                PcrSlot::try_from(1u32.checked_shl(i).unwrap_or(0))
                    .map_err(esapi("PCR selection (index beyond 23)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let one = tss_esapi::structures::PcrSelection::create(
            hashing_alg(bank.alg()),
            PcrSelectSize::default(),
            &slots,
        )
        .map_err(esapi("PCR selection"))?;
        let index = usize::try_from(tpml.count).unwrap_or(usize::MAX);
        let slot = tpml
            .pcrSelections
            .get_mut(index)
            .ok_or_else(|| TpmError::Unexpected("more PCR banks than a selection holds".into()))?;
        *slot = one.into();
        tpml.count = tpml.count.saturating_add(1);
    }
    PcrSelectionList::try_from(tpml).map_err(esapi("PCR selection"))
}

fn write_tpm2b(out: &mut Vec<u8>, body: &[u8]) -> Result<(), TpmError> {
    let len = u16::try_from(body.len())
        .map_err(|_| TpmError::Unexpected("AK blob larger than a TPM2B".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

fn split_ak_file(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = vouch_wire::Reader::new(bytes);
    let public = r.tpm2b(u16::MAX).ok()?;
    let private = r.tpm2b(u16::MAX).ok()?;
    r.finish().ok()?;
    Some((public, private))
}

/// A hardware TPM or swtpm through tss-esapi.
pub struct EsapiTpm {
    ctx: Context,
    ek: Option<KeyHandle>,
    ak: Option<(KeyHandle, Vec<u8>)>,
    ak_file: PathBuf,
}

impl core::fmt::Debug for EsapiTpm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EsapiTpm")
            .field("ak_file", &self.ak_file)
            .field("ek_loaded", &self.ek.is_some())
            .field("ak_loaded", &self.ak.is_some())
            .finish_non_exhaustive()
    }
}

impl EsapiTpm {
    /// Connect to the device or swtpm `spec` names; the AK lives in `state_dir`.
    pub fn open(spec: &TpmSpec, state_dir: &Path) -> Result<Self, TpmError> {
        let tcti = match spec {
            TpmSpec::Device(path) => format!("device:{}", path.display()),
            TpmSpec::Swtpm { host, port } => format!("swtpm:host={host},port={port}"),
            TpmSpec::Sim(_) => {
                return Err(TpmError::Unexpected(
                    "a sim: TPM is not opened through tss-esapi".into(),
                ));
            }
        };
        let conf = TctiNameConf::from_str(&tcti).map_err(esapi("TCTI configuration"))?;
        let ctx = Context::new(conf).map_err(esapi("connect"))?;
        let mut tpm = Self {
            ctx,
            ek: None,
            ak: None,
            ak_file: state_dir.join(AK_FILE),
        };
        tpm.flush_stale_transients()?;
        Ok(tpm)
    }

    fn handles(&mut self, first: u32) -> Result<Vec<TpmHandle>, TpmError> {
        let mut out = Vec::new();
        let mut from = first;
        loop {
            let (data, more) = retrying(&mut self.ctx, "list handles", |c| {
                c.get_capability(CapabilityType::Handles, from, 64)
            })?;
            let CapabilityData::Handles(list) = data else {
                return Err(TpmError::Unexpected(
                    "capability data is not a handle list".into(),
                ));
            };
            let list = list.into_inner();
            let last = list.last().map(|h| u32::from(*h));
            out.extend(list);
            match (more, last) {
                (true, Some(last)) if last < u32::MAX => from = last.saturating_add(1),
                _ => return Ok(out),
            }
        }
    }

    fn flush_stale_transients(&mut self) -> Result<(), TpmError> {
        for handle in self.handles(TRANSIENT_FIRST)? {
            if !matches!(handle, TpmHandle::Transient(_)) {
                break;
            }
            let obj = retrying(&mut self.ctx, "attach stale object", |c| {
                c.execute_without_session(|c| c.tr_from_tpm_public(handle))
            })?;
            retrying(&mut self.ctx, "flush stale object", |c| {
                c.flush_context(obj)
            })?;
        }
        Ok(())
    }

    fn ensure_ek(&mut self) -> Result<KeyHandle, TpmError> {
        if let Some(ek) = self.ek {
            return Ok(ek);
        }
        let ek = retrying(&mut self.ctx, "create EK (template L-1)", |c| {
            ek::create_ek_object(c, AsymmetricAlgorithm::Rsa, None)
        })?;
        self.ek = Some(ek);
        Ok(ek)
    }

    fn ensure_ak(&mut self) -> Result<KeyHandle, TpmError> {
        if let Some((ak, _)) = &self.ak {
            return Ok(*ak);
        }
        let ek = self.ensure_ek()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TpmError::Io { path, source }
        };
        let (public, private) = match std::fs::read(&self.ak_file) {
            Ok(bytes) => {
                let (public, private) =
                    split_ak_file(&bytes).ok_or_else(|| TpmError::AkUnloadable {
                        path: self.ak_file.clone(),
                        reason: "not TPM2B_PUBLIC || TPM2B_PRIVATE".into(),
                    })?;
                let unloadable = |e: tss_esapi::Error| TpmError::AkUnloadable {
                    path: self.ak_file.clone(),
                    reason: e.to_string(),
                };
                (
                    Public::unmarshall(public).map_err(unloadable)?,
                    Private::try_from(private.to_vec()).map_err(unloadable)?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let created = retrying(&mut self.ctx, "create AK", |c| {
                    ak::create_ak(
                        c,
                        ek,
                        HashingAlgorithm::Sha256,
                        SignatureSchemeAlgorithm::RsaSsa,
                        None,
                        None,
                    )
                })?;
                let mut blob = Vec::new();
                let public = created
                    .out_public
                    .marshall()
                    .map_err(esapi("marshal AK public"))?;
                write_tpm2b(&mut blob, &public)?;
                write_tpm2b(&mut blob, created.out_private.value())?;
                if let Some(dir) = self.ak_file.parent() {
                    std::fs::create_dir_all(dir).map_err(io(dir))?;
                }
                let tmp = self.ak_file.with_extension("tmp");
                std::fs::write(&tmp, &blob).map_err(io(&tmp))?;
                std::fs::rename(&tmp, &self.ak_file).map_err(io(&self.ak_file))?;
                (created.out_public, created.out_private)
            }
            Err(e) => return Err(io(&self.ak_file)(e)),
        };
        let handle = match ak::load_ak(&mut self.ctx, ek, None, private, public) {
            Ok(h) => h,
            Err(e) if transient_failure(&e) => return Err(esapi("load AK")(e)),
            Err(e) => {
                return Err(TpmError::AkUnloadable {
                    path: self.ak_file.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let (public, _, _) = retrying(&mut self.ctx, "read AK public", |c| c.read_public(handle))?;
        let bytes = public.marshall().map_err(esapi("marshal AK public"))?;
        self.ak = Some((handle, bytes));
        Ok(handle)
    }

    fn start_session(&mut self, kind: SessionType) -> Result<AuthSession, TpmError> {
        let session = retrying(&mut self.ctx, "start session", |c| {
            c.start_auth_session(
                None,
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
        })?
        .ok_or_else(|| TpmError::Unexpected("the TPM returned no session".into()))?;
        // No parameter encryption: ESYS allows one encrypting session per command, and
        // ActivateCredential takes two (the AK's HMAC session and the EK's policy session).
        let (attrs, mask) = SessionAttributesBuilder::new().build();
        retrying(&mut self.ctx, "set session attributes", |c| {
            c.tr_sess_set_attributes(session, attrs, mask)
        })?;
        Ok(session)
    }

    fn flush_session(&mut self, session: AuthSession) {
        // Best effort: a session that cannot be flushed was already gone.
        let _ = self
            .ctx
            .flush_context(ObjectHandle::from(SessionHandle::from(session)));
    }

    fn activate(
        &mut self,
        ak: KeyHandle,
        ek: KeyHandle,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let id = IdObject::try_from(id_object.to_vec()).map_err(esapi("credential blob"))?;
        let secret = EncryptedSecret::try_from(encrypted_secret.to_vec())
            .map_err(esapi("encrypted seed"))?;
        let hmac = self.start_session(SessionType::Hmac)?;
        let policy = match self.start_session(SessionType::Policy) {
            Ok(p) => p,
            Err(e) => {
                self.flush_session(hmac);
                return Err(e);
            }
        };
        let result = (|| {
            let policy_session =
                PolicySession::try_from(policy).map_err(esapi("policy session"))?;
            // The EK's PolicyA: TPM2_PolicySecret(TPM_RH_ENDORSEMENT).
            self.ctx
                .execute_with_session(Some(hmac), |c| {
                    c.policy_secret(
                        policy_session,
                        AuthHandle::Endorsement,
                        Default::default(),
                        Default::default(),
                        Default::default(),
                        None,
                    )
                })
                .map_err(esapi("PolicySecret(endorsement)"))?;
            self.ctx.set_sessions((Some(hmac), Some(policy), None));
            let out = self
                .ctx
                .activate_credential(ak, ek, id, secret)
                .map_err(esapi("ActivateCredential"));
            self.ctx.clear_sessions();
            out
        })();
        self.flush_session(hmac);
        self.flush_session(policy);
        Ok(result?.value().to_vec())
    }

    /// Read the PCRs of `list`; TPM2_PCR_Read returns at most 8 values per call.
    fn read_pcrs(&mut self, mut list: PcrSelectionList) -> Result<PcrValues, TpmError> {
        let mut out = PcrValues::new();
        while !list.is_empty() {
            let (_, read, digests) =
                retrying(&mut self.ctx, "PCR_Read", |c| c.pcr_read(list.clone()))?;
            let mut values = digests.value().iter();
            let mut got = 0usize;
            for sel in read.get_selections() {
                let alg = vouch_alg(sel.hashing_algorithm())
                    .ok_or_else(|| TpmError::Unexpected("PCR bank of unknown hash".into()))?;
                for slot in sel.selected() {
                    let value = values.next().ok_or_else(|| {
                        TpmError::Unexpected("PCR_Read returned fewer digests than selected".into())
                    })?;
                    let digest = Digest::new(alg, value.value())
                        .map_err(|e| TpmError::Unexpected(e.to_string()))?;
                    out.insert(slot_index(slot), digest);
                    got = got.saturating_add(1);
                }
            }
            if got == 0 {
                // Nothing read: the rest of the selection names banks the TPM has not allocated.
                let bank = list
                    .get_selections()
                    .iter()
                    .find(|s| !s.is_empty())
                    .and_then(|s| vouch_alg(s.hashing_algorithm()))
                    .unwrap_or(HashAlg::Sha256);
                return Err(TpmError::BankNotActive(bank));
            }
            list.subtract(&read).map_err(esapi("PCR selection"))?;
        }
        Ok(out)
    }
}

impl Drop for EsapiTpm {
    fn drop(&mut self) {
        // Free the transient slots (swtpm has three); errors are moot at this point.
        if let Some((ak, _)) = self.ak.take() {
            let _ = self.ctx.flush_context(ak.into());
        }
        if let Some(ek) = self.ek.take() {
            let _ = self.ctx.flush_context(ek.into());
        }
    }
}

impl Tpm for EsapiTpm {
    fn ek_public(&mut self) -> Result<Vec<u8>, TpmError> {
        let ek = self.ensure_ek()?;
        let (public, _, _) = retrying(&mut self.ctx, "read EK public", |c| c.read_public(ek))?;
        public.marshall().map_err(esapi("marshal EK public"))
    }

    fn ek_certificate(&mut self) -> Result<Option<Vec<u8>>, TpmError> {
        // Look before reading: reading an absent index makes ESYS log an error.
        let present = self
            .handles(NV_INDEX_FIRST)?
            .into_iter()
            .any(|h| matches!(h, TpmHandle::NvIndex(_)) && u32::from(h) == EK_CERT_NV_INDEX);
        if !present {
            return Ok(None);
        }
        let cert = retrying(&mut self.ctx, "read EK certificate (NV 0x01c00002)", |c| {
            ek::retrieve_ek_pubcert(
                c,
                tss_esapi::abstraction::AsymmetricAlgorithmSelection::Rsa(
                    tss_esapi::interface_types::key_bits::RsaKeyBits::Rsa2048,
                ),
            )
        })?;
        Ok(Some(cert))
    }

    fn ak_public(&mut self) -> Result<Vec<u8>, TpmError> {
        self.ensure_ak()?;
        self.ak
            .as_ref()
            .map(|(_, public)| public.clone())
            .ok_or_else(|| TpmError::Unexpected("AK not loaded".into()))
    }

    fn activate_credential(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let ak = self.ensure_ak()?;
        let ek = self.ensure_ek()?;
        self.activate(ak, ek, id_object, encrypted_secret)
    }

    fn quote(&mut self, nonce: &[u8], selection: &PcrSelection) -> Result<Quote, TpmError> {
        let ak = self.ensure_ak()?;
        let list = selection_list(selection)?;
        let data = Data::try_from(nonce.to_vec()).map_err(esapi("qualifying data"))?;
        // Quote, then read: if a PCR moved in between, the values do not hash to the quoted
        // digest, and we try again.
        for _ in 0..QUOTE_ATTEMPTS {
            let (attest, signature) = retrying(&mut self.ctx, "Quote", |c| {
                c.execute_with_nullauth_session(|c| {
                    c.quote(ak, data.clone(), SignatureScheme::Null, list.clone())
                })
            })?;
            let pcrs = self.read_pcrs(list.clone())?;
            let attest = attest.marshall().map_err(esapi("marshal TPMS_ATTEST"))?;
            let signature = signature
                .marshall()
                .map_err(esapi("marshal TPMT_SIGNATURE"))?;
            if quoted_digest_matches(&attest, selection, &pcrs) {
                return Ok(Quote {
                    attest,
                    signature,
                    pcrs,
                });
            }
        }
        Err(TpmError::PcrsChanging(QUOTE_ATTEMPTS))
    }
}

/// True when `pcrs` hash (SHA-256, the AK's scheme hash) to the quote's pcrDigest.
fn quoted_digest_matches(attest: &[u8], selection: &PcrSelection, pcrs: &PcrValues) -> bool {
    let Ok(parsed) = vouch_tpm2::Attest::decode(attest) else {
        return false;
    };
    let vouch_tpm2::Attested::Quote { pcr_digest, .. } = parsed.attested else {
        return false;
    };
    let mut h = vouch_tpm2::Hasher::new(HashAlg::Sha256);
    for (bank, index) in selection.iter() {
        match pcrs.get(bank, index) {
            Some(v) => h.update(v.as_bytes()),
            None => return false,
        }
    }
    h.finish().as_bytes() == pcr_digest
}
