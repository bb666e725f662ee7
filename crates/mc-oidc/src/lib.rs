//! The OAuth 2.0 / OpenID Connect protocol client of an mc-runtime device.
//!
//! What it is for: the wire side of the anonymous-enrollment profile
//! (`protocol-profile.md`, steps 1–9): discovery with a byte-exact issuer check, RFC 7591
//! registration with the device's ES256 JWK, `client_credentials` with a `private_key_jwt`
//! assertion, RFC 8693 token exchange per audience, access-token verification against the
//! JWKS (RS/PS/ES/EdDSA, the IDP's advertised algorithms) or by RFC 7662 introspection for an
//! opaque device token, RFC 7592 deletion, and server time learned from `Date` headers; and the
//! identified-user half (`authorization.rs`): authorization requests with PKCE S256, state, nonce,
//! `dpop_jkt` and PAR, the authorization response with RFC 9207 `iss`, code redemption and the
//! refresh grant as a public native client, ID token validation, RFC 7009 revocation and RFC 9470
//! step-up challenges. HTTP goes through
//! reqwest on rustls with the ring provider only.
//!
//! What it must not touch: storage, events, runtime state. Keys and registration data come
//! in as arguments; typed results and [`OidcError`]s go out. Tokens and assertions never
//! reach a log line, a `Debug` print or an error message.
//!
//! DPoP (RFC 9449, [`DpopMode`]) lives at two places: [`OidcClient`]'s private
//! `token_request` (every token-endpoint POST carries a proof, retried once on
//! `use_dpop_nonce`) and [`OidcClient::resource_authorization`] (every resource call), with
//! [`OidcClient::observe_resource_answer`] for a resource's nonce challenge.
//!
//! Failures: steps that are safe to repeat are retried within [`RetryPolicy`]
//! (`OidcConfig::retry`; which ones and why in `retry.rs`), a registration never;
//! [`OidcClient::reachability`] tells whether the latest request reached the IDP.

mod authorization;
mod dpop;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod http;
mod introspection;
mod retry;
mod transport;
mod verify;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mc_jose::SigningKey;
use mc_secret::SecretString;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub use authorization::{
    parse_authorization_response, step_up_challenge, AuthorizationError, AuthorizationParams,
    AuthorizationResponse, AuthorizationStart, CodeTokens, PendingAuthorization, StepUpChallenge,
    DEFAULT_SCOPE,
};
pub use dpop::{DpopMode, DPOP_HEADER, DPOP_NONCE_HEADER};
pub use error::{idp_text, OidcError, OidcErrorKind, MAX_IDP_TEXT_CHARS};
pub use retry::RetryPolicy;
pub use transport::{
    current_traceparent, tls_client_config, with_traceparent, HostIdentity, Reachability,
};
pub use verify::{ClaimsSource, VerifiedToken};

use retry::{with_retries, Repeatable};
use transport::{error_from_answer, Answer, Endpoint, Transport};
use verify::{
    check_issued_to, check_signature, is_fresh, looks_like_jwt, may_refetch, JwksCache,
    SignatureFailure,
};

const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// The RFC 8693 grant type, as `grant_types_supported` lists it.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Life of a client assertion; node-oidc-provider and Keycloak accept short ones.
const ASSERTION_LIFETIME_SECS: i64 = 60;
/// Assumed life of a token whose answer has no `expires_in` (RFC 6749 makes it optional):
/// short, so the caller logs in again rather than holding a dead token.
const DEFAULT_TOKEN_LIFETIME_SECS: i64 = 300;
/// A token-endpoint refusal that moved the learned server clock by more than this is
/// retried once with assertions in the corrected time.
const CLOCK_RETRY_SECS: i64 = 30;

/// Settings of the protocol client.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// How the issuer is made from server URL and tenant: `{server}/realms/{tenant}`
    /// (Keycloak, default) or `{server}` for single-issuer IDPs.
    pub issuer_template: String,
    /// Clock tolerance for token checks, in seconds.
    pub clock_tolerance_secs: i64,
    /// Limit for connecting and for a whole request including its body.
    pub http_timeout: Duration,
    /// Largest IDP answer body read; a larger one is an `InvalidResponse`.
    pub max_response_bytes: usize,
    pub user_agent: String,
    /// Allow plain http to non-loopback hosts. Off: tokens only travel over TLS, except to
    /// 127.0.0.1 / ::1 / localhost (development IDP).
    pub allow_insecure_http: bool,
    /// A cached JWKS older than this is fetched again before use.
    pub jwks_max_age: Duration,
    /// An unknown `kid` triggers a refetch only if the cached JWKS is at least this old.
    pub jwks_min_refetch_interval: Duration,
    /// Bounded retries of the requests that are safe to repeat: discovery and JWKS on any
    /// transient failure; the token endpoint and registration DELETE only when the request was
    /// certainly not processed (no connection, or 503/429). Registration is never retried.
    pub retry: RetryPolicy,
    /// When to bind tokens to the device key with DPoP (RFC 9449). `Auto` (default): when
    /// the IDP advertises ES256 in `dpop_signing_alg_values_supported`.
    pub dpop: DpopMode,
    /// Extra trusted roots and SPKI pins per host, for IDP requests and the runtime's
    /// resource calls alike (see [`http::TlsSettings`]).
    pub tls: http::TlsSettings,
    /// TEST ONLY (feature `testing`): shifts the device's local clock by this many seconds, to
    /// play a device whose clock is wrong (server time is still learned from `Date` headers).
    #[cfg(any(test, feature = "testing"))]
    pub clock_skew_for_tests_secs: i64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer_template: "{server}/realms/{tenant}".into(),
            clock_tolerance_secs: 60,
            http_timeout: Duration::from_secs(15),
            max_response_bytes: 1024 * 1024,
            user_agent: concat!("mc-runtime/", env!("CARGO_PKG_VERSION")).into(),
            allow_insecure_http: false,
            jwks_max_age: Duration::from_secs(600),
            jwks_min_refetch_interval: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            dpop: DpopMode::Auto,
            tls: http::TlsSettings::default(),
            #[cfg(any(test, feature = "testing"))]
            clock_skew_for_tests_secs: 0,
        }
    }
}

