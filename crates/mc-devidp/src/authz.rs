//! The authorization server for identified users: the authorization endpoint with its login
//! form, PAR (RFC 9126), the `authorization_code` and `refresh_token` grants for public clients
//! (PKCE S256 only, RFC 7636; DPoP binding, RFC 9449; `iss` in the response, RFC 9207),
//! refresh-token rotation with reuse detection, and revocation (RFC 7009).
//!
//! Everything here lives in memory only (a restart forgets codes, sessions and refresh
//! tokens). Users and public clients come from [`crate::DevIdpConfig`] and are shared by all
//! tenants; codes, token families and refresh tokens belong to one tenant.
//!
//! Refresh tokens are opaque random strings, kept as their SHA-256 only. Every code redeemed
//! starts a token *family* (one login session, `sid` in its tokens): rotation keeps the family,
//! reuse of an old refresh token or of the code revokes it, and every token carrying its `sid`
//! (exchanged ones too) stops working.
//!
//! Every map is bounded: pages, PAR requests and codes expire and are capped, a family
//! remembers its last [`ROTATED_MEMORY`] rotated-out tokens, a revoked family's tokens are
//! forgotten, revoked `jti`s are kept until the token expired, and families are capped at
//! [`MAX_FAMILIES`] (revoked and idle ones make room).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mc_jose::{random_token, sha256_b64url, unix_now, SigningKey};
use serde_json::{json, Map, Value};
use url::Url;

use crate::faults::StatsCounters;
use crate::server::{
    constant_time_eq, issuer_for, no_store_headers, shorten, sign_own_token, OAuthError, Shared,
    TokenParams,
};
use crate::{DevIdpError, DevUser, PublicClient, ACR_PASSWORD, ACR_STRONG};

pub(crate) const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub(crate) const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub(crate) const SCOPES_SUPPORTED: &[&str] = &["openid", "offline_access", "profile", "email"];
pub(crate) const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_PASSWORD, ACR_STRONG];
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// A single parameter longer than this is refused (a state, nonce or hint needs far less).
const MAX_PARAM_LEN: usize = 2048;
/// A whole query or form longer than this is refused before it is parsed.
const MAX_PARAMS_LEN: usize = 16 * 1024;
/// Wrong passwords on one login page before it is closed with `access_denied`.
const MAX_FAILED_LOGINS: u32 = 5;
/// At most this many login pages, PAR requests or codes are outstanding at once.
const MAX_OUTSTANDING: usize = 10_000;
/// A redeemed code is remembered this long, so that a second use still revokes its tokens.
const REDEEMED_CODE_MEMORY: Duration = Duration::from_secs(600);
/// Rotated-out refresh tokens remembered per login for reuse detection (RFC 9700 §4.14.2); an
/// older one is merely unknown: still refused, but it no longer ends the login.
const ROTATED_MEMORY: usize = 32;
/// At most this many logins (token families) are kept; revoked and idle ones make room.
const MAX_FAMILIES: usize = 100_000;
/// A login not used for this long is forgotten (Keycloak's offline session idle default).
const FAMILY_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);
/// A revoked access token's `jti` is kept until the token expired, plus this clock leeway.
const REVOKED_JTI_LEEWAY_SECS: i64 = 60;
/// `/demo/step-up` wants a login at most this old (RFC 9470 `max_age`).
pub(crate) const STEP_UP_MAX_AGE_SECS: i64 = 600;

pub(crate) fn authorization_endpoint_for(issuer: &str) -> String {
    format!("{issuer}/protocol/openid-connect/auth")
}
fn login_form_endpoint_for(issuer: &str) -> String {
    format!("{issuer}/protocol/openid-connect/auth/login")
}
pub(crate) fn par_endpoint_for(issuer: &str) -> String {
    format!("{issuer}/protocol/openid-connect/ext/par/request")
}
pub(crate) fn revocation_endpoint_for(issuer: &str) -> String {
    format!("{issuer}/protocol/openid-connect/revoke")
}

// ---------------------------------------------------------------------------------------------
// State

pub(crate) struct AuthzState {
    users: Vec<DevUser>,
    clients: BTreeMap<String, PublicClient>,
    /// Login pages shown: the form's hidden `login_request` value → the request behind it.
    pending: HashMap<String, PendingLogin>,
    /// PAR: `request_uri` → the pushed request.
    pushed: HashMap<String, Pushed>,
    codes: HashMap<String, CodeGrant>,
    families: HashMap<String, Family>,
    /// SHA-256 of a refresh token → its record (the token itself is never kept).
    refresh_tokens: HashMap<String, RefreshRecord>,
    /// `jti`s of access tokens revoked one by one (RFC 7009) → the token's `exp`.
    revoked_jtis: HashMap<String, i64>,
    /// [`MAX_FAMILIES`]; lowered by tests.
    max_families: usize,
    /// The `scope` of the latest user access tokens (code and refresh grants), oldest first,
    /// at most [`MAX_SCOPES_KEPT`]: what a test reads to see which audiences a client got.
    pub(crate) issued_scopes: std::collections::VecDeque<String>,
}

/// How many issued scopes [`AuthzState::issued_scopes`] keeps.
const MAX_SCOPES_KEPT: usize = 64;

/// A validated authorization request.
#[derive(Clone, Debug)]
struct AuthzRequest {
    tenant: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    scope: Vec<String>,
    code_challenge: String,
    dpop_jkt: Option<String>,
    acr_values: Vec<String>,
    /// Met by construction: there are no sessions, every authorization shows the login form,
    /// so `auth_time` (always in the ID token) is fresh. `ui_locales` is accepted and ignored
    /// likewise (the page is English).
    max_age: Option<u64>,
    login_hint: Option<String>,
}

