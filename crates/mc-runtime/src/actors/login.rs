//! The login actor: who is enrolled, who an OfflineLogin without `userIdentifier` means (the
//! user who logged in last, or the one SwitchWorkspaceEvent chose: `workspace.rs`), and who is
//! logged in (the session). It handles Start and Restart
//! (read the users), OfflineLoginEvent, EnableAuthenticationModeEvent and the two requests that
//! read the session (GetIamAccessTokenClaims, GetInformation). The enrollment and
//! token-exchange actors tell it when a user appears or disappears.
//!
//! OfflineLogin unlocks the user's device key with what its mode needs (NO: the platform key
//! provider; PASSWORD: the password, with the durable lockout counter; PIN: as PASSWORD, a PIN
//! of 6-12 ASCII digits in the same field, blocked as PIN_BLOCKED; BIOMETRIC: the host's
//! platform key after a prompt) and logs in with it.
//!
//! A stored credential is removed only when it is proven unusable: the IDP answers
//! `invalid_client` (the registration is gone), or the password policy destroyed the key
//! (then the registration is deleted at the IDP too). A network error or a 5xx never wipes
//! anything.

use std::sync::Arc;

use actix::prelude::*;
use mc_events::*;
use mc_jose::SigningKey;
use mc_oidc::OidcClient;
use mc_store::{Protection, StoredAuthMode, UserId, UserSummary};
use tracing::Instrument;

use super::identified::{log_in_identified, PendingAuthorizations};
use super::idp_deletion;
use super::storage::{
    self, AdoptSubject, ChangeProtection, ListUsers, RecordLogin, RemoveUser, StorageActor,
    UnlockUserWithKey, UnlockWith,
};
use super::token_exchange::TokenExchangeActor;
use super::Admitted;
use crate::config::RuntimeConfig;
use crate::failure::{Failure, Step};
use crate::reducer::{Outcome, UserList};
use crate::session::{same_subject, Session, SessionParts, SessionSlot};

pub struct LoginActor {
    pub(super) oidc: OidcClient,
    pub(super) storage: Addr<StorageActor>,
    pub(super) config: Arc<RuntimeConfig>,
    pub(super) users: Vec<UserSummary>,
    pub(super) last_user: Option<UserId>,
    /// The logged-in session; this actor is its only writer.
    pub(super) session: SessionSlot,
    /// Identified users: authorization requests waiting for their redirect (identified.rs).
    pub(super) pending: PendingAuthorizations,
    /// Set once at start ([`ConnectExchange`]; the exchange actor is started after this one):
    /// a new interactive login clears the IAM tokens exchanged from the previous one.
    pub(super) exchange: Option<Addr<TokenExchangeActor>>,
}

/// Gives the login actor the token-exchange actor (sent once at start, before any request).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectExchange(pub Addr<TokenExchangeActor>);

impl Handler<ConnectExchange> for LoginActor {
    type Result = ();
    fn handle(&mut self, msg: ConnectExchange, _: &mut Self::Context) {
        self.exchange = Some(msg.0);
    }
}

impl Actor for LoginActor {
    type Context = Context<Self>;
}

pub fn user_identifier(id: &UserId) -> UserIdentifier {
    UserIdentifier::new(&id.tenant_id, &id.user_id)
}

pub fn store_id(id: &UserIdentifier) -> UserId {
    UserId::new(&id.tenant_id, &id.user_id)
}

impl LoginActor {
    pub fn new(
        oidc: OidcClient,
        storage: Addr<StorageActor>,
        config: Arc<RuntimeConfig>,
        session: SessionSlot,
    ) -> Self {
        Self {
            oidc,
            storage,
            config,
            users: Vec::new(),
            last_user: None,
            session,
            pending: PendingAuthorizations::default(),
            exchange: None,
        }
    }

    pub(super) fn set_users(&mut self, (users, last): (Vec<UserSummary>, Option<UserId>)) {
        self.users = users;
        self.last_user = last;
        // A session whose user is gone ends with it.
        if let Some(session) = self.session.get() {
            let id = store_id(&session.user);
            if !self.users.iter().any(|u| u.id == id) {
                self.session.set(None);
            }
        }
    }

