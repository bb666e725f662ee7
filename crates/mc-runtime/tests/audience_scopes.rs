//! An identified user's audience token where the IDP will not exchange a public client's
//! token (Keycloak 26): StartEvent's `configuration.audienceScopes` maps the audience to the
//! app client's optional scope, the login asks for it, and ExchangeIamToken gets the token by
//! the refresh grant narrowed to `openid` + that scope (RFC 6749 §6), verified before it is
//! cached. The dev IDP plays Keycloak: `refuse_public_client_exchange` and the demo client's
//! optional scope `demo-api-audience` (the same test runs against Keycloak in
//! `mc-interop/tests/keycloak/identified.rs`).

use std::collections::BTreeMap;

use mc_devidp::{DevIdp, DEMO_AUDIENCE_SCOPE, DEMO_USER_SUB};
use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_testkit::identified::*;
use mc_testkit::*;
use serde_json::Value;

const MAPPING: &str = "demo-api=demo-api-audience";

fn start_with_scopes(scopes: &str) -> StartEvent {
    let mut event = StartEvent::new();
    event.configuration = Some(BTreeMap::from([(
        "audienceScopes".to_owned(),
        scopes.to_owned(),
    )]));
    event
}

/// A memory runtime on `idp` started with `scopes` as `configuration.audienceScopes`.
async fn runtime_with_scopes(idp: &DevIdp, scopes: &str) -> MasterController {
    let runtime = MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory))
        .expect("runtime starts");
    assert_status(
        &post(&runtime, start_with_scopes(scopes)).await,
        StatusType::Ok,
    );
    runtime
}

/// The claims of a JWT, read without checking it (the test inspects what the runtime cached).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&mc_jose::b64url_decode(payload).expect("base64url")).expect("JSON")
}

fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(aud) => vec![aud.clone()],
        Value::Array(auds) => auds
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn last_scope(idp: &DevIdp) -> String {
    idp.user_token_scopes().last().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_audience_comes_from_a_narrowed_refresh_where_the_exchange_is_refused() {
    let idp = idp().await;
    idp.faults().set_refuse_public_client_exchange(true);
    let runtime = runtime_with_scopes(&idp, MAPPING).await;
    log_in(&runtime).await;
    // The login asked for the audience scope, so the grant covers it; the login's own
    // token is the whole grant.
    assert!(
        last_scope(&idp)
            .split(' ')
            .any(|s| s == DEMO_AUDIENCE_SCOPE),
        "{:?}",
        idp.user_token_scopes()
    );

    let (exchanges, refreshes) = (idp.stats().token_exchange, idp.stats().token_refresh);
    let answer = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&answer, StatusType::Ok);
    let token = answer.token.as_ref().expect("a token");
    let narrowed = claims(token.expose());
    assert!(
        audiences(&narrowed).iter().any(|a| a == AUDIENCE),
        "{narrowed}"
    );
    assert_eq!(narrowed["sub"], DEMO_USER_SUB);
    assert_eq!(narrowed["azp"], USER_CLIENT);
    assert!(narrowed["cnf"]["jkt"].is_string(), "DPoP-bound: {narrowed}");
    assert_eq!(last_scope(&idp), format!("openid {DEMO_AUDIENCE_SCOPE}"));
    assert_eq!(idp.stats().token_exchange, exchanges, "no exchange tried");
    assert_eq!(idp.stats().token_refresh, refreshes + 1);

    // Cached: a second request costs nothing at the IDP.
    let again = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&again, StatusType::Ok);
    assert_eq!(idp.stats().token_refresh, refreshes + 1);

    // The resource on 127.0.0.1 takes it (it checks signature, aud demo-api and the DPoP proof).
    let echoed = post(
        &runtime,
        CreateHttpCommonRequest::new(format!("{}/demo/echo", idp.base_url()), HttpMethod::Get)
            .with_audience(AUDIENCE),
    )
    .await;
    assert_status(&echoed, StatusType::Ok);
    assert_eq!(echoed.http_status, Some(200), "{echoed:#?}");

    // Restart + offline login: the user's own refresh asks for `openid` only, so the internal
    // token carries no API audience; the rotated refresh token still covers the audience scope
    // (a refresh keeps the grant's whole scope), so the next audience token comes as before.
    assert_status(&post(&runtime, RestartEvent::new()).await, StatusType::Ok);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_eq!(last_scope(&idp), "openid");
    let after = post(
        &runtime,
        ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
    )
    .await;
    assert_status(&after, StatusType::Ok);
    let claims_after = claims(after.token.as_ref().expect("a token").expose());
    assert!(audiences(&claims_after).iter().any(|a| a == AUDIENCE));
    assert_eq!(idp.stats().token_exchange, exchanges);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_audience_is_refused_with_what_to_configure_and_the_user_stays_logged_in() {
    let idp = idp().await;
    idp.faults().set_refuse_public_client_exchange(true);
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    log_in(&runtime).await;
    let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_ne!(refused.info.status, StatusType::Ok);
    assert!(refused.token.is_none());
    let description = &refused.info.error_description;
    assert!(description.contains("not enabled"), "{description}");
    assert!(
        description.contains("configuration.audienceScopes") && description.contains(USER_CLIENT),
        "says what the app and the admin must configure: {description}"
    );
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    // Without the fault, the same unmapped audience is exchanged (RFC 8693), as at
    // node-oidc-provider: the mapping changes nothing for audiences it does not name.
    idp.faults().set_refuse_public_client_exchange(false);
    let exchanged = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&exchanged, StatusType::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_brings_another_audience_is_invalid_token_and_nothing_is_cached() {
    let idp = idp().await;
    idp.faults().set_refuse_public_client_exchange(true);
    // The app maps `other-api` to the scope that brings demo-api (a wrong mapping), and
    // `demo-api` to `profile` (a scope that brings no audience at all).
    let runtime = runtime_with_scopes(&idp, "other-api=demo-api-audience, demo-api=profile").await;
    log_in(&runtime).await;
    for audience in ["other-api", AUDIENCE] {
        let refreshes = idp.stats().token_refresh;
        let refused = post(&runtime, ExchangeIamTokenEvent::new(audience)).await;
        assert_status_code(
            &refused,
            StatusType::InvalidToken,
            error_code::INVALID_TOKEN,
        );
        assert!(refused.token.is_none());
        assert!(
            refused
                .info
                .error_description
                .contains("nothing was cached"),
            "{refused:#?}"
        );
        // Asked again: nothing was cached, so the IDP is asked again (and refused again).
        let again = post(&runtime, ExchangeIamTokenEvent::new(audience)).await;
        assert_eq!(again.info.status, StatusType::InvalidToken);
        assert_eq!(idp.stats().token_refresh, refreshes + 2, "{audience}");
    }
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    // The rotations stored along the way left a working refresh token.
    assert_status(&post(&runtime, RestartEvent::new()).await, StatusType::Ok);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_token_that_fails_verification_is_invalid_token_and_not_cached() {
    let idp = idp().await;
    idp.faults().set_refuse_public_client_exchange(true);
    let runtime = runtime_with_scopes(&idp, MAPPING).await;
    log_in(&runtime).await;
    // The refresh is answered with tokens signed by a key the IDP does not publish.
    idp.faults().set_sign_with_foreign_key(true);
    let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status_code(
        &refused,
        StatusType::InvalidToken,
        error_code::INVALID_TOKEN,
    );
    assert!(refused.token.is_none());
    idp.faults().set_sign_with_foreign_key(false);
    // Nothing cached: the next request refreshes again (with the rotated refresh token the
    // refused answer carried, stored before the token was looked at) and gets a good token.
    let refreshes = idp.stats().token_refresh;
    let answer = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&answer, StatusType::Ok);
    assert_eq!(idp.stats().token_refresh, refreshes + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_token_for_another_user_or_client_is_invalid_token() {
    let idp = idp().await;
    idp.faults().set_refuse_public_client_exchange(true);
    let runtime = runtime_with_scopes(&idp, MAPPING).await;
    log_in(&runtime).await;
    // Properly signed by the IDP, for demo-api, but naming someone else.
    for (claim, value) in [("sub", "someone-else"), ("azp", "another-client")] {
        idp.faults()
            .set_user_access_token_override(Some(serde_json::Map::from_iter([(
                claim.to_owned(),
                Value::from(value),
            )])));
        let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
        assert_status_code(
            &refused,
            StatusType::InvalidToken,
            error_code::INVALID_TOKEN,
        );
        assert!(
            refused
                .info
                .error_description
                .contains(&format!("({claim})")),
            "{refused:#?}"
        );
        assert!(refused.token.is_none());
    }
    idp.faults().set_user_access_token_override(None);
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
}

/// The app adds the mapping in an update; its user logged in before, so the grant lacks the
/// scope: the dev IDP refuses the wider refresh (`invalid_scope`; Keycloak drops the scope
/// silently, and the token's `aud` check refuses it). Either way a clear status, nothing
/// cached, and a new login fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_logged_in_before_the_mapping_is_told_to_log_in_again() {
    let idp = idp().await;
    idp.faults().set_refuse_public_client_exchange(true);
    let dir = tempfile::tempdir().unwrap();
    let directory = || {
        MasterController::start(fast_config(
            &idp.base_url(),
            StoreLocation::Directory(dir.path().to_path_buf()),
        ))
        .expect("runtime starts")
    };
    let before = directory();
    assert_status(&start(&before).await, StatusType::Ok);
    log_in(&before).await;
    before.shutdown();

    let updated = directory();
    assert_status(
        &post(&updated, start_with_scopes(MAPPING)).await,
        StatusType::Ok,
    );
    assert_status(
        &post(&updated, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let refused = post(&updated, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status_code(
        &refused,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
    assert_eq!(refused.info.next_action, Some(NextAction::LogIn));
    assert!(refused.token.is_none());
    // The refusal burned no refresh token: the user is still logged in, and a new login
    // (which asks for the scope) gets the audience token.
    assert_eq!(state_of(&updated).await, SdkState::LoggedIn);
    log_in(&updated).await;
    assert_status(
        &post(&updated, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_audience_scopes_are_refused_by_name_and_nothing_starts() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    for bad in [
        "demo-api",
        "=demo-api-audience",
        "demo-api=",
        "demo-api=a b",
        "demo-api=openid",
        "demo-api=x, demo-api=y",
        "demo api=x",
        "demo-api=x\"y",
        "demo-api=x,,",
        &(0..=MAX_AUDIENCE_SCOPES)
            .map(|n| format!("a{n}=s{n}"))
            .collect::<Vec<_>>()
            .join(","),
        &format!("demo-api={}", "s".repeat(MAX_IDENTIFIER_BYTES + 1)),
    ] {
        let refused = post(&runtime, start_with_scopes(bad)).await;
        assert_status(&refused, StatusType::InvalidParameter);
        assert!(
            refused
                .info
                .error_description
                .contains("configuration.audienceScopes"),
            "{bad}: {refused:?}"
        );
    }
    // Oversized as a whole: the configuration's value limit.
    let oversized = format!("demo-api={}", "s".repeat(MAX_CONFIGURATION_VALUE_BYTES));
    assert_status(
        &post(&runtime, start_with_scopes(&oversized)).await,
        StatusType::InvalidParameter,
    );
    // None of them started the runtime.
    assert_status(
        &post(&runtime, start_with_scopes(MAPPING)).await,
        StatusType::Ok,
    );
}
