//! The one HTTP layer of the runtime, used for IDP requests (`transport.rs`) and for the
//! runtime's resource calls (CreateHttpCommonRequest): TLS on rustls/ring with the platform
//! trust store plus optional extra roots, SPKI pinning, the mapping of transport failures,
//! where a token may go ([`AllowedOrigin`]), and resource calls with DPoP proofs, the nonce
//! retry and a redirect loop of our own ([`OidcClient::send_resource`]).
//!
//! What it must not touch: events, storage, runtime state. It answers typed results; the
//! caller maps them onto statuses and error codes.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use mc_jose::SigningKey;
use mc_secret::SecretString;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_TYPE, COOKIE, LOCATION, PROXY_AUTHORIZATION, REFERER, TRANSFER_ENCODING,
};
use reqwest::Method;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use url::Url;

use crate::{OidcClient, OidcError, ResourceAuthorization, TokenSet};

/// Most redirects followed for one resource call.
pub const MAX_REDIRECTS: usize = 10;

// ---- Pins ---------------------------------------------------------------------------------

/// A pin on a public key: SHA-256 of a certificate's SubjectPublicKeyInfo DER, written as
/// OkHttp's CertificatePinner writes it: `sha256/<base64>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpkiPin([u8; 32]);

impl SpkiPin {
    /// Parses `sha256/<base64 of 32 bytes>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim().strip_prefix("sha256/").ok_or_else(|| {
            "a pin is `sha256/<base64>` of the certificate's SubjectPublicKeyInfo".to_string()
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "the pin after `sha256/` is not base64".to_string())?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the pin is not a SHA-256 hash (32 bytes)".to_string())?;
        Ok(Self(hash))
    }

    /// The pin of a DER certificate's public key.
    pub fn of_certificate(der: &[u8]) -> Result<Self, String> {
        let der = CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("not a readable X.509 certificate ({e})"))?;
        let spki = cert.subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        Ok(Self(hash))
    }
}

impl fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sha256/{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

impl fmt::Debug for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Trust settings shared by IDP requests and resource calls.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM certificates trusted as roots besides the platform trust store (a company CA).
    pub extra_roots_pem: Vec<String>,
    /// Pins by host (as in the URL, lower case; an IPv6 address without brackets): a
    /// connection to a pinned host is refused unless a certificate of the chain the server
    /// presents, leaf included, has one of the pinned public keys. Checked after the normal
    /// chain validation, never instead of it.
    pub pins: BTreeMap<String, Vec<SpkiPin>>,
}

impl TlsSettings {
    /// Adds a pin (`sha256/<base64>`) for `host`.
    pub fn pin(&mut self, host: &str, pin: &str) -> Result<&mut Self, String> {
        let pin = SpkiPin::parse(pin)?;
        self.pins.entry(normalize_host(host)).or_default().push(pin);
        Ok(self)
    }
}

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// The `certificateChain` of one request: PEM certificates trusted as the only roots (a CA
/// of the app's own), and each also a pin on its public key, so the server's own (leaf) or
/// an intermediate certificate can be given instead of a CA.
#[derive(Debug, Clone)]
pub struct RequestTrust {
    certificates: Vec<CertificateDer<'static>>,
    pins: Vec<SpkiPin>,
}

impl RequestTrust {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let mut certificates = Vec::new();
        let mut pins = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("not PEM ({e:?})"))?;
            pins.push(SpkiPin::of_certificate(cert.as_ref())?);
            certificates.push(cert);
        }
        if certificates.is_empty() {
            return Err("no certificate found".into());
        }
        Ok(Self { certificates, pins })
    }
}

