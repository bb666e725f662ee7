//! HTTP transport to the IDP: URL policy, size-limited body reading, the server clock
//! learned from the token endpoint's `Date` and `Age`, the OAuth error body, and the headers
//! every IDP request carries for the host (`User-Agent`, `Accept-Language` from
//! [`HostIdentity`], the current request's W3C `traceparent` from [`with_traceparent`]). TLS, pins
//! and the mapping of transport failures are the shared HTTP layer's (`http.rs`).

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::dpop::{NonceStore, DPOP_NONCE_HEADER};
use crate::http::{classify, TransportFailure};
use crate::{OidcConfig, OidcError};

/// Which IDP endpoint a request goes to; named in debug logs instead of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Discovery,
    Jwks,
    Registration,
    RegistrationClient,
    Token,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "jwks",
            Endpoint::Registration => "registration",
            Endpoint::RegistrationClient => "registration_client",
            Endpoint::Token => "token",
        }
    }
}

tokio::task_local! {
    /// The W3C `traceparent` of the host request an IDP request is made for (see
    /// [`with_traceparent`]).
    static TRACEPARENT: Option<String>;
}

/// Runs `work` with every IDP request it makes carrying `traceparent` (W3C Trace Context), so
/// the host's trace reaches the IDP. The caller checked its form; a value that is no valid
/// header value is left out.
pub async fn with_traceparent<F: std::future::Future>(
    traceparent: Option<String>,
    work: F,
) -> F::Output {
    TRACEPARENT.scope(traceparent, work).await
}

/// The `traceparent` of the work running now, if any.
pub fn current_traceparent() -> Option<String> {
    TRACEPARENT.try_with(Clone::clone).ok().flatten()
}

/// Who the host app is, as it said at StartEvent: sent on every IDP request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    /// The whole `User-Agent` (the runtime's own when `None`).
    pub user_agent: Option<String>,
    /// BCP 47 language tags, most preferred first: `Accept-Language` on IDP requests and
    /// `ui_locales` where an IDP page is shown.
    pub locales: Option<String>,
}

/// A complete IDP answer whose body stayed within the size limit.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// The `Retry-After` delay in seconds, when the answer has a readable one.
    pub retry_after_secs: Option<u64>,
}

impl Answer {
    /// The body as a JSON value of type `T`, or `InvalidResponse` naming what was expected.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, OidcError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| OidcError::InvalidResponse(format!("{what}: {}", describe_json_error(&e))))
    }

    /// The OAuth error code of an error body (RFC 6749 section 5.2), when it is one.
    pub(crate) fn oauth_error_code(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
        }
        let body: ErrorBody = serde_json::from_slice(&self.body).ok()?;
        Some(sanitize_error_code(&body.error))
    }
}

/// What is wrong with a JSON answer, without quoting it: serde_json's "invalid type" and
/// "invalid value" messages repeat the offending value, which may be a token.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match error.classify() {
        serde_json::error::Category::Data if message.starts_with("missing field") => {
            // "missing field `name` at line L column C": names our field, not server data.
            message
        }
        serde_json::error::Category::Data => format!(
            "a field has the wrong type or value (line {} column {})",
            error.line(),
            error.column()
        ),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "not JSON (an HTML page or a truncated answer?)".into()
        }
        serde_json::error::Category::Io => "unreadable".into(),
    }
}

/// An OAuth error code as we repeat it: RFC 6749 codes are short snake_case words, so
/// anything else (a hostile or broken server echoing our request) is not repeated at all.
pub(crate) fn sanitize_error_code(code: &str) -> String {
    let plain = !code.is_empty()
        && code.len() <= 48
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        code.to_string()
    } else {
        "unreadable_error_code".to_string()
    }
}

/// Server time as local time plus an offset learned from `Date` headers.
#[derive(Debug, Default)]
pub(crate) struct ServerClock {
    offset_secs: AtomicI64,
    /// Test-only shift of the local clock (`OidcConfig::clock_skew_for_tests_secs`): plays a
    /// device whose clock is wrong. 0 in production.
    local_skew_secs: i64,
}

impl ServerClock {
    pub(crate) fn with_local_skew(local_skew_secs: i64) -> Self {
        Self {
            offset_secs: AtomicI64::new(0),
            local_skew_secs,
        }
    }

    /// The device's own clock (shifted by the test skew).
    fn local_now(&self) -> i64 {
        mc_jose::unix_now().saturating_add(self.local_skew_secs)
    }

