//! The MC-SDK contract points of issue 11, each through the public API against the dev IDP:
//! what a host app written against the MC-SDK relies on, with the hostile variant beside it.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use mc_events::*;
use mc_runtime::StoreLocation;
use mc_testkit::*;

// ---- point 1: a second StartEvent answers ALREADY_INITIALIZED with the state and users ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_answers_already_initialized_with_the_state_and_users() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let users = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("a logged-in user");

    let again = post(&runtime, StartEvent::new()).await;

    assert_status(&again, StatusType::AlreadyInitialized);
    assert_eq!(again.info.error_code, error_code::ALREADY_INITIALIZED);
    assert_eq!(again.sdk_state, SdkState::LoggedIn);
    let listed: Vec<_> = again
        .user_details_list
        .iter()
        .map(|u| u.user_identifier.clone())
        .collect();
    assert_eq!(listed, vec![users]);
    assert!(!again.supported_features.is_empty());
    // Nothing changed: still logged in, the session still works.
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_changes_nothing_whatever_it_carries() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let mut hostile = StartEvent::new();
    hostile.app_name = Some("other app".into());
    let again = post(&runtime, hostile).await;
    assert_status(&again, StatusType::AlreadyInitialized);
    assert_eq!(again.sdk_state, SdkState::ActivationRequired);
    assert!(again.user_details_list.is_empty());
    // An invalid one is still refused for its field first.
    let mut invalid = StartEvent::new();
    invalid.app_name = Some("x".repeat(MAX_APP_NAME_BYTES + 1));
    assert_status(&post(&runtime, invalid).await, StatusType::InvalidParameter);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
}

// ---- point 2: StartEvent's configuration, locale, appName, appVersion are used ----

