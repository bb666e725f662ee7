//! The protocol client against small raw HTTP servers on 127.0.0.1 that misbehave on purpose:
//! oversized or endless bodies, HTML pages, redirects, silence, plain text where TLS was
//! expected, a closed port, a clock an hour ahead. Also captures what the client sends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_jose::{JwkSet, SigningKey};
use mc_oidc::{OidcClient, OidcConfig, OidcError, ProviderMetadata};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1024 * 1024;

fn client(timeout: Duration) -> OidcClient {
    OidcClient::new(OidcConfig {
        http_timeout: timeout,
        ..OidcConfig::default()
    })
    .unwrap()
}

/// Reads one request (headers and, when announced, the body) and returns it as text.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).to_string()
}

/// Serves every connection with `respond`, which gets the request text and the stream.
async fn serve<F, Fut>(respond: F) -> SocketAddr
where
    F: Fn(String, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let respond = Arc::clone(&respond);
            tokio::spawn(async move {
                let request = read_request(&mut stream).await;
                respond(request, stream).await;
            });
        }
    });
    addr
}

/// Serves one fixed answer to every request.
async fn serve_fixed(answer: String) -> SocketAddr {
    serve(move |_, mut stream| {
        let answer = answer.clone();
        async move {
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    })
    .await
}

fn http_answer(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn metadata_for(addr: SocketAddr) -> ProviderMetadata {
    let base = format!("http://{addr}");
    ProviderMetadata {
        issuer: base.clone(),
        token_endpoint: format!("{base}/token"),
        jwks_uri: format!("{base}/jwks"),
        registration_endpoint: Some(format!("{base}/register")),
        revocation_endpoint: None,
        introspection_endpoint: None,
        grant_types_supported: vec![],
        token_endpoint_auth_signing_alg_values_supported: vec![],
        dpop_signing_alg_values_supported: vec![],
        id_token_signing_alg_values_supported: Vec::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn endless_body_is_cut_at_the_limit_not_buffered_whole() {
    // Streams 64 KiB chunks without a length, then would stall forever after 1.5 MiB. A client
    // that buffered the whole body would wait for the end and hit its timeout instead.
    let addr = serve(|_, mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b' '; 64 * 1024];
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk,
            b"\r\n".to_vec(),
        ]
        .concat();
        for _ in 0..(2 * MIB / (64 * 1024)) {
            if stream.write_all(&framed).await.is_err() {
                return; // the client hung up: what we want
            }
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let oidc = client(Duration::from_secs(20));
    let started = Instant::now();
    let e = oidc.discover(&format!("http://{addr}")).await.unwrap_err();
    assert!(
        matches!(&e, OidcError::InvalidResponse(m) if m.contains("larger than")),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn announced_oversized_body_is_refused_before_reading() {
    // Announces 2 MiB and sends nothing: only the header can have triggered the refusal.
    let addr = serve(|_, mut stream| async move {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            2 * MIB
        );
        let _ = stream.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let oidc = client(Duration::from_secs(20));
    let started = Instant::now();
    let e = oidc.discover(&format!("http://{addr}")).await.unwrap_err();
    assert!(matches!(e, OidcError::InvalidResponse(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn full_two_mib_body_is_refused() {
    let body = format!("{{\"issuer\":\"{}\"}}", "x".repeat(2 * MIB));
    let addr = serve_fixed(http_answer("200 OK", "application/json", &body)).await;
    let e = client(Duration::from_secs(20))
        .discover(&format!("http://{addr}"))
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::InvalidResponse(_)), "{e:?}");
}

#[tokio::test]
async fn html_pages_are_not_mistaken_for_answers() {
    let page = "<html><body><h1>Welcome to nginx</h1></body></html>";
    let ok_html = serve_fixed(http_answer("200 OK", "text/html", page)).await;
    let e = client(Duration::from_secs(5))
        .discover(&format!("http://{ok_html}"))
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::InvalidResponse(_)), "{e:?}");

    let broken = serve_fixed(http_answer("502 Bad Gateway", "text/html", page)).await;
    let oidc = client(Duration::from_secs(5));
    let e = oidc
        .discover(&format!("http://{broken}"))
        .await
        .unwrap_err();
    assert_eq!(e, OidcError::ServerError { status: 502 });
    assert!(e.is_transient());

    let key = SigningKey::generate().unwrap();
    let e = oidc
        .client_credentials(&metadata_for(broken), "c1", &key)
        .await
        .unwrap_err();
    assert_eq!(e, OidcError::ServerError { status: 502 });

    let missing = serve_fixed(http_answer("404 Not Found", "text/html", page)).await;
    let e = oidc
        .client_credentials(&metadata_for(missing), "c1", &key)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::InvalidResponse(_)), "{e:?}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let addr = serve_fixed(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string(),
    )
    .await;
    let key = SigningKey::generate().unwrap();
    let e = client(Duration::from_secs(5))
        .client_credentials(&metadata_for(addr), "c1", &key)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::InvalidResponse(_)), "{e:?}");
}

#[tokio::test]
async fn closed_port_is_not_reachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = client(Duration::from_secs(5))
        .discover(&format!("http://{addr}/realms/demo"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OidcError::NotReachable { origin, reason }
            if origin == &format!("http://{addr}") && reason == "connection refused"),
        "{e:?}"
    );
    assert!(e.is_transient());
}

#[tokio::test]
async fn silent_server_times_out() {
    let addr = serve(|_, stream| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    })
    .await;
    let e = client(Duration::from_millis(500))
        .discover(&format!("http://{addr}"))
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn plain_http_where_tls_is_expected_is_a_tls_error() {
    // Answers in plain HTTP at once, before any ClientHello is read.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = http_answer("400 Bad Request", "text/plain", "plain http");
            let _ = stream.write_all(answer.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let e = client(Duration::from_secs(5))
        .discover(&format!("https://{addr}"))
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Tls { .. }), "{e:?}");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_without_a_request() {
    let e = client(Duration::from_secs(5))
        .discover("http://idp.example/realms/demo")
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::Config(_)), "{e:?}");
}

