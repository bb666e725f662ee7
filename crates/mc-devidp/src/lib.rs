//! Development identity provider (IDP) for mc-runtime: the IDP side of our protocol profile
//! (`docs/protocol.md`) served over real HTTP on a loopback port.
//!
//! What it is for: development, the event console's demo, tests and benchmarks. It speaks the same
//! standards a production IDP does, at Keycloak-like paths so the runtime's default issuer template
//! `{server}/realms/{tenant}` fits:
//!
//! - discovery (`{issuer}/.well-known/openid-configuration`) and JWKS (one ES256 key per tenant,
//!   plus the shared key of [`DevIdpConfig::signing_alg`] when tokens are signed with RS256,
//!   PS256, EdDSA, ...),
//! - dynamic client registration (RFC 7591) and its management endpoint (RFC 7592: read, delete),
//! - the token endpoint: `client_credentials` and token exchange (RFC 8693) for registered device
//!   clients, authenticated by `private_key_jwt` only; `authorization_code`, `refresh_token` and
//!   token exchange for public clients, identified by `client_id` alone (method `none`),
//! - token introspection (RFC 7662, `private_key_jwt` of the registered client) for the opaque
//!   device tokens of [`DevIdpConfig::opaque_device_tokens`]; anything else is `active: false`,
//! - a protected demo resource `{server}/demo/echo` that accepts only tokens for audience `demo-api`,
//! - DPoP (RFC 9449) as real IDPs enforce it: advertised in discovery, a token request with a valid
//!   proof gets a `DPoP` token bound by `cnf.jkt`, a client registered with
//!   `dpop_bound_access_tokens` must send proofs, and `/demo/echo` accepts a bound token only with a
//!   proof of its key (`ath`, `htm`, `htu`, `iat` against this server's clock, single-use `jti`).
//!
//! - an authorization server for identified users (module `authz`): the authorization endpoint
//!   with a real HTML login form (users of [`DevIdpConfig::users`], default [`DevUser::demo`]:
//!   `demo` / `demo-password`, one-time code `123456`), public native clients
//!   ([`DevIdpConfig::public_clients`], default `demo-app`) with exact redirect URI matching
//!   except the loopback port (RFC 8252 §7.3), PKCE S256 only (RFC 7636), `iss` in the
//!   response (RFC 9207), PAR (RFC 9126), `dpop_jkt` (RFC 9449 §10), the `authorization_code`
//!   and `refresh_token` grants (ID token; refresh tokens rotated, reuse revokes the login's
//!   token family, DPoP-bound when redeemed with a proof; a refresh may narrow the scope, and
//!   a client's audience scopes ([`PublicClient::audience_scopes`], `demo-app`:
//!   `demo-api-audience`) add their API to `aud`, as a Keycloak optional client scope with an
//!   Audience mapper does), revocation (RFC 7009), token exchange
//!   of a user's token by its public client (`acr`, `sub`, `sid` carried over), and
//!   `{server}/demo/step-up`, which answers the RFC 9470 `insufficient_user_authentication`
//!   challenge unless the token's `acr` is [`ACR_STRONG`],
//! - [`form_login`]: a test/demo "browser" that fills in the login form and answers the redirect.
//!
//! [`DevIdp::rotate_signing_key`] rotates a tenant's signing key (JWKS rotation tests);
//! [`DevIdp::user_token_scopes`] shows the scope of the user access tokens it issued;
//! [`DevIdp::add_user`], [`DevIdp::add_public_client`] and [`DevIdp::revoke_user_tokens`] act
//! as an administrator would.
//!
//! [`Faults`] lets a test make the IDP misbehave on purpose (foreign signing key, wrong issuer,
//! expired tokens, exchanged tokens whose `exp` is nearer than `expires_in`, a failing next
//! refresh, ID tokens and user access tokens with claims of the test's choice, public clients'
//! token exchange refused as Keycloak 26 refuses it, and [`HttpFault`]s
//! of the answer itself: a status with `Retry-After`, an OAuth error body of the test's choice,
//! broken JSON, an HTML page, an endless body, a delay, aimed at one endpoint for N requests),
//! and [`Stats`] counts the requests each endpoint received, so tests can tell whether a cache hit
//! really did not call the IDP.
//!
//! What it must not be or touch: it is NOT a production IDP (production uses a real IDP such as
//! Keycloak). It keeps its signing keys unencrypted (PKCS#8 in a 0600 file when `state_dir` is set).
//! User passwords are plain configuration; logins, codes and refresh tokens live in memory only
//! (a restart logs every user out); the login form is bound to its request by an unguessable
//! single-use hidden field, not by a cookie.
//! The runtime does not depend on this crate; only tests, the console and benches do. It never logs
//! a token, an assertion, a key or a registration access token.

