//! The controller actor: the one place that owns [`SdkState`] and the logged-in session.
//!
//! Every request enters here ([`Submit`]), is admitted (its requestId is not one still
//! running; fewer than `max_requests_in_flight` are pending: refused at once otherwise, never
//! queued), is checked (fields, then state), and is routed to
//! the actor that owns its type ([`Controller::route`] is the routing table). When the actor
//! answers, the controller updates the state, pushes any events that follow from it, and
//! finishes the request: the result goes to every listener and to the poster's future.
//! Work runs as futures on the controller's context, so a slow enrollment does not hold up a
//! GetInformationEvent posted meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use mc_events::*;
use mc_oidc::http::ResourceToken;
use mc_oidc::{OidcClient, TokenSet};
use mc_store::{Protection, StoredAuthMode, UserId, UserSummary};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::actors::enrollment::{self, EnrollmentActor};
use crate::actors::http_proxy::{HttpCall, HttpProxyActor};
use crate::actors::login::{self, LoginActor};
use crate::actors::storage::{
    self, ChangeProtection, ListUsers, RemoveUser, StorageActor, UnlockWith,
};
use crate::actors::token_exchange::{
    ClearCache, DeleteAudiences, Exchange, IamToken, TokenExchangeActor,
};
use crate::config::RuntimeConfig;
use crate::failure::Failure;
use crate::listeners::Listeners;
use crate::session::Session;
use crate::state;

/// The addresses of the worker actors.
pub struct Workers {
    pub storage: Addr<StorageActor>,
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

struct Pending {
    kind: RequestKind,
    trace_context: Option<TraceContext>,
    reply: Option<oneshot::Sender<Event>>,
    span: tracing::Span,
}

pub struct Controller {
    config: Arc<RuntimeConfig>,
    oidc: OidcClient,
    workers: Workers,
    listeners: Listeners,
    state: SdkState,
    session: Option<Arc<Session>>,
    users: Vec<UserSummary>,
    last_user: Option<UserId>,
    /// The state-changing request running now, if any; another one waits its turn.
    busy: Option<RequestKind>,
    server_reachable: bool,
    pending: HashMap<RequestId, Pending>,
    /// Turns for CreateHttpCommonRequests at their server (`max_http_in_flight`).
    http_slots: Arc<tokio::sync::Semaphore>,
}

impl Actor for Controller {
    type Context = Context<Self>;
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
    )
}

fn user_identifier(id: &UserId) -> UserIdentifier {
    UserIdentifier::new(&id.tenant_id, &id.user_id)
}

fn store_id(id: &UserIdentifier) -> UserId {
    UserId::new(&id.tenant_id, &id.user_id)
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
                span,
            },
        );
        if let Some(timeout) = timeout {
            let id = id.clone();
            ctx.run_later(timeout, move |act, _| act.time_out(&id, timeout));
        }

        if let Err(invalid) = request.validate() {
            return self.finish(&id, Event::invalid_request(&invalid));
        }
        if let Err(message) = state::check(self.state, kind) {
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
        if changes_state(kind) {
            self.busy = Some(kind);
        }
        self.route(id, request.event, ctx);
    }
}

