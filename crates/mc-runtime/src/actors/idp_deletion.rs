//! The IDP part of DeleteUserEvent, which may wait: sending the queued deletions (mc-store's
//! `pending_idp_deletions` table) to the IDP, now and later.
//!
//! DeleteUser deletes the user locally and queues what the IDP must still be told in the same
//! store commit (`UserStore::delete_user_queueing`), then tries it at once. What is left is
//! sent again by [`drain`]: after every StartEvent and RestartEvent (every record), and when
//! the controller sees the IDP reachable again (records whose backoff has passed). The answer
//! decides: done (2xx; RFC 7592's 404 and 401, i.e. already gone or token no longer valid; a
//! revocation the IDP does not offer) removes the record; a 5xx keeps it with backoff; no
//! answer (network, timeout) keeps it due for the next trigger; anything else (e.g. 400) is a
//! permanent refusal: the record is dropped with a log line that names the user, never a
//! secret. The bounds (size, tries, age) are mc-store's (`store/idp_deletions.rs`).
//!
//! A record is sent by one task at a time (`Claim`), so a drain started while another
//! runs, or while DeleteUser tries its own record, never calls the IDP twice for it. A crash
//! after the IDP answered and before the record was removed sends it once more at the next
//! start; the IDP then answers 404/401 (already gone), which counts as done.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use actix::prelude::*;
use mc_oidc::{OidcClient, OidcErrorKind};
use mc_store::{IdpDeletion, IdpDeletionId, PendingIdpDeletion, Postponed, StoreError, UserId};

use super::storage::{self, LoadManagementSecrets, RemoveUserQueueing, StorageActor};
use crate::failure::Failure;

/// The records being sent now, in this process. One set for every runtime of the process is
/// right: record keys are 128 random bits, so two runtimes never share one.
fn in_flight() -> &'static Mutex<HashSet<IdpDeletionId>> {
    static IN_FLIGHT: OnceLock<Mutex<HashSet<IdpDeletionId>>> = OnceLock::new();
    IN_FLIGHT.get_or_init(Mutex::default)
}

/// A record claimed for sending; released when dropped, however the send ended.
struct Claim(IdpDeletionId);

