//! mc-ffi: the mc-runtime `MasterController` for Kotlin, Swift and Python through UniFFI
//! (proc-macros, no UDL). The namespace is `mc_runtime`: Kotlin package `uniffi.mc_runtime`,
//! Swift module `mc_runtime`, Python module `mc_runtime`.
//!
//! What it is for: a thin, typed boundary. [`MasterController`] wraps
//! `mc_runtime::MasterController`; the requests and events are mc-events' own types
//! ([`RequestEvent`], [`Event`] and every request, result and pushed record), derived for UniFFI
//! by mc-events' feature `uniffi` in the namespace `mc_events` (Kotlin package
//! `uniffi.mc_events`, Swift and Python module `mc_events`); host-implemented interfaces ([`EventListener`],
//! [`SynchronousEventHandler`], [`BiometricKeyProvider`], [`KeyProvider`], [`LogSink`]) adapt
//! to the runtime's traits. `post_json` serves wrappers that prefer strings. `docs/bindings.md`
//! says how each binding is built and shipped, which thread calls back, and how errors map.
//!
//! Errors cross as result statuses (every request gets a result event, also on invalid input,
//! timeouts and a stopped runtime); only creating a controller or installing a log sink can
//! throw, with a typed [`ControllerError`]. Host callbacks that throw are caught and logged.
//!
//! What it must not touch: runtime logic, wire formats, the store format. It never logs an
//! event's fields (they may hold a token or a password).

mod callbacks;
mod logging;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use callbacks::{
    BiometricError, BiometricKeyProvider, EventListener, HostError, JsonEventListener, KeyProvider,
    SynchronousEventHandler,
};
pub use logging::{clear_log_sink, set_log_sink, LogLevel, LogSink};
pub use mc_events::{Event, RequestEvent, StatusType};

uniffi::setup_scaffolding!("mc_runtime");

/// Why a controller could not be created or logging not set up. Each says what to fix.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ControllerError {
    /// A setting is unusable; the message names it.
    #[error("invalid configuration: {message}")]
    InvalidConfiguration { message: String },
    /// The store could not be opened (permissions, a damaged or newer file, the key).
    #[error("the store could not be opened: {message}")]
    StoreUnavailable { message: String },
    /// The runtime could not start (threads, TLS setup).
    #[error("the runtime could not start: {message}")]
    StartFailed { message: String },
    /// This build cannot do what was asked; the message says what to use instead.
    #[error("not supported: {message}")]
    NotSupported { message: String },
    /// Another tracing subscriber owns this process's logs.
    #[error("log forwarding is unavailable: {message}")]
    LoggingUnavailable { message: String },
}

/// Where enrolled users are kept.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum StoreLocation {
    /// A store file and its 0600 key file in this directory (created if missing). On a phone:
    /// the app's private files directory.
    Directory { path: String },
    /// Memory only, lost when the controller stops: tests and demos.
    Memory,
}

/// Settings of one controller. Only `server_url` and `store` are required.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct MasterControllerConfig {
    /// Base URL of the IDP, e.g. `https://idp.example.com` (Keycloak: without `/realms/..`).
    pub server_url: String,
    pub store: StoreLocation,
    /// How the issuer is made from server URL and tenant: `{server}/realms/{tenant}`
    /// (Keycloak, default) or `{server}` for single-issuer IDPs.
    #[uniffi(default = "{server}/realms/{tenant}")]
    pub issuer_template: String,
    /// Clock tolerance for token checks, in seconds.
    #[uniffi(default = 60)]
    pub clock_tolerance_secs: i64,
    /// Allow plain http to hosts other than loopback. Keep false outside development.
    #[uniffi(default = false)]
    pub allow_insecure_http: bool,
    /// The text of the biometric prompt when logging in with mode BIOMETRIC.
    #[uniffi(default = None)]
    pub biometric_prompt: Option<String>,
    /// Audience -> origins that may receive its IAM token (`https://api.example.com`,
    /// a `*.` wildcard host such as `*.example.com`, plain http only to loopback). Without an
    /// entry, the token of an audience is sent nowhere: a CreateHttpCommonRequest with it
    /// fails with TOKEN_ORIGIN_NOT_ALLOWED and nothing is sent.
    // No slash followed by a star in these docs: Kotlin and Swift block comments nest, so it
    // would comment out the rest of the generated file.
    #[uniffi(default)]
    pub audience_origins: HashMap<String, Vec<String>>,
}

