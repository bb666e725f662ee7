//! Which failures the protocol client retries, against the dev IDP's fault knobs and a port
//! that starts listening late: safe steps are retried within the policy, a registration
//! never. The runtime's view of the same faults (statuses, nothing stored) is in
//! `crates/mc-runtime/tests/faults.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_devidp::{DevIdp, DevIdpConfig, FaultTarget, HttpFault, DEFAULT_ENROLLMENT_CLIENT};
use mc_jose::SigningKey;
use mc_oidc::{
    OidcClient, OidcConfig, OidcError, ProviderMetadata, Reachability, RegistrationRequest,
    RetryPolicy,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(1),
        max_total_wait: Duration::from_secs(3),
    }
}

fn client(retry: RetryPolicy) -> OidcClient {
    OidcClient::new(OidcConfig {
        retry,
        ..OidcConfig::default()
    })
    .unwrap()
}

async fn idp() -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), DevIdpConfig::default())
        .await
        .unwrap()
}

fn registration_request() -> RegistrationRequest {
    RegistrationRequest {
        client_name: "faults test device".into(),
        software_id: DEFAULT_ENROLLMENT_CLIENT.into(),
        initial_access_token: None,
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn a_token_request_is_retried_when_the_connection_was_refused() {
    // The token endpoint starts listening 150 ms late and answers every request; the counter
    // shows the request was sent once, after the refused attempts.
    let addr = free_port();
    let served = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 16 * 1024];
            let _ = stream.read(&mut buf).await;
            let body = r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let base = format!("http://{addr}");
    let meta = ProviderMetadata {
        issuer: base.clone(),
        token_endpoint: format!("{base}/token"),
        jwks_uri: format!("{base}/jwks"),
        registration_endpoint: None,
        revocation_endpoint: None,
        introspection_endpoint: None,
        grant_types_supported: vec![],
        token_endpoint_auth_signing_alg_values_supported: vec![],
        dpop_signing_alg_values_supported: vec![],
        id_token_signing_alg_values_supported: Vec::new(),
        ..Default::default()
    };
    let key = SigningKey::generate().unwrap();
    let oidc = client(retries(6));
    let tokens = oidc.client_credentials(&meta, "c1", &key).await.unwrap();
    assert_eq!(tokens.access_token.expose(), "at");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert_eq!(oidc.reachability(), Reachability::Reachable);

    // Without retries the same refusal is reported at once.
    let closed = free_port();
    let refused = client(RetryPolicy::none())
        .client_credentials(
            &ProviderMetadata {
                token_endpoint: format!("http://{closed}/token"),
                ..meta
            },
            "c1",
            &key,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, OidcError::NotReachable { .. }),
        "{refused:?}"
    );
}

#[tokio::test]
async fn discovery_and_jwks_are_retried_after_a_503_and_a_502() {
    let idp = idp().await;
    let oidc = client(retries(2));
    let issuer = idp.issuer("demo");
    idp.faults().set_http_fault(
        FaultTarget::Discovery,
        HttpFault::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        Some(2),
    );
    let meta = oidc.discover(&issuer).await.unwrap();
    assert_eq!(idp.faults().injected_count(), 2);
    assert_eq!(
        idp.stats().discovery,
        1,
        "the third attempt reached the IDP"
    );

    let key = SigningKey::generate().unwrap();
    let registration = oidc
        .register(&meta, &key, &registration_request())
        .await
        .unwrap();
    let tokens = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    idp.faults().set_http_fault(
        FaultTarget::Jwks,
        HttpFault::HtmlPage { status: 502 },
        Some(1),
    );
    oidc.verify_access_token(&meta, &tokens.access_token)
        .await
        .unwrap();
    assert_eq!(idp.faults().injected_count(), 3);
    assert_eq!(idp.stats().jwks, 1);
}

#[tokio::test]
async fn retries_stop_at_the_policy_and_report_the_last_failure() {
    let idp = idp().await;
    let oidc = client(retries(2));
    idp.faults().set_http_fault(
        FaultTarget::Discovery,
        HttpFault::Status {
            status: 500,
            retry_after_secs: None,
        },
        None,
    );
    let started = Instant::now();
    let failed = oidc.discover(&idp.issuer("demo")).await.unwrap_err();
    assert_eq!(failed, OidcError::ServerError { status: 500 });
    assert_eq!(idp.faults().injected_count(), 3);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_registration_is_never_retried() {
    let idp = idp().await;
    let oidc = client(retries(3));
    let meta = oidc.discover(&idp.issuer("demo")).await.unwrap();
    idp.faults().set_http_fault(
        FaultTarget::Registration,
        HttpFault::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        None,
    );
    let key = SigningKey::generate().unwrap();
    let refused = oidc
        .register(&meta, &key, &registration_request())
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        OidcError::Unavailable {
            status: 503,
            retry_after_secs: Some(0)
        }
    );
    assert_eq!(idp.faults().injected_count(), 1);
    assert_eq!(idp.stats().registration, 0);
}

#[tokio::test]
async fn reachability_follows_the_latest_request() {
    let idp = idp().await;
    let oidc = client(RetryPolicy::none());
    assert_eq!(oidc.reachability(), Reachability::Unknown);
    let issuer = idp.issuer("demo");
    oidc.discover(&issuer).await.unwrap();
    assert_eq!(oidc.reachability(), Reachability::Reachable);
    // An IDP that answers with an error is still reachable.
    idp.faults()
        .set_http_fault(FaultTarget::Discovery, HttpFault::MalformedJson, Some(1));
    assert!(oidc.discover(&issuer).await.is_err());
    assert_eq!(oidc.reachability(), Reachability::Reachable);
    idp.shutdown().await;
    assert!(oidc.discover(&issuer).await.is_err());
    assert_eq!(oidc.reachability(), Reachability::Unreachable);
}