/// A real HTTP server on 127.0.0.1 that records the headers of every request and answers 404
/// (no IDP lives there): where a runtime sent its IDP requests, and with which headers.
struct Recorded {
    url: String,
    requests: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl Recorded {
    async fn start() -> Recorded {
        let requests: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
        let sink = Arc::clone(&requests);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().push((uri.path().to_string(), headers));
                (axum::http::StatusCode::NOT_FOUND, "no IDP here")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorded { url, requests }
    }

    fn requests(&self) -> Vec<(String, HeaderMap)> {
        self.requests.lock().unwrap().clone()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn start_with(configuration: &[(&str, &str)]) -> StartEvent {
    let mut event = StartEvent::new();
    event.configuration = Some(
        configuration
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_url_of_start_replaces_the_configured_one() {
    let idp = idp().await;
    let nowhere = Recorded::start().await;
    // Configured with a server where no IDP lives; the StartEvent names the real one.
    let runtime = runtime_at(&nowhere.url, StoreLocation::Memory);
    let started = post(&runtime, start_with(&[("serverUrl", &idp.base_url())])).await;
    assert_status(&started, StatusType::Ok);
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let info = post(&runtime, GetInformationEvent::new()).await;
    let data = info.iam_configuration_data.expect("configuration data");
    assert_eq!(data.server_url, idp.base_url());
    assert!(nowhere.requests().is_empty(), "{:?}", nowhere.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_name_version_and_locale_go_on_the_idp_requests() {
    let idp = idp().await;
    let recorder = Recorded::start().await;
    let runtime = memory_runtime(&idp);
    let mut event = start_with(&[("serverUrl", &recorder.url)]);
    event.app_name = Some("Demo app".into());
    event.app_version = Some(AppVersion::new(1, 4, 20));
    event.locale = Some("en_GB".into());
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    // The enrollment goes to the StartEvent's server (no IDP there: it fails).
    let enrolled = enroll(&runtime).await;
    assert_ne!(enrolled.info.status, StatusType::Ok);
    let requests = recorder.requests();
    let (path, headers) = requests
        .first()
        .expect("the IDP request reached the recorder");
    assert!(
        path.ends_with("/.well-known/openid-configuration"),
        "{path}"
    );
    let agent = header(headers, "user-agent");
    assert!(agent.starts_with("Demo_app/1.4.20 mc-runtime/"), "{agent}");
    assert_eq!(header(headers, "accept-language"), "en-GB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_configuration_key_is_refused_by_name_and_nothing_starts() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let refused = post(
        &runtime,
        start_with(&[("serverUrl", &idp.base_url()), ("tenantIdd", "demo")]),
    )
    .await;
    assert_status(&refused, StatusType::InvalidParameter);
    assert!(
        refused
            .info
            .error_description
            .contains("`configuration.tenantIdd`"),
        "{refused:?}"
    );
    assert!(refused.info.error_description.contains("`serverUrl`"));
    // Not started: a StartEvent without the bogus key still starts it.
    assert_status(&start(&runtime).await, StatusType::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_server_url_or_locale_is_refused_and_changes_nothing() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    for bad in [
        "not a url",
        "ftp://127.0.0.1/",
        "http://idp.example.com",
        "https://user:secret@idp.example.com",
        "https://idp.example.com/?x=1",
        "",
    ] {
        let refused = post(&runtime, start_with(&[("serverUrl", bad)])).await;
        assert_status(&refused, StatusType::InvalidParameter);
        assert!(
            refused
                .info
                .error_description
                .contains("configuration.serverUrl"),
            "{bad}: {refused:?}"
        );
        if !bad.is_empty() {
            assert!(!refused.info.error_description.contains(bad), "{refused:?}");
        }
    }
    let oversized =
        "https://idp.example.com/".to_string() + &"a".repeat(MAX_CONFIGURATION_VALUE_BYTES);
    assert_status(
        &post(&runtime, start_with(&[("serverUrl", &oversized)])).await,
        StatusType::InvalidParameter,
    );
    for bad_locale in [
        "en-GB\r\nX-Injected: 1",
        "",
        "-en",
        &"a".repeat(MAX_LOCALE_BYTES + 1),
    ] {
        let mut event = StartEvent::new();
        event.locale = Some(bad_locale.to_string());
        let refused = post(&runtime, event).await;
        assert_status(&refused, StatusType::InvalidParameter);
        assert!(
            refused.info.error_description.contains("`locale`"),
            "{refused:?}"
        );
    }
    // None of them started the runtime or changed its IDP: enrollment still reaches the dev IDP.
    assert_status(&start(&runtime).await, StatusType::Ok);
    assert_status(&enroll(&runtime).await, StatusType::Ok);
}

// ---- point 6: enrolling again while LOGGED_IN needs replaceExisting ----

async fn logged_in_user(runtime: &mc_runtime::MasterController) -> UserIdentifier {
    post(runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("a logged-in user")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_again_while_logged_in_is_refused_and_keeps_the_identity() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let user = logged_in_user(&runtime).await;
    let registrations = idp.stats().registration;

    let again = enroll(&runtime).await;

    assert_status(&again, StatusType::InvalidState);
    assert_eq!(again.info.error_code, error_code::INVALID_STATE);
    assert_eq!(
        again.info.next_action,
        Some(NextAction::SendFirst {
            request_type: "DeleteUserEvent".into()
        })
    );
    assert!(again.info.error_description.contains("replaceExisting"));
    assert_eq!(
        idp.stats().registration,
        registrations,
        "nothing registered"
    );
    assert_eq!(
        idp.stats().registration_delete,
        0,
        "nothing deleted at the IDP"
    );
    assert_eq!(logged_in_user(&runtime).await, user, "the same identity");
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_existing_replaces_the_logged_in_identity() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let old = logged_in_user(&runtime).await;
    let event =
        EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT).replacing_existing();
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    let new = logged_in_user(&runtime).await;
    assert_ne!(new, old);
    assert_eq!(
        idp.stats().registration_delete,
        1,
        "the old one deleted at the IDP"
    );
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(restarted.user_details_list.len(), 1);
    // From JSON, as a host sends it.
    let json = r#"{"type": "EnrollAnonymousUserEvent", "tenantId": "demo",
        "authenticationMode": "NO", "clientId": "AnonymousUserEnrollment", "replaceExisting": true}"#;
    let request = Request::from_json(json).expect("parses");
    let RequestEvent::EnrollAnonymousUserEvent(parsed) = request.event else {
        panic!("an enrollment");
    };
    assert!(parsed.replace_existing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_existing_with_another_client_deletes_nothing() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let user = logged_in_user(&runtime).await;
    // Another (unknown) enrollment client: not the logged-in identity, so nothing to replace;
    // the IDP refuses the registration and the current identity stays untouched.
    let event = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, "OtherClient")
        .replacing_existing();
    let answer = post(&runtime, event).await;
    assert_eq!(idp.stats().registration_delete, 0, "{answer:?}");
    assert_eq!(logged_in_user(&runtime).await, user);
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
}

// ---- point 11: traceparent made up at random, and sent on to the IDP and the servers ----

const HOST_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced<E: Into<Request>>(event: E, traceparent: &str) -> Request {
    event
        .into()
        .with_trace_context(TraceContext::new(traceparent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_traceparent_gets_a_random_valid_one() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let mut trace_ids = Vec::new();
    for _ in 0..3 {
        let answer = post_event(&runtime, GetStateEvent::new()).await;
        let trace = answer
            .trace_context()
            .expect("a made-up trace context")
            .clone();
        trace.validate().expect("W3C-valid");
        trace_ids.push(trace.traceparent[3..35].to_string());
    }
    // Random, not a shared prefix plus a counter: no two share their first half.
    for (i, a) in trace_ids.iter().enumerate() {
        for b in &trace_ids[i + 1..] {
            assert_ne!(a[..16], b[..16], "{trace_ids:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_traceparent_reaches_the_idp() {
    let idp = idp().await;
    let recorder = Recorded::start().await;
    let runtime = memory_runtime(&idp);
    assert_status(
        &post(&runtime, start_with(&[("serverUrl", &recorder.url)])).await,
        StatusType::Ok,
    );
    let enrollment = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT);
    let answer = post_event(&runtime, traced(enrollment, HOST_TRACE)).await;
    assert_eq!(
        answer.trace_context().map(|t| t.traceparent.as_str()),
        Some(HOST_TRACE)
    );
    let requests = recorder.requests();
    assert!(!requests.is_empty());
    for (path, headers) in &requests {
        assert_eq!(header(headers, "traceparent"), HOST_TRACE, "{path}");
    }
}

fn echoed(answer: &Event) -> serde_json::Value {
    let Event::CreateHttpCommonResultEvent(result) = answer else {
        panic!("an HTTP result: {answer:?}");
    };
    serde_json::from_slice(&result.response).expect("the echo's JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_calls_carry_the_request_traceparent_unless_the_app_set_one() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let url = format!("{}/demo/echo", idp.base_url());
    let call =
        || CreateHttpCommonRequest::new(url.clone(), HttpMethod::Get).with_audience(AUDIENCE);

    let answer = post_event(&runtime, traced(call(), HOST_TRACE)).await;
    assert_eq!(
        echoed(&answer)["headers"]["traceparent"],
        HOST_TRACE,
        "{answer:?}"
    );

    let answer = post_event(&runtime, call()).await;
    let made_up = answer.trace_context().expect("made up").traceparent.clone();
    assert_eq!(echoed(&answer)["headers"]["traceparent"], made_up.as_str());

    // The app's own header is its choice: kept, not doubled.
    let own = "00-11111111111111111111111111111111-2222222222222222-00";
    let mut with_header = call();
    with_header
        .http_headers
        .insert("traceparent".into(), own.into());
    let answer = post_event(&runtime, traced(with_header, HOST_TRACE)).await;
    assert_eq!(echoed(&answer)["headers"]["traceparent"], own);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_or_oversized_traceparent_is_refused_and_nothing_is_sent() {
    let idp = idp().await;
    let recorder = Recorded::start().await;
    let runtime = memory_runtime(&idp);
    assert_status(
        &post(&runtime, start_with(&[("serverUrl", &recorder.url)])).await,
        StatusType::Ok,
    );
    let oversized = format!("{HOST_TRACE}{}", "0".repeat(10_000));
    for bad in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Injected: 1",
        oversized.as_str(),
    ] {
        let enrollment = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT);
        let answer = post_event(&runtime, traced(enrollment, bad)).await;
        assert_eq!(
            answer.status(),
            Some(StatusType::InvalidParameter),
            "{answer:?}"
        );
        let description = &answer.result_info().unwrap().error_description;
        assert!(description.contains("traceparent"), "{description}");
        assert!(
            !description.contains("4bf92f"),
            "the value is not repeated: {description}"
        );
    }
    assert!(recorder.requests().is_empty(), "nothing was sent");
}

// ---- point 12: ServerConnectionEvent CONNECTION_LOST and DISCONNECTED ----

fn connection_states(recorder: &Recorder) -> Vec<ServerConnectionState> {
    recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::ServerConnectionEvent(s) => Some(s.connection_state),
            _ => None,
        })
        .collect()
}

/// A server that takes each connection, reads the request, and closes without an answer.
async fn hang_up_server() -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            drop(socket);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_broken_during_a_request_is_connection_lost() {
    let url = hang_up_server().await;
    let runtime = runtime_at(&url, StoreLocation::Memory);
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let answer = enroll(&runtime).await;
    assert_ne!(answer.info.status, StatusType::Ok);
    recorder
        .wait_for("ServerConnectionEvent", |e| {
            matches!(e, Event::ServerConnectionEvent(_))
        })
        .await;
    assert_eq!(
        connection_states(&recorder),
        vec![ServerConnectionState::ConnectionLost]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_not_reachable_not_connection_lost() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let runtime = runtime_at(&url, StoreLocation::Memory);
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    assert_status(&enroll(&runtime).await, StatusType::NotReachable);
    recorder
        .wait_for("ServerConnectionEvent", |e| {
            matches!(e, Event::ServerConnectionEvent(_))
        })
        .await;
    assert_eq!(
        connection_states(&recorder),
        vec![ServerConnectionState::NotReachable]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_a_connected_runtime_pushes_disconnected_once() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let recorder = Recorder::attach(&runtime);
    runtime.shutdown();
    runtime.shutdown();
    let event = recorder
        .wait_for("DISCONNECTED", |e| {
            matches!(e, Event::ServerConnectionEvent(_))
        })
        .await;
    let Event::ServerConnectionEvent(event) = event else {
        unreachable!()
    };
    assert_eq!(event.server_url, idp.base_url());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        connection_states(&recorder),
        vec![ServerConnectionState::Disconnected],
        "once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_never_reached_the_idp_pushes_no_disconnected() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    runtime.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(connection_states(&recorder).is_empty());
}

// ---- point 3: a lock while LOGGED_IN ends the session, pushed ----

const RIGHT: &str = "right horse battery";

/// Logged in as a PASSWORD user (cheap KDF), with a recorder attached.
async fn logged_in_with_password(
    idp: &mc_devidp::DevIdp,
) -> (mc_runtime::MasterController, Recorder) {
    let config = fast_config(&idp.base_url(), StoreLocation::Memory);
    let runtime = mc_runtime::MasterController::start(config).unwrap();
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let enrollment = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT)
        .with_password(RIGHT);
    assert_status(&post(&runtime, enrollment).await, StatusType::Ok);
    (runtime, recorder)
}

fn login_with(password: &str) -> OfflineLoginEvent {
    let mut event = OfflineLoginEvent::new();
    event.password = Some(SecretString::from(password));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_while_logged_in_ends_the_session_and_is_pushed() {
    let idp = idp().await;
    let (runtime, recorder) = logged_in_with_password(&idp).await;
    let policy = mc_store::LockoutPolicy::default();
    let mut answer = post(&runtime, login_with("wrong")).await;
    for _ in 1..policy.attempts_before_temporary_lock {
        // Before the lock a wrong password is only a wrong password: still logged in.
        assert_status(&answer, StatusType::InvalidPassword);
        assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
        answer = post(&runtime, login_with("wrong")).await;
    }
    assert_status(&answer, StatusType::TemporaryLocked);
    assert!(answer.retry_delay.is_some());
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    let warning = recorder
        .wait_for(
            "the session's end",
            |e| matches!(e, Event::WarningEvent(w) if w.error_type == "SESSION"),
        )
        .await;
    let Event::WarningEvent(warning) = warning else {
        unreachable!()
    };
    assert_eq!(warning.error_code, error_code::TEMPORARILY_LOCKED);
    recorder
        .wait_for("StartLoginEvent", |e| {
            matches!(e, Event::StartLoginEvent(_))
        })
        .await;
    // The session is gone: no token without a new login.
    let exchange = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&exchange, StatusType::InvalidState);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_user_while_logged_in_requires_activation() {
    let idp = idp().await;
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    config.store_settings.lockout = mc_store::LockoutPolicy {
        attempts_before_temporary_lock: 2,
        lock_delays_secs: Vec::new(),
        attempts_before_block: 2,
    };
    let runtime = mc_runtime::MasterController::start(config).unwrap();
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let enrollment = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT)
        .with_password(RIGHT);
    assert_status(&post(&runtime, enrollment).await, StatusType::Ok);
    assert_status(
        &post(&runtime, login_with("wrong")).await,
        StatusType::InvalidPassword,
    );
    let blocked = post(&runtime, login_with("wrong")).await;
    assert_status(&blocked, StatusType::PasswordBlocked);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    recorder
        .wait_for(
            "the session's end",
            |e| matches!(e, Event::WarningEvent(w) if w.error_type == "SESSION"),
        )
        .await;
}

// ---- point 4: EnableAuthenticationModeEvent's retry fields, field names, clientId ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_current_password_reports_the_retries_left() {
    let idp = idp().await;
    let (runtime, _) = logged_in_with_password(&idp).await;
    let mut change = EnableAuthenticationModeEvent::new(AuthenticationMode::Password);
    change.password = Some(SecretString::from("wrong"));
    change.new_password = Some(SecretString::from("new password"));
    let answer = post(&runtime, change.clone()).await;
    assert_status(&answer, StatusType::InvalidPassword);
    let left = answer.retry_counter.expect("retryCounter");
    let json = Event::from(answer).to_json_value();
    assert_eq!(json["retryCounter"], left);
    // It counts toward the lockout shared with OfflineLogin.
    let login = post(&runtime, login_with("wrong")).await;
    assert_eq!(login.retry_counter, Some(left - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_new_password_is_named_new_password() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let change = EnableAuthenticationModeEvent::new(AuthenticationMode::Password);
    let answer = post(&runtime, change).await;
    assert_status(&answer, StatusType::InvalidParameter);
    assert!(
        answer.info.error_description.contains("`newPassword`"),
        "{answer:?}"
    );
    assert_eq!(
        answer.info.next_action,
        Some(NextAction::FixField {
            field: "newPassword".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_other_than_the_enrollment_client_is_refused() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let mut change = EnableAuthenticationModeEvent::new(AuthenticationMode::Password);
    change.new_password = Some(SecretString::from("new password"));
    change.client_id = Some("SomeOtherClient".into());
    let answer = post(&runtime, change.clone()).await;
    assert_status(&answer, StatusType::InvalidParameter);
    assert!(
        answer.info.error_description.contains("`clientId`"),
        "{answer:?}"
    );
    // Nothing changed: a login needs no password still.
    assert_status(&post(&runtime, RestartEvent::new()).await, StatusType::Ok);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    // The right client id is accepted.
    change.client_id = Some(CLIENT.into());
    assert_status(&post(&runtime, change).await, StatusType::Ok);
}
