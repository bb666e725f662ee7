//! Shared setup for the workspace's tests (dev-only, `publish = false`): a real development
//! IDP on a free loopback port, runtimes talking HTTP to it on a memory or temporary store,
//! posting with a bounded wait that returns the request's own typed result, enrollment, and a
//! recorder of the events listeners receive; [`identified`], the demo user's login through the
//! dev IDP's form; [`browser`], a headless Chromium over WebDriver for
//! the tests that drive a real IDP's login page.
//!
//! It is a dev-dependency only: no product crate may depend on it. It uses only the public
//! API of mc-runtime, mc-events and mc-devidp (and `mc_store::KdfSettings::for_tests`, the
//! cheap password KDF), so a test written with it tests what a host app can do.
//!
//! Its one test target, `fuzz_seeds` (the file `fuzz/replay.rs`), is not about this setup: it
//! replays the fuzz targets' committed seeds in the stable suite and is registered here because
//! this dev-only crate may turn on the `fuzzing` features of mc-oidc and mc-store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_devidp::{DevIdp, DevIdpConfig};
use mc_events::*;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};

pub use mc_devidp;

pub mod browser;
pub mod identified;

/// The dev IDP's demo tenant.
pub const TENANT: &str = "demo";
/// The dev IDP's client for anonymous enrollment.
pub const CLIENT: &str = "AnonymousUserEnrollment";
/// The dev IDP's demo audience (its `/demo/echo` resource accepts its tokens).
pub const AUDIENCE: &str = "demo-api";
/// Generous: the dev IDP answers in milliseconds; this only keeps a broken test from hanging.
pub const WAIT: Duration = Duration::from_secs(20);

/// A development IDP with its default tenants on a free port of 127.0.0.1.
pub async fn idp() -> DevIdp {
    idp_with(DevIdpConfig::default()).await
}

/// A development IDP with `config` on a free port of 127.0.0.1.
pub async fn idp_with(config: DevIdpConfig) -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().expect("an address"), config)
        .await
        .expect("dev IDP starts")
}

/// A config whose demo audience may receive its token at the server's own origin (where the
/// dev IDP's `/demo/echo` resource lives).
pub fn config_at(server_url: &str, store: StoreLocation) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(server_url, store);
    // A server URL that is no valid origin (a test of bad URLs) simply allows nothing.
    let _ = config.audience_origins.allow(AUDIENCE, server_url);
    config
}

/// As [`config_at`], with a cheap password KDF: only the tests of the KDF itself need the real
/// 600,000 iterations (measured in benches/), the rest would pay seconds per password.
pub fn fast_config(server_url: &str, store: StoreLocation) -> RuntimeConfig {
    let mut config = config_at(server_url, store);
    config.store_settings.kdf = mc_store::KdfSettings::for_tests(1_000);
    config
}

/// A started runtime with [`config_at`].
pub fn runtime_at(server_url: &str, store: StoreLocation) -> MasterController {
    MasterController::start(config_at(server_url, store)).expect("runtime starts")
}

/// A started runtime on a memory store talking to `idp`.
pub fn memory_runtime(idp: &DevIdp) -> MasterController {
    runtime_at(&idp.base_url(), StoreLocation::Memory)
}

/// Posts a request and returns its own result type, waiting at most [`WAIT`] (then the
/// result has status TIMEOUT, which the test's status assertion reports).
pub async fn post<E: RequestType>(runtime: &MasterController, event: E) -> E::Result {
    runtime.post_with_timeout(event, WAIT).await
}

/// The untyped form of [`post`], for requests chosen at run time (the state table).
pub async fn post_event(runtime: &MasterController, request: impl Into<Request>) -> Event {
    runtime.post_event_with_timeout(request, WAIT).await
}

/// StartEvent.
pub async fn start(runtime: &MasterController) -> StartResultEvent {
    post(runtime, StartEvent::new()).await
}

/// Anonymous enrollment in [`TENANT`] with [`CLIENT`], no authentication.
pub async fn enroll(runtime: &MasterController) -> StatusResultEvent {
    post(
        runtime,
        EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT),
    )
    .await
}

/// A memory runtime on `idp`, started and with one anonymous user enrolled (asserted OK).
pub async fn enrolled_memory_runtime(idp: &DevIdp) -> MasterController {
    let runtime = memory_runtime(idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    runtime
}

/// The runtime's state, asked with GetStateEvent.
pub async fn state_of(runtime: &MasterController) -> SdkState {
    let answer = post(runtime, GetStateEvent::new()).await;
    assert_status(&answer, StatusType::Ok);
    answer.sdk_state
}

/// Asserts a result's (typed or untyped) status, printing the whole answer when it differs.
pub fn assert_status<R: Clone + Into<Event>>(answer: &R, expected: StatusType) {
    let event: Event = answer.clone().into();
    assert_eq!(
        event.status(),
        Some(expected),
        "unexpected answer: {event:#?}"
    );
}

/// The sdkState of the results that carry one.
pub fn sdk_state(event: &Event) -> SdkState {
    match event {
        Event::StartResultEvent(e) => e.sdk_state,
        Event::RestartResultEvent(e) => e.sdk_state,
        Event::GetStateResultEvent(e) => e.sdk_state,
        Event::GetInformationResultEvent(e) => e.sdk_state,
        Event::DeleteUserResultEvent(e) => e.sdk_state,
        Event::SwitchWorkspaceResultEvent(e) => e.sdk_state,
        other => panic!("no sdkState in {other:#?}"),
    }
}

/// Records every event a listener receives.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl Recorder {
    /// A recorder listening to `runtime`.
    pub fn attach(runtime: &MasterController) -> Recorder {
        let recorder = Recorder::default();
        let sink = recorder.0.clone();
        runtime.add_event_listener(move |event: &Event| {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(event.clone())
        });
        recorder
    }

    /// What it received so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until an event matching `pred` arrived (listeners run on their own threads);
    /// fails the test after [`WAIT`], listing what did arrive.
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