impl MasterControllerConfig {
    fn to_runtime(
        &self,
        biometric: Option<Arc<dyn BiometricKeyProvider>>,
    ) -> Result<mc_runtime::RuntimeConfig, ControllerError> {
        if self.server_url.trim().is_empty() {
            return Err(ControllerError::InvalidConfiguration {
                message: "serverUrl is empty: give the IDP's base URL".into(),
            });
        }
        if self.clock_tolerance_secs < 0 {
            return Err(ControllerError::InvalidConfiguration {
                message: "clockToleranceSecs is negative: give 0 or more seconds".into(),
            });
        }
        let store = match &self.store {
            StoreLocation::Directory { path } if path.trim().is_empty() => {
                return Err(ControllerError::InvalidConfiguration {
                    message: "store directory is empty: give the app's private directory".into(),
                })
            }
            StoreLocation::Directory { path } => {
                mc_runtime::StoreLocation::Directory(PathBuf::from(path))
            }
            StoreLocation::Memory => mc_runtime::StoreLocation::Memory,
        };
        let mut config = mc_runtime::RuntimeConfig::new(self.server_url.clone(), store);
        config.oidc.issuer_template = self.issuer_template.clone();
        config.oidc.clock_tolerance_secs = self.clock_tolerance_secs;
        config.oidc.allow_insecure_http = self.allow_insecure_http;
        if let Some(prompt) = &self.biometric_prompt {
            config.biometric_prompt = prompt.clone();
        }
        for (audience, origins) in &self.audience_origins {
            for origin in origins {
                config
                    .audience_origins
                    .allow(audience, origin)
                    .map_err(|e| ControllerError::InvalidConfiguration {
                        message: format!("audienceOrigins[{audience}]: {e}"),
                    })?;
            }
        }
        config.biometric = biometric.map(|provider| {
            Arc::new(callbacks::HostBiometric(provider))
                as Arc<dyn mc_runtime::BiometricKeyProvider>
        });
        Ok(config)
    }
}

/// The MasterController of an app: post requests, get one result event per request, and
/// receive pushed events through listeners. Safe to use from any thread. The runtime stops
/// when the object is destroyed (Kotlin `close()`, Swift deinit, Python garbage collection)
/// or on [`MasterController::shutdown`].
#[derive(uniffi::Object)]
pub struct MasterController {
    runtime: mc_runtime::MasterController,
}

impl std::fmt::Debug for MasterController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterController").finish_non_exhaustive()
    }
}

fn timeout(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms)
}

#[uniffi::export]
impl MasterController {
    /// Opens the store and starts the runtime's threads. Post `StartEvent` next.
    /// `biometric_key_provider` enables mode BIOMETRIC (without one it answers NOT_SUPPORTED);
    /// `key_provider` supplies the platform keystore key that wraps mode NO's credentials
    /// (without one: a 0600 key file in the store directory).
    #[uniffi::constructor(default(key_provider = None, biometric_key_provider = None))]
    pub fn new(
        config: MasterControllerConfig,
        key_provider: Option<Arc<dyn KeyProvider>>,
        biometric_key_provider: Option<Arc<dyn BiometricKeyProvider>>,
    ) -> Result<Arc<Self>, ControllerError> {
        let mut config = config.to_runtime(biometric_key_provider)?;
        config.key_provider = key_provider.map(|provider| {
            Arc::new(callbacks::HostKeyProvider(provider)) as Arc<dyn mc_runtime::KeyProvider>
        });
        let runtime = mc_runtime::MasterController::start(config).map_err(|error| match error {
            mc_runtime::StartError::Store(error) => ControllerError::StoreUnavailable {
                message: error.to_string(),
            },
            other => ControllerError::StartFailed {
                message: other.to_string(),
            },
        })?;
        Ok(Arc::new(Self { runtime }))
    }

    /// Posts a request and returns its result event (which the listeners receive too). Never
    /// throws: invalid input, refusals and a stopped runtime are result statuses.
    pub async fn post_event(&self, event: RequestEvent) -> Event {
        self.runtime.post_event(event).await
    }

    /// As `post_event`, but stops waiting after `timeout_ms`: the answer is then the request's
    /// result type with status TIMEOUT. The request goes on; its real result reaches listeners.
    pub async fn post_event_with_timeout(&self, event: RequestEvent, timeout_ms: u64) -> Event {
        self.runtime
            .post_event_with_timeout(event, timeout(timeout_ms))
            .await
    }

