//! A typed client for the Vouch API, over HTTPS with rustls (aws-lc-rs).
//!
//! The agent trusts only the verifier CA it was given (never the system roots) and, once
//! enrolled, presents its client certificate. The CLI authenticates with the admin token.

use std::time::Duration;

use reqwest::{Certificate, Identity, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    ActivateRequest, ActivateResponse, ApiErrorBody, ChallengeResponse, EkOverrideRequest,
    EnrolRequest, EnrolResponse, EvidenceRequest, EvidenceResponse, HostDetail, HostSummary,
    ImaPolicyAssignment, ImaPolicyCreated, ImaPolicySelectorAssignment,
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The verifier answered with an error status.
    #[error("verifier refused ({status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The verifier's message.
        message: String,
    },
    /// The request could not be made or the answer not read. Its message says once what
    /// failed and what to check (the underlying error is not repeated as a source).
    #[error("cannot reach the verifier{}", transport_message(.0))]
    Transport(reqwest::Error),
    /// The CA certificate or client identity is not usable PEM.
    #[error("bad TLS material: {0}")]
    Tls(String),
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e)
    }
}

/// The innermost cause of a transport error, and what an operator should check for it.
fn transport_message(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        causes.push(c.to_string());
        cur = c.source();
    }
    let root = causes.last().cloned().unwrap_or_default();
    let all = causes.join(" ").to_ascii_lowercase();
    let at = e
        .url()
        .map(|u| {
            format!(
                " at {}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port_or_known_default().unwrap_or(0)
            )
        })
        .unwrap_or_default();
    let scheme_http = e.url().is_some_and(|u| u.scheme() == "http");
    let hint = if scheme_http {
        "the verifier speaks only HTTPS: use an https:// URL"
    } else if all.contains("connection refused") {
        "nothing listens there: check the host and port, and that `vouch serve` is running"
    } else if all.contains("notvalidforname") || all.contains("not valid for name") {
        "the server's certificate does not name this host: use the name or address the \
         verifier was started with (or start it with --server-name)"
    } else if all.contains("unknownissuer")
        || all.contains("invalid peer certificate")
        || all.contains("certificate")
    {
        "the server's certificate is not signed by the CA you gave: use the verifier's \
         DATA_DIR/ca.pem (VOUCH_CA or --ca)"
    } else if all.contains("invalidcontenttype")
        || all.contains("corrupt message")
        || all.contains("received corrupt")
        || all.contains("wrong version number")
    {
        "the server there does not speak TLS: check the port, and that it is a Vouch verifier"
    } else if e.is_timeout() || all.contains("timed out") {
        "no answer in time: check the address, firewalls, and the verifier's load"
    } else if all.contains("dns") || all.contains("failed to lookup") || all.contains("resolve") {
        "the host name does not resolve: check the URL"
    } else {
        "check the URL, the CA certificate and that the verifier is running"
    };
    format!("{at}: {hint} ({root})")
}

impl ClientError {
    /// The HTTP status, when the verifier answered.
    #[must_use]
    pub const fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn builder(ca_pem: &[u8], identity_pem: Option<&[u8]>) -> Result<reqwest::Client, ClientError> {
    let ca = Certificate::from_pem(ca_pem).map_err(|e| ClientError::Tls(format!("CA: {e}")))?;
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")));
    if let Some(id) = identity_pem {
        let identity = Identity::from_pem(id)
            .map_err(|e| ClientError::Tls(format!("client identity: {e}")))?;
        b = b.identity(identity);
    }
    b.build().map_err(ClientError::Transport)
}

async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
    http: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<&B>,
) -> Result<R, ClientError> {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await?;
    if resp.status().is_success() {
        return Ok(resp.json::<R>().await?);
    }
    Err(refused(resp).await)
}

