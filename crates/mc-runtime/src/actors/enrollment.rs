//! The enrollment actor: the life of a device registration. EnrollAnonymousUserEvent creates
//! one (discovery, device key, RFC 7591 registration, first login, store) and replaces the
//! earlier one of the same tenant and enrollment client (one user per pair); DeleteUserEvent
//! ends one: locally at once, whatever the network (its keys and records, with what the IDP
//! must still be told queued in the same store commit), then its cached IAM tokens, then the
//! IDP part (RFC 7592 delete, or RFC 7009 revocation for an identified user), tried at once
//! and, if the IDP cannot be reached, later (`idp_deletion.rs`).
//!
//! Nothing is stored unless every step succeeded, and a registration the IDP accepted but we
//! could not finish is deleted again at the IDP (best effort), so a failed enrollment leaves
//! neither a local record nor, where the IDP is reachable, a stray client.

use std::sync::Arc;

use actix::prelude::*;
use mc_events::*;
use mc_jose::SigningKey;
use mc_oidc::{OidcClient, RegistrationRequest};
use mc_store::{EnrolledUser, Protection, UserId, UserSecrets};
use tracing::Instrument;

use super::idp_deletion::{self, DrainIdpDeletions};
use super::login::{self, LoginActor, SessionStarted, UsersChanged};
use super::storage::{self, ListUsers, LoadManagementSecrets, RemoveUser, SaveUser, StorageActor};
use super::token_exchange::{ClearCache, TokenExchangeActor};
use super::Admitted;
use crate::config::RuntimeConfig;
use crate::failure::{Failure, Step};
use crate::reducer::Outcome;
use crate::session::{Session, SessionParts, SessionSlot};

pub struct EnrollmentActor {
    oidc: OidcClient,
    config: Arc<RuntimeConfig>,
    storage: Addr<StorageActor>,
    login: Addr<LoginActor>,
    exchange: Addr<TokenExchangeActor>,
    /// The logged-in session: an identified user's refresh token, to revoke at DeleteUser.
    session: SessionSlot,
}

impl EnrollmentActor {
    pub fn new(
        oidc: OidcClient,
        config: Arc<RuntimeConfig>,
        storage: Addr<StorageActor>,
        login: Addr<LoginActor>,
        exchange: Addr<TokenExchangeActor>,
        session: SessionSlot,
    ) -> Self {
        Self {
            oidc,
            config,
            storage,
            login,
            exchange,
            session,
        }
    }
}

impl Actor for EnrollmentActor {
    type Context = Context<Self>;
}

fn actor_stopped(name: &str) -> Failure {
    Failure::component_stopped(&format!("{name} actor"))
}

impl Handler<Admitted<EnrollAnonymousUserEvent>> for EnrollmentActor {
    type Result = ResponseFuture<StatusResultEvent>;

    fn handle(
        &mut self,
        mut msg: Admitted<EnrollAnonymousUserEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let event = msg.event;
        let protection = match login::protection_for(
            &self.config,
            event.authentication_mode,
            event.password.clone(),
            "password",
        ) {
            Ok(protection) => protection,
            Err(failure) => return Box::pin(async move { StatusResultEvent::new(failure.info()) }),
        };
        let replace_existing = event.replace_existing;
        let logged_in = msg.admission.user.as_ref().map(login::store_id);
        let enroll_msg = Enroll {
            server_url: msg.admission.server_url.clone(),
            tenant_id: event.tenant_id,
            enrollment_client_id: event.client_id,
            protection,
        };
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let login = self.login.clone();
        let span = msg.admission.span.clone();
        let traceparent = msg.admission.traceparent.clone();
        Box::pin(mc_oidc::with_traceparent(
            traceparent,
            async move {
                let work = async {
                    // One user per tenant and enrollment client: a new enrollment replaces
                    // the old one (removed once the new one is stored).
                    let (before, _) = storage::call(&storage, ListUsers).await?;
                    let replaced: Vec<UserId> = before
                        .into_iter()
                        .filter(|u| {
                            u.id.tenant_id == enroll_msg.tenant_id
                                && u.enrollment_client_id == enroll_msg.enrollment_client_id
                        })
                        .map(|u| u.id)
                        .collect();
                    refuse_replacing_the_session(&replaced, logged_in.as_ref(), replace_existing)?;
                    let session = enroll(&oidc, &storage, enroll_msg).await?;
                    for old in replaced {
                        if let Err(failure) = delete_user(&oidc, &storage, &old).await {
                            tracing::warn!(status = ?failure.status, "could not remove the replaced enrollment");
                        }
                    }
                    let users = storage::call(&storage, ListUsers).await?;
                    let user = session.user.clone();
                    let claims = session.claims();
                    let users = login
                        .send(SessionStarted { session, users })
                        .await
                        .map_err(|_| actor_stopped("login"))?;
                    Ok::<_, Failure>(Outcome::Enrolled {
                        user,
                        claims,
                        users,
                    })
                };
                match work.await {
                    Ok(outcome) => {
                        msg.report.send(outcome);
                        StatusResultEvent::new(ResultInfo::ok())
                    }
                    Err(failure) => StatusResultEvent::new(failure.info()),
                }
            }
            .instrument(span),
        ))
    }
}

