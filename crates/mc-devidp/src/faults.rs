//! Test knobs ([`Faults`]) and request counters ([`Stats`]).
//!
//! Adding a fault: one atomic field, a `set_…`/getter pair, a line in `clear_all`, and the check in
//! the handler it affects. Faults of the HTTP answer itself (a status, a broken body, a delay) are
//! one [`HttpFault`] aimed at one endpoint ([`FaultTarget`]), answered by a layer in front of every
//! handler, optionally for a limited number of requests (to test that a client retries and then
//! succeeds).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// The endpoints an [`HttpFault`] can be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every endpoint, the demo resource included.
    Any,
    Discovery,
    Jwks,
    /// `POST` to the registration endpoint (RFC 7591).
    Registration,
    /// `GET`/`DELETE` of a registered client (RFC 7592).
    RegistrationManagement,
    Token,
    /// `POST` to the introspection endpoint (RFC 7662).
    Introspection,
    /// The authorization endpoint, its login form and PAR.
    Authorization,
    /// `POST` to the revocation endpoint (RFC 7009).
    Revocation,
}

/// An answer the dev IDP gives instead of the real one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpFault {
    /// This status with an OAuth JSON error body (`temporarily_unavailable` for 503,
    /// `server_error` otherwise), and `Retry-After: retry_after_secs` when set.
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// 200 `application/json` whose body breaks off in the middle of an object.
    MalformedJson,
    /// This status with an HTML page, as a reverse proxy or a misrouted URL answers.
    HtmlPage { status: u16 },
    /// 200 `application/json` streaming `bytes` bytes in chunks without a `Content-Length`, so
    /// only a client that stops reading at its limit finishes early. [`Faults::oversized_bytes_streamed`]
    /// tells how much was actually produced.
    OversizedBody { bytes: u64 },
    /// The real answer, after this many milliseconds (a client with a shorter timeout gives up).
    Delay { millis: u64 },
    /// This status with the OAuth error body `{"error": error, "error_description":
    /// description}`, as Keycloak answers an exchange without consent ("Missing consents for
    /// Token Exchange").
    OAuthError {
        status: u16,
        error: String,
        description: String,
    },
}

#[derive(Debug)]
struct ArmedHttpFault {
    target: FaultTarget,
    fault: HttpFault,
    /// Requests still to be answered so; `None`: until cleared.
    remaining: Option<u32>,
}

/// Ways to make the development IDP misbehave on purpose, switched at run time from a test.
/// All are off by default and take effect on the next request.
#[derive(Debug)]
pub struct Faults {
    sign_with_foreign_key: AtomicBool,
    wrong_token_issuer: AtomicBool,
    wrong_discovery_issuer: AtomicBool,
    reject_all_tokens_with_invalid_client: AtomicBool,
    issue_expired_tokens: AtomicBool,
    exchange_for_another_audience: AtomicBool,
    /// Token exchanges by public clients are refused (Keycloak 26's standard token exchange).
    refuse_public_client_exchange: AtomicBool,
    /// Members put into every active introspection answer (over the real ones).
    introspection_override: Mutex<Option<serde_json::Map<String, serde_json::Value>>>,
    /// Seconds from now for the `exp` of exchanged tokens; `NO_EXP_OVERRIDE`: the usual `exp`.
    exchanged_token_exp_secs: AtomicI64,
    require_dpop_nonce: AtomicBool,
    stale_metadata_secs: AtomicU64,
    /// The next `refresh_token` grant answers `invalid_grant` (then the knob turns itself off).
    fail_next_refresh: AtomicBool,
    /// Members put over the real claims of every ID token issued.
    id_token_override: Mutex<Option<serde_json::Map<String, serde_json::Value>>>,
    /// `sub` of every `client_credentials` token instead of the client's own.
    device_token_subject: Mutex<Option<String>>,
    /// Members put over the real claims of every user access token (code and refresh grants).
    user_access_token_override: Mutex<Option<serde_json::Map<String, serde_json::Value>>>,
    http_fault: Mutex<Option<ArmedHttpFault>>,
    injected: AtomicU64,
    oversized_bytes_streamed: AtomicU64,
}

const NO_EXP_OVERRIDE: i64 = i64::MIN;