impl AuthzRequest {
    fn wants_strong_login(&self) -> bool {
        self.acr_values.iter().any(|acr| acr == ACR_STRONG)
    }
}

struct PendingLogin {
    request: AuthzRequest,
    expires: Instant,
    failed_logins: u32,
}

struct Pushed {
    request: AuthzRequest,
    expires: Instant,
}

struct CodeGrant {
    request: AuthzRequest,
    sub: String,
    acr: String,
    amr: Vec<String>,
    auth_time: i64,
    issued: Instant,
    expires: Instant,
    /// The family its tokens belong to, once redeemed.
    redeemed: Option<String>,
}

struct Family {
    tenant: String,
    client_id: String,
    sub: String,
    /// The DPoP key the refresh token is bound to (RFC 9449 §5).
    jkt: Option<String>,
    acr: String,
    amr: Vec<String>,
    auth_time: i64,
    scope: Vec<String>,
    revoked: bool,
    /// SHA-256 of its rotated-out refresh tokens, oldest first, at most [`ROTATED_MEMORY`].
    rotated: VecDeque<String>,
    last_used: Instant,
}

struct RefreshRecord {
    family: String,
    /// False once rotated: presenting it again is reuse.
    current: bool,
}

impl AuthzState {
    pub(crate) fn new(users: &[DevUser], clients: &[PublicClient]) -> Self {
        Self {
            users: users.to_vec(),
            clients: clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            pending: HashMap::new(),
            pushed: HashMap::new(),
            codes: HashMap::new(),
            families: HashMap::new(),
            refresh_tokens: HashMap::new(),
            revoked_jtis: HashMap::new(),
            max_families: MAX_FAMILIES,
            issued_scopes: std::collections::VecDeque::new(),
        }
    }

    pub(crate) fn add_user(&mut self, user: DevUser) -> bool {
        if self.users.iter().any(|u| u.username == user.username) {
            return false;
        }
        self.users.push(user);
        true
    }

    pub(crate) fn add_public_client(&mut self, client: PublicClient) -> bool {
        if self.clients.contains_key(&client.client_id) {
            return false;
        }
        self.clients.insert(client.client_id.clone(), client);
        true
    }

    pub(crate) fn is_public_client(&self, client_id: &str) -> bool {
        self.clients.contains_key(client_id)
    }

    /// Revokes every family of `sub` in `tenant`; answers how many were live.
    pub(crate) fn revoke_user(&mut self, tenant: &str, sub: &str) -> usize {
        let live: Vec<String> = self
            .families
            .iter()
            .filter(|(_, f)| f.tenant == tenant && f.sub == sub && !f.revoked)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &live {
            self.revoke_family(id);
        }
        live.len()
    }

    /// Whether a token we issued was revoked: its own `jti`, or its family (`sid`).
    pub(crate) fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
        let jti_revoked = claims
            .get("jti")
            .and_then(Value::as_str)
            .is_some_and(|jti| self.revoked_jtis.contains_key(jti));
        let family_revoked = claims
            .get("sid")
            .and_then(Value::as_str)
            .is_some_and(|sid| self.families.get(sid).is_none_or(|f| f.revoked));
        jti_revoked || family_revoked
    }

    fn prune(&mut self) {
        let now = Instant::now();
        self.pending.retain(|_, p| p.expires > now);
        self.pushed.retain(|_, p| p.expires > now);
        self.codes
            .retain(|_, c| c.expires > now || c.issued + REDEEMED_CODE_MEMORY > now);
        let unix = unix_now();
        self.revoked_jtis
            .retain(|_, exp| exp.saturating_add(REVOKED_JTI_LEEWAY_SECS) > unix);
    }

    /// Ends a login. Its refresh tokens are forgotten: presented again they are unknown, which
    /// refuses them just the same.
    fn revoke_family(&mut self, family: &str) {
        if let Some(f) = self.families.get_mut(family) {
            f.revoked = true;
            f.rotated.clear();
        }
        self.refresh_tokens.retain(|_, r| r.family != family);
    }

    /// Marks a refresh token as rotated out, forgetting the oldest beyond [`ROTATED_MEMORY`].
    fn rotate_out(&mut self, family_id: &str, hash: &str) {
        if let Some(record) = self.refresh_tokens.get_mut(hash) {
            record.current = false;
        }
        let Some(family) = self.families.get_mut(family_id) else {
            return;
        };
        family.last_used = Instant::now();
        family.rotated.push_back(hash.to_owned());
        while family.rotated.len() > ROTATED_MEMORY {
            if let Some(oldest) = family.rotated.pop_front() {
                self.refresh_tokens.remove(&oldest);
            }
        }
    }

    /// Whether one more login fits under the cap, after forgetting revoked and idle ones (a
    /// forgotten `sid` counts as revoked, see [`Self::is_revoked`]).
    fn make_room_for_a_login(&mut self) -> bool {
        if self.families.len() < self.max_families {
            return true;
        }
        let now = Instant::now();
        self.families
            .retain(|_, f| !f.revoked && f.last_used + FAMILY_IDLE > now);
        let families = &self.families;
        self.refresh_tokens
            .retain(|_, r| families.contains_key(&r.family));
        self.families.len() < self.max_families
    }

    /// Revokes one access token (RFC 7009) until its `exp`.
    fn revoke_access_token(&mut self, jti: &str, exp: i64) {
        self.revoked_jtis.insert(jti.to_owned(), exp);
    }
}

