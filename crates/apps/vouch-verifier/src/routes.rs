//! HTTP routes: thin handlers (extract, call the domain, return), documented with utoipa so
//! `/api/openapi.json` is generated from them.

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vouch_api::{
    ActivateRequest, ActivateResponse, ApiErrorBody, AttestationRecord, ChallengeResponse,
    ClearRequest, EkOverrideRequest, EnrolRequest, EnrolResponse, EnrolmentsView, EvidenceRequest,
    EvidenceResponse, HostDetail, HostSummary, ImaPolicyAssignment, ImaPolicyCreated,
    ImaPolicySelectorAssignment, TokenCreated, TokenInfo, TokenRequest,
};

use vouch_api::fleet::{
    EarKeyRotated, FleetTriage, LearnRequest, LearnResponse, RefStateChanged, RefStateRequest,
    ReferencesView, RolloutAction, RolloutRequest, RolloutView,
};

use crate::admin::{self, Actor, Admin, BaselineRequest, Operator, Reader};
use crate::agent::{self, AgentHost};
use crate::error::{ApiError, ApiJson};
use crate::ratelimit::Class;
use crate::state::{AppState, metric};

/// Body limit of the evidence route: an event log of up to 1 MiB and an IMA list tail of up
/// to 12 MiB ([`crate::ima::MAX_IMA_TAIL`]) in base64, plus the rest. Larger parts inside this
/// limit get a precise 413 from the decoder.
pub const EVIDENCE_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// Body limit of `POST /api/v1/ima/policies` (a 50,000-path allowlist is about 6 MiB).
pub const IMA_POLICY_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Body limit of `PUT /api/v1/references` (a fleet's reference store).
pub const REFERENCES_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Body limit of every other route.
pub const BODY_LIMIT: usize = 256 * 1024;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Vouch verifier", description = "TPM 2.0 remote attestation: enrolment, challenges, evidence, hosts"),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The application router (no TLS): what [`crate::serve`] runs behind its accept loop, and
/// what tests drive with `tower::ServiceExt::oneshot`. Agent routes read the
/// [`agent::ClientIdentity`] extension the accept loop inserts.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = openapi_router().split_for_parts();
    api.merge(utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
        .with_state(state)
}

/// The generated OpenAPI document.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().into_openapi()
}

fn openapi_router() -> OpenApiRouter<AppState> {
    let evidence = OpenApiRouter::new()
        .routes(routes!(evidence))
        .layer(DefaultBodyLimit::max(EVIDENCE_BODY_LIMIT));
    let policies = OpenApiRouter::new()
        .routes(routes!(add_ima_policy))
        .layer(DefaultBodyLimit::max(IMA_POLICY_BODY_LIMIT));
    let references = OpenApiRouter::new()
        .routes(routes!(put_references))
        .layer(DefaultBodyLimit::max(REFERENCES_BODY_LIMIT));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(enrol))
        .routes(routes!(activate))
        .routes(routes!(challenge))
        .routes(routes!(agent_status))
        .routes(routes!(list_hosts))
        .routes(routes!(get_host, delete_host))
        .routes(routes!(approve_host))
        .routes(routes!(attest_host))
        .routes(routes!(ek_override))
        .routes(routes!(baseline))
        .routes(routes!(history))
        .routes(routes!(ima_triage))
        .routes(routes!(host_ear))
        .routes(routes!(put_policy))
        .routes(routes!(list_policies))
        .routes(routes!(get_references))
        .routes(routes!(learn_references))
        .routes(routes!(release_state))
        .routes(routes!(list_rollouts))
        .routes(routes!(get_rollout, create_rollout))
        .routes(routes!(rollout_action))
        .routes(routes!(fleet_triage))
        .routes(routes!(rotate_ear_key))
        .routes(routes!(readmit_host))
        .routes(routes!(clear_host))
        .routes(routes!(enrolments))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(set_ima_policy))
        .routes(routes!(assign_ima_policy))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(evidence)
        .merge(policies)
        .merge(references)
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Enrol: present EK (with certificate) and AK; get a credential challenge.
#[utoipa::path(post, path = "/api/v1/agent/enrol", tag = "agent", request_body = EnrolRequest,
    responses((status = 200, body = EnrolResponse),
        (status = 400, body = ApiErrorBody), (status = 403, description = "EK not trusted", body = ApiErrorBody),
        (status = 409, description = "name taken by another TPM, or this TPM enrolled under another name", body = ApiErrorBody),
        (status = 429, description = "too many enrolments from this source", body = ApiErrorBody)))]