/// An enrollment that would replace the logged-in identity (same tenant and enrollment
/// client) silently deletes it at the IDP: refused unless the app said `replaceExisting`.
fn refuse_replacing_the_session(
    replaced: &[UserId],
    logged_in: Option<&UserId>,
    replace_existing: bool,
) -> Result<(), Failure> {
    match logged_in {
        Some(user) if replaced.contains(user) && !replace_existing => Err(Failure::new(
            StatusType::InvalidState,
            mc_events::error_code::INVALID_STATE,
            "the logged-in user is enrolled with this tenant and client already; an enrollment \
             would delete that identity: send DeleteUserEvent first, or set replaceExisting",
        )
        .with_next_action(Some(NextAction::SendFirst {
            request_type: RequestKind::DeleteUser.name().to_string(),
        }))),
        _ => Ok(()),
    }
}

/// Enroll this device anonymously at `tenant_id` through the IDP client `enrollment_client_id`.
struct Enroll {
    server_url: String,
    tenant_id: String,
    enrollment_client_id: String,
    /// How the device key is protected at rest (the mode's secret included).
    protection: Protection,
}

async fn enroll(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    msg: Enroll,
) -> Result<Arc<Session>, Failure> {
    let issuer = oidc.issuer_for(&msg.server_url, &msg.tenant_id);
    let metadata = oidc
        .discover(&issuer)
        .await
        .map_err(|e| Failure::from_oidc(&e, Step::Enroll))?;
    let key = SigningKey::generate()
        .map_err(|e| Failure::internal(format!("device key generation failed: {e}")))?;
    let registration = oidc
        .register(
            &metadata,
            &key,
            &RegistrationRequest {
                client_name: "mc-runtime anonymous device".into(),
                software_id: msg.enrollment_client_id.clone(),
                initial_access_token: None,
            },
        )
        .await
        .map_err(|e| Failure::from_oidc(&e, Step::Enroll))?;

    let key = Arc::new(key);
    let parts = SessionParts {
        user: UserIdentifier::new(&msg.tenant_id, &registration.client_id),
        client_id: registration.client_id.clone(),
        enrollment_client_id: msg.enrollment_client_id.clone(),
        server_url: msg.server_url.clone(),
        key: Arc::clone(&key),
        metadata: Arc::new(metadata),
    };
    let finished = async {
        let (mut session, verified) = Session::establish(oidc, parts, Step::Enroll).await?;
        // The user's id is the IDP's user id: the `sub` of its first (verified) token. An IDP
        // that gives none leaves the client_id, and the first login with a `sub` adopts it.
        let (user_id, registration_client_id) = match &verified.subject {
            Some(subject) => (subject.clone(), Some(registration.client_id.clone())),
            None => (registration.client_id.clone(), None),
        };
        let id = UserId::new(&msg.tenant_id, &user_id);
        let (existing, _) = storage::call(storage, ListUsers).await?;
        if existing.iter().any(|user| user.id == id) {
            return Err(Failure::new(
                StatusType::InvalidToken,
                mc_events::error_code::SUBJECT_CHANGED,
                "the IDP's token for the new registration names a user already enrolled on \
                 this device; nothing was stored",
            ));
        }
        session.user = UserIdentifier::new(&msg.tenant_id, &user_id);
        let record = EnrolledUser {
            id,
            enrollment_client_id: msg.enrollment_client_id.clone(),
            server_url: msg.server_url.clone(),
            issuer: issuer.clone(),
            registration_client_uri: registration.registration_client_uri.clone(),
            registration_client_id,
            redirect_uri: None,
            authentication_mode: msg.protection.mode(),
            subject: verified.subject.clone(),
            created_at: oidc.now(),
            last_login_at: Some(oidc.now()),
            secrets: UserSecrets {
                device_key_pkcs8: key.to_pkcs8(),
                registration_access_token: registration.registration_access_token.clone(),
            },
        };
        storage::call(
            storage,
            SaveUser {
                user: record,
                protection: msg.protection.clone(),
            },
        )
        .await?;
        Ok(session)
    }
    .await;

    match finished {
        Ok(session) => Ok(Arc::new(session)),
        Err(failure) => {
            // Undo the registration so the IDP keeps no client we cannot use.
            if let (Some(uri), Some(token)) = (
                registration.registration_client_uri.as_deref(),
                registration.registration_access_token.as_ref(),
            ) {
                if let Err(error) = oidc.delete_registration(uri, token).await {
                    tracing::warn!(%error, "could not undo the registration of a failed enrollment");
                }
            }
            Err(failure)
        }
    }
}

