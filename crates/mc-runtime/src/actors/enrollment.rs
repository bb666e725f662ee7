//! The enrollment actor: the life of a device registration. EnrollAnonymousUserEvent creates
//! one (discovery, device key, RFC 7591 registration, first login, store); DeleteUserEvent ends
//! one (RFC 7592 delete at the IDP, then the local record).
//!
//! Nothing is stored unless every step succeeded, and a registration the IDP accepted but we
//! could not finish is deleted again at the IDP (best effort), so a failed enrollment leaves
//! neither a local record nor, where the IDP is reachable, a stray client.

use std::sync::Arc;

use actix::prelude::*;
use mc_events::UserIdentifier;
use mc_jose::SigningKey;
use mc_oidc::{OidcClient, RegistrationRequest};
use mc_store::{EnrolledUser, Protection, UserId, UserSecrets, UserSummary};
use tracing::Instrument;

use super::storage::{self, LoadManagementSecrets, RemoveUser, SaveUser, StorageActor};
use crate::failure::{Failure, Step};
use crate::session::{Session, SessionParts};

pub struct EnrollmentActor {
    oidc: OidcClient,
    storage: Addr<StorageActor>,
}

impl EnrollmentActor {
    pub fn new(oidc: OidcClient, storage: Addr<StorageActor>) -> Self {
        Self { oidc, storage }
    }
}

impl Actor for EnrollmentActor {
    type Context = Context<Self>;
}

/// Enroll this device anonymously at `tenant_id` through the IDP client `enrollment_client_id`.
#[derive(Message)]
#[rtype(result = "Result<Arc<Session>, Failure>")]
pub struct Enroll {
    pub server_url: String,
    pub tenant_id: String,
    pub enrollment_client_id: String,
    /// How the device key is protected at rest (the mode's secret included).
    pub protection: Protection,
    /// The request's span, so the protocol steps are traced under it.
    pub span: tracing::Span,
}

impl Handler<Enroll> for EnrollmentActor {
    type Result = ResponseFuture<Result<Arc<Session>, Failure>>;

    fn handle(&mut self, msg: Enroll, _: &mut Self::Context) -> Self::Result {
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let span = msg.span.clone();
        Box::pin(async move { enroll(&oidc, &storage, msg).await }.instrument(span))
    }
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
        enrollment_client_id: msg.enrollment_client_id.clone(),
        server_url: msg.server_url.clone(),
        key: Arc::clone(&key),
        metadata: Arc::new(metadata),
    };
    let finished = async {
        let (session, verified) = Session::establish(oidc, parts, Step::Enroll).await?;
        let record = EnrolledUser {
            id: UserId::new(&msg.tenant_id, &registration.client_id),
            enrollment_client_id: msg.enrollment_client_id.clone(),
            server_url: msg.server_url.clone(),
            issuer: issuer.clone(),
            registration_client_uri: registration.registration_client_uri.clone(),
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

/// Delete an enrolled user: at the IDP first, then locally. Answers the remaining users.
#[derive(Message)]
#[rtype(result = "Result<Vec<UserSummary>, Failure>")]
pub struct DeleteUser {
    pub user: UserId,
}

impl Handler<DeleteUser> for EnrollmentActor {
    type Result = ResponseFuture<Result<Vec<UserSummary>, Failure>>;

    fn handle(&mut self, msg: DeleteUser, _: &mut Self::Context) -> Self::Result {
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        Box::pin(async move {
            delete_registration(&oidc, &storage, &msg.user).await?;
            storage::call(&storage, RemoveUser(msg.user)).await
        })
    }
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
