//! The Vouch host agent as a library: an explicit state machine over a [`Tpm`] and the
//! verifier's API.
//!
//! ```text
//!            +-----------+   enrol + activate    +------------+
//!  start --> | Unenrolled| --------------------> |  Enrolled  | <---- identity on disk
//!            +-----------+   (EK, AK, MakeCred)  +------------+
//!                  ^                                   |  challenge (long-poll)
//!                  | identity refused (host removed)   v
//!                  +------------------------------ Attesting: quote(nonce) + log -> evidence
//! ```
//! The agent only ever connects out: the verifier decides when the host is due.
//!
//! IMA: when the challenge asks for IMA entries from an offset and the agent has an IMA log
//! ([`Agent::with_ima_log`]), it reads the measurement list *after* the quote (so the list is at
//! least as long as what PCR 10 covers) and sends the binary entries from the offset on. It
//! keeps a cursor (entry index and byte offset of the last requested offset, and the boot it
//! belongs to) so each attestation reads and frames only the bytes after it; after a reboot
//! (the quote's resetCount differs from the challenge's) or when the list is shorter than the
//! offset, it sends the list from entry 0. While the
//! verifier is unreachable the agent backs off exponentially with jitter (1 s to 60 s).
//!
//! Trust assumptions: the agent trusts only the verifier CA it is given (never the system roots).
//! Nothing it sends is trusted by the verifier because the agent sent it: every TPM structure is
//! verified there. The agent's own secrets are its TLS key (0600 in its state directory) and
//! the TPM-resident AK; it logs neither.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng as _;
use vouch_api::{
    ActivateRequest, AgentClient, Bytes, ChallengeResponse, ClientError, EnrolRequest,
    EvidenceRequest, HostStatus, ImaEvidence, ImaRequest, PcrMap,
};
use vouch_tpm::Tpm;
use vouch_tpm2::{HashAlg, PcrSelection};

/// Why the agent stopped or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The TPM refused or failed an operation.
    #[error("TPM: {0}")]
    Tpm(#[from] vouch_tpm::TpmError),
    /// The verifier could not be reached or refused a call.
    #[error(transparent)]
    Api(#[from] ClientError),
    /// Local state (identity, CA, event log) could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being read or written.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The verifier sent something the agent cannot act on.
    #[error("verifier protocol: {0}")]
    Protocol(String),
    /// The TLS key or CSR could not be made.
    #[error("TLS identity: {0}")]
    Identity(String),
}

/// How the agent is set up.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `https://HOST:PORT` of the verifier.
    pub verifier: String,
    /// The verifier's CA certificate (PEM bytes).
    pub verifier_ca_pem: Vec<u8>,
    /// Host name to enrol as.
    pub name: String,
    /// Labels to declare at enrolment.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Where the UEFI event log is read from.
    pub event_log: PathBuf,
    /// Where the agent keeps its identity (client certificate and key).
    pub state_dir: PathBuf,
    /// Stop after this many evidence submissions (None: run forever). For tests and the demo.
    pub max_attestations: Option<u64>,
}

/// The agent's states (STYLE.md 14: an explicit state machine, no hidden globals).
#[derive(Debug)]
enum State {
    /// No identity yet: enrol.
    Unenrolled,
    /// Enrolled: ask for challenges and answer them.
    Enrolled(AgentClient),
}

const IDENTITY_FILE: &str = "identity.pem";

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AgentError + 'a {
    move |source| AgentError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What one evidence submission produced, for callers that watch the agent (demo, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Status the verifier gave.
    pub status: HostStatus,
    /// Its reasons.
    pub reasons: Vec<String>,
}

/// The running agent.
pub struct Agent {
    config: AgentConfig,
    tpm: Box<dyn Tpm>,
    state: State,
    backoff: Backoff,
    sent_log_digest: Option<[u8; 32]>,
    ima_log: Option<PathBuf>,
    ima_cursor: Option<ImaCursor>,
    kernel_cmdline: Option<PathBuf>,
}

/// Where the agent is in the IMA measurement list of one boot: entry `index` starts at byte
/// `byte`. Constant memory, whatever the list length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImaCursor {
    reset_count: u32,
    index: u64,
    byte: u64,
    alg: HashAlg,
}

impl core::fmt::Debug for Agent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.config.name)
            .field("state", &self.state)
            .finish()
    }
}