// ---- TLS set-up ---------------------------------------------------------------------------

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration of every HTTP client: ring provider, the platform trust store
/// (plus `settings.extra_roots_pem`), host pins, and a request's `certificateChain`.
pub fn tls_config(
    settings: &TlsSettings,
    request: Option<&RequestTrust>,
) -> Result<rustls::ClientConfig, String> {
    let extra_roots = settings
        .extra_roots_pem
        .iter()
        .map(|pem| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("extra root is not PEM ({e:?})"))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    let platform = platform_verifier(extra_roots)?;
    let request = match request {
        None => None,
        Some(trust) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in &trust.certificates {
                // A leaf or intermediate may not be a usable anchor: then only its pin counts.
                let _ = roots.add(cert.clone());
            }
            let as_roots = if roots.is_empty() {
                None
            } else {
                Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider(),
                    )
                    .build()
                    .map_err(|e| format!("certificateChain: {e}"))?
                        as Arc<dyn ServerCertVerifier>,
                )
            };
            Some(RequestVerifier {
                as_roots,
                pins: trust.pins.clone(),
            })
        }
    };
    let verifier = TrustVerifier {
        platform,
        host_pins: settings.pins.clone(),
        request,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // A preconfigured config is used as is: ALPN must be set here for HTTP/2.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform verifiers built so far, each with the extra roots it was built with. On Linux
/// and other Unix systems building one reads and parses the whole OS trust store (about 10 ms
/// on the 2-core VM), and a runtime builds several clients (IDP, resource calls, and one per
/// request with a `certificateChain`). One is reused only for the very same extra roots, so a
/// verifier never trusts roots its settings do not name. The OS trust store is therefore read
/// once per process and set of extra roots, not once per client.
#[cfg(not(target_os = "android"))]
type SharedVerifiers = Vec<(Vec<CertificateDer<'static>>, Arc<dyn ServerCertVerifier>)>;
#[cfg(not(target_os = "android"))]
static PLATFORM_VERIFIERS: std::sync::Mutex<SharedVerifiers> = std::sync::Mutex::new(Vec::new());
/// Distinct sets of extra roots kept (a process has one or two); the oldest goes first.
#[cfg(not(target_os = "android"))]
const MAX_SHARED_VERIFIERS: usize = 4;

#[cfg(not(target_os = "android"))]
fn platform_verifier(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    // Entries are pushed and removed whole: a poisoned lock still holds consistent ones.
    let mut shared = PLATFORM_VERIFIERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, verifier)) = shared.iter().find(|(roots, _)| *roots == extra_roots) {
        return Ok(verifier.clone());
    }
    let verifier: Arc<dyn ServerCertVerifier> = Arc::new(
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots.clone(), provider())
            .map_err(|e| format!("TLS trust store: {e}"))?,
    );
    if shared.len() >= MAX_SHARED_VERIFIERS {
        shared.remove(0);
    }
    shared.push((extra_roots, verifier.clone()));
    Ok(verifier)
}

#[cfg(target_os = "android")]
fn platform_verifier(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    if !extra_roots.is_empty() {
        return Err(
            "extra roots are not supported on Android; use the network security config".into(),
        );
    }
    rustls_platform_verifier::Verifier::new(provider())
        .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
        .map_err(|e| format!("TLS trust store: {e}"))
}

/// A reqwest client on [`tls_config`] that never follows redirects (the callers do, by
/// their own rules) and never sends a `Referer`.
pub fn http_client(
    settings: &TlsSettings,
    request: Option<&RequestTrust>,
    user_agent: &str,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(settings, request)?)
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The message of a pin mismatch (a rustls `General` error, so it reaches [`classify`]).
const PIN_MISMATCH: &str = "no certificate of the server's chain matches the pinned public keys";

/// The normal chain validation, then pins. With a request's `certificateChain`: a chain
/// anchored at one of its certificates, or a normally valid chain in which one presented
/// certificate has the public key of one of them.
#[derive(Debug)]
struct TrustVerifier {
    platform: Arc<dyn ServerCertVerifier>,
    host_pins: BTreeMap<String, Vec<SpkiPin>>,
    request: Option<RequestVerifier>,
}

#[derive(Debug)]
struct RequestVerifier {
    as_roots: Option<Arc<dyn ServerCertVerifier>>,
    pins: Vec<SpkiPin>,
}

