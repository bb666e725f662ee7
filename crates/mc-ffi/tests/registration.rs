//! Dropping a `ListenerRegistration` removes its listener (a garbage-collected Kotlin or
//! Python registration must not leave its listener and its thread behind); `remove()` stays
//! and is idempotent.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_ffi::{
    event_type_name, Event, EventListener, HostError, MasterController, MasterControllerConfig,
    RequestEvent, StoreLocation,
};

/// Sends the type name of every event it receives.
struct Names(Mutex<Sender<String>>);

impl EventListener for Names {
    fn on_event_received(&self, event: Event) -> Result<(), HostError> {
        let name = event_type_name(&event);
        let _ = self.0.lock().map(|sender| sender.send(name));
        Ok(())
    }
}

fn listener() -> (Arc<dyn EventListener>, Receiver<String>) {
    let (sender, receiver) = channel();
    (Arc::new(Names(Mutex::new(sender))), receiver)
}

fn controller() -> Arc<MasterController> {
    let config = MasterControllerConfig {
        // Never contacted: StartEvent and GetStateEvent need no IDP.
        server_url: "http://127.0.0.1:9".into(),
        store: StoreLocation::Memory,
        issuer_template: "{server}/realms/{tenant}".into(),
        clock_tolerance_secs: 60,
        allow_insecure_http: false,
        biometric_prompt: None,
        audience_origins: Default::default(),
    };
    MasterController::new(config, None, None).expect("a memory controller starts")
}

fn next(receiver: &Receiver<String>) -> String {
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

fn start_event() -> RequestEvent {
    mc_events::StartEvent::new().into()
}

#[test]
fn dropping_a_registration_removes_its_listener() {
    let controller = controller();
    let (kept_listener, kept) = listener();
    let (dropped_listener, dropped) = listener();
    let kept_registration = controller.clone().add_event_listener(kept_listener);
    let dropped_registration = controller.clone().add_event_listener(dropped_listener);

    controller.forward_event(start_event());
    assert_eq!(next(&kept), "StartResultEvent");
    assert_eq!(next(&dropped), "StartResultEvent");

    drop(dropped_registration);
    controller.forward_event(mc_events::GetStateEvent::new().into());
    // The kept listener gets the result; the dropped one never does.
    loop {
        if next(&kept) == "GetStateResultEvent" {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let late: Vec<String> = dropped.try_iter().collect();
    assert!(
        late.is_empty(),
        "a dropped registration still delivered {late:?}"
    );

    // remove() stays, and a second call (or the drop after it) is harmless.
    assert!(kept_registration.remove());
    assert!(!kept_registration.remove());
    drop(kept_registration);
}

#[test]
fn a_registration_outliving_its_controller_drops_quietly() {
    let controller = controller();
    let (only, _events) = listener();
    let registration = controller.clone().add_event_listener(only);
    drop(controller);
    assert!(!registration.remove());
    drop(registration);
}
