//! How a runtime is set up: where the IDP is, where the store lives, and protocol settings.

use std::path::PathBuf;
use std::time::Duration;

pub use mc_oidc::OidcConfig;

/// Where enrolled users are kept.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// A redb file and its 0600 key file in this directory (created if missing).
    Directory(PathBuf),
    /// Memory only, lost when the runtime stops: for tests and benchmarks.
    Memory,
}

/// Settings of one runtime.
#[derive(Clone, Debug)]
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
        }
    }
}