fn chain_matches(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    pins: &[SpkiPin],
) -> bool {
    std::iter::once(end_entity)
        .chain(intermediates)
        .filter_map(|cert| SpkiPin::of_certificate(cert.as_ref()).ok())
        .any(|pin| pins.contains(&pin))
}

fn host_of(server_name: &ServerName<'_>) -> String {
    match server_name {
        ServerName::DnsName(name) => name.as_ref().to_ascii_lowercase(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        _ => String::new(),
    }
}

impl ServerCertVerifier for TrustVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verify_with = |verifier: &Arc<dyn ServerCertVerifier>| {
            verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        match &self.request {
            None => {
                verify_with(&self.platform)?;
            }
            Some(request) => {
                let anchored = request
                    .as_roots
                    .as_ref()
                    .is_some_and(|roots| verify_with(roots).is_ok());
                if !anchored {
                    verify_with(&self.platform)?;
                    if !chain_matches(end_entity, intermediates, &request.pins) {
                        return Err(rustls::Error::General(PIN_MISMATCH.into()));
                    }
                }
            }
        }
        if let Some(pins) = self.host_pins.get(&host_of(server_name)) {
            if !chain_matches(end_entity, intermediates, pins) {
                return Err(rustls::Error::General(PIN_MISMATCH.into()));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.platform.supported_verify_schemes()
    }
}

// ---- Failures -----------------------------------------------------------------------------

/// Why a request got no (complete) answer. Never holds a URL (reqwest's own message does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// The TLS handshake failed: untrusted or invalid certificate, a pin mismatch, or a
    /// server that does not speak TLS. Possibly a man in the middle: not a network outage.
    Tls(String),
    Timeout,
    /// No connection: refused, DNS, no route.
    NotReachable(String),
    /// Connected, then lost: the request may have reached the server.
    ConnectionLost(String),
    /// The answer's body could not be read or decoded.
    UnreadableBody,
    /// The request could not be built.
    Unbuildable,
}

/// Maps a reqwest failure on `url`.
pub fn classify(error: &reqwest::Error, url: &Url) -> TransportFailure {
    if let Some(tls) = error_chain(error).find_map(|cause| cause.downcast_ref::<rustls::Error>()) {
        let reason = match tls {
            rustls::Error::General(message) if message == PIN_MISMATCH => message.clone(),
            other => other.to_string(),
        };
        return TransportFailure::Tls(reason);
    }
    if error.is_timeout() {
        return TransportFailure::Timeout;
    }
    let io_kind = innermost_io_kind(error);
    if error.is_connect() {
        // A TCP connection that closes or answers garbage during the TLS handshake: a server
        // that does not speak TLS on that port (or something in between that cut it).
        if url.scheme() == "https"
            && matches!(
                io_kind,
                Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData)
            )
        {
            return TransportFailure::Tls(
                "the server closed the TLS handshake (does it speak TLS on this port?)".into(),
            );
        }
        return TransportFailure::NotReachable(
            io_kind
                .map(|k| k.to_string())
                .unwrap_or_else(|| "connection failed".into()),
        );
    }
    if error.is_body() || error.is_decode() {
        return TransportFailure::UnreadableBody;
    }
    if error.is_builder() {
        return TransportFailure::Unbuildable;
    }
    TransportFailure::ConnectionLost(
        io_kind
            .map(|k| k.to_string())
            .unwrap_or_else(|| "request failed".into()),
    )
}

/// The causes of an error, outermost first. `io::Error::source` skips the error it wraps
/// (and hyper nests io errors in io errors), so a wrapped error is followed explicitly.
fn error_chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        let e: &'a (dyn StdError + 'static) = *e;
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}

/// The kind of the innermost I/O error ("connection refused", ...): never a URL or data.
fn innermost_io_kind(error: &reqwest::Error) -> Option<std::io::ErrorKind> {
    error_chain(error)
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .last()
        .map(|io| io.kind())
}

// ---- Where a token may go -----------------------------------------------------------------

