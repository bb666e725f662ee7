//! SynchronousEventHandler as the MC-SDK's executeEvent: the results of forwarded requests and
//! the pushed events, on one runtime thread, in emission order; a handler may post from inside
//! the callback; a panicking handler is reported to the others.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_events::*;
use mc_runtime::{MasterController, SynchronousEventHandler};
use mc_testkit::*;

/// A handler from a closure, recording each call's event and thread name.
struct Handler<F>(F);

impl<F: Fn(&Event) + Send + Sync + 'static> SynchronousEventHandler for Handler<F> {
    fn execute_event(&self, event: &Event) {
        (self.0)(event)
    }
}

fn recording(rt: &MasterController) -> mpsc::Receiver<(Event, String)> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    rt.add_synchronous_event_handler(Handler(move |event: &Event| {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        let _ = tx.lock().unwrap().send((event.clone(), thread));
    }));
    rx
}

/// Before: a host with only a synchronous handler never saw the result of what it forwarded.
#[tokio::test]
async fn a_forwarded_request_s_result_reaches_the_synchronous_handler() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let calls = recording(&rt);
    let id = rt.forward_event(StartEvent::new());
    let (event, thread) = calls.recv_timeout(WAIT).expect("the forwarded result");
    assert_eq!(event.type_name(), "StartResultEvent", "{event:?}");
    assert_eq!(event.request_id(), Some(&id));
    assert_eq!(thread, "mc-sync-handlers");

    // The result of a request posted (not forwarded) goes to its poster, not to the handler.
    let posted = rt.post(GetStateEvent::new()).await;
    assert_eq!(posted.info.status, StatusType::Ok);
    let forwarded = rt.forward_event(GetInformationEvent::new());
    let (event, _) = calls.recv_timeout(WAIT).expect("the next forwarded result");
    assert_eq!(
        event.request_id(),
        Some(&forwarded),
        "the posted request's result reached the handler: {event:?}"
    );
}

/// 1,000 forwarded requests: their results arrive in the order they were forwarded, all on the
/// same thread, none lost.
#[tokio::test]
async fn order_is_kept_across_a_thousand_events() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    rt.post(StartEvent::new()).await;
    let calls = recording(&rt);
    let ids: Vec<RequestId> = (0..1_000)
        .map(|_| rt.forward_event(GetStateEvent::new()))
        .collect();
    let mut got = Vec::new();
    let mut threads = std::collections::HashSet::new();
    while got.len() < ids.len() {
        let (event, thread) = calls.recv_timeout(WAIT).expect("every result arrives");
        threads.insert(thread);
        if event.is_result() {
            got.push(event.request_id().cloned().expect("a result has an id"));
        }
    }
    assert_eq!(got, ids);
    assert_eq!(threads.len(), 1, "{threads:?}");
}

/// A handler that posts from inside its callback (waiting for the result there) does not
/// deadlock the runtime; a handler that forwards gets that result too.
#[tokio::test]
async fn a_handler_may_post_from_inside_the_callback() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let (tx, rx) = mpsc::channel::<Event>();
    let tx = Mutex::new(tx);
    let inner = rt.clone();
    rt.add_synchronous_event_handler(Handler(move |event: &Event| {
        let _ = tx.lock().unwrap().send(event.clone());
        if let Event::StartResultEvent(_) = event {
            // Waits on this thread for a result the runtime makes meanwhile.
            let answer = futures::executor::block_on(inner.post(GetInformationEvent::new()));
            let _ = tx.lock().unwrap().send(answer.into());
            inner.forward_event(GetStateEvent::new());
        }
    }));
    rt.forward_event(StartEvent::new());
    let mut names = Vec::new();
    while names.len() < 3 {
        let event = rx.recv_timeout(WAIT).expect("no deadlock");
        names.push(event.type_name());
    }
    assert_eq!(
        names,
        [
            "StartResultEvent",
            "GetInformationResultEvent",
            "GetStateResultEvent"
        ]
    );
    // The runtime still answers.
    let state = rt
        .post_with_timeout(GetStateEvent::new(), Duration::from_secs(5))
        .await;
    assert_eq!(state.info.status, StatusType::Ok);
}

/// A panicking handler: the other handlers and listeners get a WarningEvent LISTENER; the
/// panicking one keeps getting events and is not told about itself.
#[tokio::test]
async fn a_panicking_handler_is_caught_and_reported() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let (bad_tx, bad_rx) = mpsc::channel::<Event>();
    let bad_tx = Mutex::new(bad_tx);
    rt.add_synchronous_event_handler(Handler(move |event: &Event| {
        let _ = bad_tx.lock().unwrap().send(event.clone());
        panic!("handler bug");
    }));
    let good = recording(&rt);
    let listener = Recorder::attach(&rt);
    rt.forward_event(StartEvent::new());
    listener
        .wait_for("the warning", |e| {
            matches!(e, Event::WarningEvent(r) if r.error_code == error_code::LISTENER_PANICKED)
        })
        .await;
    let mut good_saw = Vec::new();
    while !good_saw
        .iter()
        .any(|e: &Event| matches!(e, Event::WarningEvent(_)))
    {
        good_saw.push(
            good.recv_timeout(WAIT)
                .expect("the good handler is called")
                .0,
        );
    }
    rt.forward_event(GetStateEvent::new());
    let mut bad_saw = Vec::new();
    while !bad_saw
        .iter()
        .any(|e: &Event| matches!(e, Event::GetStateResultEvent(_)))
    {
        bad_saw.push(bad_rx.recv_timeout(WAIT).expect("still registered"));
    }
    assert!(
        !bad_saw.iter().any(|e| matches!(e, Event::WarningEvent(_))),
        "{bad_saw:?}"
    );
    let _ = Arc::new(());
}