impl Agent {
    /// An agent over `tpm`. Loads an identity from the state directory if one exists.
    pub fn new(config: AgentConfig, tpm: Box<dyn Tpm>) -> Result<Self, AgentError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(io("cannot create state dir", &config.state_dir))?;
        let id_path = config.state_dir.join(IDENTITY_FILE);
        let state = match std::fs::read(&id_path) {
            Ok(pem) => State::Enrolled(AgentClient::with_identity(
                &config.verifier,
                &config.verifier_ca_pem,
                &pem,
            )?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::Unenrolled,
            Err(e) => return Err(io("cannot read identity", &id_path)(e)),
        };
        Ok(Self {
            config,
            tpm,
            state,
            backoff: Backoff::new(),
            sent_log_digest: None,
            ima_log: None,
            ima_cursor: None,
            kernel_cmdline: None,
        })
    }

    /// Send the running kernel's command line (normally `/proc/cmdline`) with every event log,
    /// so the verifier can show it once it checks it against the digest measured into PCR 9.
    #[must_use]
    pub fn with_kernel_cmdline(mut self, path: Option<PathBuf>) -> Self {
        self.kernel_cmdline = path;
        self
    }

    /// Read the IMA measurement list (binary, `binary_runtime_measurements`) from `path` when
    /// the verifier asks for it. A missing file means no IMA: the evidence then carries none.
    #[must_use]
    pub fn with_ima_log(mut self, path: Option<PathBuf>) -> Self {
        self.ima_log = path;
        self
    }

