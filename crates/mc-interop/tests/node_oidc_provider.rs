//! The runtime against node-oidc-provider 8.x (`crates/mc-interop/node`), a stock IDP we did
//! not write: the whole lifecycle in each authentication mode, and the provider's
//! token-exchange grant refusing what it must, in both provider profiles: ES256 JWT device
//! tokens, and the provider as it ships (RS256 keys, opaque device tokens checked by
//! introspection). The only runtime differences from Keycloak are settings: issuer template
//! `{server}` and a clock tolerance of 15 s.
//!
//! Timings go to stderr: `cargo test -p mc-interop --test node_oidc_provider -- --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::Json;
use mc_events::*;
use mc_interop::node::{NodeOidcProvider, NodeProfile};
use mc_jose::{JwkSet, SigningKey};
use mc_oidc::{OidcClient, OidcConfig, OidcError, ProviderMetadata, RegistrationRequest};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use serde_json::{json, Value};

const TENANT: &str = "demo";
const CLIENT: &str = "AnonymousUserEnrollment";
const AUDIENCE: &str = "demo-api";
/// The audience of device tokens (config.mjs, DEVICE_RESOURCE).
const DEVICE_AUDIENCE: &str = "urn:mc-runtime:device";
const PASSWORD: &str = "correct horse battery staple";
const CLOCK_TOLERANCE_SECS: i64 = 15;
const WAIT: Duration = Duration::from_secs(30);
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(mc_oidc::tls_client_config().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A resource server on 127.0.0.1 that accepts only a JWT signed by the provider's JWKS (as
/// `OidcClient::verify_access_token` checks it: signature, `iss`, `exp`), for `demo-api`: as `Bearer` when it is not sender-constrained, as
/// `DPoP` with a valid single-use proof of the key in its `cnf.jkt` when it is (RFC 9449 §7);
/// it echoes who called.
#[derive(Clone)]
struct Resource {
    oidc: OidcClient,
    meta: ProviderMetadata,
    url: String,
    seen_proofs: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

async fn start_resource(provider: &NodeOidcProvider) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/demo/echo", listener.local_addr().unwrap());
    let oidc = protocol_client();
    let meta = oidc.discover(provider.issuer()).await.unwrap();
    let resource = Resource {
        oidc,
        meta,
        url: url.clone(),
        seen_proofs: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/demo/echo", axum::routing::any(echo))
        .with_state(resource);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Checks the `DPoP` proof of a call with `token` bound to `jkt`; the reason when refused.
fn check_proof(
    resource: &Resource,
    headers: &HeaderMap,
    method: &Method,
    token: &str,
    jkt: &str,
) -> Result<(), &'static str> {
    let proof = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .ok_or("no DPoP proof")?;
    let unverified = mc_jose::Jwt::decode_unverified(proof).map_err(|_| "proof malformed")?;
    if unverified.header.get("typ") != Some(&json!("dpop+jwt")) {
        return Err("proof typ");
    }
    let mut jwk: mc_jose::Jwk = unverified
        .header
        .get("jwk")
        .and_then(|jwk| serde_json::from_value(jwk.clone()).ok())
        .ok_or("proof jwk")?;
    if jwk.thumbprint().ok().as_deref() != Some(jkt) {
        return Err("proof of another key than cnf.jkt");
    }
    jwk.kid = unverified.kid().map(str::to_string);
    let proof_jwt =
        mc_jose::verify_es256(proof, &JwkSet { keys: vec![jwk] }).map_err(|_| "proof signature")?;
    let claim = |name: &str| proof_jwt.claim_str(name).unwrap_or_default().to_string();
    if claim("htm") != method.as_str() || claim("htu") != resource.url {
        return Err("proof htm/htu");
    }
    if claim("ath") != mc_jose::sha256_b64url(token.as_bytes()) {
        return Err("proof ath");
    }
    let iat = proof_jwt.claim_i64("iat").unwrap_or_default();
    if (iat - mc_jose::unix_now()).abs() > 60 {
        return Err("proof iat");
    }
    if !resource.seen_proofs.lock().unwrap().insert(claim("jti")) {
        return Err("proof replayed");
    }
    Ok(())
}

async fn echo(
    State(resource): State<Resource>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let refuse = |why: &str| (StatusCode::UNAUTHORIZED, Json(json!({ "error": why })));
    let Some((scheme, token)) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return refuse("no token");
    };
    let verified = match resource
        .oidc
        .verify_access_token(&resource.meta, &token.into())
        .await
    {
        Ok(verified) => verified,
        Err(e) => return refuse(&e.to_string()),
    };
    if verified.claims.get("aud") != Some(&json!(AUDIENCE)) {
        return refuse("not for demo-api");
    }
    let claim = |name: &str| verified.claims.get(name).and_then(Value::as_str);
    let bound_to = verified
        .claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str);
    match (scheme, bound_to) {
        ("Bearer", None) => {}
        ("DPoP", Some(jkt)) => {
            if let Err(why) = check_proof(&resource, &headers, &method, token, jkt) {
                return refuse(why);
            }
        }
        _ => return refuse("a DPoP-bound token needs the DPoP scheme and a proof"),
    }
    (
        StatusCode::OK,
        Json(json!({
            "token_type": scheme,
            "sub": claim("sub"),
            "client_id": claim("client_id"),
            "method": method.as_str(),
            "body": body,
        })),
    )
}