async fn enrol(
    State(st): State<AppState>,
    peer: Option<Extension<agent::PeerAddr>>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> ApiResult<EnrolResponse> {
    let peer = peer.map(|Extension(p)| p);
    st.inner
        .limits
        .check(Class::Enrol, &agent::PeerAddr::source(peer))?;
    agent::enrol(&st, req, peer).await.map(Json)
}

/// Activate: prove the AK lives in the EK's TPM; get a client certificate.
#[utoipa::path(post, path = "/api/v1/agent/activate", tag = "agent", request_body = ActivateRequest,
    responses((status = 200, body = ActivateResponse), (status = 400, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody)))]
async fn activate(
    State(st): State<AppState>,
    peer: Option<Extension<agent::PeerAddr>>,
    ApiJson(req): ApiJson<ActivateRequest>,
) -> ApiResult<ActivateResponse> {
    // Not rate-limited: activation needs a pending enrolment's id and the secret only its
    // TPM can recover, and stores nothing new; limiting it would strand pending enrolments.
    agent::activate(&st, req, peer.map(|Extension(p)| p))
        .await
        .map(Json)
}

/// Long-poll until the host is due; then a fresh single-use nonce (mutual TLS).
#[utoipa::path(get, path = "/api/v1/agent/challenge", tag = "agent",
    responses((status = 200, body = ChallengeResponse), (status = 401, body = ApiErrorBody)))]
async fn challenge(
    State(st): State<AppState>,
    AgentHost(host): AgentHost,
) -> ApiResult<ChallengeResponse> {
    agent::challenge(&st, host).await.map(Json)
}

/// Evidence answering a challenge (mutual TLS).
#[utoipa::path(post, path = "/api/v1/agent/evidence", tag = "agent", request_body = EvidenceRequest,
    responses((status = 200, body = EvidenceResponse),
        (status = 400, description = "malformed evidence; nothing changed", body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 409, description = "unknown, used or expired nonce; nothing changed", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody)))]
async fn evidence(
    State(st): State<AppState>,
    peer: Option<Extension<agent::PeerAddr>>,
    AgentHost(host): AgentHost,
    ApiJson(req): ApiJson<EvidenceRequest>,
) -> ApiResult<EvidenceResponse> {
    let name = host.name.clone();
    let out = agent::evidence(&st, host, req).await;
    if let Err(e) = &out
        && e.status().is_client_error()
    {
        agent::record_rejected_evidence(&st, &name, peer.map(|Extension(p)| p), e).await;
    }
    out.map(Json)
}

/// The calling host's own status (mutual TLS).
#[utoipa::path(get, path = "/api/v1/agent/status", tag = "agent",
    responses((status = 200, body = HostSummary), (status = 401, body = ApiErrorBody)))]
async fn agent_status(AgentHost(host): AgentHost) -> Json<HostSummary> {
    Json(admin::summary(&host))
}

/// Query of `GET /api/v1/hosts`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct ListQuery {
    /// Include removed hosts (tombstones).
    #[serde(default)]
    all: bool,
}

/// All hosts but removed ones (with `all=true`, removed ones too). A trusted host whose last
/// good appraisal is older than its freshness limit reads `unreachable`.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts", security(("admin_token" = [])),
    params(ListQuery),
    responses((status = 200, body = [HostSummary]), (status = 401, body = ApiErrorBody)))]