#[tokio::test]
async fn token_request_carries_a_profile_assertion_at_server_time() {
    // The server's clock runs an hour ahead; the assertion must use server time.
    let captured: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&captured);
    let addr = serve(move |request, mut stream| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().unwrap().push(request);
            let date = httpdate::fmt_http_date(
                std::time::SystemTime::now() + Duration::from_secs(3600),
            );
            let body = r#"{"access_token":"at-1","token_type":"Bearer","expires_in":120}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    })
    .await;
    let oidc = client(Duration::from_secs(5));
    let meta = metadata_for(addr);
    let key = SigningKey::generate().unwrap();

    // The first answer teaches the clock; the second request must carry server time.
    let first = oidc
        .client_credentials(&meta, "client-1", &key)
        .await
        .unwrap();
    let server_now = oidc.now();
    assert!((server_now - mc_jose::unix_now() - 3600).abs() <= 2);
    assert!((first.expires_at - (server_now + 120)).abs() <= 2);
    oidc.client_credentials(&meta, "client-1", &key)
        .await
        .unwrap();

    let requests = captured.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let mut jtis = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /token "), "{head}");
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "client-1");
        assert_eq!(
            form["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let keys = JwkSet {
            keys: vec![key.public_jwk()],
        };
        let jwt = mc_jose::verify_es256(&form["client_assertion"], &keys).unwrap();
        assert_eq!(jwt.header["typ"], "JWT");
        assert_eq!(jwt.kid(), Some(key.kid()));
        assert_eq!(jwt.claim_str("iss"), Some("client-1"));
        assert_eq!(jwt.claim_str("sub"), Some("client-1"));
        assert_eq!(
            jwt.claims["aud"],
            serde_json::json!(meta.issuer),
            "aud is one string"
        );
        let iat = jwt.claim_i64("iat").unwrap();
        assert_eq!(jwt.claim_i64("exp"), Some(iat + 60));
        if i == 1 {
            assert!(
                (iat - server_now).abs() <= 2,
                "iat {iat} server {server_now}"
            );
        }
        jtis.push(jwt.claim_str("jti").unwrap().to_string());
    }
    assert_ne!(jtis[0], jtis[1], "jti is fresh per assertion");
}

