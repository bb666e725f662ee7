//! Identified users end to end against the dev IDP, through the runtime: authorize → code →
//! logged in → exchange → HTTP → restart → offline login via the rotated refresh token →
//! step-up → logout → offline login refused; then the faults around it (a replayed refresh
//! token, a failing refresh, an administrator's revocation, the IDP gone), the upgrade of an
//! anonymous device, PAR and no PAR. The IDP-agnostic bodies (lifecycle halves, state,
//! redirect and PKCE checks) live in `mc_testkit::identified` and run here and against
//! node-oidc-provider in `mc-interop/tests/node_identified.rs`.
//!
//! Whether the IDP really refused an old refresh token is proven with a copy of the store
//! taken before the rotation: a second runtime on the copy presents the old token.

use std::path::Path;

use mc_devidp::{DevIdp, ACR_STRONG, DEMO_USER_SUB};
use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_testkit::identified::*;
use mc_testkit::*;

fn demo_user() -> UserIdentifier {
    UserIdentifier::new(TENANT, DEMO_USER_SUB)
}

fn directory_runtime(idp: &DevIdp, dir: &Path) -> MasterController {
    MasterController::start(fast_config(
        &idp.base_url(),
        StoreLocation::Directory(dir.to_path_buf()),
    ))
    .expect("runtime starts")
}

