//! The durable queue of deletions the IDP has not confirmed yet (DeleteUserEvent offline).
//!
//! A user is deleted locally at once, whatever the network; what the IDP must still be told
//! (the RFC 7592 delete of an anonymous device's registration, or the RFC 7009 revocation of
//! an identified user's refresh token) becomes one record of the table `pending_idp_deletions`,
//! written in the SAME commit that removes the user ([`UserStore::delete_user_queueing`]):
//! a crash leaves the user (and no record) or the record (and no user), never both, never
//! neither. The record holds only what that one IDP call needs, sealed (AES-256-GCM) under the
//! [`KeyProvider`](crate::KeyProvider) key like the management secrets, with an AAD naming the
//! schema, its purpose, its own record key, its user and its queue time: a record copied under
//! another key, another user or from another store fails to open and is dropped (reported to
//! the damage observer), never sent.
//!
//! Record key: 16 random bytes (hex). Value (JSON): `{format, tenantId, userId, queuedAt,
//! attempts, nextAttemptAt, sealed}`; the counters are outside the seal (not secret; a
//! tampered counter can only move the next try or the drop at the bound).
//!
//! Bounds: at most [`MAX_PENDING_IDP_DELETIONS`] records (queueing one more drops the oldest
//! in the same commit, logged); a record is dropped (logged) after
//! [`MAX_IDP_DELETION_ATTEMPTS`] failed tries or [`MAX_IDP_DELETION_AGE_SECS`] after it was
//! queued. Backoff after an IDP's 5xx: 30 s doubled per failed try, at most 6 h; a try that
//! did not reach the IDP counts nothing and waits for no backoff (the next start or the IDP
//! being reachable again paces it).

use super::*;

/// The queue's table: record key -> [`IdpDeletionRecord`].
pub(crate) const IDP_DELETIONS_TABLE: &str = "pending_idp_deletions";

/// Most records kept; queueing another drops the oldest (its IDP-side client then stays until
/// the IDP expires it or an administrator removes it).
pub const MAX_PENDING_IDP_DELETIONS: usize = 32;
/// Failed tries after which a record is dropped.
pub const MAX_IDP_DELETION_ATTEMPTS: u32 = 50;
/// Age (seconds since queued) after which a record is dropped at its next failed try: 90 days.
pub const MAX_IDP_DELETION_AGE_SECS: i64 = 90 * 24 * 3600;
const FIRST_RETRY_DELAY_SECS: i64 = 30;
const MAX_RETRY_DELAY_SECS: i64 = 6 * 3600;

/// What the IDP must be told about a user deleted locally. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum IdpDeletion {
    /// RFC 7592: `DELETE registration_client_uri` with the registration access token.
    Registration {
        registration_client_uri: String,
        registration_access_token: SecretString,
    },
    /// RFC 7009: revoke the identified user's refresh token as public client `client_id` of
    /// `issuer`.
    Revocation {
        issuer: String,
        client_id: String,
        refresh_token: SecretString,
    },
}

impl std::fmt::Debug for IdpDeletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdpDeletion::Registration {
                registration_client_uri,
                ..
            } => f
                .debug_struct("Registration")
                .field("registration_client_uri", registration_client_uri)
                .finish_non_exhaustive(),
            IdpDeletion::Revocation {
                issuer, client_id, ..
            } => f
                .debug_struct("Revocation")
                .field("issuer", issuer)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
        }
    }
}

/// The key of one queued record (random, not secret).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdpDeletionId(String);

impl IdpDeletionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One queued deletion, opened. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct PendingIdpDeletion {
    pub id: IdpDeletionId,
    /// The local user it was (deleted already).
    pub user: UserId,
    pub deletion: IdpDeletion,
    /// Unix seconds.
    pub queued_at: i64,
    /// Failed tries so far.
    pub attempts: u32,
    /// Unix seconds before which an automatic retry leaves it alone.
    pub next_attempt_at: i64,
}

/// What [`UserStore::postpone_idp_deletion`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Postponed {
    /// Kept; tried again from this time (Unix seconds).
    Until(i64),
    /// Dropped at the bound (attempts or age); logged.
    Dropped,
    /// No such record (removed meanwhile).
    Gone,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdpDeletionRecord {
    format: u32,
    tenant_id: String,
    user_id: String,
    queued_at: i64,
    attempts: u32,
    next_attempt_at: i64,
    sealed: seal::Sealed,
}

