//! Pushed events carry a W3C trace context (issue 11 point 11, the leftover): those the
//! runtime pushes while handling a request carry that request's `traceparent`, as its result
//! does; those no request caused get a fresh random one. A host traceparent that is not valid
//! is refused as before, and nothing is pushed with it.

use mc_events::*;
use mc_runtime::StoreLocation;
use mc_testkit::*;

const HOST_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced<E: Into<Request>>(event: E, traceparent: &str) -> Request {
    event
        .into()
        .with_trace_context(TraceContext::new(traceparent))
}

fn traceparent_of(event: &Event) -> Option<&str> {
    event.trace_context().map(|t| t.traceparent.as_str())
}

/// The first event recorded after the first `mark` ones that matches, waiting up to 10 s.
async fn pushed_after(recorder: &Recorder, mark: usize, pred: impl Fn(&Event) -> bool) -> Event {
    for _ in 0..1000 {
        if let Some(event) = recorder.events().into_iter().skip(mark).find(|e| pred(e)) {
            return event;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "no such event pushed after the first {mark}: {:#?}",
        recorder.events()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pushed_while_serving_a_request_carry_its_traceparent() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    // The enrollment pushes claims too, under its own trace, on the listeners' thread: wait
    // for them, so that only what comes after is looked at (else a race picks the wrong one).
    recorder
        .wait_for("the enrollment's claims", |e| {
            matches!(e, Event::LoginTokenClaimsAvailableEvent(_))
        })
        .await;
    let mark = recorder.events().len();

    // Restart pushes StartLoginEvent; the login pushes LoginTokenClaimsAvailableEvent.
    let restart_trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    post_event(&runtime, traced(RestartEvent::new(), restart_trace)).await;
    let answer = post_event(&runtime, traced(OfflineLoginEvent::new(), HOST_TRACE)).await;
    assert_eq!(answer.status(), Some(StatusType::Ok), "{answer:?}");
    assert_eq!(traceparent_of(&answer), Some(HOST_TRACE));
    let start_login =
        pushed_after(&recorder, mark, |e| matches!(e, Event::StartLoginEvent(_))).await;
    assert_eq!(traceparent_of(&start_login), Some(restart_trace));
    let claims = pushed_after(&recorder, mark, |e| {
        matches!(e, Event::LoginTokenClaimsAvailableEvent(_))
    })
    .await;
    assert_eq!(traceparent_of(&claims), Some(HOST_TRACE));
    // The JSON a host reads has it too.
    assert_eq!(
        claims.to_json_value()["traceContext"]["traceparent"],
        HOST_TRACE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_connection_event_of_a_failed_request_carries_its_traceparent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let runtime = runtime_at(&url, StoreLocation::Memory);
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let enrollment = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT);
    let answer = post_event(&runtime, traced(enrollment, HOST_TRACE)).await;
    assert_eq!(answer.status(), Some(StatusType::NotReachable));
    let pushed = recorder
        .wait_for("ServerConnectionEvent", |e| {
            matches!(e, Event::ServerConnectionEvent(_))
        })
        .await;
    assert_eq!(traceparent_of(&pushed), Some(HOST_TRACE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_event_no_request_caused_gets_a_fresh_valid_traceparent() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let recorder = Recorder::attach(&runtime);
    runtime.shutdown();
    let disconnected = recorder
        .wait_for("DISCONNECTED", |e| {
            matches!(e, Event::ServerConnectionEvent(_))
        })
        .await;
    let trace = disconnected.trace_context().expect("a trace context");
    trace.validate().expect("W3C-valid");
    assert_ne!(trace.traceparent, HOST_TRACE);
}

/// Hostile: a malformed host traceparent is refused as before (INVALID_PARAMETER naming it,
/// the result echoing the request's context), nothing is done, and no pushed event carries
/// the bad value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_host_traceparent_is_refused_and_nothing_is_pushed_with_it() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    post(&runtime, RestartEvent::new()).await;
    let recorder = Recorder::attach(&runtime);
    let bad = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
    let answer = post_event(&runtime, traced(OfflineLoginEvent::new(), bad)).await;
    assert_eq!(answer.status(), Some(StatusType::InvalidParameter));
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for event in recorder.events() {
        assert!(
            !matches!(event, Event::LoginTokenClaimsAvailableEvent(_)),
            "{event:?}"
        );
        // The refusal echoes the request's context as it always did; pushed events never
        // carry the invalid value.
        if let (false, Some(trace)) = (event.is_result(), event.trace_context()) {
            assert_ne!(trace.traceparent, bad, "{event:?}");
            trace.validate().expect("W3C-valid");
        }
    }
}