/// OpenID Provider metadata (discovery answer), the fields this client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// What the IDP signs ID tokens with; its access tokens are taken to use the same keys and
    /// algorithms (discovery has no field for access tokens).
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Identified users: where the browser logs in (RFC 6749 §3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// RFC 9126: when present, authorization requests are pushed here first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9207: the IDP puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 7636: when given, it must list `S256` (no downgrade to `plain`).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

impl ProviderMetadata {
    /// The algorithms accepted for this IDP's tokens: what it advertises that we verify, or
    /// all we verify when it advertises nothing.
    pub fn accepted_token_algorithms(&self) -> Vec<mc_jose::Algorithm> {
        mc_jose::Algorithm::accepted_from(&self.id_token_signing_alg_values_supported)
    }
}

/// What the IDP returned for a registration. As secret as the device key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // client_id is the anonymous identity; the management URI names it too.
        f.debug_struct("Registration")
            .field("client_id", &"[redacted]")
            .field(
                "registration_access_token",
                &self
                    .registration_access_token
                    .as_ref()
                    .map(|_| "[redacted]"),
            )
            .field(
                "registration_client_uri",
                &self.registration_client_uri.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// What the registration sends besides the device key.
#[derive(Debug, Clone, Default)]
pub struct RegistrationRequest {
    /// Shown by the IDP; no personal data.
    pub client_name: String,
    /// The enrollment client of the MC-SDK (`clientId` of EnrollAnonymousUserEvent).
    pub software_id: String,
    /// RFC 7591 initial access token, sent as Bearer, when the IDP requires one.
    pub initial_access_token: Option<SecretString>,
}

/// A token answer. Times are server time (see [`OidcClient::now`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Headers that authorise one resource call. Valid for one request only: a DPoP proof is
/// single-use, so a retry asks [`OidcClient::resource_authorization`] again.
#[derive(Debug, Clone)]
pub struct ResourceAuthorization {
    /// Value of the `Authorization` header: `Bearer <token>` or `DPoP <token>`.
    pub authorization: SecretString,
    /// Value of the `DPoP` header (the proof), for a DPoP-bound token.
    pub dpop: Option<SecretString>,
}

/// The protocol client. Cheap to clone; clones share the HTTP connection pool, the JWKS
/// cache and the learned server time.
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: OidcConfig,
    transport: Transport,
    jwks: JwksCache,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("config", &self.inner.config)
            .field("server_offset_secs", &self.inner.transport.clock.offset())
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        if !config.issuer_template.contains("{server}") {
            return Err(OidcError::Config(
                "issuer_template must contain {server}".into(),
            ));
        }
        if config.clock_tolerance_secs < 0 {
            return Err(OidcError::Config(
                "clock_tolerance_secs must not be negative".into(),
            ));
        }
        let transport = Transport::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                transport,
                jwks: JwksCache::default(),
            }),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.inner.config
    }

    /// The issuer for a server URL and tenant, from the issuer template. The tenant is
    /// percent-encoded as one path segment, so it cannot reach another path.
    pub fn issuer_for(&self, server_url: &str, tenant: &str) -> String {
        self.inner
            .config
            .issuer_template
            .replace("{server}", server_url.trim_end_matches('/'))
            .replace("{tenant}", &encode_path_segment(tenant))
    }

    /// Current Unix time of the IDP: local clock plus the offset learned from `Date`
    /// headers of its answers (0 until the first answer).
    pub fn now(&self) -> i64 {
        self.inner.transport.clock.now()
    }

    /// Whether requests to this IDP carry DPoP proofs: [`DpopMode::Auto`] follows the IDP's
    /// `dpop_signing_alg_values_supported` (ES256 must be in it).
    pub fn uses_dpop(&self, meta: &ProviderMetadata) -> bool {
        match self.inner.config.dpop {
            DpopMode::Always => true,
            DpopMode::Never => false,
            DpopMode::Auto => meta
                .dpop_signing_alg_values_supported
                .iter()
                .any(|alg| alg == dpop::PROOF_ALG),
        }
    }

    /// Step 1: fetches `{issuer}/.well-known/openid-configuration`; the `issuer` of the
    /// answer must equal `issuer` byte for byte.
    pub async fn discover(&self, issuer: &str) -> Result<ProviderMetadata, OidcError> {
        let transport = &self.inner.transport;
        let well_known = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let url = &transport.endpoint_url(&well_known, "issuer")?;
        let answer = self
            .with_retries(
                Endpoint::Discovery,
                Repeatable::Always,
                move || async move {
                    let answer = transport
                        .send(Endpoint::Discovery, url, transport.http().get(url.clone()))
                        .await?;
                    if answer.status.is_success() {
                        Ok(answer)
                    } else if answer.status == reqwest::StatusCode::NOT_FOUND {
                        // No issuer lives there: an unknown tenant or a wrong server URL,
                        // which only a change of configuration fixes.
                        Err(OidcError::Config(format!(
                            "the identity provider at {} has no OpenID configuration for this \
                             issuer (HTTP 404): check the tenant and the server URL",
                            transport::origin_of(url)
                        )))
                    } else {
                        Err(non_success(&answer))
                    }
                },
            )
            .await?;
        read_discovery(transport, &answer, issuer)
    }

    /// Step 3: registers the device as its own client (RFC 7591), authenticated later by
    /// `key`.
    pub async fn register(
        &self,
        meta: &ProviderMetadata,
        key: &SigningKey,
        request: &RegistrationRequest,
    ) -> Result<Registration, OidcError> {
        let transport = &self.inner.transport;
        let endpoint = meta.registration_endpoint.as_deref().ok_or_else(|| {
            OidcError::Config(
                "the IDP offers no registration_endpoint; enable dynamic client registration"
                    .into(),
            )
        })?;
        let url = transport.endpoint_url(endpoint, "registration_endpoint")?;
        let body = json!({
            "client_name": request.client_name,
            "software_id": request.software_id,
            "grant_types": [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": { "keys": [key.public_jwk()] },
        });
        let mut body = body;
        if self.uses_dpop(meta) {
            // The IDP then refuses token requests of this client without a proof, so every
            // token it issues to the device is bound to the device key.
            body["dpop_bound_access_tokens"] = Value::Bool(true);
        }
        let mut http_request = transport.http().post(url.clone()).json(&body);
        if let Some(iat) = &request.initial_access_token {
            http_request = http_request.header(AUTHORIZATION, bearer_header(iat)?);
        }
        let answer = transport
            .send(Endpoint::Registration, &url, http_request)
            .await?;
        read_registration(transport, &answer)
    }

    /// Steps 4 and 6: a device token by `client_credentials` with a `private_key_jwt`
    /// assertion. `InvalidClient` means the registration is gone: enroll again.
    pub async fn client_credentials(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        key: &SigningKey,
    ) -> Result<TokenSet, OidcError> {
        let grant = &[("grant_type", GRANT_CLIENT_CREDENTIALS)];
        let auth = ClientAuth::PrivateKeyJwt(client_id);
        self.with_retries(Endpoint::Token, Repeatable::IfNotProcessed, move || {
            self.token_request(meta, auth, key, grant)
        })
        .await
    }

    /// Step 7: exchanges the device token for a token for `audience` (RFC 8693). A JWT
    /// answer whose `aud` does not name `audience` is refused (`InvalidToken`): the device
    /// would otherwise hand an API a token meant for another. Opaque answers cannot be
    /// checked here; the resource checks them.
    pub async fn exchange(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        key: &SigningKey,
        subject_token: &SecretString,
        audience: &str,
    ) -> Result<TokenSet, OidcError> {
        self.exchange_as(
            meta,
            ClientAuth::PrivateKeyJwt(client_id),
            key,
            subject_token,
            audience,
        )
        .await
    }

    /// Step 7 for an identified user: as [`OidcClient::exchange`], with the user's access
    /// token as `subject_token` and the public native client `client_id` as the requester
    /// (no assertion; a DPoP proof of `key` when DPoP is used).
    pub async fn exchange_for_user(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        key: &SigningKey,
        subject_token: &SecretString,
        audience: &str,
    ) -> Result<TokenSet, OidcError> {
        self.exchange_as(
            meta,
            ClientAuth::Public(client_id),
            key,
            subject_token,
            audience,
        )
        .await
    }

    /// The RFC 8693 exchange as `auth` (a device's assertion or a public client's id).
    async fn exchange_as(
        &self,
        meta: &ProviderMetadata,
        auth: ClientAuth<'_>,
        key: &SigningKey,
        subject_token: &SecretString,
        audience: &str,
    ) -> Result<TokenSet, OidcError> {
        let grant = &[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject_token.expose()),
            ("subject_token_type", TOKEN_TYPE_ACCESS_TOKEN),
            ("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN),
            ("audience", audience),
        ];
        let tokens = self
            .with_retries(Endpoint::Token, Repeatable::IfNotProcessed, move || {
                self.token_request(meta, auth, key, grant)
            })
            .await?;
        check_exchanged_audience(&tokens, audience)?;
        Ok(tokens)
    }

    /// Who the host app is (StartEvent's appName, appVersion, locale): `User-Agent` and
    /// `Accept-Language` of every later IDP request.
    pub fn set_host_identity(&self, host: HostIdentity) {
        self.inner.transport.set_host(host);
    }

    /// The host's locales for an IDP page's `ui_locales` (OIDC Core 3.1.2.1), space-separated
    /// BCP 47 tags; `None` when the host named none.
    pub fn ui_locales(&self) -> Option<String> {
        self.inner.transport.host().locales
    }

    /// Whether the latest request reached the IDP: what the runtime's ServerConnection
    /// events report.
    pub fn reachability(&self) -> Reachability {
        self.inner.transport.reachability()
    }

    /// Runs `attempt` under the configured [`RetryPolicy`].
    async fn with_retries<T, F, Fut>(
        &self,
        endpoint: Endpoint,
        repeatable: Repeatable,
        attempt: F,
    ) -> Result<T, OidcError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OidcError>>,
    {
        with_retries(&self.inner.config.retry, endpoint, repeatable, attempt).await
    }

    /// Step 5: verifies a JWT access token against the IDP's JWKS (signature with one of
    /// [`ProviderMetadata::accepted_token_algorithms`], `typ`, `iss`, `exp` with the clock
    /// tolerance at server time). An unknown `kid` refetches the JWKS once, at most once per
    /// `jwks_min_refetch_interval`. An opaque token is `InvalidToken` here: a device token goes
    /// through [`OidcClient::verify_device_token`], which introspects it.
    pub async fn verify_access_token(
        &self,
        meta: &ProviderMetadata,
        token: &SecretString,
    ) -> Result<VerifiedToken, OidcError> {
        let config = &self.inner.config;
        let jwt = self.verified_signature(meta, token.expose()).await?;
        verify::claims_of(jwt, &meta.issuer, self.now(), config.clock_tolerance_secs)
    }

    /// The JWT `token` after its signature verified against the IDP's JWKS with one of
    /// [`ProviderMetadata::accepted_token_algorithms`]. An unknown `kid` refetches the JWKS
    /// once, at most once per `jwks_min_refetch_interval`. Claims are not checked here.
    pub(crate) async fn verified_signature(
        &self,
        meta: &ProviderMetadata,
        token: &str,
    ) -> Result<mc_jose::Jwt, OidcError> {
        let config = &self.inner.config;
        let cache = &self.inner.jwks;
        let cached = match cache.get(&meta.jwks_uri) {
            Some(cached) if is_fresh(&cached, config.jwks_max_age) => cached,
            stale => {
                self.refetch_jwks(&meta.jwks_uri, stale.map(|c| c.fetched_at))
                    .await?
            }
        };
        let allowed = meta.accepted_token_algorithms();
        match check_signature(token, &cached.keys, &allowed) {
            Ok(jwt) => return Ok(jwt),
            Err(SignatureFailure::Rejected(e)) => return Err(e),
            Err(SignatureFailure::UnknownKey) => {}
        }
        if !may_refetch(&cached, config.jwks_min_refetch_interval) {
            return Err(unknown_key());
        }
        let refreshed = self
            .refetch_jwks(&meta.jwks_uri, Some(cached.fetched_at))
            .await?;
        match check_signature(token, &refreshed.keys, &allowed) {
            Ok(jwt) => Ok(jwt),
            Err(SignatureFailure::Rejected(e)) => Err(e),
            Err(SignatureFailure::UnknownKey) => Err(unknown_key()),
        }
    }

    /// Step 5 for the device's own token, issued to `client_id`. A JWT:
    /// [`OidcClient::verify_access_token`], then it must be issued to `client_id`
    /// (`client_id`/`azp`, else `sub`) and DPoP-bound to `key` (`cnf.jkt`; a `DPoP` token must
    /// have one). An opaque token: introspected (RFC 7662) with the same checks when the IDP
    /// advertises an `introspection_endpoint`; otherwise accepted without claims
    /// ([`ClaimsSource::Unavailable`]). Every refusal is `InvalidToken`.
    pub async fn verify_device_token(
        &self,
        meta: &ProviderMetadata,
        tokens: &TokenSet,
        key: &SigningKey,
        client_id: &str,
    ) -> Result<VerifiedToken, OidcError> {
        if !looks_like_jwt(tokens.access_token.expose()) {
            return match meta.introspection_endpoint.as_deref() {
                Some(endpoint) => {
                    self.introspect_device_token(meta, endpoint, tokens, key, client_id)
                        .await
                }
                None => Ok(VerifiedToken {
                    claims: Map::new(),
                    expires_at: tokens.expires_at,
                    subject: None,
                    source: ClaimsSource::Unavailable,
                }),
            };
        }
        let verified = self.verify_access_token(meta, &tokens.access_token).await?;
        check_issued_to(&verified.claims, client_id)?;
        dpop::check_binding(&tokens.token_type, &verified.claims, key)?;
        Ok(verified)
    }

    /// Step 9: deletes the registration (RFC 7592). Gone already (404) counts as done.
    /// `InvalidClient` (401) means the IDP does not accept the registration access token:
    /// RFC 7592 answers so for a client that no longer exists, so the caller may wipe its
    /// record anyway.
    pub async fn delete_registration(
        &self,
        registration_client_uri: &str,
        registration_access_token: &SecretString,
    ) -> Result<(), OidcError> {
        let transport = &self.inner.transport;
        let url = &transport.endpoint_url(registration_client_uri, "registration_client_uri")?;
        let authorization = &bearer_header(registration_access_token)?;
        let delete = move || async move {
            let request = transport
                .http()
                .delete(url.clone())
                .header(AUTHORIZATION, authorization.clone());
            let answer = transport
                .send(Endpoint::RegistrationClient, url, request)
                .await?;
            match answer.status {
                status if status.is_success() => Ok(()),
                reqwest::StatusCode::NOT_FOUND => Ok(()),
                // RFC 7592 answers 401 both for a wrong token and for a client that no longer
                // exists; the body then says `invalid_token`, which is not a token-endpoint code.
                reqwest::StatusCode::UNAUTHORIZED => Err(OidcError::InvalidClient),
                _ => Err(error_from_answer(&answer)),
            }
        };
        self.with_retries(
            Endpoint::RegistrationClient,
            Repeatable::IfNotProcessed,
            delete,
        )
        .await
    }

    /// Step 8: the headers for one resource call with `token` (`method` on `url`): `Bearer`,
    /// or for a DPoP token `DPoP` plus a fresh proof signed by `key` with `ath` and the
    /// origin's latest nonce. No token travels over plain http to a remote host.
    pub fn resource_authorization(
        &self,
        token: &TokenSet,
        key: &SigningKey,
        method: &str,
        url: &str,
    ) -> Result<ResourceAuthorization, OidcError> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(OidcError::Config(
                "HTTP method must be a plain token".into(),
            ));
        }
        let url = self.inner.transport.endpoint_url(url, "resource URL")?;
        if token.token_type.eq_ignore_ascii_case("bearer") {
            Ok(ResourceAuthorization {
                authorization: SecretString::new(format!("Bearer {}", token.access_token.expose())),
                dpop: None,
            })
        } else if token.token_type.eq_ignore_ascii_case("dpop") {
            let nonce = self
                .inner
                .transport
                .dpop_nonces
                .get(&transport::origin_of(&url));
            let proof = dpop::proof(
                key,
                &method.to_ascii_uppercase(),
                &url,
                self.now(),
                nonce.as_deref(),
                Some(&token.access_token),
            )?;
            Ok(ResourceAuthorization {
                authorization: SecretString::new(format!("DPoP {}", token.access_token.expose())),
                dpop: Some(proof),
            })
        } else {
            Err(OidcError::Config(format!(
                "token type `{}` is not supported; only Bearer and DPoP",
                token.token_type.chars().take(32).collect::<String>()
            )))
        }
    }

    /// Tells the client what a resource answered to a call authorised by
    /// [`OidcClient::resource_authorization`]: its `DPoP-Nonce` is remembered for the origin.
    /// True when the answer is a nonce challenge (401 with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` and a new nonce): repeat the call ONCE with a fresh
    /// authorization; a second challenge is the answer.
    pub fn observe_resource_answer(
        &self,
        url: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
    ) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            return false;
        };
        let origin = transport::origin_of(&url);
        let Some(nonce) = headers
            .get(DPOP_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
        else {
            return false;
        };
        let nonces = &self.inner.transport.dpop_nonces;
        nonces.observe(&origin, nonce);
        status == 401
            && nonces.get(&origin).as_deref() == Some(nonce)
            && headers
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(dpop::is_resource_nonce_challenge)
    }

    /// A token-endpoint request answered with a token set (see [`Self::token_answer`]).
    async fn token_request(
        &self,
        meta: &ProviderMetadata,
        auth: ClientAuth<'_>,
        key: &SigningKey,
        grant: &[(&str, &str)],
    ) -> Result<TokenSet, OidcError> {
        let answer = self.token_answer(meta, auth, key, grant).await?;
        parse_token_answer(&answer, self.now())
    }

    /// The one place that builds token-endpoint requests: grant parameters plus client
    /// authentication (`private_key_jwt` for a device, only `client_id` for a public native
    /// client). DPoP adds its proof header here. Returns the successful answer.
    async fn token_answer(
        &self,
        meta: &ProviderMetadata,
        auth: ClientAuth<'_>,
        key: &SigningKey,
        grant: &[(&str, &str)],
    ) -> Result<Answer, OidcError> {
        let transport = &self.inner.transport;
        let url = transport.endpoint_url(&meta.token_endpoint, "token_endpoint")?;
        let use_dpop = self.uses_dpop(meta);
        let origin = transport::origin_of(&url);
        let mut nonce_retried = false;
        let mut clock_retried = false;
        loop {
            let offset_before = transport.clock.offset();
            // Assertion and proof are single-use (their jti): fresh ones for a retry too.
            let mut form: Vec<(&str, &str)> = grant.to_vec();
            let assertion;
            match auth {
                ClientAuth::PrivateKeyJwt(client_id) => {
                    assertion = self.client_assertion(meta, client_id, key)?;
                    form.push(("client_id", client_id));
                    form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                    form.push(("client_assertion", assertion.expose()));
                }
                ClientAuth::Public(client_id) => form.push(("client_id", client_id)),
            }
            let mut request = transport.http().post(url.clone()).form(&form);
            let sent_nonce = transport.dpop_nonces.get(&origin);
            if use_dpop {
                let proof =
                    dpop::proof(key, "POST", &url, self.now(), sent_nonce.as_deref(), None)?;
                request = request.header(DPOP_HEADER, sensitive_header(&proof)?);
            }
            let answer = transport.send(Endpoint::Token, &url, request).await?;
            if answer.status.is_success() {
                return Ok(answer);
            }
            // RFC 9449 §8: 400 `use_dpop_nonce` with a `DPoP-Nonce` (which `send` stored).
            // Retried once only: a server that keeps asking gets its error back.
            let wants_nonce = use_dpop
                && answer.status == reqwest::StatusCode::BAD_REQUEST
                && answer.oauth_error_code().as_deref() == Some(dpop::USE_DPOP_NONCE);
            let new_nonce = transport.dpop_nonces.get(&origin);
            if wants_nonce && !nonce_retried && new_nonce.is_some() && new_nonce != sent_nonce {
                nonce_retried = true;
                tracing::debug!(%origin, "token endpoint asked for a DPoP nonce; retrying once");
                continue;
            }
            // The server clock is learned from token-endpoint answers only: a device whose
            // clock is wrong sends its first assertion with a wrong `iat`. When this answer
            // moved the learned clock by more than a little, retry once with the right time.
            let clock_moved = (transport.clock.offset() - offset_before).abs() > CLOCK_RETRY_SECS;
            if clock_moved && !clock_retried && !answer.status.is_server_error() {
                clock_retried = true;
                tracing::debug!(%origin, "the server clock differs from ours; retrying once");
                continue;
            }
            return Err(token_error(&answer, grant));
        }
    }

    /// ES256 client assertion (RFC 7523): iss = sub = client_id, aud = issuer (one string,
    /// as Keycloak requires), random jti, iat = server time, exp = iat + 60 s.
    fn client_assertion(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        key: &SigningKey,
    ) -> Result<SecretString, OidcError> {
        let iat = self.now();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": meta.issuer,
            "jti": mc_jose::random_token(16),
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_SECS,
        });
        key.sign_jwt("JWT", Map::new(), &claims)
            .map(SecretString::new)
            .map_err(|e| OidcError::Config(format!("device key cannot sign: {e}")))
    }

    /// Fetches the JWKS unless another task refreshed it after `seen_fetched_at` while this
    /// one waited for the gate.
    async fn refetch_jwks(
        &self,
        jwks_uri: &str,
        seen_fetched_at: Option<std::time::Instant>,
    ) -> Result<verify::CachedKeys, OidcError> {
        let cache = &self.inner.jwks;
        let _gate = cache.fetch_gate.lock().await;
        if let Some(current) = cache.get(jwks_uri) {
            let refreshed_meanwhile = match seen_fetched_at {
                Some(seen) => current.fetched_at > seen,
                None => is_fresh(&current, self.inner.config.jwks_max_age),
            };
            if refreshed_meanwhile {
                return Ok(current);
            }
        }
        let transport = &self.inner.transport;
        let url = &transport.endpoint_url(jwks_uri, "jwks_uri")?;
        let answer = self
            .with_retries(Endpoint::Jwks, Repeatable::Always, move || async move {
                let answer = transport
                    .send(Endpoint::Jwks, url, transport.http().get(url.clone()))
                    .await?;
                if answer.status.is_success() {
                    Ok(answer)
                } else {
                    Err(non_success(&answer))
                }
            })
            .await?;
        let keys: mc_jose::JwkSet = answer.json("JWKS")?;
        Ok(cache.put(jwks_uri, keys))
    }
}

