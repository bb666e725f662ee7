//! The HTTP side: routes, handlers and the in-memory registry behind them.
//!
//! Every error body is OAuth-style JSON `{"error", "error_description"}`. Descriptions are fixed
//! texts or names the caller sent; they never contain a token, an assertion or a key.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use mc_jose::{
    b64url_decode, b64url_encode, random_token, unix_now, verify_es256, verify_jws, Algorithm,
    ClaimChecks, JoseError, Jwk, JwkSet, JwsSigner, Jwt, SigningKey,
};
use mc_secret::{SecretBytes, SecretString};
use serde_json::{json, Map, Value};

use crate::authz::{self, AuthzState, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN};
use crate::dpop::{bound_jkt, DpopState, Expected, ProofError};
use crate::faults::{FaultTarget, Faults, HttpFault, StatsCounters};
use crate::persist::{self, ClientRecord, StateFile, TenantFile};
use crate::{DevIdpConfig, DevIdpError, ACR_STRONG, DEMO_AUDIENCE};

/// The development RSA key (2048 bits, PKCS#8) for RS*/PS* tokens: ring cannot generate RSA
/// keys, so one made with `openssl genpkey` is committed. Dev only: never trust it anywhere.
const DEV_RSA_KEY_PKCS8: &[u8] = include_bytes!("dev-rsa2048.pk8.der");

const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ASSERTION_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const AUTH_METHOD_PRIVATE_KEY_JWT: &str = "private_key_jwt";
/// Public clients (native apps) authenticate with `client_id` alone.
const AUTH_METHOD_NONE: &str = "none";
const ALG_ES256: &str = "ES256";

/// Clock tolerance for client assertions (their clock is not ours).
const ASSERTION_LEEWAY_SECS: i64 = 60;
/// A client assertion may live at most this long from now (plus the tolerance).
const ASSERTION_MAX_LIFETIME_SECS: i64 = 300;
/// Tokens we issued ourselves are checked against our own clock: no tolerance.
const OWN_TOKEN_LEEWAY_SECS: i64 = 0;
const MAX_JTI_LEN: usize = 256;
const MAX_CLIENT_NAME_LEN: usize = 256;

pub(crate) fn issuer_for(base_url: &str, tenant: &str) -> String {
    format!("{base_url}/realms/{tenant}")
}

fn token_endpoint_for(issuer: &str) -> String {
    format!("{issuer}/protocol/openid-connect/token")
}

fn registration_endpoint_for(issuer: &str) -> String {
    format!("{issuer}/clients-registrations/openid-connect")
}

/// An issuer that is certainly not `issuer`, for the wrong-issuer faults.
fn foreign_issuer(base_url: &str, tenant: &str) -> String {
    issuer_for(base_url, &format!("not-{tenant}"))
}

// ---------------------------------------------------------------------------------------------
// Shared state

pub(crate) struct Shared {
    base_url: String,
    pub(crate) config: DevIdpConfig,
    pub stats: StatsCounters,
    pub faults: Faults,
    /// Signs tokens when `Faults::sign_with_foreign_key` is on; never published, never persisted.
    foreign_key: SigningKey,
    /// Signs tokens instead of the tenant keys when `DevIdpConfig::signing_alg` is not ES256.
    other_alg_key: Option<JwsSigner>,
    /// Opaque device tokens issued (`DevIdpConfig::opaque_device_tokens`): token → (tenant,
    /// claims). Expired ones are dropped when a new one is issued.
    opaque_tokens: Mutex<HashMap<String, OpaqueToken>>,
    registry: Mutex<Registry>,
    /// DPoP nonce and proof replay store.
    dpop: DpopState,
    /// Users, public clients, logins, codes and refresh tokens (see `authz`).
    authz: Mutex<AuthzState>,
}

/// An opaque token's tenant and claims.
type OpaqueToken = (String, Map<String, Value>);

struct Registry {
    /// Every tenant known: the configured ones, plus any others found in the state file (kept so
    /// that saving does not drop them, but not served).
    tenants: BTreeMap<String, TenantState>,
    /// Client assertion ids already seen: (tenant, client_id, jti) → the assertion's `exp`.
    used_jtis: HashMap<(String, String, String), i64>,
}

struct TenantState {
    key: Arc<SigningKey>,
    /// Keys rotated out but still published (and accepted) until the next rotation drops
    /// them; not persisted.
    retired_keys: Vec<Arc<SigningKey>>,
    clients: BTreeMap<String, ClientRecord>,
}

