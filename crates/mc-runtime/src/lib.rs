//! mc-runtime: the MasterController of an app. The host posts request events; the runtime
//! answers each with exactly one result event and pushes events of its own to listeners.
//!
//! What it is for: the typed event bus and its actors (enrollment, login, token exchange, HTTP
//! proxy, storage), each the owner of its requests' work and state, and the controller that
//! admits requests and runs the one reducer (`src/reducer.rs`, the only place the SDK state
//! changes). The flow of one event from [`MasterController::post`] to the listeners is drawn in
//! `docs/architecture.md`; which actor handles which request is the table in `src/actors/mod.rs`.
//!
//! Public surface: what a host or a binding needs ([`MasterController`], [`RuntimeConfig`] and
//! its parts, [`EventListener`], [`SynchronousEventHandler`], [`ListenerHandle`],
//! [`StartError`], [`logging`]); actors, failures, the state table and the listener machinery
//! are internal. Which thread calls which callback: [`SynchronousEventHandler`] and
//! `docs/architecture.md` ("Threads of every callback"). Feature `testing` (tests only) adds
//! test hooks here and in mc-store and mc-oidc; feature `software-biometric` re-exports
//! mc-store's `SoftwareBiometric` (a biometric stand-in) for demos; feature `loopback` (desktop
//! hosts only) adds the module `loopback`, the RFC 8252 receiver of the login redirect.
//!
//! What it must not touch: wire formats (mc-oidc), key and JWT handling (mc-jose), the store's
//! file format (mc-store) and the JSON form of events (mc-events). It never logs a secret.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mc_runtime::StartError> {
//! use mc_events::{AuthenticationMode, EnrollAnonymousUserEvent, StartEvent};
//! use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
//!
//! let runtime = MasterController::start(RuntimeConfig::new(
//!     "http://127.0.0.1:8080",
//!     StoreLocation::Directory("/tmp/mc-store".into()),
//! ))?;
//! runtime.add_event_listener(|event: &mc_events::Event| println!("{}", event.to_json()));
//! runtime.post_event(StartEvent::new()).await;
//! let result = runtime
//!     .post_event(EnrollAnonymousUserEvent::new("demo", AuthenticationMode::No, "AnonymousUserEnrollment"))
//!     .await;
//! assert_eq!(result.status(), Some(mc_events::StatusType::Ok));
//! # Ok(()) }
//! ```

// Internals: the host API below is what hosts and bindings use.
pub(crate) mod actors;
pub mod config;
mod controller;
pub(crate) mod failure;
pub(crate) mod listeners;
pub mod logging;
#[cfg(feature = "loopback")]
pub mod loopback;
pub(crate) mod reducer;
mod session;
pub(crate) mod state;
pub(crate) mod trace;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use actix::prelude::*;
use mc_events::{
    error_code, Event, ExchangeIamTokenResultEvent, Request, RequestEvent, RequestId, RequestType,
    ResultInfo, ResultType, SdkState, StatusType, TraceContext,
};
use mc_store::{MemoryBackend, StaticKeyProvider, UserStore};
use tokio::sync::oneshot;

pub use config::{
    AudienceOrigins, AudienceScopes, OidcConfig, RuntimeConfig, StoreLocation, TlsSettings,
};
pub use listeners::{
    EventListener, ListenerHandle, SynchronousEventHandler, DEFAULT_QUEUE_CAPACITY,
};
/// A biometric stand-in without a sensor, for demos (the event console) and tests.
#[cfg(feature = "software-biometric")]
pub use mc_store::{ScriptedOutcome, SoftwareBiometric};

// For bindings (mc-ffi, mc-capi): what they need from below, so they depend on this API only.
pub use mc_oidc::DpopMode;
pub use mc_store::{
    BiometricError, BiometricKeyProvider, KeyProvider, StoreError, UserId, KEY_LEN,
};

use actors::enrollment::EnrollmentActor;
use actors::http_proxy::{HttpProxyActor, HttpSettings};
use actors::login::{ConnectExchange, LoginActor};
use actors::storage::StorageActor;
use actors::token_exchange::{TokenCache, TokenExchangeActor};
use controller::{Controller, PublishedState, Submit, Workers};
use listeners::Listeners;
use session::SessionSlot;

