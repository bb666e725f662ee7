//! The runtime's bounds and admission: a slow listener's queue, requests in flight, HTTP calls
//! at their server, a reused requestId, and identifiers with control characters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use mc_events::*;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_testkit::*;

/// An IDP that accepts connections and never answers: requests that need it stay in flight
/// until the protocol client's timeout.
async fn silent_idp() -> (String, tokio::task::JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    (url, hold)
}

fn enroll_request(id: &str) -> Request {
    Request::from(EnrollAnonymousUserEvent::new(
        TENANT,
        AuthenticationMode::No,
        CLIENT,
    ))
    .with_id(id)
}

/// The number of dropped events an overflow warning reports.
fn dropped_count(event: &Event) -> Option<u64> {
    let Event::WarningEvent(report) = event else {
        return None;
    };
    if report.error_code != error_code::LISTENER_OVERFLOW {
        return None;
    }
    let words: Vec<&str> = report.error_description.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "event(s)")?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_listener_loses_events_with_a_warning_and_still_gets_later_ones() {
    let mut config = RuntimeConfig::new("http://127.0.0.1:1", StoreLocation::Memory);
    config.listener_queue_capacity = 8;
    let runtime = MasterController::start(config).unwrap();

    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, gate) = mpsc::channel::<()>();
    let (seen_tx, seen) = mpsc::channel::<Event>();
    let entered_tx = Mutex::new(entered_tx);
    let gate = Mutex::new(gate);
    let seen_tx = Mutex::new(seen_tx);
    let first = AtomicBool::new(true);
    runtime.add_event_listener(move |event: &Event| {
        if first.swap(false, Ordering::SeqCst) {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv_timeout(WAIT);
        }
        let _ = seen_tx.lock().unwrap().send(event.clone());
    });
    let fast = Recorder::attach(&runtime);

    assert_status(&start(&runtime).await, StatusType::Ok);
    entered
        .recv_timeout(WAIT)
        .expect("the slow listener took the first event");
    // The listener is blocked: 50 results, of which 8 fit in its queue.
    for _ in 0..50 {
        let answer = post(&runtime, GetInformationEvent::new()).await;
        assert_status(&answer, StatusType::Ok); // posters get every result
    }
    release.send(()).unwrap();

    let mut got = Vec::new();
    for _ in 0..(1 + 8 + 1) {
        got.push(
            seen.recv_timeout(WAIT)
                .expect("the slow listener gets events"),
        );
    }
    assert!(got[..9].iter().all(Event::is_result), "{got:#?}");
    assert_eq!(dropped_count(&got[9]), Some(42), "{:#?}", got[9]);

    // Still registered, and no second warning.
    let answer = post(&runtime, GetStateEvent::new()).await;
    assert_status(&answer, StatusType::Ok);
    let later = seen.recv_timeout(WAIT).expect("a later event");
    assert!(matches!(later, Event::GetStateResultEvent(_)), "{later:#?}");

    // The other listener lost nothing.
    fast.wait_for("the last result", |e| {
        matches!(e, Event::GetStateResultEvent(_))
    })
    .await;
    // Nothing lost silently there either: every result arrived or was counted in a warning.
    let events = fast.events();
    let accounted: u64 = events
        .iter()
        .map(|e| dropped_count(e).unwrap_or(u64::from(e.is_result())))
        .sum();
    assert_eq!(accounted, 52);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_in_flight_bound_a_request_is_refused_at_once() {
    let (url, hold) = silent_idp().await;
    let mut config = RuntimeConfig::new(&url, StoreLocation::Memory);
    config.oidc.http_timeout = Duration::from_millis(1500);
    config.max_requests_in_flight = 1;
    let runtime = MasterController::start(config).unwrap();
    assert_status(&start(&runtime).await, StatusType::Ok);

    // Waits on the silent IDP: the one request in flight.
    runtime.forward_event(enroll_request("slow"));
    // Its own result type (typed: another type would be INTERNAL_ERROR here).
    let refused = post(&runtime, GetInformationEvent::new()).await;
    assert_status(&refused, StatusType::Failed);
    let info = &refused.info;
    assert_eq!(info.error_code, error_code::TOO_MANY_REQUESTS);
    assert!(
        info.error_description.contains("retry"),
        "{}",
        info.error_description
    );

    // Once the slow one is answered, requests are accepted again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = post(&runtime, GetInformationEvent::new()).await;
        if answer.info.status == StatusType::Ok {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requestid_still_running_is_refused_and_the_running_request_is_undisturbed() {
    let (url, hold) = silent_idp().await;
    let mut config = RuntimeConfig::new(&url, StoreLocation::Memory);
    config.oidc.http_timeout = Duration::from_millis(1500);
    let runtime = MasterController::start(config).unwrap();
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);

    runtime.forward_event(enroll_request("same"));
    // Posted with the running id: refused to its poster, naming requestId.
    let refused = post_event(
        &runtime,
        Request::from(GetInformationEvent::new()).with_id("same"),
    )
    .await;
    assert_status(&refused, StatusType::InvalidParameter);
    assert!(matches!(refused, Event::GetInformationResultEvent(_)));
    let info = refused.result_info().unwrap();
    assert!(
        info.error_description.contains("requestId"),
        "{}",
        info.error_description
    );
    // Forwarded with the running id: no poster, so the listeners get a warning (not a result).
    runtime.forward_event(Request::from(GetStateEvent::new()).with_id("same"));
    let warning = recorder
        .wait_for("the warning", |e| matches!(e, Event::WarningEvent(_)))
        .await;
    let Event::WarningEvent(report) = &warning else {
        unreachable!()
    };
    assert_eq!(report.error_code, error_code::INVALID_PARAMETER);
    assert_eq!(report.request_id.as_ref().map(|r| r.as_str()), Some("same"));
    assert!(report.error_description.contains("requestId"));

    // The only result the listeners see for "same" is the enrollment's own.
    let own = recorder
        .wait_for("the enrollment's result", |e| {
            e.is_result() && e.request_id().map(|r| r.as_str()) == Some("same")
        })
        .await;
    assert!(matches!(own, Event::StatusResultEvent(_)), "{own:#?}");
    assert_status(&own, StatusType::NotReachable);
    let same_results = recorder
        .events()
        .iter()
        .filter(|e| e.is_result() && e.request_id().map(|r| r.as_str()) == Some("same"))
        .count();
    assert_eq!(same_results, 1);
    // Answered: the id may be used again.
    let reused = post_event(
        &runtime,
        Request::from(GetStateEvent::new()).with_id("same"),
    )
    .await;
    assert_status(&reused, StatusType::Ok);
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_identifiers_are_refused_from_rust_too() {
    let runtime = MasterController::start(RuntimeConfig::new(
        "http://127.0.0.1:1",
        StoreLocation::Memory,
    ))
    .unwrap();
    assert_status(&start(&runtime).await, StatusType::Ok);
    let nul_tenant = post(
        &runtime,
        EnrollAnonymousUserEvent::new("de\0mo", AuthenticationMode::No, CLIENT),
    )
    .await;
    assert_status(&nul_tenant, StatusType::InvalidParameter);
    assert!(nul_tenant
        .info
        .error_description
        .contains("field `tenantId`"));

    let nul_id = post_event(&runtime, Request::from(GetStateEvent::new()).with_id("r\0")).await;
    assert_status(&nul_id, StatusType::InvalidParameter);
    assert!(nul_id
        .result_info()
        .unwrap()
        .error_description
        .contains("field `requestId`"));
}

/// A server that answers every request after 300 ms and counts how many it held at once.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    let most = Arc::new(AtomicUsize::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let most_seen = Arc::clone(&most);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (most, now) = (Arc::clone(&most_seen), Arc::clone(&now));
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let mut read = 0;
                // The request head (no body on GET).
                while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let inside = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(inside, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (url, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_calls_at_their_server_are_bounded() {
    let idp = idp().await;
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    config.max_http_in_flight = 2;
    let runtime = MasterController::start(config).unwrap();
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let (url, most) = counting_server().await;
    let calls = (0..6).map(|_| {
        let runtime = runtime.clone();
        let url = url.clone();
        async move { post(&runtime, CreateHttpCommonRequest::new(url, HttpMethod::Get)).await }
    });
    let results = futures::future::join_all(calls).await;
    for result in &results {
        assert_status(result, StatusType::Ok);
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "at most 2 at the server at once, and 2 used"
    );
}