impl Shared {
    pub fn new(base_url: String, config: DevIdpConfig) -> Result<Self, DevIdpError> {
        let mut tenants = BTreeMap::new();
        let loaded = match &config.state_dir {
            Some(dir) => persist::load(dir)?,
            None => None,
        };
        let mut must_save = config.state_dir.is_some() && loaded.is_none();
        if let (Some(state), Some(dir)) = (loaded, &config.state_dir) {
            for (name, tenant) in state.tenants {
                let key = decode_signing_key(&tenant.signing_key_pkcs8).map_err(|reason| {
                    DevIdpError::State {
                        path: persist::state_path(dir),
                        reason: format!("signing key of tenant {name:?}: {reason}"),
                    }
                })?;
                let clients = tenant
                    .clients
                    .into_iter()
                    .map(|c| (c.client_id.clone(), c))
                    .collect();
                tenants.insert(
                    name,
                    TenantState {
                        key: Arc::new(key),
                        retired_keys: Vec::new(),
                        clients,
                    },
                );
            }
        }
        for name in &config.tenants {
            if !tenants.contains_key(name) {
                tenants.insert(
                    name.clone(),
                    TenantState {
                        key: Arc::new(SigningKey::generate()?),
                        retired_keys: Vec::new(),
                        clients: BTreeMap::new(),
                    },
                );
                must_save = true;
            }
        }
        let shared = Self {
            base_url,
            stats: StatsCounters::default(),
            faults: Faults::default(),
            foreign_key: SigningKey::generate()?,
            other_alg_key: match config.signing_alg {
                Algorithm::Es256 => None,
                Algorithm::Es384 | Algorithm::EdDsa => {
                    Some(JwsSigner::generate(config.signing_alg)?)
                }
                rsa => Some(JwsSigner::from_pkcs8(rsa, DEV_RSA_KEY_PKCS8)?),
            },
            opaque_tokens: Mutex::default(),
            authz: Mutex::new(AuthzState::new(&config.users, &config.public_clients)),
            config,
            registry: Mutex::new(Registry {
                tenants,
                used_jtis: HashMap::new(),
            }),
            dpop: DpopState::new(),
        };
        if must_save {
            let registry = shared.lock();
            if let (Err(reason), Some(dir)) = (shared.persist(&registry), &shared.config.state_dir)
            {
                return Err(DevIdpError::State {
                    path: persist::state_path(dir),
                    reason,
                });
            }
        }
        Ok(shared)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A panic elsewhere while holding the lock leaves plain data behind, still consistent enough
    /// for a development server: keep serving rather than poison every later request.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn authz(&self) -> MutexGuard<'_, AuthzState> {
        self.authz
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The `iss` and `iat` of a token issued now, as the faults want them (another issuer,
    /// issued so long ago that it has expired).
    pub(crate) fn issuer_and_now(&self, tenant: &str) -> (String, i64) {
        let ttl = i64::try_from(self.config.access_token_ttl_secs).unwrap_or(i64::MAX);
        let now = if self.faults.issue_expired_tokens() {
            // Issued so long ago that it expired ten minutes before now.
            unix_now().saturating_sub(ttl).saturating_sub(600)
        } else {
            unix_now()
        };
        let iss = if self.faults.wrong_token_issuer() {
            foreign_issuer(&self.base_url, tenant)
        } else {
            issuer_for(&self.base_url, tenant)
        };
        (iss, now)
    }

    /// The claims of a JWT this IDP issued for `tenant` (signature and issuer checked, expiry
    /// not), or `None`.
    pub(crate) fn own_token_claims(&self, tenant: &str, token: &str) -> Option<Map<String, Value>> {
        let keys = self.tenant_jwks(tenant).ok()?;
        let verified = verify_own_token(self, token, &keys).ok()?;
        (verified.claim_str("iss") == Some(issuer_for(&self.base_url, tenant).as_str()))
            .then_some(verified.claims)
    }

    /// The key of the request's valid DPoP proof for a POST to `htu`, `None` without a proof.
    pub(crate) fn check_post_proof(
        &self,
        headers: &HeaderMap,
        htu: &str,
    ) -> Result<Option<String>, OAuthError> {
        self.dpop
            .check(
                headers,
                &Expected {
                    method: "POST",
                    htu,
                    access_token: None,
                },
                self.faults.require_dpop_nonce(),
                unix_now(),
            )
            .map_err(|error| OAuthError::token_proof_refused(error, self.dpop.nonce()))
    }

    fn is_served(&self, tenant: &str) -> bool {
        self.config.tenants.iter().any(|t| t == tenant)
    }

    pub fn client_exists(&self, tenant: &str, client_id: &str) -> bool {
        self.is_served(tenant)
            && self
                .lock()
                .tenants
                .get(tenant)
                .is_some_and(|t| t.clients.contains_key(client_id))
    }

    /// The registered client whose tokens name `sub` (its service-account user).
    pub fn client_of_subject(&self, tenant: &str, sub: &str) -> Option<String> {
        self.lock().tenants.get(tenant).and_then(|t| {
            t.clients
                .values()
                .find(|client| client.sub == sub)
                .map(|client| client.client_id.clone())
        })
    }

    /// Removes a client without RFC 7592 (an administrator's deletion). The state file is
    /// rewritten when there is one; a failed write is logged (a development server).
    pub fn remove_client(&self, tenant: &str, client_id: &str) -> bool {
        let mut registry = self.lock();
        let removed = registry
            .tenants
            .get_mut(tenant)
            .and_then(|t| t.clients.remove(client_id))
            .is_some();
        if removed {
            if let Err(reason) = self.persist(&registry) {
                tracing::error!(%reason, "could not save dev IDP state after removing a client");
            }
        }
        removed
    }

    /// The claims of an opaque token of `tenant` this IDP issued and that has not expired.
    fn opaque_claims(&self, tenant: &str, token: &str) -> Option<Map<String, Value>> {
        let tokens = self
            .opaque_tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (issued_for, claims) = tokens.get(token)?;
        let exp = claims.get("exp").and_then(Value::as_i64)?;
        (issued_for == tenant && exp >= unix_now()).then(|| claims.clone())
    }

    fn remember_opaque(&self, tenant: &str, claims: &Value) -> String {
        let token = random_token(32);
        let mut tokens = self
            .opaque_tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = unix_now();
        tokens.retain(|_, (_, c)| c.get("exp").and_then(Value::as_i64).unwrap_or(0) >= now);
        tokens.insert(
            token.clone(),
            (
                tenant.to_owned(),
                claims.as_object().cloned().unwrap_or_default(),
            ),
        );
        token
    }

    /// The signing key of a served tenant, or the 404 to answer.
    pub(crate) fn tenant_key(&self, tenant: &str) -> Result<Arc<SigningKey>, OAuthError> {
        if !self.is_served(tenant) {
            return Err(OAuthError::unknown_tenant(tenant));
        }
        self.lock()
            .tenants
            .get(tenant)
            .map(|t| Arc::clone(&t.key))
            .ok_or_else(|| OAuthError::unknown_tenant(tenant))
    }

    /// The keys a served tenant publishes: the current one first, then retired ones kept.
    fn tenant_jwks(&self, tenant: &str) -> Result<JwkSet, OAuthError> {
        if !self.is_served(tenant) {
            return Err(OAuthError::unknown_tenant(tenant));
        }
        let registry = self.lock();
        let state = registry
            .tenants
            .get(tenant)
            .ok_or_else(|| OAuthError::unknown_tenant(tenant))?;
        Ok(JwkSet {
            keys: std::iter::once(&state.key)
                .chain(&state.retired_keys)
                .map(|key| key.public_jwk())
                .chain(self.other_alg_key.iter().map(JwsSigner::public_jwk))
                .collect(),
        })
    }

    /// Gives a served tenant a new signing key (new `kid`). The old key stays published when
    /// `keep_old`, else it is dropped with any earlier retired keys. Answers the new `kid`.
    pub fn rotate_signing_key(&self, tenant: &str, keep_old: bool) -> Option<String> {
        if !self.is_served(tenant) {
            return None;
        }
        let fresh = Arc::new(SigningKey::generate().ok()?);
        let mut registry = self.lock();
        let state = registry.tenants.get_mut(tenant)?;
        let old = std::mem::replace(&mut state.key, Arc::clone(&fresh));
        if keep_old {
            state.retired_keys.insert(0, old);
        } else {
            state.retired_keys.clear();
        }
        if let Err(reason) = self.persist(&registry) {
            tracing::error!(%reason, "could not save dev IDP state after a key rotation");
        }
        Some(fresh.kid().to_owned())
    }

    /// Writes the whole registry to `state_dir`, if set. Called with the lock held so that writes
    /// happen in the order of the changes.
    fn persist(&self, registry: &Registry) -> Result<(), String> {
        let Some(dir) = &self.config.state_dir else {
            return Ok(());
        };
        let mut state = StateFile {
            version: 1,
            tenants: BTreeMap::new(),
        };
        for (name, tenant) in &registry.tenants {
            let pkcs8 = tenant.key.to_pkcs8();
            state.tenants.insert(
                name.clone(),
                TenantFile {
                    signing_key_pkcs8: SecretString::new(b64url_encode(pkcs8.expose())),
                    clients: tenant.clients.values().cloned().collect(),
                },
            );
        }
        persist::save(dir, &state)
    }
}

fn decode_signing_key(pkcs8_b64: &SecretString) -> Result<SigningKey, String> {
    let bytes = SecretBytes::new(
        b64url_decode(pkcs8_b64.expose()).map_err(|_| "not base64url".to_owned())?,
    );
    SigningKey::from_pkcs8(&bytes).map_err(|_| "not a PKCS#8 ES256 key".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An OAuth-style error answer.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
    /// For 401 answers of bearer-protected resources (RFC 6750).
    pub(crate) www_authenticate: Option<String>,
    /// A `DPoP-Nonce` header to send (RFC 9449 §8, §9).
    pub(crate) dpop_nonce: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
            dpop_nonce: None,
        }
    }
    pub(crate) fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }
    pub(crate) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
    fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_client_metadata", description)
    }
    fn server_error(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            description,
        )
    }
    fn unknown_tenant(tenant: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "tenant {:?} does not exist at this dev IDP; start it with --tenant NAME",
                shorten(tenant)
            ),
        )
    }
    /// 401 for a bearer-protected resource; `error` None when no credentials were sent at all.
    fn bearer_challenge(realm: &str, error: Option<&'static str>, description: &str) -> Self {
        let challenge = match error {
            Some(code) => format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{description}\""
            ),
            None => format!("Bearer realm=\"{realm}\""),
        };
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: error.unwrap_or("invalid_request"),
            description: description.to_owned(),
            www_authenticate: Some(challenge),
            dpop_nonce: None,
        }
    }
    /// A refused DPoP proof at the token endpoint (RFC 9449 §5): 400, or `use_dpop_nonce`
    /// with our nonce.
    fn token_proof_refused(error: ProofError, nonce: &str) -> Self {
        match error {
            ProofError::Invalid(description) => {
                Self::bad_request("invalid_dpop_proof", description)
            }
            ProofError::NonceRequired => Self {
                dpop_nonce: Some(nonce.to_owned()),
                ..Self::bad_request(
                    "use_dpop_nonce",
                    "the DPoP proof must carry the nonce of the DPoP-Nonce header",
                )
            },
        }
    }
    /// 401 of a DPoP-protected resource (RFC 9449 §7.1).
    fn dpop_challenge(error: &'static str, description: &str, nonce: Option<&str>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error,
            description: description.to_owned(),
            www_authenticate: Some(format!(
                "DPoP algs=\"{ALG_ES256}\", error=\"{error}\", error_description=\"{description}\""
            )),
            dpop_nonce: nonce.map(str::to_owned),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        tracing::debug!(status = %self.status, error = self.error, description = %self.description, "request refused");
        let body = Json(json!({ "error": self.error, "error_description": self.description }));
        let mut response = (self.status, no_store_headers(), body).into_response();
        if let Some(challenge) = self.www_authenticate {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(nonce) = self.dpop_nonce {
            if let Ok(value) = HeaderValue::from_str(&nonce) {
                response.headers_mut().insert("dpop-nonce", value);
            }
        }
        response
    }
}

