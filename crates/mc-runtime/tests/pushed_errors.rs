//! The error events the runtime pushes on its own: WarningEvent for a panicking listener,
//! RuntimeErrorEvent for store damage found, FatalErrorEvent for a component that stopped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_store::{KvBackend, RedbBackend, Write, DEFAULT_DB_FILE};
use mc_testkit::*;

fn reports(events: &[Event], pick: fn(&Event) -> Option<&ErrorReport>) -> Vec<ErrorReport> {
    events.iter().filter_map(pick).cloned().collect()
}

fn warning(event: &Event) -> Option<&ErrorReport> {
    match event {
        Event::WarningEvent(report) => Some(report),
        _ => None,
    }
}

/// A listener that panics on every event: the others are told (WarningEvent LISTENER naming
/// the event), it is not told about itself, and it still gets later events.
#[tokio::test]
async fn a_panicking_listener_is_reported_to_the_others() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let panics = Arc::new(AtomicUsize::new(0));
    let seen_by_panicker = Recorder::default();
    {
        let panics = panics.clone();
        let sink = seen_by_panicker.0.clone();
        rt.add_event_listener(move |event: &Event| {
            sink.lock().unwrap().push(event.clone());
            panics.fetch_add(1, Ordering::SeqCst);
            panic!("listener bug");
        });
    }
    let other = Recorder::attach(&rt);
    let started = rt.post(StartEvent::new()).await;
    let report = other
        .wait_for("the panic warning", |e| {
            matches!(e, Event::WarningEvent(r) if r.error_code == error_code::LISTENER_PANICKED)
        })
        .await;
    let Event::WarningEvent(report) = report else {
        unreachable!()
    };
    assert_eq!(report.error_type, "LISTENER");
    assert!(
        report.error_description.contains("StartResultEvent"),
        "{report:?}"
    );
    assert_eq!(report.request_id, started.info.request_id);

    // Still registered: a later result reaches it too.
    rt.post(GetStateEvent::new()).await;
    seen_by_panicker
        .wait_for("a later event", |e| {
            matches!(e, Event::GetStateResultEvent(_))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        reports(&seen_by_panicker.events(), warning)
            .iter()
            .all(|r| r.error_code != error_code::LISTENER_PANICKED),
        "the panicking listener was told about itself: {:?}",
        seen_by_panicker.events()
    );
}

/// Two listeners that both panic on everything must not feed each other warnings forever:
/// one warning per original event and listener, then quiet.
#[tokio::test]
async fn two_panicking_listeners_do_not_loop() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let calls = calls.clone();
        rt.add_event_listener(move |_: &Event| {
            calls.fetch_add(1, Ordering::SeqCst);
            panic!("listener bug");
        });
    }
    rt.post(GetStateEvent::new()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each got the result (2 calls), and each the other's warning (2 calls).
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// A damaged user record on disk: the start skips it (as before) and now says so with a
/// RuntimeErrorEvent STORE; the runtime goes on.
#[tokio::test]
async fn a_damaged_user_record_is_reported_as_a_runtime_error() {
    let idp = idp().await;
    let dir = tempfile::tempdir().unwrap();
    let location = || StoreLocation::Directory(dir.path().to_path_buf());
    {
        let rt = runtime_at(&idp.base_url(), location());
        rt.post(StartEvent::new()).await;
        let enrolled = rt
            .post(EnrollAnonymousUserEvent::new(
                TENANT,
                AuthenticationMode::No,
                CLIENT,
            ))
            .await;
        assert_eq!(enrolled.info.status, StatusType::Ok);
        rt.shutdown();
    }
    {
        let backend = RedbBackend::open(&dir.path().join(DEFAULT_DB_FILE)).unwrap();
        let keys = backend.keys("users").unwrap();
        assert_eq!(keys.len(), 1, "one enrolled user");
        let damage = keys
            .into_iter()
            .map(|key| Write::put("users", key, b"{not a record".to_vec()))
            .collect();
        backend.commit(damage).unwrap();
    }
    let rt = runtime_at(&idp.base_url(), location());
    let events = Recorder::attach(&rt);
    let started = rt.post(StartEvent::new()).await;
    assert_eq!(started.info.status, StatusType::Ok, "{started:?}");
    assert_eq!(started.sdk_state, SdkState::ActivationRequired);
    let damage = events
        .wait_for("the store damage report", |e| {
            matches!(e, Event::RuntimeErrorEvent(_))
        })
        .await;
    let Event::RuntimeErrorEvent(report) = damage else {
        unreachable!()
    };
    assert_eq!(report.error_type, "STORE");
    assert_eq!(report.error_code, error_code::STORE_READ_FAILED);
    // The runtime goes on: a new enrollment works.
    assert_status(&enroll(&rt).await, StatusType::Ok);
}

/// An undamaged store reports nothing (the report is not sent for every start).
#[tokio::test]
async fn a_sound_store_reports_no_damage() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let events = Recorder::attach(&rt);
    rt.post(StartEvent::new()).await;
    rt.post(EnrollAnonymousUserEvent::new(
        TENANT,
        AuthenticationMode::No,
        CLIENT,
    ))
    .await;
    rt.post(RestartEvent::new()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !events
            .events()
            .iter()
            .any(|e| matches!(e, Event::RuntimeErrorEvent(_) | Event::FatalErrorEvent(_))),
        "{:?}",
        events.events()
    );
}

