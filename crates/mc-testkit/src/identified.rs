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