/// A public client must have usable redirect URIs: absolute, no fragment (RFC 6749 §3.1.2).
pub(crate) fn validate_public_client(client: &PublicClient) -> Result<(), DevIdpError> {
    let bad = |why: String| DevIdpError::InvalidConfig(format!("public client: {why}"));
    if client.client_id.is_empty() || client.client_id.len() > 128 {
        return Err(bad("client_id must be 1..=128 characters".to_owned()));
    }
    if client.redirect_uris.is_empty() {
        return Err(bad(format!(
            "{:?} needs at least one redirect URI",
            client.client_id
        )));
    }
    for uri in &client.redirect_uris {
        let parsed = Url::parse(uri).map_err(|_| bad(format!("{uri:?} is not an absolute URI")))?;
        if parsed.fragment().is_some() {
            return Err(bad(format!("{uri:?} must not have a fragment")));
        }
    }
    Ok(())
}

/// RFC 6749 §3.1.2.3 exact match, except RFC 8252 §7.3: for a loopback IP literal with
/// `http`, the port is not compared.
fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    // Only the canonical spelling: `http://127.1/…` or `%2e%2e` tricks do not match.
    if req.as_str() != requested {
        return false;
    }
    let loopback = match reg.host() {
        Some(url::Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        _ => false,
    };
    loopback
        && reg.scheme() == "http"
        && req.scheme() == "http"
        && reg.host() == req.host()
        && req.username().is_empty()
        && req.password().is_none()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// Query or form parameters: each at most once (RFC 6749 §3.1), none oversized.
fn parse_params(raw: &[u8]) -> Result<TokenParams, String> {
    if raw.len() > MAX_PARAMS_LEN {
        return Err(format!(
            "the request's parameters exceed {MAX_PARAMS_LEN} bytes"
        ));
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw).into_owned().collect();
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, value)| name.len() > MAX_PARAM_LEN || value.len() > MAX_PARAM_LEN)
    {
        return Err(format!(
            "parameter {:?} is longer than {MAX_PARAM_LEN} bytes",
            shorten(name)
        ));
    }
    TokenParams::new(pairs).map_err(|error| error.description)
}

/// Why an authorization request is refused.
enum Refusal {
    /// Unknown client or redirect URI: an error page, never a redirect (RFC 6749 §4.1.2.1).
    Page(String),
    /// Sent back to the client's redirect URI as `error=`.
    Redirect {
        to: Box<AuthzRequest>,
        error: &'static str,
        description: String,
    },
}

fn scan_b64url_43(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43..=128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn validate_request(
    state: &AuthzState,
    tenant: &str,
    params: &TokenParams,
) -> Result<AuthzRequest, Refusal> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| Refusal::Page("the request has no client_id".to_owned()))?;
    let client = state.clients.get(client_id).ok_or_else(|| {
        Refusal::Page(format!(
            "client {:?} is not registered at this IDP",
            shorten(client_id)
        ))
    })?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        Refusal::Page("the request has no redirect_uri; native apps must send one".to_owned())
    })?;
    if !client
        .redirect_uris
        .iter()
        .any(|registered| redirect_uri_matches(registered, redirect_uri))
    {
        return Err(Refusal::Page(
            "the redirect_uri is not registered for this client".to_owned(),
        ));
    }
    let mut request = AuthzRequest {
        tenant: tenant.to_owned(),
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        scope: Vec::new(),
        code_challenge: String::new(),
        dpop_jkt: None,
        acr_values: Vec::new(),
        max_age: None,
        login_hint: params.get("login_hint").map(str::to_owned),
    };
    // From here on the client is known and the redirect URI is its own: errors go back to it.
    let refuse =
        |request: &AuthzRequest, error: &'static str, description: &str| Refusal::Redirect {
            to: Box::new(request.clone()),
            error,
            description: description.to_owned(),
        };
    if params.get("request").is_some() {
        return Err(refuse(
            &request,
            "request_not_supported",
            "request objects are not supported; use PAR",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                &request,
                "invalid_request",
                "response_type is required",
            ))
        }
        Some(_) => {
            return Err(refuse(
                &request,
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(refuse(
            &request,
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    // PKCE is required, S256 only (RFC 9700 §2.1.1): a missing method would mean `plain`.
    match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) if scan_b64url_43(challenge) => {
            request.code_challenge = challenge.to_owned();
        }
        (Some(_), Some("S256")) => {
            return Err(refuse(
                &request,
                "invalid_request",
                "code_challenge must be the 43-character base64url SHA-256 of the verifier",
            ))
        }
        (None, _) => {
            return Err(refuse(
                &request,
                "invalid_request",
                "PKCE is required: send code_challenge and code_challenge_method=S256",
            ))
        }
        (Some(_), _) => {
            return Err(refuse(
                &request,
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ))
        }
    }
    let scope = params.get("scope").unwrap_or("openid");
    for item in scope.split(' ').filter(|s| !s.is_empty()) {
        if !SCOPES_SUPPORTED.contains(&item) && !client.audience_scopes.contains_key(item) {
            return Err(refuse(
                &request,
                "invalid_scope",
                "scope may contain openid, offline_access, profile, email and the client's audience scopes",
            ));
        }
        if !request.scope.iter().any(|known| known == item) {
            request.scope.push(item.to_owned());
        }
    }
    if let Some(jkt) = params.get("dpop_jkt") {
        if !scan_b64url_43(jkt) {
            return Err(refuse(
                &request,
                "invalid_request",
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint",
            ));
        }
        request.dpop_jkt = Some(jkt.to_owned());
    }
    if let Some(acr_values) = params.get("acr_values") {
        request.acr_values = acr_values
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(max_age) = params.get("max_age") {
        request.max_age = Some(max_age.parse().map_err(|_| {
            refuse(
                &request,
                "invalid_request",
                "max_age must be a number of seconds",
            )
        })?);
    }
    for prompt in params.get("prompt").unwrap_or_default().split(' ') {
        match prompt {
            "" | "login" | "consent" | "select_account" => {}
            // No sessions here: every authorization shows the login page.
            "none" => {
                return Err(refuse(
                    &request,
                    "login_required",
                    "this IDP keeps no session; the user must log in",
                ))
            }
            _ => return Err(refuse(&request, "invalid_request", "unknown prompt value")),
        }
    }
    Ok(request)
}

// ---------------------------------------------------------------------------------------------
// Pages and redirects

/// Headers of every HTML page: not cached, not framed (clickjacking).
fn page_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ),
    ]
}

pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title></head>\
         <body><h1>Sign-in error</h1><p class=\"error\" role=\"alert\">{}</p>\
         <p>Go back to the app and start the sign-in again.</p></body></html>",
        html_escape(message)
    );
    (status, page_headers(), body).into_response()
}

fn login_page(
    issuer: &str,
    login_request: &str,
    request: &AuthzRequest,
    message: Option<&str>,
) -> Response {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", html_escape(m)))
        .unwrap_or_default();
    let second_factor = if request.wants_strong_login() {
        "<p><label>One-time code <input name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required></label></p>"
    } else {
        ""
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to {tenant}</title></head>\
         <body><h1>Sign in</h1><p>to <b>{client}</b> at {tenant}</p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"login_request\" value=\"{login_request}\">\
         <p><label>Username <input name=\"username\" value=\"{hint}\" autocomplete=\"username\" required></label></p>\
         <p><label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label></p>\
         {second_factor}\
         <p><button type=\"submit\" name=\"action\" value=\"login\">Sign in</button> \
         <button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button></p>\
         </form></body></html>",
        tenant = html_escape(&request.tenant),
        client = html_escape(&request.client_id),
        action = html_escape(&login_form_endpoint_for(issuer)),
        login_request = html_escape(login_request),
        hint = html_escape(request.login_hint.as_deref().unwrap_or_default()),
    );
    (StatusCode::OK, page_headers(), body).into_response()
}

/// The redirect back to the client: its URI plus `params`, `state` and `iss` (RFC 9207).
fn redirect_to_client(
    status: StatusCode,
    issuer: &str,
    request: &AuthzRequest,
    params: &[(&str, &str)],
) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params);
    if let Some(state) = &request.state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    let separator = if request.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{}", request.redirect_uri, query.finish());
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            status,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "the redirect URI cannot be used in a redirect",
        ),
    }
}

fn refusal_response(issuer: &str, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => error_page(StatusCode::BAD_REQUEST, &message),
        Refusal::Redirect {
            to,
            error,
            description,
        } => redirect_to_client(
            StatusCode::FOUND,
            issuer,
            &to,
            &[("error", error), ("error_description", &description)],
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers: authorization endpoint, login form, PAR

type Shr = State<Arc<Shared>>;

/// GET of the authorization endpoint: the login page, an error page, or an error redirect.
pub(crate) async fn authorize(
    State(s): Shr,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    StatsCounters::bump(&s.stats.authorization);
    if s.tenant_key(&tenant).is_err() {
        return error_page(
            StatusCode::NOT_FOUND,
            "this tenant does not exist at this IDP",
        );
    }
    let issuer = issuer_for(s.base_url(), &tenant);
    let params = match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    let mut state = s.authz();
    state.prune();
    let request = if let Some(request_uri) = params.get("request_uri") {
        // RFC 9126 §4: the pushed parameters count, nothing else but client_id.
        let Some(pushed) = state.pushed.remove(request_uri) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "the request_uri is unknown, expired or already used; start the sign-in again",
            );
        };
        if params.get("client_id") != Some(pushed.request.client_id.as_str())
            || pushed.request.tenant != tenant
        {
            return error_page(
                StatusCode::BAD_REQUEST,
                "the request_uri was pushed by another client",
            );
        }
        pushed.request
    } else {
        match validate_request(&state, &tenant, &params) {
            Ok(request) => request,
            Err(refusal) => return refusal_response(&issuer, refusal),
        }
    };
    if state.pending.len() >= MAX_OUTSTANDING {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins in progress; try again in a few minutes",
        );
    }
    let login_request = random_token(32);
    state.pending.insert(
        login_request.clone(),
        PendingLogin {
            request: request.clone(),
            expires: Instant::now() + s.config.login_page_ttl,
            failed_logins: 0,
        },
    );
    login_page(&issuer, &login_request, &request, None)
}