/// How a token-endpoint request authenticates its client.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ClientAuth<'a> {
    /// A registered device: a `private_key_jwt` assertion signed by the device key.
    PrivateKeyJwt(&'a str),
    /// A public native client (RFC 8252 §8.4): `client_id` only; PKCE and DPoP bind the
    /// grant to this app instance instead of a secret.
    Public(&'a str),
}

/// A successful discovery answer as [`OidcClient::discover`] accepts it: its `issuer` equal to
/// `issuer` byte for byte, its endpoints allowed by the transport policy.
fn read_discovery(
    transport: &Transport,
    answer: &Answer,
    issuer: &str,
) -> Result<ProviderMetadata, OidcError> {
    let meta: ProviderMetadata = answer.json("discovery document")?;
    if meta.issuer != issuer {
        return Err(OidcError::IssuerMismatch {
            expected: issuer.to_string(),
            found: meta.issuer.chars().take(256).collect(),
        });
    }
    transport.endpoint_url(&meta.token_endpoint, "token_endpoint")?;
    transport.endpoint_url(&meta.jwks_uri, "jwks_uri")?;
    if let Some(registration) = &meta.registration_endpoint {
        transport.endpoint_url(registration, "registration_endpoint")?;
    }
    if let Some(par) = &meta.pushed_authorization_request_endpoint {
        transport.endpoint_url(par, "pushed_authorization_request_endpoint")?;
    }
    Ok(meta)
}

/// A registration answer (any status) as [`OidcClient::register`] reads it.
fn read_registration(transport: &Transport, answer: &Answer) -> Result<Registration, OidcError> {
    if !answer.status.is_success() {
        return Err(match error_from_answer(answer) {
            // Without a client yet, a 401 means the initial access token was refused.
            OidcError::InvalidClient => OidcError::AccessDenied,
            // A registration policy said no, whatever the code: Keycloak answers its
            // Trusted Hosts and Max Clients policies with 403 `insufficient_scope`.
            _ if answer.status == reqwest::StatusCode::FORBIDDEN => OidcError::AccessDenied,
            other => other,
        });
    }
    let registration: Registration = answer.json("registration answer")?;
    if registration.client_id.is_empty() {
        return Err(OidcError::InvalidResponse(
            "registration answer has an empty client_id".into(),
        ));
    }
    if let Some(uri) = &registration.registration_client_uri {
        transport.endpoint_url(uri, "registration_client_uri")?;
    }
    Ok(registration)
}

/// The error of a failed token-endpoint answer. Keycloak answers an unknown `audience` of a
/// token exchange with HTTP 400 `invalid_client` ("Audience not found"), while a failed client
/// authentication is 401. Only the 401 proves the registration gone (the runtime then removes
/// the user), so a 400 `invalid_client` to an exchange is reported as a refused audience.
///
/// Keycloak answers an exchange the user has not consented to with "Missing consents for Token
/// Exchange" (as `invalid_scope` in 26.x, `invalid_client` or `access_denied` elsewhere); that, `consent_required` and
/// `interaction_required` are `AccessDenied`: nobody can consent in this flow, the IDP's policy
/// for the client must change. The IDP's `error` and `error_description` travel along in
/// [`OidcError::IdpRefused`] (sanitised by [`idp_text`]).
fn token_error(answer: &Answer, grant: &[(&str, &str)]) -> OidcError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    let body: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
    let code = body.as_ref().map(|b| b.error.as_str()).unwrap_or_default();
    let description = body.as_ref().and_then(|b| b.error_description.as_deref());
    let mentions_consent = description.is_some_and(|d| d.to_ascii_lowercase().contains("consent"));
    let is_exchange = grant.contains(&("grant_type", GRANT_TOKEN_EXCHANGE));
    let error = match error_from_answer(answer) {
        _ if matches!(code, "consent_required" | "interaction_required") => OidcError::AccessDenied,
        // Keycloak 26 says `invalid_scope` (older versions `invalid_client`).
        _ if is_exchange && mentions_consent => OidcError::AccessDenied,
        OidcError::InvalidClient
            if is_exchange && answer.status == reqwest::StatusCode::BAD_REQUEST =>
        {
            OidcError::InvalidTarget
        }
        other => other,
    };
    match body.and_then(|b| idp_text(&b.error, b.error_description.as_deref())) {
        Some(idp_says) => OidcError::IdpRefused {
            error: Box::new(error),
            idp_says,
        },
        None => error,
    }
}

