//! The login actor: OfflineLoginEvent. Unlocks the user's device key with what its mode needs
//! (NO: the platform key provider; PASSWORD: the password, with the durable lockout counter;
//! BIOMETRIC: the host's platform key after a prompt) and logs in with it.
//!
//! A stored credential is removed only when it is proven unusable: the IDP answers
//! `invalid_client` (the registration is gone), or the password policy destroyed the key
//! (then the registration is deleted at the IDP too). A network error or a 5xx never wipes
//! anything.

use std::sync::Arc;

use actix::prelude::*;
use mc_events::{StatusType, UserIdentifier};
use mc_jose::SigningKey;
use mc_oidc::OidcClient;
use mc_store::UserId;
use tracing::Instrument;

use super::enrollment::delete_registration;
use super::storage::{self, RecordLogin, RemoveUser, StorageActor, UnlockUser, UnlockWith};
use crate::failure::{Failure, Step};
use crate::session::{Session, SessionParts};

pub struct LoginActor {
    oidc: OidcClient,
    storage: Addr<StorageActor>,
}

impl LoginActor {
    pub fn new(oidc: OidcClient, storage: Addr<StorageActor>) -> Self {
        Self { oidc, storage }
    }
}

impl Actor for LoginActor {
    type Context = Context<Self>;
}

/// Log in `user` with its stored device key.
#[derive(Message)]
#[rtype(result = "Result<Arc<Session>, Failure>")]
pub struct OfflineLogin {
    pub user: UserId,
    /// The password or biometric prompt the user's mode needs.
    pub unlock: UnlockWith,
    /// The request's span, so the protocol steps are traced under it.
    pub span: tracing::Span,
}

impl Handler<OfflineLogin> for LoginActor {
    type Result = ResponseFuture<Result<Arc<Session>, Failure>>;

    fn handle(&mut self, msg: OfflineLogin, _: &mut Self::Context) -> Self::Result {
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let span = msg.span.clone();
        Box::pin(async move { log_in(&oidc, &storage, msg).await }.instrument(span))
    }
}

async fn log_in(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    msg: OfflineLogin,
) -> Result<Arc<Session>, Failure> {
    let unlocked = storage::unlock_call(
        storage,
        UnlockUser {
            user: msg.user.clone(),
            unlock: msg.unlock.clone(),
            now: mc_jose::unix_now(),
        },
    )
    .await;
    let record = match unlocked {
        Ok(record) => record,
        Err(failure) if failure.status == StatusType::PasswordBlocked => {
            // The credential is destroyed: remove the registration at the IDP when
            // reachable, and the local record, so the app is offered enrollment.
            if let Err(error) = delete_registration(oidc, storage, &msg.user).await {
                tracing::warn!(status = ?error.status, "could not delete the blocked registration at the IDP");
            }
            if let Err(error) = storage::call(storage, RemoveUser(msg.user.clone())).await {
                tracing::warn!(status = ?error.status, "could not remove the blocked user");
            }
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    let key = SigningKey::from_pkcs8(&record.secrets.device_key_pkcs8).map_err(|_| {
        Failure::new(
            StatusType::NoTokenDataAvailable,
            mc_events::error_code::NO_STORED_CREDENTIAL,
            "the stored device key is unusable; enroll this user again",
        )
    })?;
    let metadata = oidc
        .discover(&record.issuer)
        .await
        .map_err(|e| Failure::from_oidc(&e, Step::Login))?;
    let parts = SessionParts {
        user: UserIdentifier::new(&record.id.tenant_id, &record.id.user_id),
        enrollment_client_id: record.enrollment_client_id.clone(),
        server_url: record.server_url.clone(),
        key: Arc::new(key),
        metadata: Arc::new(metadata),
    };
    match Session::establish(oidc, parts, Step::Login).await {
        Ok((session, _)) => {
            storage::call(
                storage,
                RecordLogin {
                    user: msg.user,
                    at: oidc.now(),
                },
            )
            .await?;
            Ok(Arc::new(session))
        }
        Err(failure) if failure.status == StatusType::OfflineNotActivated => {
            // Proven unusable: the IDP no longer knows this client. Remove the record so the
            // app is offered enrollment instead of a login that cannot work.
            if let Err(error) = storage::call(storage, RemoveUser(msg.user)).await {
                tracing::warn!(?error, "could not remove the stale user record");
            }
            Err(failure)
        }
        Err(failure) => Err(failure),
    }
}