/// The error of a response with an error status.
async fn refused(resp: reqwest::Response) -> ClientError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ApiErrorBody>(&text).map_or_else(
        |_| {
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text
            }
        },
        |b| b.error,
    );
    ClientError::Api {
        status: status.as_u16(),
        message,
    }
}

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// Operator access with the admin token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    /// A client for `base_url` (e.g. `https://127.0.0.1:8443`) trusting only `ca_pem`.
    pub fn new(base_url: &str, ca_pem: &[u8], token: &str) -> Result<Self, ClientError> {
        Ok(Self {
            http: builder(ca_pem, None)?,
            base: trim(base_url),
            token: token.trim().to_owned(),
        })
    }

    async fn admin<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<R, ClientError> {
        call::<(), R>(
            &self.http,
            method,
            format!("{}{path}", self.base),
            Some(&self.token),
            None,
        )
        .await
    }

    /// Every host.
    pub async fn hosts(&self) -> Result<Vec<HostSummary>, ClientError> {
        self.admin(Method::GET, "/api/v1/hosts").await
    }

    /// Every host, removed ones included.
    pub async fn all_hosts(&self) -> Result<Vec<HostSummary>, ClientError> {
        self.admin(Method::GET, "/api/v1/hosts?all=true").await
    }

    /// Pending enrolments and recent refusals.
    pub async fn enrolments(&self) -> Result<crate::EnrolmentsView, ClientError> {
        self.admin(Method::GET, "/api/v1/enrolments").await
    }

    /// Let a removed host (its name and EK) enrol again; it waits for approval.
    pub async fn readmit(&self, name: &str) -> Result<HostSummary, ClientError> {
        self.admin(
            Method::POST,
            &format!("/api/v1/hosts/{}/readmit", encode(name)),
        )
        .await
    }

    /// Lift a finding that stays until cleared (a TPM state rollback).
    pub async fn clear(&self, name: &str, reason: &str) -> Result<HostSummary, ClientError> {
        let body = crate::ClearRequest {
            reason: reason.to_owned(),
        };
        call(
            &self.http,
            Method::POST,
            format!("{}/api/v1/hosts/{}/clear", self.base, encode(name)),
            Some(&self.token),
            Some(&body),
        )
        .await
    }

    /// Create an API token (shown once).
    pub async fn create_token(
        &self,
        req: &crate::TokenRequest,
    ) -> Result<crate::TokenCreated, ClientError> {
        call(
            &self.http,
            Method::POST,
            format!("{}/api/v1/tokens", self.base),
            Some(&self.token),
            Some(req),
        )
        .await
    }

    /// Every API token (without secrets).
    pub async fn tokens(&self) -> Result<Vec<crate::TokenInfo>, ClientError> {
        self.admin(Method::GET, "/api/v1/tokens").await
    }

    /// Revoke an API token by name.
    pub async fn revoke_token(&self, name: &str) -> Result<crate::TokenInfo, ClientError> {
        self.admin(Method::DELETE, &format!("/api/v1/tokens/{}", encode(name)))
            .await
    }

    /// One host, with history.
    pub async fn host(&self, name: &str) -> Result<HostDetail, ClientError> {
        self.admin(Method::GET, &format!("/api/v1/hosts/{}", encode(name)))
            .await
    }

    /// A signed attestation result (EAR JWT) for the host's current appraisal, echoing
    /// `nonce` (base64url) when given.
    pub async fn ear(&self, name: &str, nonce: Option<&str>) -> Result<String, ClientError> {
        let mut url = format!("{}/api/v1/hosts/{}/ear", self.base, encode(name));
        if let Some(n) = nonce {
            url.push_str("?nonce=");
            url.push_str(&encode(n));
        }
        let resp = self.http.get(url).bearer_auth(&self.token).send().await?;
        if resp.status().is_success() {
            return Ok(resp.text().await?);
        }
        Err(refused(resp).await)
    }

    /// Approve a host that awaits approval.
    pub async fn approve(&self, name: &str) -> Result<HostSummary, ClientError> {
        self.admin(
            Method::POST,
            &format!("/api/v1/hosts/{}/approve", encode(name)),
        )
        .await
    }

    /// Make a host due for attestation now.
    pub async fn attest(&self, name: &str) -> Result<HostSummary, ClientError> {
        self.admin(
            Method::POST,
            &format!("/api/v1/hosts/{}/attest", encode(name)),
        )
        .await
    }

    /// Remove a host.
    pub async fn remove(&self, name: &str) -> Result<HostSummary, ClientError> {
        self.admin(Method::DELETE, &format!("/api/v1/hosts/{}", encode(name)))
            .await
    }

    /// Allow one TPM (by its EK name, hex) to enrol under a host name without an EK
    /// certificate chain, until `expires_at` (RFC 3339; default 24 h) (audited).
    pub async fn ek_override(
        &self,
        name: &str,
        ek_name: &str,
        reason: &str,
        expires_at: Option<&str>,
    ) -> Result<HostSummary, ClientError> {
        let body = EkOverrideRequest {
            reason: reason.to_owned(),
            ek_name: Some(ek_name.to_owned()),
            expires_at: expires_at.map(str::to_owned),
        };
        call(
            &self.http,
            Method::POST,
            format!("{}/api/v1/hosts/{}/ek-override", self.base, encode(name)),
            Some(&self.token),
            Some(&body),
        )
        .await
    }
}

