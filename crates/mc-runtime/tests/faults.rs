//! IDP faults through the real runtime against the dev IDP (its fault knobs): each gives the
//! status and error code documented in `docs/protocol.md` ("Faults"), stores nothing on
//! failure, keeps the runtime answering, and is retried only where repeating is safe.
//! Faults already covered elsewhere (connection refused, a silent IDP, a discovery document
//! for another issuer, a foreign signing key) are in `failures.rs`.

use std::time::{Duration, Instant};

use mc_devidp::{DevIdp, DevIdpConfig, FaultTarget, HttpFault};
use mc_events::*;
use mc_oidc::RetryPolicy;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_testkit::*;

/// Small caps keep the tests fast; the shape is the production one.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(1),
        max_total_wait: Duration::from_secs(3),
    }
}

fn runtime_for(idp: &DevIdp) -> MasterController {
    let mut config = RuntimeConfig::new(idp.base_url(), StoreLocation::Memory);
    config.oidc.retry = fast_retries();
    MasterController::start(config).expect("runtime starts")
}

fn assert_failure<R: Clone + Into<Event>>(answer: &R, status: StatusType, code: u32) {
    let event: Event = answer.clone().into();
    assert_status(&event, status);
    assert_eq!(
        event.result_info().expect("a result").error_code,
        code,
        "{event:#?}"
    );
}

/// Enrollment under `fault`: the runtime must end with no user, now and after a restart.
async fn enroll_under(
    idp: &DevIdp,
    target: FaultTarget,
    fault: HttpFault,
    times: Option<u32>,
) -> (MasterController, StatusResultEvent) {
    let runtime = runtime_for(idp);
    start(&runtime).await;
    idp.faults().set_http_fault(target, fault, times);
    let answer = enroll(&runtime).await;
    idp.faults().clear_all();
    (runtime, answer)
}

async fn assert_nothing_stored(runtime: &MasterController) {
    assert_eq!(state_of(runtime).await, SdkState::ActivationRequired);
    let restarted = post(runtime, RestartEvent::new()).await;
    assert_eq!(
        restarted.sdk_state,
        SdkState::ActivationRequired,
        "nothing stored"
    );
}