    pub(crate) fn now(&self) -> i64 {
        self.local_now()
            .saturating_add(self.offset_secs.load(Ordering::Relaxed))
    }

    pub(crate) fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Learns the offset from one `Date` header and its `Age` (a cached answer's `Date` is
    /// when it was made, `Age` seconds ago: server now = Date + Age); an unreadable `Date`
    /// changes nothing, an unreadable `Age` counts as 0.
    pub(crate) fn observe_date(&self, date_header: &str, age_header: Option<&str>) {
        let age = age_header
            .and_then(|age| age.trim().parse::<u32>().ok())
            .map_or(0, i64::from);
        if let Some(offset) = offset_from_date(date_header, self.local_now()) {
            self.offset_secs
                .store(offset.saturating_add(age), Ordering::Relaxed);
        }
    }
}

/// Server time minus local time, in seconds, from an HTTP `Date` header (RFC 9110 IMF-fixdate
/// or the obsolete forms). One second of resolution is enough: tolerances are tens of seconds.
pub(crate) fn offset_from_date(date_header: &str, local_now: i64) -> Option<i64> {
    let server_time = httpdate::parse_http_date(date_header.trim()).ok()?;
    let server_secs = match server_time.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).ok()?,
        Err(before) => i64::try_from(before.duration().as_secs())
            .ok()?
            .checked_neg()?,
    };
    server_secs.checked_sub(local_now)
}

use crate::http::is_loopback as is_loopback_host;
pub(crate) use crate::http::origin_of;

pub(crate) struct Transport {
    http: reqwest::Client,
    max_response_bytes: usize,
    allow_insecure_http: bool,
    pub(crate) clock: Arc<ServerClock>,
    /// The latest `DPoP-Nonce` of each origin, learned from every answer.
    pub(crate) dpop_nonces: Arc<NonceStore>,
    /// Whether the latest request reached the IDP (see [`Reachability`]).
    reachability: AtomicU8,
    /// Set by the runtime at StartEvent / RestartEvent.
    host: RwLock<HostIdentity>,
}

/// What the latest request to the IDP showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// No request has been made yet.
    Unknown,
    /// The IDP answered (whatever the status).
    Reachable,
    /// No connection, no answer in time or a TLS failure.
    Unreachable,
    /// The IDP took the connection, then it broke before the answer came (reset, closed
    /// mid-request).
    Lost,
}

impl Reachability {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Reachability::Reachable,
            2 => Reachability::Unreachable,
            3 => Reachability::Lost,
            _ => Reachability::Unknown,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Reachability::Unknown => 0,
            Reachability::Reachable => 1,
            Reachability::Unreachable => 2,
            Reachability::Lost => 3,
        }
    }
}

impl Transport {
    pub(crate) fn new(config: &OidcConfig) -> Result<Self, OidcError> {
        // OAuth endpoints do not redirect; following one could turn a POST carrying an
        // assertion into a request to somewhere else: the shared client follows none.
        let http =
            crate::http::http_client(&config.tls, None, &config.user_agent, config.http_timeout)
                .map_err(OidcError::Config)?;
        Ok(Self {
            http,
            max_response_bytes: config.max_response_bytes,
            allow_insecure_http: config.allow_insecure_http,
            clock: Arc::new(ServerClock::with_local_skew(local_skew_secs(config))),
            dpop_nonces: Arc::new(NonceStore::default()),
            reachability: AtomicU8::new(Reachability::Unknown.as_u8()),
            host: RwLock::new(HostIdentity::default()),
        })
    }

    pub(crate) fn set_host(&self, host: HostIdentity) {
        *self.host.write().unwrap_or_else(PoisonError::into_inner) = host;
    }

    pub(crate) fn host(&self) -> HostIdentity {
        self.host
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The host's identity and the current trace on an IDP request. A value that is no valid
    /// header value (the runtime checks them before) is left out rather than failing.
    fn with_host_headers(&self, mut request: RequestBuilder) -> RequestBuilder {
        use reqwest::header::{HeaderValue, ACCEPT_LANGUAGE, USER_AGENT};
        let host = self.host();
        let headers = [
            (USER_AGENT.as_str(), host.user_agent),
            (ACCEPT_LANGUAGE.as_str(), host.locales),
            ("traceparent", current_traceparent()),
        ];
        for (name, value) in headers {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                request = request.header(name, value);
            }
        }
        request
    }