impl Controller {
    pub fn new(
        config: Arc<RuntimeConfig>,
        oidc: OidcClient,
        workers: Workers,
        listeners: Listeners,
    ) -> Self {
        Self {
            oidc,
            workers,
            listeners,
            state: SdkState::Uninitialised,
            session: None,
            users: Vec::new(),
            last_user: None,
            busy: None,
            server_reachable: true,
            pending: HashMap::new(),
            http_slots: Arc::new(tokio::sync::Semaphore::new(
                config
                    .max_http_in_flight
                    .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            )),
            config,
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
        let event = Event::failure_in_state(kind, info, self.state);
        self.listeners.emit(event.clone());
        if let Some(reply) = reply {
            let _ = reply.send(event);
        }
    }

    /// The routing table: which actor handles which request.
    fn route(&mut self, id: RequestId, event: RequestEvent, ctx: &mut Context<Self>) {
        match event {
            RequestEvent::StartEvent(_) => self.load_users(id, RequestKind::Start, ctx),
            RequestEvent::RestartEvent(_) => {
                // A restart is not a logout: the IAM token cache survives (logout is
                // ClearIamTokenCache then Restart); the session must be unlocked again.
                self.session = None;
                self.load_users(id, RequestKind::Restart, ctx)
            }
            RequestEvent::EnrollAnonymousUserEvent(e) => self.enroll(id, e, ctx),
            RequestEvent::OfflineLoginEvent(e) => self.offline_login(id, e, ctx),
            RequestEvent::ExchangeIamTokenEvent(e) => self.exchange(id, e, ctx),
            RequestEvent::GetIamAccessTokenClaimsEvent(_) => {
                let claims = self
                    .session
                    .as_ref()
                    .map(|s| s.claims())
                    .unwrap_or_default();
                self.finish(
                    &id,
                    Event::GetIamAccessTokenClaimsResultEvent(GetIamAccessTokenClaimsResultEvent {
                        info: ResultInfo::ok(),
                        claims,
                    }),
                )
            }
            RequestEvent::ClearIamTokenCacheEvent(e) => self.clear_cache(id, e),
            RequestEvent::DeleteIamTokenByAudienceEvent(e) => self.delete_audiences(id, e, ctx),
            RequestEvent::GetInformationEvent(_) => {
                let event = self.information();
                self.finish(&id, event)
            }
            RequestEvent::DeleteUserEvent(e) => self.delete_user(id, e, ctx),
            RequestEvent::EnableAuthenticationModeEvent(e) => self.enable_mode(id, e, ctx),
            RequestEvent::CreateHttpCommonRequest(e) => self.http(id, e, ctx),
            RequestEvent::GetStateEvent(_) => {
                // Re-send what the runtime waits for, as the MC-SDK does.
                if self.state == SdkState::LoginRequired {
                    self.push_start_login();
                }
                let sdk_state = self.state;
                self.finish(
                    &id,
                    Event::GetStateResultEvent(GetStateResultEvent {
                        info: ResultInfo::ok(),
                        sdk_state,
                    }),
                )
            }
        }
    }

    // ---- Start and Restart -------------------------------------------------------------

    fn load_users(&mut self, id: RequestId, kind: RequestKind, ctx: &mut Context<Self>) {
        let storage = self.workers.storage.clone();
        let work = async move { storage::call(&storage, ListUsers).await };
        self.then(ctx, self.span(&id), work, move |act, result, _| {
            act.busy = None;
            let info = match result {
                Ok((users, last)) => {
                    act.set_users(users, last);
                    act.state = if act.users.is_empty() {
                        SdkState::ActivationRequired
                    } else {
                        SdkState::LoginRequired
                    };
                    ResultInfo::ok()
                }
                Err(failure) => {
                    act.state = SdkState::Unidentified;
                    failure.info()
                }
            };
            let user_details_list: Vec<UserDetails> = act
                .users
                .iter()
                .map(|u| UserDetails::new(user_identifier(&u.id)))
                .collect();
            let supported_features = vec![
                "ANONYMOUS_ENROLLMENT".to_string(),
                "TOKEN_EXCHANGE".to_string(),
                "HTTP_COMMON_REQUEST".to_string(),
            ];
            let sdk_state = act.state;
            let event = if kind == RequestKind::Start {
                Event::StartResultEvent(StartResultEvent {
                    info,
                    sdk_state,
                    user_details_list,
                    supported_features,
                })
            } else {
                Event::RestartResultEvent(RestartResultEvent {
                    info,
                    sdk_state,
                    user_details_list,
                    supported_features,
                })
            };
            act.finish(&id, event);
            if act.state == SdkState::LoginRequired {
                act.push_start_login();
            }
        });
    }

    fn set_users(&mut self, users: Vec<UserSummary>, last: Option<UserId>) {
        self.users = users;
        self.last_user = last;
    }

    /// The user an OfflineLogin without `userIdentifier` logs in: the last one used.
    fn default_user(&self) -> Option<UserId> {
        self.last_user
            .clone()
            .filter(|last| self.users.iter().any(|u| &u.id == last))
            .or_else(|| self.users.first().map(|u| u.id.clone()))
    }

    fn push_start_login(&self) {
        if let Some(user) = self.default_user() {
            self.listeners.emit(Event::StartLoginEvent(StartLoginEvent {
                user_identifier: user_identifier(&user),
                user_list: self.users.iter().map(|u| user_identifier(&u.id)).collect(),
            }));
        }
    }

    fn state_after_user_change(&self) -> SdkState {
        if self.session.is_some() {
            SdkState::LoggedIn
        } else if self.users.is_empty() {
            SdkState::ActivationRequired
        } else {
            SdkState::LoginRequired
        }
    }

    // ---- Enrollment and login -----------------------------------------------------------

    fn enroll(&mut self, id: RequestId, e: EnrollAnonymousUserEvent, ctx: &mut Context<Self>) {
        let protection = match self.protection_for(e.authentication_mode, e.password.clone()) {
            Ok(protection) => protection,
            Err(failure) => {
                self.busy = None;
                return self.finish(
                    &id,
                    Event::failure(RequestKind::EnrollAnonymousUser, failure.info()),
                );
            }
        };
        // One user per tenant and enrollment client: a new enrollment replaces the old one.
        let replaced: Vec<UserId> = self
            .users
            .iter()
            .filter(|u| u.id.tenant_id == e.tenant_id && u.enrollment_client_id == e.client_id)
            .map(|u| u.id.clone())
            .collect();
        let message = enrollment::Enroll {
            server_url: self.config.server_url.clone(),
            tenant_id: e.tenant_id,
            enrollment_client_id: e.client_id,
            protection,
            span: self.span(&id),
        };
        let enrollment = self.workers.enrollment.clone();
        let storage = self.workers.storage.clone();
        let work = async move {
            let session = match enrollment.send(message).await {
                Ok(result) => result?,
                Err(_) => return Err(Failure::component_stopped("enrollment actor")),
            };
            for old in replaced {
                if let Ok(Err(failure)) =
                    enrollment.send(enrollment::DeleteUser { user: old }).await
                {
                    tracing::warn!(status = ?failure.status, "could not remove the replaced enrollment");
                }
            }
            let users = storage::call(&storage, ListUsers).await?;
            Ok((session, users))
        };
        self.then(ctx, self.span(&id), work, move |act, result, _| {
            act.busy = None;
            act.observe_server();
            match result {
                Ok((session, (users, last))) => {
                    act.set_users(users, last);
                    act.log_in(session);
                    act.finish(
                        &id,
                        Event::StatusResultEvent(StatusResultEvent {
                            info: ResultInfo::ok(),
                        }),
                    );
                }
                Err(failure) => act.finish(
                    &id,
                    Event::failure_in_state(
                        RequestKind::EnrollAnonymousUser,
                        failure.info(),
                        act.state,
                    ),
                ),
            }
        });
    }

    fn log_in(&mut self, session: Arc<Session>) {
        let claims = session.claims();
        self.last_user = Some(store_id(&session.user));
        self.session = Some(session);
        self.state = SdkState::LoggedIn;
        self.listeners.emit(Event::LoginTokenClaimsAvailableEvent(
            LoginTokenClaimsAvailableEvent { claims },
        ));
    }

    fn offline_login(&mut self, id: RequestId, e: OfflineLoginEvent, ctx: &mut Context<Self>) {
        let user = match e
            .user_identifier
            .as_ref()
            .map(store_id)
            .or_else(|| self.default_user())
        {
            Some(user) => user,
            None => {
                self.busy = None;
                let failure = Failure::unknown_user("no enrolled user to log in; enroll first");
                return self.finish(
                    &id,
                    Event::failure(RequestKind::OfflineLogin, failure.info()),
                );
            }
        };
        let unlock = match self.unlock_for(&user, e.password.clone(), "password") {
            Ok(unlock) => unlock,
            Err(failure) => {
                self.busy = None;
                return self.finish(&id, failure_event(RequestKind::OfflineLogin, &failure));
            }
        };
        let login = self.workers.login.clone();
        let storage = self.workers.storage.clone();
        let span = self.span(&id);
        let work = async move {
            let message = login::OfflineLogin { user, unlock, span };
            let result = match login.send(message).await {
                Ok(result) => result,
                Err(_) => Err(Failure::component_stopped("login actor")),
            };
            // A failed login may have removed a user (registration gone, password blocked);
            // a successful one changes no user but the last one, which log_in records.
            let users = match result {
                Ok(_) => None,
                Err(_) => storage::call(&storage, ListUsers).await.ok(),
            };
            (result, users)
        };
        self.then(ctx, self.span(&id), work, move |act, (result, users), _| {
            act.busy = None;
            act.observe_server();
            if let Some((users, last)) = users {
                act.set_users(users, last);
            }
            match result {
                Ok(session) => {
                    act.log_in(session);
                    act.finish(
                        &id,
                        Event::OfflineLoginResultEvent(OfflineLoginResultEvent {
                            info: ResultInfo::ok(),
                            ..Default::default()
                        }),
                    );
                }
                Err(failure) => {
                    if failure.status == StatusType::OfflineNotActivated {
                        act.drop_session_if_gone();
                    }
                    if failure.status == StatusType::PasswordBlocked {
                        act.drop_session_if_gone();
                    }
                    act.finish(&id, failure_event(RequestKind::OfflineLogin, &failure));
                }
            }
        });
    }

    /// After a user was removed: forget the session if it belonged to that user.
    fn drop_session_if_gone(&mut self) {
        if let Some(session) = &self.session {
            let id = store_id(&session.user);
            if !self.users.iter().any(|u| u.id == id) {
                self.session = None;
            }
        }
        self.state = self.state_after_user_change();
    }

    /// Re-wraps the logged-in user's credential under another mode in one transaction.
    /// `password` unlocks the current PASSWORD mode; `newPassword` protects a new one.
    fn enable_mode(
        &mut self,
        id: RequestId,
        e: EnableAuthenticationModeEvent,
        ctx: &mut Context<Self>,
    ) {
        let Some(session) = self.session.clone() else {
            self.busy = None;
            return self.finish_no_session(&id, RequestKind::EnableAuthenticationMode);
        };
        let user = store_id(&session.user);
        let prepared = self
            .unlock_for(&user, e.password.clone(), "password")
            .and_then(|current| {
                let new = self.protection_for(e.authentication_mode, e.new_password.clone())?;
                Ok((current, new))
            });
        let (current, new) = match prepared {
            Ok(prepared) => prepared,
            Err(failure) => {
                self.busy = None;
                return self.finish(
                    &id,
                    Event::failure(RequestKind::EnableAuthenticationMode, failure.info()),
                );
            }
        };
        let current_mode = self.mode_of(&user);
        if current_mode == Some(new.mode()) && new.mode() != StoredAuthMode::Password {
            // Already protected so: nothing to re-wrap.
            self.busy = None;
            return self.finish(
                &id,
                Event::StatusResultEvent(StatusResultEvent {
                    info: ResultInfo::ok(),
                }),
            );
        }
        let storage = self.workers.storage.clone();
        let work = async move {
            let change = ChangeProtection {
                user,
                current,
                new,
                now: mc_jose::unix_now(),
            };
            storage::unlock_call(&storage, change).await?;
            storage::call(&storage, ListUsers).await
        };
        self.then(ctx, self.span(&id), work, move |act, result, _| {
            act.busy = None;
            let event = match result {
                Ok((users, last)) => {
                    act.set_users(users, last);
                    Event::StatusResultEvent(StatusResultEvent {
                        info: ResultInfo::ok(),
                    })
                }
                Err(failure) => failure_event(RequestKind::EnableAuthenticationMode, &failure),
            };
            act.finish(&id, event);
        });
    }

    fn mode_of(&self, user: &UserId) -> Option<StoredAuthMode> {
        self.users
            .iter()
            .find(|u| &u.id == user)
            .map(|u| u.authentication_mode)
    }

    /// How a new credential is protected in `mode`; PASSWORD needs `password`, BIOMETRIC a
    /// platform key provider.
    fn protection_for(
        &self,
        mode: AuthenticationMode,
        password: Option<mc_secret::SecretString>,
    ) -> Result<Protection, Failure> {
        match mode {
            AuthenticationMode::No => Ok(Protection::No),
            AuthenticationMode::Password => match password {
                Some(password) if !password.is_empty() => Ok(Protection::Password(password)),
                _ => Err(Failure::invalid_field(
                    "password",
                    "mode PASSWORD needs a non-empty password",
                )),
            },
            AuthenticationMode::Biometric if self.config.biometric.is_some() => {
                Ok(Protection::Biometric)
            }
            AuthenticationMode::Biometric => Err(Failure::not_supported(
                "mode BIOMETRIC needs a platform key provider; configure one or use NO or PASSWORD",
            )),
        }
    }

    /// What unlocks `user` in its stored mode: nothing (NO), the password (PASSWORD; named
    /// `field` in the error when missing), or a biometric prompt (BIOMETRIC).
    fn unlock_for(
        &self,
        user: &UserId,
        password: Option<mc_secret::SecretString>,
        field: &str,
    ) -> Result<UnlockWith, Failure> {
        match self.mode_of(user) {
            None => Err(Failure::unknown_user(format!(
                "user {user} is not enrolled; enroll it or pick one from StartResultEvent"
            ))),
            Some(StoredAuthMode::No) => Ok(UnlockWith::No),
            Some(StoredAuthMode::Password) => match password {
                Some(password) if !password.is_empty() => Ok(UnlockWith::Password(password)),
                _ => Err(Failure::invalid_field(
                    field,
                    "this user is protected by a password; send it",
                )),
            },
            Some(StoredAuthMode::Biometric) => Ok(UnlockWith::Biometric {
                prompt: self.config.biometric_prompt.clone(),
            }),
        }
    }

    fn delete_user(&mut self, id: RequestId, e: DeleteUserEvent, ctx: &mut Context<Self>) {
        let user = e
            .user_identifier
            .as_ref()
            .map(store_id)
            .or_else(|| self.session.as_ref().map(|s| store_id(&s.user)))
            .or_else(|| self.default_user());
        let Some(user) = user else {
            self.busy = None;
            let failure = Failure::unknown_user("no enrolled user to delete");
            return self.finish(
                &id,
                Event::failure_in_state(RequestKind::DeleteUser, failure.info(), self.state),
            );
        };
        let enrollment = self.workers.enrollment.clone();
        let storage = self.workers.storage.clone();
        let target = user.clone();
        let work = async move {
            match enrollment
                .send(enrollment::DeleteUser { user: target })
                .await
            {
                Ok(result) => result?,
                Err(_) => return Err(Failure::component_stopped("enrollment actor")),
            };
            storage::call(&storage, ListUsers).await
        };
        self.then(ctx, self.span(&id), work, move |act, result, _| {
            act.busy = None;
            act.observe_server();
            let info = match result {
                Ok((users, last)) => {
                    act.set_users(users, last);
                    act.workers.exchange.do_send(ClearCache {
                        tenant_id: user.tenant_id.clone(),
                        user_id: user.user_id.clone(),
                        behavior: ClearBehavior::ClearAll,
                    });
                    act.drop_session_if_gone();
                    ResultInfo::ok()
                }
                Err(failure) => failure.info(),
            };
            let event = Event::DeleteUserResultEvent(DeleteUserResultEvent {
                info,
                sdk_state: act.state,
                user_list: act.users.iter().map(|u| user_identifier(&u.id)).collect(),
            });
            act.finish(&id, event);
        });
    }

    // ---- Tokens -------------------------------------------------------------------------

    fn exchange(&mut self, id: RequestId, e: ExchangeIamTokenEvent, ctx: &mut Context<Self>) {
        let Some(session) = self.session.clone() else {
            return self.finish_no_session(&id, RequestKind::ExchangeIamToken);
        };
        let span = self.span(&id);
        let request = self.workers.exchange.send(Exchange {
            session,
            audience: e.audience,
            force_update: e.force_update,
            span,
        });
        let work = async move {
            match request.await {
                Ok(result) => result,
                Err(_) => Err(Failure::component_stopped("token-exchange actor")),
            }
        };
        self.then(
            ctx,
            self.span(&id),
            work,
            move |act, result: Result<IamToken, Failure>, _| {
                act.observe_server();
                let event = match result {
                    Ok(token) => Event::ExchangeIamTokenResultEvent(ExchangeIamTokenResultEvent {
                        info: ResultInfo::ok(),
                        audience: Some(token.audience),
                        token: Some(token.token),
                        expires_at: Some(token.expires_at),
                    }),
                    Err(failure) => {
                        act.credential_failed(&failure);
                        Event::failure(RequestKind::ExchangeIamToken, failure.info())
                    }
                };
                act.finish(&id, event);
            },
        );
    }

    /// An IDP answer proved the logged-in user's registration gone: remove it and ask the app
    /// to enroll again. Any other failure leaves the credential alone.
    fn credential_failed(&mut self, failure: &Failure) {
        if failure.status != StatusType::OfflineNotActivated {
            return;
        }
        if let Some(session) = self.session.take() {
            let user = store_id(&session.user);
            self.workers.storage.do_send(RemoveUser(user.clone()));
            self.users.retain(|u| u.id != user);
            self.state = self.state_after_user_change();
            self.listeners
                .emit(Event::IdpLoginRequiredEvent(IdpLoginRequiredEvent {
                    user_identifier: session.user.clone(),
                }));
        }
    }

    fn clear_cache(&mut self, id: RequestId, e: ClearIamTokenCacheEvent) {
        let user = e
            .user_identifier
            .clone()
            .or_else(|| self.session.as_ref().map(|s| s.user.clone()));
        let Some(user) = user else {
            return self.finish_no_session(&id, RequestKind::ClearIamTokenCache);
        };
        self.workers.exchange.do_send(ClearCache {
            tenant_id: user.tenant_id,
            user_id: user.user_id,
            behavior: e.clear_behavior,
        });
        self.finish(
            &id,
            Event::ClearIamTokenCacheResultEvent(ClearIamTokenCacheResultEvent {
                info: ResultInfo::ok(),
            }),
        )
    }

    fn delete_audiences(
        &mut self,
        id: RequestId,
        e: DeleteIamTokenByAudienceEvent,
        ctx: &mut Context<Self>,
    ) {
        let Some(session) = self.session.clone() else {
            return self.finish_no_session(&id, RequestKind::DeleteIamTokenByAudience);
        };
        let request = self.workers.exchange.send(DeleteAudiences {
            tenant_id: session.user.tenant_id.clone(),
            user_id: session.user.user_id.clone(),
            audiences: e.audiences,
        });
        self.then(ctx, self.span(&id), request, move |act, result, _| {
            let info = match result {
                Ok(_) => ResultInfo::ok(),
                Err(_) => Failure::component_stopped("token-exchange actor").info(),
            };
            act.finish(
                &id,
                Event::DeleteIamTokenByAudienceResultEvent(DeleteIamTokenByAudienceResultEvent {
                    info,
                }),
            );
        });
    }

    // ---- HTTP -----------------------------------------------------------------------------

    fn http(&mut self, id: RequestId, request: CreateHttpCommonRequest, ctx: &mut Context<Self>) {
        let audience = request.effective_audience().map(str::to_string);
        // Where the token may go is checked before it is fetched: a refused URL costs no
        // exchange and nothing is sent.
        let allowed = audience
            .as_deref()
            .map(|audience| self.config.audience_origins.of(audience).to_vec());
        if let (Some(audience), Some(allowed)) = (audience.as_deref(), allowed.as_deref()) {
            if let Ok(url) = url::Url::parse(&request.full_url) {
                if let Err(why) = mc_oidc::http::check_token_destination(audience, allowed, &url) {
                    let failure = Failure::new(
                        StatusType::Failed,
                        error_code::TOKEN_ORIGIN_NOT_ALLOWED,
                        format!("{why}; nothing was sent"),
                    );
                    self.finish(
                        &id,
                        Event::failure(RequestKind::CreateHttpCommon, failure.info()),
                    );
                    return;
                }
            }
        }
        let session = self.session.clone();
        let exchange = self.workers.exchange.clone();
        let http = self.workers.http.clone();
        let span = self.span(&id);
        let http_slots = Arc::clone(&self.http_slots);
        let work = async move {
            let auth = match (audience, session) {
                (None, _) => None,
                (Some(_), None) => {
                    return Err(Failure::new(
                        StatusType::LoginRequired,
                        error_code::INVALID_STATE,
                        "log in before sending a request with an audience",
                    ))
                }
                (Some(audience), Some(session)) => {
                    let key = Arc::clone(&session.key);
                    let token = match exchange
                        .send(Exchange {
                            session,
                            audience: audience.clone(),
                            force_update: false,
                            span,
                        })
                        .await
                    {
                        Ok(result) => result?,
                        Err(_) => return Err(Failure::component_stopped("token-exchange actor")),
                    };
                    let token_set = TokenSet {
                        access_token: token.token,
                        token_type: token.token_type,
                        expires_at: token.expires_at,
                        refresh_token: None,
                        scope: None,
                    };
                    Some(ResourceToken {
                        audience,
                        token: token_set,
                        key,
                        allowed: allowed.unwrap_or_default(),
                    })
                }
            };
            // At most max_http_in_flight calls at the server at once; the others wait here.
            let _slot = http_slots
                .acquire_owned()
                .await
                .map_err(|_| Failure::internal("the HTTP call limit was closed"))?;
            http.send(HttpCall { request, auth })
                .await
                .map_err(|_| Failure::component_stopped("HTTP proxy actor"))
        };
        self.then(ctx, self.span(&id), work, move |act, result, _| {
            act.observe_server();
            let event = match result {
                Ok(result) => Event::CreateHttpCommonResultEvent(result),
                Err(failure) => {
                    act.credential_failed(&failure);
                    Event::failure(RequestKind::CreateHttpCommon, failure.info())
                }
            };
            act.finish(&id, event);
        });
    }

    // ---- Information ----------------------------------------------------------------------

    fn information(&self) -> Event {
        let logged_in = self.session.as_ref();
        Event::GetInformationResultEvent(GetInformationResultEvent {
            info: ResultInfo::ok(),
            sdk_version: env!("CARGO_PKG_VERSION").to_string(),
            sdk_state: self.state,
            logged_in_user: logged_in.map(|s| s.user.clone()),
            iam_configuration_data: logged_in.map(|s| IamConfigurationData {
                client_id: s.enrollment_client_id.clone(),
                server_url: s.server_url.clone(),
                tenant_id: s.tenant_id.clone(),
                issuer: Some(s.metadata.issuer.clone()),
            }),
        })
    }

    // ---- Plumbing ---------------------------------------------------------------------------

    /// Runs `work` on this actor's context (without blocking other requests), then `done`
    /// with access to the actor. The work is traced in the request's span.
    fn then<F, T>(
        &self,
        ctx: &mut Context<Self>,
        span: tracing::Span,
        work: F,
        done: impl FnOnce(&mut Self, T, &mut Context<Self>) + 'static,
    ) where
        F: std::future::Future<Output = T> + 'static,
        T: 'static,
    {
        let work = work.instrument(span);
        ctx.spawn(fut::wrap_future::<_, Self>(work).map(move |out, act, ctx| done(act, out, ctx)));
    }

    fn span(&self, id: &RequestId) -> tracing::Span {
        self.pending
            .get(id)
            .map(|p| p.span.clone())
            .unwrap_or_else(tracing::Span::none)
    }

    fn finish_no_session(&mut self, id: &RequestId, kind: RequestKind) {
        let failure = Failure::new(
            StatusType::LoginRequired,
            error_code::INVALID_STATE,
            "no user is logged in; send OfflineLoginEvent",
        );
        self.finish(id, Event::failure(kind, failure.info()))
    }

    fn finish_invalid_state(&mut self, id: &RequestId, kind: RequestKind, message: String) {
        let event = Event::InvalidStateEvent(InvalidStateEvent {
            request_id: None,
            trace_context: None,
            request_type: kind.name().to_string(),
            sdk_state: self.state,
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
        let _ = reply.send(Event::failure_in_state(pending.kind, info, self.state));
    }

    /// Pushes ServerConnectionEvent when the IDP becomes unreachable and when it is back.
    /// Called after every request that may have talked to the IDP; what the protocol client
    /// saw on its latest request decides, so a request that needed no IDP (a cached token, a
    /// wrong password) changes nothing, and retries that ended well count as reachable.
    fn observe_server(&mut self) {
        let unreachable = match self.oidc.reachability() {
            mc_oidc::Reachability::Unknown => return,
            mc_oidc::Reachability::Reachable => false,
            mc_oidc::Reachability::Unreachable => true,
        };
        if unreachable != self.server_reachable {
            return;
        }
        self.server_reachable = !unreachable;
        let connection_state = if unreachable {
            ServerConnectionState::NotReachable
        } else {
            ServerConnectionState::Connected
        };
        self.listeners
            .emit(Event::ServerConnectionEvent(ServerConnectionEvent {
                connection_state,
                server_url: self.config.server_url.clone(),
            }));
    }
}

/// The result event of `kind` for `failure`; OfflineLogin's carries the retry counter and delay.
fn failure_event(kind: RequestKind, failure: &Failure) -> Event {
    let mut event = Event::failure(kind, failure.info());
    if let (Event::OfflineLoginResultEvent(result), Some(retry)) = (&mut event, failure.retry) {
        result.retry_counter = retry.attempts_left;
        result.retry_delay = retry.delay_secs;
    }
    event
}