/// The runtime's settings for node-oidc-provider: one issuer (no realms) and its clock
/// tolerance. Nothing else differs from Keycloak.
fn runtime_config(provider: &NodeOidcProvider, mode: AuthenticationMode) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(provider.issuer(), StoreLocation::Memory);
    config.oidc.issuer_template = "{server}".into();
    config.oidc.clock_tolerance_secs = CLOCK_TOLERANCE_SECS;
    config.store_settings.kdf = mc_store::KdfSettings::for_tests(1_000);
    if mode == AuthenticationMode::Biometric {
        config.biometric = Some(Arc::new(mc_store::SoftwareBiometric::in_memory()));
    }
    config
}

/// Posts a request and returns its own result type, waiting at most [`WAIT`].
async fn post<E: RequestType>(runtime: &MasterController, event: E) -> E::Result {
    runtime.post_with_timeout(event, WAIT).await
}

fn assert_ok<R: Clone + Into<Event>>(answer: &R) {
    mc_testkit::assert_status(answer, StatusType::Ok);
}

fn password_for(mode: AuthenticationMode) -> Option<&'static str> {
    (mode == AuthenticationMode::Password).then_some(PASSWORD)
}

/// Start, Enroll, claims, Restart + OfflineLogin, exchange (then a cache hit), an
/// authenticated resource call, DeleteUser: all against the provider.
async fn lifecycle(
    provider: &NodeOidcProvider,
    resource_url: &str,
    mode: AuthenticationMode,
    profile: NodeProfile,
) {
    let mut config = runtime_config(provider, mode);
    // The resource server's origin (scheme://host:port) may receive the audience's token.
    let resource_origin = resource_url
        .splitn(4, '/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    config
        .audience_origins
        .allow(AUDIENCE, &resource_origin)
        .unwrap();
    let runtime = MasterController::start(config).unwrap();

    let started = post(&runtime, StartEvent::new()).await;
    assert_ok(&started);
    assert_eq!(started.sdk_state, SdkState::ActivationRequired);

    let mut enroll = EnrollAnonymousUserEvent::new(TENANT, mode, CLIENT);
    if let Some(password) = password_for(mode) {
        enroll = enroll.with_password(password);
    }
    assert_ok(&post(&runtime, enroll).await);
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(info.sdk_state, SdkState::LoggedIn);
    let device = info.logged_in_user.expect("a logged-in user").user_id;
    let registered = provider
        .client_metadata(&device)
        .await
        .unwrap()
        .expect("the device registered itself as a client at the provider");
    assert_eq!(registered["software_id"], CLIENT);
    assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(
        registered["grant_types"],
        json!(["client_credentials", TOKEN_EXCHANGE])
    );
    assert!(registered.get("client_secret").is_none());
    // The provider advertises DPoP: the device asked for bound tokens.
    assert_eq!(registered["dpop_bound_access_tokens"], true);
    let iam = info.iam_configuration_data.expect("configuration data");
    assert_eq!(iam.issuer.as_deref(), Some(provider.issuer()));

    // The device token, verified by the runtime: a JWT against the provider's JWKS, an
    // opaque token by introspection (which names the client, not a `sub` or `aud`).
    let claims = post(&runtime, GetIamAccessTokenClaimsEvent::new()).await;
    let claim = |name: &str| claims.claims.get(name).map(String::as_str);
    assert_eq!(claim("client_id"), Some(device.as_str()), "{claims:#?}");
    assert_eq!(claim("iss"), Some(provider.issuer()));
    if profile == NodeProfile::Es256Jwt {
        assert_eq!(claim("sub"), Some(device.as_str()));
        assert_eq!(claim("aud"), Some(DEVICE_AUDIENCE));
    }

    // Restart keeps the enrollment; the offline login uses the stored key.
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(restarted.sdk_state, SdkState::LoginRequired);
    let logins = provider.grants_issued("client_credentials").await.unwrap();
    let mut login = OfflineLoginEvent::new();
    if let Some(password) = password_for(mode) {
        login = login.with_password(password);
    }
    assert_ok(&post(&runtime, login).await);
    assert_eq!(
        provider.grants_issued("client_credentials").await.unwrap(),
        logins + 1,
        "the offline login fetched a new device token"
    );

    // Token exchange (RFC 8693), then a cache hit that does not reach the provider.
    let exchanges = provider.grants_issued(TOKEN_EXCHANGE).await.unwrap();
    let first = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_ok(&first);
    let token = first.token.clone().expect("an IAM token");
    let jwt = mc_jose::Jwt::decode_unverified(token.expose()).unwrap();
    assert_eq!(jwt.claim_str("aud"), Some(AUDIENCE));
    assert_eq!(jwt.claim_str("sub"), Some(device.as_str()));
    assert_eq!(jwt.claim_str("client_id"), Some(device.as_str()));
    let expected_alg = match profile {
        NodeProfile::Es256Jwt => "ES256",
        NodeProfile::Rs256Opaque => "RS256",
    };
    assert_eq!(jwt.alg(), Some(expected_alg));
    let device_jkt: Value = serde_json::from_str(claim("cnf").expect("a bound device token"))
        .map(|cnf: Value| cnf["jkt"].clone())
        .unwrap();
    assert_eq!(
        jwt.claims.get("cnf").map(|cnf| &cnf["jkt"]),
        Some(&device_jkt),
        "the exchange grant bound the IAM token to the device key too"
    );
    assert_eq!(
        provider.grants_issued(TOKEN_EXCHANGE).await.unwrap(),
        exchanges + 1
    );
    let cached = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(
        cached.token, first.token,
        "a cache hit returns the same token"
    );
    assert_eq!(
        provider.grants_issued(TOKEN_EXCHANGE).await.unwrap(),
        exchanges + 1,
        "a cache hit must not call the provider"
    );

    // An authenticated call through the runtime to a resource that checks the token.
    let call = post(
        &runtime,
        CreateHttpCommonRequest::new(resource_url, HttpMethod::Post)
            .with_audience(AUDIENCE)
            .with_content("hello", "text/plain"),
    )
    .await;
    assert_eq!(call.http_status, Some(200), "{call:#?}");
    let echo: Value = serde_json::from_slice(&call.response).unwrap();
    assert_eq!(echo["sub"], device.as_str());
    assert_eq!(echo["client_id"], device.as_str());
    assert_eq!(echo["body"], "hello");
    assert_eq!(echo["token_type"], "DPoP");
    // Without an audience no token is sent, and the resource refuses.
    let anonymous = post(
        &runtime,
        CreateHttpCommonRequest::new(resource_url, HttpMethod::Get),
    )
    .await;
    assert_eq!(anonymous.http_status, Some(401));

    // RFC 7592 delete: the client is gone at the provider, the user gone locally.
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert_eq!(deleted.sdk_state, SdkState::ActivationRequired);
    assert!(deleted.user_list.is_empty());
    assert!(
        !provider.client_registered(&device).await.unwrap(),
        "the registration was deleted at the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_in_every_mode_against_node_oidc_provider() {
    let suite = Instant::now();
    let provider = NodeOidcProvider::start_with(NodeProfile::Es256Jwt)
        .await
        .unwrap();
    let timings = provider.timings();
    let resource_url = start_resource(&provider).await;
    for mode in [
        AuthenticationMode::No,
        AuthenticationMode::Password,
        AuthenticationMode::Biometric,
    ] {
        let started = Instant::now();
        lifecycle(&provider, &resource_url, mode, NodeProfile::Es256Jwt).await;
        eprintln!(
            "node-oidc-provider lifecycle {mode:?}: {:?}",
            started.elapsed()
        );
    }
    eprintln!(
        "node-oidc-provider: npm install {:?}, startup {:?}, suite {:?}",
        timings.npm_install,
        timings.startup,
        suite.elapsed()
    );
}

/// `error` is the refusal `expected`, possibly with the IDP's own words attached (mc-oidc may
/// wrap an error in the IDP's `error_description`, whose text starts with the meaning).
#[track_caller]
fn assert_refused(error: OidcError, expected: OidcError) {
    assert_eq!(error.kind(), expected.kind(), "{error:?}");
    assert!(
        error.to_string().starts_with(&expected.to_string()),
        "{error:?} is not {expected:?}"
    );
}

fn protocol_client() -> OidcClient {
    OidcClient::new(OidcConfig {
        issuer_template: "{server}".into(),
        clock_tolerance_secs: CLOCK_TOLERANCE_SECS,
        ..OidcConfig::default()
    })
    .unwrap()
}

fn registration(name: &str) -> RegistrationRequest {
    RegistrationRequest {
        client_name: name.into(),
        software_id: CLIENT.into(),
        initial_access_token: None,
    }
}

/// The provider's exchange grant is ours (config.mjs, server.mjs): it must not be a hole.
/// Also checks what the runtime relies on at this IDP: `invalid_client` once deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_grant_refuses_foreign_and_wrong_tokens() {
    let provider = NodeOidcProvider::start().await.unwrap();
    let resource_url = start_resource(&provider).await;
    let oidc = protocol_client();
    let meta = oidc.discover(provider.issuer()).await.unwrap();

    let key_a = SigningKey::generate().unwrap();
    let key_b = SigningKey::generate().unwrap();
    let a = oidc
        .register(&meta, &key_a, &registration("device a"))
        .await
        .unwrap();
    let b = oidc
        .register(&meta, &key_b, &registration("device b"))
        .await
        .unwrap();
    let token_a = oidc
        .client_credentials(&meta, &a.client_id, &key_a)
        .await
        .unwrap();
    let verified = oidc
        .verify_access_token(&meta, &token_a.access_token)
        .await
        .unwrap();
    assert_eq!(verified.subject.as_deref(), Some(a.client_id.as_str()));

    // Someone else's key cannot log in as A.
    assert_refused(
        oidc.client_credentials(&meta, &a.client_id, &key_b)
            .await
            .unwrap_err(),
        OidcError::InvalidClient,
    );

    let exchanged = oidc
        .exchange(&meta, &a.client_id, &key_a, &token_a.access_token, AUDIENCE)
        .await
        .unwrap();
    // B cannot trade A's token.
    assert_refused(
        oidc.exchange(&meta, &b.client_id, &key_b, &token_a.access_token, AUDIENCE)
            .await
            .unwrap_err(),
        OidcError::InvalidGrant,
    );
    // Only device tokens are subject tokens: not an exchanged token, not garbage.
    assert_refused(
        oidc.exchange(
            &meta,
            &a.client_id,
            &key_a,
            &exchanged.access_token,
            AUDIENCE,
        )
        .await
        .unwrap_err(),
        OidcError::InvalidGrant,
    );
    assert_refused(
        oidc.exchange(&meta, &a.client_id, &key_a, &"not.a.token".into(), AUDIENCE)
            .await
            .unwrap_err(),
        OidcError::InvalidGrant,
    );
    // Only registered exchange audiences.
    for audience in ["other-api", DEVICE_AUDIENCE] {
        assert_refused(
            oidc.exchange(&meta, &a.client_id, &key_a, &token_a.access_token, audience)
                .await
                .unwrap_err(),
            OidcError::InvalidTarget,
        );
    }

    // Bound to A's key (DPoP), both of them.
    for token in [&token_a, &exchanged] {
        assert_eq!(token.token_type, "DPoP");
        let claims = mc_jose::Jwt::decode_unverified(token.access_token.expose())
            .unwrap()
            .claims;
        assert_eq!(claims["cnf"]["jkt"], key_a.kid());
    }

    // The resource takes the exchanged token with A's proof, refuses the device token (wrong
    // audience), and refuses the exchanged token stolen: as Bearer, or with B's proof.
    let http = http_client();
    let call = |token: &mc_oidc::TokenSet, key: &SigningKey| {
        let auth = oidc
            .resource_authorization(token, key, "GET", &resource_url)
            .unwrap();
        let mut request = http
            .get(&resource_url)
            .header("authorization", auth.authorization.expose());
        if let Some(proof) = &auth.dpop {
            request = request.header("dpop", proof.expose());
        }
        request.send()
    };
    assert_eq!(call(&exchanged, &key_a).await.unwrap().status(), 200);
    assert_eq!(call(&token_a, &key_a).await.unwrap().status(), 401);
    assert_eq!(call(&exchanged, &key_b).await.unwrap().status(), 401);
    let stolen = http
        .get(&resource_url)
        .bearer_auth(exchanged.access_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 401);

    // Deleted by RFC 7592: the next login is invalid_client, which the runtime reads as
    // "enroll again".
    let (uri, rat) = (
        a.registration_client_uri
            .clone()
            .expect("registration_client_uri"),
        a.registration_access_token
            .clone()
            .expect("registration_access_token"),
    );
    oidc.delete_registration(&uri, &rat).await.unwrap();
    assert!(!provider.client_registered(&a.client_id).await.unwrap());
    assert!(provider.client_registered(&b.client_id).await.unwrap());
    assert_refused(
        oidc.client_credentials(&meta, &a.client_id, &key_a)
            .await
            .unwrap_err(),
        OidcError::InvalidClient,
    );
}

/// The provider as it ships: RS256 server key, opaque device tokens that the runtime checks
/// by introspection (RFC 7662), RS256 JWTs for demo-api.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_with_rs256_keys_and_opaque_device_tokens() {
    let provider = NodeOidcProvider::start_with(NodeProfile::Rs256Opaque)
        .await
        .unwrap();
    let resource_url = start_resource(&provider).await;
    for mode in [AuthenticationMode::No, AuthenticationMode::Password] {
        let started = Instant::now();
        lifecycle(&provider, &resource_url, mode, NodeProfile::Rs256Opaque).await;
        eprintln!(
            "node-oidc-provider rs256-opaque lifecycle {mode:?}: {:?}",
            started.elapsed()
        );
    }
}