    pub(crate) fn reachability(&self) -> Reachability {
        Reachability::from_u8(self.reachability.load(Ordering::Relaxed))
    }

    /// Records the outcome of a request: any answer means reachable; only failures to get
    /// one change it to unreachable.
    fn observe_outcome(&self, error: Option<&OidcError>) {
        let now = match error {
            None => Reachability::Reachable,
            Some(OidcError::ConnectionLost { .. }) => Reachability::Lost,
            Some(
                OidcError::NotReachable { .. } | OidcError::Timeout { .. } | OidcError::Tls { .. },
            ) => Reachability::Unreachable,
            Some(_) => return,
        };
        self.reachability.store(now.as_u8(), Ordering::Relaxed);
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Parses an endpoint URL and applies the transport policy: https, or plain http only to
    /// a loopback host (development IDP) or when explicitly allowed.
    pub(crate) fn endpoint_url(&self, url: &str, what: &str) -> Result<Url, OidcError> {
        let parsed =
            Url::parse(url).map_err(|e| OidcError::Config(format!("{what} is not a URL ({e})")))?;
        match parsed.scheme() {
            "https" => Ok(parsed),
            "http" if self.allow_insecure_http || is_loopback_host(&parsed) => Ok(parsed),
            "http" => Err(OidcError::Config(format!(
                "{what} at {} uses plain http; use https (plain http is accepted only on loopback)",
                origin_of(&parsed)
            ))),
            other => Err(OidcError::Config(format!(
                "{what} uses unsupported scheme `{other}`"
            ))),
        }
    }

    /// Sends a request, learns the server time from a token-endpoint answer's `Date` (never
    /// from discovery or JWKS: a CDN may serve those from a cache, with an old `Date`), and
    /// reads at most `max_response_bytes` of the body.
    pub(crate) async fn send(
        &self,
        endpoint: Endpoint,
        url: &Url,
        request: RequestBuilder,
    ) -> Result<Answer, OidcError> {
        let origin = origin_of(url);
        let request = self.with_host_headers(request);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let error = map_transport_error(&e, url);
                self.observe_outcome(Some(&error));
                return Err(error);
            }
        };
        let status = response.status();
        tracing::debug!(endpoint = endpoint.name(), %origin, status = status.as_u16(), "IDP answered");
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
        };
        if endpoint == Endpoint::Token {
            if let Some(date) = header(reqwest::header::DATE) {
                self.clock.observe_date(date, header(reqwest::header::AGE));
            }
        }
        if let Some(nonce) = response
            .headers()
            .get(DPOP_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.dpop_nonces.observe(&origin, nonce);
        }
        let retry_after_secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::parse_retry_after(v, std::time::SystemTime::now()));
        let body = read_limited(response, self.max_response_bytes, url).await;
        match &body {
            // The answer broke off: as unreachable as no answer.
            Err(e @ (OidcError::Timeout { .. } | OidcError::ConnectionLost { .. })) => {
                self.observe_outcome(Some(e))
            }
            // An oversized or unreadable body still came from an IDP that answered.
            _ => self.observe_outcome(None),
        }
        Ok(Answer {
            status,
            body: body?,
            retry_after_secs,
        })
    }
}

