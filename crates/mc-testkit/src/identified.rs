//! Identified users against the dev IDP: an authorization request through the runtime, the
//! dev IDP's login form posted as a browser would ([`mc_devidp::form_login`]), and the
//! redirect handed back with SetAuthorisationCodeEvent.

use mc_devidp::{DEMO_APP_CLIENT, DEMO_USER, DEMO_USER_OTP, DEMO_USER_PASSWORD};
use mc_events::*;
use mc_runtime::MasterController;

use crate::{assert_status, post, TENANT};

/// The dev IDP's public native client.
pub const USER_CLIENT: &str = DEMO_APP_CLIENT;
/// Registered as `http://127.0.0.1/callback`: any loopback port (RFC 8252 §7.3).
pub const REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";

/// An HTTP client that does not follow redirects, as [`mc_devidp::form_login`] needs.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        // rustls with the ring provider, as everywhere in this workspace
        .tls_backend_preconfigured(mc_oidc::tls_client_config().expect("a TLS config"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// The authorization request of [`USER_CLIENT`] in [`TENANT`] to [`REDIRECT_URI`].
pub fn authorization_request() -> CreateAuthorizationRequestEvent {
    CreateAuthorizationRequestEvent::new(TENANT, USER_CLIENT, REDIRECT_URI)
}

/// Posts `request`, asserting OK.
pub async fn authorize(
    runtime: &MasterController,
    request: CreateAuthorizationRequestEvent,
) -> CreateAuthorizationRequestResultEvent {
    let answer = post(runtime, request).await;
    assert_status(&answer, StatusType::Ok);
    answer
}

/// The demo user fills in the login form of `authorization_url` (with the one-time code when
/// the page asks for it); the redirect URL the browser is sent to.
pub async fn demo_user_logs_in(authorization_url: &str) -> String {
    mc_devidp::form_login(
        &browser(),
        authorization_url,
        DEMO_USER,
        DEMO_USER_PASSWORD,
        Some(DEMO_USER_OTP),
    )
    .await
    .expect("the dev IDP's login form")
}

/// SetAuthorisationCodeEvent with the whole redirect URL, mode NO.
pub fn code_event(redirect_url: &str) -> SetAuthorisationCodeEvent {
    SetAuthorisationCodeEvent::with_redirect_url(
        TENANT,
        USER_CLIENT,
        AuthenticationMode::No,
        redirect_url,
    )
}

/// The whole login of the demo user: `request` → login form → `code` (built from the redirect
/// URL by the caller, e.g. [`code_event`]); the SetAuthorisationCode result, not asserted.
pub async fn log_in_with(
    runtime: &MasterController,
    request: CreateAuthorizationRequestEvent,
    code: impl FnOnce(&str) -> SetAuthorisationCodeEvent,
) -> StatusResultEvent {
    let authorization = authorize(runtime, request).await;
    let redirect = demo_user_logs_in(&authorization.authorization_url).await;
    post(runtime, code(&redirect)).await
}

/// The demo user logged in with mode NO (asserted OK).
pub async fn log_in(runtime: &MasterController) -> StatusResultEvent {
    let answer = log_in_with(runtime, authorization_request(), code_event).await;
    assert_status(&answer, StatusType::Ok);
    answer
}

// ---- IDP-agnostic bodies: run against the dev IDP (mc-runtime/tests/identified.rs) and
// ---- node-oidc-provider (mc-interop/tests/node_identified.rs) alike

/// An IDP whose login pages a test can get through, and a runtime set up for it.
#[allow(async_fn_in_trait)]
pub trait LoginPages {
    /// A runtime on a memory store talking to this IDP, StartEvent answered OK.
    async fn started_runtime(&self) -> MasterController;
    /// The authorization request of this IDP's public native client.
    fn authorization_request(&self) -> CreateAuthorizationRequestEvent;
    /// SetAuthorisationCodeEvent (mode NO) for the same client, with the whole redirect URL.
    fn code_event(&self, redirect_url: &str) -> SetAuthorisationCodeEvent;
    /// The test user passes the login page(s) of `authorization_url`; the redirect URL.
    async fn log_in(&self, authorization_url: &str) -> String;
    /// Who the test user is once logged in (`sub` as userId).
    fn user(&self) -> UserIdentifier;
    /// An audience the user's access token may be exchanged for (RFC 8693).
    fn audience(&self) -> &str;
}

/// Asserts a result's status and error code together.
pub fn assert_status_code<R: Clone + Into<Event>>(answer: &R, status: StatusType, code: u32) {
    let event: Event = answer.clone().into();
    let info = event.result_info().expect("a result");
    assert_eq!((info.status, info.error_code), (status, code), "{event:#?}");
}

/// The users Restart lists (it also forgets the session and the pending requests).
pub async fn users_after_restart(runtime: &MasterController) -> Vec<UserIdentifier> {
    post(runtime, RestartEvent::new())
        .await
        .user_details_list
        .into_iter()
        .map(|u| u.user_identifier)
        .collect()
}

/// The test user logged in through `idp`'s pages; the SetAuthorisationCode result.
pub async fn logged_in(idp: &impl LoginPages, runtime: &MasterController) -> StatusResultEvent {
    let request = authorize(runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    post(runtime, idp.code_event(&redirect)).await
}

/// How long each flow of [`lifecycle`] took through the runtime (for the note).
#[derive(Debug, Clone, Copy)]
pub struct FlowTimes {
    pub authorize: std::time::Duration,
    pub code: std::time::Duration,
    pub offline_login: std::time::Duration,
}

/// The identified lifecycle: [`log_in_and_use`] then [`log_out`].
pub async fn lifecycle(idp: &impl LoginPages, runtime: &MasterController) -> FlowTimes {
    let times = log_in_and_use(idp, runtime).await;
    log_out(runtime).await;
    times
}

/// authorize → code → logged in (redirectUri, claims) → exchange → restart → offline login
/// via the refresh token, twice (the second with the token the first stored, rotated or not;
/// redirectUri still known). Leaves `runtime` logged in.
pub async fn log_in_and_use(idp: &impl LoginPages, runtime: &MasterController) -> FlowTimes {
    let recorder = crate::Recorder::attach(runtime);
    let request = idp.authorization_request();
    let redirect_uri = request.redirect_uri.clone();
    let timer = std::time::Instant::now();
    let authorization = authorize(runtime, request).await;
    let authorize_time = timer.elapsed();
    let redirect = idp.log_in(&authorization.authorization_url).await;
    assert!(redirect.starts_with(&redirect_uri), "{redirect}");
    assert!(redirect.contains("iss="), "RFC 9207: {redirect}");
    let timer = std::time::Instant::now();
    let answer = post(runtime, idp.code_event(&redirect)).await;
    let code_time = timer.elapsed();
    assert_status_code(&answer, StatusType::Ok, 0);
    assert_eq!(answer.replaced_user_identifier, None);

    let info = post(runtime, GetInformationEvent::new()).await;
    assert_eq!(info.sdk_state, SdkState::LoggedIn);
    assert_eq!(info.logged_in_user, Some(idp.user()));
    let iam = info.iam_configuration_data.expect("iam configuration");
    assert_eq!(iam.redirect_uri.as_deref(), Some(redirect_uri.as_str()));
    let Event::LoginTokenClaimsAvailableEvent(claims) = recorder
        .wait_for("the login's claims", |e| {
            matches!(e, Event::LoginTokenClaimsAvailableEvent(_))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        claims.claims.get("sub"),
        Some(&idp.user().user_id),
        "{claims:#?}"
    );
    let exchanged = post(runtime, ExchangeIamTokenEvent::new(idp.audience())).await;
    assert_status_code(&exchanged, StatusType::Ok, 0);

    let mut offline_login = std::time::Duration::ZERO;
    for round in 1..=2 {
        assert_eq!(users_after_restart(runtime).await, vec![idp.user()]);
        let timer = std::time::Instant::now();
        let offline = post(runtime, OfflineLoginEvent::new()).await;
        offline_login = timer.elapsed();
        assert_status_code(&offline, StatusType::Ok, 0);
        let exchanged = post(
            runtime,
            ExchangeIamTokenEvent::new(idp.audience()).with_force_update(true),
        )
        .await;
        assert_eq!(exchanged.info.status, StatusType::Ok, "round {round}");
    }
    let info = post(runtime, GetInformationEvent::new()).await;
    assert_eq!(
        info.iam_configuration_data
            .and_then(|iam| iam.redirect_uri)
            .as_deref(),
        Some(redirect_uri.as_str()),
        "the redirect URI is stored with the user"
    );
    FlowTimes {
        authorize: authorize_time,
        code: code_time,
        offline_login,
    }
}

/// Logout = ClearIamTokenCache(CLEAR_ALL) + Restart: the offline login is refused
/// (NO_TOKEN_DATA_AVAILABLE / CREDENTIAL_CLEARED, nextAction LOG_IN).
pub async fn log_out(runtime: &MasterController) {
    let cleared = post(
        runtime,
        ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearAll),
    )
    .await;
    assert_status_code(&cleared, StatusType::Ok, 0);
    post(runtime, RestartEvent::new()).await;
    let refused = post(runtime, OfflineLoginEvent::new()).await;
    assert_status_code(
        &refused,
        StatusType::NoTokenDataAvailable,
        error_code::CREDENTIAL_CLEARED,
    );
    assert_eq!(refused.info.next_action, Some(NextAction::LogIn));
}

/// A `state` is single use and must be one the runtime issued; a restart forgets pending
/// requests. Nothing is stored by a refused redirect.
pub async fn state_is_used_once_and_must_be_known(idp: &impl LoginPages) {
    let runtime = idp.started_runtime().await;
    let request = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    let unknown = |answer: &StatusResultEvent| {
        assert_status_code(
            answer,
            StatusType::InvalidParameter,
            error_code::AUTHORIZATION_REQUEST_UNKNOWN,
        )
    };
    let forged = redirect.replace(&request.state, "forged-state");
    unknown(&post(&runtime, idp.code_event(&forged)).await);
    let stateless = redirect.replace(&format!("state={}", request.state), "x=1");
    unknown(&post(&runtime, idp.code_event(&stateless)).await);
    assert!(
        users_after_restart(&runtime).await.is_empty(),
        "nothing stored"
    );
    // the restart forgot the pending request: the genuine redirect is unknown now
    unknown(&post(&runtime, idp.code_event(&redirect)).await);

    let request = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    assert_status_code(
        &post(&runtime, idp.code_event(&redirect)).await,
        StatusType::Ok,
        0,
    );
    unknown(&post(&runtime, idp.code_event(&redirect)).await);
}

/// A redirect to another path, another client id, another `iss` (mix-up, RFC 9207) or none:
/// each refused before redemption, nothing stored.
pub async fn a_redirect_that_is_not_the_requests_is_refused(idp: &impl LoginPages) {
    let runtime = idp.started_runtime().await;
    let mismatch = |answer: &StatusResultEvent| {
        assert_status_code(
            answer,
            StatusType::InvalidParameter,
            error_code::AUTHORIZATION_RESPONSE_MISMATCH,
        )
    };
    let request = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    let elsewhere = redirect.replace("/callback", "/elsewhere");
    mismatch(&post(&runtime, idp.code_event(&elsewhere)).await);

    let request = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    let mut other = idp.code_event(&redirect);
    other.client_id = "another-client".into();
    mismatch(&post(&runtime, other).await);

    let request = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    let (base, _) = redirect.split_once("&iss=").expect("iss in the redirect");
    let mixed = format!("{base}&iss=http%3A%2F%2F127.0.0.1%3A9%2Fother");
    assert_status_code(
        &post(&runtime, idp.code_event(&mixed)).await,
        StatusType::Failed,
        error_code::AUTHORIZATION_ISSUER_MISMATCH,
    );
    let request = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&request.authorization_url).await;
    let (base, _) = redirect.split_once("&iss=").expect("iss in the redirect");
    assert_status_code(
        &post(&runtime, idp.code_event(base)).await,
        StatusType::Failed,
        error_code::AUTHORIZATION_ISSUER_MISMATCH,
    );
    assert!(
        users_after_restart(&runtime).await.is_empty(),
        "nothing stored"
    );
}

/// PKCE: request A's code with request B's state (so B's verifier): the IDP refuses it.
pub async fn a_code_redeemed_with_another_requests_verifier_is_refused(idp: &impl LoginPages) {
    let runtime = idp.started_runtime().await;
    let a = authorize(&runtime, idp.authorization_request()).await;
    let b = authorize(&runtime, idp.authorization_request()).await;
    let redirect = idp.log_in(&a.authorization_url).await;
    let code = reqwest::Url::parse(&redirect)
        .expect("a redirect URL")
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
        .expect("a code");
    let template = idp.code_event(&redirect);
    let swapped = SetAuthorisationCodeEvent::with_code(
        template.tenant_id,
        template.client_id,
        AuthenticationMode::No,
        code,
        b.state,
    );
    let answer = post(&runtime, swapped).await;
    assert_status_code(
        &answer,
        StatusType::LoginRequired,
        error_code::AUTHORIZATION_CODE_REJECTED,
    );
    assert_eq!(answer.info.next_action, Some(NextAction::LogIn));
    assert!(
        users_after_restart(&runtime).await.is_empty(),
        "nothing stored"
    );
}

/// The dev IDP as [`LoginPages`]: the demo user, client `demo-app`, audience `demo-api`.
pub struct DevIdpPages<'a>(pub &'a mc_devidp::DevIdp);

impl LoginPages for DevIdpPages<'_> {
    async fn started_runtime(&self) -> MasterController {
        let runtime = MasterController::start(crate::fast_config(
            &self.0.base_url(),
            mc_runtime::StoreLocation::Memory,
        ))
        .expect("runtime starts");
        assert_status(&crate::start(&runtime).await, StatusType::Ok);
        runtime
    }

    fn authorization_request(&self) -> CreateAuthorizationRequestEvent {
        authorization_request()
    }

    fn code_event(&self, redirect_url: &str) -> SetAuthorisationCodeEvent {
        code_event(redirect_url)
    }

    async fn log_in(&self, authorization_url: &str) -> String {
        demo_user_logs_in(authorization_url).await
    }

    fn user(&self) -> UserIdentifier {
        UserIdentifier::new(TENANT, mc_devidp::DEMO_USER_SUB)
    }

    fn audience(&self) -> &str {
        crate::AUDIENCE
    }
}