fn unknown_key() -> OidcError {
    OidcError::InvalidToken("signed by a key the IDP does not publish".into())
}

/// Refuses a JWT from a token exchange whose `aud` (string or array) does not name
/// `audience`. An opaque token (not a JWT) passes: only its resource can check it.
fn check_exchanged_audience(tokens: &TokenSet, audience: &str) -> Result<(), OidcError> {
    let Ok(jwt) = mc_jose::Jwt::decode_unverified(tokens.access_token.expose()) else {
        return Ok(());
    };
    let names_audience = match jwt.claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
        _ => false,
    };
    if names_audience {
        Ok(())
    } else {
        Err(OidcError::InvalidToken(
            "the exchanged token is not for the audience asked for (aud differs); check the IDP's exchange policy".into(),
        ))
    }
}

/// A failed GET of public metadata (discovery, JWKS): 503/429 and other 5xx are transient,
/// the rest is a wrong server URL or a broken IDP.
fn non_success(answer: &Answer) -> OidcError {
    let status = answer.status;
    if transport::is_unavailable_status(status) {
        return transport::unavailable(answer);
    }
    if status.is_server_error() {
        OidcError::ServerError {
            status: status.as_u16(),
        }
    } else {
        OidcError::InvalidResponse(format!("HTTP status {}", status.as_u16()))
    }
}