impl Handler<Admitted<DeleteUserEvent>> for EnrollmentActor {
    type Result = ResponseFuture<DeleteUserResultEvent>;

    /// Deletes the user admission chose (the named one, else the logged-in one, else the
    /// default): locally first, with the IDP part queued in the same commit, then its cached
    /// IAM tokens, then the IDP part, tried once now. OK once the local part is done;
    /// `idpDeletionPending` says the IDP part is left for later.
    fn handle(
        &mut self,
        mut msg: Admitted<DeleteUserEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let login = self.login.clone();
        let exchange = self.exchange.clone();
        let session = self.session.get();
        let chosen = msg.admission.user.clone();
        let span = msg.admission.span.clone();
        let traceparent = msg.admission.traceparent.clone();
        Box::pin(mc_oidc::with_traceparent(
            traceparent,
            async move {
                let work = async {
                    let user = chosen
                        .ok_or_else(|| Failure::unknown_user("no enrolled user to delete"))?;
                    let id = login::store_id(&user);
                    let deletion = match revocation_of(session.as_deref(), &user) {
                        Some(revocation) => Some(revocation),
                        None => idp_deletion::registration_deletion(&storage, &id).await?,
                    };
                    let queued =
                        idp_deletion::delete_locally(&oidc, &storage, &id, deletion).await?;
                    // Its tokens go before the answer: no later request may get one.
                    exchange
                        .send(ClearCache {
                            user,
                            behavior: ClearBehavior::ClearAll,
                        })
                        .await
                        .map_err(|_| actor_stopped("token-exchange"))?;
                    // The IDP part, tried once now; left queued if it cannot be done now.
                    let pending = match &queued {
                        Some(record) => idp_deletion::send_one(&oidc, &storage, record).await,
                        None => false,
                    };
                    let users = storage::call(&storage, ListUsers).await?;
                    let users = login
                        .send(UsersChanged(Some(users)))
                        .await
                        .map_err(|_| actor_stopped("login"))?;
                    Ok::<_, Failure>((users, pending))
                };
                match work.await {
                    Ok((users, pending)) => {
                        msg.report.send(Outcome::UserDeleted {
                            users: users.clone(),
                        });
                        DeleteUserResultEvent {
                            info: ResultInfo::ok(),
                            sdk_state: SdkState::default(),
                            user_list: users.users,
                            idp_deletion_pending: pending,
                        }
                    }
                    Err(failure) => DeleteUserResultEvent {
                        info: failure.info(),
                        sdk_state: SdkState::default(),
                        user_list: login
                            .send(UsersChanged(None))
                            .await
                            .map(|users| users.users)
                            .unwrap_or_default(),
                        idp_deletion_pending: false,
                    },
                }
            }
            .instrument(span),
        ))
    }
}

/// An identified user logged in now: the RFC 7009 revocation of its refresh token. One not
/// logged in has its token sealed under its password or biometric key, out of reach: nothing
/// is revoked and the token expires at the IDP on its own.
fn revocation_of(
    session: Option<&Session>,
    user: &UserIdentifier,
) -> Option<mc_store::IdpDeletion> {
    let session = session.filter(|s| &s.user == user)?;
    let (identified, refresh_token) = (session.identified.as_ref()?, session.refresh_token()?);
    Some(mc_store::IdpDeletion::Revocation {
        issuer: session.metadata.issuer.clone(),
        client_id: identified.client_id.clone(),
        refresh_token,
    })
}

impl Handler<DrainIdpDeletions> for EnrollmentActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: DrainIdpDeletions, _: &mut Self::Context) -> Self::Result {
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        Box::pin(async move { idp_deletion::drain(&oidc, &storage, msg.due_only).await })
    }
}

/// Deletes an enrolled user: at the IDP first, then locally.
pub async fn delete_user(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    user: &UserId,
) -> Result<(), Failure> {
    delete_registration(oidc, storage, user).await?;
    storage::call(storage, RemoveUser(user.clone())).await?;
    Ok(())
}

/// Deletes the registration of `user` at the IDP (RFC 7592) with its management secrets,
/// which the store keeps readable without the user's password. "Already gone" counts as done.
pub async fn delete_registration(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    user: &UserId,
) -> Result<(), Failure> {
    let secrets = storage::call(storage, LoadManagementSecrets(user.clone())).await?;
    if let (Some(uri), Some(token)) = (
        secrets.registration_client_uri.as_deref(),
        secrets.registration_access_token.as_ref(),
    ) {
        match oidc.delete_registration(uri, token).await {
            Ok(()) => {}
            Err(e) if e.kind() == mc_oidc::OidcErrorKind::InvalidClient => {}
            // Keep the local record so the app can retry; deleting it now would leave
            // a client at the IDP that nobody can remove.
            Err(e) => return Err(Failure::from_oidc(&e, Step::DeleteRegistration)),
        }
    }
    Ok(())
}