/// POST of the login form.
pub(crate) async fn login_form(State(s): Shr, Path(tenant): Path<String>, body: Bytes) -> Response {
    StatsCounters::bump(&s.stats.authorization);
    let issuer = issuer_for(s.base_url(), &tenant);
    let form = match parse_params(&body) {
        Ok(form) => form,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    let mut state = s.authz();
    state.prune();
    let id = form.get("login_request").unwrap_or_default().to_owned();
    let Some(pending) = state
        .pending
        .get(&id)
        .filter(|p| p.request.tenant == tenant)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this login page is unknown or has expired; start the sign-in again from the app",
        );
    };
    let request = pending.request.clone();
    match form.get("action") {
        Some("cancel") => {
            state.pending.remove(&id);
            return redirect_to_client(
                StatusCode::SEE_OTHER,
                &issuer,
                &request,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user cancelled the sign-in"),
                ],
            );
        }
        Some("login") => {}
        _ => return error_page(StatusCode::BAD_REQUEST, "the form has no known action"),
    }
    let strong = request.wants_strong_login();
    let user = state
        .users
        .iter()
        .find(|u| Some(u.username.as_str()) == form.get("username"))
        .filter(|u| {
            let password = form.get("password").unwrap_or_default();
            constant_time_eq(password.as_bytes(), u.password.expose().as_bytes())
        })
        .filter(|u| {
            !strong || {
                let otp = form.get("otp").unwrap_or_default();
                constant_time_eq(otp.as_bytes(), u.second_factor.expose().as_bytes())
            }
        })
        .cloned();
    let Some(user) = user else {
        let failed = state.pending.get_mut(&id).map_or(MAX_FAILED_LOGINS, |p| {
            p.failed_logins += 1;
            p.failed_logins
        });
        if failed >= MAX_FAILED_LOGINS {
            state.pending.remove(&id);
            return redirect_to_client(
                StatusCode::SEE_OTHER,
                &issuer,
                &request,
                &[
                    ("error", "access_denied"),
                    ("error_description", "too many failed sign-in attempts"),
                ],
            );
        }
        let message = if strong {
            "Wrong username, password or one-time code."
        } else {
            "Wrong username or password."
        };
        return login_page(&issuer, &id, &request, Some(message));
    };
    state.pending.remove(&id);
    if state.codes.len() >= MAX_OUTSTANDING {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins in progress; try again in a few minutes",
        );
    }
    let (acr, amr) = if strong {
        (
            ACR_STRONG,
            vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()],
        )
    } else {
        (ACR_PASSWORD, vec!["pwd".to_owned()])
    };
    let code = random_token(32);
    let now = Instant::now();
    state.codes.insert(
        code.clone(),
        CodeGrant {
            request: request.clone(),
            sub: user.sub.clone(),
            acr: acr.to_owned(),
            amr,
            auth_time: unix_now(),
            issued: now,
            expires: now + s.config.authorization_code_ttl,
            redeemed: None,
        },
    );
    drop(state);
    tracing::info!(tenant = %tenant, client_id = %request.client_id, "user signed in; code issued");
    redirect_to_client(StatusCode::SEE_OTHER, &issuer, &request, &[("code", &code)])
}

