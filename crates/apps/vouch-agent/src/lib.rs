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
//! The agent only ever connects out: the verifier decides when the host is due. While the
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
    EvidenceRequest, HostStatus, PcrMap,
};
use vouch_tpm::Tpm;
use vouch_tpm2::PcrSelection;

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
        })
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
            })
            .await?;
        Ok(Some(Outcome {
            status: resp.status,
            reasons: resp.reasons,
        }))
    }
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

    #[test]
    fn csr_is_pem_and_key_is_pkcs8() {
        let (key, csr) = tls_key_and_csr("edge-1").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}
