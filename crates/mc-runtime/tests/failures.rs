//! Bad input, IDP faults and misbehaving listeners: each gives a clear result, stores nothing,
//! never panics and never hangs.

use std::time::Duration;

use mc_events::*;
use mc_runtime::StoreLocation;
use mc_testkit::*;

fn invalid_parameter_naming<R: Clone + Into<Event>>(answer: &R, field: &str) {
    let event: Event = answer.clone().into();
    assert_status(&event, StatusType::InvalidParameter);
    let info = event.result_info().expect("a result");
    assert_eq!(info.error_code, error_code::INVALID_PARAMETER, "{event:#?}");
    assert!(
        info.error_description.contains(field),
        "`{field}` not named in {:?}",
        info.error_description
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_parameter_naming_the_field() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;

    let empty = post(
        &runtime,
        EnrollAnonymousUserEvent::new("", AuthenticationMode::No, CLIENT),
    )
    .await;
    // Enroll is answered by its own result type (typed: `empty` is a StatusResultEvent; an
    // answer of another type would have come back as INTERNAL_ERROR).
    invalid_parameter_naming(&empty, "tenantId");

    let huge = "t".repeat(10 * 1024 * 1024);
    let huge = post(
        &runtime,
        EnrollAnonymousUserEvent::new(huge, AuthenticationMode::No, CLIENT),
    )
    .await;
    invalid_parameter_naming(&huge, "tenantId");

    let wait = Some(WAIT);
    let mode = runtime
        .post_json(
            r#"{"type":"EnrollAnonymousUserEvent","requestId":"m1","tenantId":"demo","authenticationMode":"FACE","clientId":"x"}"#,
            wait,
        )
        .await;
    invalid_parameter_naming(&mode, "authenticationMode");
    assert_eq!(mode.request_id().map(|r| r.as_str()), Some("m1"));

    let wrong_type = runtime
        .post_json(r#"{"type":"ExchangeIamTokenEvent","audience":42}"#, wait)
        .await;
    invalid_parameter_naming(&wrong_type, "audience");
    assert!(matches!(wrong_type, Event::ExchangeIamTokenResultEvent(_)));

    let missing = runtime
        .post_json(
            r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo"}"#,
            wait,
        )
        .await;
    invalid_parameter_naming(&missing, "authenticationMode");

    for malformed in [
        "{not json",
        "[1,2]",
        r#"{"type":"NoSuchEvent"}"#,
        r#"{"tenantId":"demo"}"#,
    ] {
        let answer = runtime.post_json(malformed, wait).await;
        assert_status(&answer, StatusType::InvalidParameter);
        assert!(
            answer.request_id().is_some(),
            "an id is assigned even to garbage"
        );
    }
    // Unknown fields are ignored.
    let extra = runtime
        .post_json(
            r#"{"type":"GetStateEvent","requestId":"x1","futureField":{"a":1}}"#,
            wait,
        )
        .await;
    assert_status(&extra, StatusType::Ok);

    // Listeners saw every one of these answers, and nothing was enrolled.
    recorder
        .wait_for("the answer to x1", |e| {
            e.request_id().map(|r| r.as_str()) == Some("x1")
        })
        .await;
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    assert_eq!(idp.stats().registration, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_down_is_not_reachable_and_stores_nothing() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let store = tempfile::tempdir().unwrap();
    let runtime = runtime_at(&url, StoreLocation::Directory(store.path().into()));
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    let answer = enroll(&runtime).await;
    assert_status(&answer, StatusType::NotReachable);
    assert_eq!(answer.info.error_code, error_code::SERVER_NOT_REACHABLE);
    recorder
        .wait_for("ServerConnectionEvent NOT_REACHABLE", |e| {
            matches!(e, Event::ServerConnectionEvent(s) if s.connection_state == ServerConnectionState::NotReachable)
        })
        .await;
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    drop(runtime);
    let runtime = runtime_at(&url, StoreLocation::Directory(store.path().into()));
    assert_eq!(
        start(&runtime).await.sdk_state,
        SdkState::ActivationRequired,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idp_coming_back_is_pushed_as_connected() {
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // An IDP that persists its state: enroll, take it down, bring it back on the same port.
    let config = || mc_devidp::DevIdpConfig {
        state_dir: Some(state.path().into()),
        ..Default::default()
    };
    let idp = mc_devidp::DevIdp::start("127.0.0.1:0".parse().unwrap(), config())
        .await
        .unwrap();
    let addr = idp.local_addr();
    let runtime = runtime_at(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    idp.shutdown().await;
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::NotReachable,
    );
    // Not reachable is not a reason to forget the user.
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    let idp = mc_devidp::DevIdp::start(addr, config()).await.unwrap();
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    recorder
        .wait_for("ServerConnectionEvent CONNECTED", |e| {
            matches!(e, Event::ServerConnectionEvent(s) if s.connection_state == ServerConnectionState::Connected)
        })
        .await;
    drop(idp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_a_foreign_key_or_issuer_are_refused_and_nothing_is_stored() {
    let idp = idp().await;
    for fault in ["foreign key", "wrong issuer"] {
        let runtime = memory_runtime(&idp);
        start(&runtime).await;
        match fault {
            "foreign key" => idp.faults().set_sign_with_foreign_key(true),
            _ => idp.faults().set_wrong_token_issuer(true),
        }
        let answer = enroll(&runtime).await;
        idp.faults().clear_all();
        assert_status(&answer, StatusType::InvalidToken);
        assert_eq!(answer.info.error_code, error_code::INVALID_TOKEN);
        assert_eq!(
            state_of(&runtime).await,
            SdkState::ActivationRequired,
            "{fault}"
        );
        let restarted = post(&runtime, RestartEvent::new()).await;
        assert_eq!(
            restarted.sdk_state,
            SdkState::ActivationRequired,
            "{fault}: nothing stored"
        );
    }
    // The registrations of the failed enrollments were undone at the IDP.
    let stats = idp.stats();
    assert_eq!(stats.registration, 2);
    assert_eq!(stats.registration_delete, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    idp.faults().set_wrong_discovery_issuer(true);
    let answer = enroll(&runtime).await;
    assert_status(&answer, StatusType::Failed);
    assert_eq!(answer.info.error_code, error_code::INVALID_CONFIGURATION);
    assert_eq!(idp.stats().registration, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_gone_at_the_idp_asks_for_a_new_enrollment() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    idp.faults().set_reject_all_tokens_with_invalid_client(true);
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_status(&login, StatusType::OfflineNotActivated);
    assert_eq!(login.info.error_code, error_code::REGISTRATION_INVALID);
    // Proven unusable, so removed: the app is offered enrollment.
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    let _ = recorder;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_for_the_enrollment_client_or_an_unknown_audience_is_refused() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    enroll(&runtime).await;
    let own = post(&runtime, ExchangeIamTokenEvent::new(CLIENT)).await;
    assert_status(&own, StatusType::InvalidParameter);
    let before = idp.stats().token_exchange;
    assert_eq!(before, 0, "refused before any request to the IDP");
    let unknown = post(&runtime, ExchangeIamTokenEvent::new("no-such-api")).await;
    assert_status(&unknown, StatusType::InvalidParameter);
    // Still logged in: a refused audience is not a logout.
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_make_one_request_to_the_idp() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    enroll(&runtime).await;
    let answers = futures::future::join_all(
        (0..16).map(|_| post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE))),
    )
    .await;
    for answer in &answers {
        assert_status(answer, StatusType::Ok);
    }
    assert_eq!(
        idp.stats().token_exchange,
        1,
        "one exchange, every caller waited for it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_or_blocking_listener_does_not_stop_the_others() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    runtime.add_event_listener(|_: &Event| panic!("a host bug"));
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = std::sync::Mutex::new(blocked);
    runtime.add_event_listener(move |_: &Event| {
        let _ = blocked
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
    });
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    assert_status(
        &post(&runtime, GetInformationEvent::new()).await,
        StatusType::Ok,
    );
    recorder
        .wait_for("GetInformationResultEvent", |e| {
            matches!(e, Event::GetInformationResultEvent(_))
        })
        .await;
    let types: Vec<&str> = recorder.events().iter().map(|e| e.type_name()).collect();
    let start = types.iter().position(|t| *t == "StartResultEvent").unwrap();
    let enrolled = types
        .iter()
        .position(|t| *t == "StatusResultEvent")
        .unwrap();
    let info = types
        .iter()
        .position(|t| *t == "GetInformationResultEvent")
        .unwrap();
    assert!(start < enrolled && enrolled < info, "in order: {types:?}");
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_listener_gets_nothing_more() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let removed = Recorder::default();
    let sink = removed.0.clone();
    let handle = runtime.add_event_listener(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    let kept = Recorder::attach(&runtime);
    start(&runtime).await;
    kept.wait_for("StartResultEvent", |e| {
        matches!(e, Event::StartResultEvent(_))
    })
    .await;
    removed
        .wait_for("StartResultEvent", |e| {
            matches!(e, Event::StartResultEvent(_))
        })
        .await;
    assert!(runtime.remove_event_listener(handle));
    assert!(
        !runtime.remove_event_listener(handle),
        "removing twice says so"
    );
    post(&runtime, GetStateEvent::new()).await;
    kept.wait_for("GetStateResultEvent", |e| {
        matches!(e, Event::GetStateResultEvent(_))
    })
    .await;
    assert!(removed
        .events()
        .iter()
        .all(|e| !matches!(e, Event::GetStateResultEvent(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_times_out_answers_timeout_and_the_result_still_arrives() {
    // An IDP that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut config = mc_runtime::RuntimeConfig::new(&url, StoreLocation::Memory);
    config.oidc.http_timeout = Duration::from_millis(800);
    let runtime = mc_runtime::MasterController::start(config).unwrap();
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    let answer = runtime
        .post_event_with_timeout(
            Request::from(EnrollAnonymousUserEvent::new(
                TENANT,
                AuthenticationMode::No,
                CLIENT,
            ))
            .with_id("slow"),
            Duration::from_millis(100),
        )
        .await;
    assert_status(&answer, StatusType::Timeout);
    assert!(matches!(answer, Event::StatusResultEvent(_)));
    assert_eq!(answer.request_id().map(|r| r.as_str()), Some("slow"));
    // The request went on; its own result (the IDP's timeout) reaches the listeners.
    let late = recorder
        .wait_for("the real result of `slow`", |e| {
            e.is_result() && e.request_id().map(|r| r.as_str()) == Some("slow")
        })
        .await;
    assert_status(&late, StatusType::NotReachable);
    assert_eq!(
        late.result_info().unwrap().error_code,
        error_code::SERVER_TIMEOUT
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_enrollment_while_one_runs_is_invalid_state() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    let (first, second) = tokio::join!(enroll(&runtime), enroll(&runtime));
    let statuses = [Some(first.info.status), Some(second.info.status)];
    assert!(
        statuses.contains(&Some(StatusType::Ok)),
        "{first:#?} {second:#?}"
    );
    assert!(
        statuses.contains(&Some(StatusType::InvalidState)),
        "{first:#?} {second:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_failures_show_in_status() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    enroll(&runtime).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", closed.local_addr().unwrap());
    drop(closed);
    let answer = post(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Get),
    )
    .await;
    assert_eq!(answer.status, HttpCommonStatus::ServerNotReachable);
    assert!(answer.has_error_occurred);

    let bad = post(
        &runtime,
        CreateHttpCommonRequest::new("not a url", HttpMethod::Get),
    )
    .await;
    assert_eq!(bad.status, HttpCommonStatus::Failed);
    assert_eq!(bad.error_code, error_code::INVALID_PARAMETER);

    let pinned = post(
        &runtime,
        CreateHttpCommonRequest {
            certificate_chain: Some(
                "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".into(),
            ),
            ..CreateHttpCommonRequest::new(format!("{}/demo/echo", idp.base_url()), HttpMethod::Get)
        },
    )
    .await;
    assert_eq!(pinned.status, HttpCommonStatus::Failed);
    assert!(
        pinned.error_description.contains("certificateChain"),
        "{pinned:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_for_a_removed_listener_are_not_delivered() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let seen = Recorder::default();
    let sink = seen.0.clone();
    // Blocks on its first event, so later ones queue up behind it.
    let handle = runtime.add_event_listener(move |e: &Event| {
        sink.lock().unwrap().push(e.clone());
        let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(10));
    });
    start(&runtime).await;
    seen.wait_for("the first event", |_| true).await;
    for _ in 0..3 {
        post(&runtime, GetStateEvent::new()).await;
    }
    assert!(runtime.remove_event_listener(handle));
    drop(release);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.events().len(), 1, "{:#?}", seen.events());
}