    /// The user an OfflineLogin without `userIdentifier` logs in: the last one used.
    pub(super) fn default_user(&self) -> Option<UserId> {
        self.last_user
            .clone()
            .filter(|last| self.users.iter().any(|u| &u.id == last))
            .or_else(|| self.users.first().map(|u| u.id.clone()))
    }

    pub(super) fn user_list(&self) -> UserList {
        UserList {
            users: self.users.iter().map(|u| user_identifier(&u.id)).collect(),
            default: self.default_user().as_ref().map(user_identifier),
        }
    }

    pub(super) fn mode_of(&self, user: &UserId) -> Option<StoredAuthMode> {
        self.users
            .iter()
            .find(|u| &u.id == user)
            .map(|u| u.authentication_mode)
    }

    /// What unlocks `user` in its stored mode: nothing (NO), the password (PASSWORD; named
    /// `field` in the error when missing), the PIN (PIN; also when it cannot be a PIN), or a
    /// biometric prompt (BIOMETRIC).
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
            Some(StoredAuthMode::Pin) => checked_pin(password, field).map(UnlockWith::Pin),
        }
    }

    /// What a failed login or unlock reports. A lock (TEMPORARY_LOCKED, PASSWORD_BLOCKED,
    /// PIN_BLOCKED) ends the running session: someone at the device is guessing passwords.
    fn after_failed_unlock(&mut self, failure: &Failure, users: Option<UserList>) -> Outcome {
        if matches!(
            failure.status,
            StatusType::TemporaryLocked | StatusType::PasswordBlocked | StatusType::PinBlocked
        ) {
            self.session.set(None);
            Outcome::Locked {
                users,
                code: failure.code,
            }
        } else {
            Outcome::LoginFailed { users }
        }
    }

    /// Start and Restart: read the users; the result's `sdkState` is set by the controller.
    fn load_users<R: ResultType>(
        &mut self,
        mut msg: Admitted<impl RequestType<Result = R>>,
        make: fn(ResultInfo, Vec<UserDetails>) -> R,
    ) -> ResponseActFuture<Self, R> {
        let storage = self.storage.clone();
        let work = async move { storage::call(&storage, ListUsers).await }
            .instrument(msg.admission.span.clone());
        Box::pin(
            fut::wrap_future::<_, Self>(work).map(move |result, act, _| {
                let info = match result {
                    Ok(users) => {
                        act.set_users(users);
                        msg.report.send(Outcome::Started {
                            users: act.user_list(),
                        });
                        ResultInfo::ok()
                    }
                    Err(failure) => {
                        msg.report.send(Outcome::StartFailed);
                        failure.info()
                    }
                };
                let details = act
                    .users
                    .iter()
                    .map(|u| UserDetails::new(user_identifier(&u.id)))
                    .collect();
                make(info, details)
            }),
        )
    }
}

/// What StartResultEvent and RestartResultEvent list in `supportedFeatures`.
pub(crate) fn supported_features() -> Vec<String> {
    vec![
        "ANONYMOUS_ENROLLMENT".to_string(),
        "TOKEN_EXCHANGE".to_string(),
        "HTTP_COMMON_REQUEST".to_string(),
        // Identified users (issue 10).
        "AUTHORIZATION_CODE_PKCE".to_string(),
        "DPOP_BOUND_LOGIN".to_string(),
        "PUSHED_AUTHORIZATION_REQUESTS".to_string(),
        "REFRESH_TOKEN_OFFLINE_LOGIN".to_string(),
        "TOKEN_REVOCATION".to_string(),
        "ANONYMOUS_UPGRADE".to_string(),
        // Issue 11 point 10.
        "AUTHENTICATION_MODE_PIN".to_string(),
        "SWITCH_WORKSPACE".to_string(),
    ]
}