impl AdminClient {
    /// Store an IMA runtime policy (JSON of `vouch_ima::policy::PolicyDocument`); the same
    /// content gets the same id.
    pub async fn add_ima_policy(
        &self,
        policy: &serde_json::Value,
    ) -> Result<ImaPolicyCreated, ClientError> {
        call(
            &self.http,
            Method::POST,
            format!("{}/api/v1/ima/policies", self.base),
            Some(&self.token),
            Some(policy),
        )
        .await
    }

    /// Give a host an IMA runtime policy (`None` removes it).
    pub async fn set_ima_policy(
        &self,
        name: &str,
        policy_id: Option<&str>,
    ) -> Result<HostSummary, ClientError> {
        let body = ImaPolicyAssignment {
            policy_id: policy_id.map(str::to_owned),
        };
        call(
            &self.http,
            Method::POST,
            format!("{}/api/v1/hosts/{}/ima-policy", self.base, encode(name)),
            Some(&self.token),
            Some(&body),
        )
        .await
    }

    /// Give every current host matching `selector` an IMA runtime policy.
    pub async fn assign_ima_policy(
        &self,
        policy_id: &str,
        selector: &str,
    ) -> Result<Vec<HostSummary>, ClientError> {
        let body = ImaPolicySelectorAssignment {
            policy_id: policy_id.to_owned(),
            selector: selector.to_owned(),
        };
        call(
            &self.http,
            Method::POST,
            format!("{}/api/v1/ima/assign", self.base),
            Some(&self.token),
            Some(&body),
        )
        .await
    }
}