/// Caller-sent names echoed in descriptions are cut short so an error never balloons.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// Token and registration answers carry credentials: no caching anywhere (RFC 6749 §5.1).
pub(crate) fn no_store_headers() -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// Fixed descriptions for JOSE failures, so no part of a token ever reaches an answer or a log.
fn describe_jose(error: &JoseError) -> &'static str {
    match error {
        JoseError::Malformed(_) => "malformed JWT",
        JoseError::UnsupportedAlgorithm(_) => "unsupported JWS algorithm; only ES256 is accepted",
        JoseError::KeyUnusable(_) => "the key cannot verify this token",
        JoseError::AmbiguousKey => "no kid and several keys fit",
        JoseError::CriticalHeader => "critical JWS header extensions are not understood",
        JoseError::UnknownKey { .. } => "signed by an unknown key",
        JoseError::BadSignature => "signature does not verify",
        JoseError::Crypto(_) => "signature could not be checked",
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/realms/{tenant}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/realms/{tenant}/protocol/openid-connect/certs", get(jwks))
        .route(
            "/realms/{tenant}/protocol/openid-connect/token",
            post(token),
        )
        .route(
            "/realms/{tenant}/protocol/openid-connect/token/introspect",
            post(introspect),
        )
        .route(
            "/realms/{tenant}/clients-registrations/openid-connect",
            post(register),
        )
        .route(
            "/realms/{tenant}/clients-registrations/openid-connect/{client_id}",
            get(read_registration).delete(delete_registration),
        )
        .route(
            "/realms/{tenant}/protocol/openid-connect/auth",
            get(authz::authorize),
        )
        .route(
            "/realms/{tenant}/protocol/openid-connect/auth/login",
            post(authz::login_form),
        )
        .route(
            "/realms/{tenant}/protocol/openid-connect/ext/par/request",
            post(authz::pushed_authorization_request),
        )
        .route(
            "/realms/{tenant}/protocol/openid-connect/revoke",
            post(authz::revoke),
        )
        .route("/demo/echo", get(echo).post(echo))
        .route("/demo/step-up", get(step_up).post(step_up))
        .route("/demo/redirect", get(demo_redirect).post(demo_redirect))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            inject_http_fault,
        ))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Injected HTTP faults (see `Faults::set_http_fault`)

/// Answers a request with the armed [`HttpFault`] when it is aimed at this endpoint; otherwise
/// (and after a `Delay`) the real handler answers.
async fn inject_http_fault(
    State(s): Shr,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let target = fault_target(request.method(), request.uri().path());
    let Some(fault) = s.faults.take_http_fault(target) else {
        return next.run(request).await;
    };
    tracing::debug!(?target, ?fault, "answering with an injected fault");
    match fault {
        HttpFault::Status {
            status,
            retry_after_secs,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let error = if status == StatusCode::SERVICE_UNAVAILABLE {
                "temporarily_unavailable"
            } else {
                "server_error"
            };
            let mut response =
                OAuthError::new(status, error, "fault injected by the dev IDP").into_response();
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        HttpFault::OAuthError {
            status,
            error,
            description,
        } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            no_store_headers(),
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response(),
        HttpFault::MalformedJson => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"issuer":"http://127.0.0.1/realms/demo","token_endpoint":"#,
        )
            .into_response(),
        HttpFault::HtmlPage { status } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>Bad Gateway</title></head>\
             <body><h1>Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>",
        )
            .into_response(),
        HttpFault::OversizedBody { bytes } => oversized_answer(s, bytes),
        HttpFault::Delay { millis } => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            next.run(request).await
        }
    }
}

/// Which endpoint a request is for, as far as faults are concerned.
fn fault_target(method: &Method, path: &str) -> FaultTarget {
    const REGISTRATIONS: &str = "/clients-registrations/openid-connect";
    if path.ends_with("/.well-known/openid-configuration") {
        FaultTarget::Discovery
    } else if path.ends_with("/protocol/openid-connect/certs") {
        FaultTarget::Jwks
    } else if path.ends_with("/protocol/openid-connect/token") {
        FaultTarget::Token
    } else if path.ends_with("/protocol/openid-connect/token/introspect") {
        FaultTarget::Introspection
    } else if path.contains("/protocol/openid-connect/auth") || path.contains("/ext/par/") {
        FaultTarget::Authorization
    } else if path.ends_with("/protocol/openid-connect/revoke") {
        FaultTarget::Revocation
    } else if path.ends_with(REGISTRATIONS) && method == Method::POST {
        FaultTarget::Registration
    } else if path.contains(&format!("{REGISTRATIONS}/")) {
        FaultTarget::RegistrationManagement
    } else {
        FaultTarget::Any
    }
}

/// 200 JSON of `bytes` bytes, produced 64 KiB at a time as the client reads: a client that
/// stops at its limit and hangs up ends the stream early.
fn oversized_answer(s: Arc<Shared>, bytes: u64) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let chunks = futures::stream::unfold(0u64, move |sent| {
        let s = Arc::clone(&s);
        async move {
            if sent >= bytes {
                return None;
            }
            let len = CHUNK.min(bytes - sent);
            s.faults.count_oversized_bytes(len);
            let mut chunk = vec![b' '; usize::try_from(len).unwrap_or(0)];
            if sent == 0 {
                if let Some(first) = chunk.first_mut() {
                    *first = b'[';
                }
            }
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(chunk)),
                sent + len,
            ))
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

async fn not_found() -> OAuthError {
    OAuthError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; start from {base}/realms/{tenant}/.well-known/openid-configuration",
    )
}

