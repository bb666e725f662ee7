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