/// PAR (RFC 9126): the authorization parameters, validated as the authorization endpoint
/// does, kept behind a single-use `request_uri`.
pub(crate) async fn pushed_authorization_request(
    State(s): Shr,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.par);
    s.tenant_key(&tenant)?;
    let params = parse_params(&body).map_err(OAuthError::invalid_request)?;
    // RFC 9449 §10.1: a proof with the pushed request binds the code like `dpop_jkt` does.
    let issuer = issuer_for(s.base_url(), &tenant);
    let proof_jkt = s.check_post_proof(&headers, &par_endpoint_for(&issuer))?;
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri must not be pushed (RFC 9126 §2.1)",
        ));
    }
    let mut state = s.authz();
    state.prune();
    if !params
        .get("client_id")
        .is_some_and(|id| state.is_public_client(id))
    {
        return Err(OAuthError::invalid_client(
            "unknown client: push with the client_id of a registered public client",
        ));
    }
    let mut request =
        validate_request(&state, &tenant, &params).map_err(|refusal| match refusal {
            Refusal::Page(message) => OAuthError::invalid_request(message),
            Refusal::Redirect {
                error, description, ..
            } => OAuthError::bad_request(error, description),
        })?;
    match (&request.dpop_jkt, proof_jkt) {
        (Some(named), Some(proven)) if *named != proven => {
            return Err(OAuthError::bad_request(
                "invalid_dpop_proof",
                "dpop_jkt is not the thumbprint of the DPoP proof's key",
            ))
        }
        (None, Some(proven)) => request.dpop_jkt = Some(proven),
        _ => {}
    }
    if state.pushed.len() >= MAX_OUTSTANDING {
        return Err(OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many pushed requests outstanding; try again later",
        ));
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token(32));
    let ttl = s.config.par_ttl;
    state.pushed.insert(
        request_uri.clone(),
        Pushed {
            request,
            expires: Instant::now() + ttl,
        },
    );
    Ok((
        StatusCode::CREATED,
        no_store_headers(),
        Json(json!({ "request_uri": request_uri, "expires_in": ttl.as_secs().max(1) })),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Token endpoint: authorization_code and refresh_token grants of public clients

/// The `authorization_code` or `refresh_token` grant. `proof_jkt` is the key of a valid DPoP
/// proof sent with the request, if any.
pub(crate) fn user_grant(
    s: &Shared,
    tenant: &str,
    key: &SigningKey,
    grant_type: &str,
    params: &TokenParams,
    proof_jkt: Option<String>,
) -> Result<Response, OAuthError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client_id is required for a public client"))?;
    if params.get("client_assertion").is_some() || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_client(
            "public clients authenticate with client_id alone (method none)",
        ));
    }
    let mut state = s.authz();
    if !state.is_public_client(client_id) {
        return Err(OAuthError::invalid_client(
            "unknown client: use the client_id of a registered public client",
        ));
    }
    state.prune();
    let invalid_grant = |description: &str| OAuthError::bad_request("invalid_grant", description);
    let issued_for = if grant_type == GRANT_AUTHORIZATION_CODE {
        let code = params
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let grant = state
            .codes
            .get(code)
            .ok_or_else(|| invalid_grant("unknown or expired authorization code"))?;
        if let Some(family) = grant.redeemed.clone() {
            // RFC 6749 §4.1.2: a code used twice revokes what it gave.
            state.revoke_family(&family);
            tracing::warn!(tenant = %tenant, "authorization code reused; its tokens are revoked");
            return Err(invalid_grant(
                "the authorization code was already used; the tokens issued for it are revoked",
            ));
        }
        if grant.expires <= Instant::now() {
            state.codes.remove(code);
            return Err(invalid_grant("the authorization code has expired"));
        }
        let request = grant.request.clone();
        // A failed redemption burns the code: whoever tries a stolen code gets one attempt.
        let refuse = |state: &mut AuthzState, description: &str| {
            state.codes.remove(code);
            invalid_grant(description)
        };
        if request.tenant != tenant || request.client_id != client_id {
            return Err(refuse(&mut state, "the code was issued to another client"));
        }
        if params.get("redirect_uri") != Some(request.redirect_uri.as_str()) {
            return Err(refuse(
                &mut state,
                "redirect_uri must be the one of the authorization request",
            ));
        }
        let verifier = params.get("code_verifier").unwrap_or_default();
        if !is_valid_verifier(verifier)
            || !constant_time_eq(
                sha256_b64url(verifier.as_bytes()).as_bytes(),
                request.code_challenge.as_bytes(),
            )
        {
            return Err(refuse(
                &mut state,
                "code_verifier does not match the code_challenge (PKCE S256)",
            ));
        }
        if let Some(jkt) = &request.dpop_jkt {
            // RFC 9449 §10: the proof must be signed by the key named at authorization.
            if proof_jkt.as_deref() != Some(jkt.as_str()) {
                return Err(refuse(
                    &mut state,
                    "the DPoP proof's key is not the dpop_jkt of the authorization request",
                ));
            }
        }
        if !state.make_room_for_a_login() {
            // The code stays redeemable: the app may try again in a moment.
            return Err(OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many logins are kept at this IDP; try again later",
            ));
        }
        let family_id = random_token(16);
        let Some(grant) = state.codes.get_mut(code) else {
            return Err(invalid_grant("unknown or expired authorization code"));
        };
        grant.redeemed = Some(family_id.clone());
        let family = Family {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            sub: grant.sub.clone(),
            jkt: proof_jkt.clone(),
            acr: grant.acr.clone(),
            amr: grant.amr.clone(),
            auth_time: grant.auth_time,
            scope: grant.request.scope.clone(),
            revoked: false,
            rotated: VecDeque::new(),
            last_used: Instant::now(),
        };
        let scope = family.scope.clone();
        state.families.insert(family_id.clone(), family);
        (family_id, request.nonce, scope)
    } else {
        let presented = params
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let hash = sha256_b64url(presented.as_bytes());
        let record = state.refresh_tokens.get(&hash).ok_or_else(|| {
            invalid_grant(
                "unknown, revoked or long rotated-out refresh token; the user must log in again",
            )
        })?;
        let (family_id, current) = (record.family.clone(), record.current);
        let family = state
            .families
            .get(&family_id)
            .ok_or_else(|| invalid_grant("unknown refresh token"))?;
        if family.tenant != tenant || family.client_id != client_id {
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if family.revoked {
            return Err(invalid_grant(
                "the refresh token was revoked; the user must log in again",
            ));
        }
        let bound_jkt = family.jkt.clone();
        // RFC 6749 §6: a refresh may ask for part of the login's scope, and then gets that part.
        let asked: Option<Vec<String>> = params.get("scope").map(|asked| {
            asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let narrows_scope = asked
            .as_ref()
            .is_none_or(|asked| asked.iter().all(|item| family.scope.contains(item)));
        let scope = asked.filter(|asked| !asked.is_empty()).map_or_else(
            || family.scope.clone(),
            |asked| {
                // In the login's order, each once.
                family
                    .scope
                    .iter()
                    .filter(|s| asked.contains(s))
                    .cloned()
                    .collect()
            },
        );
        if !current {
            // Reuse of a rotated token (RFC 9700 §4.14.2): someone holds a copy. End the family.
            state.revoke_family(&family_id);
            tracing::warn!(tenant = %tenant, "refresh token reused; its family is revoked");
            return Err(invalid_grant(
                "the refresh token was already used; every token of this login is revoked",
            ));
        }
        match (&bound_jkt, &proof_jkt) {
            (None, _) => {}
            (Some(_), None) => {
                return Err(OAuthError::bad_request(
                    "invalid_dpop_proof",
                    "this refresh token is DPoP-bound: send a DPoP proof of its key",
                ))
            }
            (Some(bound), Some(proof)) if bound == proof => {}
            (Some(_), Some(_)) => {
                return Err(invalid_grant(
                    "the DPoP proof's key is not the key this refresh token is bound to",
                ))
            }
        }
        if !narrows_scope {
            return Err(OAuthError::bad_request(
                "invalid_scope",
                "a refresh may only narrow the scope of the login",
            ));
        }
        if s.faults.take_fail_next_refresh() {
            return Err(invalid_grant(
                "the refresh token is no longer valid (fault injected by the dev IDP)",
            ));
        }
        state.rotate_out(&family_id, &hash);
        (family_id, None, scope)
    };
    let (family_id, nonce, scope) = issued_for;
    let Some(family) = state.families.get(&family_id) else {
        return Err(invalid_grant("unknown refresh token"));
    };
    let user = state.users.iter().find(|u| u.sub == family.sub);
    // The client's audience scopes among the ones asked for: their APIs join `aud`.
    let audiences: Vec<String> = state
        .clients
        .get(&family.client_id)
        .map(|client| {
            scope
                .iter()
                .filter_map(|item| client.audience_scopes.get(item).cloned())
                .collect()
        })
        .unwrap_or_default();
    let tokens = issue_user_tokens(
        s,
        key,
        &family_id,
        family,
        &scope,
        &audiences,
        user,
        nonce.as_deref(),
        proof_jkt.as_deref(),
    )?;
    if state.issued_scopes.len() >= MAX_SCOPES_KEPT {
        state.issued_scopes.pop_front();
    }
    state.issued_scopes.push_back(scope.join(" "));
    if let Some(refresh_token) = &tokens.refresh_token {
        state.refresh_tokens.insert(
            sha256_b64url(refresh_token.as_bytes()),
            RefreshRecord {
                family: family_id,
                current: true,
            },
        );
    }
    drop(state);
    tracing::info!(tenant = %tenant, client_id = %client_id, grant_type, "user tokens issued");
    Ok((no_store_headers(), Json(tokens.body)).into_response())
}

struct UserTokens {
    body: Value,
    refresh_token: Option<String>,
}

/// The access token (DPoP-bound with a proof), the ID token (with `openid`) and a new refresh
/// token (with `offline_access`) of a family. `scope` is the family's or the part of it a
/// refresh asked for; the refresh token always carries the family's whole scope.
#[allow(clippy::too_many_arguments)]
fn issue_user_tokens(
    s: &Shared,
    key: &SigningKey,
    family_id: &str,
    family: &Family,
    scope: &[String],
    audiences: &[String],
    user: Option<&DevUser>,
    nonce: Option<&str>,
    proof_jkt: Option<&str>,
) -> Result<UserTokens, OAuthError> {
    let ttl = s.config.access_token_ttl_secs;
    let (iss, now) = s.issuer_and_now(&family.tenant);
    let exp = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    let scope_text = scope.join(" ");
    let mut access = json!({
        "iss": iss, "sub": family.sub, "aud": family.client_id, "azp": family.client_id,
        "client_id": family.client_id, "scope": scope_text, "acr": family.acr, "amr": family.amr,
        "auth_time": family.auth_time, "sid": family_id, "iat": now, "exp": exp,
        "jti": random_token(16),
    });
    if !audiences.is_empty() {
        let mut aud = vec![family.client_id.clone()];
        aud.extend(audiences.iter().cloned());
        access["aud"] = json!(aud);
    }
    if let Some(jkt) = proof_jkt {
        access["cnf"] = json!({ "jkt": jkt });
    }
    if let (Some(members), Some(claims)) = (
        s.faults.user_access_token_override(),
        access.as_object_mut(),
    ) {
        claims.extend(members);
    }
    let access_token = sign_own_token(s, key, "at+jwt", &access)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": if proof_jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": ttl,
        "scope": scope_text,
    });
    if scope.iter().any(|s| s == "openid") {
        let mut id = json!({
            "iss": iss, "sub": family.sub, "aud": family.client_id, "azp": family.client_id,
            "iat": now, "exp": exp, "auth_time": family.auth_time, "acr": family.acr,
            "amr": family.amr, "sid": family_id,
        });
        if let Some(nonce) = nonce {
            id["nonce"] = json!(nonce);
        }
        if let Some(user) = user {
            if scope.iter().any(|s| s == "profile") {
                id["name"] = json!(user.name);
                id["preferred_username"] = json!(user.username);
            }
            if scope.iter().any(|s| s == "email") {
                id["email"] = json!(user.email);
            }
        }
        if let (Some(members), Some(claims)) = (s.faults.id_token_override(), id.as_object_mut()) {
            claims.extend(members);
        }
        body["id_token"] = json!(sign_own_token(s, key, "JWT", &id)?);
    }
    let refresh_token = family
        .scope
        .iter()
        .any(|s| s == "offline_access")
        .then(|| random_token(32));
    if let Some(token) = &refresh_token {
        body["refresh_token"] = json!(token);
    }
    Ok(UserTokens {
        body,
        refresh_token,
    })
}