async fn list_hosts(
    State(st): State<AppState>,
    _reader: Reader,
    Query(q): Query<ListQuery>,
) -> ApiResult<Vec<HostSummary>> {
    admin::list(&st, q.all).await.map(Json)
}

/// Let a removed host (its name and EK) enrol again; it then waits for approval (audited).
#[utoipa::path(post, path = "/api/v1/hosts/{name}/readmit", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = HostSummary), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn readmit_host(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
) -> ApiResult<HostSummary> {
    admin::readmit(&st, &Actor::from(admin), &name)
        .await
        .map(Json)
}

/// Lift a finding that stays until an operator clears it (a TPM state rollback) (audited).
#[utoipa::path(post, path = "/api/v1/hosts/{name}/clear", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)), request_body = ClearRequest,
    responses((status = 200, body = HostSummary), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn clear_host(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ClearRequest>,
) -> ApiResult<HostSummary> {
    admin::clear(&st, &Actor::from(admin), &name, req)
        .await
        .map(Json)
}

/// Pending enrolments and recent refusals (refused enrolments, rejected evidence) with why.
#[utoipa::path(get, path = "/api/v1/enrolments", tag = "hosts", security(("admin_token" = [])),
    responses((status = 200, body = EnrolmentsView), (status = 401, body = ApiErrorBody)))]
async fn enrolments(State(st): State<AppState>, _reader: Reader) -> ApiResult<EnrolmentsView> {
    admin::enrolments(&st).await.map(Json)
}

/// Every API token (names, roles, expiry; never the secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("admin_token" = [])),
    responses((status = 200, body = [TokenInfo]), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody)))]
async fn list_tokens(State(st): State<AppState>, _admin: Admin) -> ApiResult<Vec<TokenInfo>> {
    admin::tokens(&st).await.map(Json)
}

/// Create an API token with a role; the token is in the answer, and only there (audited).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("admin_token" = [])),
    request_body = TokenRequest,
    responses((status = 200, body = TokenCreated), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn create_token(
    State(st): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<TokenCreated> {
    admin::create_token(&st, &Actor::from(admin), req)
        .await
        .map(Json)
}

/// Revoke an API token: it stops working at once (audited).
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = TokenInfo), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn revoke_token(
    State(st): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> ApiResult<TokenInfo> {
    admin::revoke_token(&st, &Actor::from(admin), &name)
        .await
        .map(Json)
}

/// One host, with baseline, machine state and recent history.
#[utoipa::path(get, path = "/api/v1/hosts/{name}", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = HostDetail), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn get_host(
    State(st): State<AppState>,
    _reader: Reader,
    Path(name): Path<String>,
) -> ApiResult<HostDetail> {
    admin::detail(&st, &name).await.map(Json)
}

/// Remove a host: its certificate stops working at once.
#[utoipa::path(delete, path = "/api/v1/hosts/{name}", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = HostSummary), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn delete_host(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
) -> ApiResult<HostSummary> {
    admin::remove(&st, &Actor::from(admin), &name)
        .await
        .map(Json)
}

/// Approve an enrolled host; it is challenged at once.
#[utoipa::path(post, path = "/api/v1/hosts/{name}/approve", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = HostSummary), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn approve_host(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
) -> ApiResult<HostSummary> {
    admin::approve(&st, &Actor::from(admin), &name)
        .await
        .map(Json)
}

/// Make a host due now.
#[utoipa::path(post, path = "/api/v1/hosts/{name}/attest", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = HostSummary), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn attest_host(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
) -> ApiResult<HostSummary> {
    admin::attest(&st, &Actor::from(admin), &name)
        .await
        .map(Json)
}