#[tokio::test]
async fn registration_sends_the_profile_body_and_the_initial_access_token() {
    let captured: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&captured);
    let addr = serve(move |request, mut stream| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().unwrap().push(request);
            let body = r#"{"client_id":"new-client","registration_access_token":"rat","registration_client_uri":"http://127.0.0.1:1/register/new-client"}"#;
            let answer = format!(
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    })
    .await;
    let oidc = client(Duration::from_secs(5));
    let key = SigningKey::generate().unwrap();
    let registration = oidc
        .register(
            &metadata_for(addr),
            &key,
            &mc_oidc::RegistrationRequest {
                client_name: "device".into(),
                software_id: "AnonymousUserEnrollment".into(),
                initial_access_token: Some("iat-secret".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(registration.client_id, "new-client");
    assert_eq!(
        registration
            .registration_access_token
            .as_ref()
            .map(|t| t.expose()),
        Some("rat")
    );

    let request = captured.lock().unwrap()[0].clone();
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /register "));
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("authorization: Bearer iat-secret")),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["software_id"], "AnonymousUserEnrollment");
    assert_eq!(body["client_name"], "device");
    assert_eq!(
        body["grant_types"],
        serde_json::json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(body["token_endpoint_auth_signing_alg"], "ES256");
    // The device asks for no ID token: naming an ID token algorithm only gets the registration
    // refused by an IDP whose keys are RSA (node-oidc-provider as it ships).
    assert!(body.get("id_token_signed_response_alg").is_none());
    assert_eq!(
        body["jwks"]["keys"][0],
        serde_json::to_value(key.public_jwk()).unwrap()
    );
    assert!(
        body["jwks"]["keys"][0].get("d").is_none(),
        "no private part"
    );
}

#[tokio::test]
async fn an_error_body_echoing_the_request_never_reaches_the_error_message() {
    // A server that repeats the whole form (assertion, subject token) in its error answer.
    let addr = serve(|request, mut stream| async move {
        let echoed = request.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let body = serde_json::json!({
            "error": format!("invalid_request {echoed}"),
            "error_description": echoed,
        })
        .to_string();
        let answer = http_answer("400 Bad Request", "application/json", &body);
        let _ = stream.write_all(answer.as_bytes()).await;
    })
    .await;
    let key = SigningKey::generate().unwrap();
    let e = client(Duration::from_secs(5))
        .exchange(
            &metadata_for(addr),
            "c1",
            &key,
            &"subject-token-secret".into(),
            "demo-api",
        )
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(matches!(e.cause(), OidcError::Rejected { .. }), "{shown}");
    assert!(!shown.contains("subject-token-secret"), "{shown}");
    assert!(!shown.contains("eyJ"), "no JWT in the message: {shown}");
    assert!(shown.len() < 400, "{shown}");
}

#[tokio::test]
async fn a_registration_refused_by_policy_is_access_denied() {
    // What Keycloak answers when its anonymous Trusted Hosts or Max Clients policy says no.
    let body = r#"{"error":"insufficient_scope","error_description":"Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted."}"#;
    let addr = serve_fixed(format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
    .await;
    let refused = client(Duration::from_secs(5))
        .register(
            &metadata_for(addr),
            &SigningKey::generate().unwrap(),
            &mc_oidc::RegistrationRequest::default(),
        )
        .await;
    assert_eq!(refused.unwrap_err(), OidcError::AccessDenied);
}
