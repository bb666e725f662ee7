//! The controller actor: admission and the one reducer. It does no work of its own.
//!
//! Every request enters here ([`Submit`]) and is admitted: its requestId is not one still
//! running; fewer than `max_requests_in_flight` are pending (refused at once otherwise, never
//! queued); its fields are valid; the state table allows it; no other state-changing request
//! is running. It gets a trace span and, if asked, a timeout. A StartEvent once started is
//! answered here (ALREADY_INITIALIZED, with the state and users); Start and Restart apply
//! what the host says about itself (`configuration.serverUrl`, appName, appVersion,
//! locale). Then it goes, as [`Admitted<E>`](crate::actors::Admitted), to the actor that
//! owns its type
//! ([`Controller::route`] is the routing table). When that actor answers, the controller
//! runs the reducer on the [`Outcome`] the actor reported (the only place the SDK state
//! changes), delivers the result to every listener and to the poster, then pushes the
//! events the reducer produced. Work runs in the actors, so a slow enrollment does not hold
//! up a GetInformationEvent posted meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use mc_events::*;
use mc_oidc::OidcClient;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::actors::enrollment::EnrollmentActor;
use crate::actors::http_proxy::HttpProxyActor;
use crate::actors::idp_deletion::DrainIdpDeletions;
use crate::actors::login::LoginActor;
use crate::actors::token_exchange::TokenExchangeActor;
use crate::actors::{Admission, Admitted, Report};
use crate::config::RuntimeConfig;
use crate::failure::Failure;
use crate::listeners::Listeners;
use crate::reducer::{self, Outcome, RuntimeState};

/// The addresses of the actors that do the work.
pub struct Workers {
    pub enrollment: Addr<EnrollmentActor>,
    pub login: Addr<LoginActor>,
    pub exchange: Addr<TokenExchangeActor>,
    pub http: Addr<HttpProxyActor>,
}

/// A request on its way; the host side has already given it an id and a trace context.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    pub request: mc_events::Request,
    pub reply: Option<oneshot::Sender<Event>>,
    pub timeout: Option<Duration>,
}

/// The SDK state as last set by the reducer, readable from any thread (the cached-token
/// fast path of `MasterController::post` reads it).
#[derive(Default)]
pub struct PublishedState(AtomicU8);

impl PublishedState {
    const STATES: [SdkState; 5] = [
        SdkState::Uninitialised,
        SdkState::ActivationRequired,
        SdkState::LoginRequired,
        SdkState::LoggedIn,
        SdkState::Unidentified,
    ];

    pub fn get(&self) -> SdkState {
        let index = usize::from(self.0.load(Ordering::SeqCst));
        Self::STATES.get(index).copied().unwrap_or_default()
    }

    pub(crate) fn set(&self, state: SdkState) {
        let index = Self::STATES.iter().position(|s| *s == state).unwrap_or(0);
        self.0.store(index as u8, Ordering::SeqCst);
    }
}

struct Pending {
    kind: RequestKind,
    trace_context: Option<TraceContext>,
    reply: Option<oneshot::Sender<Event>>,
    span: tracing::Span,
}

pub struct Controller {
    config: Arc<RuntimeConfig>,
    /// Only to read whether the IDP answered lately (ServerConnectionEvent).
    oidc: OidcClient,
    workers: Workers,
    listeners: Listeners,
    state: RuntimeState,
    published: Arc<PublishedState>,
    /// The state-changing request running now, if any; another one waits its turn.
    busy: Option<RequestKind>,
    /// The IDP base URL for new enrollments (StartEvent's `configuration.serverUrl` replaces
    /// the configured one).
    server_url: String,
    /// What the host said about itself at Start / Restart (User-Agent, Accept-Language, logs).
    host: HostApp,
    /// `server_url` for the host side (the DISCONNECTED event at shutdown).
    active_server: Arc<std::sync::Mutex<String>>,
    server_reachable: bool,
    pending: HashMap<RequestId, Pending>,
}

impl Actor for Controller {
    type Context = Context<Self>;
}