/// Allow a host name to enrol without a valid EK certificate chain (audited).
#[utoipa::path(post, path = "/api/v1/hosts/{name}/ek-override", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)), request_body = EkOverrideRequest,
    responses((status = 200, body = HostSummary), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody)))]
async fn ek_override(
    State(st): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<EkOverrideRequest>,
) -> ApiResult<HostSummary> {
    admin::ek_override(&st, &Actor::from(admin), &name, req)
        .await
        .map(Json)
}

/// Pin the host's current state as its baseline, or reset it to be learned again.
#[utoipa::path(post, path = "/api/v1/hosts/{name}/baseline", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)), request_body = BaselineRequest,
    responses((status = 200, body = HostSummary), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn baseline(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<BaselineRequest>,
) -> ApiResult<HostSummary> {
    admin::baseline(&st, &Actor::from(admin), &name, req)
        .await
        .map(Json)
}

/// A host's attestation history, newest first (bounded by the retention setting).
/// Binaries unknown to the runtime policy, grouped per cohort: likely updates vs. one host.
#[utoipa::path(get, path = "/api/v1/ima/triage", tag = "ima", security(("admin_token" = [])),
    responses((status = 200, body = crate::ima_fleet::ImaTriage), (status = 401, body = ApiErrorBody)))]
async fn ima_triage(st: State<AppState>, reader: Reader) -> ApiResult<crate::ima_fleet::ImaTriage> {
    crate::ima_fleet::triage_route(st, reader).await
}

#[utoipa::path(get, path = "/api/v1/hosts/{name}/history", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = [AttestationRecord]), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn history(
    State(st): State<AppState>,
    _reader: Reader,
    Path(name): Path<String>,
) -> ApiResult<Vec<AttestationRecord>> {
    admin::history(&st, &name).await.map(Json)
}

/// Store an IMA runtime policy (JSON: allow, any_path_digests, excludes, keys, ima_buf,
/// kexec_cmdlines, accept_violations); stored once by content.
#[utoipa::path(post, path = "/api/v1/ima/policies", tag = "ima", security(("admin_token" = [])),
    request_body = serde_json::Value,
    responses((status = 200, body = ImaPolicyCreated), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody)))]