impl Handler<Admitted<StartEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, StartResultEvent>;

    fn handle(&mut self, msg: Admitted<StartEvent>, _: &mut Self::Context) -> Self::Result {
        self.load_users(msg, |info, user_details_list| StartResultEvent {
            info,
            sdk_state: SdkState::default(),
            user_details_list,
            supported_features: supported_features(),
        })
    }
}

impl Handler<Admitted<RestartEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, RestartResultEvent>;

    fn handle(&mut self, msg: Admitted<RestartEvent>, _: &mut Self::Context) -> Self::Result {
        // A restart is not a logout: the IAM token cache survives (logout is
        // ClearIamTokenCache then Restart); the session must be unlocked again.
        self.session.set(None);
        // Pending authorization requests do not survive a restart (their redirect must
        // start over).
        self.pending.clear();
        self.load_users(msg, |info, user_details_list| RestartResultEvent {
            info,
            sdk_state: SdkState::default(),
            user_details_list,
            supported_features: supported_features(),
        })
    }
}

impl Handler<Admitted<OfflineLoginEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, OfflineLoginResultEvent>;

    fn handle(
        &mut self,
        mut msg: Admitted<OfflineLoginEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let chosen = msg
            .event
            .user_identifier
            .as_ref()
            .map(store_id)
            .or_else(|| self.default_user());
        let Some(user) = chosen else {
            let failure = Failure::unknown_user("no enrolled user to log in; enroll first");
            return Box::pin(fut::ready(login_failure(&failure)));
        };
        let unlock = match self.unlock_for(&user, msg.event.password.take(), "password") {
            Ok(unlock) => unlock,
            Err(failure) => return Box::pin(fut::ready(login_failure(&failure))),
        };
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let refused_user = user.clone();
        // An identified user's session keeps the app's audience scopes (actors/identified.rs).
        let identified = self
            .users
            .iter()
            .any(|u| u.id == user && u.identified)
            .then(|| self.config.audience_scopes.current());
        let work = async move {
            let asked = user_identifier(&user);
            let result = log_in(&oidc, &storage, user, unlock, identified).await;
            // A failed login may have removed a user (registration gone, password blocked); a
            // successful one may have renamed it (a pre-schema-3 user adopting its `sub`).
            let users = match &result {
                Ok(session) if session.user == asked => None,
                _ => storage::call(&storage, ListUsers).await.ok(),
            };
            (result, users)
        }
        .instrument(msg.admission.span.clone());
        let work = mc_oidc::with_traceparent(msg.admission.traceparent.clone(), work);
        Box::pin(fut::wrap_future::<_, Self>(work).map(
            move |(result, users), act, _| match result {
                Ok(session) => {
                    if let Some(users) = users {
                        act.set_users(users);
                    }
                    act.last_user = Some(store_id(&session.user));
                    act.session.set(Some(Arc::clone(&session)));
                    msg.report.send(Outcome::LoggedIn {
                        user: session.user.clone(),
                        claims: session.claims(),
                        users: act.user_list(),
                    });
                    OfflineLoginResultEvent {
                        info: ResultInfo::ok(),
                        ..Default::default()
                    }
                }
                Err(failure) => {
                    let users = users.map(|users| {
                        act.set_users(users);
                        act.user_list()
                    });
                    if failure.code == mc_events::error_code::REFRESH_TOKEN_REJECTED {
                        msg.report.send(Outcome::LoginRefused {
                            user: user_identifier(&refused_user),
                            users,
                        });
                    } else {
                        msg.report.send(act.after_failed_unlock(&failure, users));
                    }
                    login_failure(&failure)
                }
            },
        ))
    }
}

/// OfflineLoginResultEvent for `failure`, with the retry counter and delay of a wrong password.
fn login_failure(failure: &Failure) -> OfflineLoginResultEvent {
    let mut result = OfflineLoginResultEvent {
        info: failure.info(),
        ..Default::default()
    };
    if let Some(retry) = failure.retry {
        result.retry_counter = retry.attempts_left;
        result.retry_delay = retry.delay_secs;
    }
    result
}

