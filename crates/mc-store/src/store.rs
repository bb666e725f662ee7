//! [`UserStore`]: enrolled users over a [`KvBackend`], with every secret sealed.
//!
//! Layout (schema version 1), three tables:
//! - `meta`: `schema_version` (decimal text) and `last_user` (a user key);
//! - `users`: user key -> JSON metadata, no secret, readable without any key;
//! - `user_secrets`: user key -> JSON `{format, data_key, secrets}` where `secrets` is the
//!   secrets payload sealed with a random per-user AES-256-GCM data key, and `data_key` is that
//!   key sealed by the user's mode: `{mode, algorithm, nonce, ciphertext}`. Mode NO wraps with
//!   the [`KeyProvider`] key; PASSWORD will store its KDF parameters beside (`kdf`, optional, so
//!   old records still read) and BIOMETRIC its keystore reference, without a format break.
//!
//! The additional authenticated data of each ciphertext names its purpose, table, user and
//! mode, and the secrets' AAD also covers the stable metadata (server, issuer, clients,
//! created_at): a record moved to another user, or metadata pointed at another server, fails to
//! open instead of being used.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use mc_secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::backend::{KvBackend, RedbBackend, Write};
use crate::error::StoreError;
use crate::keys::{random_key, FileKeyProvider, KeyProvider};
use crate::seal::{self, OpenError, Sealed};
use crate::user::{EnrolledUser, StoredAuthMode, UserId, UserSecrets, UserSummary};

/// The schema this version writes and reads. Opening a store with a higher one is refused.
pub const SCHEMA_VERSION: u32 = 1;

pub(crate) const META_TABLE: &str = "meta";
pub(crate) const USERS_TABLE: &str = "users";
pub(crate) const SECRETS_TABLE: &str = "user_secrets";
const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
const LAST_USER_KEY: &[u8] = b"last_user";
/// Version of one record's own encoding, checked on read.
const RECORD_FORMAT: u32 = 1;
/// Version byte at the start of the sealed secrets payload.
const PAYLOAD_FORMAT: u8 = 1;

/// File names inside the directory given to [`UserStore::open_default`].
pub const DEFAULT_DB_FILE: &str = "users.redb";
pub const DEFAULT_KEY_FILE: &str = "store.key";

#[derive(Debug, Serialize, Deserialize)]
struct UserRecord {
    format: u32,
    tenant_id: String,
    user_id: String,
    enrollment_client_id: String,
    server_url: String,
    issuer: String,
    #[serde(default)]
    registration_client_uri: Option<String>,
    authentication_mode: StoredAuthMode,
    #[serde(default)]
    subject: Option<String>,
    created_at: i64,
    #[serde(default)]
    last_login_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SecretsRecord {
    format: u32,
    data_key: WrappedKey,
    secrets: Sealed,
}

/// A data key sealed by an authentication mode.
#[derive(Debug, Serialize, Deserialize)]
struct WrappedKey {
    mode: StoredAuthMode,
    #[serde(flatten)]
    sealed: Sealed,
}

/// What the additional authenticated data of a ciphertext says about where it belongs.
#[derive(Serialize)]
struct SealContext<'a> {
    purpose: &'static str,
    table: &'static str,
    tenant_id: &'a str,
    user_id: &'a str,
    mode: StoredAuthMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    bound: Option<BoundMetadata<'a>>,
}

#[derive(Serialize)]
struct BoundMetadata<'a> {
    enrollment_client_id: &'a str,
    server_url: &'a str,
    issuer: &'a str,
    registration_client_uri: Option<&'a str>,
    created_at: i64,
}

impl UserRecord {
    fn id(&self) -> UserId {
        UserId::new(self.tenant_id.clone(), self.user_id.clone())
    }

    fn summary(self) -> UserSummary {
        UserSummary {
            id: UserId::new(self.tenant_id, self.user_id),
            enrollment_client_id: self.enrollment_client_id,
            server_url: self.server_url,
            issuer: self.issuer,
            authentication_mode: self.authentication_mode,
            subject: self.subject,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        }
    }

    fn data_key_aad(&self, mode: StoredAuthMode) -> Result<Vec<u8>, StoreError> {
        aad(&SealContext {
            purpose: "data-key",
            table: SECRETS_TABLE,
            tenant_id: &self.tenant_id,
            user_id: &self.user_id,
            mode,
            bound: None,
        })
    }

    fn secrets_aad(&self) -> Result<Vec<u8>, StoreError> {
        aad(&SealContext {
            purpose: "secrets",
            table: SECRETS_TABLE,
            tenant_id: &self.tenant_id,
            user_id: &self.user_id,
            mode: self.authentication_mode,
            bound: Some(BoundMetadata {
                enrollment_client_id: &self.enrollment_client_id,
                server_url: &self.server_url,
                issuer: &self.issuer,
                registration_client_uri: self.registration_client_uri.as_deref(),
                created_at: self.created_at,
            }),
        })
    }
}