    /// Posts a request without waiting; its result reaches the listeners. Returns the request
    /// id the result will carry.
    pub fn forward_event(&self, event: RequestEvent) -> String {
        self.runtime.forward_event(event).into_string()
    }

    /// Posts a request in its JSON form (docs/events.md) and returns the result's JSON. A line
    /// that is not a valid request is answered with INVALID_PARAMETER naming the problem.
    pub async fn post_json(&self, json: String) -> String {
        self.runtime.post_json(&json, None).await.to_json()
    }

    /// As `post_json`, with a wait limit as in `post_event_with_timeout`.
    pub async fn post_json_with_timeout(&self, json: String, timeout_ms: u64) -> String {
        self.runtime
            .post_json(&json, Some(timeout(timeout_ms)))
            .await
            .to_json()
    }

    /// Registers a listener for every event. Keep the returned registration as long as the
    /// listener should receive events: dropping it (Kotlin `close()` or garbage collection,
    /// Swift deinit, Python garbage collection) removes the listener, as `remove()` does.
    pub fn add_event_listener(
        self: Arc<Self>,
        listener: Arc<dyn EventListener>,
    ) -> Arc<ListenerRegistration> {
        let handle = self
            .runtime
            .add_event_listener(callbacks::ListenerAdapter(listener));
        ListenerRegistration::new(&self, handle)
    }

    /// As `add_event_listener`, delivering each event's JSON.
    pub fn add_json_event_listener(
        self: Arc<Self>,
        listener: Arc<dyn JsonEventListener>,
    ) -> Arc<ListenerRegistration> {
        let handle = self
            .runtime
            .add_event_listener(callbacks::JsonListenerAdapter(listener));
        ListenerRegistration::new(&self, handle)
    }

    /// Registers a handler for the events the runtime pushes on its own (not results).
    pub fn add_synchronous_event_handler(
        self: Arc<Self>,
        handler: Arc<dyn SynchronousEventHandler>,
    ) -> Arc<ListenerRegistration> {
        let handle = self
            .runtime
            .add_synchronous_event_handler(callbacks::HandlerAdapter(handler));
        ListenerRegistration::new(&self, handle)
    }

    /// Stops the runtime and closes the store. Later posts are answered with INTERNAL_ERROR.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }
}

/// A registered listener or handler. `remove()` stops delivery, and so does dropping the
/// registration (a garbage-collected registration does not leave its listener and its thread
/// behind). The registration does not keep the controller alive.
#[derive(uniffi::Object)]
pub struct ListenerRegistration {
    controller: Weak<MasterController>,
    handle: mc_runtime::ListenerHandle,
}

impl ListenerRegistration {
    fn new(controller: &Arc<MasterController>, handle: mc_runtime::ListenerHandle) -> Arc<Self> {
        Arc::new(Self {
            controller: Arc::downgrade(controller),
            handle,
        })
    }
}

impl Drop for ListenerRegistration {
    fn drop(&mut self) {
        self.remove();
    }
}

#[uniffi::export]
impl ListenerRegistration {
    /// Stops delivery to the listener: events already queued for it are dropped (a call
    /// already running finishes). Returns false when it was removed before or the controller
    /// is gone; calling it again is harmless.
    pub fn remove(&self) -> bool {
        match self.controller.upgrade() {
            Some(controller) => controller.runtime.remove_event_listener(self.handle),
            None => false,
        }
    }
}

/// The event's `type` name, e.g. `"ExchangeIamTokenResultEvent"`.
#[uniffi::export]
pub fn event_type_name(event: &Event) -> String {
    event.type_name().to_string()
}

/// One status for every answer: the result's `status`; an HTTP transport outcome mapped
/// (`Success` to `OK`, `ServerNotReachable` to `NOT_REACHABLE`, `Timeout` to `TIMEOUT`, others
/// to `FAILED`); `INVALID_STATE` for an `InvalidStateEvent`; none for other pushed events.
#[uniffi::export]
pub fn event_status(event: &Event) -> Option<StatusType> {
    event.status()
}

/// The id of the request the event answers or was caused by (results, `InvalidStateEvent`,
/// the error events), if any.
#[uniffi::export]
pub fn event_request_id(event: &Event) -> Option<String> {
    event.request_id().map(|id| id.as_str().to_string())
}

/// The version of this library (also `sdkVersion` of `GetInformationResultEvent`).
#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
