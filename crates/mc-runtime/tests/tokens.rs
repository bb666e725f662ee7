//! Tokens from IDPs that sign with other algorithms, IAM tokens whose `exp` is nearer than
//! their `expires_in`, and the IDP's reason for a refusal reaching the app: through the real
//! runtime against the dev IDP on loopback.

use mc_devidp::{DevIdp, DevIdpConfig, FaultTarget, HttpFault};
use mc_events::*;
use mc_jose::Algorithm;
use mc_runtime::StoreLocation;
use mc_testkit::*;

async fn idp_with(config: DevIdpConfig) -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("dev IDP starts")
}

/// Enroll, exchange, an authenticated call to /demo/echo, restart, offline login and another
/// exchange: the whole lifecycle with the IDP's tokens signed by `alg`, device tokens opaque
/// when `opaque`. Answers the claims the app saw.
async fn lifecycle_with(
    alg: Algorithm,
    opaque: bool,
) -> std::collections::BTreeMap<String, String> {
    let idp = idp_with(DevIdpConfig {
        signing_alg: alg,
        opaque_device_tokens: opaque,
        ..DevIdpConfig::default()
    })
    .await;
    let store = tempfile::tempdir().unwrap();
    let runtime = runtime_at(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let claims = post(&runtime, GetIamAccessTokenClaimsEvent::new()).await;
    let seen = claims.claims.clone();
    let sub = claims.claims.get("sub").cloned().expect("sub claim");

    let first = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&first, StatusType::Ok);
    let token = first.token.clone().expect("an IAM token");
    let iam = mc_jose::Jwt::decode_unverified(token.expose()).unwrap();
    assert_eq!(iam.alg(), Some(alg.name()), "the IDP signs with {alg}");

    let url = format!("{}/demo/echo", idp.base_url());
    let http = post(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Post)
            .with_audience(AUDIENCE)
            .with_content("hello", "text/plain"),
    )
    .await;
    assert_eq!(http.http_status, Some(200), "{alg}: {http:#?}");
    let echo: serde_json::Value = serde_json::from_slice(&http.response).unwrap();
    assert_eq!(echo["sub"], sub.as_str());

    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(restarted.sdk_state, SdkState::LoginRequired);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_status(
        &post(
            &runtime,
            ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
        )
        .await,
        StatusType::Ok,
    );
    assert_eq!(idp.stats().introspection > 0, opaque);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_works_with_rs256_tokens() {
    lifecycle_with(Algorithm::Rs256, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_works_with_ps256_and_eddsa_tokens() {
    lifecycle_with(Algorithm::Ps256, false).await;
    lifecycle_with(Algorithm::EdDsa, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_works_with_opaque_device_tokens_and_introspection() {
    let claims = lifecycle_with(Algorithm::Es256, true).await;
    assert!(claims.contains_key("client_id"), "{claims:?}");
    assert!(!claims.contains_key("active"), "{claims:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_opaque_device_token_fails_the_enrollment() {
    let idp = idp_with(DevIdpConfig {
        opaque_device_tokens: true,
        ..DevIdpConfig::default()
    })
    .await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    idp.faults()
        .set_introspection_override(serde_json::json!({"active": false}).as_object().cloned());
    let refused = enroll(&runtime).await;
    assert_status(&refused, StatusType::InvalidToken);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_token_is_not_served_past_its_exp() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    // `exp` in 5 s, `expires_in` the usual 300 s: the runtime's 30 s refresh margin means the
    // token is stale at once, so the next request must exchange again.
    idp.faults().set_exchanged_token_exp_secs(Some(5));
    let first = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&first, StatusType::Ok);
    let expires_at = first.expires_at.expect("expires_at");
    assert!(
        expires_at <= mc_jose::unix_now() + 6,
        "expires_at follows exp, not expires_in: {expires_at}"
    );
    let second = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&second, StatusType::Ok);
    assert_eq!(
        idp.stats().token_exchange,
        2,
        "the near-expiry token was not served from the cache"
    );
    // An `exp` already past: never served again either.
    idp.faults().set_exchanged_token_exp_secs(Some(-3600));
    post(
        &runtime,
        ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
    )
    .await;
    post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(idp.stats().token_exchange, 4);
    // Control: with the usual exp the cache answers.
    idp.faults().clear_all();
    post(
        &runtime,
        ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
    )
    .await;
    post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(idp.stats().token_exchange, 5, "a fresh token is cached");
}

async fn exchange_refused_with(error: &str, description: &str) -> ExchangeIamTokenResultEvent {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    idp.faults().set_http_fault(
        FaultTarget::Token,
        HttpFault::OAuthError {
            status: 400,
            error: error.into(),
            description: description.into(),
        },
        Some(1),
    );
    let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(idp.faults().injected_count(), 1);
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn, "not a logout");
    refused
}

fn description_of(answer: &ExchangeIamTokenResultEvent) -> String {
    answer.info.error_description.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloaks_missing_consent_reaches_the_app_as_access_denied() {
    for error in ["access_denied", "invalid_client", "consent_required"] {
        let refused = exchange_refused_with(
            error,
            "Missing consents for Token Exchange in client demo-api",
        )
        .await;
        assert_status(&refused, StatusType::AccessDenied);
        let description = description_of(&refused);
        assert!(
            description.contains("Missing consents for Token Exchange in client demo-api"),
            "{error}: {description}"
        );
        assert!(description.contains(error), "{description}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idps_text_is_sanitised_before_it_reaches_the_app() {
    let hostile = format!(
        "bad\r\nInjected: yes\u{1b}[31m your token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln {}",
        "x".repeat(5_000)
    );
    let refused = exchange_refused_with("invalid_request", &hostile).await;
    let description = description_of(&refused);
    assert!(
        description.contains("invalid_request: bad Injected: yes"),
        "{description}"
    );
    assert!(
        !description.chars().any(char::is_control),
        "{description:?}"
    );
    assert!(!description.contains("eyJ"), "{description}");
    assert!(description.chars().count() < 600, "{}", description.len());
}
