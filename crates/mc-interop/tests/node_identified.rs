//! Identified users against node-oidc-provider 8.x as it ships (its own login and consent
//! pages, PAR, RFC 9207 `iss`, DPoP, PKCE required for the public native client `mc-native`
//! of config.mjs): the lifecycle authorize → code → logged in → exchange → restart → offline
//! login via the refresh token → logout (CLEAR_ALL + Restart) → offline login refused, and
//! the hostile cases of issue 10, each a clear status with the store left as it was.
//!
//! IDP-agnostic where it can be: the lifecycle and the state, redirect and PKCE checks are
//! the bodies of `mc_testkit::identified`, run here through [`LoginPages`] for this IDP and
//! against the dev IDP in `mc-runtime/tests/identified.rs`.

use std::time::{Duration, Instant};

use mc_events::*;
use mc_interop::node::{NodeOidcProvider, NodeProfile};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_testkit::identified::{self as shared, LoginPages};
use mc_testkit::Recorder;

const TENANT: &str = "demo";
const NATIVE_CLIENT: &str = "mc-native";
/// The registered redirect is `http://127.0.0.1/callback`: any loopback port (RFC 8252 §7.3).
const REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";
const WAIT: Duration = Duration::from_secs(30);

struct Idp(NodeOidcProvider);

impl Idp {
    async fn start() -> Idp {
        Idp(NodeOidcProvider::start_with(NodeProfile::Es256Jwt)
            .await
            .expect("node-oidc-provider"))
    }

    /// Logs `user` in at the IDP's page; the redirect URL the browser would be sent to.
    async fn log_in(&self, authorization_url: &str, user: &str) -> String {
        self.0
            .log_in_through_pages(authorization_url, user, "any password", false)
            .await
            .expect("the login pages")
    }

    async fn cancel(&self, authorization_url: &str) -> String {
        self.0
            .log_in_through_pages(authorization_url, "", "", true)
            .await
            .expect("the login pages")
    }

    fn runtime(&self) -> MasterController {
        let mut config = RuntimeConfig::new(self.0.issuer(), StoreLocation::Memory);
        config.oidc.issuer_template = "{server}".into();
        config.oidc.clock_tolerance_secs = 15;
        config.store_settings.kdf = mc_store::KdfSettings::for_tests(1_000);
        MasterController::start(config).expect("a runtime")
    }
}

impl LoginPages for Idp {
    async fn started_runtime(&self) -> MasterController {
        started(self).await
    }

    fn authorization_request(&self) -> CreateAuthorizationRequestEvent {
        CreateAuthorizationRequestEvent::new(TENANT, NATIVE_CLIENT, REDIRECT_URI)
    }

    fn code_event(&self, redirect_url: &str) -> SetAuthorisationCodeEvent {
        code_event(redirect_url)
    }

    async fn log_in(&self, authorization_url: &str) -> String {
        Idp::log_in(self, authorization_url, "alice").await
    }

    fn user(&self) -> UserIdentifier {
        UserIdentifier::new(TENANT, "alice")
    }

    fn audience(&self) -> &str {
        "demo-api"
    }
}

async fn post<E: RequestType>(runtime: &MasterController, event: E) -> E::Result {
    runtime.post_with_timeout(event, WAIT).await
}

fn assert_status<R: Clone + Into<Event>>(answer: &R, status: StatusType, code: u32) {
    let event: Event = answer.clone().into();
    let info = event.result_info().expect("a result");
    assert_eq!((info.status, info.error_code), (status, code), "{event:#?}");
}

async fn started(idp: &Idp) -> MasterController {
    let runtime = idp.runtime();
    let start = post(&runtime, StartEvent::new()).await;
    assert_eq!(start.info.status, StatusType::Ok);
    runtime
}

async fn authorization(runtime: &MasterController) -> CreateAuthorizationRequestResultEvent {
    let answer = post(
        runtime,
        CreateAuthorizationRequestEvent::new(TENANT, NATIVE_CLIENT, REDIRECT_URI),
    )
    .await;
    assert_eq!(answer.info.status, StatusType::Ok, "{answer:#?}");
    answer
}

fn code_event(redirect_url: &str) -> SetAuthorisationCodeEvent {
    SetAuthorisationCodeEvent::with_redirect_url(
        TENANT,
        NATIVE_CLIENT,
        AuthenticationMode::No,
        redirect_url,
    )
}

async fn users(runtime: &MasterController) -> Vec<UserIdentifier> {
    let restart = post(runtime, RestartEvent::new()).await;
    restart
        .user_details_list
        .into_iter()
        .map(|u| u.user_identifier)
        .collect()
}

/// Logs `user` in: authorization request, the IDP's pages, SetAuthorisationCode.
async fn logged_in(idp: &Idp, runtime: &MasterController, user: &str) -> StatusResultEvent {
    let request = authorization(runtime).await;
    let redirect = idp.log_in(&request.authorization_url, user).await;
    post(runtime, code_event(&redirect)).await
}