/// An origin that may receive the token of an audience: scheme, host and port, the host
/// exact or `*.domain` (one or more labels below `domain`, never `domain` itself). Plain
/// http only to a loopback host.
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    scheme: String,
    host: HostPattern,
    port: u16,
}

#[derive(Clone, PartialEq, Eq)]
enum HostPattern {
    /// As the URL parser writes it (lower case; IPv6 in brackets).
    Exact(String),
    /// Below this domain.
    Below(String),
}

impl AllowedOrigin {
    /// Parses `https://api.example.com`, `https://*.example.com:8443`,
    /// `http://127.0.0.1:8080`: no path, query, fragment or userinfo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = |why: &str| {
            format!(
                "origin `{}`: {why}",
                text.chars().take(100).collect::<String>()
            )
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("write it as scheme://host[:port]"))?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad("only https (or http to a loopback host)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("no user or password in an origin"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("an origin has no path, query or fragment"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        let host = if wildcard {
            let Some(url::Host::Domain(domain)) = url.host() else {
                return Err(bad("a wildcard needs a domain name"));
            };
            if domain.split('.').filter(|l| !l.is_empty()).count() < 2 {
                return Err(bad("a wildcard needs a domain of at least two labels"));
            }
            HostPattern::Below(domain.to_string())
        } else {
            HostPattern::Exact(host)
        };
        if url.scheme() == "http" && (wildcard || !is_loopback(&url)) {
            return Err(bad("plain http only to a loopback host; use https"));
        }
        Ok(Self {
            scheme: url.scheme().to_string(),
            host,
            port,
        })
    }

    /// Whether a request to `url` goes to this origin.
    pub fn matches(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme || url.port_or_known_default() != Some(self.port) {
            return false;
        }
        match (&self.host, url.host()) {
            (HostPattern::Exact(host), Some(_)) => url.host_str() == Some(host.as_str()),
            (HostPattern::Below(domain), Some(url::Host::Domain(name))) => name
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            _ => false,
        }
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(host) => host.clone(),
            HostPattern::Below(domain) => format!("*.{domain}"),
        };
        write!(f, "{}://{}:{}", self.scheme, host, self.port)
    }
}