// ---------------------------------------------------------------------------------------------
// Revocation (RFC 7009)

/// Revokes a refresh token (and its family) or an access token of the requesting public
/// client. Unknown tokens get 200 too (RFC 7009 §2.2).
pub(crate) async fn revoke(
    State(s): Shr,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, OAuthError> {
    StatsCounters::bump(&s.stats.revocation);
    s.tenant_key(&tenant)?;
    let params = parse_params(&body).map_err(OAuthError::invalid_request)?;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?
        .to_owned();
    if !s.authz().is_public_client(&client_id) {
        return Err(OAuthError::invalid_client(
            "unknown client: use the client_id of a registered public client",
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let not_yours = || OAuthError::invalid_request("the token was not issued to this client");
    // The hint only orders the lookups; both kinds are tried (RFC 7009 §2.1).
    let hash = sha256_b64url(token.as_bytes());
    let refresh_family = s
        .authz()
        .refresh_tokens
        .get(&hash)
        .map(|r| r.family.clone());
    if let Some(family_id) = refresh_family {
        let mut state = s.authz();
        let owner_ok = state
            .families
            .get(&family_id)
            .is_some_and(|f| f.client_id == client_id && f.tenant == tenant);
        if !owner_ok {
            return Err(not_yours());
        }
        state.revoke_family(&family_id);
        tracing::info!(tenant = %tenant, client_id = %client_id, "refresh token revoked with its family");
    } else if let Some(claims) = s.own_token_claims(&tenant, token) {
        let issued_to = claims.get("client_id").and_then(Value::as_str);
        if issued_to != Some(client_id.as_str()) {
            return Err(not_yours());
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            let exp = claims
                .get("exp")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            s.authz().revoke_access_token(jti, exp);
            tracing::info!(tenant = %tenant, client_id = %client_id, "access token revoked");
        }
    }
    Ok((StatusCode::OK, no_store_headers()).into_response())
}

// ---------------------------------------------------------------------------------------------
// Step-up (RFC 9470)

/// The `WWW-Authenticate` challenge of `/demo/step-up` when the login was too weak or too old.
pub(crate) fn step_up_challenge(is_dpop: bool, description: &str) -> OAuthError {
    let params = format!(
        "error=\"insufficient_user_authentication\", error_description=\"{description}\", acr_values=\"{ACR_STRONG}\", max_age={STEP_UP_MAX_AGE_SECS}"
    );
    let challenge = if is_dpop {
        format!("DPoP algs=\"ES256\", {params}")
    } else {
        format!("Bearer realm=\"{}\", {params}", crate::DEMO_AUDIENCE)
    };
    OAuthError {
        www_authenticate: Some(challenge),
        ..OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "insufficient_user_authentication",
            description,
        )
    }
}

#[cfg(test)]
mod tests {
    //! The bounds of the in-memory maps, which the HTTP tests cannot see: a login refreshed
    //! for days, many revocations and many logins must not grow the dev IDP without end.

    use super::*;
    use crate::{DevIdpConfig, DEMO_APP_CLIENT, DEMO_USER_SUB};

    const REDIRECT: &str = "http://127.0.0.1:43123/callback";

    fn shared() -> Shared {
        Shared::new("http://127.0.0.1:9".to_owned(), DevIdpConfig::default()).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> TokenParams {
        TokenParams::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    /// A code for the demo user, as the login form would issue it; answers the verifier.
    fn issue_code(s: &Shared, code: &str) -> String {
        let verifier = random_token(32);
        let now = Instant::now();
        let request = AuthzRequest {
            tenant: "demo".to_owned(),
            client_id: DEMO_APP_CLIENT.to_owned(),
            redirect_uri: REDIRECT.to_owned(),
            state: None,
            nonce: None,
            scope: vec!["openid".to_owned(), "offline_access".to_owned()],
            code_challenge: sha256_b64url(verifier.as_bytes()),
            dpop_jkt: None,
            acr_values: Vec::new(),
            max_age: None,
            login_hint: None,
        };
        s.authz().codes.insert(
            code.to_owned(),
            CodeGrant {
                request,
                sub: DEMO_USER_SUB.to_owned(),
                acr: ACR_PASSWORD.to_owned(),
                amr: vec!["pwd".to_owned()],
                auth_time: unix_now(),
                issued: now,
                expires: now + Duration::from_secs(60),
                redeemed: None,
            },
        );
        verifier
    }

    async fn body_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn grant(
        s: &Shared,
        key: &SigningKey,
        grant_type: &str,
        pairs: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        match user_grant(s, "demo", key, grant_type, &params(pairs), None) {
            Ok(response) => body_of(response).await,
            Err(error) => (error.status, json!({ "error": error.error })),
        }
    }

    /// Logs the demo user in; answers the first refresh token.
    async fn login(s: &Shared, key: &SigningKey) -> String {
        let code = random_token(32);
        let verifier = issue_code(s, &code);
        let (status, body) = grant(
            s,
            key,
            GRANT_AUTHORIZATION_CODE,
            &[
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", DEMO_APP_CLIENT),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["refresh_token"].as_str().unwrap().to_owned()
    }

    async fn refresh(s: &Shared, key: &SigningKey, token: &str) -> (StatusCode, Value) {
        grant(
            s,
            key,
            GRANT_REFRESH_TOKEN,
            &[("refresh_token", token), ("client_id", DEMO_APP_CLIENT)],
        )
        .await
    }

    #[tokio::test]
    async fn a_login_refreshed_many_times_keeps_a_bounded_token_history() {
        let s = shared();
        let key = SigningKey::generate().unwrap();
        let mut tokens = vec![login(&s, &key).await];
        for _ in 0..200 {
            let (status, body) = refresh(&s, &key, tokens.last().unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
        }
        let remembered = s.authz().refresh_tokens.len();
        assert!(
            remembered <= ROTATED_MEMORY + 1,
            "{remembered} refresh-token records for one login"
        );
        // A token older than the memory is refused, but it no longer ends the login.
        let (_, body) = refresh(&s, &key, &tokens[0]).await;
        assert_eq!(body["error"], "invalid_grant");
        // A recently rotated one is still recognised as reuse: the login ends, and with it every
        // record of its tokens.
        let (_, body) = refresh(&s, &key, &tokens[tokens.len() - 2]).await;
        assert_eq!(body["error"], "invalid_grant");
        let (_, body) = refresh(&s, &key, tokens.last().unwrap()).await;
        assert_eq!(body["error"], "invalid_grant", "the family is revoked");
        assert_eq!(s.authz().refresh_tokens.len(), 0);
    }

    #[tokio::test]
    async fn revoked_and_idle_logins_make_room_and_the_cap_holds() {
        let s = shared();
        let key = SigningKey::generate().unwrap();
        s.authz().max_families = 3;
        let first = login(&s, &key).await;
        login(&s, &key).await;
        login(&s, &key).await;
        // Full: a fourth login is refused with a clear "later", and its code is not burnt.
        let code = random_token(32);
        let verifier = issue_code(&s, &code);
        let redeem = [
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
            ("client_id", DEMO_APP_CLIENT),
        ];
        let (status, body) = grant(&s, &key, GRANT_AUTHORIZATION_CODE, &redeem).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("temporarily_unavailable")
            )
        );
        // A revoked login makes room.
        let family = s.authz().refresh_tokens[&sha256_b64url(first.as_bytes())]
            .family
            .clone();
        s.authz().revoke_family(&family);
        let (status, body) = grant(&s, &key, GRANT_AUTHORIZATION_CODE, &redeem).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(s.authz().families.len(), 3);
        let (_, body) = refresh(&s, &key, &first).await;
        assert_eq!(
            body["error"], "invalid_grant",
            "the revoked login stays revoked"
        );
    }

    #[test]
    fn revoked_access_token_ids_are_forgotten_once_the_token_expired() {
        let s = shared();
        let mut state = s.authz();
        let now = unix_now();
        state.revoke_access_token("expired-long-ago", now - 3600);
        state.revoke_access_token("still-valid", now + 3600);
        state.prune();
        assert!(state.is_revoked(json!({ "jti": "still-valid" }).as_object().unwrap()));
        assert_eq!(state.revoked_jtis.len(), 1);
    }
}