mod authz;
mod browser;
mod dpop;
mod faults;
mod persist;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mc_secret::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use browser::{form_login, FormLoginError};
pub use faults::{FaultTarget, Faults, HttpFault, Stats};

/// The enrollment client that exists by default (the MC-SDK's default `clientId`).
pub const DEFAULT_ENROLLMENT_CLIENT: &str = "AnonymousUserEnrollment";
/// The exchange audience that exists by default; `/demo/echo` accepts only tokens for it.
pub const DEMO_AUDIENCE: &str = "demo-api";
/// The optional scope of [`DEMO_APP_CLIENT`] that brings [`DEMO_AUDIENCE`] into its users'
/// access tokens (the Keycloak realm's client scope of the same name).
pub const DEMO_AUDIENCE_SCOPE: &str = "demo-api-audience";
/// The tenant that exists by default.
pub const DEFAULT_TENANT: &str = "demo";
/// The public native client that exists by default (no secret, PKCE S256).
pub const DEMO_APP_CLIENT: &str = "demo-app";
/// Redirect URIs of [`DEMO_APP_CLIENT`]: the loopback ones match on any port (RFC 8252 §7.3).
pub const DEMO_APP_REDIRECT_URIS: &[&str] = &[
    "http://127.0.0.1/callback",
    "http://[::1]/callback",
    "com.example.demo:/callback",
];
/// The user that exists by default: username, password, second factor, `sub`.
pub const DEMO_USER: &str = "demo";
pub const DEMO_USER_PASSWORD: &str = "demo-password";
pub const DEMO_USER_OTP: &str = "123456";
pub const DEMO_USER_SUB: &str = "6f1c2a7e-3b9d-4c5e-8a1f-2d4b6c8e0a13";
/// `acr` of a login with the password alone.
pub const ACR_PASSWORD: &str = "1";
/// `acr` of a login with password and second factor: what `/demo/step-up` requires (RFC 9470).
pub const ACR_STRONG: &str = "2";

/// A user who can sign in on the login page. The password and the second factor are secrets:
/// they never appear in Debug output or logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevUser {
    pub username: String,
    pub password: SecretString,
    /// The `sub` of this user's tokens (a UUID).
    pub sub: String,
    pub name: String,
    pub email: String,
    /// The fixed one-time code asked on a login for [`ACR_STRONG`].
    pub second_factor: SecretString,
}

impl DevUser {
    /// A user with a fresh random `sub`, `name` = username, `email` = username@example.com.
    pub fn new(username: &str, password: &str, second_factor: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: SecretString::new(password),
            sub: uuid::Uuid::new_v4().to_string(),
            name: username.to_owned(),
            email: format!("{username}@example.com"),
            second_factor: SecretString::new(second_factor),
        }
    }

    /// The default demo user ([`DEMO_USER`], fixed `sub` [`DEMO_USER_SUB`]).
    pub fn demo() -> Self {
        Self {
            sub: DEMO_USER_SUB.to_owned(),
            name: "Demo User".to_owned(),
            ..Self::new(DEMO_USER, DEMO_USER_PASSWORD, DEMO_USER_OTP)
        }
    }
}