impl fmt::Debug for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The scheme, host and port of a URL: what error messages name (never path or query).
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether the token of `audience` may be sent to `url`; the error says why not, naming the
/// audience and the origin only.
pub fn check_token_destination(
    audience: &str,
    allowed: &[AllowedOrigin],
    url: &Url,
) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the URL carries a user name or password; the token of audience `{audience}` is never sent with one (remove it from `fullUrl`)"
        ));
    }
    if allowed.iter().any(|origin| origin.matches(url)) {
        return Ok(());
    }
    if allowed.is_empty() {
        return Err(format!(
            "no origin may receive the token of audience `{audience}`; list {} among the audience's origins in the runtime configuration",
            origin_of(url)
        ));
    }
    Err(format!(
        "{} may not receive the token of audience `{audience}`; allowed: {}",
        origin_of(url),
        allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

// ---- Resource calls -----------------------------------------------------------------------

/// One resource call as the app described it.
#[derive(Debug)]
pub struct ResourceRequest {
    pub method: Method,
    pub url: Url,
    /// The app's own headers.
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
    pub follow_redirects: bool,
    /// Largest body read.
    pub max_body: usize,
}

/// The IAM token a call carries and where it may go.
pub struct ResourceToken {
    pub audience: String,
    pub token: TokenSet,
    /// The device key: DPoP proofs are signed with it.
    pub key: Arc<SigningKey>,
    pub allowed: Vec<AllowedOrigin>,
}

/// The server's answer.
#[derive(Debug)]
pub struct ResourceAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why a resource call has no answer.
#[derive(Debug)]
pub enum ResourceFailure {
    Transport(TransportFailure),
    TooManyRedirects,
    BodyTooLarge {
        limit: usize,
    },
    /// The token may not go to this URL (see [`check_token_destination`]); nothing was sent.
    TokenNotAllowed(String),
    /// The authorization headers could not be made.
    Authorization(OidcError),
}

/// Headers an app may have set that must not follow a redirect to another origin.
const CREDENTIAL_HEADERS: [HeaderName; 4] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, REFERER];
/// Headers that describe a body, dropped with it.
const BODY_HEADERS: [HeaderName; 4] = [
    CONTENT_TYPE,
    CONTENT_LENGTH,
    CONTENT_ENCODING,
    TRANSFER_ENCODING,
];

impl OidcClient {
    /// Sends a resource call through `client` (from [`http_client`]), with `token` attached
    /// when given. With a token: nothing is sent unless the URL is inside the audience's
    /// allowed origins; every hop gets fresh headers and a fresh DPoP proof for its own
    /// method and URL; a redirect leading outside the allowed origins is not followed (its
    /// 3xx answer is returned). Without a token, redirects are followed anywhere. In both
    /// cases: at most [`MAX_REDIRECTS`]; credentials headers of the app dropped on an origin
    /// change; 301/302/303 turn a POST into a GET without body; 307/308 keep method and body
    /// within the origin only; never a `Referer`.
    pub async fn send_resource(
        &self,
        client: &reqwest::Client,
        request: ResourceRequest,
        token: Option<&ResourceToken>,
    ) -> Result<ResourceAnswer, ResourceFailure> {
        let ResourceRequest {
            mut method,
            mut url,
            mut headers,
            mut body,
            timeout,
            follow_redirects,
            max_body,
        } = request;
        if let Some(token) = token {
            check_token_destination(&token.audience, &token.allowed, &url)
                .map_err(ResourceFailure::TokenNotAllowed)?;
        }
        let mut redirects = 0;
        loop {
            let response = self
                .send_hop(
                    client,
                    &method,
                    &url,
                    &headers,
                    body.as_ref(),
                    timeout,
                    token,
                )
                .await?;
            let status = response.status();
            let next = if follow_redirects && status.is_redirection() {
                response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|location| url.join(location).ok())
                    .filter(|next| matches!(next.scheme(), "http" | "https"))
            } else {
                None
            };
            let Some(next) = next else {
                return read_answer(response, &url, max_body).await;
            };
            if let Some(token) = token {
                if let Err(why) = check_token_destination(&token.audience, &token.allowed, &next) {
                    tracing::debug!(%why, "redirect not followed: the token may not go there");
                    return read_answer(response, &url, max_body).await;
                }
            }
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(ResourceFailure::TooManyRedirects);
            }
            let same_origin = next.origin() == url.origin();
            let to_get = match status.as_u16() {
                303 => method != Method::HEAD,
                301 | 302 => method == Method::POST,
                _ => false,
            };
            if to_get {
                method = Method::GET;
            }
            if to_get || !same_origin {
                body = None;
                for name in &BODY_HEADERS {
                    headers.remove(name);
                }
            }
            if !same_origin {
                for name in &CREDENTIAL_HEADERS {
                    headers.remove(name);
                }
            }
            url = next;
        }
    }

    /// One request, with the token's headers made for this method and URL, repeated once
    /// with a fresh proof when the resource asks for a DPoP nonce.
    #[allow(clippy::too_many_arguments)]
    async fn send_hop(
        &self,
        client: &reqwest::Client,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&Vec<u8>>,
        timeout: Duration,
        token: Option<&ResourceToken>,
    ) -> Result<reqwest::Response, ResourceFailure> {
        let mut nonce_retried = false;
        loop {
            let mut hop_headers = headers.clone();
            // Never an app-made proof beside ours, nor the app's own Authorization.
            hop_headers.remove(HeaderName::from_static("dpop"));
            if let Some(token) = token {
                let authorization = self
                    .resource_authorization(&token.token, &token.key, method.as_str(), url.as_str())
                    .map_err(ResourceFailure::Authorization)?;
                add_authorization(&mut hop_headers, &authorization)?;
            }
            let mut builder = client
                .request(method.clone(), url.clone())
                .headers(hop_headers)
                .timeout(timeout);
            if let Some(body) = body {
                builder = builder.body(body.clone());
            }
            let response = builder
                .send()
                .await
                .map_err(|e| ResourceFailure::Transport(classify(&e, url)))?;
            let Some(_) = token else {
                return Ok(response);
            };
            let challenged = self.observe_resource_answer(
                url.as_str(),
                response.status().as_u16(),
                response.headers(),
            );
            if !challenged || nonce_retried {
                return Ok(response);
            }
            nonce_retried = true;
            tracing::debug!("the resource asked for a DPoP nonce; sending once more");
        }
    }
}