/// Why a runtime could not be created. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the store could not be opened: {0}")]
    Store(#[from] StoreError),
    #[error("the protocol client could not be set up: {0}")]
    Protocol(#[from] mc_oidc::OidcError),
    #[error("the HTTP proxy could not be set up: {0}")]
    Http(String),
    #[error("the runtime thread could not be started: {0}")]
    Thread(String),
}

/// A running runtime. Cheap to clone; the runtime stops when the last clone is dropped (or
/// on [`MasterController::shutdown`]).
#[derive(Clone)]
pub struct MasterController {
    inner: Arc<Inner>,
}

struct Inner {
    controller: Addr<Controller>,
    storage: Addr<StorageActor>,
    listeners: Listeners,
    system: actix::System,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Request ids are this random prefix plus a counter: unique, and cheap. Trace ids are
    /// random (`trace_prefix` is their fallback should the random source fail).
    id_prefix: String,
    trace_prefix: String,
    next_id: AtomicU64,
    /// What the cached-token fast path reads: the state, the session, the cache.
    state: Arc<PublishedState>,
    session: SessionSlot,
    cache: Arc<TokenCache>,
    /// Set by shutdown (or drop): a request left unanswered after it is RUNTIME_STOPPED, before
    /// it a part of the runtime failed (COMPONENT_FAILED).
    stopping: AtomicBool,
    /// Whether the IDP was reached, for the DISCONNECTED event at shutdown.
    oidc: mc_oidc::OidcClient,
    /// The IDP base URL in use (StartEvent may replace the configured one).
    active_server: Arc<Mutex<String>>,
}

impl Inner {
    /// Closes the store first (so its file is free when this returns), then stops the actors.
    fn stop(&self) {
        // No token from the cache after a shutdown either.
        self.state.set(SdkState::Uninitialised);
        let first_stop = !self.stopping.swap(true, Ordering::SeqCst);
        if first_stop && self.oidc.reachability() == mc_oidc::Reachability::Reachable {
            // The runtime leaves an IDP it was connected to: the listeners' last word on it
            // (their queues are delivered before their threads end).
            let server_url = self
                .active_server
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            self.listeners.emit(Event::ServerConnectionEvent(
                mc_events::ServerConnectionEvent {
                    connection_state: mc_events::ServerConnectionState::Disconnected,
                    server_url,
                    trace_context: None, // no request caused it: `emit` gives it a fresh one
                },
            ));
        }
        let closing = self.storage.send(actors::storage::Close);
        let _ = futures::executor::block_on(closing);
        self.system.stop();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // Not from the runtime's own thread (a listener holding the last clone).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Opens the store and has the damage it finds pushed as RuntimeErrorEvent (errorType
/// `STORE`): a damaged user is skipped when listing, so no result would say so.
fn open_store(config: &RuntimeConfig, listeners: &Listeners) -> Result<UserStore, StoreError> {
    let store = open_store_only(config)?;
    let report = listeners.clone();
    store.set_damage_observer(Arc::new(move |error: &StoreError| {
        let code = failure::Failure::from_store(error).code;
        report.store_damage(code, error.to_string());
    }));
    Ok(store)
}

fn open_store_only(config: &RuntimeConfig) -> Result<UserStore, StoreError> {
    let biometric = config.biometric.clone();
    let settings = config.store_settings.clone();
    let keys = config.key_provider.clone();
    match &config.store {
        StoreLocation::Directory(dir) => UserStore::open_dir_with(dir, keys, biometric, settings),
        StoreLocation::Memory => {
            let keys = match keys {
                Some(keys) => keys,
                None => Arc::new(StaticKeyProvider::random()?),
            };
            UserStore::open_with(Arc::new(MemoryBackend::new()), keys, biometric, settings)
        }
    }
}

/// The typed result out of the answer to a request of type `E`. The runtime answers every
/// request with its own result type, so the fallback (an INTERNAL_ERROR result naming the
/// event that came instead) is reached only by a bug of ours.
fn typed_answer<E: RequestType>(answer: Event) -> E::Result {
    match E::Result::from_answer(E::KIND, answer) {
        Ok(result) => result,
        Err(other) => {
            let info = ResultInfo::error(
                StatusType::InternalError,
                error_code::INTERNAL_ERROR,
                format!(
                    "{} was answered with {} (a runtime bug; please report it)",
                    E::KIND.name(),
                    other.type_name()
                ),
            )
            .with_request(other.request_id().cloned(), other.trace_context().cloned());
            E::Result::failure(info, SdkState::default())
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl MasterController {
    /// Opens the store and starts the actors on a thread of their own. Posting StartEvent is
    /// the app's next step.
    pub fn start(config: RuntimeConfig) -> Result<MasterController, StartError> {
        let listeners = Listeners::new(config.listener_queue_capacity);
        let store = Arc::new(open_store(&config, &listeners)?);
        let oidc = mc_oidc::OidcClient::new(config.oidc.clone())?;
        let http = HttpProxyActor::new(
            oidc.clone(),
            HttpSettings {
                max_body: config.http_max_response_bytes,
                default_timeout: config.http_default_timeout,
                audience_origins: config.audience_origins.clone(),
                max_in_flight: config.max_http_in_flight,
            },
        )
        .map_err(StartError::Http)?;
        let session = SessionSlot::default();
        let cache = Arc::new(TokenCache::new(oidc.clone(), config.token_refresh_margin));
        let state = Arc::new(PublishedState::default());
        let (actor_session, actor_cache, actor_state) =
            (session.clone(), Arc::clone(&cache), Arc::clone(&state));
        let active_server = Arc::new(Mutex::new(config.server_url.clone()));
        let actor_server = Arc::clone(&active_server);
        let host_oidc = oidc.clone();
        let config = Arc::new(config);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let actor_listeners = listeners.clone();
        let thread = std::thread::Builder::new()
            .name("mc-runtime".into())
            .spawn(move || {
                let system = actix::System::new();
                system.block_on(async move {
                    // The store moves into the one storage thread; Close drops it there.
                    let storage = actors::storage::start(Some(store));
                    let login = LoginActor::new(
                        oidc.clone(),
                        storage.clone(),
                        Arc::clone(&config),
                        actor_session.clone(),
                    )
                    .start();
                    let exchange = TokenExchangeActor::new(
                        oidc.clone(),
                        actor_cache,
                        actor_session.clone(),
                        login.clone(),
                    )
                    .start();
                    login.do_send(ConnectExchange(exchange.clone()));
                    let workers = Workers {
                        enrollment: EnrollmentActor::new(
                            oidc.clone(),
                            Arc::clone(&config),
                            storage.clone(),
                            login.clone(),
                            exchange.clone(),
                            actor_session.clone(),
                        )
                        .start(),
                        http: http.with_tokens(exchange.clone(), actor_session).start(),
                        login,
                        exchange,
                    };
                    let storage_addr = storage;
                    let controller = Controller::new(
                        config,
                        oidc,
                        workers,
                        actor_listeners,
                        actor_state,
                        actor_server,
                    )
                    .start();
                    let _ = started_tx.send((controller, storage_addr, actix::System::current()));
                });
                let _ = system.run();
            })
            .map_err(|e| StartError::Thread(e.to_string()))?;
        let (controller, storage, system) = started_rx
            .recv()
            .map_err(|_| StartError::Thread("the runtime thread ended while starting".into()))?;
        let random = mc_jose::random_bytes(16).map_err(|e| StartError::Thread(e.to_string()))?;
        Ok(MasterController {
            inner: Arc::new(Inner {
                controller,
                storage,
                listeners,
                system,
                thread: Mutex::new(Some(thread)),
                id_prefix: mc_jose::b64url_encode(random.get(..6).unwrap_or_default()),
                trace_prefix: hex(random.get(8..16).unwrap_or_default()),
                next_id: AtomicU64::new(1),
                state,
                session,
                cache,
                stopping: AtomicBool::new(false),
                oidc: host_oidc,
                active_server,
            }),
        })
    }

    /// Posts a request and waits for its own result event, typed: posting an
    /// `ExchangeIamTokenEvent` returns an `ExchangeIamTokenResultEvent`. A request refused in
    /// the current state returns its result with status INVALID_STATE (listeners receive the
    /// `InvalidStateEvent` the MC-SDK sends). An ExchangeIamTokenEvent whose token is cached
    /// and fresh is answered on the calling thread, without an actor hop (same result, same
    /// listeners, same ordering; see `docs/architecture.md`).
    pub async fn post<E: RequestType>(&self, event: E) -> E::Result {
        let answer = self.post_request(event.into(), None).await;
        typed_answer::<E>(answer)
    }

    /// As [`post`](Self::post), giving up waiting after `timeout` (status TIMEOUT; see
    /// [`post_event_with_timeout`](Self::post_event_with_timeout)).
    pub async fn post_with_timeout<E: RequestType>(
        &self,
        event: E,
        timeout: Duration,
    ) -> E::Result {
        let answer = self.post_request(event.into(), Some(timeout)).await;
        typed_answer::<E>(answer)
    }

    /// Posts a request and waits for its result event (which listeners receive too). The
    /// untyped form, for requests built at run time; [`post`](Self::post) is the typed one.
    pub async fn post_event(&self, request: impl Into<Request>) -> Event {
        self.post_request(request.into(), None).await
    }

    /// As [`post_event`](Self::post_event), but gives up waiting after `timeout`: the result is
    /// then the request's result event with status TIMEOUT. The request goes on; its real
    /// result still reaches the listeners.
    pub async fn post_event_with_timeout(
        &self,
        request: impl Into<Request>,
        timeout: Duration,
    ) -> Event {
        self.post_request(request.into(), Some(timeout)).await
    }

    /// Posts a request without waiting; its result reaches the listeners and the synchronous
    /// event handlers (as the MC-SDK's `forwardEvent`). Returns the request's id, which the
    /// result carries.
    pub fn forward_event(&self, request: impl Into<Request>) -> RequestId {
        let request = self.prepare(request.into());
        let id = request
            .request_id
            .clone()
            .unwrap_or_else(|| RequestId::new(""));
        self.inner.listeners.expect_forwarded(id.clone());
        self.inner.controller.do_send(Submit {
            request,
            reply: None,
            timeout: None,
        });
        id
    }

    /// Posts a request in its JSON form (see `docs/events.md`). A line that is not a valid
    /// request is answered with an INVALID_PARAMETER result naming the problem, which the
    /// listeners receive too.
    pub async fn post_json(&self, json: &str, timeout: Option<Duration>) -> Event {
        match Request::from_json(json) {
            Ok(request) => self.post_request(request, timeout).await,
            Err(invalid) => {
                let mut event = Event::invalid_request(&invalid);
                let id = invalid.request_id.clone().unwrap_or_else(|| self.new_id());
                event.set_request(Some(id), invalid.trace_context.clone().map(|t| *t));
                self.inner.listeners.emit(event.clone());
                event
            }
        }
    }

    /// Registers a listener for every event; returns the handle that removes it.
    pub fn add_event_listener(&self, listener: impl EventListener) -> ListenerHandle {
        self.inner.listeners.add(Arc::new(listener))
    }

    /// Stops delivery to a listener. Returns false if it was not registered.
    pub fn remove_event_listener(&self, handle: ListenerHandle) -> bool {
        self.inner.listeners.remove(handle)
    }

    /// Registers a handler for the results of forwarded requests
    /// ([`forward_event`](Self::forward_event)) and the events the runtime pushes on its own,
    /// called on one runtime thread in emission order (see [`SynchronousEventHandler`]).
    /// Remove it with [`remove_event_listener`](Self::remove_event_listener).
    pub fn add_synchronous_event_handler(
        &self,
        handler: impl SynchronousEventHandler,
    ) -> ListenerHandle {
        self.inner.listeners.add_synchronous(Arc::new(handler))
    }

    /// Stops the actors. Requests still running are answered with RUNTIME_STOPPED by their
    /// futures; later posts too.
    pub fn shutdown(&self) {
        self.inner.stop();
    }

    /// Closes the store as shutdown does, but leaves the actors running: the next request
    /// that needs the store meets a component that is gone (COMPONENT_FAILED, and the one
    /// FatalErrorEvent). For tests of that path only.
    #[cfg(feature = "testing")]
    pub fn close_store_for_tests(&self) {
        let closing = self.inner.storage.send(actors::storage::Close);
        let _ = futures::executor::block_on(closing);
    }

    /// How many IDP deletions the store holds queued (sent on later starts and when the IDP is
    /// reachable again). For tests, which wait for a drain to finish.
    #[cfg(feature = "testing")]
    pub async fn queued_idp_deletions_for_tests(&self) -> Result<usize, StoreError> {
        match self
            .inner
            .storage
            .send(actors::storage::CountIdpDeletions)
            .await
        {
            Ok(count) => count,
            Err(_) => Err(StoreError::Closed),
        }
    }

    async fn post_request(&self, request: Request, timeout: Option<Duration>) -> Event {
        // A host's own requestId goes through admission (it may be one still running).
        let own_id = request.request_id.is_none();
        let request = self.prepare(request);
        if own_id {
            if let Some(answer) = self.answer_from_cache(&request) {
                return answer;
            }
        }
        let kind = request.kind();
        let id = request.request_id.clone();
        let trace = request.trace_context.clone();
        let (reply, answer) = oneshot::channel();
        self.inner.controller.do_send(Submit {
            request,
            reply: Some(reply),
            timeout,
        });
        match answer.await {
            Ok(event) => event,
            Err(_) if self.inner.stopping.load(Ordering::SeqCst) => {
                let info = ResultInfo::error(
                    StatusType::InternalError,
                    error_code::RUNTIME_STOPPED,
                    "the runtime stopped before answering; start a new one",
                )
                .with_request(id, trace);
                Event::failure(kind, info)
            }
            // Nobody stopped it: the controller is gone. The listeners learn it once.
            Err(_) => {
                let failure = failure::Failure::component_stopped("controller");
                self.inner.listeners.fatal(failure.description.clone());
                Event::failure(kind, failure.info().with_request(id, trace))
            }
        }
    }

    /// The cached-token fast path: an ExchangeIamTokenEvent whose token is cached and fresh is
    /// answered here, on the poster's thread, without an actor hop. It is as ordered as the
    /// actor path: the reducer publishes the state, and the token-exchange actor changes the
    /// cache, before the request that changed them is answered (ClearIamTokenCache,
    /// DeleteIamTokenByAudience, DeleteUser, Restart), so a post after that answer sees the
    /// change. Anything else (not logged in, `forceUpdate`, a miss) takes the actor path.
    fn answer_from_cache(&self, request: &Request) -> Option<Event> {
        let RequestEvent::ExchangeIamTokenEvent(exchange) = &request.event else {
            return None;
        };
        if exchange.force_update || self.inner.state.get() != SdkState::LoggedIn {
            return None;
        }
        let session = self.inner.session.get()?;
        if exchange.audience == session.enrollment_client_id {
            return None;
        }
        let token = self.inner.cache.fresh(&session.user, &exchange.audience)?;
        let mut answer = Event::ExchangeIamTokenResultEvent(ExchangeIamTokenResultEvent {
            info: ResultInfo::ok(),
            audience: Some(token.audience),
            token: Some(token.token),
            expires_at: Some(token.expires_at),
        });
        answer.set_request(request.request_id.clone(), request.trace_context.clone());
        let id = request.request_id.as_ref().map(RequestId::as_str);
        tracing::debug!(
            request_id = id,
            "ExchangeIamTokenEvent answered from the token cache"
        );
        self.inner.listeners.emit(answer.clone());
        Some(answer)
    }

    fn new_id(&self) -> RequestId {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        RequestId::new(format!("{}-{n}", self.inner.id_prefix))
    }

    /// Gives the request an id and a W3C trace context when it has none.
    fn prepare(&self, mut request: Request) -> Request {
        if request.request_id.is_none() {
            request.request_id = Some(self.new_id());
        }
        if request.trace_context.is_none() {
            request.trace_context = Some(TraceContext::new(self.new_traceparent()));
        }
        request
    }

    /// A W3C traceparent with random ids (128-bit trace id, 64-bit parent id, never all
    /// zero), flags `01`. Should the system's random source fail, the runtime's random
    /// prefix plus a counter (never zero) keeps it valid and unique.
    fn new_traceparent(&self) -> String {
        trace::random_traceparent(&self.inner.trace_prefix)
    }
}