/// A public client (RFC 6749 §2.1: no secret), as a native app is (RFC 8252). It uses the
/// authorization code grant with PKCE S256, refresh tokens and token exchange, identified by
/// `client_id` alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicClient {
    pub client_id: String,
    /// Matched exactly, except that a loopback `http://127.0.0.1/…` or `http://[::1]/…` URI
    /// matches on any port (RFC 8252 §7.3). Private-use schemes (`com.example.app:/cb`) are fine.
    pub redirect_uris: Vec<String>,
    /// Optional scopes of this client that put an API's audience into its users' access
    /// tokens (scope → audience), as a Keycloak client scope with an Audience mapper does:
    /// a login or a (narrowed) refresh with the scope gets `aud` = [client, audience].
    pub audience_scopes: BTreeMap<String, String>,
}

impl PublicClient {
    pub fn new(client_id: &str, redirect_uris: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            audience_scopes: BTreeMap::new(),
        }
    }

    /// Adds an optional scope that brings `audience` (builder style).
    pub fn with_audience_scope(mut self, scope: &str, audience: &str) -> Self {
        self.audience_scopes
            .insert(scope.to_owned(), audience.to_owned());
        self
    }

    /// The default [`DEMO_APP_CLIENT`] with [`DEMO_APP_REDIRECT_URIS`] and the optional scope
    /// [`DEMO_AUDIENCE_SCOPE`] bringing [`DEMO_AUDIENCE`] (as the Keycloak realm's `demo-app`).
    pub fn demo_app() -> Self {
        Self::new(DEMO_APP_CLIENT, DEMO_APP_REDIRECT_URIS)
            .with_audience_scope(DEMO_AUDIENCE_SCOPE, DEMO_AUDIENCE)
    }
}

/// What the development IDP serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevIdpConfig {
    /// Tenants (realms); each has its own issuer `{base}/realms/{tenant}`, key and clients.
    pub tenants: Vec<String>,
    /// Values accepted as `software_id` at registration (the MC-SDK `clientId`). Never an exchange audience.
    pub enrollment_clients: Vec<String>,
    /// Audiences a device may exchange its token for.
    pub audiences: Vec<String>,
    /// Lifetime of every issued access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// At most this many registered clients per tenant (like Keycloak's "Max Clients" policy); `None`: no limit.
    pub max_clients: Option<usize>,
    /// Where keys and registrations are kept across restarts; `None`: in memory only.
    pub state_dir: Option<PathBuf>,
    /// The algorithm issued access tokens are signed with (advertised in discovery as
    /// `id_token_signing_alg_values_supported`). ES256 (default) uses each tenant's own key;
    /// RS*/PS* use one committed development RSA key, ES384 and EdDSA a key generated at start,
    /// shared by all tenants, published in every tenant's JWKS and never persisted.
    pub signing_alg: mc_jose::Algorithm,
    /// Device tokens (`client_credentials`) are opaque random strings instead of JWTs, as
    /// node-oidc-provider issues by default; their claims are served by the introspection
    /// endpoint (RFC 7662, always advertised) and they are accepted as exchange subject tokens.
    /// Exchanged tokens stay JWTs (`/demo/echo` verifies them). Not persisted.
    pub opaque_device_tokens: bool,
    /// Users who can sign in on the login page (all tenants). Default: [`DevUser::demo`].
    pub users: Vec<DevUser>,
    /// Public native clients (all tenants). Default: [`PublicClient::demo_app`].
    pub public_clients: Vec<PublicClient>,
    /// Lifetime of an authorization code (RFC 6749 §4.1.2 says at most 10 minutes; default 60 s).
    pub authorization_code_ttl: Duration,
    /// Lifetime of a PAR `request_uri` (RFC 9126; default 60 s).
    pub par_ttl: Duration,
    /// How long a login page stays usable before its form post is refused (default 10 min).
    pub login_page_ttl: Duration,
    /// Discovery names the PAR endpoint (default). `false`: an IDP that offers no PAR, so
    /// clients put the whole request in the authorization URL (the endpoint still answers).
    pub advertise_par: bool,
}

impl DevIdpConfig {
    /// Adds a user who can sign in (builder style).
    pub fn with_user(mut self, user: DevUser) -> Self {
        self.users.push(user);
        self
    }

