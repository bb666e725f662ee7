//! DPoP (RFC 9449), server time and JWKS rotation: the protocol client against the development
//! IDP (which enforces DPoP like Keycloak and node-oidc-provider) and against small axum
//! servers that misbehave on purpose, all over real HTTP on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mc_devidp::{DevIdp, DevIdpConfig, DEFAULT_ENROLLMENT_CLIENT, DEMO_AUDIENCE};
use mc_jose::{Jwt, SigningKey};
use mc_oidc::{
    DpopMode, OidcClient, OidcConfig, OidcError, ProviderMetadata, Registration,
    RegistrationRequest, ResourceAuthorization, TokenSet,
};
use mc_secret::SecretString;
use serde_json::{json, Map, Value};

async fn idp() -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), DevIdpConfig::default())
        .await
        .unwrap()
}

fn client_with(config: OidcConfig) -> OidcClient {
    OidcClient::new(config).unwrap()
}

fn client() -> OidcClient {
    client_with(OidcConfig::default())
}

async fn enrolled(oidc: &OidcClient, idp: &DevIdp) -> (ProviderMetadata, SigningKey, Registration) {
    let meta = oidc.discover(&idp.issuer("demo")).await.unwrap();
    let key = SigningKey::generate().unwrap();
    let registration = oidc
        .register(
            &meta,
            &key,
            &RegistrationRequest {
                client_name: "mc-oidc dpop test".into(),
                software_id: DEFAULT_ENROLLMENT_CLIENT.into(),
                initial_access_token: None,
            },
        )
        .await
        .unwrap();
    (meta, key, registration)
}

fn echo_url(idp: &DevIdp) -> String {
    format!("{}/demo/echo?probe=1", idp.base_url())
}