impl Claim {
    /// `None` when another task is sending `id`.
    fn take(id: &IdpDeletionId) -> Option<Claim> {
        let mut set = in_flight().lock().unwrap_or_else(PoisonError::into_inner);
        set.insert(id.clone()).then(|| Claim(id.clone()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        in_flight()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// What the IDP's answer means for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Done,
    /// The IDP could not be reached (network, timeout): keep, due at the next trigger.
    Unreachable,
    /// The IDP answered with its own trouble (5xx): keep, retry after the backoff.
    ServerError,
    /// Will not pass by retrying: drop.
    Refused,
}

async fn tell_the_idp(oidc: &OidcClient, deletion: &IdpDeletion) -> Answer {
    let result = match deletion {
        IdpDeletion::Registration {
            registration_client_uri,
            registration_access_token,
        } => oidc
            .delete_registration(registration_client_uri, registration_access_token)
            .await
            .map(|()| true),
        IdpDeletion::Revocation {
            issuer,
            client_id,
            refresh_token,
        } => match oidc.discover(issuer).await {
            Ok(metadata) => {
                oidc.revoke(&metadata, client_id, refresh_token, "refresh_token")
                    .await
            }
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(_) => Answer::Done,
        // RFC 7592: 401 for a client that no longer exists (or a token no longer valid);
        // either way nothing is left that this token could delete.
        Err(error)
            if matches!(deletion, IdpDeletion::Registration { .. })
                && error.kind() == OidcErrorKind::InvalidClient =>
        {
            Answer::Done
        }
        Err(error) if error.kind() == OidcErrorKind::ServerError => Answer::ServerError,
        Err(error) if error.is_transient() => Answer::Unreachable,
        Err(error) => {
            tracing::warn!(kind = ?error.kind(), "the IDP refused a queued deletion");
            Answer::Refused
        }
    }
}

/// Sends one queued deletion unless another task is sending it, and records the outcome.
/// Answers whether it is still pending afterwards.
pub async fn send_one(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    pending: &PendingIdpDeletion,
) -> bool {
    let Some(_claim) = Claim::take(&pending.id) else {
        return true;
    };
    let answer = tell_the_idp(oidc, &pending.deletion).await;
    let user = &pending.user;
    let recorded = match answer {
        Answer::Done => {
            tracing::info!(user = %user, "the IDP confirmed the deletion of a deleted user");
            storage::call(storage, storage::FinishIdpDeletion(pending.id.clone()))
                .await
                .map(|_| false)
        }
        Answer::Refused => {
            tracing::warn!(user = %user, "dropped a queued IDP deletion the IDP refuses for good");
            storage::call(storage, storage::FinishIdpDeletion(pending.id.clone()))
                .await
                .map(|_| false)
        }
        Answer::Unreachable | Answer::ServerError => storage::call(
            storage,
            storage::PostponeIdpDeletion {
                id: pending.id.clone(),
                now: oidc.now(),
                server_answered: answer == Answer::ServerError,
            },
        )
        .await
        .map(|postponed| matches!(postponed, Postponed::Until(_))),
    };
    recorded.unwrap_or_else(|failure| {
        tracing::warn!(user = %user, status = ?failure.status, "could not record the outcome of an IDP deletion; it is retried later");
        true
    })
}

/// Sends the queued deletions, one after another: every one (`due_only == false`, at start),
/// or those whose backoff after a 5xx has passed (the IDP is reachable again).
pub async fn drain(oidc: &OidcClient, storage: &Addr<StorageActor>, due_only: bool) {
    let pending = match storage::call(storage, storage::ListIdpDeletions).await {
        Ok(pending) => pending,
        Err(failure) => {
            tracing::warn!(status = ?failure.status, "cannot read the queued IDP deletions; retried at the next start");
            return;
        }
    };
    let now = oidc.now();
    for record in pending
        .iter()
        .filter(|record| !due_only || record.next_attempt_at <= now)
    {
        send_one(oidc, storage, record).await;
    }
}

/// Sends the queued IDP deletions (see [`drain`]); answered when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DrainIdpDeletions {
    pub due_only: bool,
}

/// The RFC 7592 delete of `user`'s registration, from its management secrets (readable without
/// the user's unlock); `None` when it has no registration to delete. Damaged management
/// secrets cost the IDP part only (logged): the local delete still happens.
pub async fn registration_deletion(
    storage: &Addr<StorageActor>,
    user: &UserId,
) -> Result<Option<IdpDeletion>, Failure> {
    match storage.send(LoadManagementSecrets(user.clone())).await {
        Ok(Ok(secrets)) => Ok(
            match (
                secrets.registration_client_uri,
                secrets.registration_access_token,
            ) {
                (Some(registration_client_uri), Some(registration_access_token)) => {
                    Some(IdpDeletion::Registration {
                        registration_client_uri,
                        registration_access_token,
                    })
                }
                _ => None,
            },
        ),
        Ok(Err(StoreError::Corrupt { .. } | StoreError::DecryptionFailed { .. })) => {
            tracing::warn!(user = %user, "the management secrets are damaged: the user is deleted locally only");
            Ok(None)
        }
        Ok(Err(error)) => Err(Failure::from_store(&error)),
        Err(_) => Err(Failure::component_stopped("storage actor")),
    }
}

/// Deletes `user` locally and queues `deletion` in the same store commit; answers the queued
/// record, for [`send_one`] once the user's tokens are gone from memory.
pub async fn delete_locally(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    user: &UserId,
    deletion: Option<IdpDeletion>,
) -> Result<Option<PendingIdpDeletion>, Failure> {
    let now = oidc.now();
    let (queued, _) = storage::call(
        storage,
        RemoveUserQueueing {
            user: user.clone(),
            deletion: deletion.clone(),
            now,
        },
    )
    .await?;
    Ok(queued
        .zip(deletion)
        .map(|(id, deletion)| PendingIdpDeletion {
            id,
            user: user.clone(),
            deletion,
            queued_at: now,
            attempts: 0,
            next_attempt_at: now,
        }))
}