/// The AAD: what the sealed payload is bound to.
#[derive(Serialize)]
struct IdpDeletionContext<'a> {
    schema: u32,
    purpose: &'static str,
    record: &'a str,
    tenant_id: &'a str,
    user_id: &'a str,
    queued_at: i64,
}

/// The sealed payload.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Payload {
    #[serde(rename_all = "camelCase")]
    Registration {
        registration_client_uri: String,
        registration_access_token: SecretString,
    },
    #[serde(rename_all = "camelCase")]
    Revocation {
        issuer: String,
        client_id: String,
        refresh_token: SecretString,
    },
}

impl IdpDeletionRecord {
    fn aad(&self, id: &IdpDeletionId) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(&IdpDeletionContext {
            schema: SCHEMA_VERSION,
            purpose: "pending-idp-deletion",
            record: id.as_str(),
            tenant_id: &self.tenant_id,
            user_id: &self.user_id,
            queued_at: self.queued_at,
        })
        .map_err(|error| StoreError::Backend(format!("cannot encode the record context: {error}")))
    }

    fn user(&self) -> UserId {
        UserId::new(&self.tenant_id, &self.user_id)
    }
}

fn new_record_id() -> Result<IdpDeletionId, StoreError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        StoreError::KeyUnavailable {
            reason: "the system random generator failed".to_string(),
        }
    })?;
    Ok(IdpDeletionId(seal::hex::encode(&bytes)))
}

/// Seconds to wait after the `attempts`-th failed try: 30 s doubled each time, at most 6 h.
fn retry_delay(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_RETRY_DELAY_SECS << doublings).min(MAX_RETRY_DELAY_SECS)
}

impl UserStore {
    /// Deletes the user locally, and queues `deletion` (what the IDP must still be told) in
    /// the same commit: one commit removes the device key, the refresh token, the user, its
    /// management secrets and lockout state, the last-user mark if it was this user, and
    /// writes the sealed queue record (dropping the oldest one beyond
    /// [`MAX_PENDING_IDP_DELETIONS`]); the platform biometric key goes right after it (a kill
    /// between leaves an orphan key that wraps nothing). [`StoreError::NotFound`] when the
    /// user is not enrolled (nothing queued).
    pub fn delete_user_queueing(
        &self,
        id: &UserId,
        deletion: Option<IdpDeletion>,
        now: i64,
    ) -> Result<Option<IdpDeletionId>, StoreError> {
        let key = id.to_key();
        let _guard = self.lock();
        let Some(mut batch) = self.user_removal(&key)? else {
            return Err(StoreError::NotFound { user: id.clone() });
        };
        let queued = match deletion {
            None => None,
            Some(deletion) => {
                let record_id = new_record_id()?;
                let record = self.seal_idp_deletion(&record_id, id, &deletion, now)?;
                batch.extend(self.drop_oldest_beyond_bound()?);
                batch.push(Write::put(
                    IDP_DELETIONS_TABLE,
                    record_id.as_str().as_bytes().to_vec(),
                    encode_json(&record)?,
                ));
                Some(record_id)
            }
        };
        // The platform key is named by the id the user was sealed for (a damaged record:
        // its key's id, the best guess).
        let platform_id = self
            .read_record(id, &key)
            .ok()
            .flatten()
            .map_or_else(|| id.clone(), |record| record.sealed_id());
        // The commit destroys the device key and tokens (their only copies are in it), before
        // any IDP call. The platform key goes after it: deleted first, a kill before the
        // commit would leave a listed user no mode can unlock; deleted after, a kill leaves
        // an orphan platform key that wraps nothing and the next create_key replaces.
        self.backend.commit(batch)?;
        self.delete_platform_key(&platform_id);
        tracing::debug!(user = %id, queued = queued.is_some(), "deleted enrolled user");
        Ok(queued)
    }

    /// The writes that remove one user, `None` when it has no record at all.
    pub(super) fn user_removal(&self, key: &[u8]) -> Result<Option<Vec<Write>>, StoreError> {
        let tables = [
            SECRETS_TABLE,
            TOKENS_TABLE,
            USERS_TABLE,
            MANAGEMENT_TABLE,
            LOCKOUT_TABLE,
        ];
        let mut existed = false;
        for table in tables {
            existed |= self.backend.get(table, key)?.is_some();
        }
        if !existed {
            return Ok(None);
        }
        let mut batch: Vec<Write> = tables
            .iter()
            .map(|table| Write::delete(table, key.to_vec()))
            .collect();
        if self.backend.get(META_TABLE, LAST_USER_KEY)?.as_deref() == Some(key) {
            batch.push(Write::delete(META_TABLE, LAST_USER_KEY));
        }
        Ok(Some(batch))
    }