async fn method_not_allowed() -> OAuthError {
    OAuthError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "this endpoint does not accept that HTTP method",
    )
}

type Shr = State<Arc<Shared>>;

async fn discovery(State(s): Shr, Path(tenant): Path<String>) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.discovery);
    s.tenant_key(&tenant)?;
    let issuer = issuer_for(&s.base_url, &tenant);
    let advertised_issuer = if s.faults.wrong_discovery_issuer() {
        foreign_issuer(&s.base_url, &tenant)
    } else {
        issuer.clone()
    };
    let mut document = json!({
        "issuer": advertised_issuer,
        "token_endpoint": token_endpoint_for(&issuer),
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
        "registration_endpoint": registration_endpoint_for(&issuer),
        "introspection_endpoint": format!("{}/introspect", token_endpoint_for(&issuer)),
        "authorization_endpoint": authz::authorization_endpoint_for(&issuer),
        "pushed_authorization_request_endpoint": authz::par_endpoint_for(&issuer),
        "require_pushed_authorization_requests": false,
        "revocation_endpoint": authz::revocation_endpoint_for(&issuer),
        "revocation_endpoint_auth_methods_supported": [AUTH_METHOD_NONE],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            GRANT_AUTHORIZATION_CODE,
            GRANT_REFRESH_TOKEN,
            GRANT_CLIENT_CREDENTIALS,
            GRANT_TOKEN_EXCHANGE,
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "acr_values_supported": authz::ACR_VALUES_SUPPORTED,
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["en"],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
            "name", "preferred_username", "email",
        ],
        "token_endpoint_auth_methods_supported": [AUTH_METHOD_PRIVATE_KEY_JWT, AUTH_METHOD_NONE],
        "token_endpoint_auth_signing_alg_values_supported": [ALG_ES256],
        "scopes_supported": authz::SCOPES_SUPPORTED,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [s.config.signing_alg.name()],
        "dpop_signing_alg_values_supported": [ALG_ES256],
    });
    if !s.config.advertise_par {
        if let Some(fields) = document.as_object_mut() {
            fields.remove("pushed_authorization_request_endpoint");
        }
    }
    Ok(as_cached(&s, Json(document).into_response()))
}

async fn jwks(State(s): Shr, Path(tenant): Path<String>) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.jwks);
    Ok(as_cached(&s, Json(s.tenant_jwks(&tenant)?).into_response()))
}

/// With [`crate::Faults::set_stale_metadata_secs`]: the answer as a CDN cache serves it, its
/// `Date` from when it was cached and `Age` since then.
fn as_cached(s: &Shared, mut response: Response) -> Response {
    let age = s.faults.stale_metadata_secs();
    if age > 0 {
        let cached_at = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        let headers = response.headers_mut();
        if let Ok(date) = axum::http::HeaderValue::from_str(&httpdate::fmt_http_date(cached_at)) {
            headers.insert(axum::http::header::DATE, date);
        }
        headers.insert(axum::http::header::AGE, axum::http::HeaderValue::from(age));
    }
    response
}

/// `/demo/redirect`: a 307 to `/demo/echo` on the same origin (method and body kept), for
/// clients that must send a fresh DPoP proof on each hop.
async fn demo_redirect(uri: Uri) -> Response {
    let target = match uri.query() {
        Some(query) => format!("/demo/echo?{query}"),
        None => "/demo/echo".to_string(),
    };
    (
        axum::http::StatusCode::TEMPORARY_REDIRECT,
        [(axum::http::header::LOCATION, target)],
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Registration (RFC 7591 / 7592)

async fn register(
    State(s): Shr,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.registration);
    s.tenant_key(&tenant)?;
    let metadata: Value = serde_json::from_slice(&body).map_err(|_| {
        OAuthError::invalid_client_metadata("the body must be a JSON object of client metadata")
    })?;
    let metadata = metadata.as_object().ok_or_else(|| {
        OAuthError::invalid_client_metadata("the body must be a JSON object of client metadata")
    })?;
    let request = validate_registration(&s.config, metadata)?;

    let issuer = issuer_for(&s.base_url, &tenant);
    let client_id = random_token(16);
    let record = ClientRecord {
        client_id: client_id.clone(),
        sub: uuid::Uuid::new_v4().to_string(),
        software_id: request.software_id,
        client_name: request.client_name,
        grant_types: request.grant_types,
        jwk: request.jwk,
        registration_access_token: SecretString::new(random_token(32)),
        client_id_issued_at: unix_now(),
        dpop_bound_access_tokens: request.dpop_bound_access_tokens,
    };
    {
        let mut registry = s.lock();
        let clients = &mut registry
            .tenants
            .get_mut(&tenant)
            .ok_or_else(|| OAuthError::unknown_tenant(&tenant))?
            .clients;
        if let Some(max) = s.config.max_clients {
            if clients.len() >= max {
                return Err(OAuthError::new(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    format!(
                        "tenant already has the maximum of {max} clients; delete one or raise max_clients"
                    ),
                ));
            }
        }
        clients.insert(client_id.clone(), record.clone());
        if let Err(reason) = s.persist(&registry) {
            if let Some(t) = registry.tenants.get_mut(&tenant) {
                t.clients.remove(&client_id);
            }
            tracing::error!(%reason, "could not save dev IDP state; registration undone");
            return Err(OAuthError::server_error(
                "the dev IDP could not save its state; check its state directory",
            ));
        }
    }
    tracing::info!(tenant = %tenant, client_id = %client_id, software_id = %record.software_id, "client registered");

    let client_uri = format!("{}/{client_id}", registration_endpoint_for(&issuer));
    let mut body = client_metadata(&record, &client_uri);
    body.insert(
        "registration_access_token".to_owned(),
        Value::String(record.registration_access_token.expose().to_owned()),
    );
    let mut response = (StatusCode::CREATED, no_store_headers(), Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&client_uri) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

struct RegistrationRequest {
    software_id: String,
    client_name: Option<String>,
    grant_types: Vec<String>,
    jwk: Jwk,
    dpop_bound_access_tokens: bool,
}

fn validate_registration(
    config: &DevIdpConfig,
    metadata: &Map<String, Value>,
) -> Result<RegistrationRequest, OAuthError> {
    let software_id = match metadata.get("software_id") {
        Some(Value::String(id)) if config.enrollment_clients.contains(id) => id.clone(),
        Some(Value::String(id)) => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "software_id {:?} is not an enrollment client of this IDP",
                shorten(id)
            )))
        }
        _ => {
            return Err(OAuthError::invalid_client_metadata(
                "software_id (the enrollment client id) is required",
            ))
        }
    };
    match metadata.get("token_endpoint_auth_method") {
        Some(Value::String(m)) if m == AUTH_METHOD_PRIVATE_KEY_JWT => {}
        _ => {
            return Err(OAuthError::invalid_client_metadata(
                "token_endpoint_auth_method must be private_key_jwt",
            ))
        }
    }
    match metadata.get("token_endpoint_auth_signing_alg") {
        None | Some(Value::Null) => {}
        Some(Value::String(alg)) if alg == ALG_ES256 => {}
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(
                "token_endpoint_auth_signing_alg must be ES256",
            ))
        }
    }
    let dpop_bound_access_tokens = match metadata.get("dpop_bound_access_tokens") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(bound)) => *bound,
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(
                "dpop_bound_access_tokens must be true or false",
            ))
        }
    };
    if metadata.contains_key("jwks_uri") {
        return Err(OAuthError::invalid_client_metadata(
            "jwks_uri is not supported; send the public key inline in jwks",
        ));
    }
    let jwk = validate_client_jwk(metadata.get("jwks"))?;

    let grant_types = match metadata.get("grant_types") {
        None | Some(Value::Null) => vec![GRANT_CLIENT_CREDENTIALS.to_owned()],
        Some(Value::Array(items)) => {
            let mut grants: Vec<String> = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(g) if g == GRANT_CLIENT_CREDENTIALS || g == GRANT_TOKEN_EXCHANGE => {
                        if !grants.iter().any(|known| known == g) {
                            grants.push(g.to_owned());
                        }
                    }
                    _ => {
                        return Err(OAuthError::invalid_client_metadata(
                            "grant_types may only contain client_credentials and urn:ietf:params:oauth:grant-type:token-exchange",
                        ))
                    }
                }
            }
            if grants.is_empty() {
                return Err(OAuthError::invalid_client_metadata(
                    "grant_types must not be empty",
                ));
            }
            grants
        }
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(
                "grant_types must be an array of strings",
            ))
        }
    };
    let client_name = match metadata.get("client_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.chars().count() <= MAX_CLIENT_NAME_LEN => {
            Some(name.clone())
        }
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "client_name must be a string of at most {MAX_CLIENT_NAME_LEN} characters"
            )))
        }
    };
    Ok(RegistrationRequest {
        software_id,
        client_name,
        grant_types,
        jwk,
        dpop_bound_access_tokens,
    })
}

