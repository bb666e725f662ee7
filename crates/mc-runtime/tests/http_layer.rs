//! The shared HTTP layer through CreateHttpCommonRequest: TLS failures reported as TLS
//! failures, SPKI pins and `certificateChain`, which origins receive an audience's token, and
//! redirects. Real servers on 127.0.0.1: the development IDP, and small HTTP/HTTPS servers of
//! this file that record every request they get (certificates in `tests/fixtures/tls`).

use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use mc_events::*;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_testkit::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
const LEAF_PIN: &str = "sha256/vc1AjHcx5SR8lEp9aDAfxRYsuTF9OUDqUaedMCCI1Tg=";
const CA_PIN: &str = "sha256/HbIApDymn/UqNAP/X30N96R/zfA+I0XgGCYFDVfhWXg=";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
}

/// One request as a test server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Seen) -> String + Send + Sync>;

/// A tiny HTTP/1.1 server (TLS when given a config) that records requests and answers
/// what `handler` writes (a full response head and body; the connection then closes).
struct TestServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (record, handler, tls) = (Arc::clone(&record), handler.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, record, handler).await;
                            }
                        }
                        None => serve(tcp, record, handler).await,
                    }
                });
            }
        });
        TestServer { port, seen }
    }

    async fn plain(handler: impl Fn(&Seen) -> String + Send + Sync + 'static) -> TestServer {
        Self::start(None, Arc::new(handler)).await
    }

    async fn https(
        chain: &[&str],
        key: &str,
        handler: impl Fn(&Seen) -> String + Send + Sync + 'static,
    ) -> TestServer {
        let certs: Vec<CertificateDer<'static>> = chain
            .iter()
            .flat_map(|name| {
                CertificateDer::pem_slice_iter(fixture(name).as_bytes())
                    .map(Result::unwrap)
                    .collect::<Vec<_>>()
            })
            .collect();
        let key = PrivateKeyDer::from_pem_slice(fixture(key).as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Self::start(Some(Arc::new(config)), Arc::new(handler)).await
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    record: Arc<Mutex<Vec<Seen>>>,
    handler: Handler,
) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method = start.next().unwrap_or_default().to_string();
    let path = start.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let seen = Seen {
        method,
        path,
        headers,
        body,
    };
    let answer = handler(&seen);
    record.lock().unwrap().push(seen);
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(status: u16, location: &str) -> String {
    format!("HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

fn runtime_with(idp_url: &str, edit: impl FnOnce(&mut RuntimeConfig)) -> MasterController {
    let mut config = RuntimeConfig::new(idp_url, StoreLocation::Memory);
    edit(&mut config);
    MasterController::start(config).expect("runtime starts")
}

async fn call(
    runtime: &MasterController,
    request: CreateHttpCommonRequest,
) -> CreateHttpCommonResultEvent {
    post(runtime, request).await
}

fn get(url: &str) -> CreateHttpCommonRequest {
    CreateHttpCommonRequest::new(url, HttpMethod::Get)
}

fn assert_tls_failed(result: &CreateHttpCommonResultEvent) {
    assert_eq!(
        result.status,
        HttpCommonStatus::SslHandshakeFailed,
        "{result:#?}"
    );
    assert_eq!(result.error_code, error_code::TLS_FAILED, "{result:#?}");
    assert!(result.has_error_occurred);
}

// ---- TLS ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_are_tls_failures_not_outages() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    enrolled(&runtime).await;
    let untrusted = TestServer::https(&["leaf.pem", "ca.pem"], "leaf.key", |_| ok("hi")).await;
    assert_tls_failed(&call(&runtime, get(&untrusted.url("https", "/x"))).await);
    assert!(
        untrusted.seen().is_empty(),
        "no request over an untrusted TLS session"
    );

    // https to a server that answers plain HTTP (what a plain web server says to a ClientHello).
    let plain_http = StdListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain_http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in plain_http.incoming().take(1) {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0u8; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let result = call(&runtime, get(&format!("https://127.0.0.1:{plain_port}/"))).await;
    assert_tls_failed(&result);

    // https to a TCP server that closes without a word.
    let closing = StdListener::bind("127.0.0.1:0").unwrap();
    let closing_port = closing.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in closing.incoming().take(1) {
            let mut stream = stream.unwrap();
            let _ = stream.read(&mut [0u8; 1024]);
        }
    });
    let result = call(&runtime, get(&format!("https://127.0.0.1:{closing_port}/"))).await;
    assert_tls_failed(&result);

    // A refused connection is still an outage.
    let closed = StdListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("https://{}/", closed.local_addr().unwrap());
    drop(closed);
    let refused = call(&runtime, get(&closed_url)).await;
    assert_eq!(
        refused.status,
        HttpCommonStatus::ServerNotReachable,
        "{refused:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_accept_the_leaf_or_the_ca_and_refuse_any_other_key() {
    let idp = idp().await;
    let server = TestServer::https(&["leaf.pem", "ca.pem"], "leaf.key", |_| ok("pinned")).await;
    let url = server.url("https", "/p");
    let trusting_ca = |pin: Option<&str>| {
        runtime_with(&idp.base_url(), |config| {
            config.oidc.tls.extra_roots_pem.push(fixture("ca.pem"));
            if let Some(pin) = pin {
                config.oidc.tls.pin("127.0.0.1", pin).unwrap();
            }
        })
    };
    for (pin, accepted) in [(None, true), (Some(LEAF_PIN), true), (Some(CA_PIN), true)] {
        let runtime = trusting_ca(pin);
        enrolled(&runtime).await;
        let result = call(&runtime, get(&url)).await;
        assert_eq!(
            result.status,
            HttpCommonStatus::Success,
            "pin {pin:?}: {result:#?}"
        );
        assert_eq!(result.response, b"pinned", "{accepted}");
    }
    // A valid chain with a key nobody pinned: refused, nothing sent.
    let before = server.seen().len();
    let runtime = trusting_ca(Some("sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    enrolled(&runtime).await;
    let result = call(&runtime, get(&url)).await;
    assert_tls_failed(&result);
    assert!(result.error_description.contains("pinned"), "{result:#?}");
    assert_eq!(server.seen().len(), before);
    // Pins of other hosts do not apply here.
    let runtime = runtime_with(&idp.base_url(), |config| {
        config.oidc.tls.extra_roots_pem.push(fixture("ca.pem"));
        config.oidc.tls.pin("api.example.com", CA_PIN).unwrap();
    });
    enrolled(&runtime).await;
    assert_eq!(
        call(&runtime, get(&url)).await.status,
        HttpCommonStatus::Success
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_chain_trusts_a_ca_and_pins_a_leaf() {
    let idp = idp().await;
    let server = TestServer::https(&["leaf.pem", "ca.pem"], "leaf.key", |_| ok("chain")).await;
    let url = server.url("https", "/c");
    let with_chain = |pem: String| CreateHttpCommonRequest {
        certificate_chain: Some(pem),
        ..get(&url)
    };
    // The CA as the only root (the MC-SDK meaning).
    let runtime = memory_runtime(&idp);
    enrolled(&runtime).await;
    let result = call(&runtime, with_chain(fixture("ca.pem"))).await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
    // Another CA: refused.
    assert_tls_failed(&call(&runtime, with_chain(fixture("other-ca.pem"))).await);

    // The server's own certificate, on a chain the runtime trusts: accepted; another leaf
    // (a valid chain with another key) refused.
    let trusting = runtime_with(&idp.base_url(), |config| {
        config.oidc.tls.extra_roots_pem.push(fixture("ca.pem"));
        config
            .oidc
            .tls
            .extra_roots_pem
            .push(fixture("other-ca.pem"));
    });
    enrolled(&trusting).await;
    let result = call(&trusting, with_chain(fixture("leaf.pem"))).await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
    assert_tls_failed(&call(&trusting, with_chain(fixture("other-leaf.pem"))).await);

    // A self-signed server certificate given as certificateChain.
    let selfsigned =
        TestServer::https(&["self-signed.pem"], "self-signed.key", |_| ok("self")).await;
    let result = call(
        &runtime,
        CreateHttpCommonRequest {
            certificate_chain: Some(fixture("self-signed.pem")),
            ..get(&selfsigned.url("https", "/"))
        },
    )
    .await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
}

// ---- Audience origins ---------------------------------------------------------------------

async fn enrolled(runtime: &MasterController) {
    assert_status(&start(runtime).await, StatusType::Ok);
    assert_status(&enroll(runtime).await, StatusType::Ok);
}

fn with_audience(url: &str) -> CreateHttpCommonRequest {
    get(url).with_audience(AUDIENCE)
}

fn assert_not_allowed(result: &CreateHttpCommonResultEvent) {
    assert_eq!(result.status, HttpCommonStatus::Failed, "{result:#?}");
    assert_eq!(
        result.error_code,
        error_code::TOKEN_ORIGIN_NOT_ALLOWED,
        "{result:#?}"
    );
    assert!(result.error_description.contains(AUDIENCE), "{result:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_token_goes_only_to_its_origins() {
    let idp = idp().await;
    let allowed = TestServer::plain(|_| ok("allowed")).await;
    let other = TestServer::plain(|_| ok("other")).await;
    let runtime = runtime_with(&idp.base_url(), |config| {
        config
            .audience_origins
            .allow(AUDIENCE, &allowed.url("http", ""))
            .unwrap();
    });
    enrolled(&runtime).await;

    let result = call(&runtime, with_audience(&allowed.url("http", "/a?q=1"))).await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
    let seen = allowed.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0]
        .header("authorization")
        .is_some_and(|a| a.starts_with("DPoP ")));
    assert!(seen[0].header("dpop").is_some());
    assert!(seen[0].header("referer").is_none());

    let exchanges = idp.stats().token_exchange;
    let refused = [
        other.url("http", "/a"),                                // other port
        format!("http://localhost:{}/a", allowed.port),         // other host
        format!("https://127.0.0.1:{}/a", allowed.port),        // other scheme
        format!("http://user:pw@127.0.0.1:{}/a", allowed.port), // userinfo
        format!("http://192.0.2.1:{}/a", allowed.port),         // http, not loopback
    ];
    for url in &refused {
        let result = call(&runtime, with_audience(url)).await;
        assert_not_allowed(&result);
        assert!(!result.error_description.contains("pw"), "{result:#?}");
    }
    assert_eq!(other.seen().len(), 0, "the other server saw a request");
    assert_eq!(
        allowed.seen().len(),
        1,
        "a refused call reached the allowed server"
    );
    assert_eq!(
        idp.stats().token_exchange,
        exchanges,
        "no token fetched for a refused URL"
    );

    // Without an audience the same URLs are plain calls, no token attached.
    let result = call(&runtime, get(&other.url("http", "/plain"))).await;
    assert_eq!(result.status, HttpCommonStatus::Success);
    assert!(other.seen()[0].header("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_no_origin_receives_a_token() {
    let idp = idp().await;
    let runtime = runtime_with(&idp.base_url(), |_| {});
    enrolled(&runtime).await;
    let result = call(
        &runtime,
        with_audience(&format!("{}/demo/echo", idp.base_url())),
    )
    .await;
    assert_not_allowed(&result);
    assert_eq!(idp.stats().echo, 0);
    // Hostile settings are refused when the host makes them.
    let mut config = RuntimeConfig::new(idp.base_url(), StoreLocation::Memory);
    assert!(config
        .audience_origins
        .allow(AUDIENCE, "http://api.example.com")
        .is_err());
    assert!(config
        .audience_origins
        .allow(AUDIENCE, "https://*.com")
        .is_err());
    assert!(config
        .audience_origins
        .allow(AUDIENCE, "https://u:p@api.example.com")
        .is_err());
}

// ---- Redirects ----------------------------------------------------------------------------

fn idp_runtime(idp: &mc_devidp::DevIdp, extra: &[String]) -> MasterController {
    runtime_with(&idp.base_url(), |config| {
        config
            .audience_origins
            .allow(AUDIENCE, &idp.base_url())
            .unwrap();
        for origin in extra {
            config.audience_origins.allow(AUDIENCE, origin).unwrap();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_origin_redirect_gets_a_fresh_proof_for_its_own_url() {
    let idp = idp().await;
    let runtime = idp_runtime(&idp, &[]);
    enrolled(&runtime).await;
    let result = call(
        &runtime,
        CreateHttpCommonRequest::new(
            format!("{}/demo/redirect?x=1", idp.base_url()),
            HttpMethod::Post,
        )
        .with_audience(AUDIENCE)
        .with_content("hello", "text/plain"),
    )
    .await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
    assert_eq!(
        result.http_status,
        Some(200),
        "{}",
        String::from_utf8_lossy(&result.response)
    );
    let echo: serde_json::Value = serde_json::from_slice(&result.response).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo["body"], "hello",
        "307 keeps method and body on the same origin"
    );
    assert_eq!(echo["token_type"], "DPoP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_redirect_carries_no_credentials_no_referer_and_no_body() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    enrolled(&runtime).await;
    let target = TestServer::plain(|_| ok("landed")).await;
    let target_url = target.url("http", "/landing");
    let source = TestServer::plain(move |_| redirect(307, &target_url)).await;
    let mut request =
        CreateHttpCommonRequest::new(source.url("http", "/start?secret=1"), HttpMethod::Post)
            .with_content("private body", "text/plain");
    request
        .http_headers
        .insert("Authorization".into(), "Basic c2VjcmV0".into());
    request
        .http_headers
        .insert("Cookie".into(), "session=s3".into());
    let result = call(&runtime, request).await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
    assert_eq!(result.response, b"landed");
    assert_eq!(source.seen()[0].body, b"private body");
    let hop = &target.seen()[0];
    assert_eq!(hop.method, "POST", "307 keeps the method");
    assert!(
        hop.body.is_empty(),
        "the body stayed with its origin: {hop:?}"
    );
    for header in ["authorization", "cookie", "dpop", "referer", "content-type"] {
        assert!(
            hop.header(header).is_none(),
            "{header} crossed origins: {hop:?}"
        );
    }

    // 303 turns a POST into a GET without body.
    let target_url = target.url("http", "/after-303");
    let see_other = TestServer::plain(move |_| redirect(303, &target_url)).await;
    let result = call(
        &runtime,
        CreateHttpCommonRequest::new(see_other.url("http", "/"), HttpMethod::Post)
            .with_content("x", "text/plain"),
    )
    .await;
    assert_eq!(result.status, HttpCommonStatus::Success);
    let hop = target.seen().last().cloned().unwrap();
    assert_eq!(
        (hop.method.as_str(), hop.path.as_str()),
        ("GET", "/after-303")
    );
    assert!(hop.body.is_empty());

    // A loop ends after the limit.
    let looping = TestServer::plain(|seen| redirect(302, &seen.path)).await;
    let result = call(&runtime, get(&looping.url("http", "/again"))).await;
    assert_eq!(result.status, HttpCommonStatus::Failed, "{result:#?}");
    assert_eq!(result.error_code, error_code::INVALID_RESPONSE);
    assert_eq!(looping.seen().len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_outside_the_audience_origins_is_answered_not_followed() {
    let idp = idp().await;
    let outside = TestServer::plain(|_| ok("outside")).await;
    let outside_url = outside.url("http", "/steal");
    let inside = TestServer::plain(move |_| redirect(302, &outside_url)).await;
    let runtime = idp_runtime(&idp, &[inside.url("http", "")]);
    enrolled(&runtime).await;
    let result = call(&runtime, with_audience(&inside.url("http", "/go"))).await;
    assert_eq!(result.status, HttpCommonStatus::Success, "{result:#?}");
    assert_eq!(result.http_status, Some(302), "the 3xx answer comes back");
    assert!(result.response_headers.contains_key("location"));
    assert!(inside.seen()[0].header("dpop").is_some());
    assert!(outside.seen().is_empty(), "the token followed the redirect");

    // Into another allowed origin: a fresh authorization made for that origin and URL.
    let second = TestServer::plain(|_| ok("second")).await;
    let second_url = second.url("http", "/two");
    let first = TestServer::plain(move |_| redirect(302, &second_url)).await;
    let runtime = idp_runtime(&idp, &[first.url("http", ""), second.url("http", "")]);
    enrolled(&runtime).await;
    let result = call(&runtime, with_audience(&first.url("http", "/one"))).await;
    assert_eq!(result.response, b"second", "{result:#?}");
    let first_proof = first.seen()[0].header("dpop").unwrap().to_string();
    let second_proof = second.seen()[0].header("dpop").unwrap().to_string();
    assert_ne!(first_proof, second_proof, "a proof is never re-sent");
    let htu = |proof: &str| {
        mc_jose::Jwt::decode_unverified(proof)
            .unwrap()
            .claim_str("htu")
            .unwrap()
            .to_string()
    };
    assert_eq!(htu(&second_proof), second.url("http", "/two"));
}

// ---- Time ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_cached_jwks_does_not_move_the_server_clock() {
    let idp = idp().await;
    idp.faults().set_stale_metadata_secs(300);
    let runtime = idp_runtime(&idp, &[]);
    enrolled(&runtime).await;
    let result = call(
        &runtime,
        with_audience(&format!("{}/demo/echo", idp.base_url())),
    )
    .await;
    assert_eq!(result.http_status, Some(200), "{result:#?}");
}

// ---- IDP requests -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_behind_an_untrusted_or_wrongly_pinned_certificate_is_a_tls_failure() {
    let server = TestServer::https(&["leaf.pem", "ca.pem"], "leaf.key", |_| ok("{}")).await;
    let idp_url = server.url("https", "");
    let enroll_code = |runtime: MasterController| async move {
        start(&runtime).await;
        let result = enroll(&runtime).await;
        (Some(result.info.status), Some(result.info.error_code))
    };
    let untrusted = runtime_with(&idp_url, |_| {});
    let (status, code) = enroll_code(untrusted).await;
    assert_eq!(code, Some(error_code::TLS_FAILED), "{status:?}");
    // A possible man in the middle is not a network outage.
    assert_eq!(status, Some(StatusType::Failed));
    let wrong_pin = runtime_with(&idp_url, |config| {
        config.oidc.tls.extra_roots_pem.push(fixture("ca.pem"));
        config
            .oidc
            .tls
            .pin(
                "127.0.0.1",
                "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .unwrap();
    });
    let (status, code) = enroll_code(wrong_pin).await;
    assert_eq!(code, Some(error_code::TLS_FAILED), "{status:?}");
    assert_eq!(status, Some(StatusType::Failed));
    assert!(
        server.seen().is_empty(),
        "nothing sent over a refused TLS session"
    );
}

#[test]
fn spki_pins_match_what_openssl_computes() {
    for (name, expected) in [("leaf.pem", LEAF_PIN), ("ca.pem", CA_PIN)] {
        let der = CertificateDer::from_pem_slice(fixture(name).as_bytes()).unwrap();
        let pin = mc_oidc::http::SpkiPin::of_certificate(der.as_ref()).unwrap();
        assert_eq!(pin.to_string(), expected, "{name}");
    }
}