#[tokio::test]
async fn the_identified_lifecycle_against_node_oidc_provider() {
    let idp = Idp::start().await;
    let runtime = started(&idp).await;

    // PAR is advertised: the URL carries only client_id and request_uri.
    let request = authorization(&runtime).await;
    assert!(
        request.authorization_url.contains("request_uri="),
        "{}",
        request.authorization_url
    );
    assert!(!request.authorization_url.contains("code_challenge"));

    let times = shared::lifecycle(&idp, &runtime).await;
    let (create_time, code_time, refresh_time) = (times.authorize, times.code, times.offline_login);

    // Baseline: plain reqwest doing the HTTP of CreateAuthorizationRequest (discovery + PAR).
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(mc_oidc::tls_client_config().unwrap())
        .build()
        .unwrap();
    let timer = Instant::now();
    let discovery: serde_json::Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            idp.0.issuer()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let par = discovery["pushed_authorization_request_endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let pushed = http
        .post(par)
        .form(&[
            ("response_type", "code"),
            ("client_id", NATIVE_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid offline_access"),
            ("prompt", "consent"),
            ("state", "plain-state-0123456789"),
            ("nonce", "plain-nonce-0123456789"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert!(pushed.status().is_success());
    let plain_time = timer.elapsed();
    eprintln!(
        "timings: CreateAuthorizationRequest {create_time:?} (plain reqwest discovery + PAR {plain_time:?}), \
         SetAuthorisationCode {code_time:?} (redeem + JWKS + ID token + store + unlock), \
         OfflineLogin via refresh {refresh_time:?}"
    );

    // A new login at the page works again.
    let again = logged_in(&idp, &runtime, "alice").await;
    assert_status(&again, StatusType::Ok, 0);
}

#[tokio::test]
async fn a_state_is_used_once_and_must_be_known() {
    shared::state_is_used_once_and_must_be_known(&Idp::start().await).await;
}

#[tokio::test]
async fn a_redirect_that_is_not_the_requests_is_refused_and_nothing_stored() {
    shared::a_redirect_that_is_not_the_requests_is_refused(&Idp::start().await).await;
}

#[tokio::test]
async fn a_code_redeemed_with_another_requests_verifier_is_refused() {
    shared::a_code_redeemed_with_another_requests_verifier_is_refused(&Idp::start().await).await;
}

#[tokio::test]
async fn the_idps_error_page_is_a_status_not_a_code() {
    let idp = Idp::start().await;
    let runtime = started(&idp).await;
    let request = authorization(&runtime).await;
    let redirect = idp.cancel(&request.authorization_url).await;
    assert!(redirect.contains("error=access_denied"), "{redirect}");
    let answer = post(&runtime, code_event(&redirect)).await;
    // node says "End-User aborted interaction": a cancel
    assert_status(
        &answer,
        StatusType::UserCancel,
        error_code::AUTHORIZATION_CANCELLED,
    );
    assert!(users(&runtime).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_revoked_refresh_token_asks_for_a_web_login_and_keeps_the_user() {
    let idp = Idp::start().await;
    let runtime = started(&idp).await;
    let recorder = Recorder::attach(&runtime);
    assert_status(&logged_in(&idp, &runtime, "erin").await, StatusType::Ok, 0);
    idp.0.revoke_refresh_tokens().await.unwrap();
    post(&runtime, RestartEvent::new()).await;
    let answer = post(&runtime, OfflineLoginEvent::new()).await;
    assert_status(
        &answer,
        StatusType::LoginRequired,
        error_code::REFRESH_TOKEN_REJECTED,
    );
    assert_eq!(answer.info.next_action, Some(NextAction::LogIn));
    let pushed = recorder
        .wait_for("IdpLoginRequiredEvent", |e| {
            matches!(e, Event::IdpLoginRequiredEvent(_))
        })
        .await;
    let Event::IdpLoginRequiredEvent(pushed) = pushed else {
        unreachable!()
    };
    assert_eq!(pushed.user_identifier, UserIdentifier::new(TENANT, "erin"));
    assert_eq!(
        users(&runtime).await,
        vec![UserIdentifier::new(TENANT, "erin")]
    );
}

#[tokio::test]
async fn the_idp_down_during_refresh_is_not_reachable_and_keeps_the_token() {
    let idp = Idp::start().await;
    let runtime = started(&idp).await;
    assert_status(&logged_in(&idp, &runtime, "frank").await, StatusType::Ok, 0);
    post(&runtime, RestartEvent::new()).await;
    drop(idp);
    let answer = post(&runtime, OfflineLoginEvent::new()).await;
    assert_eq!(answer.info.status, StatusType::NotReachable, "{answer:#?}");
    assert_eq!(
        users(&runtime).await,
        vec![UserIdentifier::new(TENANT, "frank")]
    );
}

#[tokio::test]
async fn an_anonymous_device_is_upgraded_to_the_identified_user() {
    let idp = Idp::start().await;
    let runtime = started(&idp).await;
    let enrolled = post(
        &runtime,
        EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, "AnonymousUserEnrollment"),
    )
    .await;
    assert_status(&enrolled, StatusType::Ok, 0);
    let anonymous = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("the anonymous user");
    let answer = logged_in(&idp, &runtime, "grace").await;
    assert_status(&answer, StatusType::Ok, 0);
    assert_eq!(answer.replaced_user_identifier, Some(anonymous.clone()));
    // deleted at the IDP (keepAnonymous not set) and locally
    assert!(!idp.0.client_registered(&anonymous.user_id).await.unwrap());
    assert_eq!(
        users(&runtime).await,
        vec![UserIdentifier::new(TENANT, "grace")]
    );
}