/// What the host app said about itself in its latest StartEvent / RestartEvent.
#[derive(Clone, Debug, Default)]
struct HostApp {
    app_name: Option<String>,
    app_version: Option<AppVersion>,
    locale: Option<String>,
}

impl HostApp {
    fn update(
        &mut self,
        locale: &Option<String>,
        app_version: &Option<AppVersion>,
        app_name: &Option<String>,
    ) {
        if locale.is_some() {
            self.locale = locale.clone();
        }
        if app_version.is_some() {
            self.app_version = *app_version;
        }
        if app_name.is_some() {
            self.app_name = app_name.clone();
        }
    }

    fn version(&self) -> Option<String> {
        self.app_version
            .as_ref()
            .map(|v| format!("{}.{}.{}", v.major, v.minor, v.build))
    }

    /// `User-Agent: <appName>/<appVersion> mc-runtime/<version>` (the app name as an HTTP
    /// token: other characters become `_`) and `Accept-Language: <locale>` (validated in
    /// mc-events: a BCP 47 tag, `_` read as `-`).
    fn identity(&self) -> mc_oidc::HostIdentity {
        let runtime = concat!("mc-runtime/", env!("CARGO_PKG_VERSION"));
        let product = self.app_name.as_deref().map(|name| {
            let token: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "!#$%&'*+.^_`|~-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            match self.version() {
                Some(version) => format!("{token}/{version}"),
                None => token,
            }
        });
        mc_oidc::HostIdentity {
            user_agent: product.map(|product| format!("{product} {runtime}")),
            locales: self.locale.as_deref().map(|l| l.replace('_', "-")),
        }
    }
}

