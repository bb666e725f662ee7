//! Errors of the protocol client. Each variant says what the caller should do next; none
//! carries a token, an assertion, a registration secret or a full endpoint URL (a
//! registration URL names the client), only origins, HTTP statuses and OAuth error codes, and
//! the IDP's own `error_description` after [`idp_text`] made it printable, short and free of
//! anything token-like.

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
    /// The token endpoint refused a request and said why: `error` is what the refusal means
    /// for the caller (one of the variants above), `idp_says` the IDP's `error` and
    /// `error_description`, sanitised by [`idp_text`]. Use [`OidcError::cause`] to match.
    #[error("{error} (the identity provider said: {idp_says})")]
    IdpRefused {
        error: Box<OidcError>,
        idp_says: String,
    },
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
    /// What the error means, without the IDP's text: the error inside an
    /// [`OidcError::IdpRefused`], or the error itself.
    pub fn cause(&self) -> &OidcError {
        match self {
            OidcError::IdpRefused { error, .. } => error.cause(),
            other => other,
        }
    }

    pub fn kind(&self) -> OidcErrorKind {
        match self {
            OidcError::IdpRefused { error, .. } => error.kind(),
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

/// Longest IDP text kept, in characters.
pub const MAX_IDP_TEXT_CHARS: usize = 200;

/// The IDP's `error` and `error_description` as one line fit for an app's result event: control
/// characters dropped, anything that looks like a token or a key (a word of 32 or more
/// characters without spaces, or a word containing `eyJ`, the base64 of `{"`) replaced by
/// `[redacted]`, at most [`MAX_IDP_TEXT_CHARS`] characters. `None` when nothing is left.
pub fn idp_text(error: &str, description: Option<&str>) -> Option<String> {
    let joined = match description {
        Some(d) if !d.trim().is_empty() => format!("{error}: {d}"),
        _ => error.to_string(),
    };
    let printable: String = joined
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = printable
        .split_whitespace()
        .map(|word| {
            if word.chars().count() >= 32 || word.contains("eyJ") {
                "[redacted]"
            } else {
                word
            }
        })
        .collect();
    let mut text = words.join(" ");
    if text.chars().count() > MAX_IDP_TEXT_CHARS {
        text = text
            .chars()
            .take(MAX_IDP_TEXT_CHARS - 1)
            .collect::<String>()
            + "…";
    }
    (!text.is_empty()).then_some(text)
}

/// ", asks to retry after N s" when the IDP named a delay.
fn retry_hint(retry_after_secs: &Option<u64>) -> String {
    match retry_after_secs {
        Some(secs) => format!(", it asks to retry after {secs} s"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_text_is_short_printable_and_token_free() {
        assert_eq!(
            idp_text(
                "access_denied",
                Some("Missing consents for Token Exchange in client app")
            ),
            Some("access_denied: Missing consents for Token Exchange in client app".into())
        );
        assert_eq!(
            idp_text("invalid_grant", None),
            Some("invalid_grant".into())
        );
        assert_eq!(idp_text("", Some("  ")), None);
        let hostile = idp_text(
            "invalid_grant",
            Some("bad\r\nX-Injected: 1\u{7}\u{1b}[31m token eyJhbGciOiJFUzI1NiJ9.e30.sig and abcdefghijklmnopqrstuvwxyz0123456789ABCD"),
        )
        .unwrap();
        assert!(!hostile.chars().any(char::is_control), "{hostile:?}");
        assert!(
            !hostile.contains("eyJ") && !hostile.contains("abcdefghijklmnop"),
            "{hostile}"
        );
        assert!(hostile.contains("[redacted]"), "{hostile}");
        let long = idp_text("server_error", Some(&"word ".repeat(500))).unwrap();
        assert_eq!(long.chars().count(), MAX_IDP_TEXT_CHARS);
        let wrapped = OidcError::IdpRefused {
            error: Box::new(OidcError::AccessDenied),
            idp_says: "access_denied: Missing consents".into(),
        };
        assert_eq!(wrapped.cause(), &OidcError::AccessDenied);
        assert_eq!(wrapped.kind(), OidcErrorKind::AccessDenied);
        assert!(
            wrapped.to_string().contains("Missing consents"),
            "{wrapped}"
        );
    }
}