/// A header value that holds a secret (a proof): marked sensitive so it is never logged.
fn sensitive_header(secret: &SecretString) -> Result<reqwest::header::HeaderValue, OidcError> {
    let mut value = reqwest::header::HeaderValue::from_str(secret.expose()).map_err(|_| {
        OidcError::Config("a DPoP proof contains characters not allowed in a header".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn bearer_header(token: &SecretString) -> Result<reqwest::header::HeaderValue, OidcError> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| {
        OidcError::Config("token contains characters not allowed in a header".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// RFC 6749 section 5.1 answer → [`TokenSet`]; `expires_in` is relative to `now` (server time).
fn parse_token_answer(answer: &Answer, now: i64) -> Result<TokenSet, OidcError> {
    #[derive(Deserialize)]
    struct TokenAnswer {
        access_token: SecretString,
        token_type: String,
        #[serde(default)]
        expires_in: Option<Value>,
        #[serde(default)]
        refresh_token: Option<SecretString>,
        #[serde(default)]
        scope: Option<String>,
    }
    let raw: TokenAnswer = answer.json("token answer")?;
    if raw.access_token.is_empty() {
        return Err(OidcError::InvalidResponse(
            "token answer has an empty access_token".into(),
        ));
    }
    // Some servers send expires_in as a string.
    let expires_in = match &raw.expires_in {
        None | Some(Value::Null) => DEFAULT_TOKEN_LIFETIME_SECS,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad_expires_in)?,
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| bad_expires_in())?,
        Some(_) => return Err(bad_expires_in()),
    };
    if expires_in < 0 {
        return Err(bad_expires_in());
    }
    let expires_at = expiry(raw.access_token.expose(), now, expires_in);
    Ok(TokenSet {
        access_token: raw.access_token,
        token_type: raw.token_type,
        expires_at,
        refresh_token: raw.refresh_token,
        scope: raw.scope,
    })
}

/// When a token stops being usable: `now + expires_in`, but never after the token's own `exp`
/// when it is a JWT that has one (an IDP may answer a long `expires_in` for a token whose `exp`
/// is near or past). Read without verifying: it can only make the life shorter.
fn expiry(access_token: &str, now: i64, expires_in: i64) -> i64 {
    let by_answer = now.saturating_add(expires_in);
    match mc_jose::Jwt::decode_unverified(access_token)
        .ok()
        .and_then(|jwt| jwt.claim_i64("exp"))
    {
        Some(exp) => by_answer.min(exp),
        None => by_answer,
    }
}

fn bad_expires_in() -> OidcError {
    OidcError::InvalidResponse("token answer has an invalid expires_in".into())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(template: &str) -> OidcClient {
        OidcClient::new(OidcConfig {
            issuer_template: template.into(),
            ..OidcConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn issuer_from_template() {
        let c = client("{server}/realms/{tenant}");
        assert_eq!(
            c.issuer_for("https://idp.example/", "demo"),
            "https://idp.example/realms/demo"
        );
        assert_eq!(
            c.issuer_for("https://idp.example", "../admin x"),
            "https://idp.example/realms/..%2Fadmin%20x"
        );
        assert_eq!(
            client("{server}").issuer_for("https://idp.example/", "demo"),
            "https://idp.example"
        );
        assert!(matches!(
            OidcClient::new(OidcConfig {
                issuer_template: "https://fixed".into(),
                ..OidcConfig::default()
            }),
            Err(OidcError::Config(_))
        ));
    }

    fn token_answer(body: &str) -> Answer {
        Answer {
            status: reqwest::StatusCode::OK,
            body: body.as_bytes().to_vec(),
            retry_after_secs: None,
        }
    }

    #[test]
    fn token_answer_parsing() {
        let t = parse_token_answer(
            &token_answer(
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":300,"scope":"a b"}"#,
            ),
            1_000,
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "abc");
        assert_eq!(t.expires_at, 1_300);
        assert_eq!(t.scope.as_deref(), Some("a b"));
        let t = parse_token_answer(
            &token_answer(r#"{"access_token":"abc","token_type":"Bearer","expires_in":"60"}"#),
            1_000,
        )
        .unwrap();
        assert_eq!(t.expires_at, 1_060);
        let t = parse_token_answer(
            &token_answer(r#"{"access_token":"abc","token_type":"Bearer"}"#),
            1_000,
        )
        .unwrap();
        assert_eq!(t.expires_at, 1_000 + DEFAULT_TOKEN_LIFETIME_SECS);
        for bad in [
            r#"{"token_type":"Bearer"}"#,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":-5}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":[1]}"#,
            "<html>oops</html>",
        ] {
            let e = parse_token_answer(&token_answer(bad), 0).unwrap_err();
            assert!(matches!(e, OidcError::InvalidResponse(_)), "{bad}: {e:?}");
        }
    }

    #[test]
    fn keycloak_unknown_audience_is_not_a_lost_registration() {
        let answer = |status: u16| Answer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            body: br#"{"error":"invalid_client","error_description":"Audience not found"}"#
                .to_vec(),
            retry_after_secs: None,
        };
        let exchange = [("grant_type", GRANT_TOKEN_EXCHANGE), ("audience", "nope")];
        let login = [("grant_type", GRANT_CLIENT_CREDENTIALS)];
        let cause = |a: Answer, grant: &[(&str, &str)]| token_error(&a, grant).cause().clone();
        assert_eq!(cause(answer(400), &exchange), OidcError::InvalidTarget);
        assert_eq!(cause(answer(401), &exchange), OidcError::InvalidClient);
        assert_eq!(cause(answer(400), &login), OidcError::InvalidClient);
        assert_eq!(cause(answer(401), &login), OidcError::InvalidClient);
        assert!(token_error(&answer(400), &exchange)
            .to_string()
            .contains("Audience not found"));
    }

    #[test]
    fn missing_consent_is_access_denied_with_the_idps_words() {
        let answer = |error: &str| Answer {
            status: reqwest::StatusCode::BAD_REQUEST,
            body: serde_json::to_vec(&json!({
                "error": error,
                "error_description": "Missing consents for Token Exchange in client app"
            }))
            .unwrap(),
            retry_after_secs: None,
        };
        let exchange = [("grant_type", GRANT_TOKEN_EXCHANGE), ("audience", "app")];
        for error in [
            "invalid_scope",
            "invalid_client",
            "access_denied",
            "consent_required",
            "interaction_required",
        ] {
            let e = token_error(&answer(error), &exchange);
            assert_eq!(e.cause(), &OidcError::AccessDenied, "{error}");
            assert!(
                e.to_string()
                    .contains("Missing consents for Token Exchange"),
                "{e}"
            );
        }
        // no body: the bare error, nothing invented
        let bare = Answer {
            status: reqwest::StatusCode::BAD_REQUEST,
            body: Vec::new(),
            retry_after_secs: None,
        };
        assert!(!matches!(
            token_error(&bare, &exchange),
            OidcError::IdpRefused { .. }
        ));
    }

    #[test]
    fn expiry_is_the_earlier_of_expires_in_and_exp() {
        let jwt = |exp: i64| {
            let key = SigningKey::generate().unwrap();
            key.sign_jwt("at+jwt", Map::new(), &json!({"exp": exp}))
                .unwrap()
        };
        assert_eq!(expiry(&jwt(1_100), 1_000, 300), 1_100);
        assert_eq!(expiry(&jwt(500), 1_000, 300), 500);
        assert_eq!(expiry(&jwt(5_000), 1_000, 300), 1_300);
        assert_eq!(expiry("opaque-token", 1_000, 300), 1_300);
        let t = parse_token_answer(
            &token_answer(&format!(
                r#"{{"access_token":"{}","token_type":"Bearer","expires_in":86400}}"#,
                jwt(900)
            )),
            1_000,
        )
        .unwrap();
        assert_eq!(
            t.expires_at, 900,
            "an exp in the past wins over a day of expires_in"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let registration = Registration {
            client_id: "client-123".into(),
            registration_access_token: Some("rat-secret".into()),
            registration_client_uri: Some("http://127.0.0.1/reg/client-123".into()),
        };
        let shown = format!("{registration:?}");
        assert!(
            !shown.contains("client-123") && !shown.contains("rat-secret"),
            "{shown}"
        );
        let tokens = TokenSet {
            access_token: "at-secret".into(),
            token_type: "Bearer".into(),
            expires_at: 0,
            refresh_token: Some("rt-secret".into()),
            scope: None,
        };
        let shown = format!("{tokens:?}");
        assert!(
            !shown.contains("at-secret") && !shown.contains("rt-secret"),
            "{shown}"
        );
        let key = SigningKey::generate().unwrap();
        let auth = client("{server}")
            .resource_authorization(&tokens, &key, "GET", "http://127.0.0.1:9/demo/echo")
            .unwrap();
        assert_eq!(auth.authorization.expose(), "Bearer at-secret");
        assert!(auth.dpop.is_none());
        assert!(!format!("{auth:?}").contains("at-secret"));
        let bound = TokenSet {
            token_type: "DPoP".into(),
            ..tokens
        };
        let auth = client("{server}")
            .resource_authorization(&bound, &key, "GET", "http://127.0.0.1:9/demo/echo")
            .unwrap();
        assert_eq!(auth.authorization.expose(), "DPoP at-secret");
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("at-secret") && !shown.contains("eyJ"),
            "{shown}"
        );
    }

    #[test]
    fn resource_authorization_refuses_plain_http_to_remote_hosts() {
        let c = client("{server}");
        let key = SigningKey::generate().unwrap();
        let tokens = TokenSet {
            access_token: "t".into(),
            token_type: "bearer".into(),
            expires_at: 0,
            refresh_token: None,
            scope: None,
        };
        assert!(c
            .resource_authorization(&tokens, &key, "POST", "https://api.example/x")
            .is_ok());
        assert!(matches!(
            c.resource_authorization(&tokens, &key, "POST", "http://api.example/x"),
            Err(OidcError::Config(_))
        ));
        let dpop = TokenSet {
            token_type: "DPoP".into(),
            ..tokens
        };
        assert!(c
            .resource_authorization(&dpop, &key, "GET", "https://api.example/x")
            .is_ok());
        assert!(matches!(
            c.resource_authorization(&dpop, &key, "GET", "http://api.example/x"),
            Err(OidcError::Config(_))
        ));
        let mac = TokenSet {
            token_type: "MAC".into(),
            ..dpop
        };
        assert!(matches!(
            c.resource_authorization(&mac, &key, "GET", "https://api.example/x"),
            Err(OidcError::Config(_))
        ));
    }
}