/// StartEvent's `configuration.serverUrl`: https (plain http only to a loopback host unless
/// the configuration allows insecure http), no user name, password, query or fragment.
fn checked_server_url(url: &str, allow_insecure_http: bool) -> Result<String, Failure> {
    let refuse = |why: &str| Failure::invalid_field("configuration.serverUrl", why);
    let parsed = url::Url::parse(url).map_err(|_| refuse("not a URL; give the IDP's base URL"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback || allow_insecure_http => {}
        "http" => {
            return Err(refuse(
                "plain http is accepted only to a loopback host; use https",
            ))
        }
        _ => return Err(refuse("the scheme must be https")),
    }
    if parsed.host().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(refuse(
            "give the IDP's base URL only: a host, no user name, password, query or fragment",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Requests that change the state; only one of them runs at a time.
fn changes_state(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Start
            | RequestKind::Restart
            | RequestKind::EnrollAnonymousUser
            | RequestKind::OfflineLogin
            | RequestKind::DeleteUser
            | RequestKind::EnableAuthenticationMode
            | RequestKind::SetAuthorisationCode
            | RequestKind::SwitchWorkspace
    )
}

/// Requests that may talk to the IDP (ServerConnectionEvent is re-evaluated after them).
fn talks_to_idp(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::EnrollAnonymousUser
            | RequestKind::OfflineLogin
            | RequestKind::DeleteUser
            | RequestKind::ExchangeIamToken
            | RequestKind::CreateHttpCommon
            | RequestKind::CreateAuthorizationRequest
            | RequestKind::SetAuthorisationCode
            | RequestKind::ClearIamTokenCache
    )
}

impl Handler<Submit> for Controller {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) {
        let Submit {
            request,
            reply,
            timeout,
        } = msg;
        let kind = request.kind();
        let id = request
            .request_id
            .clone()
            .unwrap_or_else(|| RequestId::new(mc_jose::random_token(12)));
        if self.pending.contains_key(&id) {
            return self.refuse_running_id(id, kind, request.trace_context, reply);
        }
        if self.pending.len() >= self.config.max_requests_in_flight {
            return self.refuse_too_many(id, kind, request.trace_context, reply);
        }
        let traceparent = request
            .trace_context
            .as_ref()
            .map(|t| t.traceparent.as_str())
            .unwrap_or_default();
        let span = tracing::info_span!("request", request_id = %id.as_str(), traceparent = %traceparent, kind = kind.name());
        span.in_scope(|| tracing::debug!("request received"));
        self.pending.insert(
            id.clone(),
            Pending {
                kind,
                trace_context: request.trace_context.clone(),
                reply,
                span: span.clone(),
            },
        );
        if let Some(timeout) = timeout {
            let id = id.clone();
            ctx.run_later(timeout, move |act, _| act.time_out(&id, timeout));
        }

        if let Err(invalid) = request.validate() {
            return self.finish(&id, Event::invalid_request(&invalid));
        }
        let sdk_state = self.state.sdk_state;
        if kind == RequestKind::Start && sdk_state != SdkState::Uninitialised {
            let answer = self.already_started();
            return self.finish(&id, answer);
        }
        if let Err(message) = reducer::check(sdk_state, kind) {
            return self.finish_invalid_state(&id, kind, message);
        }
        if let Some(running) = self.busy {
            let restarting = running == RequestKind::Restart;
            if changes_state(kind) || (restarting && kind == RequestKind::CreateHttpCommon) {
                let message = format!(
                    "{} is not valid while {} is running; wait for its result",
                    kind.name(),
                    running.name()
                );
                return self.finish_invalid_state(&id, kind, message);
            }
        }
        if let Err(failure) = self.apply_host_settings(&request.event) {
            return self.finish(&id, Event::failure(kind, failure.info()));
        }
        if changes_state(kind) {
            self.busy = Some(kind);
        }
        let admission = Admission {
            user: self.user_for(&request.event),
            id,
            span,
            state: sdk_state,
            server_url: self.server_url.clone(),
            traceparent: request.trace_context.map(|t| t.traceparent),
        };
        self.route(request.event, admission, ctx);
    }
}

impl Controller {
    pub fn new(
        config: Arc<RuntimeConfig>,
        oidc: OidcClient,
        workers: Workers,
        listeners: Listeners,
        published: Arc<PublishedState>,
        active_server: Arc<std::sync::Mutex<String>>,
    ) -> Self {
        Self {
            active_server,
            server_url: config.server_url.clone(),
            host: HostApp::default(),
            config,
            oidc,
            workers,
            listeners,
            state: RuntimeState::default(),
            published,
            busy: None,
            server_reachable: true,
            pending: HashMap::new(),
        }
    }

    /// StartEvent and RestartEvent: what the host says about itself (appName, appVersion,
    /// locale; a field left out keeps its value) goes on every later IDP request as
    /// `User-Agent` and `Accept-Language` and into the log; StartEvent's
    /// `configuration.serverUrl` becomes the IDP of later enrollments and
    /// `configuration.audienceScopes` the audience scopes of identified users. Nothing is
    /// applied when a value is unusable (INVALID_PARAMETER naming it).
    fn apply_host_settings(&mut self, event: &RequestEvent) -> Result<(), Failure> {
        let (locale, app_version, app_name, configuration) = match event {
            RequestEvent::StartEvent(e) => (
                &e.locale,
                &e.app_version,
                &e.app_name,
                e.configuration.as_ref(),
            ),
            RequestEvent::RestartEvent(e) => (&e.locale, &e.app_version, &e.app_name, None),
            _ => return Ok(()),
        };
        let server_url = match configuration.and_then(|c| c.get("serverUrl")) {
            Some(url) => Some(checked_server_url(
                url,
                self.config.oidc.allow_insecure_http,
            )?),
            None => None,
        };
        let audience_scopes = match configuration.and_then(|c| c.get("audienceScopes")) {
            Some(text) => Some(
                mc_events::parse_audience_scopes(text)
                    .map_err(|why| Failure::invalid_field("configuration.audienceScopes", why))?,
            ),
            None => None,
        };
        if let Some(scopes) = audience_scopes {
            self.config.audience_scopes.replace(scopes);
        }
        if let Some(url) = server_url {
            self.server_url = url.clone();
            *self
                .active_server
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = url;
        }
        self.host.update(locale, app_version, app_name);
        self.oidc.set_host_identity(self.host.identity());
        tracing::info!(
            app_name = self.host.app_name.as_deref().unwrap_or("-"),
            app_version = self.host.version().as_deref().unwrap_or("-"),
            locale = self.host.locale.as_deref().unwrap_or("-"),
            server_url = %self.server_url,
            "host app identified"
        );
        Ok(())
    }

    /// The routing table: which actor does the work of which request.
    fn route(&mut self, event: RequestEvent, admission: Admission, ctx: &mut Context<Self>) {
        let w = &self.workers;
        let (login, enrollment, exchange, http) = (
            w.login.clone(),
            w.enrollment.clone(),
            w.exchange.clone(),
            w.http.clone(),
        );
        match event {
            RequestEvent::StartEvent(e) => self.dispatch(login, e, admission, ctx),
            RequestEvent::RestartEvent(e) => self.dispatch(login, e, admission, ctx),
            RequestEvent::EnrollAnonymousUserEvent(e) => {
                self.dispatch(enrollment, e, admission, ctx)
            }
            RequestEvent::OfflineLoginEvent(e) => self.dispatch(login, e, admission, ctx),
            RequestEvent::ExchangeIamTokenEvent(e) => self.dispatch(exchange, e, admission, ctx),
            RequestEvent::GetIamAccessTokenClaimsEvent(e) => {
                self.dispatch(login, e, admission, ctx)
            }
            RequestEvent::ClearIamTokenCacheEvent(e) => self.dispatch(exchange, e, admission, ctx),
            RequestEvent::DeleteIamTokenByAudienceEvent(e) => {
                self.dispatch(exchange, e, admission, ctx)
            }
            RequestEvent::GetInformationEvent(e) => self.dispatch(login, e, admission, ctx),
            RequestEvent::DeleteUserEvent(e) => self.dispatch(enrollment, e, admission, ctx),
            RequestEvent::EnableAuthenticationModeEvent(e) => {
                self.dispatch(login, e, admission, ctx)
            }
            RequestEvent::CreateHttpCommonRequest(e) => self.dispatch(http, e, admission, ctx),
            // Identified users (actors/identified.rs).
            RequestEvent::CreateAuthorizationRequestEvent(e) => {
                self.dispatch(login, e, admission, ctx)
            }
            RequestEvent::SetAuthorisationCodeEvent(e) => self.dispatch(login, e, admission, ctx),
            // Workspaces (actors/workspace.rs).
            RequestEvent::SwitchWorkspaceEvent(e) => self.dispatch(login, e, admission, ctx),
            RequestEvent::GetStateEvent(_) => {
                let result = Event::GetStateResultEvent(GetStateResultEvent {
                    info: ResultInfo::ok(),
                    sdk_state: self.state.sdk_state,
                });
                self.conclude(&admission.id, result, Some(Outcome::StateAsked));
            }
        }
    }

    /// The user a request is about, where admission chooses it from the state: DeleteUser
    /// the named user, else the logged-in one, else the default; the token-cache requests
    /// and EnrollAnonymousUser the logged-in user (ClearIamTokenCache may name another).
    fn user_for(&self, event: &RequestEvent) -> Option<UserIdentifier> {
        let logged_in = self.state.logged_in.clone();
        match event {
            RequestEvent::DeleteUserEvent(e) => e
                .user_identifier
                .clone()
                .or(logged_in)
                .or_else(|| self.state.users.default.clone()),
            RequestEvent::ClearIamTokenCacheEvent(e) => e.user_identifier.clone().or(logged_in),
            RequestEvent::DeleteIamTokenByAudienceEvent(_) => logged_in,
            // Whose identity an enrollment of the same tenant and client would replace.
            RequestEvent::EnrollAnonymousUserEvent(_) => logged_in,
            _ => None,
        }
    }

    /// Sends the admitted request to `actor`; its answer (and the outcome it reported) comes
    /// back to [`conclude`](Self::conclude).
    fn dispatch<E, A>(
        &mut self,
        actor: Addr<A>,
        event: E,
        admission: Admission,
        ctx: &mut Context<Self>,
    ) where
        E: RequestType,
        A: Handler<Admitted<E>>,
        A::Context: ToEnvelope<A, Admitted<E>>,
    {
        let id = admission.id.clone();
        let span = admission.span.clone();
        let (report, outcome) = Report::new();
        let answer = actor.send(Admitted {
            event,
            admission,
            report,
        });
        let work = answer.instrument(span);
        ctx.spawn(
            fut::wrap_future::<_, Self>(work).map(move |answer, act, _| {
                let result: Event = match answer {
                    Ok(result) => result.into(),
                    Err(_) => {
                        let failure = Failure::component_stopped(&format!(
                            "actor handling {}",
                            E::KIND.name()
                        ));
                        Event::failure(E::KIND, failure.info())
                    }
                };
                // The actor reported before it answered, so its outcome is here already.
                let mut outcome = outcome;
                let outcome = outcome.try_recv().ok();
                act.conclude(&id, result, outcome);
            }),
        );
    }

    /// The end of every admitted request: the reducer, then the result, then the pushes.
    fn conclude(&mut self, id: &RequestId, mut result: Event, outcome: Option<Outcome>) {
        let Some(kind) = self.pending.get(id).map(|p| p.kind) else {
            tracing::error!(request_id = %id.as_str(), "a request was answered twice; second answer dropped");
            return;
        };
        if changes_state(kind) {
            self.busy = None;
        }
        // What its handling pushes carries the request's trace context, as its result does.
        let trace_context = self
            .pending
            .get(id)
            .and_then(|pending| pending.trace_context.clone());
        let mut pushed = Vec::new();
        if let Some(outcome) = outcome {
            let (next, events) = reducer::apply(&self.state, outcome);
            self.state = next;
            self.published.set(self.state.sdk_state);
            pushed = events;
        }
        reducer::stamp_state(&mut result, self.state.sdk_state);
        if talks_to_idp(kind) {
            self.observe_server(trace_context.clone());
        }
        let started = matches!(kind, RequestKind::Start | RequestKind::Restart)
            && result.status() == Some(StatusType::Ok);
        self.finish(id, result);
        if started {
            // Deletions the IDP has not confirmed yet: every one, at each start.
            self.workers
                .enrollment
                .do_send(DrainIdpDeletions { due_only: false });
        }
        for mut event in pushed {
            event.set_pushed_trace_context(trace_context.clone());
            self.listeners.emit(event);
        }
    }

    /// A request whose id is that of one still running. Its refusal goes to its poster only:
    /// a result with that id would look, to every listener, like the running request's result.
    /// Without a poster (forward_event) the listeners get a WarningEvent, which is no result.
    fn refuse_running_id(
        &mut self,
        id: RequestId,
        kind: RequestKind,
        trace_context: Option<TraceContext>,
        reply: Option<oneshot::Sender<Event>>,
    ) {
        let message = "a request with this id is still running; use a new id";
        tracing::debug!(request_id = %id.as_str(), kind = kind.name(), "refused: its id is still running");
        match reply {
            Some(reply) => {
                let mut event = Event::invalid_request(&InvalidRequest {
                    request_id: Some(id.clone()),
                    trace_context: trace_context.clone().map(Box::new),
                    kind: Some(kind),
                    field: Some("requestId".into()),
                    message: message.into(),
                });
                event.set_request(Some(id), trace_context);
                let _ = reply.send(event);
            }
            None => {
                let mut report = ErrorReport::new(
                    "REQUEST",
                    error_code::INVALID_PARAMETER,
                    format!("{} refused: field `requestId`: {message}", kind.name()),
                );
                report.request_id = Some(id);
                report.trace_context = trace_context;
                self.listeners.emit(Event::WarningEvent(report));
            }
        }
    }

    /// Too many requests are running: answered at once, not queued, so a flood costs no memory.
    fn refuse_too_many(
        &mut self,
        id: RequestId,
        kind: RequestKind,
        trace_context: Option<TraceContext>,
        reply: Option<oneshot::Sender<Event>>,
    ) {
        let info = ResultInfo::error(
            StatusType::Failed,
            error_code::TOO_MANY_REQUESTS,
            format!(
                "{} requests are running already (the limit); nothing was done: retry once some \
                 have been answered",
                self.pending.len()
            ),
        )
        .with_request(Some(id), trace_context);
        let event = Event::failure_in_state(kind, info, self.state.sdk_state);
        self.listeners.emit(event.clone());
        if let Some(reply) = reply {
            let _ = reply.send(event);
        }
    }

    /// The MC-SDK's answer to a second StartEvent: ALREADY_INITIALIZED with the state and
    /// users as they are; nothing is read again or changed (RestartEvent does that).
    fn already_started(&self) -> Event {
        let info = ResultInfo::error(
            StatusType::AlreadyInitialized,
            error_code::ALREADY_INITIALIZED,
            "the runtime is already started; nothing changed: the state and users are in this \
             result (send RestartEvent to read them again)",
        );
        Event::StartResultEvent(StartResultEvent {
            info,
            sdk_state: self.state.sdk_state,
            user_details_list: self
                .state
                .users
                .users
                .iter()
                .cloned()
                .map(UserDetails::new)
                .collect(),
            supported_features: crate::actors::login::supported_features(),
        })
    }

    fn finish_invalid_state(&mut self, id: &RequestId, kind: RequestKind, message: String) {
        let event = Event::InvalidStateEvent(InvalidStateEvent {
            request_id: None,
            trace_context: None,
            request_type: kind.name().to_string(),
            sdk_state: self.state.sdk_state,
            error_message: message,
        });
        self.finish(id, event)
    }

    /// Delivers the one result of request `id`: to every listener, and to the poster if it is
    /// still waiting.
    fn finish(&mut self, id: &RequestId, mut event: Event) {
        let Some(pending) = self.pending.remove(id) else {
            tracing::error!(request_id = %id.as_str(), "a request was answered twice; second answer dropped");
            return;
        };
        event.set_request(Some(id.clone()), pending.trace_context);
        pending.span.in_scope(|| {
            tracing::info!(result = event.type_name(), status = ?event.status(), "request answered")
        });
        self.listeners.emit(event.clone());
        if let Some(reply) = pending.reply {
            let _ = reply.send(event);
        }
    }

    /// The poster's wait ran out: it gets a TIMEOUT result now; the request goes on and its
    /// real result still reaches the listeners.
    fn time_out(&mut self, id: &RequestId, after: Duration) {
        let Some(pending) = self.pending.get_mut(id) else {
            return;
        };
        let Some(reply) = pending.reply.take() else {
            return;
        };
        let info = ResultInfo::error(
            StatusType::Timeout,
            error_code::TIMEOUT,
            format!(
                "no result within {} ms; the request goes on and its result reaches the listeners",
                after.as_millis()
            ),
        )
        .with_request(Some(id.clone()), pending.trace_context.clone());
        let _ = reply.send(Event::failure_in_state(
            pending.kind,
            info,
            self.state.sdk_state,
        ));
    }

    /// Pushes ServerConnectionEvent when the IDP becomes unreachable and when it is back.
    /// Called after every request that may have talked to the IDP; what the protocol client
    /// saw on its latest request decides, so a request that needed no IDP (a cached token, a
    /// wrong password) changes nothing, and retries that ended well count as reachable.
    fn observe_server(&mut self, trace_context: Option<TraceContext>) {
        let (unreachable, connection_state) = match self.oidc.reachability() {
            mc_oidc::Reachability::Unknown => return,
            mc_oidc::Reachability::Reachable => (false, ServerConnectionState::Connected),
            mc_oidc::Reachability::Unreachable => (true, ServerConnectionState::NotReachable),
            // The IDP took the request, then the connection broke.
            mc_oidc::Reachability::Lost => (true, ServerConnectionState::ConnectionLost),
        };
        if unreachable != self.server_reachable {
            return;
        }
        self.server_reachable = !unreachable;
        self.listeners
            .emit(Event::ServerConnectionEvent(ServerConnectionEvent {
                connection_state,
                server_url: self.server_url.clone(),
                trace_context,
            }));
        if self.server_reachable {
            // Back: the queued IDP deletions whose backoff has passed.
            self.workers
                .enrollment
                .do_send(DrainIdpDeletions { due_only: true });
        }
    }
}