/// `Authorization` (and `DPoP`) headers, marked sensitive so they are never logged.
fn add_authorization(
    headers: &mut HeaderMap,
    authorization: &ResourceAuthorization,
) -> Result<(), ResourceFailure> {
    let sensitive = |secret: &SecretString| {
        HeaderValue::from_str(secret.expose())
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| {
                ResourceFailure::Authorization(OidcError::InvalidToken(
                    "the IAM token cannot be sent in a header".into(),
                ))
            })
    };
    headers.insert(AUTHORIZATION, sensitive(&authorization.authorization)?);
    if let Some(proof) = &authorization.dpop {
        headers.insert(HeaderName::from_static("dpop"), sensitive(proof)?);
    }
    Ok(())
}

/// Reads the body chunk by chunk, stopping as soon as it would exceed `limit`.
async fn read_answer(
    mut response: reqwest::Response,
    url: &Url,
    limit: usize,
) -> Result<ResourceAnswer, ResourceFailure> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if response
        .content_length()
        .is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ResourceFailure::BodyTooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ResourceFailure::Transport(classify(&e, url)))?
    {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(ResourceFailure::BodyTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(ResourceAnswer {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixtures shared with mc-runtime's TLS tests: `leaf.pem` (127.0.0.1) is issued by
    /// `ca.pem`; `other-ca.pem` issued nothing here.
    macro_rules! tls_fixture {
        ($name:literal) => {
            include_str!(concat!("../../mc-runtime/tests/fixtures/tls/", $name))
        };
    }

    fn verifies_leaf(verifier: &Arc<dyn ServerCertVerifier>) -> bool {
        let leaf = CertificateDer::from_pem_slice(tls_fixture!("leaf.pem").as_bytes()).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    fn roots(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[cfg(not(target_os = "android"))]
    #[test]
    fn a_shared_platform_verifier_trusts_only_the_extra_roots_it_was_built_with() {
        let with_ca = platform_verifier(roots(tls_fixture!("ca.pem"))).unwrap();
        assert!(verifies_leaf(&with_ca), "the extra root is trusted");
        // Built after the one with the CA: it must not reuse it.
        let without = platform_verifier(Vec::new()).unwrap();
        assert!(
            !verifies_leaf(&without),
            "no extra root: the test CA is unknown"
        );
        let with_other = platform_verifier(roots(tls_fixture!("other-ca.pem"))).unwrap();
        assert!(
            !verifies_leaf(&with_other),
            "another CA does not issue the leaf"
        );
        // The same roots again: the same verifier, the trust store not read again.
        let again = platform_verifier(roots(tls_fixture!("ca.pem"))).unwrap();
        assert!(Arc::ptr_eq(&with_ca, &again));
        assert!(verifies_leaf(&again));
        // More distinct root sets than are kept: the oldest is rebuilt, still with its roots.
        for _ in 0..MAX_SHARED_VERIFIERS {
            let pems = [
                tls_fixture!("other-ca.pem"),
                tls_fixture!("self-signed.pem"),
            ];
            for pem in pems {
                assert!(!verifies_leaf(&platform_verifier(roots(pem)).unwrap()));
            }
            assert!(!verifies_leaf(&platform_verifier(Vec::new()).unwrap()));
            let mut both = roots(tls_fixture!("other-ca.pem"));
            both.extend(roots(tls_fixture!("self-signed.pem")));
            assert!(!verifies_leaf(&platform_verifier(both).unwrap()));
        }
        assert!(verifies_leaf(
            &platform_verifier(roots(tls_fixture!("ca.pem"))).unwrap()
        ));
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn origins_match_scheme_host_and_port_exactly() {
        let api = AllowedOrigin::parse("https://api.example.com").unwrap();
        assert!(api.matches(&url("https://api.example.com/x?y=1")));
        assert!(api.matches(&url("https://API.example.com:443/")));
        assert!(!api.matches(&url("https://api.example.com:8443/")));
        assert!(!api.matches(&url("http://api.example.com/")));
        assert!(!api.matches(&url("https://api.example.com.evil.net/")));
        assert!(!api.matches(&url("https://evil-api.example.com/")));
        assert!(!api.matches(&url("https://example.com/")));
        let local = AllowedOrigin::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.matches(&url("http://127.0.0.1:8080/a")));
        assert!(!local.matches(&url("http://127.0.0.1:8081/a")));
        assert!(!local.matches(&url("https://127.0.0.1:8080/a")));
        let v6 = AllowedOrigin::parse("http://[::1]:9000").unwrap();
        assert!(v6.matches(&url("http://[::1]:9000/")));
    }

    #[test]
    fn a_wildcard_matches_labels_below_the_domain_only() {
        let any = AllowedOrigin::parse("https://*.example.com").unwrap();
        assert!(any.matches(&url("https://a.example.com/")));
        assert!(any.matches(&url("https://a.b.example.com/")));
        assert!(!any.matches(&url("https://example.com/")));
        assert!(!any.matches(&url("https://aexample.com/")));
        assert!(!any.matches(&url("https://a.example.com.evil.net/")));
        assert!(!any.matches(&url("https://a.example.com:444/")));
        assert_eq!(any.to_string(), "https://*.example.com:443");
    }

    #[test]
    fn hostile_origins_are_refused() {
        for bad in [
            "http://api.example.com",
            "http://*.localhost",
            "https://*.com",
            "https://*.127.0.0.1",
            "https://user:pw@api.example.com",
            "https://api.example.com/path",
            "https://api.example.com?q",
            "ftp://api.example.com",
            "api.example.com",
            "",
        ] {
            assert!(AllowedOrigin::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(AllowedOrigin::parse("http://localhost:3000").is_ok());
        assert!(AllowedOrigin::parse("https://api.example.com/").is_ok());
    }

    #[test]
    fn token_destination_refuses_userinfo_and_unlisted_origins() {
        let allowed = vec![AllowedOrigin::parse("https://api.example.com").unwrap()];
        assert!(check_token_destination("a", &allowed, &url("https://api.example.com/x")).is_ok());
        let userinfo =
            check_token_destination("a", &allowed, &url("https://u:secret@api.example.com/x"))
                .unwrap_err();
        assert!(!userinfo.contains("secret"), "{userinfo}");
        let other =
            check_token_destination("a", &allowed, &url("https://evil.net/p?q=s3")).unwrap_err();
        assert!(
            other.contains("https://evil.net") && other.contains("`a`"),
            "{other}"
        );
        assert!(!other.contains("s3"), "{other}");
        assert!(check_token_destination("a", &[], &url("https://api.example.com/")).is_err());
    }

    #[test]
    fn pins_parse_and_print_as_okhttp_writes_them() {
        let text = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(SpkiPin::parse(text).unwrap().to_string(), text);
        assert!(SpkiPin::parse("sha1/AAAA").is_err());
        assert!(SpkiPin::parse("sha256/AAAA").is_err());
        assert!(SpkiPin::parse("sha256/not base64!").is_err());
        let mut settings = TlsSettings::default();
        assert!(settings.pin("Example.COM", text).is_ok());
        assert!(settings.pins.contains_key("example.com"));
        assert!(settings.pin("example.com", "nope").is_err());
    }

    #[test]
    fn unusable_certificate_chains_are_refused() {
        assert!(RequestTrust::from_pem("").is_err());
        assert!(RequestTrust::from_pem(
            "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
        )
        .is_err());
        assert!(RequestTrust::from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
        .is_err());
    }
}
