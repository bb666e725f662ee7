//! Shared setup: a real development IDP on 127.0.0.1 and runtimes talking HTTP to it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_devidp::{DevIdp, DevIdpConfig};
use mc_events::*;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};

pub const TENANT: &str = "demo";
pub const CLIENT: &str = "AnonymousUserEnrollment";
pub const AUDIENCE: &str = "demo-api";
/// Generous: the dev IDP answers in milliseconds; this only keeps a broken test from hanging.
pub const WAIT: Duration = Duration::from_secs(20);

pub async fn idp() -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), DevIdpConfig::default())
        .await
        .expect("dev IDP starts")
}

/// A config whose demo audience may receive its token at the IDP's own origin (where the
/// dev IDP's `/demo/echo` resource lives).
pub fn config_at(server_url: &str, store: StoreLocation) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(server_url, store);
    // A server URL that is no valid origin (a test of bad URLs) simply allows nothing.
    let _ = config.audience_origins.allow(AUDIENCE, server_url);
    config
}

pub fn runtime_at(server_url: &str, store: StoreLocation) -> MasterController {
    MasterController::start(config_at(server_url, store)).expect("runtime starts")
}

pub fn memory_runtime(idp: &DevIdp) -> MasterController {
    runtime_at(&idp.base_url(), StoreLocation::Memory)
}

/// A config whose password KDF is cheap: the lockout logic does not depend on the count, and
/// the real 600,000 iterations are measured in benches/, not paid in every test.
pub fn fast_config(server_url: &str, store: StoreLocation) -> RuntimeConfig {
    let mut config = config_at(server_url, store);
    config.store_settings.kdf = mc_store::KdfSettings::for_tests(1_000);
    config
}

/// Records every event a listener receives.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl Recorder {
    pub fn attach(runtime: &MasterController) -> Recorder {
        let recorder = Recorder::default();
        let sink = recorder.0.clone();
        runtime.add_event_listener(move |event: &Event| sink.lock().unwrap().push(event.clone()));
        recorder
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until an event matching `pred` arrived (listeners run on their own threads).
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what} among {:#?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

pub async fn post(runtime: &MasterController, request: impl Into<Request>) -> Event {
    runtime.post_event_with_timeout(request, WAIT).await
}

pub fn assert_status(event: &Event, expected: StatusType) {
    assert_eq!(
        event.status(),
        Some(expected),
        "unexpected answer: {event:#?}"
    );
}

pub async fn start(runtime: &MasterController) -> Event {
    post(runtime, StartEvent::new()).await
}

pub async fn enroll(runtime: &MasterController) -> Event {
    post(
        runtime,
        EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT),
    )
    .await
}

pub fn sdk_state(event: &Event) -> SdkState {
    match event {
        Event::StartResultEvent(e) => e.sdk_state,
        Event::RestartResultEvent(e) => e.sdk_state,
        Event::GetStateResultEvent(e) => e.sdk_state,
        Event::GetInformationResultEvent(e) => e.sdk_state,
        Event::DeleteUserResultEvent(e) => e.sdk_state,
        other => panic!("no sdkState in {other:#?}"),
    }
}

pub async fn state_of(runtime: &MasterController) -> SdkState {
    sdk_state(&post(runtime, GetStateEvent::new()).await)
}