    fn seal_idp_deletion(
        &self,
        record_id: &IdpDeletionId,
        user: &UserId,
        deletion: &IdpDeletion,
        now: i64,
    ) -> Result<IdpDeletionRecord, StoreError> {
        let payload = match deletion {
            IdpDeletion::Registration {
                registration_client_uri,
                registration_access_token,
            } => Payload::Registration {
                registration_client_uri: registration_client_uri.clone(),
                registration_access_token: registration_access_token.clone(),
            },
            IdpDeletion::Revocation {
                issuer,
                client_id,
                refresh_token,
            } => Payload::Revocation {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                refresh_token: refresh_token.clone(),
            },
        };
        let plain = zeroize::Zeroizing::new(encode_json(&payload)?);
        let mut record = IdpDeletionRecord {
            format: RECORD_FORMAT,
            tenant_id: user.tenant_id.clone(),
            user_id: user.user_id.clone(),
            queued_at: now,
            attempts: 0,
            next_attempt_at: now,
            sealed: seal::Sealed {
                algorithm: seal::Algorithm::Aes256Gcm,
                nonce: Vec::new(),
                ciphertext: Vec::new(),
            },
        };
        let wrapping_key = self.keys.wrapping_key()?;
        record.sealed = seal::seal(wrapping_key.expose(), &record.aad(record_id)?, &plain)?;
        Ok(record)
    }

    /// Deletes of the oldest records so that one more fits under the bound.
    fn drop_oldest_beyond_bound(&self) -> Result<Vec<Write>, StoreError> {
        let keys = self.backend.keys(IDP_DELETIONS_TABLE)?;
        if keys.len() < MAX_PENDING_IDP_DELETIONS {
            return Ok(Vec::new());
        }
        let mut aged: Vec<(i64, Vec<u8>)> = Vec::with_capacity(keys.len());
        for key in keys {
            let queued_at = self
                .backend
                .get(IDP_DELETIONS_TABLE, &key)?
                .and_then(|raw| serde_json::from_slice::<IdpDeletionRecord>(&raw).ok())
                .map_or(i64::MIN, |record| record.queued_at);
            aged.push((queued_at, key));
        }
        aged.sort();
        let excess = aged.len() + 1 - MAX_PENDING_IDP_DELETIONS;
        tracing::warn!(
            dropped = excess,
            "the queue of IDP deletions is full: the oldest is dropped and will not be sent"
        );
        Ok(aged
            .into_iter()
            .take(excess)
            .map(|(_, key)| Write::delete(IDP_DELETIONS_TABLE, key))
            .collect())
    }

    /// How many deletions are queued (reads keys only; opens nothing).
    pub fn idp_deletion_count(&self) -> Result<usize, StoreError> {
        Ok(self.backend.keys(IDP_DELETIONS_TABLE)?.len())
    }

    /// Every queued deletion, opened, oldest first. A record that cannot be decoded or opened
    /// (tampered, copied under another key or user, sealed by another store) is refused:
    /// reported to the damage observer, logged without its content, removed, never returned.
    /// Fails only when the store itself cannot be read or its key is unavailable.
    pub fn pending_idp_deletions(&self) -> Result<Vec<PendingIdpDeletion>, StoreError> {
        let _guard = self.lock();
        let mut pending = Vec::new();
        let mut refused = Vec::new();
        for key in self.backend.keys(IDP_DELETIONS_TABLE)? {
            let Some(raw) = self.backend.get(IDP_DELETIONS_TABLE, &key)? else {
                continue;
            };
            match self.open_idp_deletion(&key, &raw) {
                Ok(record) => pending.push(record),
                Err(error @ (StoreError::Corrupt { .. } | StoreError::DecryptionFailed { .. })) => {
                    tracing::warn!("refused a queued IDP deletion that does not open; dropped");
                    self.report_damage(&error);
                    refused.push(Write::delete(IDP_DELETIONS_TABLE, key));
                }
                Err(error) => return Err(error),
            }
        }
        if !refused.is_empty() {
            self.backend.commit(refused)?;
        }
        pending.sort_by(|a, b| (a.queued_at, &a.id).cmp(&(b.queued_at, &b.id)));
        Ok(pending)
    }