    /// Adds a public client (builder style).
    pub fn with_public_client(mut self, client: PublicClient) -> Self {
        self.public_clients.push(client);
        self
    }
}

impl Default for DevIdpConfig {
    fn default() -> Self {
        Self {
            tenants: vec![DEFAULT_TENANT.to_owned()],
            enrollment_clients: vec![DEFAULT_ENROLLMENT_CLIENT.to_owned()],
            audiences: vec![DEMO_AUDIENCE.to_owned()],
            access_token_ttl_secs: 300,
            max_clients: None,
            state_dir: None,
            signing_alg: mc_jose::Algorithm::Es256,
            opaque_device_tokens: false,
            users: vec![DevUser::demo()],
            public_clients: vec![PublicClient::demo_app()],
            authorization_code_ttl: Duration::from_secs(60),
            par_ttl: Duration::from_secs(60),
            login_page_ttl: Duration::from_secs(600),
            advertise_par: true,
        }
    }
}

/// Why the development IDP could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error("invalid dev IDP configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot listen on {addr}: {source}; choose a free port, or 127.0.0.1:0 for any")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "dev IDP state at {path}: {reason}; repair or remove that file to start with fresh state"
    )]
    State { path: PathBuf, reason: String },
    #[error("dev IDP signing key: {0}")]
    Key(#[from] mc_jose::JoseError),
}

/// A running development IDP. Dropping it, or [`DevIdp::shutdown`], stops it.
pub struct DevIdp {
    shared: Arc<server::Shared>,
    local_addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// Binds `addr` (use `127.0.0.1:0` in tests) and serves until dropped or shut down.
    pub async fn start(addr: SocketAddr, config: DevIdpConfig) -> Result<DevIdp, DevIdpError> {
        validate_config(&config)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DevIdpError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| DevIdpError::Bind { addr, source })?;
        let base_url = format!("http://{local_addr}");
        let shared = Arc::new(server::Shared::new(base_url, config)?);
        let router = server::router(Arc::clone(&shared));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
                // A dropped sender also means "stop".
                let _ = shutdown_rx.await;
            });
            if let Err(error) = serving.await {
                tracing::error!(%error, "dev IDP server stopped with an error");
            }
        });
        tracing::info!(base_url = %shared.base_url(), "dev IDP listening");
        Ok(DevIdp {
            shared,
            local_addr,
            shutdown_tx: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// `http://HOST:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url().to_owned()
    }

    /// The socket address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `{base}/realms/{tenant}` (also for a tenant that is not configured; such an issuer answers 404).
    pub fn issuer(&self, tenant: &str) -> String {
        server::issuer_for(self.shared.base_url(), tenant)
    }

    /// Requests received per endpoint so far (successful or not).
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The `scope` of the latest user access tokens issued (code and refresh grants), oldest
    /// first (at most 64): which audience scopes each one carried.
    pub fn user_token_scopes(&self) -> Vec<String> {
        self.shared.authz().issued_scopes.iter().cloned().collect()
    }

    /// Test knobs that make the IDP misbehave on purpose; they take effect on the next request.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Whether `client_id` is currently registered in `tenant`.
    pub fn client_exists(&self, tenant: &str, client_id: &str) -> bool {
        self.shared.client_exists(tenant, client_id)
    }

    /// The client_id of the device registration whose `client_credentials` tokens name `sub`
    /// (at this IDP a random UUID per registration, like Keycloak's service-account user id):
    /// what a test needs to find the registration of an anonymous `userId`.
    pub fn client_of_subject(&self, tenant: &str, sub: &str) -> Option<String> {
        self.shared.client_of_subject(tenant, sub)
    }

    /// Removes a registered client as an administrator would (RFC 7592 is not involved): its next
    /// token request gets `invalid_client`. False when there was no such client.
    pub fn delete_client(&self, tenant: &str, client_id: &str) -> bool {
        self.shared.remove_client(tenant, client_id)
    }

    /// Gives `tenant` a new signing key (a new `kid` in the JWKS, used for every token from
    /// now on). With `keep_old` the previous key stays published and accepted; without, it
    /// (and any key kept earlier) is dropped, so its tokens no longer verify. Answers the new
    /// `kid`, or `None` for a tenant that is not served. Retired keys are not persisted.
    pub fn rotate_signing_key(&self, tenant: &str, keep_old: bool) -> Option<String> {
        self.shared.rotate_signing_key(tenant, keep_old)
    }

    /// Adds a user who can sign in from now on (all tenants). False when the username is taken.
    pub fn add_user(&self, user: DevUser) -> bool {
        self.shared.authz().add_user(user)
    }

    /// Registers a public client from now on (all tenants), as an administrator would. Fails
    /// for a taken `client_id` or an unusable redirect URI.
    pub fn add_public_client(&self, client: PublicClient) -> Result<(), DevIdpError> {
        authz::validate_public_client(&client)?;
        if self.shared.authz().add_public_client(client) {
            Ok(())
        } else {
            Err(DevIdpError::InvalidConfig(
                "that client_id is already registered".to_owned(),
            ))
        }
    }

    /// Revokes every refresh and access token issued to the user `sub` in `tenant` (tokens
    /// exchanged from them included), as an administrator ending the user's sessions would.
    /// Answers how many token families were revoked.
    pub fn revoke_user_tokens(&self, tenant: &str, sub: &str) -> usize {
        self.shared.authz().revoke_user(tenant, sub)
    }

    /// Stops accepting connections, lets requests in flight finish (at most 5 s), then returns.
    /// The port is free again afterwards, so a test can restart on the same address.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
    }
}