fn aad(context: &SealContext<'_>) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(context)
        .map_err(|error| StoreError::Backend(format!("cannot encode the record context: {error}")))
}

/// The enrolled users of this device. Cheap to share behind an `Arc`; every method is a short
/// blocking call (run it off the async executor, e.g. in `spawn_blocking` or a sync actor).
pub struct UserStore {
    backend: Arc<dyn KvBackend>,
    keys: Arc<dyn KeyProvider>,
    // Serialises read-modify-write sequences (record_login, delete_user) within this process;
    // the backend already makes each commit atomic.
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserStore")
    }
}

impl UserStore {
    /// Opens a store over `backend`, writing the schema version into a new store and refusing
    /// one written by a newer version ([`StoreError::NewerSchema`]). The key is not read here:
    /// listing users works even while the key provider is locked.
    pub fn open(
        backend: Arc<dyn KvBackend>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Self, StoreError> {
        match backend.get(META_TABLE, SCHEMA_VERSION_KEY)? {
            None => backend.commit(vec![Write::put(
                META_TABLE,
                SCHEMA_VERSION_KEY,
                SCHEMA_VERSION.to_string(),
            )])?,
            Some(raw) => {
                let found = std::str::from_utf8(&raw)
                    .ok()
                    .and_then(|text| text.parse::<u32>().ok())
                    .ok_or(StoreError::Corrupt { user: None })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        Ok(Self {
            backend,
            keys,
            write_lock: Mutex::new(()),
        })
    }

    /// The default store in `dir`: a redb file (`users.redb`) and a 0600 key file
    /// (`store.key`). Creates `dir` (0700 on Unix) when absent. Only one process can hold it.
    pub fn open_default(dir: &Path) -> Result<Self, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        // The database first: its file lock keeps a second process away from the key file
        // while this one may be creating it.
        let backend = RedbBackend::open(&dir.join(DEFAULT_DB_FILE))?;
        let keys = FileKeyProvider::open_or_create(dir.join(DEFAULT_KEY_FILE))?;
        Self::open(Arc::new(backend), Arc::new(keys))
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inserts or replaces `user` in one atomic commit and makes it the last user. Secrets are
    /// sealed under a new data key each time. Only [`StoredAuthMode::No`] is supported yet.
    pub fn put_user(&self, user: &EnrolledUser) -> Result<(), StoreError> {
        user.id.validate()?;
        if user.authentication_mode != StoredAuthMode::No {
            return Err(StoreError::Unsupported {
                what: format!(
                    "storing a user with authentication mode {}",
                    user.authentication_mode.as_str()
                ),
            });
        }
        let record = UserRecord {
            format: RECORD_FORMAT,
            tenant_id: user.id.tenant_id.clone(),
            user_id: user.id.user_id.clone(),
            enrollment_client_id: user.enrollment_client_id.clone(),
            server_url: user.server_url.clone(),
            issuer: user.issuer.clone(),
            registration_client_uri: user.registration_client_uri.clone(),
            authentication_mode: user.authentication_mode,
            subject: user.subject.clone(),
            created_at: user.created_at,
            last_login_at: user.last_login_at,
        };
        let secrets = self.seal_secrets(&record, &user.secrets)?;
        let key = user.id.to_key();
        let batch = vec![
            Write::put(USERS_TABLE, key.clone(), encode_json(&record)?),
            Write::put(SECRETS_TABLE, key.clone(), encode_json(&secrets)?),
            Write::put(META_TABLE, LAST_USER_KEY, key),
        ];
        let _guard = self.lock();
        self.backend.commit(batch)?;
        tracing::debug!(user = %user.id, "stored enrolled user");
        Ok(())
    }

    /// The user with all secrets decrypted, or `None` when not enrolled.
    pub fn get_user(&self, id: &UserId) -> Result<Option<EnrolledUser>, StoreError> {
        let key = id.to_key();
        let Some(record) = self.read_record(id, &key)? else {
            return Ok(None);
        };
        let Some(raw) = self.backend.get(SECRETS_TABLE, &key)? else {
            tracing::warn!(user = %id, "user metadata has no secrets record");
            return Err(StoreError::Corrupt {
                user: Some(id.clone()),
            });
        };
        let sealed: SecretsRecord = decode_json(&raw, id, "secrets record")?;
        let secrets = self.open_secrets(&record, &sealed, id)?;
        Ok(Some(EnrolledUser {
            id: record.id(),
            enrollment_client_id: record.enrollment_client_id,
            server_url: record.server_url,
            issuer: record.issuer,
            registration_client_uri: record.registration_client_uri,
            authentication_mode: record.authentication_mode,
            subject: record.subject,
            created_at: record.created_at,
            last_login_at: record.last_login_at,
            secrets,
        }))
    }

    /// The metadata of every enrolled user, ordered by tenant then user. Needs no key. A record
    /// that cannot be decoded is left out (and logged), so one damaged user hides no other.
    pub fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        let mut users = Vec::new();
        for key in self.backend.keys(USERS_TABLE)? {
            let Some(id) = UserId::from_key(&key) else {
                tracing::warn!("skipping a user record with an undecodable key");
                continue;
            };
            match self.read_record(&id, &key) {
                Ok(Some(record)) => users.push(record.summary()),
                Ok(None) => {} // deleted since the key listing
                Err(StoreError::Corrupt { .. }) => {
                    tracing::warn!(user = %id, "skipping an undecodable user record")
                }
                Err(error) => return Err(error),
            }
        }
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users)
    }

    /// Removes the user and its secrets in one atomic commit, and clears the last user if it
    /// was this one. `false` when the user was not enrolled.
    pub fn delete_user(&self, id: &UserId) -> Result<bool, StoreError> {
        let key = id.to_key();
        let _guard = self.lock();
        let existed = self.backend.get(USERS_TABLE, &key)?.is_some()
            || self.backend.get(SECRETS_TABLE, &key)?.is_some();
        if !existed {
            return Ok(false);
        }
        let mut batch = vec![
            Write::delete(USERS_TABLE, key.clone()),
            Write::delete(SECRETS_TABLE, key.clone()),
        ];
        if self.backend.get(META_TABLE, LAST_USER_KEY)?.as_deref() == Some(key.as_slice()) {
            batch.push(Write::delete(META_TABLE, LAST_USER_KEY));
        }
        self.backend.commit(batch)?;
        tracing::debug!(user = %id, "deleted enrolled user");
        Ok(true)
    }

    /// The user OfflineLogin defaults to: the last one stored, logged in, or chosen.
    pub fn last_user(&self) -> Result<Option<UserId>, StoreError> {
        match self.backend.get(META_TABLE, LAST_USER_KEY)? {
            None => Ok(None),
            Some(key) => UserId::from_key(&key)
                .map(Some)
                .ok_or(StoreError::Corrupt { user: None }),
        }
    }

    /// Makes `id` the last user. [`StoreError::NotFound`] when it is not enrolled.
    pub fn set_last_user(&self, id: &UserId) -> Result<(), StoreError> {
        let key = id.to_key();
        let _guard = self.lock();
        if self.backend.get(USERS_TABLE, &key)?.is_none() {
            return Err(StoreError::NotFound { user: id.clone() });
        }
        self.backend
            .commit(vec![Write::put(META_TABLE, LAST_USER_KEY, key)])
    }

    /// Records a successful login at `at` (Unix seconds) and makes `id` the last user, in one
    /// commit. Touches no secret.
    pub fn record_login(&self, id: &UserId, at: i64) -> Result<(), StoreError> {
        let key = id.to_key();
        let _guard = self.lock();
        let Some(mut record) = self.read_record(id, &key)? else {
            return Err(StoreError::NotFound { user: id.clone() });
        };
        record.last_login_at = Some(at);
        self.backend.commit(vec![
            Write::put(USERS_TABLE, key.clone(), encode_json(&record)?),
            Write::put(META_TABLE, LAST_USER_KEY, key),
        ])
    }

    fn read_record(&self, id: &UserId, key: &[u8]) -> Result<Option<UserRecord>, StoreError> {
        let Some(raw) = self.backend.get(USERS_TABLE, key)? else {
            return Ok(None);
        };
        let record: UserRecord = decode_json(&raw, id, "user record")?;
        // A record copied under another user's key must not pass as that user.
        if record.format != RECORD_FORMAT
            || record.tenant_id != id.tenant_id
            || record.user_id != id.user_id
        {
            tracing::warn!(user = %id, "user record does not match its key or format");
            return Err(StoreError::Corrupt {
                user: Some(id.clone()),
            });
        }
        Ok(Some(record))
    }

    fn seal_secrets(
        &self,
        record: &UserRecord,
        secrets: &UserSecrets,
    ) -> Result<SecretsRecord, StoreError> {
        let payload = encode_secrets(secrets)?;
        let data_key = random_key()?;
        let sealed_secrets = seal::seal(data_key.expose(), &record.secrets_aad()?, &payload)?;
        let wrapping_key = self.keys.wrapping_key()?;
        let mode = StoredAuthMode::No;
        let sealed_key = seal::seal(
            wrapping_key.expose(),
            &record.data_key_aad(mode)?,
            data_key.expose(),
        )?;
        Ok(SecretsRecord {
            format: RECORD_FORMAT,
            data_key: WrappedKey {
                mode,
                sealed: sealed_key,
            },
            secrets: sealed_secrets,
        })
    }

    fn open_secrets(
        &self,
        record: &UserRecord,
        sealed: &SecretsRecord,
        id: &UserId,
    ) -> Result<UserSecrets, StoreError> {
        let corrupt = || StoreError::Corrupt {
            user: Some(id.clone()),
        };
        if sealed.format != RECORD_FORMAT || sealed.data_key.mode != record.authentication_mode {
            tracing::warn!(user = %id, "secrets record does not match its user record");
            return Err(corrupt());
        }
        if sealed.data_key.mode != StoredAuthMode::No {
            return Err(StoreError::Unsupported {
                what: format!(
                    "opening a user protected by authentication mode {}",
                    sealed.data_key.mode.as_str()
                ),
            });
        }
        let rejected = |stage: &'static str, error: OpenError| match error {
            OpenError::Malformed => {
                tracing::warn!(user = %id, stage, "sealed value is malformed");
                corrupt()
            }
            OpenError::Rejected => {
                tracing::warn!(user = %id, stage, "sealed value failed authentication");
                StoreError::DecryptionFailed { user: id.clone() }
            }
        };
        let wrapping_key = self.keys.wrapping_key()?;
        let data_key = seal::open(
            wrapping_key.expose(),
            &record.data_key_aad(sealed.data_key.mode)?,
            &sealed.data_key.sealed,
        )?
        .map_err(|error| rejected("data key", error))?;
        let payload = seal::open(&data_key, &record.secrets_aad()?, &sealed.secrets)?
            .map_err(|error| rejected("secrets", error))?;
        decode_secrets(&payload).ok_or_else(|| {
            tracing::warn!(user = %id, "decrypted secrets have an unknown layout");
            corrupt()
        })
    }
}

fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|error| StoreError::Backend(format!("cannot encode a record: {error}")))
}

fn decode_json<T: for<'de> Deserialize<'de>>(
    raw: &[u8],
    id: &UserId,
    what: &'static str,
) -> Result<T, StoreError> {
    // The serde message is not logged: it can quote parts of the record.
    serde_json::from_slice(raw).map_err(|_| {
        tracing::warn!(user = %id, what, "stored record cannot be decoded");
        StoreError::Corrupt {
            user: Some(id.clone()),
        }
    })
}

/// Secrets payload: `[format][u32 BE len][device key][0 | 1 [u32 BE len][token]]`. Built in a
/// buffer of exact size that is wiped on drop, so no copy of a secret is left behind.
fn encode_secrets(secrets: &UserSecrets) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let device_key = secrets.device_key_pkcs8.expose();
    let token = secrets
        .registration_access_token
        .as_ref()
        .map(|token| token.expose().as_bytes());
    let too_long = || StoreError::InvalidInput {
        reason: "a secret is longer than 4 GiB",
    };
    let key_len = u32::try_from(device_key.len()).map_err(|_| too_long())?;
    let size = 1 + 4 + device_key.len() + 1 + token.map_or(0, |token| 4 + token.len());
    let mut payload = Zeroizing::new(Vec::with_capacity(size));
    payload.push(PAYLOAD_FORMAT);
    payload.extend_from_slice(&key_len.to_be_bytes());
    payload.extend_from_slice(device_key);
    match token {
        None => payload.push(0),
        Some(token) => {
            let token_len = u32::try_from(token.len()).map_err(|_| too_long())?;
            payload.push(1);
            payload.extend_from_slice(&token_len.to_be_bytes());
            payload.extend_from_slice(token);
        }
    }
    Ok(payload)
}

fn decode_secrets(payload: &[u8]) -> Option<UserSecrets> {
    fn take_sized(input: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = input.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (&format, rest) = payload.split_first()?;
    if format != PAYLOAD_FORMAT {
        return None;
    }
    let (device_key, rest) = take_sized(rest)?;
    let (&has_token, rest) = rest.split_first()?;
    let (token, rest) = match has_token {
        0 => (None, rest),
        1 => {
            let (token, rest) = take_sized(rest)?;
            // Validated in place, then copied once straight into the zeroizing string.
            let token = std::str::from_utf8(token).ok()?;
            (Some(SecretString::new(token)), rest)
        }
        _ => return None,
    };
    if !rest.is_empty() {
        return None;
    }
    Some(UserSecrets {
        device_key_pkcs8: SecretBytes::new(device_key.to_vec()),
        registration_access_token: token,
    })
}

#[cfg(test)]
mod tests;