    fn open_idp_deletion(&self, key: &[u8], raw: &[u8]) -> Result<PendingIdpDeletion, StoreError> {
        let damaged = |user: Option<UserId>| StoreError::Corrupt { user };
        let id = std::str::from_utf8(key)
            .map(|text| IdpDeletionId(text.to_string()))
            .map_err(|_| damaged(None))?;
        let record: IdpDeletionRecord = serde_json::from_slice(raw).map_err(|_| damaged(None))?;
        let user = record.user();
        if record.format != RECORD_FORMAT {
            return Err(damaged(Some(user)));
        }
        let wrapping_key = self.keys.wrapping_key()?;
        let plain = seal::open(wrapping_key.expose(), &record.aad(&id)?, &record.sealed)?
            .map_err(|error| rejected(&user, "queued IDP deletion", error))?;
        let payload: Payload =
            serde_json::from_slice(&plain).map_err(|_| damaged(Some(user.clone())))?;
        let deletion = match payload {
            Payload::Registration {
                registration_client_uri,
                registration_access_token,
            } => IdpDeletion::Registration {
                registration_client_uri,
                registration_access_token,
            },
            Payload::Revocation {
                issuer,
                client_id,
                refresh_token,
            } => IdpDeletion::Revocation {
                issuer,
                client_id,
                refresh_token,
            },
        };
        Ok(PendingIdpDeletion {
            id,
            user,
            deletion,
            queued_at: record.queued_at,
            attempts: record.attempts,
            next_attempt_at: record.next_attempt_at,
        })
    }

    /// The IDP confirmed (or the deletion is to be dropped): removes the record in one
    /// commit. `false` when it was gone already.
    pub fn finish_idp_deletion(&self, id: &IdpDeletionId) -> Result<bool, StoreError> {
        let key = id.as_str().as_bytes();
        let _guard = self.lock();
        if self.backend.get(IDP_DELETIONS_TABLE, key)?.is_none() {
            return Ok(false);
        }
        self.backend
            .commit(vec![Write::delete(IDP_DELETIONS_TABLE, key.to_vec())])?;
        Ok(true)
    }

    /// A try failed for a reason that may pass. `server_answered` (5xx, the IDP's own
    /// trouble): the try counts toward [`MAX_IDP_DELETION_ATTEMPTS`] and the next one waits
    /// the backoff. Otherwise (network, timeout: the device is offline) nothing is counted
    /// and the record stays due, for the next start or the IDP being reachable again. Either
    /// way a record past [`MAX_IDP_DELETION_AGE_SECS`] is dropped (logged).
    pub fn postpone_idp_deletion(
        &self,
        id: &IdpDeletionId,
        now: i64,
        server_answered: bool,
    ) -> Result<Postponed, StoreError> {
        let key = id.as_str().as_bytes();
        let _guard = self.lock();
        let Some(raw) = self.backend.get(IDP_DELETIONS_TABLE, key)? else {
            return Ok(Postponed::Gone);
        };
        let Ok(mut record) = serde_json::from_slice::<IdpDeletionRecord>(&raw) else {
            // Found damaged by the next listing, which drops and reports it.
            return Ok(Postponed::Gone);
        };
        if server_answered {
            record.attempts = record.attempts.saturating_add(1);
            record.next_attempt_at = now.saturating_add(retry_delay(record.attempts));
        }
        if record.attempts >= MAX_IDP_DELETION_ATTEMPTS
            || now.saturating_sub(record.queued_at) >= MAX_IDP_DELETION_AGE_SECS
        {
            self.backend
                .commit(vec![Write::delete(IDP_DELETIONS_TABLE, key.to_vec())])?;
            tracing::warn!(
                user = %record.user(),
                attempts = record.attempts,
                "gave up deleting a user at the IDP (too many tries or too old); dropped"
            );
            return Ok(Postponed::Dropped);
        }
        if server_answered {
            self.backend.commit(vec![Write::put(
                IDP_DELETIONS_TABLE,
                key.to_vec(),
                encode_json(&record)?,
            )])?;
        }
        Ok(Postponed::Until(record.next_attempt_at))
    }
}

#[cfg(test)]
mod tests;
