//! The login actor: OfflineLoginEvent. Loads the user's record, unlocks the device key (mode
//! NO: the platform key provider; PASSWORD and BIOMETRIC come with issue 3) and logs in with it.
//!
//! The stored credential is removed only when the IDP proves it unusable (`invalid_client`:
//! the registration is gone); a network error or a 5xx never wipes anything.

use std::sync::Arc;

use actix::prelude::*;
use mc_events::{StatusType, UserIdentifier};
use mc_jose::SigningKey;
use mc_oidc::OidcClient;
use mc_store::UserId;
use tracing::Instrument;

use super::storage::{self, LoadUser, RecordLogin, RemoveUser, StorageActor};
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
    /// The request's span, so the protocol steps are traced under it.
    pub span: tracing::Span,
}

impl Handler<OfflineLogin> for LoginActor {
    type Result = ResponseFuture<Result<Arc<Session>, Failure>>;

    fn handle(&mut self, msg: OfflineLogin, _: &mut Self::Context) -> Self::Result {
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let span = msg.span.clone();
        Box::pin(
            async move {
                let record = storage::call(&storage, LoadUser(msg.user.clone()))
                    .await?
                    .ok_or_else(|| {
                        Failure::unknown_user(format!(
                            "user {} is not enrolled; enroll it or pick one from StartResultEvent",
                            msg.user
                        ))
                    })?;
                let key =
                    SigningKey::from_pkcs8(&record.secrets.device_key_pkcs8).map_err(|_| {
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
                match Session::establish(&oidc, parts, Step::Login).await {
                    Ok((session, _)) => {
                        storage::call(
                            &storage,
                            RecordLogin {
                                user: msg.user,
                                at: oidc.now(),
                            },
                        )
                        .await?;
                        Ok(Arc::new(session))
                    }
                    Err(failure) if failure.status == StatusType::OfflineNotActivated => {
                        // Proven unusable: the IDP no longer knows this client. Remove the record
                        // so the app is offered enrollment instead of a login that cannot work.
                        if let Err(error) = storage::call(&storage, RemoveUser(msg.user)).await {
                            tracing::warn!(?error, "could not remove the stale user record");
                        }
                        Err(failure)
                    }
                    Err(failure) => Err(failure),
                }
            }
            .instrument(span),
        )
    }
}