/// Sends GET `url` with exactly these headers; answers status, headers and JSON body.
async fn call(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
    // reqwest is built without a default crypto provider: give it ours (ring).
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(mc_oidc::tls_client_config().unwrap())
        .build()
        .unwrap();
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn call_with(
    url: &str,
    auth: &ResourceAuthorization,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let authorization = auth.authorization.expose();
    match &auth.dpop {
        Some(proof) => {
            call(
                url,
                &[("authorization", authorization), ("dpop", proof.expose())],
            )
            .await
        }
        None => call(url, &[("authorization", authorization)]).await,
    }
}

fn www_authenticate(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn claims_of(token: &SecretString) -> Map<String, Value> {
    Jwt::decode_unverified(token.expose()).unwrap().claims
}

#[tokio::test]
async fn a_stolen_dpop_token_is_refused_without_the_key() {
    let idp = idp().await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    assert!(oidc.uses_dpop(&meta), "the dev IDP advertises ES256 proofs");

    // Registration asked for bound tokens: this client's token requests need a proof.
    let bearer_only = client_with(OidcConfig {
        dpop: DpopMode::Never,
        ..OidcConfig::default()
    });
    let unproven = bearer_only
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap_err();
    assert_eq!(
        unproven.cause(),
        &OidcError::Rejected {
            code: "invalid_dpop_proof".into()
        }
    );

    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    assert_eq!(device.token_type, "DPoP");
    let verified = oidc
        .verify_device_token(&meta, &device, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(verified.claims["cnf"]["jkt"], json!(key.kid()));

    let iam = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &key,
            &device.access_token,
            DEMO_AUDIENCE,
        )
        .await
        .unwrap();
    assert_eq!(iam.token_type, "DPoP", "the exchanged token is bound too");
    assert_eq!(claims_of(&iam.access_token)["cnf"]["jkt"], json!(key.kid()));

    // The owner: Authorization: DPoP plus a proof with ath, htm, htu.
    let url = echo_url(&idp);
    let auth = oidc
        .resource_authorization(&iam, &key, "GET", &url)
        .unwrap();
    assert!(auth.authorization.expose().starts_with("DPoP "));
    let proof = Jwt::decode_unverified(auth.dpop.as_ref().unwrap().expose()).unwrap();
    assert_eq!(
        proof.claim_str("htu"),
        Some(format!("{}/demo/echo", idp.base_url()).as_str())
    );
    let (status, _, body) = call_with(&url, &auth).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");

    // The same proof again: single-use.
    let (status, headers, _) = call_with(&url, &auth).await;
    assert_eq!(status, 401);
    assert!(www_authenticate(&headers).contains("invalid_dpop_proof"));

    // A thief with the token only: as Bearer, as DPoP without a proof, with a proof of
    // another key.
    let token = iam.access_token.expose();
    let (status, headers, _) = call(&url, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(status, 401, "a bound token is refused as Bearer");
    assert!(www_authenticate(&headers).starts_with("DPoP"));
    let (status, _, _) = call(&url, &[("authorization", &format!("DPoP {token}"))]).await;
    assert_eq!(status, 401, "no proof");
    let thief_key = SigningKey::generate().unwrap();
    let thief = oidc
        .resource_authorization(&iam, &thief_key, "GET", &url)
        .unwrap();
    let (status, headers, _) = call_with(&url, &thief).await;
    assert_eq!(status, 401, "a proof of another key");
    assert!(www_authenticate(&headers).contains("invalid_dpop_proof"));
    // The owner's proof for another method is no good either.
    let post_proof = oidc
        .resource_authorization(&iam, &key, "POST", &url)
        .unwrap();
    let (status, _, _) = call_with(&url, &post_proof).await;
    assert_eq!(status, 401, "htm must match");

    // The thief cannot trade the device token either: exchange needs the key's proof and the
    // client's assertion, both from the key.
    let thief_exchange = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &thief_key,
            &device.access_token,
            DEMO_AUDIENCE,
        )
        .await
        .unwrap_err();
    assert_eq!(thief_exchange.cause(), &OidcError::InvalidClient);

    // With the key, every new call works.
    let again = oidc
        .resource_authorization(&iam, &key, "GET", &url)
        .unwrap();
    assert_eq!(call_with(&url, &again).await.0, 200);
}

#[tokio::test]
async fn dpop_never_keeps_plain_bearer_tokens() {
    let idp = idp().await;
    let oidc = client_with(OidcConfig {
        dpop: DpopMode::Never,
        ..OidcConfig::default()
    });
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    assert!(!oidc.uses_dpop(&meta));
    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    assert_eq!(device.token_type, "Bearer");
    let verified = oidc
        .verify_device_token(&meta, &device, &key, &registration.client_id)
        .await
        .unwrap();
    assert!(verified.claims.get("cnf").is_none());
    let iam = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &key,
            &device.access_token,
            DEMO_AUDIENCE,
        )
        .await
        .unwrap();
    let url = echo_url(&idp);
    let auth = oidc
        .resource_authorization(&iam, &key, "GET", &url)
        .unwrap();
    assert!(auth.dpop.is_none());
    let (status, _, body) = call_with(&url, &auth).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn a_required_nonce_is_fetched_with_one_retry_at_the_token_endpoint_and_the_resource() {
    let idp = idp().await;
    idp.faults().set_require_dpop_nonce(true);
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;

    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    assert_eq!(device.token_type, "DPoP");
    assert_eq!(
        idp.stats().token_client_credentials,
        2,
        "one use_dpop_nonce answer, one retry with the nonce"
    );
    // The nonce is remembered: the next request carries it at once.
    let iam = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &key,
            &device.access_token,
            DEMO_AUDIENCE,
        )
        .await
        .unwrap();
    assert_eq!(idp.stats().token_exchange, 1);

    // A client that has not met the nonce yet is challenged at the resource: 401 DPoP
    // error="use_dpop_nonce" with a DPoP-Nonce; one retry with a fresh proof works.
    let url = echo_url(&idp);
    let fresh = client();
    let first = fresh
        .resource_authorization(&iam, &key, "GET", &url)
        .unwrap();
    let (status, headers, _) = call_with(&url, &first).await;
    assert_eq!(status, 401);
    assert!(www_authenticate(&headers).contains("use_dpop_nonce"));
    assert!(fresh.observe_resource_answer(&url, status, &headers));
    let retry = fresh
        .resource_authorization(&iam, &key, "GET", &url)
        .unwrap();
    let (status, headers, body) = call_with(&url, &retry).await;
    assert_eq!(status, 200, "{body}");
    assert!(!fresh.observe_resource_answer(&url, status, &headers));

    // A challenge without a nonce, or another 401, is no reason to retry.
    let (status, headers, _) = call(&url, &[("authorization", "Bearer nope")]).await;
    assert_eq!(status, 401);
    assert!(!fresh.observe_resource_answer(&url, status, &headers));
}

/// A token endpoint that answers every request 400 `use_dpop_nonce` with a NEW nonce, and
/// records the proofs it got.
async fn nonce_loop_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let proofs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&proofs);
    let counter = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/token",
        post(move |headers: HeaderMap| {
            let seen = Arc::clone(&seen);
            let counter = Arc::clone(&counter);
            async move {
                let proof = headers
                    .get("dpop")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push(proof);
                let n = counter.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::BAD_REQUEST,
                    [("dpop-nonce", format!("nonce-{n}"))],
                    axum::Json(json!({"error": "use_dpop_nonce"})),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, proofs)
}

fn metadata_at(base: &str) -> ProviderMetadata {
    ProviderMetadata {
        issuer: base.to_string(),
        token_endpoint: format!("{base}/token"),
        jwks_uri: format!("{base}/jwks"),
        registration_endpoint: None,
        revocation_endpoint: None,
        introspection_endpoint: None,
        grant_types_supported: vec![],
        token_endpoint_auth_signing_alg_values_supported: vec![],
        dpop_signing_alg_values_supported: vec!["ES256".into()],
        id_token_signing_alg_values_supported: Vec::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_server_that_always_wants_a_new_nonce_gets_one_retry_not_a_loop() {
    let (base, proofs) = nonce_loop_server().await;
    let oidc = client();
    let key = SigningKey::generate().unwrap();
    let refused = oidc
        .client_credentials(&metadata_at(&base), "device-1", &key)
        .await
        .unwrap_err();
    assert_eq!(
        refused.cause(),
        &OidcError::Rejected {
            code: "use_dpop_nonce".into()
        }
    );
    let proofs = proofs.lock().unwrap().clone();
    assert_eq!(proofs.len(), 2, "the first request and exactly one retry");
    let first = Jwt::decode_unverified(&proofs[0]).unwrap();
    let second = Jwt::decode_unverified(&proofs[1]).unwrap();
    assert_eq!(first.claim_str("nonce"), None);
    assert_eq!(second.claim_str("nonce"), Some("nonce-0"));
    assert_ne!(
        first.claim_str("jti"),
        second.claim_str("jti"),
        "a fresh proof"
    );
    assert_eq!(first.claim_str("htm"), Some("POST"));
    assert_eq!(
        first.claim_str("htu"),
        Some(format!("{base}/token").as_str())
    );
}

/// A token endpoint that issues a `DPoP` token with this `cnf` (or none), signed by its own
/// published key.
async fn binding_server(cnf: Option<Value>) -> String {
    let server_key = Arc::new(SigningKey::generate().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks = json!({ "keys": [server_key.public_jwk()] });
    let issuer = base.clone();
    let app = axum::Router::new()
        .route("/jwks", get(move || async move { axum::Json(jwks) }))
        .route(
            "/token",
            post(move || {
                let server_key = Arc::clone(&server_key);
                let issuer = issuer.clone();
                let cnf = cnf.clone();
                async move {
                    let now = mc_jose::unix_now();
                    let mut claims =
                        json!({"iss": issuer, "sub": "device-1", "iat": now, "exp": now + 300});
                    if let Some(cnf) = cnf {
                        claims["cnf"] = cnf;
                    }
                    let token = server_key.sign_jwt("at+jwt", Map::new(), &claims).unwrap();
                    axum::Json(
                        json!({"access_token": token, "token_type": "DPoP", "expires_in": 300}),
                    )
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn a_device_token_bound_to_another_key_is_refused() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let oidc = client();
    for (cnf, accepted) in [
        (Some(json!({"jkt": key.kid()})), true),
        (Some(json!({"jkt": other.kid()})), false),
        (None, false),
        (Some(json!({"jkt": 42})), false),
    ] {
        let base = binding_server(cnf.clone()).await;
        let meta = metadata_at(&base);
        let tokens: TokenSet = oidc
            .client_credentials(&meta, "device-1", &key)
            .await
            .unwrap();
        let result = oidc
            .verify_device_token(&meta, &tokens, &key, "device-1")
            .await;
        if accepted {
            assert!(result.is_ok(), "{cnf:?}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(OidcError::InvalidToken(_))),
                "{cnf:?}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_device_clock_ten_minutes_wrong_still_enrolls_logs_in_and_proves() {
    let idp = idp().await;
    for skew in [-600, 600] {
        let oidc = client_with(OidcConfig {
            clock_skew_for_tests_secs: skew,
            ..OidcConfig::default()
        });
        // Before the IDP answered, the client only has its own (wrong) clock.
        assert!((oidc.now() - (mc_jose::unix_now() + skew)).abs() <= 2);
        let (meta, key, registration) = enrolled(&oidc, &idp).await;
        let device = oidc
            .client_credentials(&meta, &registration.client_id, &key)
            .await
            .unwrap();
        // The token endpoint's Date header corrected it (discovery's and the JWKS's do not
        // count: they may come from a cache).
        assert!((oidc.now() - mc_jose::unix_now()).abs() <= 2, "skew {skew}");
        let verified = oidc
            .verify_device_token(&meta, &device, &key, &registration.client_id)
            .await
            .unwrap();
        assert!(verified.expires_at > oidc.now());
        let iam = oidc
            .exchange(
                &meta,
                &registration.client_id,
                &key,
                &device.access_token,
                DEMO_AUDIENCE,
            )
            .await
            .unwrap();
        let url = echo_url(&idp);
        let auth = oidc
            .resource_authorization(&iam, &key, "GET", &url)
            .unwrap();
        assert_eq!(call_with(&url, &auth).await.0, 200, "skew {skew}");

        // The IDP does check times against its own clock: a proof made with the device's
        // wrong clock is refused.
        let wrong_iat = mc_jose::unix_now() + skew;
        let proof = key
            .sign_jwt(
                "dpop+jwt",
                Map::from_iter([(
                    "jwk".to_string(),
                    serde_json::to_value(key.public_jwk()).unwrap(),
                )]),
                &json!({
                    "jti": mc_jose::random_token(16),
                    "htm": "GET",
                    "htu": format!("{}/demo/echo", idp.base_url()),
                    "iat": wrong_iat,
                    "ath": mc_jose::sha256_b64url(iam.access_token.expose().as_bytes()),
                }),
            )
            .unwrap();
        let (status, headers, _) = call(
            &url,
            &[
                (
                    "authorization",
                    &format!("DPoP {}", iam.access_token.expose()),
                ),
                ("dpop", &proof),
            ],
        )
        .await;
        assert_eq!(status, 401, "skew {skew}");
        assert!(www_authenticate(&headers).contains("invalid_dpop_proof"));
    }
}

#[tokio::test]
async fn jwks_rotation_refetches_once_and_unknown_kids_do_not_storm() {
    let idp = idp().await;
    let oidc = client_with(OidcConfig {
        jwks_min_refetch_interval: Duration::from_millis(300),
        ..OidcConfig::default()
    });
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let login = || oidc.client_credentials(&meta, &registration.client_id, &key);
    let first = login().await.unwrap();
    oidc.verify_device_token(&meta, &first, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(idp.stats().jwks, 1);
    let first_kid = Jwt::decode_unverified(first.access_token.expose())
        .unwrap()
        .kid()
        .map(str::to_string);

    // Rotation keeping the old key: the new kid is fetched once, the old token still verifies.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let new_kid = idp.rotate_signing_key("demo", true).unwrap();
    assert_ne!(Some(new_kid.clone()), first_kid);
    let second = login().await.unwrap();
    assert_eq!(
        Jwt::decode_unverified(second.access_token.expose())
            .unwrap()
            .kid(),
        Some(new_kid.as_str())
    );
    oidc.verify_device_token(&meta, &second, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(idp.stats().jwks, 2, "one refetch for the new kid");
    oidc.verify_device_token(&meta, &first, &key, &registration.client_id)
        .await
        .unwrap();
    oidc.verify_device_token(&meta, &second, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(idp.stats().jwks, 2, "known kids need no fetch");

    // Rotation dropping the old keys: the newest works after one refetch, the dropped ones
    // are refused, and asking again and again does not fetch again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    idp.rotate_signing_key("demo", false).unwrap();
    let third = login().await.unwrap();
    oidc.verify_device_token(&meta, &third, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(idp.stats().jwks, 3);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let oidc = oidc.clone();
        let meta = meta.clone();
        let stale = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            oidc.verify_access_token(&meta, &stale.access_token).await
        }));
    }
    for task in tasks {
        let refused = task.await.unwrap().unwrap_err();
        assert!(matches!(refused, OidcError::InvalidToken(_)), "{refused:?}");
    }
    assert_eq!(
        idp.stats().jwks,
        3,
        "unknown kids right after a fetch cause no refetch"
    );
    // Later, a burst of unknown kids causes at most one fetch.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let oidc = oidc.clone();
        let meta = meta.clone();
        let stale = first.clone();
        tasks.push(tokio::spawn(async move {
            oidc.verify_access_token(&meta, &stale.access_token).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    assert_eq!(idp.stats().jwks, 4, "twenty unknown kids, one refetch");
}