async fn add_ima_policy(
    State(st): State<AppState>,
    admin: Operator,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<ImaPolicyCreated> {
    admin::add_ima_policy(&st, &Actor::from(admin), body)
        .await
        .map(Json)
}

/// Give a host an IMA runtime policy (or none); it attests at once, from IMA entry 0.
#[utoipa::path(post, path = "/api/v1/hosts/{name}/ima-policy", tag = "ima", security(("admin_token" = [])),
    params(("name" = String, Path)), request_body = ImaPolicyAssignment,
    responses((status = 200, body = HostSummary), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn set_ima_policy(
    State(st): State<AppState>,
    admin: Operator,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ImaPolicyAssignment>,
) -> ApiResult<HostSummary> {
    admin::set_ima_policy(&st, &Actor::from(admin), &name, req)
        .await
        .map(Json)
}

/// Give every current host matching a selector an IMA runtime policy.
#[utoipa::path(post, path = "/api/v1/ima/assign", tag = "ima", security(("admin_token" = [])),
    request_body = ImaPolicySelectorAssignment,
    responses((status = 200, body = [HostSummary]), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn assign_ima_policy(
    State(st): State<AppState>,
    admin: Operator,
    ApiJson(req): ApiJson<ImaPolicySelectorAssignment>,
) -> ApiResult<Vec<HostSummary>> {
    admin::assign_ima_policy(&st, &Actor::from(admin), req)
        .await
        .map(Json)
}

/// Query of `GET /api/v1/hosts/{name}/ear`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct EarQuery {
    /// The relying party's nonce (8 to 64 bytes, base64url without padding), echoed as
    /// `eat_nonce`.
    nonce: Option<String>,
}

/// A signed attestation result (EAR JWT, ES256) for the host's current appraisal; verify it
/// with the keys at `/.well-known/jwks.json`.
#[utoipa::path(get, path = "/api/v1/hosts/{name}/ear", tag = "hosts", security(("admin_token" = [])),
    params(("name" = String, Path), EarQuery),
    responses((status = 200, description = "compact JWS", content_type = "application/jwt", body = String),
        (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn host_ear(
    State(st): State<AppState>,
    admin: Reader,
    Path(name): Path<String>,
    Query(q): Query<EarQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let token = crate::ear::host_ear(&st, &admin.0, &name, q.nonce.as_deref()).await?;
    Ok((
        [(header::CONTENT_TYPE, crate::ear::JWT_CONTENT_TYPE)],
        token,
    ))
}

/// Store a fleet appraisal policy (a `PolicyDoc`: schema, id, version, selector, rules, and
/// optional operator rules in Rego),
/// validated; versions are never overwritten (audited).
#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "fleet", security(("admin_token" = [])),
    params(("id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = crate::fleet::DocumentStored), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn put_policy(
    State(st): State<AppState>,
    admin: Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<crate::fleet::DocumentStored> {
    crate::fleet::put_policy(&st, &Actor::from(admin), &id, body)
        .await
        .map(Json)
}

/// Store the fleet reference store (a `RefStore`), validated, as its next version (audited).
#[utoipa::path(put, path = "/api/v1/references", tag = "fleet", security(("admin_token" = [])),
    request_body = serde_json::Value,
    responses((status = 200, body = crate::fleet::DocumentStored), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn put_references(
    State(st): State<AppState>,
    admin: Operator,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<crate::fleet::DocumentStored> {
    crate::fleet::put_references(&st, &Actor::from(admin), body)
        .await
        .map(Json)
}

/// The newest version of every fleet policy document.
#[utoipa::path(get, path = "/api/v1/policies", tag = "fleet", security(("admin_token" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ApiErrorBody)))]
async fn list_policies(
    State(st): State<AppState>,
    _reader: Reader,
) -> ApiResult<Vec<serde_json::Value>> {
    crate::fleet::policies(&st).await.map(Json)
}

/// The reference store: releases (state, components, hosts measuring them) and every value.
#[utoipa::path(get, path = "/api/v1/references", tag = "fleet", security(("admin_token" = [])),
    responses((status = 200, body = ReferencesView), (status = 401, body = ApiErrorBody)))]
async fn get_references(State(st): State<AppState>, _reader: Reader) -> ApiResult<ReferencesView> {
    crate::fleet::references(&st).await.map(Json)
}

/// Propose reference values from a host's or a cohort's latest claims (quorum, minority,
/// diff against the stored values); with `accept`, store them (audited).
#[utoipa::path(post, path = "/api/v1/references/learn", tag = "fleet", security(("admin_token" = [])),
    request_body = LearnRequest,
    responses((status = 200, body = LearnResponse), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn learn_references(
    State(st): State<AppState>,
    admin: Operator,
    ApiJson(req): ApiJson<LearnRequest>,
) -> ApiResult<LearnResponse> {
    crate::fleet::learn(&st, &Actor::from(admin), req)
        .await
        .map(Json)
}

/// Revoke, deprecate or activate a release; says which hosts measure it (audited).
#[utoipa::path(post, path = "/api/v1/references/{name}/{action}", tag = "fleet",
    security(("admin_token" = [])),
    params(("name" = String, Path), ("action" = String, Path, description = "revoke, deprecate or activate")),
    request_body = RefStateRequest,
    responses((status = 200, body = RefStateChanged), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn release_state(
    State(st): State<AppState>,
    admin: Operator,
    Path((name, action)): Path<(String, String)>,
    ApiJson(req): ApiJson<RefStateRequest>,
) -> ApiResult<RefStateChanged> {
    crate::fleet::set_release_state(&st, &Actor::from(admin), &name, &action, req)
        .await
        .map(Json)
}

/// Every rollout campaign, with where its cohort's hosts are.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "fleet", security(("admin_token" = [])),
    responses((status = 200, body = Vec<RolloutView>), (status = 401, body = ApiErrorBody)))]
async fn list_rollouts(State(st): State<AppState>, _reader: Reader) -> ApiResult<Vec<RolloutView>> {
    crate::rollout::list(&st).await.map(Json)
}

/// One rollout campaign: hosts on the old release, the new one, and neither.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}", tag = "fleet", security(("admin_token" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
async fn get_rollout(
    State(st): State<AppState>,
    _reader: Reader,
    Path(id): Path<String>,
) -> ApiResult<RolloutView> {
    crate::rollout::get(&st, &id).await.map(Json)
}

/// Plan a rollout campaign (audited).
#[utoipa::path(put, path = "/api/v1/rollouts/{id}", tag = "fleet", security(("admin_token" = [])),
    params(("id" = String, Path)), request_body = RolloutRequest,
    responses((status = 200, body = RolloutView), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
async fn create_rollout(
    State(st): State<AppState>,
    admin: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RolloutRequest>,
) -> ApiResult<RolloutView> {
    crate::rollout::create(&st, &Actor::from(admin), &id, req)
        .await
        .map(Json)
}

/// Start, advance a wave, complete or abort a rollout campaign (audited).
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/{action}", tag = "fleet",
    security(("admin_token" = [])),
    params(("id" = String, Path), ("action" = String, Path, description = "start, advance, complete or abort")),
    request_body = RolloutAction,
    responses((status = 200, body = RolloutView), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
async fn rollout_action(
    State(st): State<AppState>,
    admin: Operator,
    Path((id, action)): Path<(String, String)>,
    ApiJson(req): ApiJson<RolloutAction>,
) -> ApiResult<RolloutView> {
    crate::rollout::act(&st, &Actor::from(admin), &id, &action, req)
        .await
        .map(Json)
}

/// Failing hosts grouped by cause (update in progress vs isolated), outliers with their cohort
/// context, and hosts failing before appraisal.
#[utoipa::path(get, path = "/api/v1/fleet/triage", tag = "fleet", security(("admin_token" = [])),
    responses((status = 200, body = FleetTriage), (status = 401, body = ApiErrorBody)))]
async fn fleet_triage(State(st): State<AppState>, _reader: Reader) -> ApiResult<FleetTriage> {
    crate::fleet_triage::triage(&st).await.map(Json)
}

/// Rotate the EAR signing key; the old key stays published for the grace period (audited).
#[utoipa::path(post, path = "/api/v1/ear/rotate", tag = "fleet", security(("admin_token" = [])),
    responses((status = 200, body = EarKeyRotated), (status = 401, body = ApiErrorBody)))]
async fn rotate_ear_key(State(st): State<AppState>, admin: Admin) -> ApiResult<EarKeyRotated> {
    crate::ear::rotate(&st, &admin.0).await.map(Json)
}

/// The EAR verification keys (RFC 7517 JWK set); no authentication.
async fn jwks(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::ear::jwks(&st))
}

async fn metrics(
    State(st): State<AppState>,
    _reader: Reader,
) -> Result<impl IntoResponse, ApiError> {
    let counts = st.store().count_by_status().await?;
    st.metrics(|| {
        for (status, n) in counts {
            #[expect(clippy::cast_precision_loss, reason = "host counts are far below 2^52")]
            metrics::gauge!(metric::HOSTS, "status" => status.as_str()).set(n as f64);
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.inner.prometheus.render(),
    ))
}

/// Liveness: the process answers (never touches the store).
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store takes a write and the EAR key is loaded; 503 with the reason if not.
async fn readyz(State(st): State<AppState>) -> Result<&'static str, ApiError> {
    crate::Verifier::from_state(st)
        .ready()
        .await
        .map(|()| "ready")
        .map_err(ApiError::Unavailable)
}