/// An opaque device token the provider no longer vouches for (revoked as soon as it was
/// issued, so its introspection answers `active: false`): the offline login is refused as
/// INVALID_TOKEN, the user is not logged in, and the enrollment stays (the client is fine at
/// the IDP; the next login may succeed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_device_token_inactive_at_introspection_refuses_login() {
    let provider = NodeOidcProvider::start_with(NodeProfile::Rs256Opaque)
        .await
        .unwrap();
    let runtime =
        MasterController::start(runtime_config(&provider, AuthenticationMode::No)).unwrap();
    assert_ok(&post(&runtime, StartEvent::new()).await);
    assert_ok(
        &post(
            &runtime,
            EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT),
        )
        .await,
    );
    let info = post(&runtime, GetInformationEvent::new()).await;
    let device = info.logged_in_user.expect("a logged-in user").user_id;
    assert_ok(&post(&runtime, RestartEvent::new()).await);

    provider.revoke_on_issue(&device).await.unwrap();
    let logins = provider.grants_issued("client_credentials").await.unwrap();
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_eq!(
        provider.grants_issued("client_credentials").await.unwrap(),
        logins + 1,
        "the provider issued a token (and revoked it)"
    );
    assert_eq!(login.info.status, StatusType::InvalidToken, "{login:#?}");
    assert_eq!(login.info.error_code, error_code::INVALID_TOKEN);
    let state = post(&runtime, GetStateEvent::new()).await;
    assert_eq!(state.sdk_state, SdkState::LoginRequired);
    assert!(
        provider.client_registered(&device).await.unwrap(),
        "a refused token is no reason to delete the registration"
    );
}