    /// Run until `max_attestations` evidence submissions (or forever). Transient failures back
    /// off with jitter; the agent never gives up on an unreachable verifier.
    pub async fn run(&mut self) -> Result<(), AgentError> {
        let mut sent = 0u64;
        loop {
            if self.config.max_attestations.is_some_and(|m| sent >= m) {
                return Ok(());
            }
            match self.step().await {
                Ok(Some(outcome)) => {
                    sent = sent.saturating_add(1);
                    self.backoff.reset();
                    tracing::info!(status = %outcome.status, reasons = ?outcome.reasons, "evidence appraised");
                }
                Ok(None) => self.backoff.reset(),
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    let wait = self.backoff.next();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis(), "attestation step failed");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One step of the state machine: enrol, or wait for and answer one challenge.
    /// Returns the verifier's verdict when evidence was sent.
    pub async fn step(&mut self) -> Result<Option<Outcome>, AgentError> {
        match &self.state {
            State::Unenrolled => {
                let client = self.enrol().await?;
                self.state = State::Enrolled(client);
                Ok(None)
            }
            State::Enrolled(client) => {
                let client = client.clone();
                match client.challenge().await {
                    Ok(ch) => self.answer(&client, ch).await,
                    // The verifier no longer accepts this identity (host removed, CA changed):
                    // forget it and enrol again, which an operator must approve.
                    Err(ClientError::Api {
                        status: 401 | 403,
                        message,
                    }) => {
                        tracing::warn!(%message, "identity refused; enrolling again");
                        let id_path = self.config.state_dir.join(IDENTITY_FILE);
                        let _ = std::fs::remove_file(&id_path);
                        self.state = State::Unenrolled;
                        Ok(None)
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    async fn enrol(&mut self) -> Result<AgentClient, AgentError> {
        let anon = AgentClient::anonymous(&self.config.verifier, &self.config.verifier_ca_pem)?;
        let req = EnrolRequest {
            name: self.config.name.clone(),
            ek_public: Bytes(self.tpm.ek_public()?),
            ek_certificate: self.tpm.ek_certificate()?.map(Bytes),
            ak_public: Bytes(self.tpm.ak_public()?),
            labels: self.config.labels.clone(),
        };
        let challenge = anon.enrol(&req).await?;
        let secret = self
            .tpm
            .activate_credential(&challenge.id_object.0, &challenge.encrypted_secret.0)?;
        let (key_pem, csr_pem) = tls_key_and_csr(&self.config.name)?;
        let activated = anon
            .activate(&ActivateRequest {
                enrolment_id: challenge.enrolment_id,
                secret: Bytes(secret),
                csr_pem,
            })
            .await?;
        let mut identity = activated.client_certificate_pem.into_bytes();
        identity.push(b'\n');
        identity.extend_from_slice(key_pem.as_bytes());
        let id_path = self.config.state_dir.join(IDENTITY_FILE);
        write_private(&id_path, &identity)?;
        tracing::info!(host_id = %activated.host_id, status = %activated.status, "enrolled");
        Ok(AgentClient::with_identity(
            &self.config.verifier,
            &self.config.verifier_ca_pem,
            &identity,
        )?)
    }

    async fn answer(
        &mut self,
        client: &AgentClient,
        ch: ChallengeResponse,
    ) -> Result<Option<Outcome>, AgentError> {
        let (true, Some(nonce), Some(selection)) = (ch.due, ch.nonce, ch.pcr_selection) else {
            let wait = Duration::from_millis(ch.retry_after_ms.clamp(50, 60_000));
            tokio::time::sleep(wait).await;
            return Ok(None);
        };
        let selection = PcrSelection::parse_spec(&selection)
            .map_err(|e| AgentError::Protocol(format!("PCR selection: {e}")))?;
        let quote = self.tpm.quote(&nonce.0, &selection)?;
        // Send the log when asked, and whenever it changed since it was last sent (a reboot or
        // a new boot component), so the verifier can name the events that differ at once.
        let bytes = std::fs::read(&self.config.event_log)
            .map_err(io("cannot read event log", &self.config.event_log))?;
        let digest = sha256(&bytes);
        let event_log = if ch.want_event_log || self.sent_log_digest != Some(digest) {
            self.sent_log_digest = Some(digest);
            Some(Bytes(bytes))
        } else {
            None
        };
        // The kernel writes /proc/cmdline with one trailing newline that it did not measure.
        let kernel_cmdline = match (&event_log, &self.kernel_cmdline) {
            (Some(_), Some(path)) => std::fs::read_to_string(path)
                .ok()
                .map(|s| s.strip_suffix('\n').unwrap_or(&s).to_owned()),
            _ => None,
        };
        let ima = match (ch.ima, self.ima_log.clone()) {
            (Some(req), Some(path)) => {
                let reset = vouch_tpm2::Attest::decode(&quote.attest)
                    .map_err(|e| AgentError::Protocol(format!("own quote does not decode: {e}")))?
                    .clock_info
                    .reset_count;
                self.collect_ima(&path, req, reset)?
            }
            _ => None,
        };
        let mut pcrs = PcrMap::new();
        for (bank, index, value) in quote.pcrs.iter() {
            pcrs.entry(bank.name().to_owned())
                .or_default()
                .insert(index.to_string(), value.to_hex());
        }
        let resp = client
            .evidence(&EvidenceRequest {
                nonce,
                attest: Bytes(quote.attest),
                signature: Bytes(quote.signature),
                pcrs,
                event_log,
                ima,
                kernel_cmdline,
            })
            .await?;
        Ok(Some(Outcome {
            status: resp.status,
            reasons: resp.reasons,
        }))
    }
}

impl Agent {
    /// The IMA entries the verifier asked for (see the crate docs), or `None` without a list.
    fn collect_ima(
        &mut self,
        path: &Path,
        req: ImaRequest,
        reset_count: u32,
    ) -> Result<Option<ImaEvidence>, AgentError> {
        // Another boot than the verifier's state: the whole list.
        let wanted = if req.reset_count.is_some_and(|r| r != reset_count) {
            0
        } else {
            req.offset
        };
        let cursor = self
            .ima_cursor
            .filter(|c| c.reset_count == reset_count && c.index <= wanted);
        let Some(found) = read_ima_tail(path, cursor, wanted)? else {
            return Ok(None);
        };
        let found = match found {
            Tail::Found(t) => t,
            // The list is shorter than the offset (a reboot the verifier has not seen): all.
            Tail::Short if wanted > 0 => match read_ima_tail(path, None, 0)? {
                Some(Tail::Found(t)) => t,
                _ => return Ok(None),
            },
            Tail::Short => return Ok(None),
        };
        self.ima_cursor = Some(ImaCursor {
            reset_count,
            index: found.offset,
            byte: found.byte,
            alg: found.alg,
        });
        Ok(Some(ImaEvidence {
            offset: found.offset,
            template_hash_alg: found.alg.name().to_owned(),
            entries: Bytes(found.entries),
        }))
    }
}

/// A list tail read from a cursor.
struct FoundTail {
    offset: u64,
    byte: u64,
    alg: HashAlg,
    entries: Vec<u8>,
}

enum Tail {
    Found(FoundTail),
    /// The list has fewer entries than asked for.
    Short,
}

/// Read `path` from `cursor` (or the start), frame forward to entry `wanted`, and return the
/// complete entries from there (a torn last entry, still being written, is left out).
/// `Ok(None)`: the file does not exist.
fn read_ima_tail(
    path: &Path,
    cursor: Option<ImaCursor>,
    wanted: u64,
) -> Result<Option<Tail>, AgentError> {
    use std::io::{Read as _, Seek as _};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read IMA log", path)(e)),
    };
    let start = cursor.map_or(0, |c| c.byte);
    f.seek(std::io::SeekFrom::Start(start))
        .map_err(io("cannot read IMA log", path))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(io("cannot read IMA log", path))?;
    let alg = match cursor {
        Some(c) => c.alg,
        None => {
            vouch_ima::MeasurementList::parse(&buf).map_or(HashAlg::Sha1, |l| l.template_hash_alg())
        }
    };
    let list = vouch_ima::MeasurementList::with_template_hash_alg(&buf, alg);
    let mut entries = list.entries_from(cursor.map_or(0, |c| c.index));
    let mut index = cursor.map_or(0, |c| c.index);
    let mut from = 0usize;
    let mut end = 0usize;
    loop {
        let at = entries.offset();
        if index == wanted {
            from = at;
        }
        match entries.next() {
            Some(Ok(_)) => {
                index = index.saturating_add(1);
                end = entries.offset();
            }
            _ => break,
        }
    }
    if index < wanted {
        return Ok(Some(Tail::Short));
    }
    let tail = buf.get(from..end).unwrap_or_default().to_vec();
    Ok(Some(Tail::Found(FoundTail {
        offset: wanted,
        byte: start.saturating_add(u64::try_from(from).unwrap_or(u64::MAX)),
        alg,
        entries: tail,
    })))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = vouch_tpm2::HashAlg::Sha256.hash(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_bytes().get(..32).unwrap_or(&[0u8; 32]));
    out
}

/// Errors no retry can fix: the TPM is broken or the local state is unusable.
fn is_fatal(e: &AgentError) -> bool {
    matches!(e, AgentError::Io { .. } | AgentError::Identity(_))
}

fn tls_key_and_csr(name: &str) -> Result<(String, String), AgentError> {
    let key = rcgen::KeyPair::generate().map_err(|e| AgentError::Identity(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| AgentError::Identity(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let csr = params
        .serialize_request(&key)
        .map_err(|e| AgentError::Identity(e.to_string()))?;
    let csr_pem = csr.pem().map_err(|e| AgentError::Identity(e.to_string()))?;
    Ok((key.serialize_pem(), csr_pem))
}

/// Write a file only the owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("cannot write identity", &tmp))?;
    f.write_all(bytes)
        .map_err(io("cannot write identity", &tmp))?;
    f.sync_all().map_err(io("cannot write identity", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("cannot write identity", path))
}

/// Exponential backoff with full jitter, 1 s to 60 s.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE_MS: u64 = 1_000;
    const CAP_MS: u64 = 60_000;

    const fn new() -> Self {
        Self { attempt: 0 }
    }

    const fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self) -> Duration {
        let ceiling = Self::BASE_MS
            .saturating_mul(1u64 << self.attempt.min(6))
            .min(Self::CAP_MS);
        self.attempt = self.attempt.saturating_add(1);
        let ms = rand::rng().random_range(ceiling / 2..=ceiling);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_capped_ceiling_with_jitter() {
        let mut b = Backoff::new();
        let first = b.next();
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        for _ in 0..20 {
            let d = b.next();
            assert!(d <= Duration::from_secs(60));
        }
        assert!(b.next() >= Duration::from_secs(30));
        b.reset();
        assert!(b.next() <= Duration::from_secs(1));
    }

    fn f40() -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../testdata/ima/f40-vtpm-imasig-sha1.bin"),
        )
        .unwrap()
    }

    fn offsets(list: &[u8]) -> Vec<usize> {
        vouch_ima::MeasurementList::parse(list)
            .unwrap()
            .entries()
            .map(|e| e.unwrap().offset())
            .collect()
    }

    fn found(t: Option<Tail>) -> FoundTail {
        match t {
            Some(Tail::Found(f)) => f,
            _ => panic!("no tail"),
        }
    }

    #[test]
    fn ima_tail_is_read_from_the_cursor_and_stops_before_a_torn_entry() {
        let list = f40();
        let at = offsets(&list);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("binary_runtime_measurements");
        // 10 complete entries and half of the 11th (the kernel is still writing it).
        let torn = at[10] + (at[11] - at[10]) / 2;
        std::fs::write(&path, &list[..torn]).unwrap();
        let all = found(read_ima_tail(&path, None, 0).unwrap());
        assert_eq!((all.offset, all.byte, all.alg), (0, 0, HashAlg::Sha1));
        assert_eq!(all.entries, list[..at[10]]);
        let cursor = ImaCursor {
            reset_count: 1,
            index: 4,
            byte: at[4] as u64,
            alg: HashAlg::Sha1,
        };
        let tail = found(read_ima_tail(&path, Some(cursor), 7).unwrap());
        assert_eq!((tail.offset, tail.byte), (7, at[7] as u64));
        assert_eq!(tail.entries, list[at[7]..at[10]]);
        // Exactly at the end: nothing new. Beyond it: the list is short.
        assert!(
            found(read_ima_tail(&path, Some(cursor), 10).unwrap())
                .entries
                .is_empty()
        );
        assert!(matches!(
            read_ima_tail(&path, Some(cursor), 11).unwrap(),
            Some(Tail::Short)
        ));
        // No file: no IMA.
        assert!(
            read_ima_tail(&dir.path().join("none"), None, 0)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn csr_is_pem_and_key_is_pkcs8() {
        let (key, csr) = tls_key_and_csr("edge-1").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}