impl Handler<Admitted<EnableAuthenticationModeEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, StatusResultEvent>;

    /// Re-wraps the logged-in user's credential under another mode in one transaction.
    /// `password` unlocks the current PASSWORD or PIN mode; `newPassword` protects a new one.
    fn handle(
        &mut self,
        msg: Admitted<EnableAuthenticationModeEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let status = StatusResultEvent::new;
        let Some(session) = self.session.get() else {
            return Box::pin(fut::ready(status(super::no_session().info())));
        };
        let user = store_id(&session.user);
        let event = msg.event;
        let mut report = msg.report;
        let prepared = check_client_id(event.client_id.as_deref(), &session)
            .and_then(|()| self.unlock_for(&user, event.password, "password"))
            .and_then(|current| {
                let new = protection_for(
                    &self.config,
                    event.authentication_mode,
                    event.new_password,
                    "newPassword",
                )?;
                Ok((current, new))
            });
        let (current, new) = match prepared {
            Ok(prepared) => prepared,
            Err(failure) => return Box::pin(fut::ready(status(failure.info()))),
        };
        if self.mode_of(&user) == Some(new.mode()) && !new.mode().counts_attempts() {
            // Already protected so: nothing to re-wrap.
            return Box::pin(fut::ready(status(ResultInfo::ok())));
        }
        let storage = self.storage.clone();
        let work = async move {
            let change = ChangeProtection {
                user,
                current,
                new,
                now: mc_jose::unix_now(),
            };
            storage::unlock_call(&storage, change).await?;
            storage::call(&storage, ListUsers).await
        }
        .instrument(msg.admission.span);
        Box::pin(
            fut::wrap_future::<_, Self>(work).map(move |result, act, _| match result {
                Ok(users) => {
                    act.set_users(users);
                    status(ResultInfo::ok())
                }
                Err(failure) => {
                    // A wrong current password counts toward the lockout like a login's; a
                    // lock it starts ends the session.
                    if let outcome @ Outcome::Locked { .. } =
                        act.after_failed_unlock(&failure, None)
                    {
                        report.send(outcome);
                    }
                    let mut result = status(failure.info());
                    if let Some(retry) = failure.retry {
                        result.retry_counter = retry.attempts_left;
                        result.retry_delay = retry.delay_secs;
                    }
                    result
                }
            }),
        )
    }
}

/// EnableAuthenticationModeEvent's `clientId`, when given, must be the logged-in user's
/// enrollment client: the mode belongs to that enrollment.
fn check_client_id(client_id: Option<&str>, session: &Session) -> Result<(), Failure> {
    match client_id {
        Some(client_id) if client_id != session.enrollment_client_id => {
            Err(Failure::invalid_field(
                "clientId",
                "not the enrollment client of the logged-in user; leave it out or send that client",
            ))
        }
        _ => Ok(()),
    }
}

/// How a new credential is protected in `mode`; PASSWORD needs `password` (the request's
/// field `field`), PIN a PIN in that field, BIOMETRIC a platform key provider.
pub fn protection_for(
    config: &RuntimeConfig,
    mode: AuthenticationMode,
    password: Option<mc_secret::SecretString>,
    field: &str,
) -> Result<Protection, Failure> {
    match mode {
        AuthenticationMode::No => Ok(Protection::No),
        AuthenticationMode::Password => match password {
            Some(password) if !password.is_empty() => Ok(Protection::Password(password)),
            _ => Err(Failure::invalid_field(
                field,
                "mode PASSWORD needs a non-empty password",
            )),
        },
        AuthenticationMode::Biometric if config.biometric.is_some() => Ok(Protection::Biometric),
        AuthenticationMode::Biometric => Err(Failure::not_supported(
            "mode BIOMETRIC needs a platform key provider; configure one or use NO, PASSWORD or PIN",
        )),
        AuthenticationMode::Pin => checked_pin(password, field).map(Protection::Pin),
    }
}