/// Exactly one public EC P-256 key; stored with `kid` (its thumbprint unless given), `use` sig, `alg` ES256.
fn validate_client_jwk(jwks: Option<&Value>) -> Result<Jwk, OAuthError> {
    let bad = |why: &str| OAuthError::invalid_client_metadata(format!("jwks: {why}"));
    let keys = jwks
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("required, as {\"keys\": [one EC P-256 public key]}"))?;
    let [raw] = keys.as_slice() else {
        return Err(bad("must hold exactly one key"));
    };
    let object = raw
        .as_object()
        .ok_or_else(|| bad("the key must be a JSON object"))?;
    if object.contains_key("d") {
        return Err(bad(
            "the key contains a private part (d); send only the public key, and treat this key as leaked",
        ));
    }
    let mut jwk: Jwk =
        serde_json::from_value(raw.clone()).map_err(|_| bad("the key is not a valid JWK"))?;
    if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") {
        return Err(bad("the key must be kty EC, crv P-256"));
    }
    for coordinate in [&jwk.x, &jwk.y] {
        let valid = coordinate
            .as_deref()
            .and_then(|c| b64url_decode(c).ok())
            .is_some_and(|bytes| bytes.len() == 32);
        if !valid {
            return Err(bad("x and y must be 32-byte base64url coordinates"));
        }
    }
    if jwk.alg.as_deref().is_some_and(|alg| alg != ALG_ES256) {
        return Err(bad("the key's alg must be ES256"));
    }
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(bad("the key's use must be sig"));
    }
    if jwk.kid.is_none() {
        jwk.kid = Some(
            jwk.thumbprint()
                .map_err(|_| bad("the key is not a valid EC public key"))?,
        );
    }
    jwk.use_ = Some("sig".to_owned());
    jwk.alg = Some(ALG_ES256.to_owned());
    Ok(jwk)
}

/// The registration metadata as returned by RFC 7591/7592 (without the access token).
fn client_metadata(record: &ClientRecord, client_uri: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("client_id".into(), json!(record.client_id));
    body.insert(
        "client_id_issued_at".into(),
        json!(record.client_id_issued_at),
    );
    if let Some(name) = &record.client_name {
        body.insert("client_name".into(), json!(name));
    }
    body.insert("software_id".into(), json!(record.software_id));
    body.insert("grant_types".into(), json!(record.grant_types));
    body.insert(
        "token_endpoint_auth_method".into(),
        json!(AUTH_METHOD_PRIVATE_KEY_JWT),
    );
    body.insert("token_endpoint_auth_signing_alg".into(), json!(ALG_ES256));
    body.insert("jwks".into(), json!({ "keys": [record.jwk] }));
    if record.dpop_bound_access_tokens {
        body.insert("dpop_bound_access_tokens".into(), json!(true));
    }
    body.insert("registration_client_uri".into(), json!(client_uri));
    body
}

/// The `Bearer` credential of a request, if any.
fn bearer_token(headers: &HeaderMap) -> Option<SecretString> {
    credential_of_scheme(headers, "bearer")
}

/// The `DPoP` credential of a request (RFC 9449 §7.1), if any.
fn dpop_token(headers: &HeaderMap) -> Option<SecretString> {
    credential_of_scheme(headers, "dpop")
}