/// The store's component gone while the runtime runs: the request gets COMPONENT_FAILED
/// (before: INTERNAL_ERROR / STORE_WRITE_FAILED) and the listeners one FatalErrorEvent
/// COMPONENT, however many requests fail.
#[tokio::test]
async fn a_stopped_component_is_fatal_once() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let events = Recorder::attach(&rt);
    rt.close_store_for_tests();
    let first = rt.post(StartEvent::new()).await;
    assert_eq!(
        first.info.error_code,
        error_code::COMPONENT_FAILED,
        "{first:?}"
    );
    assert_eq!(first.info.next_action, Some(NextAction::ContactSupport));
    let second = rt.post(RestartEvent::new()).await;
    assert_eq!(
        second.info.error_code,
        error_code::COMPONENT_FAILED,
        "{second:?}"
    );
    events
        .wait_for("the second result", |e| {
            matches!(e, Event::RestartResultEvent(_))
        })
        .await;
    let fatal: Vec<ErrorReport> = reports(&events.events(), |e| match e {
        Event::FatalErrorEvent(report) => Some(report),
        _ => None,
    });
    assert_eq!(fatal.len(), 1, "{:?}", events.events());
    assert_eq!(fatal[0].error_type, "COMPONENT");
    assert_eq!(fatal[0].error_code, error_code::COMPONENT_FAILED);
    // It comes before the result it explains.
    let order: Vec<&str> = events.events().iter().map(|e| e.type_name()).collect();
    let fatal_at = order.iter().position(|t| *t == "FatalErrorEvent").unwrap();
    let result_at = order.iter().position(|t| *t == "StartResultEvent").unwrap();
    assert!(fatal_at < result_at, "{order:?}");
}

/// Shut down while a request waits on a slow IDP: the poster gets RUNTIME_STOPPED, not a
/// hang, and no FatalErrorEvent (the stop was asked for).
#[tokio::test]
async fn a_shutdown_mid_request_answers_runtime_stopped() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let events = Recorder::attach(&rt);
    rt.post(StartEvent::new()).await;
    idp.faults().set_http_fault(
        mc_devidp::FaultTarget::Registration,
        mc_devidp::HttpFault::Delay { millis: 2_000 },
        None,
    );
    let poster = rt.clone();
    let enrolling = tokio::spawn(async move {
        poster
            .post_with_timeout(
                EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT),
                WAIT,
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.shutdown();
    let answer = enrolling.await.unwrap();
    assert_eq!(
        answer.info.error_code,
        error_code::RUNTIME_STOPPED,
        "{answer:?}"
    );
    let _: &MasterController = &rt;
    assert!(!events
        .events()
        .iter()
        .any(|e| matches!(e, Event::FatalErrorEvent(_))));
}