impl AdminClient {
    async fn send<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        call(
            &self.http,
            method,
            format!("{}{path}", self.base),
            Some(&self.token),
            body,
        )
        .await
    }

    /// The reference store and its releases.
    pub async fn references(&self) -> Result<crate::fleet::ReferencesView, ClientError> {
        self.admin(Method::GET, "/api/v1/references").await
    }

    /// Propose (and with `accept`, store) reference values learned from a host or a cohort.
    pub async fn learn(
        &self,
        req: &crate::fleet::LearnRequest,
    ) -> Result<crate::fleet::LearnResponse, ClientError> {
        self.send(Method::POST, "/api/v1/references/learn", Some(req))
            .await
    }

    /// Change the lifecycle state of release `name`: `action` is `revoke`, `deprecate` or
    /// `activate`.
    pub async fn set_release_state(
        &self,
        name: &str,
        action: &str,
        req: &crate::fleet::RefStateRequest,
    ) -> Result<crate::fleet::RefStateChanged, ClientError> {
        let path = format!("/api/v1/references/{}/{}", encode(name), encode(action));
        self.send(Method::POST, &path, Some(req)).await
    }

    /// Store a fleet policy document (`vouch_appraisal::PolicyDoc` JSON) under its id.
    pub async fn put_policy(
        &self,
        id: &str,
        doc: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/api/v1/policies/{}", encode(id));
        self.send(Method::PUT, &path, Some(doc)).await
    }

    /// Replace the reference store (`vouch_appraisal::RefStore` JSON) with a new version.
    pub async fn put_references(
        &self,
        store: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.send(Method::PUT, "/api/v1/references", Some(store))
            .await
    }

    /// The newest version of every fleet policy.
    pub async fn policies(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        self.admin(Method::GET, "/api/v1/policies").await
    }

    /// Plan a rollout campaign.
    pub async fn create_rollout(
        &self,
        id: &str,
        req: &crate::fleet::RolloutRequest,
    ) -> Result<crate::fleet::RolloutView, ClientError> {
        let path = format!("/api/v1/rollouts/{}", encode(id));
        self.send(Method::PUT, &path, Some(req)).await
    }

    /// Move a campaign: `action` is `start`, `advance`, `complete` or `abort`.
    pub async fn rollout_action(
        &self,
        id: &str,
        action: &str,
        req: &crate::fleet::RolloutAction,
    ) -> Result<crate::fleet::RolloutView, ClientError> {
        let path = format!("/api/v1/rollouts/{}/{}", encode(id), encode(action));
        self.send(Method::POST, &path, Some(req)).await
    }

    /// One campaign and where its hosts are.
    pub async fn rollout(&self, id: &str) -> Result<crate::fleet::RolloutView, ClientError> {
        self.admin(Method::GET, &format!("/api/v1/rollouts/{}", encode(id)))
            .await
    }

    /// Every campaign.
    pub async fn rollouts(&self) -> Result<Vec<crate::fleet::RolloutView>, ClientError> {
        self.admin(Method::GET, "/api/v1/rollouts").await
    }

    /// Failing hosts grouped by cause, outliers, hosts failing before appraisal.
    pub async fn fleet_triage(&self) -> Result<crate::fleet::FleetTriage, ClientError> {
        self.admin(Method::GET, "/api/v1/fleet/triage").await
    }

    /// Rotate the EAR signing key.
    pub async fn rotate_ear_key(&self) -> Result<crate::fleet::EarKeyRotated, ClientError> {
        self.admin(Method::POST, "/api/v1/ear/rotate").await
    }
}

/// Percent-encode a path segment (host names are usually plain, but never trust that).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The agent's side of the API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
}

impl AgentClient {
    /// Before enrolment: server-authenticated TLS only.
    pub fn anonymous(base_url: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        Ok(Self {
            http: builder(ca_pem, None)?,
            base: trim(base_url),
        })
    }

    /// After enrolment: mutual TLS with the host certificate and key (PEM, concatenated).
    pub fn with_identity(
        base_url: &str,
        ca_pem: &[u8],
        cert_and_key_pem: &[u8],
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http: builder(ca_pem, Some(cert_and_key_pem))?,
            base: trim(base_url),
        })
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        call(
            &self.http,
            Method::POST,
            format!("{}{path}", self.base),
            None,
            Some(body),
        )
        .await
    }

    /// Enrolment step 1.
    pub async fn enrol(&self, req: &EnrolRequest) -> Result<EnrolResponse, ClientError> {
        self.post("/api/v1/agent/enrol", req).await
    }

    /// Enrolment step 2.
    pub async fn activate(&self, req: &ActivateRequest) -> Result<ActivateResponse, ClientError> {
        self.post("/api/v1/agent/activate", req).await
    }

    /// Ask whether to attest now (the verifier may hold the request until the host is due).
    pub async fn challenge(&self) -> Result<ChallengeResponse, ClientError> {
        call::<(), _>(
            &self.http,
            Method::GET,
            format!("{}/api/v1/agent/challenge", self.base),
            None,
            None,
        )
        .await
    }

    /// Send evidence.
    pub async fn evidence(&self, req: &EvidenceRequest) -> Result<EvidenceResponse, ClientError> {
        self.post("/api/v1/agent/evidence", req).await
    }

    /// This host's status.
    pub async fn status(&self) -> Result<HostSummary, ClientError> {
        call::<(), _>(
            &self.http,
            Method::GET,
            format!("{}/api/v1/agent/status", self.base),
            None,
            None,
        )
        .await
    }
}

/// True for statuses after which retrying the same request cannot help.
#[must_use]
pub fn is_permanent(status: StatusCode) -> bool {
    status.is_client_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && status != StatusCode::REQUEST_TIMEOUT
}