impl Default for Faults {
    fn default() -> Self {
        Self {
            sign_with_foreign_key: AtomicBool::default(),
            wrong_token_issuer: AtomicBool::default(),
            wrong_discovery_issuer: AtomicBool::default(),
            reject_all_tokens_with_invalid_client: AtomicBool::default(),
            issue_expired_tokens: AtomicBool::default(),
            exchange_for_another_audience: AtomicBool::default(),
            refuse_public_client_exchange: AtomicBool::default(),
            exchanged_token_exp_secs: AtomicI64::new(NO_EXP_OVERRIDE),
            introspection_override: Mutex::default(),
            require_dpop_nonce: AtomicBool::default(),
            stale_metadata_secs: AtomicU64::default(),
            fail_next_refresh: AtomicBool::default(),
            id_token_override: Mutex::default(),
            device_token_subject: Mutex::default(),
            user_access_token_override: Mutex::default(),
            http_fault: Mutex::default(),
            injected: AtomicU64::default(),
            oversized_bytes_streamed: AtomicU64::default(),
        }
    }
}

impl Faults {
    /// Every introspection answer for an active token gets these members over its real ones
    /// (`{"active": false}`, another `client_id`, another `cnf`), so a client must check
    /// them. `None`: the real answer.
    pub fn set_introspection_override(
        &self,
        members: Option<serde_json::Map<String, serde_json::Value>>,
    ) {
        *self
            .introspection_override
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = members;
    }
    pub fn introspection_override(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.introspection_override
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
    /// Exchanged tokens get `exp` = now + `secs` (negative: already expired) while the
    /// answer's `expires_in` still claims the usual lifetime: a client that trusts
    /// `expires_in` alone serves a dead token from its cache. `None`: the usual `exp`.
    pub fn set_exchanged_token_exp_secs(&self, secs: Option<i64>) {
        self.exchanged_token_exp_secs
            .store(secs.unwrap_or(NO_EXP_OVERRIDE), Ordering::SeqCst);
    }
    pub fn exchanged_token_exp_secs(&self) -> Option<i64> {
        let secs = self.exchanged_token_exp_secs.load(Ordering::SeqCst);
        (secs != NO_EXP_OVERRIDE).then_some(secs)
    }

    /// Issued tokens are signed by a key that is not in the JWKS (its `kid` is a thumbprint as usual,
    /// just of the wrong key), so a client must refuse them.
    pub fn set_sign_with_foreign_key(&self, on: bool) {
        self.sign_with_foreign_key.store(on, Ordering::SeqCst);
    }
    pub fn sign_with_foreign_key(&self) -> bool {
        self.sign_with_foreign_key.load(Ordering::SeqCst)
    }

    /// Issued tokens carry the `iss` of another issuer (signed by the right key).
    pub fn set_wrong_token_issuer(&self, on: bool) {
        self.wrong_token_issuer.store(on, Ordering::SeqCst);
    }
    pub fn wrong_token_issuer(&self) -> bool {
        self.wrong_token_issuer.load(Ordering::SeqCst)
    }

    /// The discovery document names another `issuer` than the one asked for.
    pub fn set_wrong_discovery_issuer(&self, on: bool) {
        self.wrong_discovery_issuer.store(on, Ordering::SeqCst);
    }
    pub fn wrong_discovery_issuer(&self) -> bool {
        self.wrong_discovery_issuer.load(Ordering::SeqCst)
    }

    /// Every token request is answered 401 `invalid_client`, as if the registration were gone.
    pub fn set_reject_all_tokens_with_invalid_client(&self, on: bool) {
        self.reject_all_tokens_with_invalid_client
            .store(on, Ordering::SeqCst);
    }
    pub fn reject_all_tokens_with_invalid_client(&self) -> bool {
        self.reject_all_tokens_with_invalid_client
            .load(Ordering::SeqCst)
    }

    /// Issued tokens expired ten minutes ago (longer than any sane clock tolerance); the
    /// answer's `expires_in` still claims the usual lifetime, so only a client that checks `exp`
    /// notices.
    pub fn set_issue_expired_tokens(&self, on: bool) {
        self.issue_expired_tokens.store(on, Ordering::SeqCst);
    }
    pub fn issue_expired_tokens(&self) -> bool {
        self.issue_expired_tokens.load(Ordering::SeqCst)
    }

    /// A token exchange answers a token whose `aud` is not the audience asked for (signed by the
    /// right key), so a client must compare the two.
    pub fn set_exchange_for_another_audience(&self, on: bool) {
        self.exchange_for_another_audience
            .store(on, Ordering::SeqCst);
    }
    pub fn exchange_for_another_audience(&self) -> bool {
        self.exchange_for_another_audience.load(Ordering::SeqCst)
    }

    /// A token exchange by a public client (a native app's user) answers 400
    /// `unauthorized_client`, as Keycloak 26 does ("Standard token exchange is not enabled for
    /// the requested client"); device exchanges are unaffected.
    pub fn set_refuse_public_client_exchange(&self, on: bool) {
        self.refuse_public_client_exchange
            .store(on, Ordering::SeqCst);
    }
    pub fn refuse_public_client_exchange(&self) -> bool {
        self.refuse_public_client_exchange.load(Ordering::SeqCst)
    }

    /// DPoP proofs must carry the IDP's current nonce (RFC 9449 §8, §9): a proof without it
    /// is answered `use_dpop_nonce` with a `DPoP-Nonce` header (400 at the token endpoint,
    /// 401 at `/demo/echo`), as Keycloak and node-oidc-provider can be configured to do.
    pub fn set_require_dpop_nonce(&self, on: bool) {
        self.require_dpop_nonce.store(on, Ordering::SeqCst);
    }
    pub fn require_dpop_nonce(&self) -> bool {
        self.require_dpop_nonce.load(Ordering::SeqCst)
    }

    /// Discovery and JWKS answers look served from a CDN cache filled `secs` seconds ago:
    /// `Date` that far in the past and `Age: secs`. A client that learns the server clock from
    /// them (and not from the token endpoint) ends up `secs` behind. 0: off.
    pub fn set_stale_metadata_secs(&self, secs: u64) {
        self.stale_metadata_secs.store(secs, Ordering::SeqCst);
    }
    pub fn stale_metadata_secs(&self) -> u64 {
        self.stale_metadata_secs.load(Ordering::SeqCst)
    }

    /// Answers requests to `target` with `fault` instead of the real answer: the next `times`
    /// of them, or all until cleared (`None`). Replaces any HTTP fault set before.
    pub fn set_http_fault(&self, target: FaultTarget, fault: HttpFault, times: Option<u32>) {
        *self.lock_http_fault() = Some(ArmedHttpFault {
            target,
            fault,
            remaining: times,
        });
    }

    /// Switches the HTTP fault off.
    pub fn clear_http_fault(&self) {
        *self.lock_http_fault() = None;
    }

    /// How many requests were answered by an HTTP fault (a delayed one included) since start.
    pub fn injected_count(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Bytes of [`HttpFault::OversizedBody`] answers produced so far (the client's reading
    /// pace limits this: a client that hangs up stops the stream).
    pub fn oversized_bytes_streamed(&self) -> u64 {
        self.oversized_bytes_streamed.load(Ordering::SeqCst)
    }

    /// The next `refresh_token` grant answers `invalid_grant` ("the IDP forgot the session"),
    /// without revoking anything; the knob turns itself off after that one request.
    pub fn set_fail_next_refresh(&self, on: bool) {
        self.fail_next_refresh.store(on, Ordering::SeqCst);
    }
    /// Whether this refresh must fail; consumes the knob.
    pub(crate) fn take_fail_next_refresh(&self) -> bool {
        self.fail_next_refresh.swap(false, Ordering::SeqCst)
    }

    /// Every ID token issued gets these claims over its real ones (another `nonce`, `aud`,
    /// `azp`, an `exp` in the past, ...), so a client must check each. `None`: real claims.
    pub fn set_id_token_override(
        &self,
        members: Option<serde_json::Map<String, serde_json::Value>>,
    ) {
        *self
            .id_token_override
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = members;
    }
    pub(crate) fn id_token_override(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.id_token_override
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Every `client_credentials` (device) token names this `sub` instead of the one the
    /// client was registered with, as an IDP that swapped identities would; `None`: the real
    /// one. A client must refuse a login for a user it stored under another id.
    pub fn set_device_token_subject(&self, subject: Option<String>) {
        *self
            .device_token_subject
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = subject;
    }
    pub(crate) fn device_token_subject(&self) -> Option<String> {
        self.device_token_subject
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Every user access token issued (code and refresh grants) gets these claims over its
    /// real ones (another `sub`, `azp`, `aud`), so a client must check them. `None`: real claims.
    pub fn set_user_access_token_override(
        &self,
        members: Option<serde_json::Map<String, serde_json::Value>>,
    ) {
        *self
            .user_access_token_override
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = members;
    }
    pub(crate) fn user_access_token_override(
        &self,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.user_access_token_override
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The fault to answer a request to `target` with, counting it down.
    pub(crate) fn take_http_fault(&self, target: FaultTarget) -> Option<HttpFault> {
        let mut armed = self.lock_http_fault();
        let current = armed.as_mut()?;
        if current.target != FaultTarget::Any && current.target != target {
            return None;
        }
        let fault = current.fault.clone();
        match &mut current.remaining {
            Some(0) => {
                *armed = None;
                return None;
            }
            Some(left) => {
                *left -= 1;
                if *left == 0 {
                    *armed = None;
                }
            }
            None => {}
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        Some(fault)
    }

    pub(crate) fn count_oversized_bytes(&self, bytes: u64) {
        self.oversized_bytes_streamed
            .fetch_add(bytes, Ordering::SeqCst);
    }

    fn lock_http_fault(&self) -> std::sync::MutexGuard<'_, Option<ArmedHttpFault>> {
        // Plain data: a panic while holding it cannot leave it half-written.
        self.http_fault
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Switches every fault off (the counters stay).
    pub fn clear_all(&self) {
        self.set_sign_with_foreign_key(false);
        self.set_wrong_token_issuer(false);
        self.set_wrong_discovery_issuer(false);
        self.set_reject_all_tokens_with_invalid_client(false);
        self.set_issue_expired_tokens(false);
        self.set_exchange_for_another_audience(false);
        self.set_refuse_public_client_exchange(false);
        self.set_exchanged_token_exp_secs(None);
        self.set_introspection_override(None);
        self.set_require_dpop_nonce(false);
        self.set_stale_metadata_secs(0);
        self.set_fail_next_refresh(false);
        self.set_id_token_override(None);
        self.set_device_token_subject(None);
        self.set_user_access_token_override(None);
        self.clear_http_fault();
    }
}

/// Requests each endpoint received (successful or not) since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub discovery: u64,
    pub jwks: u64,
    pub registration: u64,
    pub registration_read: u64,
    pub registration_delete: u64,
    /// Token requests with `grant_type=client_credentials`.
    pub token_client_credentials: u64,
    /// Token requests with the token-exchange grant type.
    pub token_exchange: u64,
    /// Token requests with any other or no grant type, or an unreadable form.
    pub token_other: u64,
    /// Requests to the introspection endpoint.
    pub introspection: u64,
    pub echo: u64,
    /// Token requests with `grant_type=authorization_code`.
    pub token_authorization_code: u64,
    /// Token requests with `grant_type=refresh_token`.
    pub token_refresh: u64,
    /// Authorization endpoint requests (GET) and login form posts.
    pub authorization: u64,
    /// Pushed authorization requests (RFC 9126).
    pub par: u64,
    /// Revocation requests (RFC 7009).
    pub revocation: u64,
    /// Requests to `/demo/step-up`.
    pub step_up: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub discovery: AtomicU64,
    pub jwks: AtomicU64,
    pub registration: AtomicU64,
    pub registration_read: AtomicU64,
    pub registration_delete: AtomicU64,
    pub token_client_credentials: AtomicU64,
    pub token_exchange: AtomicU64,
    pub token_other: AtomicU64,
    pub introspection: AtomicU64,
    pub echo: AtomicU64,
    pub token_authorization_code: AtomicU64,
    pub token_refresh: AtomicU64,
    pub authorization: AtomicU64,
    pub par: AtomicU64,
    pub revocation: AtomicU64,
    pub step_up: AtomicU64,
}

impl StatsCounters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            discovery: read(&self.discovery),
            jwks: read(&self.jwks),
            registration: read(&self.registration),
            registration_read: read(&self.registration_read),
            registration_delete: read(&self.registration_delete),
            token_client_credentials: read(&self.token_client_credentials),
            token_exchange: read(&self.token_exchange),
            token_other: read(&self.token_other),
            introspection: read(&self.introspection),
            echo: read(&self.echo),
            token_authorization_code: read(&self.token_authorization_code),
            token_refresh: read(&self.token_refresh),
            authorization: read(&self.authorization),
            par: read(&self.par),
            revocation: read(&self.revocation),
            step_up: read(&self.step_up),
        }
    }
}