fn credential_of_scheme(headers: &HeaderMap, wanted: &str) -> Option<SecretString> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case(wanted) && !token.is_empty()).then(|| SecretString::new(token))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client record when `headers` carry its registration access token; 401 otherwise.
fn authorize_management(
    s: &Shared,
    tenant: &str,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<ClientRecord, OAuthError> {
    s.tenant_key(tenant)?;
    let refused = |description: &str| {
        OAuthError::bearer_challenge("registration", Some("invalid_token"), description)
    };
    let Some(presented) = bearer_token(headers) else {
        return Err(OAuthError::bearer_challenge(
            "registration",
            None,
            "send the registration access token as Authorization: Bearer",
        ));
    };
    let registry = s.lock();
    let record = registry
        .tenants
        .get(tenant)
        .and_then(|t| t.clients.get(client_id))
        .ok_or_else(|| refused("unknown client or wrong registration access token"))?;
    if !constant_time_eq(
        presented.expose().as_bytes(),
        record.registration_access_token.expose().as_bytes(),
    ) {
        return Err(refused("unknown client or wrong registration access token"));
    }
    Ok(record.clone())
}

async fn read_registration(
    State(s): Shr,
    Path((tenant, client_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.registration_read);
    let record = authorize_management(&s, &tenant, &client_id, &headers)?;
    let client_uri = format!(
        "{}/{client_id}",
        registration_endpoint_for(&issuer_for(&s.base_url, &tenant))
    );
    Ok((
        no_store_headers(),
        Json(client_metadata(&record, &client_uri)),
    )
        .into_response())
}

async fn delete_registration(
    State(s): Shr,
    Path((tenant, client_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.registration_delete);
    authorize_management(&s, &tenant, &client_id, &headers)?;
    let mut registry = s.lock();
    let removed = registry
        .tenants
        .get_mut(&tenant)
        .and_then(|t| t.clients.remove(&client_id));
    let Some(removed) = removed else {
        // Deleted concurrently between the check and now: same answer as an unknown client.
        return Err(OAuthError::bearer_challenge(
            "registration",
            Some("invalid_token"),
            "unknown client or wrong registration access token",
        ));
    };
    if let Err(reason) = s.persist(&registry) {
        if let Some(t) = registry.tenants.get_mut(&tenant) {
            t.clients.insert(client_id.clone(), removed);
        }
        tracing::error!(%reason, "could not save dev IDP state; deletion undone");
        return Err(OAuthError::server_error(
            "the dev IDP could not save its state; check its state directory",
        ));
    }
    drop(registry);
    tracing::info!(tenant = %tenant, client_id = %client_id, "client deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

async fn token(
    State(s): Shr,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let key = match s.tenant_key(&tenant) {
        Ok(key) => key,
        Err(error) => {
            StatsCounters::bump(&s.stats.token_other);
            return Err(error);
        }
    };
    let params = match form {
        Ok(Form(pairs)) => TokenParams::new(pairs),
        Err(_) => Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )),
    };
    let params = match params {
        Ok(params) => params,
        Err(error) => {
            StatsCounters::bump(&s.stats.token_other);
            return Err(error);
        }
    };
    let grant_type = params.get("grant_type").unwrap_or_default();
    match grant_type {
        GRANT_CLIENT_CREDENTIALS => StatsCounters::bump(&s.stats.token_client_credentials),
        GRANT_TOKEN_EXCHANGE => StatsCounters::bump(&s.stats.token_exchange),
        GRANT_AUTHORIZATION_CODE => StatsCounters::bump(&s.stats.token_authorization_code),
        GRANT_REFRESH_TOKEN => StatsCounters::bump(&s.stats.token_refresh),
        _ => StatsCounters::bump(&s.stats.token_other),
    }
    if s.faults.reject_all_tokens_with_invalid_client() {
        return Err(OAuthError::invalid_client(
            "client authentication failed (fault injected by the dev IDP)",
        ));
    }
    if grant_type.is_empty() {
        return Err(OAuthError::invalid_request("grant_type is required"));
    }
    if ![
        GRANT_CLIENT_CREDENTIALS,
        GRANT_TOKEN_EXCHANGE,
        GRANT_AUTHORIZATION_CODE,
        GRANT_REFRESH_TOKEN,
    ]
    .contains(&grant_type)
    {
        return Err(OAuthError::bad_request(
            "unsupported_grant_type",
            "only authorization_code, refresh_token, client_credentials and token exchange are supported",
        ));
    }

    let issuer = issuer_for(&s.base_url, &tenant);
    // The proof first: a nonce challenge must not burn the client assertion's jti.
    let proof_jkt = s
        .dpop
        .check(
            &headers,
            &Expected {
                method: "POST",
                htu: &token_endpoint_for(&issuer),
                access_token: None,
            },
            s.faults.require_dpop_nonce(),
            unix_now(),
        )
        .map_err(|error| OAuthError::token_proof_refused(error, s.dpop.nonce()))?;
    if grant_type == GRANT_AUTHORIZATION_CODE || grant_type == GRANT_REFRESH_TOKEN {
        return authz::user_grant(&s, &tenant, &key, grant_type, &params, proof_jkt);
    }
    // A public client (a native app with a user's token) exchanges by client_id alone.
    let public_client = params.get("client_assertion").is_none()
        && params
            .get("client_id")
            .is_some_and(|id| s.authz().is_public_client(id));
    if grant_type == GRANT_TOKEN_EXCHANGE && public_client {
        if s.faults.refuse_public_client_exchange() {
            return Err(OAuthError::bad_request(
                "unauthorized_client",
                "standard token exchange is not enabled for the requested client (fault injected by the dev IDP)",
            ));
        }
        let client_id = params.get("client_id").unwrap_or_default();
        return exchange(&s, &tenant, &key, client_id, &params, proof_jkt);
    }
    let client = authenticate_client(&s, &tenant, &issuer, &params)?;
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::bad_request(
            "unauthorized_client",
            "this client did not register that grant type",
        ));
    }
    if client.dpop_bound_access_tokens && proof_jkt.is_none() {
        return Err(OAuthError::bad_request(
            "invalid_dpop_proof",
            "this client registered dpop_bound_access_tokens: send a DPoP proof",
        ));
    }

    if grant_type == GRANT_CLIENT_CREDENTIALS {
        let subject = s
            .faults
            .device_token_subject()
            .unwrap_or_else(|| client.sub.clone());
        let issued = issue_access_token(
            &s,
            &tenant,
            &key,
            &client.client_id,
            &subject,
            &client.client_id,
            proof_jkt.as_deref(),
            &Map::new(),
        )?;
        tracing::info!(tenant = %tenant, client_id = %client.client_id, "client_credentials token issued");
        return Ok(token_response(issued, false));
    }
    exchange(&s, &tenant, &key, &client.client_id, &params, proof_jkt)
}

/// Claims of a subject token that the exchanged token keeps: who logged in, how and when,
/// and the login (`sid`) whose revocation must reach it.
const CARRIED_CLAIMS: &[&str] = &["acr", "amr", "auth_time", "sid"];

/// Token exchange (RFC 8693) for an authenticated device client or a public client.
fn exchange(
    s: &Shared,
    tenant: &str,
    key: &SigningKey,
    client_id: &str,
    params: &TokenParams,
    proof_jkt: Option<String>,
) -> Result<Response, OAuthError> {
    let issuer = issuer_for(&s.base_url, tenant);
    let subject_token = params
        .get("subject_token")
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    if params.get("subject_token_type") != Some(TOKEN_TYPE_ACCESS_TOKEN) {
        return Err(OAuthError::invalid_request(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS_TOKEN)
    {
        return Err(OAuthError::invalid_request(
            "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    let audience = params
        .get("audience")
        .ok_or_else(|| OAuthError::invalid_request("audience is required"))?;
    if s.config.enrollment_clients.iter().any(|c| c == audience)
        || !s.config.audiences.iter().any(|a| a == audience)
    {
        return Err(OAuthError::bad_request(
            "invalid_target",
            format!(
                "audience {:?} is not an exchange audience of this IDP",
                shorten(audience)
            ),
        ));
    }
    let subject = match s.opaque_claims(tenant, subject_token) {
        Some(claims) => Jwt {
            header: Map::new(),
            claims,
        },
        None => verify_own_token(s, subject_token, &s.tenant_jwks(tenant)?).map_err(|error| {
            OAuthError::invalid_request(format!("subject_token: {}", describe_jose(&error)))
        })?,
    };
    // Only access tokens (RFC 9068 `at+jwt`): an ID token is signed by the same key and names
    // the client in `azp`, but it has no `cnf`, so exchanging it would drop the DPoP binding.
    if !subject.header.is_empty()
        && subject.header.get("typ").and_then(Value::as_str) != Some("at+jwt")
    {
        return Err(OAuthError::invalid_request(
            "subject_token is not an access token of this IDP (an ID token is not a credential)",
        ));
    }
    subject
        .check(&ClaimChecks {
            issuer: Some(&issuer),
            audience: None,
            now: unix_now(),
            leeway: OWN_TOKEN_LEEWAY_SECS,
        })
        .map_err(|error| OAuthError::invalid_request(format!("subject_token: {error}")))?;
    if subject.claim_str("azp") != Some(client_id) {
        return Err(OAuthError::invalid_request(
            "subject_token was not issued to the requesting client",
        ));
    }
    if s.authz().is_revoked(&subject.claims) {
        return Err(OAuthError::bad_request(
            "invalid_grant",
            "subject_token was revoked; the user must log in again",
        ));
    }
    // A DPoP-bound subject token is exchanged only by the holder of its key (RFC 9449 §6).
    if let Some(jkt) = bound_jkt(&subject.claims) {
        if proof_jkt.as_deref() != Some(jkt) {
            return Err(OAuthError::bad_request(
                "invalid_grant",
                "subject_token is DPoP-bound: prove possession of its key with a DPoP proof",
            ));
        }
    }
    let sub = subject
        .claim_str("sub")
        .ok_or_else(|| OAuthError::invalid_request("subject_token has no sub"))?
        .to_owned();
    let audience = if s.faults.exchange_for_another_audience() {
        format!("not-{audience}")
    } else {
        audience.to_owned()
    };
    let carried: Map<String, Value> = CARRIED_CLAIMS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), subject.claims.get(*name)?.clone())))
        .collect();
    let issued = issue_access_token(
        s,
        tenant,
        key,
        client_id,
        &sub,
        &audience,
        proof_jkt.as_deref(),
        &carried,
    )?;
    tracing::info!(tenant = %tenant, client_id = %client_id, audience = %audience, "token exchanged");
    Ok(token_response(issued, true))
}

/// The form parameters of a token request; a repeated parameter is refused (RFC 6749 §3.2).
pub(crate) struct TokenParams(HashMap<String, String>);

impl TokenParams {
    pub(crate) fn new(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {:?} is repeated",
                    shorten(&name)
                )));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// A parameter; an empty value counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Client authentication by `private_key_jwt` only. Every failure is 401 `invalid_client`.
fn authenticate_client(
    s: &Shared,
    tenant: &str,
    issuer: &str,
    params: &TokenParams,
) -> Result<ClientRecord, OAuthError> {
    if params.get("client_assertion_type") != Some(ASSERTION_TYPE_JWT_BEARER) {
        return Err(OAuthError::invalid_client(
            "authenticate with private_key_jwt: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let assertion = params
        .get("client_assertion")
        .ok_or_else(|| OAuthError::invalid_client("client_assertion is required"))?;
    let unverified = Jwt::decode_unverified(assertion).map_err(|error| {
        OAuthError::invalid_client(format!("client_assertion: {}", describe_jose(&error)))
    })?;
    let client_id = unverified
        .claim_str("iss")
        .ok_or_else(|| OAuthError::invalid_client("client_assertion has no iss"))?;
    if params.get("client_id").is_some_and(|id| id != client_id) {
        return Err(OAuthError::invalid_client(
            "client_id differs from the client_assertion's iss",
        ));
    }
    let client = s
        .lock()
        .tenants
        .get(tenant)
        .and_then(|t| t.clients.get(client_id))
        .cloned()
        .ok_or_else(|| {
            OAuthError::invalid_client("unknown client; it may have been deleted: enroll again")
        })?;
    let keys = JwkSet {
        keys: vec![client.jwk.clone()],
    };
    let assertion = verify_es256(assertion, &keys).map_err(|error| {
        OAuthError::invalid_client(format!("client_assertion: {}", describe_jose(&error)))
    })?;
    if assertion.claim_str("iss") != Some(client.client_id.as_str())
        || assertion.claim_str("sub") != Some(client.client_id.as_str())
    {
        return Err(OAuthError::invalid_client(
            "client_assertion: iss and sub must both be the client_id",
        ));
    }
    let token_endpoint = token_endpoint_for(issuer);
    let audience_ok = match assertion.claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer || *aud == token_endpoint,
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| aud == issuer || aud == token_endpoint),
        _ => false,
    };
    if !audience_ok {
        return Err(OAuthError::invalid_client(
            "client_assertion: aud must be the issuer or the token endpoint",
        ));
    }
    let now = unix_now();
    assertion
        .check(&ClaimChecks {
            issuer: None,
            audience: None,
            now,
            leeway: ASSERTION_LEEWAY_SECS,
        })
        .map_err(|error| OAuthError::invalid_client(format!("client_assertion: {error}")))?;
    let exp = assertion
        .claim_i64("exp")
        .ok_or_else(|| OAuthError::invalid_client("client_assertion: exp is required"))?;
    if exp > now + ASSERTION_MAX_LIFETIME_SECS + ASSERTION_LEEWAY_SECS {
        return Err(OAuthError::invalid_client(
            "client_assertion: exp is too far in the future (at most 5 minutes)",
        ));
    }
    let jti = assertion
        .claim_str("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| OAuthError::invalid_client("client_assertion: jti is required"))?;
    {
        let mut registry = s.lock();
        // Forget assertions that can no longer be replayed anyway: they have expired.
        registry
            .used_jtis
            .retain(|_, expires| *expires + ASSERTION_LEEWAY_SECS >= now);
        let key = (tenant.to_owned(), client.client_id.clone(), jti.to_owned());
        if registry.used_jtis.contains_key(&key) {
            return Err(OAuthError::invalid_client(
                "client_assertion: jti was already used; make a fresh assertion per request",
            ));
        }
        registry.used_jtis.insert(key, exp);
    }
    Ok(client)
}

struct IssuedToken {
    access_token: SecretString,
    expires_in: u64,
    /// Bound to this key thumbprint (DPoP): token type `DPoP`.
    dpop_bound: bool,
}

/// An access token for `sub`, to `client_id`, for `audience`; `carried` claims (`acr`, `amr`,
/// `auth_time`, `sid` of an exchanged user token) go over the defaults.
#[allow(clippy::too_many_arguments)]
fn issue_access_token(
    s: &Shared,
    tenant: &str,
    tenant_key: &SigningKey,
    client_id: &str,
    sub: &str,
    audience: &str,
    dpop_jkt: Option<&str>,
    carried: &Map<String, Value>,
) -> Result<IssuedToken, OAuthError> {
    let ttl = s.config.access_token_ttl_secs;
    let (iss, now) = s.issuer_and_now(tenant);
    let mut claims = json!({
        "iss": iss,
        "sub": sub,
        "aud": audience,
        "azp": client_id,
        "client_id": client_id,
        "acr": "0",
        "scope": "openid",
        "iat": now,
        "exp": now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        "jti": random_token(16),
    });
    if let Some(object) = claims.as_object_mut() {
        object.extend(carried.clone());
    }
    if let Some(jkt) = dpop_jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    if audience != client_id {
        if let Some(secs) = s.faults.exchanged_token_exp_secs() {
            // `exp` near or past while `expires_in` below still claims the usual lifetime.
            claims["exp"] = json!(unix_now().saturating_add(secs));
        }
    }
    if s.config.opaque_device_tokens && audience == client_id {
        return Ok(IssuedToken {
            access_token: SecretString::new(s.remember_opaque(tenant, &claims)),
            expires_in: ttl,
            dpop_bound: dpop_jkt.is_some(),
        });
    }
    let access_token = sign_own_token(s, tenant_key, "at+jwt", &claims)?;
    Ok(IssuedToken {
        access_token: SecretString::new(access_token),
        expires_in: ttl,
        dpop_bound: dpop_jkt.is_some(),
    })
}

/// Signs a token as every token of this IDP is signed: the tenant key, the key of the
/// configured algorithm, or the foreign key of the fault.
pub(crate) fn sign_own_token(
    s: &Shared,
    tenant_key: &SigningKey,
    typ: &str,
    claims: &Value,
) -> Result<String, OAuthError> {
    let signed = if s.faults.sign_with_foreign_key() {
        s.foreign_key.sign_jwt(typ, Map::new(), claims)
    } else if let Some(other) = &s.other_alg_key {
        other.sign_jwt(typ, Map::new(), claims)
    } else {
        tenant_key.sign_jwt(typ, Map::new(), claims)
    };
    signed.map_err(|_| OAuthError::server_error("the dev IDP could not sign the token"))
}

/// RFC 7662 introspection, for the registered client authenticated by `private_key_jwt`: the
/// claims of an opaque token issued to that client, else `{"active": false}` (unknown, expired,
/// a JWT, another client's token).
async fn introspect(
    State(s): Shr,
    Path(tenant): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.introspection);
    s.tenant_key(&tenant)?;
    let params = match form {
        Ok(Form(pairs)) => TokenParams::new(pairs)?,
        Err(_) => {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ))
        }
    };
    let issuer = issuer_for(&s.base_url, &tenant);
    let client = authenticate_client(&s, &tenant, &issuer, &params)?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = match s.opaque_claims(&tenant, token) {
        Some(mut claims)
            if claims.get("client_id").and_then(Value::as_str) == Some(&client.client_id) =>
        {
            claims.insert("active".into(), Value::Bool(true));
            claims.insert("token_type".into(), json!("Bearer"));
            if let Some(members) = s.faults.introspection_override() {
                claims.extend(members);
            }
            Value::Object(claims)
        }
        _ => json!({"active": false}),
    };
    Ok((no_store_headers(), Json(answer)).into_response())
}