/// A copy of a store directory (the redb file and its key file) as it is now.
fn snapshot(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

/// A new runtime on `dir` (a snapshot) tries the offline login with the refresh token stored there.
async fn offline_login_from(idp: &DevIdp, dir: &Path) -> OfflineLoginResultEvent {
    let runtime = directory_runtime(idp, dir);
    assert_status(&start(&runtime).await, StatusType::Ok);
    post(&runtime, OfflineLoginEvent::new()).await
}

fn assert_code<R: Clone + Into<Event>>(answer: &R, status: StatusType, code: u32) {
    let event: Event = answer.clone().into();
    let info = event.result_info().expect("a result");
    assert_eq!((info.status, info.error_code), (status, code), "{event:#?}");
}

async fn echo(idp: &DevIdp, runtime: &MasterController, path: &str) -> CreateHttpCommonResultEvent {
    post(
        runtime,
        CreateHttpCommonRequest::new(format!("{}{path}", idp.base_url()), HttpMethod::Get)
            .with_audience(AUDIENCE),
    )
    .await
}

async fn users(runtime: &MasterController) -> Vec<UserIdentifier> {
    users_after_restart(runtime).await
}

#[tokio::test]
async fn the_identified_lifecycle_against_the_dev_idp() {
    let idp = idp().await;
    let pages = DevIdpPages(&idp);
    let dir = tempfile::tempdir().unwrap();
    let runtime = directory_runtime(&idp, dir.path());
    assert_status(&start(&runtime).await, StatusType::Ok);
    let recorder = Recorder::attach(&runtime);

    // authorize → code → logged in → exchange → restart → offline login twice (the body
    // shared with node-oidc-provider), each offline login one refresh at the IDP
    let refreshes = idp.stats().token_refresh;
    log_in_and_use(&pages, &runtime).await;
    assert_eq!(idp.stats().par, 1, "PAR is advertised, so used");
    assert_eq!(idp.stats().token_refresh, refreshes + 2);

    // HTTP through the runtime: the resource sees the user
    let http = echo(&idp, &runtime, "/demo/echo").await;
    assert_eq!(http.http_status, Some(200), "{http:#?}");
    let body: serde_json::Value = serde_json::from_slice(&http.response).unwrap();
    assert_eq!(body["sub"], DEMO_USER_SUB);

    // step-up: the resource wants acr 2; the result says so and the pushed event says how
    let http = echo(&idp, &runtime, "/demo/step-up").await;
    assert_eq!(http.http_status, Some(401), "{http:#?}");
    assert_eq!(http.error_code, error_code::STEP_UP_REQUIRED);
    assert_eq!(http.next_action, Some(NextAction::LogIn));
    let Event::IdpLoginRequiredEvent(wanted) = recorder
        .wait_for("IdpLoginRequiredEvent", |e| {
            matches!(e, Event::IdpLoginRequiredEvent(_))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(wanted.user_identifier, demo_user());
    assert_eq!(wanted.acr_values.as_deref(), Some(ACR_STRONG));
    assert!(wanted.max_age.is_some(), "{wanted:#?}");
    let mut stronger = authorization_request();
    stronger.acr_values = wanted.acr_values.clone();
    stronger.max_age = wanted.max_age;
    let answer = log_in_with(&runtime, stronger, code_event).await;
    assert_status(&answer, StatusType::Ok);
    let http = echo(&idp, &runtime, "/demo/step-up").await;
    assert_eq!(http.http_status, Some(200), "{http:#?}");
    let body: serde_json::Value = serde_json::from_slice(&http.response).unwrap();
    assert_eq!(body["acr"], ACR_STRONG);

    // logout: refused offline, and the refresh token revoked at the IDP (a copy of the
    // store taken before the logout still holds it; the IDP refuses it)
    let before_logout = snapshot(dir.path());
    let revocations = idp.stats().revocation;
    log_out(&runtime).await;
    assert_eq!(idp.stats().revocation, revocations + 1);
    let revoked = offline_login_from(&idp, before_logout.path()).await;
    assert_code(
        &revoked,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
}

#[tokio::test]
async fn a_state_is_used_once_and_must_be_known() {
    let idp = idp().await;
    state_is_used_once_and_must_be_known(&DevIdpPages(&idp)).await;
}

#[tokio::test]
async fn a_redirect_that_is_not_the_requests_is_refused_and_nothing_stored() {
    let idp = idp().await;
    a_redirect_that_is_not_the_requests_is_refused(&DevIdpPages(&idp)).await;
}

#[tokio::test]
async fn a_code_redeemed_with_another_requests_verifier_is_refused_by_the_dev_idp() {
    let idp = idp().await;
    a_code_redeemed_with_another_requests_verifier_is_refused(&DevIdpPages(&idp)).await;
}

#[tokio::test]
async fn an_old_refresh_token_is_refused_after_rotation_and_its_reuse_ends_the_login() {
    let idp = idp().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = directory_runtime(&idp, dir.path());
    assert_status(&start(&runtime).await, StatusType::Ok);
    log_in(&runtime).await;
    let before_rotation = snapshot(dir.path());
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );

    // the copy holds the token the rotation replaced: the IDP refuses it ...
    let replayed = offline_login_from(&idp, before_rotation.path()).await;
    assert_code(
        &replayed,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
    // ... and, seeing it reused, revokes the login's family: the current one goes too
    post(&runtime, RestartEvent::new()).await;
    let after = post(&runtime, OfflineLoginEvent::new()).await;
    assert_code(
        &after,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
    assert_eq!(users(&runtime).await, vec![demo_user()], "the user stays");
}

#[tokio::test]
async fn a_failing_refresh_asks_for_a_web_login_and_loses_nothing() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let recorder = Recorder::attach(&runtime);
    log_in(&runtime).await;
    post(&runtime, RestartEvent::new()).await;
    idp.faults().set_fail_next_refresh(true);
    let answer = post(&runtime, OfflineLoginEvent::new()).await;
    assert_code(
        &answer,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
    assert_eq!(answer.info.next_action, Some(NextAction::LogIn));
    let Event::IdpLoginRequiredEvent(pushed) = recorder
        .wait_for("IdpLoginRequiredEvent", |e| {
            matches!(e, Event::IdpLoginRequiredEvent(_))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(pushed.user_identifier, demo_user());
    // nothing lost: the stored token still works once the IDP does
    assert_eq!(users(&runtime).await, vec![demo_user()]);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
}

#[tokio::test]
async fn an_administrators_revocation_asks_for_a_web_login() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    log_in(&runtime).await;
    assert!(idp.revoke_user_tokens(TENANT, DEMO_USER_SUB) > 0);
    // the access token in use is revoked too
    let http = echo(&idp, &runtime, "/demo/echo").await;
    assert_ne!(http.http_status, Some(200), "{http:#?}");
    post(&runtime, RestartEvent::new()).await;
    let answer = post(&runtime, OfflineLoginEvent::new()).await;
    assert_code(
        &answer,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
    assert_eq!(users(&runtime).await, vec![demo_user()]);
    // a new login at the page works
    log_in(&runtime).await;
}

#[tokio::test]
async fn the_idp_stopped_during_refresh_is_not_reachable_and_keeps_the_token() {
    let idp = idp().await;
    let address = idp.local_addr();
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    log_in(&runtime).await;
    post(&runtime, RestartEvent::new()).await;
    idp.shutdown().await;
    let answer = post(&runtime, OfflineLoginEvent::new()).await;
    assert_eq!(answer.info.status, StatusType::NotReachable, "{answer:#?}");
    assert_eq!(users(&runtime).await, vec![demo_user()]);
    // Back on the same address (logins live in memory, so the token is unknown now): the
    // refusal is now the IDP's, not the network's.
    let _back = idp_on(address).await;
    let answer = post(&runtime, OfflineLoginEvent::new()).await;
    assert_eq!(answer.info.status, StatusType::LoginRequired, "{answer:#?}");
}

async fn idp_on(address: std::net::SocketAddr) -> DevIdp {
    DevIdp::start(address, mc_devidp::DevIdpConfig::default())
        .await
        .expect("dev IDP restarts on its address")
}

/// The `jkt` of a fresh IAM token of the logged-in user: the device key it is bound to.
async fn bound_key(runtime: &MasterController) -> String {
    let exchanged = post(
        runtime,
        ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
    )
    .await;
    assert_status(&exchanged, StatusType::Ok);
    let token = exchanged.token.expect("an IAM token");
    let jwt = mc_jose::Jwt::decode_unverified(token.expose()).unwrap();
    jwt.claims["cnf"]["jkt"]
        .as_str()
        .expect("a DPoP-bound token (cnf.jkt)")
        .to_string()
}

/// Anonymous → identified: the registration deleted at the IDP unless `keep_anonymous`, the
/// device key kept, whether or not the anonymous user is logged in when the app asks.
async fn upgrade(keep_anonymous: bool, anonymous_logged_in: bool) {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let anonymous = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("the anonymous user");
    let device_key = bound_key(&runtime).await;
    let anonymous_client = idp
        .client_of_subject(TENANT, &anonymous.user_id)
        .expect("the anonymous user's registration");
    assert!(idp.client_exists(TENANT, &anonymous_client));
    if !anonymous_logged_in {
        post(&runtime, RestartEvent::new()).await;
        assert_ne!(state_of(&runtime).await, SdkState::LoggedIn);
    }
    let answer = log_in_with(&runtime, authorization_request(), |redirect| {
        let mut event = code_event(redirect);
        event.keep_anonymous = Some(keep_anonymous);
        event
    })
    .await;
    assert_status(&answer, StatusType::Ok);
    assert_eq!(answer.replaced_user_identifier, Some(anonymous.clone()));
    assert_eq!(
        idp.client_exists(TENANT, &anonymous_client),
        keep_anonymous,
        "keepAnonymous {keep_anonymous}"
    );
    assert_eq!(
        bound_key(&runtime).await,
        device_key,
        "the device key is kept"
    );
    assert_eq!(users(&runtime).await, vec![demo_user()]);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_eq!(bound_key(&runtime).await, device_key);
}

#[tokio::test]
async fn an_upgrade_deletes_the_anonymous_registration_at_the_idp() {
    upgrade(false, true).await;
}

#[tokio::test]
async fn an_upgrade_keeps_the_device_key_of_an_anonymous_user_not_logged_in() {
    upgrade(false, false).await;
}

#[tokio::test]
async fn an_upgrade_of_a_password_protected_anonymous_user_not_logged_in_asks_for_its_login_first()
{
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let enrolled = post(
        &runtime,
        EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT)
            .with_password("anonymous-pw-1"),
    )
    .await;
    assert_status(&enrolled, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    let refused = post(&runtime, authorization_request()).await;
    assert_code(
        &refused,
        StatusType::InvalidState,
        error_code::INVALID_STATE,
    );
    assert_eq!(
        refused.info.next_action,
        Some(NextAction::SendFirst {
            request_type: "OfflineLoginEvent".into()
        })
    );
    assert!(refused.authorization_url.is_empty());
}

#[tokio::test]
async fn an_upgrade_with_keep_anonymous_keeps_the_registration() {
    upgrade(true, true).await;
}

#[tokio::test]
async fn a_biometric_login_prompts_once() {
    let idp = idp().await;
    let platform = std::sync::Arc::new(mc_store::SoftwareBiometric::in_memory());
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    config.biometric = Some(platform.clone());
    let runtime = MasterController::start(config).unwrap();
    assert_status(&start(&runtime).await, StatusType::Ok);
    let answer = log_in_with(&runtime, authorization_request(), |redirect| {
        let mut event = code_event(redirect);
        event.authentication_mode = AuthenticationMode::Biometric;
        event
    })
    .await;
    assert_status(&answer, StatusType::Ok);
    assert_eq!(platform.prompts().len(), 1, "{:?}", platform.prompts());
    // the rotation at the next offline login needs no second prompt either
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_eq!(platform.prompts().len(), 2, "{:?}", platform.prompts());
}

#[tokio::test]
async fn without_par_the_whole_request_is_in_the_url_and_the_login_works() {
    let idp = idp_with(mc_devidp::DevIdpConfig {
        advertise_par: false,
        ..Default::default()
    })
    .await;
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let request = authorize(&runtime, authorization_request()).await;
    let url = reqwest::Url::parse(&request.authorization_url).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("code_challenge_method").map(String::as_str),
        Some("S256")
    );
    assert!(query.contains_key("code_challenge") && query.contains_key("nonce"));
    assert!(query.contains_key("dpop_jkt"), "RFC 9449 §10: {query:?}");
    assert_eq!(query.get("state"), Some(&request.state));
    assert!(!query.contains_key("request_uri"));
    assert_eq!(idp.stats().par, 0);
    let redirect = demo_user_logs_in(&request.authorization_url).await;
    assert_status(&post(&runtime, code_event(&redirect)).await, StatusType::Ok);

    // PKCE downgrade: the same request with the challenge stripped is refused by the IDP
    // (PKCE is required), so no code exists to redeem.
    let request = authorize(&runtime, authorization_request()).await;
    let mut stripped = reqwest::Url::parse(&request.authorization_url).unwrap();
    let kept: Vec<(String, String)> = stripped
        .query_pairs()
        .into_owned()
        .filter(|(name, _)| !name.starts_with("code_challenge"))
        .collect();
    stripped.query_pairs_mut().clear().extend_pairs(kept);
    let answer =
        mc_devidp::form_login(&browser(), stripped.as_str(), "demo", "demo-password", None).await;
    match answer {
        Ok(redirect) => {
            assert!(redirect.contains("error="), "{redirect}");
            let refused = post(&runtime, code_event(&redirect)).await;
            assert_ne!(refused.info.status, StatusType::Ok, "{refused:#?}");
        }
        Err(error) => assert!(
            matches!(error, mc_devidp::FormLoginError::NoForm { .. }),
            "{error}"
        ),
    }
}

#[tokio::test]
async fn an_anonymous_user_whose_credential_was_cleared_does_not_stop_a_login() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let cleared = post(
        &runtime,
        ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearOffline),
    )
    .await;
    assert_status(&cleared, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    // no device key to keep: a new one, and the login replaces the cleared user
    let answer = log_in(&runtime).await;
    assert!(answer.replaced_user_identifier.is_some(), "{answer:#?}");
    assert_eq!(users(&runtime).await, vec![demo_user()]);
}