/// Reads the body chunk by chunk and stops as soon as it would exceed `limit`, so an
/// oversized answer is never held whole in memory.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    url: &Url,
) -> Result<Vec<u8>, OidcError> {
    let too_large = || OidcError::InvalidResponse(format!("answer larger than {limit} bytes"));
    if let Some(length) = response.content_length() {
        if length > u64::try_from(limit).unwrap_or(u64::MAX) {
            return Err(too_large());
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| map_transport_error(&e, url))?
    {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// rustls on ring with the platform verifier (the OS trust store), no pins: the
/// configuration of [`crate::http::tls_config`] with default settings.
pub fn tls_client_config() -> Result<rustls::ClientConfig, OidcError> {
    crate::http::tls_config(&crate::http::TlsSettings::default(), None).map_err(OidcError::Config)
}

/// Maps a reqwest failure to what the caller should do. reqwest's own message is not used:
/// it contains the full URL.
fn map_transport_error(error: &reqwest::Error, url: &Url) -> OidcError {
    let origin = origin_of(url);
    match classify(error, url) {
        TransportFailure::Tls(reason) => OidcError::Tls { origin, reason },
        TransportFailure::Timeout => OidcError::Timeout { origin },
        TransportFailure::NotReachable(reason) => OidcError::NotReachable { origin, reason },
        TransportFailure::ConnectionLost(reason) => OidcError::ConnectionLost { origin, reason },
        TransportFailure::UnreadableBody => {
            OidcError::InvalidResponse("the answer body could not be read".into())
        }
        TransportFailure::Unbuildable => OidcError::Config("the request could not be built".into()),
    }
}

/// The meaning of a non-success status with an optional OAuth error body, common to the
/// token, registration and registration-management endpoints.
pub(crate) fn error_from_answer(answer: &Answer) -> OidcError {
    let status = answer.status;
    if let Some(code) = answer.oauth_error_code() {
        match code.as_str() {
            "invalid_client" => return OidcError::InvalidClient,
            "access_denied" | "unauthorized_client" => return OidcError::AccessDenied,
            "invalid_grant" => return OidcError::InvalidGrant,
            "invalid_target" => return OidcError::InvalidTarget,
            "temporarily_unavailable" => return unavailable(answer),
            "server_error" if is_unavailable_status(status) => return unavailable(answer),
            "server_error" => {
                return OidcError::ServerError {
                    status: status.as_u16(),
                }
            }
            _ if status.is_server_error() => {}
            _ => return OidcError::Rejected { code },
        }
    }
    if is_unavailable_status(status) {
        return unavailable(answer);
    }
    if status.is_server_error() {
        return OidcError::ServerError {
            status: status.as_u16(),
        };
    }
    match status {
        StatusCode::UNAUTHORIZED => OidcError::InvalidClient,
        StatusCode::FORBIDDEN => OidcError::AccessDenied,
        _ => OidcError::InvalidResponse(format!(
            "unexpected HTTP status {} without an OAuth error body",
            status.as_u16()
        )),
    }
}

/// 503 and 429: the IDP says it did not process the request now.
pub(crate) fn is_unavailable_status(status: StatusCode) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
}

/// [`OidcError::Unavailable`] with the answer's `Retry-After`.
pub(crate) fn unavailable(answer: &Answer) -> OidcError {
    OidcError::Unavailable {
        status: answer.status.as_u16(),
        retry_after_secs: answer.retry_after_secs,
    }
}

/// The test-only shift of the local clock; always 0 without feature `testing`.
fn local_skew_secs(config: &crate::OidcConfig) -> i64 {
    #[cfg(any(test, feature = "testing"))]
    return config.clock_skew_for_tests_secs;
    #[cfg(not(any(test, feature = "testing")))]
    {
        let _ = config;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_header_gives_server_minus_local() {
        // 1994-11-06T08:49:37Z = 784111777
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(offset_from_date(date, 784_111_777), Some(0));
        assert_eq!(offset_from_date(date, 784_111_777 - 120), Some(120));
        assert_eq!(offset_from_date(date, 784_111_777 + 30), Some(-30));
        // obsolete RFC 850 and asctime forms are accepted as RFC 9110 requires
        assert_eq!(
            offset_from_date("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777),
            Some(0)
        );
        assert_eq!(
            offset_from_date("Sun Nov  6 08:49:37 1994", 784_111_777),
            Some(0)
        );
    }

    #[test]
    fn unreadable_date_header_is_ignored() {
        assert_eq!(offset_from_date("yesterday", 0), None);
        assert_eq!(offset_from_date("", 0), None);
        let clock = ServerClock::default();
        clock.observe_date("Sun, 06 Nov 1994 08:49:37 GMT", None);
        let learned = clock.offset();
        assert!(
            learned < -1_000_000,
            "offset to 1994 must be large and negative"
        );
        clock.observe_date("garbage", Some("5"));
        assert_eq!(clock.offset(), learned, "garbage must not reset the offset");
    }

    #[test]
    fn a_skewed_device_clock_is_corrected_by_the_servers_date() {
        let clock = ServerClock::with_local_skew(-600);
        assert!((clock.now() - (mc_jose::unix_now() - 600)).abs() <= 1);
        clock.observe_date(&httpdate::fmt_http_date(std::time::SystemTime::now()), None);
        assert!((clock.offset() - 600).abs() <= 1);
        assert!((clock.now() - mc_jose::unix_now()).abs() <= 1);
    }

    #[test]
    fn clock_now_applies_the_learned_offset() {
        let clock = ServerClock::default();
        let ahead = httpdate::fmt_http_date(
            std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
        );
        clock.observe_date(&ahead, None);
        let diff = clock.now() - mc_jose::unix_now();
        assert!((3599..=3601).contains(&diff), "diff {diff}");
    }

    #[test]
    fn a_cached_answer_counts_its_age() {
        let clock = ServerClock::default();
        let cached = httpdate::fmt_http_date(
            std::time::SystemTime::now() - std::time::Duration::from_secs(300),
        );
        clock.observe_date(&cached, Some("300"));
        assert!(clock.offset().abs() <= 1, "offset {}", clock.offset());
        clock.observe_date(&cached, Some("-5"));
        assert!((clock.offset() + 300).abs() <= 1, "a bad Age counts as 0");
    }

    #[test]
    fn json_errors_do_not_repeat_server_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Wanted {
            count: i64,
            name: String,
        }
        let wrong_type = answer(200, r#"{"count":"secret-value","name":"n"}"#)
            .json::<Wanted>("answer")
            .unwrap_err();
        assert!(
            !wrong_type.to_string().contains("secret-value"),
            "{wrong_type}"
        );
        let missing = answer(200, r#"{"count":1}"#)
            .json::<Wanted>("answer")
            .unwrap_err();
        assert!(
            missing.to_string().contains("missing field `name`"),
            "{missing}"
        );
        let html = answer(200, "<html>").json::<Wanted>("answer").unwrap_err();
        assert!(html.to_string().contains("not JSON"), "{html}");
    }

    #[test]
    fn oauth_error_codes_are_sanitized() {
        assert_eq!(sanitize_error_code("invalid_client"), "invalid_client");
        assert_eq!(sanitize_error_code("a b"), "unreadable_error_code");
        assert_eq!(sanitize_error_code("eyJ.x=1&y"), "unreadable_error_code");
        assert_eq!(
            sanitize_error_code(&"x".repeat(49)),
            "unreadable_error_code"
        );
        assert_eq!(sanitize_error_code(""), "unreadable_error_code");
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
            retry_after_secs: None,
        }
    }

    #[test]
    fn error_bodies_map_to_what_the_caller_must_do() {
        let e = |s, b| error_from_answer(&answer(s, b));
        assert_eq!(
            e(401, r#"{"error":"invalid_client"}"#),
            OidcError::InvalidClient
        );
        assert_eq!(
            e(400, r#"{"error":"invalid_client"}"#),
            OidcError::InvalidClient
        );
        assert_eq!(e(401, ""), OidcError::InvalidClient);
        assert_eq!(e(403, "<html>no</html>"), OidcError::AccessDenied);
        assert_eq!(
            e(400, r#"{"error":"invalid_target"}"#),
            OidcError::InvalidTarget
        );
        assert_eq!(
            e(400, r#"{"error":"invalid_grant"}"#),
            OidcError::InvalidGrant
        );
        assert_eq!(
            e(
                400,
                r#"{"error":"invalid_request","error_description":"secret-ish"}"#
            ),
            OidcError::Rejected {
                code: "invalid_request".into()
            }
        );
        assert_eq!(
            e(503, r#"{"error":"invalid_request"}"#),
            OidcError::Unavailable {
                status: 503,
                retry_after_secs: None
            }
        );
        assert_eq!(
            e(400, r#"{"error":"temporarily_unavailable"}"#),
            OidcError::Unavailable {
                status: 400,
                retry_after_secs: None
            }
        );
        assert_eq!(
            e(500, r#"{"error":"server_error"}"#),
            OidcError::ServerError { status: 500 }
        );
        let with_delay = Answer {
            retry_after_secs: Some(7),
            ..answer(503, "")
        };
        assert_eq!(
            error_from_answer(&with_delay),
            OidcError::Unavailable {
                status: 503,
                retry_after_secs: Some(7)
            }
        );
        assert_eq!(
            e(502, "<html>bad gateway</html>"),
            OidcError::ServerError { status: 502 }
        );
        assert_eq!(
            e(429, ""),
            OidcError::Unavailable {
                status: 429,
                retry_after_secs: None
            }
        );
        assert!(matches!(e(404, "<html>"), OidcError::InvalidResponse(_)));
        assert!(matches!(e(302, ""), OidcError::InvalidResponse(_)));
    }
}