/// An enrolled runtime, restarted: the next OfflineLogin talks to the token endpoint.
async fn enrolled_and_restarted(idp: &DevIdp) -> MasterController {
    let runtime = runtime_for(idp);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    runtime
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_at_discovery_is_retried_then_reported_and_nothing_is_stored() {
    let idp = idp().await;
    let status_500 = HttpFault::Status {
        status: 500,
        retry_after_secs: None,
    };
    let (runtime, answer) = enroll_under(&idp, FaultTarget::Discovery, status_500, None).await;
    assert_failure(
        &answer,
        StatusType::ServerCancel,
        error_code::IDP_SERVER_ERROR,
    );
    assert_eq!(
        idp.faults().injected_count(),
        3,
        "first attempt + 2 retries"
    );
    assert_eq!(idp.stats().registration, 0);
    assert_nothing_stored(&runtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_at_the_token_endpoint_is_not_retried_and_the_user_stays() {
    let idp = idp().await;
    let runtime = enrolled_and_restarted(&idp).await;
    let logins_before = idp.stats().token_client_credentials;
    idp.faults().set_http_fault(
        FaultTarget::Token,
        HttpFault::Status {
            status: 500,
            retry_after_secs: None,
        },
        None,
    );
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_failure(
        &login,
        StatusType::ServerCancel,
        error_code::IDP_SERVER_ERROR,
    );
    assert_eq!(
        idp.faults().injected_count(),
        1,
        "a POST the IDP may have processed is not repeated"
    );
    idp.faults().clear_all();
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_eq!(idp.stats().token_client_credentials, logins_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_is_honoured_and_the_login_succeeds() {
    let idp = idp().await;
    let runtime = enrolled_and_restarted(&idp).await;
    idp.faults().set_http_fault(
        FaultTarget::Token,
        HttpFault::Status {
            status: 503,
            retry_after_secs: Some(1),
        },
        Some(1),
    );
    let started = Instant::now();
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    let took = started.elapsed();
    assert_status(&login, StatusType::Ok);
    assert_eq!(idp.faults().injected_count(), 1);
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured ({took:?})"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_asking_for_longer_than_the_cap_is_reported_at_once() {
    let idp = idp().await;
    let runtime = enrolled_and_restarted(&idp).await;
    idp.faults().set_http_fault(
        FaultTarget::Token,
        HttpFault::Status {
            status: 503,
            retry_after_secs: Some(120),
        },
        None,
    );
    let started = Instant::now();
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_failure(
        &login,
        StatusType::ServerCancel,
        error_code::IDP_SERVER_ERROR,
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let description = &login.info.error_description;
    assert!(
        description.contains("retry after 120 s"),
        "the app learns the IDP's wish: {description}"
    );
    assert_eq!(idp.faults().injected_count(), 1);
    assert_eq!(
        state_of(&runtime).await,
        SdkState::LoginRequired,
        "user kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_an_invalid_response_and_the_registration_is_undone() {
    let idp = idp().await;
    let (runtime, answer) =
        enroll_under(&idp, FaultTarget::Token, HttpFault::MalformedJson, None).await;
    assert_failure(&answer, StatusType::Failed, error_code::INVALID_RESPONSE);
    assert_eq!(idp.faults().injected_count(), 1, "not retried");
    let stats = idp.stats();
    assert_eq!(stats.registration, 1);
    assert_eq!(stats.registration_delete, 1, "the registration was undone");
    assert_nothing_stored(&runtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_error_page_from_a_proxy_is_a_server_error() {
    let idp = idp().await;
    // A gateway's 502 page at discovery: transient, retried, then reported.
    let (runtime, answer) = enroll_under(
        &idp,
        FaultTarget::Discovery,
        HttpFault::HtmlPage { status: 502 },
        None,
    )
    .await;
    assert_failure(
        &answer,
        StatusType::ServerCancel,
        error_code::IDP_SERVER_ERROR,
    );
    assert_eq!(idp.faults().injected_count(), 3);
    assert_nothing_stored(&runtime).await;

    // A 200 HTML page (a login page, a wrong URL) is not an answer at all.
    let (runtime, answer) = enroll_under(
        &idp,
        FaultTarget::Discovery,
        HttpFault::HtmlPage { status: 200 },
        None,
    )
    .await;
    assert_failure(&answer, StatusType::Failed, error_code::INVALID_RESPONSE);
    assert_eq!(idp.faults().injected_count(), 4, "not retried");
    assert_nothing_stored(&runtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_without_reading_it_whole() {
    let idp = idp().await;
    const OFFERED: u64 = 512 * 1024 * 1024;
    let started = Instant::now();
    let (runtime, answer) = enroll_under(
        &idp,
        FaultTarget::Discovery,
        HttpFault::OversizedBody { bytes: OFFERED },
        Some(1),
    )
    .await;
    assert_failure(&answer, StatusType::Failed, error_code::INVALID_RESPONSE);
    assert!(started.elapsed() < Duration::from_secs(10));
    let streamed = idp.faults().oversized_bytes_streamed();
    // 1 MiB limit; the rest is what socket buffers took before the client hung up.
    assert!(
        streamed < 64 * 1024 * 1024,
        "the client kept reading: {streamed} bytes"
    );
    assert_nothing_stored(&runtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_until_the_timeout_is_server_timeout_and_the_user_stays() {
    let idp = idp().await;
    let mut config = RuntimeConfig::new(idp.base_url(), StoreLocation::Memory);
    config.oidc.retry = fast_retries();
    config.oidc.http_timeout = Duration::from_millis(500);
    let runtime = MasterController::start(config).unwrap();
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    let before = idp.stats().token_client_credentials;
    idp.faults()
        .set_http_fault(FaultTarget::Token, HttpFault::Delay { millis: 3_000 }, None);
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_failure(&login, StatusType::NotReachable, error_code::SERVER_TIMEOUT);
    assert_eq!(
        idp.faults().injected_count(),
        1,
        "a timed-out POST is not repeated"
    );
    idp.faults().clear_all();
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert!(idp.stats().token_client_credentials > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_and_nothing_is_stored() {
    let idp = idp().await;
    let runtime = runtime_for(&idp);
    start(&runtime).await;
    idp.faults().set_issue_expired_tokens(true);
    let answer = enroll(&runtime).await;
    idp.faults().clear_all();
    assert_failure(&answer, StatusType::InvalidToken, error_code::INVALID_TOKEN);
    assert_eq!(idp.stats().registration_delete, 1, "registration undone");
    assert_nothing_stored(&runtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_is_refused_and_not_cached() {
    let idp = idp().await;
    let runtime = runtime_for(&idp);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    idp.faults().set_exchange_for_another_audience(true);
    let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    idp.faults().clear_all();
    assert_failure(
        &refused,
        StatusType::InvalidToken,
        error_code::INVALID_TOKEN,
    );
    assert!(refused.token.is_none(), "the wrong token is not handed out");
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn, "not a logout");
    // Nothing was cached: the next exchange asks the IDP again and gets a right token.
    let ok = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&ok, StatusType::Ok);
    assert_eq!(idp.stats().token_exchange, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_refused_by_policy_is_access_denied_and_not_retried() {
    // Keycloak's "Max Clients" policy; the dev IDP answers 403 access_denied.
    let idp = DevIdp::start(
        "127.0.0.1:0".parse().unwrap(),
        DevIdpConfig {
            max_clients: Some(0),
            ..DevIdpConfig::default()
        },
    )
    .await
    .unwrap();
    let runtime = runtime_for(&idp);
    start(&runtime).await;
    let answer = enroll(&runtime).await;
    assert_failure(&answer, StatusType::AccessDenied, error_code::ACCESS_DENIED);
    assert_eq!(
        idp.stats().registration,
        1,
        "a registration POST is never repeated"
    );
    assert_nothing_stored(&runtime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_deleted_at_the_idp_is_invalid_client_at_login() {
    let idp = idp().await;
    let runtime = runtime_for(&idp);
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let info = post(&runtime, GetInformationEvent::new()).await;
    let user = info.logged_in_user.expect("logged in");
    let client = idp.client_of_subject(TENANT, &user.user_id).unwrap();
    assert!(idp.delete_client(TENANT, &client), "deleted by an admin");
    post(&runtime, RestartEvent::new()).await;
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_failure(
        &login,
        StatusType::OfflineNotActivated,
        error_code::REGISTRATION_INVALID,
    );
    // Proven unusable, so removed locally too: the app is offered enrollment.
    assert_nothing_stored(&runtime).await;
    assert!(
        !recorder
            .events()
            .iter()
            .any(|e| matches!(e, Event::ServerConnectionEvent(_))),
        "an IDP that answers is reachable"
    );
}

fn connection_events(recorder: &Recorder) -> Vec<ServerConnectionState> {
    recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::ServerConnectionEvent(s) => Some(s.connection_state),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_connection_is_pushed_once_when_the_idp_goes_and_once_when_it_is_back() {
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let idp_config = || DevIdpConfig {
        state_dir: Some(state.path().into()),
        ..Default::default()
    };
    let idp = DevIdp::start("127.0.0.1:0".parse().unwrap(), idp_config())
        .await
        .unwrap();
    let addr = idp.local_addr();
    let mut config = fast_config(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    config.oidc.retry = fast_retries();
    let runtime = MasterController::start(config).unwrap();
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    assert_status(
        &post(
            &runtime,
            EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT)
                .with_password("right horse battery"),
        )
        .await,
        StatusType::Ok,
    );
    assert!(
        connection_events(&recorder).is_empty(),
        "reachable from the start"
    );

    idp.shutdown().await;
    post(&runtime, RestartEvent::new()).await;
    for _ in 0..2 {
        let login = post(
            &runtime,
            OfflineLoginEvent::new().with_password("right horse battery"),
        )
        .await;
        assert_failure(
            &login,
            StatusType::NotReachable,
            error_code::SERVER_NOT_REACHABLE,
        );
    }
    // A wrong password needs no IDP: it must not claim the IDP is back.
    let wrong = post(&runtime, OfflineLoginEvent::new().with_password("wrong")).await;
    assert_status(&wrong, StatusType::InvalidPassword);
    recorder
        .wait_for("NOT_REACHABLE", |e| {
            matches!(e, Event::ServerConnectionEvent(_))
        })
        .await;
    assert_eq!(
        connection_events(&recorder),
        [ServerConnectionState::NotReachable],
        "pushed once, not per failure"
    );
    assert_eq!(
        state_of(&runtime).await,
        SdkState::LoginRequired,
        "an unreachable IDP is no reason to forget the user"
    );

    let idp = DevIdp::start(addr, idp_config()).await.unwrap();
    assert_status(
        &post(
            &runtime,
            OfflineLoginEvent::new().with_password("right horse battery"),
        )
        .await,
        StatusType::Ok,
    );
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
    recorder
        .wait_for("CONNECTED", |e| {
            matches!(e, Event::ServerConnectionEvent(s) if s.connection_state == ServerConnectionState::Connected)
        })
        .await;
    assert_eq!(
        connection_events(&recorder),
        [
            ServerConnectionState::NotReachable,
            ServerConnectionState::Connected
        ]
    );
    drop(idp);
}