/// The PIN of mode PIN in the request's field `field`: ASCII digits only, within the length
/// policy ([`mc_events::pin_problem`]); else INVALID_PARAMETER naming the field (the message
/// never quotes the PIN). A PIN that cannot be one is refused before the store sees it, so
/// it is not counted as a wrong try.
fn checked_pin(
    pin: Option<mc_secret::SecretString>,
    field: &str,
) -> Result<mc_secret::SecretString, Failure> {
    let Some(pin) = pin.filter(|pin| !pin.is_empty()) else {
        return Err(Failure::invalid_field(
            field,
            format!(
                "mode PIN needs the PIN ({}-{} digits) in this field",
                mc_events::PIN_MIN_DIGITS,
                mc_events::PIN_MAX_DIGITS
            ),
        ));
    };
    match mc_events::pin_problem(pin.expose()) {
        Some(problem) => Err(Failure::invalid_field(field, problem)),
        None => Ok(pin),
    }
}

impl Handler<Admitted<GetIamAccessTokenClaimsEvent>> for LoginActor {
    type Result = MessageResult<Admitted<GetIamAccessTokenClaimsEvent>>;

    fn handle(
        &mut self,
        _: Admitted<GetIamAccessTokenClaimsEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let claims = self.session.get().map(|s| s.claims()).unwrap_or_default();
        MessageResult(GetIamAccessTokenClaimsResultEvent {
            info: ResultInfo::ok(),
            claims,
        })
    }
}

impl Handler<Admitted<GetInformationEvent>> for LoginActor {
    type Result = MessageResult<Admitted<GetInformationEvent>>;

    fn handle(
        &mut self,
        msg: Admitted<GetInformationEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let logged_in = self.session.get();
        MessageResult(GetInformationResultEvent {
            info: ResultInfo::ok(),
            sdk_version: env!("CARGO_PKG_VERSION").to_string(),
            sdk_state: msg.admission.state,
            logged_in_user: logged_in.as_ref().map(|s| s.user.clone()),
            iam_configuration_data: logged_in.as_ref().map(|s| IamConfigurationData {
                client_id: s.enrollment_client_id.clone(),
                server_url: s.server_url.clone(),
                tenant_id: s.tenant_id.clone(),
                issuer: Some(s.metadata.issuer.clone()),
                redirect_uri: s
                    .identified
                    .as_ref()
                    .and_then(|identified| identified.redirect_uri.clone()),
            }),
        })
    }
}

/// From the enrollment actor: a user enrolled and is logged in; `users` is the store's list
/// after it. Answers the list as the state machine sees it.
#[derive(Message)]
#[rtype(result = "UserList")]
pub struct SessionStarted {
    pub session: Arc<Session>,
    pub users: (Vec<UserSummary>, Option<UserId>),
}

impl Handler<SessionStarted> for LoginActor {
    type Result = MessageResult<SessionStarted>;

    fn handle(&mut self, msg: SessionStarted, _: &mut Self::Context) -> Self::Result {
        self.users = msg.users.0;
        self.last_user = Some(store_id(&msg.session.user));
        self.session.set(Some(msg.session));
        MessageResult(self.user_list())
    }
}

/// From the enrollment actor: the users changed (a user was deleted); `None`: only asks the
/// current list. Ends the session if its user is gone. Answers the list.
#[derive(Message)]
#[rtype(result = "UserList")]
pub struct UsersChanged(pub Option<(Vec<UserSummary>, Option<UserId>)>);

impl Handler<UsersChanged> for LoginActor {
    type Result = MessageResult<UsersChanged>;

    fn handle(&mut self, msg: UsersChanged, _: &mut Self::Context) -> Self::Result {
        if let Some(users) = msg.0 {
            self.set_users(users);
        }
        MessageResult(self.user_list())
    }
}

/// From the token-exchange actor: the IDP proved the registration of `user` gone. Removes the
/// user (store and list) and ends its session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegistrationGone(pub UserIdentifier);