/// Names end up in URLs and file contents: keep them to a safe alphabet.
fn validate_config(config: &DevIdpConfig) -> Result<(), DevIdpError> {
    fn check_names(what: &str, names: &[String]) -> Result<(), DevIdpError> {
        if names.is_empty() {
            return Err(DevIdpError::InvalidConfig(format!(
                "no {what} configured; give at least one"
            )));
        }
        for name in names {
            let ok = name.len() <= 128
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(DevIdpError::InvalidConfig(format!(
                    "{what} {name:?} must be 1..=128 characters of A-Z a-z 0-9 - _ . starting with a letter or digit"
                )));
            }
        }
        Ok(())
    }
    check_names("tenant", &config.tenants)?;
    check_names("enrollment client", &config.enrollment_clients)?;
    check_names("audience", &config.audiences)?;
    if let Some(clash) = config
        .audiences
        .iter()
        .find(|a| config.enrollment_clients.contains(a))
    {
        return Err(DevIdpError::InvalidConfig(format!(
            "{clash:?} is both an enrollment client and an exchange audience; an enrollment client is never a valid audience"
        )));
    }
    for client in &config.public_clients {
        authz::validate_public_client(client)?;
        if config.audiences.contains(&client.client_id)
            || config.enrollment_clients.contains(&client.client_id)
        {
            return Err(DevIdpError::InvalidConfig(format!(
                "public client {:?} clashes with an audience or enrollment client",
                client.client_id
            )));
        }
    }
    for user in &config.users {
        if user.username.is_empty() || user.username.len() > 128 || user.password.is_empty() {
            return Err(DevIdpError::InvalidConfig(
                "a user needs a username of 1..=128 characters and a password".to_owned(),
            ));
        }
    }
    for (what, ttl) in [
        ("authorization_code_ttl", config.authorization_code_ttl),
        ("par_ttl", config.par_ttl),
        ("login_page_ttl", config.login_page_ttl),
    ] {
        if ttl.is_zero() || ttl > Duration::from_secs(3600) {
            return Err(DevIdpError::InvalidConfig(format!(
                "{what} must be between 1 ms and 1 hour"
            )));
        }
    }
    if config.access_token_ttl_secs == 0 || config.access_token_ttl_secs > 86_400 {
        return Err(DevIdpError::InvalidConfig(
            "access_token_ttl_secs must be between 1 and 86400".to_owned(),
        ));
    }
    Ok(())
}
