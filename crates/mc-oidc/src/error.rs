//! Errors of the protocol client. Each variant says what the caller should do next; none
//! carries a token, an assertion, a registration secret or a full endpoint URL (a
//! registration URL names the client), only origins, HTTP statuses and OAuth error codes.

/// Why a protocol step failed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Connection refused, DNS failure, connection reset: the IDP is not reachable now.
    #[error("identity provider at {origin} is not reachable ({reason}); retry later")]
    NotReachable { origin: String, reason: String },
    /// The connection broke after the request was sent (reset, closed mid-answer): the IDP
    /// may have processed it, so it is not repeated unless it is safe to repeat.
    #[error("the connection to the identity provider at {origin} broke after the request was sent ({reason}); retry later")]
    ConnectionLost { origin: String, reason: String },
    /// The IDP did not answer within the configured HTTP timeout.
    #[error("identity provider at {origin} did not answer in time; retry later")]
    Timeout { origin: String },
    /// TLS handshake or certificate check failed.
    #[error(
        "TLS with {origin} failed ({reason}); check the server certificate and the trust store"
    )]
    Tls { origin: String, reason: String },
    /// `invalid_client` (or a bare 401): the registration is gone at the IDP or no longer
    /// accepts this key.
    #[error(
        "the identity provider does not accept this client any more (invalid_client); enroll again"
    )]
    InvalidClient,
    /// 403, `access_denied` or `unauthorized_client`: the IDP refuses this client or this
    /// registration (for example a registration policy).
    #[error("the identity provider refused the request (access denied); its policy for this client must change")]
    AccessDenied,
    /// `invalid_grant`: the subject token or grant is not acceptable.
    #[error("the identity provider rejected the grant (invalid_grant); log in again and retry with a fresh token")]
    InvalidGrant,
    /// `invalid_target`: the requested audience is unknown or not allowed for this client.
    #[error("the requested audience is not allowed (invalid_target); fix the audience")]
    InvalidTarget,
    /// Any other OAuth error code (`invalid_request`, `unsupported_grant_type`,
    /// `invalid_client_metadata`, ...): the request or the IDP configuration must be fixed.
    #[error("the identity provider rejected the request with OAuth error `{code}`; fix the request or the IDP configuration")]
    Rejected { code: String },
    /// 503, 429 or `temporarily_unavailable`: the IDP did not process the request and asks
    /// to come back later (after `retry_after_secs`, from its `Retry-After`, when given).
    #[error("the identity provider is unavailable (HTTP {status}){}; retry later", retry_hint(.retry_after_secs))]
    Unavailable {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// Other 5xx or `server_error`: the IDP has a problem now.
    #[error("the identity provider failed (HTTP {status}); retry later")]
    ServerError { status: u16 },
    /// The answer is not what the protocol requires: not JSON, HTML, too large, a required
    /// field missing, an unexpected status.
    #[error("invalid answer from the identity provider: {0}; check the server URL and the IDP")]
    InvalidResponse(String),
    /// Discovery answered for another issuer than the one asked for.
    #[error("discovery answered issuer `{found}` instead of `{expected}`; check the server URL, the tenant and the issuer template")]
    IssuerMismatch { expected: String, found: String },
    /// A token failed verification: signature, unknown key, issuer, expiry, format.
    #[error("token rejected: {0}; obtain a new token")]
    InvalidToken(String),
    /// The client or a request was set up wrongly (bad URL, plain http to a remote host, no
    /// registration endpoint, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The coarse class of an [`OidcError`], for mapping onto runtime statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OidcErrorKind {
    NotReachable,
    Timeout,
    Tls,
    InvalidClient,
    AccessDenied,
    /// `InvalidGrant`, `InvalidTarget` or `Rejected`: the request must change.
    BadRequest,
    ServerError,
    InvalidResponse,
    IssuerMismatch,
    InvalidToken,
    Config,
}

impl OidcError {
    pub fn kind(&self) -> OidcErrorKind {
        match self {
            OidcError::NotReachable { .. } | OidcError::ConnectionLost { .. } => {
                OidcErrorKind::NotReachable
            }
            OidcError::Timeout { .. } => OidcErrorKind::Timeout,
            OidcError::Tls { .. } => OidcErrorKind::Tls,
            OidcError::InvalidClient => OidcErrorKind::InvalidClient,
            OidcError::AccessDenied => OidcErrorKind::AccessDenied,
            OidcError::InvalidGrant | OidcError::InvalidTarget | OidcError::Rejected { .. } => {
                OidcErrorKind::BadRequest
            }
            OidcError::ServerError { .. } | OidcError::Unavailable { .. } => {
                OidcErrorKind::ServerError
            }
            OidcError::InvalidResponse(_) => OidcErrorKind::InvalidResponse,
            OidcError::IssuerMismatch { .. } => OidcErrorKind::IssuerMismatch,
            OidcError::InvalidToken(_) => OidcErrorKind::InvalidToken,
            OidcError::Config(_) => OidcErrorKind::Config,
        }
    }

    /// True when the same request may succeed later without any change (network, timeout,
    /// server trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            OidcErrorKind::NotReachable | OidcErrorKind::Timeout | OidcErrorKind::ServerError
        )
    }
}

/// ", asks to retry after N s" when the IDP named a delay.
fn retry_hint(retry_after_secs: &Option<u64>) -> String {
    match retry_after_secs {
        Some(secs) => format!(", it asks to retry after {secs} s"),
        None => String::new(),
    }
}
