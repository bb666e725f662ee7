//! DPoP through the runtime: tokens bound to the device key by default when the IDP offers
//! DPoP, CreateHttpCommonRequest sending `Authorization: DPoP` with a proof (and answering a
//! resource's nonce challenge once), the setting that turns it off, and a device whose clock
//! is ten minutes wrong. Real HTTP to the development IDP and to small axum resources.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use mc_events::*;
use mc_oidc::DpopMode;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_testkit::*;
use serde_json::{json, Value};

fn runtime_with(
    idp: &mc_devidp::DevIdp,
    edit: impl FnOnce(&mut RuntimeConfig),
) -> MasterController {
    let mut config = config_at(&idp.base_url(), StoreLocation::Memory);
    edit(&mut config);
    MasterController::start(config).expect("runtime starts")
}

async fn enrolled(runtime: &MasterController) {
    assert_status(&start(runtime).await, StatusType::Ok);
    assert_status(&enroll(runtime).await, StatusType::Ok);
}

async fn exchanged_token(runtime: &MasterController) -> String {
    let result = post(runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    result.token.expect("an IAM token").expose().to_string()
}

async fn http_get(runtime: &MasterController, url: &str) -> CreateHttpCommonResultEvent {
    let answer = post(
        runtime,
        CreateHttpCommonRequest::new(url, HttpMethod::Get).with_audience(AUDIENCE),
    )
    .await;
    assert_eq!(answer.status, HttpCommonStatus::Success, "{answer:#?}");
    answer
}

fn cnf_jkt(token: &str) -> Option<String> {
    mc_jose::Jwt::decode_unverified(token)
        .unwrap()
        .claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// GET `url` with only `Authorization: Bearer <token>`: what a thief holding the token does.
async fn bearer_call(url: &str, token: &str) -> u16 {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(mc_oidc::tls_client_config().unwrap())
        .build()
        .unwrap();
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn resource_calls_are_dpop_bound_and_a_stolen_iam_token_is_useless() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    enrolled(&runtime).await;

    // The device token is bound to the device key (cnf.jkt among its claims).
    let claims = post(&runtime, GetIamAccessTokenClaimsEvent::new()).await;
    let device_cnf: Value = serde_json::from_str(claims.claims.get("cnf").expect("cnf")).unwrap();
    let device_jkt = device_cnf["jkt"].as_str().unwrap().to_string();

    let token = exchanged_token(&runtime).await;
    assert_eq!(cnf_jkt(&token).as_deref(), Some(device_jkt.as_str()));

    let url = format!("{}/demo/echo?q=1", idp.base_url());
    let answer = http_get(&runtime, &url).await;
    assert_eq!(answer.http_status, Some(200));
    let echo: Value = serde_json::from_slice(&answer.response).unwrap();
    assert_eq!(echo["token_type"], "DPoP");
    // Each call gets a fresh proof (a reused one would be refused as a replay).
    assert_eq!(http_get(&runtime, &url).await.http_status, Some(200));

    // The token handed to the app is no good without the device key.
    assert_eq!(bearer_call(&url, &token).await, 401);
}

#[tokio::test]
async fn dpop_can_be_switched_off() {
    let idp = idp().await;
    let runtime = runtime_with(&idp, |config| config.oidc.dpop = DpopMode::Never);
    enrolled(&runtime).await;
    let token = exchanged_token(&runtime).await;
    assert_eq!(cnf_jkt(&token), None);
    let url = format!("{}/demo/echo", idp.base_url());
    let echo: Value = serde_json::from_slice(&http_get(&runtime, &url).await.response).unwrap();
    assert_eq!(echo["token_type"], "Bearer");
    assert_eq!(bearer_call(&url, &token).await, 200, "a plain bearer token");
}

/// A resource on its own origin that wants a DPoP nonce: answers 401 `use_dpop_nonce` with a
/// new nonce unless the proof carries the last one (`always_challenge`: whatever it carries).
/// Records the proofs it got.
async fn nonce_resource(always_challenge: bool) -> (String, Arc<Mutex<Vec<Value>>>) {
    let proofs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&proofs);
    let issued = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/api",
        axum::routing::get(move |headers: HeaderMap| {
            let seen = Arc::clone(&seen);
            let issued = Arc::clone(&issued);
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let authorization = header("authorization");
                let proof = mc_jose::Jwt::decode_unverified(&header("dpop"))
                    .map(|jwt| Value::Object(jwt.claims))
                    .unwrap_or(Value::Null);
                seen.lock().unwrap().push(proof.clone());
                let token = authorization.strip_prefix("DPoP ").unwrap_or_default();
                let ath_ok = proof["ath"] == json!(mc_jose::sha256_b64url(token.as_bytes()));
                let last = issued.load(Ordering::SeqCst);
                let nonce_ok = last > 0 && proof["nonce"] == json!(format!("n{last}"));
                if ath_ok && nonce_ok && !always_challenge {
                    return (StatusCode::OK, "ok").into_response();
                }
                let next = issued.fetch_add(1, Ordering::SeqCst) + 1;
                (
                    StatusCode::UNAUTHORIZED,
                    [
                        (
                            "www-authenticate",
                            "DPoP error=\"use_dpop_nonce\"".to_string(),
                        ),
                        ("dpop-nonce", format!("n{next}")),
                    ],
                    "",
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, proofs)
}

#[tokio::test]
async fn a_resource_nonce_challenge_is_answered_once_and_never_looped() {
    let idp = idp().await;
    let (url, proofs) = nonce_resource(false).await;
    let (stubborn_url, stubborn_proofs) = nonce_resource(true).await;
    let origin = |url: &str| url::Url::parse(url).unwrap().origin().ascii_serialization();
    let runtime = runtime_with(&idp, |config| {
        for resource in [&url, &stubborn_url] {
            config
                .audience_origins
                .allow(AUDIENCE, &origin(resource))
                .unwrap();
        }
    });
    enrolled(&runtime).await;

    assert_eq!(http_get(&runtime, &url).await.http_status, Some(200));
    {
        let proofs = proofs.lock().unwrap();
        assert_eq!(proofs.len(), 2, "challenge, then one retry");
        assert_eq!(proofs[0].get("nonce"), None);
        assert_eq!(proofs[1]["nonce"], "n1");
        assert_ne!(proofs[0]["jti"], proofs[1]["jti"]);
        assert_eq!(proofs[1]["htm"], "GET");
        assert_eq!(proofs[1]["htu"], url.as_str());
    }
    // The nonce is remembered for that origin: the next call needs no challenge.
    assert_eq!(http_get(&runtime, &url).await.http_status, Some(200));
    assert_eq!(proofs.lock().unwrap().len(), 3);

    assert_eq!(
        http_get(&runtime, &stubborn_url).await.http_status,
        Some(401),
        "a second challenge is the answer"
    );
    assert_eq!(
        stubborn_proofs.lock().unwrap().len(),
        2,
        "one retry, not a loop"
    );
}

#[tokio::test]
async fn a_nonce_demanding_idp_costs_one_retry_per_new_nonce() {
    let idp = idp().await;
    idp.faults().set_require_dpop_nonce(true);
    let runtime = memory_runtime(&idp);
    enrolled(&runtime).await;
    assert_eq!(idp.stats().token_client_credentials, 2);
    exchanged_token(&runtime).await;
    assert_eq!(idp.stats().token_exchange, 1, "the nonce was remembered");
    let url = format!("{}/demo/echo", idp.base_url());
    assert_eq!(http_get(&runtime, &url).await.http_status, Some(200));
    assert_eq!(idp.stats().echo, 1, "same origin, same nonce: no challenge");
}

#[tokio::test]
async fn a_device_clock_ten_minutes_wrong_still_enrolls_and_logs_in() {
    let idp = idp().await;
    for skew in [-600, 600] {
        let store = tempfile::tempdir().unwrap();
        let config = |skew| {
            let mut config = config_at(
                &idp.base_url(),
                StoreLocation::Directory(store.path().into()),
            );
            config.oidc.clock_skew_for_tests_secs = skew;
            config
        };
        let runtime = MasterController::start(config(skew)).unwrap();
        enrolled(&runtime).await;
        let url = format!("{}/demo/echo", idp.base_url());
        assert_eq!(http_get(&runtime, &url).await.http_status, Some(200));
        drop(runtime);

        // A new process, still with the wrong clock: offline login and a call.
        let runtime = MasterController::start(config(skew)).unwrap();
        let started = start(&runtime).await;
        assert_eq!(started.sdk_state, SdkState::LoginRequired);
        assert_status(
            &post(&runtime, OfflineLoginEvent::new()).await,
            StatusType::Ok,
        );
        assert_eq!(
            http_get(&runtime, &url).await.http_status,
            Some(200),
            "skew {skew}"
        );
    }
}