/// The exchange grant with opaque subject tokens (rs256-opaque): only the requesting client's
/// own, unexpired, unrevoked device token is a subject token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_grant_refuses_foreign_and_wrong_opaque_tokens() {
    let provider = NodeOidcProvider::start_with(NodeProfile::Rs256Opaque)
        .await
        .unwrap();
    let oidc = protocol_client();
    let meta = oidc.discover(provider.issuer()).await.unwrap();
    assert!(meta.introspection_endpoint.is_some(), "introspection is on");

    let key_a = SigningKey::generate().unwrap();
    let key_b = SigningKey::generate().unwrap();
    let a = oidc
        .register(&meta, &key_a, &registration("device a"))
        .await
        .unwrap();
    let b = oidc
        .register(&meta, &key_b, &registration("device b"))
        .await
        .unwrap();
    let token_a = oidc
        .client_credentials(&meta, &a.client_id, &key_a)
        .await
        .unwrap();
    assert!(
        mc_jose::Jwt::decode_unverified(token_a.access_token.expose()).is_err(),
        "the device token is opaque"
    );
    assert_eq!(token_a.token_type, "DPoP");

    let exchanged = oidc
        .exchange(&meta, &a.client_id, &key_a, &token_a.access_token, AUDIENCE)
        .await
        .unwrap();
    let jwt = mc_jose::Jwt::decode_unverified(exchanged.access_token.expose()).unwrap();
    assert_eq!(jwt.alg(), Some("RS256"));
    assert_eq!(jwt.claim_str("client_id"), Some(a.client_id.as_str()));
    assert_eq!(jwt.claims["cnf"]["jkt"], key_a.kid());

    // B cannot trade A's token; an exchanged token, garbage or a revoked token is no subject.
    assert_refused(
        oidc.exchange(&meta, &b.client_id, &key_b, &token_a.access_token, AUDIENCE)
            .await
            .unwrap_err(),
        OidcError::InvalidGrant,
    );
    for subject in [exchanged.access_token.clone(), "no-such-token".into()] {
        assert_refused(
            oidc.exchange(&meta, &a.client_id, &key_a, &subject, AUDIENCE)
                .await
                .unwrap_err(),
            OidcError::InvalidGrant,
        );
    }
    provider.revoke_on_issue(&a.client_id).await.unwrap();
    let revoked = oidc
        .client_credentials(&meta, &a.client_id, &key_a)
        .await
        .unwrap();
    assert_refused(
        oidc.exchange(&meta, &a.client_id, &key_a, &revoked.access_token, AUDIENCE)
            .await
            .unwrap_err(),
        OidcError::InvalidGrant,
    );
    // Unknown audiences stay invalid_target.
    assert_refused(
        oidc.exchange(
            &meta,
            &a.client_id,
            &key_a,
            &token_a.access_token,
            "other-api",
        )
        .await
        .unwrap_err(),
        OidcError::InvalidTarget,
    );
}
