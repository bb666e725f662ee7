//! How a runtime is set up: where the IDP is, where the store lives, and protocol settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use mc_oidc::http::{AllowedOrigin, SpkiPin, TlsSettings};
pub use mc_oidc::OidcConfig;
pub use mc_store::{BiometricKeyProvider, KdfSettings, KeyProvider, LockoutPolicy, StoreSettings};

/// Where enrolled users are kept.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// A redb file and its 0600 key file in this directory (created if missing).
    Directory(PathBuf),
    /// Memory only, lost when the runtime stops: for tests and benchmarks.
    Memory,
}

/// Settings of one runtime.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Base URL of the IDP, e.g. `https://idp.example.com` (Keycloak: without `/realms/...`).
    pub server_url: String,
    pub store: StoreLocation,
    /// Issuer template, clock tolerance, HTTP limits of the protocol client.
    pub oidc: OidcConfig,
    /// An IAM token is exchanged again once it has less than this left.
    pub token_refresh_margin: Duration,
    /// Largest response body a CreateHttpCommonRequest reads.
    pub http_max_response_bytes: usize,
    /// Timeout of a CreateHttpCommonRequest that names none.
    pub http_default_timeout: Duration,
    /// Which origins may receive the IAM token of each audience. A CreateHttpCommonRequest
    /// with an audience goes out only to one of them; an audience without origins has its
    /// token sent nowhere. Trust roots and pins (IDP and resource calls alike) are in
    /// `oidc.tls`.
    pub audience_origins: AudienceOrigins,
    /// Which OAuth scope brings each API's audience into an identified user's access token
    /// (StartEvent's `configuration.audienceScopes` replaces them). Shared: every clone of
    /// this config sees the same mapping.
    pub audience_scopes: AudienceScopes,
    /// The password KDF and the lockout policy (see docs/security.md).
    pub store_settings: StoreSettings,
    /// The platform key behind mode BIOMETRIC (Android Keystore, Secure Enclave). Without one,
    /// BIOMETRIC answers NOT_SUPPORTED.
    pub biometric: Option<Arc<dyn BiometricKeyProvider>>,
    /// The text of the biometric prompt.
    pub biometric_prompt: String,
    /// The platform key that wraps the credentials of mode NO (Android Keystore, iOS
    /// Keychain). Without one: a 0600 key file in the store directory (random per process for
    /// a memory store).
    pub key_provider: Option<Arc<dyn KeyProvider>>,
    /// Most events waiting for one listener. Beyond it, newer events are dropped for that
    /// listener only and it gets one `WarningEvent` (LISTENER_OVERFLOW) saying how many
    /// (see `listeners`). A listener never stalls the runtime or the other listeners.
    pub listener_queue_capacity: usize,
    /// Most requests running at once. Beyond it a request is answered at once with status
    /// FAILED and TOO_MANY_REQUESTS, without being queued.
    pub max_requests_in_flight: usize,
    /// Most CreateHttpCommonRequests talking to their server at once. More wait for a turn
    /// (their number is bounded by `max_requests_in_flight`); their own timeout still runs
    /// only once they are sent.
    pub max_http_in_flight: usize,
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("server_url", &self.server_url)
            .field("store", &self.store)
            .field("oidc", &self.oidc)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .field("audience_origins", &self.audience_origins)
            .field("audience_scopes", &self.audience_scopes)
            .field("store_settings", &self.store_settings)
            .field("biometric", &self.biometric.is_some())
            .field("key_provider", &self.key_provider.is_some())
            .field("listener_queue_capacity", &self.listener_queue_capacity)
            .field("max_requests_in_flight", &self.max_requests_in_flight)
            .field("max_http_in_flight", &self.max_http_in_flight)
            .finish_non_exhaustive()
    }
}

impl RuntimeConfig {
    pub fn new(server_url: impl Into<String>, store: StoreLocation) -> Self {
        Self {
            server_url: server_url.into().trim_end_matches('/').to_string(),
            store,
            oidc: OidcConfig::default(),
            token_refresh_margin: Duration::from_secs(30),
            http_max_response_bytes: 10 * 1024 * 1024,
            http_default_timeout: Duration::from_secs(30),
            audience_origins: AudienceOrigins::default(),
            audience_scopes: AudienceScopes::default(),
            store_settings: StoreSettings::default(),
            biometric: None,
            biometric_prompt: "Unlock your device identity".into(),
            key_provider: None,
            listener_queue_capacity: crate::listeners::DEFAULT_QUEUE_CAPACITY,
            max_requests_in_flight: 10_000,
            max_http_in_flight: 16,
        }
    }
}

/// The origins (scheme, host, port) that may receive the IAM token of each audience: a token
/// is a key to the audience's servers, so it goes to them only, never to any URL an app (or
/// a redirect) names. Empty by default: no token is sent anywhere until the host lists its
/// servers.
#[derive(Clone, Debug, Default)]
pub struct AudienceOrigins {
    by_audience: BTreeMap<String, Vec<AllowedOrigin>>,
}

impl AudienceOrigins {
    /// Lets `origin` (`https://api.example.com`, `https://*.example.com:8443`, plain http only
    /// to a loopback host) receive the token of `audience`.
    pub fn allow(&mut self, audience: &str, origin: &str) -> Result<&mut Self, String> {
        let origin = AllowedOrigin::parse(origin)?;
        let origins = self.by_audience.entry(audience.to_string()).or_default();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
        Ok(self)
    }

    /// The origins of `audience` (none when not listed).
    pub fn of(&self, audience: &str) -> &[AllowedOrigin] {
        self.by_audience
            .get(audience)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Which OAuth scope brings each API's audience (`aud`) into an identified user's access
/// token: for IDPs whose public clients may not use the token exchange (Keycloak 26), the
/// token of a mapped audience comes from the refresh grant narrowed to `openid` and that scope
/// (RFC 6749 §6), and the user's own refreshes ask for `openid` only, so the internal token
/// carries no API audience. Empty by default: every audience is exchanged (RFC 8693).
/// Set before the first login (StartEvent or here): a session keeps the mapping it began with.
#[derive(Clone, Debug, Default)]
pub struct AudienceScopes(Arc<std::sync::RwLock<Arc<BTreeMap<String, String>>>>);

impl AudienceScopes {
    /// Replaces the mapping with `text` read as StartEvent's `configuration.audienceScopes`
    /// (`audience=scope` pairs, comma-separated); on an error nothing changes.
    pub fn set_from_text(&self, text: &str) -> Result<(), String> {
        self.replace(mc_events::parse_audience_scopes(text)?);
        Ok(())
    }

    /// Replaces the mapping (audience → scope).
    pub fn replace(&self, scopes: BTreeMap<String, String>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(scopes);
    }

    /// The mapping now.
    pub fn current(&self) -> Arc<BTreeMap<String, String>> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