impl Handler<RegistrationGone> for LoginActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: RegistrationGone, _: &mut Self::Context) -> Self::Result {
        let user = store_id(&msg.0);
        if self.session.get().is_some_and(|s| s.user == msg.0) {
            self.session.set(None);
        }
        self.users.retain(|u| u.id != user);
        let storage = self.storage.clone();
        let work = async move {
            if let Err(error) = storage::call(&storage, RemoveUser(user)).await {
                tracing::warn!(status = ?error.status, "could not remove the user whose registration is gone");
            }
        };
        Box::pin(fut::wrap_future::<_, Self>(work))
    }
}

async fn log_in(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    user: UserId,
    unlock: UnlockWith,
    identified: Option<Arc<std::collections::BTreeMap<String, String>>>,
) -> Result<Arc<Session>, Failure> {
    let unlocked = storage::unlock_call(
        storage,
        UnlockUserWithKey {
            user: user.clone(),
            unlock,
            now: mc_jose::unix_now(),
        },
    )
    .await;
    let unlocked = match unlocked {
        Ok(unlocked) => unlocked,
        Err(failure)
            if matches!(
                failure.status,
                StatusType::PasswordBlocked | StatusType::PinBlocked
            ) =>
        {
            // The credential is destroyed: the user goes locally (the app is offered
            // enrollment), its registration at the IDP now or, unreachable, later: queued in
            // the same commit (actors/idp_deletion.rs).
            let removed = async {
                let deletion = idp_deletion::registration_deletion(storage, &user).await?;
                if let Some(record) =
                    idp_deletion::delete_locally(oidc, storage, &user, deletion).await?
                {
                    idp_deletion::send_one(oidc, storage, &record).await;
                }
                Ok::<_, Failure>(())
            };
            if let Err(error) = removed.await {
                tracing::warn!(status = ?error.status, "could not remove the blocked user");
            }
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    let key = SigningKey::from_pkcs8(&unlocked.user.secrets.device_key_pkcs8).map_err(|_| {
        Failure::new(
            StatusType::NoTokenDataAvailable,
            mc_events::error_code::NO_STORED_CREDENTIAL,
            "the stored device key is unusable; enroll this user again",
        )
    })?;
    if let Some(audience_scopes) = identified {
        let session =
            log_in_identified(oidc, storage, unlocked, Arc::new(key), audience_scopes).await?;
        storage::call(
            storage,
            RecordLogin {
                user,
                at: oidc.now(),
            },
        )
        .await?;
        return Ok(session);
    }
    let record = unlocked.user;
    let metadata = oidc
        .discover(&record.issuer)
        .await
        .map_err(|e| Failure::from_oidc(&e, Step::Login))?;
    let parts = SessionParts {
        user: UserIdentifier::new(&record.id.tenant_id, &record.id.user_id),
        client_id: record.oauth_client_id().to_string(),
        enrollment_client_id: record.enrollment_client_id.clone(),
        server_url: record.server_url.clone(),
        key: Arc::new(key),
        metadata: Arc::new(metadata),
    };
    match Session::establish(oidc, parts, Step::Login).await {
        Ok((mut session, verified)) => {
            let user = match (&record.registration_client_id, &verified.subject) {
                // Stored before schema 3 (named by its client_id): the first login with a
                // `sub` renames it, in one commit, before the login counts.
                (None, Some(subject)) => {
                    let adopted = storage::call(
                        storage,
                        AdoptSubject {
                            user,
                            subject: subject.clone(),
                        },
                    )
                    .await?;
                    session.user = user_identifier(&adopted);
                    adopted
                }
                // Its id is its `sub`: the IDP must keep naming the same user.
                _ => {
                    same_subject(&record.id.user_id, &verified)?;
                    user
                }
            };
            storage::call(
                storage,
                RecordLogin {
                    user,
                    at: oidc.now(),
                },
            )
            .await?;
            Ok(Arc::new(session))
        }
        Err(failure) if failure.status == StatusType::OfflineNotActivated => {
            // Proven unusable: the IDP no longer knows this client. Remove the record so the
            // app is offered enrollment instead of a login that cannot work.
            if let Err(error) = storage::call(storage, RemoveUser(user)).await {
                tracing::warn!(?error, "could not remove the stale user record");
            }
            Err(failure)
        }
        Err(failure) => Err(failure),
    }
}