/// Verifies a token this IDP issued: with the configured signing algorithm.
fn verify_own_token(s: &Shared, token: &str, keys: &JwkSet) -> Result<Jwt, JoseError> {
    verify_jws(token, keys, &[s.config.signing_alg])
}

fn token_response(issued: IssuedToken, exchanged: bool) -> Response {
    let mut body = json!({
        "access_token": issued.access_token.expose(),
        "token_type": if issued.dpop_bound { "DPoP" } else { "Bearer" },
        "expires_in": issued.expires_in,
    });
    if exchanged {
        body["issued_token_type"] = json!(TOKEN_TYPE_ACCESS_TOKEN);
    }
    (no_store_headers(), Json(body)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Demo resource

/// Request headers echoed back (besides every `x-…` header). Never Authorization or Cookie.
const ECHOED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "user-agent",
    "traceparent",
    "tracestate",
];

/// The verified claims of the access token a demo resource call carries, and whether it came
/// as DPoP: audience `demo-api`, our signature and issuer, not expired, not revoked, and for a
/// bound token a valid proof of its key (RFC 9449 §7).
fn verify_resource_token(
    s: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Jwt, bool), OAuthError> {
    let (token, is_dpop) = match (bearer_token(headers), dpop_token(headers)) {
        (Some(token), None) => (token, false),
        (None, Some(token)) => (token, true),
        _ => {
            return Err(OAuthError::bearer_challenge(
                DEMO_AUDIENCE,
                None,
                "send an access token for audience demo-api as Authorization: Bearer, or DPoP with a proof",
            ))
        }
    };
    let refused = |description: &str| {
        if is_dpop {
            OAuthError::dpop_challenge("invalid_token", description, None)
        } else {
            OAuthError::bearer_challenge(DEMO_AUDIENCE, Some("invalid_token"), description)
        }
    };
    let unverified =
        Jwt::decode_unverified(token.expose()).map_err(|_| refused("malformed token"))?;
    let tenant = unverified
        .claim_str("iss")
        .and_then(|iss| {
            s.config
                .tenants
                .iter()
                .find(|t| issuer_for(&s.base_url, t) == iss)
        })
        .ok_or_else(|| refused("token from an unknown issuer"))?
        .clone();
    let keys = s
        .tenant_jwks(&tenant)
        .map_err(|_| refused("token from an unknown issuer"))?;
    let verified = verify_own_token(s, token.expose(), &keys)
        .map_err(|error| refused(describe_jose(&error)))?;
    let issuer = issuer_for(&s.base_url, &tenant);
    verified
        .check(&ClaimChecks {
            issuer: Some(&issuer),
            audience: Some(DEMO_AUDIENCE),
            now: unix_now(),
            leeway: OWN_TOKEN_LEEWAY_SECS,
        })
        .map_err(|error| refused(&error.to_string()))?;
    // Sender constraint (RFC 9449 §7): a bound token is worth nothing without its key.
    match (bound_jkt(&verified.claims), is_dpop) {
        (None, false) => {}
        (Some(_), false) => {
            return Err(OAuthError::dpop_challenge(
                "invalid_token",
                "this token is DPoP-bound: send it as Authorization: DPoP with a proof of its key",
                None,
            ))
        }
        (None, true) => return Err(refused("this token is not DPoP-bound; send it as Bearer")),
        (Some(jkt), true) => {
            let htu = format!("{}{}", s.base_url, uri.path());
            let proven = s
                .dpop
                .check(
                    headers,
                    &Expected {
                        method: method.as_str(),
                        htu: &htu,
                        access_token: Some(token.expose()),
                    },
                    s.faults.require_dpop_nonce(),
                    unix_now(),
                )
                .map_err(|error| match error {
                    ProofError::Invalid(description) => {
                        OAuthError::dpop_challenge("invalid_dpop_proof", description, None)
                    }
                    ProofError::NonceRequired => OAuthError::dpop_challenge(
                        "use_dpop_nonce",
                        "the DPoP proof must carry the nonce of the DPoP-Nonce header",
                        Some(s.dpop.nonce()),
                    ),
                })?;
            match proven {
                Some(proof_jkt) if proof_jkt == jkt => {}
                Some(_) => {
                    return Err(OAuthError::dpop_challenge(
                        "invalid_dpop_proof",
                        "the DPoP proof is signed by another key than the token is bound to",
                        None,
                    ))
                }
                None => {
                    return Err(OAuthError::dpop_challenge(
                        "invalid_dpop_proof",
                        "send a DPoP proof header with a DPoP token",
                        None,
                    ))
                }
            }
        }
    }

    if s.authz().is_revoked(&verified.claims) {
        return Err(refused("the token was revoked"));
    }
    Ok((verified, is_dpop))
}

/// `/demo/step-up`: like `/demo/echo`, but it also wants a strong login (`acr` =
/// [`ACR_STRONG`]) no older than `max_age`; otherwise the RFC 9470 challenge.
async fn step_up(
    State(s): Shr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.step_up);
    let (verified, is_dpop) = verify_resource_token(&s, &method, &uri, &headers)?;
    if verified.claim_str("acr") != Some(ACR_STRONG) {
        return Err(authz::step_up_challenge(
            is_dpop,
            "this resource needs a login with a second factor",
        ));
    }
    let fresh = verified
        .claim_i64("auth_time")
        .is_some_and(|at| at.saturating_add(authz::STEP_UP_MAX_AGE_SECS) >= unix_now());
    if !fresh {
        return Err(authz::step_up_challenge(
            is_dpop,
            "the login is too old for this resource; log in again",
        ));
    }
    Ok(Json(json!({
        "sub": verified.claim_str("sub"),
        "acr": verified.claim_str("acr"),
        "token_type": if is_dpop { "DPoP" } else { "Bearer" },
    }))
    .into_response())
}

async fn echo(
    State(s): Shr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.echo);
    let (verified, is_dpop) = verify_resource_token(&s, &method, &uri, &headers)?;

    let mut echoed = Map::new();
    for (name, value) in &headers {
        let name = name.as_str();
        if ECHOED_HEADERS.contains(&name) || name.starts_with("x-") {
            if let Ok(text) = value.to_str() {
                let entry = echoed
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::String(String::new()));
                if let Value::String(joined) = entry {
                    if !joined.is_empty() {
                        joined.push_str(", ");
                    }
                    joined.push_str(text);
                }
            }
        }
    }
    let answer = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "body": String::from_utf8_lossy(&body),
        "sub": verified.claim_str("sub"),
        "aud": verified.claims.get("aud"),
        "token_type": if is_dpop { "DPoP" } else { "Bearer" },
        "headers": echoed,
    });
    Ok(Json(answer).into_response())
}
