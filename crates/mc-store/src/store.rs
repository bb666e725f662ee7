//! [`UserStore`]: enrolled users over a [`KvBackend`], with every secret sealed.
//!
//! Layout (schema version 3; its records are schema 2's), seven tables, every value JSON unless
//! said otherwise:
//! - `meta`: `schema_version` (decimal text) and `last_user` (a user key);
//! - `users`: user key -> metadata, no secret, readable without any key. The user key is the
//!   tenant and the IDP user id (`sub`); an anonymous user stored before schema 3 is keyed by
//!   its registration client_id until its next login moves it ([`UserStore::adopt_subject`]);
//! - `user_secrets`: user key -> `{format, data_key, secrets}`: `secrets` is the device key
//!   sealed (AES-256-GCM) under a random per-user data key; `data_key` is that key wrapped by
//!   the user's mode, tagged by `mode`: `NO` sealed under the [`KeyProvider`] key, `PASSWORD`
//!   sealed under a PBKDF2 key with its `kdf` `{name, iterations, salt}` beside it,
//!   `BIOMETRIC` the opaque output of the host's [`BiometricKeyProvider`], `PIN` the PASSWORD
//!   wrap (same KDF, same seal, its own AAD) sealed again under the [`KeyProvider`] key, so a
//!   copy of the file cannot be tried offline against the few PINs there are. Absent once
//!   blocked;
//! - `user_management`: user key -> the registration access token sealed under the
//!   [`KeyProvider`] key, whatever the mode (needed to delete a blocked user at the IDP);
//! - `user_lockout`: user key -> failed password or PIN attempts, last attempt, lock end,
//!   blocked;
//! - `user_tokens` (identified users only): user key -> the refresh (offline) token sealed
//!   (AES-256-GCM) under the same data key as the secrets, so the mode protects it exactly as
//!   it protects the device key. Written in the same commit as the secrets, replaced in one
//!   commit on rotation ([`UserStore::replace_refresh_token`]).
//! - `pending_idp_deletions`: random record key -> what the IDP must still be told about a
//!   deleted user, sealed under the [`KeyProvider`] key (`store/idp_deletions.rs`). Added
//!   without a schema change: a store without it reads as an empty queue.
//!
//! The additional authenticated data of each ciphertext names the schema, its purpose and its
//! user (the id it was sealed for: `sealed_as` of a moved user, else its key's); the data key's AAD also names the mode, and the secrets' and management AAD cover the
//! stable metadata (server, issuer, clients, created_at): a record moved to another user, or
//! metadata pointed at another server, fails to open instead of being used.
//!
//! Concurrency: every write and every unlock holds one lock for its whole read-check-commit
//! sequence (including a KDF run or a biometric prompt), so a lockout counter or a mode switch
//! is never raced. Plain reads (`list_users`, `lockout_state`) do not wait for it.

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod idp_deletions;
mod migrate;
mod records;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use mc_secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

use crate::backend::{KvBackend, RedbBackend, Write};
use crate::biometric::{BiometricError, BiometricKeyProvider, BIOMETRIC_SETUP_PROMPT};
use crate::error::{StoreError, UnlockError};
use crate::keys::{random_key, FileKeyProvider, KeyProvider, KEY_LEN};
use crate::protect::{KdfParams, Protection, Unlock};
use crate::seal::{self, OpenError};
use crate::settings::StoreSettings;
use crate::user::{EnrolledUser, StoredAuthMode, UserId, UserSecrets, UserSummary};
pub use idp_deletions::{
    IdpDeletion, IdpDeletionId, PendingIdpDeletion, Postponed, MAX_IDP_DELETION_AGE_SECS,
    MAX_IDP_DELETION_ATTEMPTS, MAX_PENDING_IDP_DELETIONS,
};
use records::{
    decode_management_payload, decode_secrets_payload, encode_management_payload,
    encode_secrets_payload, LockoutRecord, ManagementRecord, SecretsRecord, UserRecord, WrappedKey,
    RECORD_FORMAT,
};

/// The schema this version writes and reads. A store at schema 1 is migrated when opened;
/// one with a higher version is refused.
pub const SCHEMA_VERSION: u32 = 3;

pub(crate) const META_TABLE: &str = "meta";
pub(crate) const USERS_TABLE: &str = "users";
pub(crate) const SECRETS_TABLE: &str = "user_secrets";
pub(crate) const MANAGEMENT_TABLE: &str = "user_management";
pub(crate) const LOCKOUT_TABLE: &str = "user_lockout";
/// Identified users: user key -> the refresh (offline) token sealed under the user's data key.
pub(crate) const TOKENS_TABLE: &str = "user_tokens";
const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
const LAST_USER_KEY: &[u8] = b"last_user";

/// File names inside the directory given to [`UserStore::open_default`].
pub const DEFAULT_DB_FILE: &str = "users.redb";
/// The [`FileKeyProvider`] key file inside the directory given to [`UserStore::open_default`].
pub const DEFAULT_KEY_FILE: &str = "store.key";

/// What is needed to delete a user's registration at the IDP (RFC 7592), readable without the
/// user's password or biometrics. `Debug` hides the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementSecrets {
    /// RFC 7592 client configuration endpoint (not secret; bound to the token by the AAD).
    pub registration_client_uri: Option<String>,
    /// RFC 7592 bearer token for that endpoint.
    pub registration_access_token: Option<SecretString>,
}

/// An unlocked user: its secrets, an identified user's refresh token, and the key that
/// stores a rotated refresh token. `Debug` shows no secret.
#[derive(Debug)]
pub struct UnlockedUser {
    pub user: EnrolledUser,
    /// An identified user's refresh (offline) token; `None` for an anonymous device.
    pub refresh_token: Option<SecretString>,
    pub sealing_key: SealingKey,
}

/// The unwrapped data key of one user, held in memory while the user is logged in, so a
/// rotated refresh token can be stored without asking for the password or a biometric
/// prompt again. As sensitive as the device key it protects; `Debug` shows only the user.
pub struct SealingKey {
    user: UserId,
    data_key: SecretBytes,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The password lockout state of one user (all zero for modes NO and BIOMETRIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutState {
    /// Consecutive wrong passwords; only a correct password (or a delete) lowers it.
    pub failed_attempts: u32,
    /// Unix seconds before which no password is tried (may be in the past).
    pub locked_until: Option<i64>,
    /// The wrapped key was destroyed: delete the user at the IDP and enroll again.
    pub blocked: bool,
}

/// The enrolled users of this device. Cheap to share behind an `Arc`; every method is a short
/// blocking call (run it off the async executor, e.g. in `spawn_blocking` or a sync actor),
/// except a PASSWORD unlock, which runs the slow KDF, and a BIOMETRIC one, which waits for the
/// user.
pub struct UserStore {
    backend: Arc<dyn KvBackend>,
    keys: Arc<dyn KeyProvider>,
    biometric: Option<Arc<dyn BiometricKeyProvider>>,
    settings: StoreSettings,
    write_lock: Mutex<()>,
    damage_observer: OnceLock<DamageObserver>,
}

/// Told of every damaged record the store finds ([`StoreError::Corrupt`] or
/// [`StoreError::DecryptionFailed`]) while listing or loading users, also of those
/// [`UserStore::list_users`] skips; see [`UserStore::set_damage_observer`]. Called on the
/// thread that uses the store: it must return quickly and must not call the store.
pub type DamageObserver = Arc<dyn Fn(&StoreError) + Send + Sync>;

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserStore")
    }
}

/// One user's records, read together under the write lock.
struct Loaded {
    id: UserId,
    key: Vec<u8>,
    record: UserRecord,
    /// `None` only when blocked (the wrapped key was destroyed).
    secrets: Option<SecretsRecord>,
    lockout: LockoutRecord,
}

/// An unwrapped data key, and what a correct password leaves to commit.
struct Opened {
    data_key: SecretBytes,
    /// A PASSWORD unlock succeeded: its pre-counted attempt must be reset.
    password_ok: bool,
    /// The data key wrapped again under the current (stronger) KDF settings.
    rewrapped: Option<WrappedKey>,
}

impl UserStore {
    /// [`UserStore::open_with`] without biometrics and with the default settings.
    pub fn open(
        backend: Arc<dyn KvBackend>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Self, StoreError> {
        Self::open_with(backend, keys, None, StoreSettings::default())
    }

    /// Opens a store over `backend`: writes the schema version into a new store, migrates a
    /// schema 1 store (one transaction; needs the `keys` key, see `store/migrate.rs`), and
    /// refuses one written by a newer version ([`StoreError::NewerSchema`]) or settings below
    /// the minimum ([`StoreError::InvalidInput`]). A schema 2 store is opened without reading
    /// the key: listing users works even while the key provider is locked.
    pub fn open_with(
        backend: Arc<dyn KvBackend>,
        keys: Arc<dyn KeyProvider>,
        biometric: Option<Arc<dyn BiometricKeyProvider>>,
        settings: StoreSettings,
    ) -> Result<Self, StoreError> {
        settings.validate()?;
        let store = Self {
            backend,
            keys,
            biometric,
            settings,
            write_lock: Mutex::new(()),
            damage_observer: OnceLock::new(),
        };
        store.prepare_schema()?;
        Ok(store)
    }

    /// [`UserStore::open_default_with`] without biometrics and with the default settings.
    pub fn open_default(dir: &Path) -> Result<Self, StoreError> {
        Self::open_default_with(dir, None, StoreSettings::default())
    }

    /// The default store in `dir`: a redb file (`users.redb`) and a 0600 key file
    /// (`store.key`). Creates `dir` (0700 on Unix) when absent. Only one process can hold it.
    pub fn open_default_with(
        dir: &Path,
        biometric: Option<Arc<dyn BiometricKeyProvider>>,
        settings: StoreSettings,
    ) -> Result<Self, StoreError> {
        Self::open_dir_with(dir, None, biometric, settings)
    }

    /// The store in `dir` (a redb file, `users.redb`), its secrets wrapped by `keys` — on a
    /// phone, a key held by the platform keystore. Without `keys`, a 0600 key file
    /// (`store.key`) in `dir` is the key, as [`UserStore::open_default_with`] does. Creates
    /// `dir` (0700 on Unix) when absent; an existing `dir` that group or others may enter
    /// (e.g. 0755) is tightened to owner-only. Only one process can hold it.
    pub fn open_dir_with(
        dir: &Path,
        keys: Option<Arc<dyn KeyProvider>>,
        biometric: Option<Arc<dyn BiometricKeyProvider>>,
        settings: StoreSettings,
    ) -> Result<Self, StoreError> {
        settings.validate()?;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        restrict_to_owner(dir)?;
        // The database first: its file lock keeps a second process away from the key file
        // while this one may be creating it.
        let backend = RedbBackend::open(&dir.join(DEFAULT_DB_FILE))?;
        let keys = match keys {
            Some(keys) => keys,
            None => Arc::new(FileKeyProvider::open_or_create(dir.join(DEFAULT_KEY_FILE))?),
        };
        Self::open_with(Arc::new(backend), keys, biometric, settings)
    }

    /// The settings this store was opened with.
    /// Sets who is told of damage found from now on (once; `false` if one was set already).
    /// The store still answers as before (a damaged user is skipped by `list_users`, fails
    /// its unlock): the observer is for reporting damage the caller would not see otherwise.
    pub fn set_damage_observer(&self, observer: DamageObserver) -> bool {
        self.damage_observer.set(observer).is_ok()
    }

    /// Passes damage to the observer.
    fn report_damage(&self, error: &StoreError) {
        if matches!(
            error,
            StoreError::Corrupt { .. } | StoreError::DecryptionFailed { .. }
        ) {
            if let Some(observer) = self.damage_observer.get() {
                observer(error);
            }
        }
    }

    /// As [`UserStore::report_damage`], for the store errors inside an unlock error.
    fn report_unlock_damage(&self, error: &UnlockError) {
        if let UnlockError::Store(error) = error {
            self.report_damage(error);
        }
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn prepare_schema(&self) -> Result<(), StoreError> {
        let _guard = self.lock();
        let Some(raw) = self.backend.get(META_TABLE, SCHEMA_VERSION_KEY)? else {
            // Users without a schema version were not written by this library.
            if !self.backend.keys(USERS_TABLE)?.is_empty()
                || !self.backend.keys(SECRETS_TABLE)?.is_empty()
            {
                return Err(StoreError::Corrupt { user: None });
            }
            return self.backend.commit(vec![Write::put(
                META_TABLE,
                SCHEMA_VERSION_KEY,
                SCHEMA_VERSION.to_string(),
            )]);
        };
        let found = std::str::from_utf8(&raw)
            .ok()
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or(StoreError::Corrupt { user: None })?;
        match found {
            SCHEMA_VERSION => Ok(()),
            // Schema 3 reads every schema 2 record as it is; what changes (anonymous users
            // named by `sub`) happens per user at its next login (`adopt_subject`). The number
            // alone changes, so an older runtime refuses a store whose users it would misread.
            2 => self.write_schema_version(),
            1 => {
                let wrapping_key = self.keys.wrapping_key()?;
                // The batch ends with the current schema version: schema 3 holds schema 2
                // records.
                let batch = migrate::v1_to_v2_batch(self.backend.as_ref(), &wrapping_key)?;
                self.backend.commit(batch)
            }
            0 => Err(StoreError::Corrupt { user: None }),
            found => Err(StoreError::NewerSchema {
                found,
                supported: SCHEMA_VERSION,
            }),
        }
    }

    fn write_schema_version(&self) -> Result<(), StoreError> {
        self.backend.commit(vec![Write::put(
            META_TABLE,
            SCHEMA_VERSION_KEY,
            SCHEMA_VERSION.to_string(),
        )])
    }

    /// Inserts or replaces `user` in one atomic commit and makes it the last user. The
    /// secrets are sealed under a new data key, wrapped as `protection` says (its mode is
    /// stored; `user.authentication_mode` is ignored). BIOMETRIC creates the user's platform
    /// key (replacing any old one) and shows [`BIOMETRIC_SETUP_PROMPT`]; a refusal is
    /// [`StoreError::Biometric`] and stores nothing. A replaced user's lockout starts over.
    pub fn put_user(&self, user: &EnrolledUser, protection: &Protection) -> Result<(), StoreError> {
        self.put_user_record(user, protection, None, false)
            .map(|_| ())
    }

    /// As [`UserStore::put_user`], for an identified user (listed with `identified`):
    /// `refresh_token` is sealed under the same data key in the same commit. Answers the key
    /// that stores the token's rotations, so the caller need not unlock (for BIOMETRIC: prompt)
    /// again right after storing.
    pub fn put_identified_user(
        &self,
        user: &EnrolledUser,
        protection: &Protection,
        refresh_token: Option<&SecretString>,
    ) -> Result<SealingKey, StoreError> {
        let data_key = self.put_user_record(user, protection, refresh_token, true)?;
        Ok(SealingKey {
            user: user.id.clone(),
            data_key,
        })
    }

    fn put_user_record(
        &self,
        user: &EnrolledUser,
        protection: &Protection,
        refresh_token: Option<&SecretString>,
        identified: bool,
    ) -> Result<SecretBytes, StoreError> {
        user.id.validate()?;
        protection.validate()?;
        let mut record = UserRecord::new(user, protection.mode());
        record.identified = identified;
        let data_key = random_key()?;
        let secrets = seal::seal(
            data_key.expose(),
            &record.secrets_aad()?,
            &encode_secrets_payload(user.secrets.device_key_pkcs8.expose()),
        )?;
        let management = self.seal_management(
            &record,
            user.secrets
                .registration_access_token
                .as_ref()
                .map(SecretString::expose),
        )?;
        let key = user.id.to_key();
        let token_write = match refresh_token {
            Some(token) => Write::put(
                TOKENS_TABLE,
                key.clone(),
                encode_json(&seal::seal(
                    data_key.expose(),
                    &record.refresh_token_aad()?,
                    token.expose().as_bytes(),
                )?)?,
            ),
            None => Write::delete(TOKENS_TABLE, key.clone()),
        };

        let _guard = self.lock();
        // A replaced BIOMETRIC user's platform key, unless the new record reuses it.
        let previous_platform_key = self
            .read_record(&user.id, &key)
            .ok()
            .flatten()
            .filter(|previous| previous.authentication_mode == StoredAuthMode::Biometric)
            .map(|previous| previous.sealed_id())
            .filter(|previous| *protection != Protection::Biometric || *previous != user.id);
        let data_key_wrapped = self.wrap_data_key(&record, &data_key, protection)?;
        let batch = vec![
            Write::put(USERS_TABLE, key.clone(), encode_json(&record)?),
            Write::put(
                SECRETS_TABLE,
                key.clone(),
                encode_json(&SecretsRecord {
                    format: RECORD_FORMAT,
                    data_key: data_key_wrapped,
                    secrets,
                })?,
            ),
            Write::put(MANAGEMENT_TABLE, key.clone(), encode_json(&management)?),
            Write::delete(LOCKOUT_TABLE, key.clone()),
            token_write,
            Write::put(META_TABLE, LAST_USER_KEY, key),
        ];
        if let Err(error) = self.backend.commit(batch) {
            if *protection == Protection::Biometric {
                // Nothing refers to the key just created.
                self.delete_platform_key(&user.id);
            }
            return Err(error);
        }
        if let Some(previous) = previous_platform_key {
            self.delete_platform_key(&previous);
        }
        tracing::debug!(user = %user.id, mode = protection.mode().as_str(), "stored enrolled user");
        Ok(data_key)
    }

    /// The user with all secrets decrypted, for mode NO (`unlock_user(id, Unlock::No, _)`);
    /// `None` when not enrolled, [`StoreError::NeedsUnlock`] for the other modes.
    pub fn get_user(&self, id: &UserId) -> Result<Option<EnrolledUser>, StoreError> {
        match self.unlock_user(id, Unlock::No, 0) {
            Ok(user) => Ok(Some(user)),
            Err(UnlockError::Store(StoreError::NotFound { .. })) => Ok(None),
            Err(UnlockError::Store(error)) => Err(error),
            Err(UnlockError::WrongUnlockMethod { mode }) => Err(StoreError::NeedsUnlock {
                user: id.clone(),
                mode,
            }),
            // Only PASSWORD and PIN users lock or block; the rest cannot come from `Unlock::No`.
            Err(_) => Err(StoreError::NeedsUnlock {
                user: id.clone(),
                mode: StoredAuthMode::Password,
            }),
        }
    }

    /// Unlocks the device key and returns the user with its secrets.
    ///
    /// PASSWORD: unless the user is locked (then [`UnlockError::TemporarilyLocked`], and the
    /// password is not tried), the failed-attempt counter is incremented and COMMITTED
    /// (durable) BEFORE the password is checked, so killing the process during a try does not
    /// undo it; a correct password resets it (and re-wraps under the current KDF settings if
    /// the stored ones are weaker). Locks and blocks follow the [`crate::LockoutPolicy`] at
    /// `now` (Unix seconds); a clock set back never ends a lock early. BIOMETRIC shows
    /// `prompt`. NO ignores `now`.
    pub fn unlock_user(
        &self,
        id: &UserId,
        unlock: Unlock<'_>,
        now: i64,
    ) -> Result<EnrolledUser, UnlockError> {
        self.unlock_user_with_key(id, unlock, now)
            .map(|unlocked| unlocked.user)
    }

    /// As [`UserStore::unlock_user`], also answering the identified user's refresh token
    /// (`None` for an anonymous device) and the [`SealingKey`] with which a rotated refresh
    /// token is stored ([`UserStore::replace_refresh_token`]) without unlocking again.
    pub fn unlock_user_with_key(
        &self,
        id: &UserId,
        unlock: Unlock<'_>,
        now: i64,
    ) -> Result<UnlockedUser, UnlockError> {
        let _guard = self.lock();
        let loaded = self.load(id).inspect_err(|e| self.report_damage(e))?;
        let opened = self
            .open_data_key(&loaded, &unlock, now)
            .inspect_err(|e| self.report_unlock_damage(e))?;
        let user = match self.open_user(&loaded, &opened.data_key) {
            Ok(user) => user,
            Err(error) => {
                self.report_damage(&error);
                if opened.password_ok {
                    // The password was right: its attempt must not stay counted.
                    self.reset_lockout_best_effort(&loaded);
                }
                return Err(error.into());
            }
        };
        if opened.password_ok {
            let mut batch = vec![Write::delete(LOCKOUT_TABLE, loaded.key.clone())];
            if let (Some(rewrapped), Some(secrets)) = (opened.rewrapped, &loaded.secrets) {
                let record = SecretsRecord {
                    format: RECORD_FORMAT,
                    data_key: rewrapped,
                    secrets: secrets.secrets.clone(),
                };
                batch.push(Write::put(
                    SECRETS_TABLE,
                    loaded.key.clone(),
                    encode_json(&record)?,
                ));
                tracing::info!(user = %id, "re-wrapped a password key under the current KDF settings");
            }
            self.backend.commit(batch)?;
        }
        let refresh_token = self
            .open_refresh_token(&loaded, &opened.data_key)
            .inspect_err(|e| self.report_damage(e))?;
        Ok(UnlockedUser {
            user,
            refresh_token,
            sealing_key: SealingKey {
                user: id.clone(),
                data_key: opened.data_key,
            },
        })
    }

    /// Refresh-token rotation: replaces the identified user's refresh token in ONE commit,
    /// sealed under the data key that `sealing_key` holds (proved first by opening the
    /// secrets with it). A crash leaves the old token or the new one, never neither.
    pub fn replace_refresh_token(
        &self,
        sealing_key: &SealingKey,
        refresh_token: &SecretString,
    ) -> Result<(), StoreError> {
        let id = &sealing_key.user;
        let _guard = self.lock();
        let loaded = self.load(id)?;
        let Some(secrets) = &loaded.secrets else {
            return Err(StoreError::NotFound { user: id.clone() });
        };
        self.open_device_key(&loaded, secrets, &sealing_key.data_key)?;
        let sealed = seal::seal(
            sealing_key.data_key.expose(),
            &loaded.record.refresh_token_aad()?,
            refresh_token.expose().as_bytes(),
        )?;
        self.backend.commit(vec![Write::put(
            TOKENS_TABLE,
            loaded.key.clone(),
            encode_json(&sealed)?,
        )])
    }

    /// ClearIamTokenCache CLEAR_OFFLINE/CLEAR_ALL: destroys the user's secrets (device key,
    /// refresh token) in one commit and marks the record, so it stays listed but every later
    /// unlock is [`UnlockError::CredentialCleared`] (log in at the IDP or enroll again). The
    /// management secrets stay, so the registration can still be deleted at the IDP. `false`
    /// when the user is not enrolled.
    pub fn clear_credential(&self, id: &UserId) -> Result<bool, StoreError> {
        let key = id.to_key();
        let _guard = self.lock();
        let Some(mut record) = self.read_record(id, &key)? else {
            return Ok(false);
        };
        record.credential_cleared = true;
        self.backend.commit(vec![
            Write::put(USERS_TABLE, key.clone(), encode_json(&record)?),
            Write::delete(SECRETS_TABLE, key.clone()),
            Write::delete(TOKENS_TABLE, key.clone()),
        ])?;
        if record.authentication_mode == StoredAuthMode::Biometric {
            self.delete_platform_key(&record.sealed_id());
        }
        tracing::info!(user = %id, "cleared the stored credential");
        Ok(true)
    }

    /// Re-wraps the data key under `new` in ONE transaction, after unlocking it with
    /// `current` (a PASSWORD unlock counts like [`UserStore::unlock_user`]). The old mode's key
    /// material is overwritten by the same commit; a BIOMETRIC platform key is deleted only
    /// after that commit succeeded. A crash at any instant leaves the old mode or the new one
    /// working, never neither. The device key and its ciphertext are unchanged.
    /// PASSWORD -> PASSWORD changes the password, PIN -> PIN the PIN; BIOMETRIC -> BIOMETRIC is
    /// refused (it would replace the platform key before the commit).
    pub fn change_protection(
        &self,
        id: &UserId,
        current: Unlock<'_>,
        new: &Protection,
        now: i64,
    ) -> Result<(), UnlockError> {
        new.validate()?;
        let _guard = self.lock();
        let loaded = self.load(id)?;
        let old_mode = loaded.record.authentication_mode;
        if old_mode == StoredAuthMode::Biometric && *new == Protection::Biometric {
            return Err(StoreError::InvalidInput {
                reason: "the user is already protected by BIOMETRIC",
            }
            .into());
        }
        if *new == Protection::Biometric && self.biometric.is_none() {
            return Err(no_biometric_provider().into());
        }
        let opened = self.open_data_key(&loaded, &current, now)?;
        let result = self.switch(&loaded, &opened, new);
        if result.is_err() && opened.password_ok {
            self.reset_lockout_best_effort(&loaded);
        }
        result?;
        if old_mode == StoredAuthMode::Biometric {
            // Only now: until the commit above, the old mode had to keep working.
            self.delete_platform_key(&loaded.record.sealed_id());
        }
        tracing::info!(user = %id, from = old_mode.as_str(), to = new.mode().as_str(), "changed protection");
        Ok(())
    }

    fn switch(
        &self,
        loaded: &Loaded,
        opened: &Opened,
        new: &Protection,
    ) -> Result<(), UnlockError> {
        let Some(secrets) = &loaded.secrets else {
            return Err(UnlockError::Blocked);
        };
        // Proves the data key is the one the secrets are sealed with before re-wrapping it.
        self.open_device_key(loaded, secrets, &opened.data_key)?;
        let mut record = loaded.record.clone();
        record.authentication_mode = new.mode();
        let data_key = self
            .wrap_data_key(&record, &opened.data_key, new)
            .map_err(|error| match error {
                StoreError::Biometric(error) => UnlockError::Biometric(error),
                other => UnlockError::Store(other),
            })?;
        let batch = vec![
            Write::put(USERS_TABLE, loaded.key.clone(), encode_json(&record)?),
            Write::put(
                SECRETS_TABLE,
                loaded.key.clone(),
                encode_json(&SecretsRecord {
                    format: RECORD_FORMAT,
                    data_key,
                    secrets: secrets.secrets.clone(),
                })?,
            ),
            Write::delete(LOCKOUT_TABLE, loaded.key.clone()),
        ];
        if let Err(error) = self.backend.commit(batch) {
            if *new == Protection::Biometric {
                self.delete_platform_key(&loaded.record.sealed_id());
            }
            return Err(error.into());
        }
        Ok(())
    }

    /// The registration URI and access token, readable WITHOUT the user's unlock (sealed under
    /// the platform [`KeyProvider`] key, not the password), so a blocked or forgotten user can
    /// still be deleted at the IDP.
    pub fn management_secrets(&self, id: &UserId) -> Result<ManagementSecrets, StoreError> {
        let record = self
            .read_record(id, &id.to_key())
            .inspect_err(|e| self.report_damage(e))?
            .ok_or_else(|| StoreError::NotFound { user: id.clone() })?;
        let token = self
            .open_management(id, &record)
            .inspect_err(|e| self.report_damage(e))?;
        Ok(ManagementSecrets {
            registration_client_uri: record.registration_client_uri,
            registration_access_token: token,
        })
    }

    /// The password lockout state of `id`, as stored ([`StoreError::NotFound`] if absent).
    pub fn lockout_state(&self, id: &UserId) -> Result<LockoutState, StoreError> {
        let key = id.to_key();
        if self.read_record(id, &key)?.is_none() {
            return Err(StoreError::NotFound { user: id.clone() });
        }
        let lockout = self.read_lockout(id, &key)?;
        Ok(LockoutState {
            failed_attempts: lockout.failed_attempts,
            locked_until: lockout.locked_until,
            blocked: lockout.blocked,
        })
    }

    /// The metadata of every enrolled user (blocked ones included, so they can be deleted),
    /// ordered by tenant then user. Needs no key. A record that cannot be decoded is left out
    /// (and logged), so one damaged user hides no other.
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
                Err(error @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(user = %id, "skipping an undecodable user record");
                    self.report_damage(&error);
                }
                Err(error) => return Err(error),
            }
        }
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users)
    }

    /// Removes the user, its secrets, management secrets and lockout state in one atomic
    /// commit, clearing the last user if it was this one; its platform biometric key (if a
    /// provider is configured) is deleted right after. Queues nothing for the IDP (see
    /// [`UserStore::delete_user_queueing`]). `false` when the user was not enrolled.
    pub fn delete_user(&self, id: &UserId) -> Result<bool, StoreError> {
        match self.delete_user_queueing(id, None, 0) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
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

    /// Moves an anonymous user stored before schema 3, whose `user_id` is its registration
    /// client_id, to its IDP user id `subject` (the `sub` of a token just verified for it), in
    /// ONE commit: the user record under the new key (remembering the client_id, and the id
    /// its ciphertexts and platform key were made for), its secrets, management, lockout and
    /// refresh-token records moved byte for byte (nothing is decrypted or sealed again, so no
    /// password or biometric prompt is needed), the last user pointed at it if it was the old
    /// one, and every record under the old key removed. A crash leaves the old user or the
    /// moved one, never both or a part. Answers the user's id now (`id` itself when
    /// `subject` is its client_id: then only the client_id is recorded).
    ///
    /// Refused, changing nothing: an identified user or one that has its client_id recorded
    /// already ([`StoreError::InvalidInput`]: its id is its `sub`, and a token naming another
    /// is the IDP swapping identities), an empty `subject`, and a `subject` another user has
    /// ([`StoreError::UserIdTaken`]).
    pub fn adopt_subject(&self, id: &UserId, subject: &str) -> Result<UserId, StoreError> {
        let new_id = UserId::new(id.tenant_id.clone(), subject);
        new_id.validate()?;
        let key = id.to_key();
        let _guard = self.lock();
        let Some(mut record) = self.read_record(id, &key)? else {
            return Err(StoreError::NotFound { user: id.clone() });
        };
        if record.identified || record.registration_client_id.is_some() {
            return Err(StoreError::InvalidInput {
                reason: "the user's id is its IDP user id already",
            });
        }
        record.registration_client_id = Some(id.user_id.clone());
        record.subject = Some(subject.to_string());
        if new_id == *id {
            return self
                .backend
                .commit(vec![Write::put(USERS_TABLE, key, encode_json(&record)?)])
                .map(|()| new_id);
        }
        let new_key = new_id.to_key();
        if self.backend.get(USERS_TABLE, &new_key)?.is_some() {
            return Err(StoreError::UserIdTaken { user: new_id });
        }
        record.sealed_as = Some(id.user_id.clone());
        record.user_id = subject.to_string();
        let mut batch = vec![
            Write::put(USERS_TABLE, new_key.clone(), encode_json(&record)?),
            Write::delete(USERS_TABLE, key.clone()),
        ];
        for table in [SECRETS_TABLE, MANAGEMENT_TABLE, LOCKOUT_TABLE, TOKENS_TABLE] {
            // The new key's leftovers (of a user deleted half-way by an older version) go too.
            match self.backend.get(table, &key)? {
                Some(value) => batch.push(Write::put(table, new_key.clone(), value)),
                None => batch.push(Write::delete(table, new_key.clone())),
            }
            batch.push(Write::delete(table, key.clone()));
        }
        if self.backend.get(META_TABLE, LAST_USER_KEY)?.as_deref() == Some(key.as_slice()) {
            batch.push(Write::put(META_TABLE, LAST_USER_KEY, new_key));
        }
        self.backend.commit(batch)?;
        tracing::info!(from = %id, to = %new_id, "anonymous user now named by its IDP user id");
        Ok(new_id)
    }

    // ---- reading records ----

    fn read_record(&self, id: &UserId, key: &[u8]) -> Result<Option<UserRecord>, StoreError> {
        let Some(raw) = self.backend.get(USERS_TABLE, key)? else {
            return Ok(None);
        };
        let record: UserRecord = decode_json(&raw, id, "user record")?;
        // A record copied under another user's key must not pass as that user; a format 1
        // record here is one the schema migration could not read.
        if record.format != RECORD_FORMAT
            || record.tenant_id != id.tenant_id
            || record.user_id != id.user_id
        {
            tracing::warn!(user = %id, "user record does not match its key or format");
            return Err(corrupt(id));
        }
        Ok(Some(record))
    }

    fn read_lockout(&self, id: &UserId, key: &[u8]) -> Result<LockoutRecord, StoreError> {
        match self.backend.get(LOCKOUT_TABLE, key)? {
            None => Ok(LockoutRecord::default()),
            // A damaged counter fails closed (the user cannot be unlocked) rather than reset.
            Some(raw) => {
                let lockout: LockoutRecord = decode_json(&raw, id, "lockout record")?;
                if lockout.format != RECORD_FORMAT {
                    return Err(corrupt(id));
                }
                Ok(lockout)
            }
        }
    }

    fn load(&self, id: &UserId) -> Result<Loaded, StoreError> {
        let key = id.to_key();
        let record = self
            .read_record(id, &key)?
            .ok_or_else(|| StoreError::NotFound { user: id.clone() })?;
        let lockout = self.read_lockout(id, &key)?;
        let secrets = match self.backend.get(SECRETS_TABLE, &key)? {
            None if lockout.blocked || record.credential_cleared => None,
            None => {
                tracing::warn!(user = %id, "user metadata has no secrets record");
                return Err(corrupt(id));
            }
            Some(raw) => {
                let secrets: SecretsRecord = decode_json(&raw, id, "secrets record")?;
                if secrets.format != RECORD_FORMAT
                    || secrets.data_key.mode() != record.authentication_mode
                {
                    tracing::warn!(user = %id, "secrets record does not match its user record");
                    return Err(corrupt(id));
                }
                Some(secrets)
            }
        };
        Ok(Loaded {
            id: id.clone(),
            key,
            record,
            secrets,
            lockout,
        })
    }

    // ---- unwrapping ----

    fn open_data_key(
        &self,
        loaded: &Loaded,
        unlock: &Unlock<'_>,
        now: i64,
    ) -> Result<Opened, UnlockError> {
        let policy = &self.settings.lockout;
        if loaded.record.credential_cleared {
            return Err(UnlockError::CredentialCleared);
        }
        if loaded.lockout.blocked {
            return Err(UnlockError::Blocked);
        }
        let mode = loaded.record.authentication_mode;
        if mode.counts_attempts() && loaded.lockout.failed_attempts >= policy.attempts_before_block
        {
            // The last allowed attempt was counted but the process died before its outcome
            // was written: finish the block now (the counter never goes back).
            self.destroy_wrapped_key(loaded, &loaded.lockout)?;
            return Err(UnlockError::Blocked);
        }
        if unlock.mode() != mode {
            return Err(UnlockError::WrongUnlockMethod { mode });
        }
        let Some(secrets) = &loaded.secrets else {
            return Err(UnlockError::Blocked);
        };
        let aad = loaded.record.data_key_aad(mode)?;
        let plain = |data_key: SecretBytes| Opened {
            data_key,
            password_ok: false,
            rewrapped: None,
        };
        match (&secrets.data_key, unlock) {
            (WrappedKey::No { sealed }, Unlock::No) => {
                let wrapping_key = self.keys.wrapping_key()?;
                let data_key = seal::open(wrapping_key.expose(), &aad, sealed)?
                    .map_err(|error| rejected(&loaded.id, "data key", error))?;
                Ok(plain(SecretBytes::new(data_key.to_vec())))
            }
            (WrappedKey::Password { kdf, sealed }, Unlock::Password(password)) => {
                self.password_attempt(loaded, kdf, sealed, &aad, password, now)
            }
            (WrappedKey::Pin { kdf, sealed }, Unlock::Pin(pin)) => {
                // The outer seal first: it needs no PIN, and failing it is damage, not a
                // wrong PIN.
                let wrapping_key = self.keys.wrapping_key()?;
                let inner = seal::open(wrapping_key.expose(), &aad, sealed)?
                    .map_err(|error| rejected(&loaded.id, "PIN wrap", error))?;
                let inner: seal::Sealed = decode_json(&inner, &loaded.id, "PIN wrap")?;
                self.password_attempt(loaded, kdf, &inner, &aad, pin, now)
            }
            (
                WrappedKey::Biometric {
                    platform_ciphertext,
                },
                Unlock::Biometric { prompt },
            ) => {
                let provider = self.biometric.as_ref().ok_or_else(no_biometric_provider)?;
                let data_key =
                    provider.unwrap(&loaded.record.sealed_id(), platform_ciphertext, prompt)?;
                Ok(plain(data_key))
            }
            // `load` checked that the wrapped key's mode is the record's.
            _ => Err(UnlockError::WrongUnlockMethod { mode }),
        }
    }

    fn password_attempt(
        &self,
        loaded: &Loaded,
        kdf: &KdfParams,
        sealed: &seal::Sealed,
        aad: &[u8],
        password: &SecretString,
        now: i64,
    ) -> Result<Opened, UnlockError> {
        let policy = &self.settings.lockout;
        let state = &loaded.lockout;
        if let Some(until) = state.locked_until {
            // `now` before the last attempt (clock set back) is before `until` too.
            if now < until {
                return Err(UnlockError::TemporarilyLocked {
                    retry_after_secs: secs_between(now, until),
                    failed_attempts: state.failed_attempts,
                });
            }
        }
        // A clock set back does not move the attempt time back: later locks start from the
        // latest time seen.
        let at = state.last_attempt_at.map_or(now, |last| last.max(now));
        let failed_attempts = state.failed_attempts.saturating_add(1);
        let counted = LockoutRecord {
            format: RECORD_FORMAT,
            failed_attempts,
            last_attempt_at: Some(at),
            locked_until: policy
                .delay_after(failed_attempts)
                .map(|delay| at.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))),
            blocked: false,
        };
        // Durable BEFORE the check: a kill during the KDF keeps this attempt counted.
        self.backend.commit(vec![Write::put(
            LOCKOUT_TABLE,
            loaded.key.clone(),
            encode_json(&counted)?,
        )])?;
        let derived = kdf.derive(password).ok_or_else(|| {
            tracing::warn!(user = %loaded.id, "stored KDF parameters are out of range");
            corrupt(&loaded.id)
        })?;
        match seal::open(derived.as_ref(), aad, sealed)? {
            Ok(data_key) => {
                let data_key = SecretBytes::new(data_key.to_vec());
                let target = self.settings.kdf.pbkdf2_iterations;
                let rewrapped = if kdf.is_outdated(target) {
                    Some(self.wrap_with_secret(&loaded.record, &data_key, password)?)
                } else {
                    None
                };
                Ok(Opened {
                    data_key,
                    password_ok: true,
                    rewrapped,
                })
            }
            Err(OpenError::Malformed) => {
                Err(rejected(&loaded.id, "data key", OpenError::Malformed).into())
            }
            Err(OpenError::Rejected) => {
                tracing::info!(user = %loaded.id, failed_attempts, "wrong password");
                if failed_attempts >= policy.attempts_before_block {
                    self.destroy_wrapped_key(loaded, &counted)?;
                    return Err(UnlockError::Blocked);
                }
                Err(UnlockError::WrongPassword {
                    failed_attempts,
                    attempts_left_before_block: policy
                        .attempts_before_block
                        .saturating_sub(failed_attempts),
                    retry_after_secs: counted.locked_until.map(|until| secs_between(now, until)),
                })
            }
        }
    }

    /// Blocks the user: the wrapped key and the secrets sealed under it are deleted in the
    /// same commit that marks the lockout record blocked. Metadata and management secrets stay,
    /// for the deletion at the IDP.
    fn destroy_wrapped_key(
        &self,
        loaded: &Loaded,
        lockout: &LockoutRecord,
    ) -> Result<(), StoreError> {
        let blocked = LockoutRecord {
            blocked: true,
            locked_until: None,
            ..lockout.clone()
        };
        self.backend.commit(vec![
            Write::delete(SECRETS_TABLE, loaded.key.clone()),
            Write::put(LOCKOUT_TABLE, loaded.key.clone(), encode_json(&blocked)?),
        ])?;
        tracing::warn!(user = %loaded.id, "too many wrong passwords: the credential was destroyed");
        Ok(())
    }

    fn reset_lockout_best_effort(&self, loaded: &Loaded) {
        if let Err(error) = self
            .backend
            .commit(vec![Write::delete(LOCKOUT_TABLE, loaded.key.clone())])
        {
            tracing::warn!(user = %loaded.id, %error, "cannot reset the failed-attempt counter");
        }
    }

    fn open_device_key(
        &self,
        loaded: &Loaded,
        secrets: &SecretsRecord,
        data_key: &SecretBytes,
    ) -> Result<SecretBytes, StoreError> {
        if data_key.len() != KEY_LEN {
            tracing::warn!(user = %loaded.id, "unwrapped data key has the wrong length");
            return Err(StoreError::DecryptionFailed {
                user: loaded.id.clone(),
            });
        }
        let payload = seal::open(
            data_key.expose(),
            &loaded.record.secrets_aad()?,
            &secrets.secrets,
        )?
        .map_err(|error| rejected(&loaded.id, "secrets", error))?;
        let device_key = decode_secrets_payload(&payload).ok_or_else(|| {
            tracing::warn!(user = %loaded.id, "decrypted secrets have an unknown layout");
            corrupt(&loaded.id)
        })?;
        Ok(SecretBytes::new(device_key.to_vec()))
    }

    fn open_user(
        &self,
        loaded: &Loaded,
        data_key: &SecretBytes,
    ) -> Result<EnrolledUser, StoreError> {
        let Some(secrets) = &loaded.secrets else {
            return Err(corrupt(&loaded.id));
        };
        let device_key = self.open_device_key(loaded, secrets, data_key)?;
        let token = self.open_management(&loaded.id, &loaded.record)?;
        let record = &loaded.record;
        Ok(EnrolledUser {
            id: record.id(),
            enrollment_client_id: record.enrollment_client_id.clone(),
            server_url: record.server_url.clone(),
            issuer: record.issuer.clone(),
            registration_client_uri: record.registration_client_uri.clone(),
            registration_client_id: record.registration_client_id.clone(),
            redirect_uri: record.redirect_uri.clone(),
            authentication_mode: record.authentication_mode,
            subject: record.subject.clone(),
            created_at: record.created_at,
            last_login_at: record.last_login_at,
            secrets: UserSecrets {
                device_key_pkcs8: device_key,
                registration_access_token: token,
            },
        })
    }

    fn open_refresh_token(
        &self,
        loaded: &Loaded,
        data_key: &SecretBytes,
    ) -> Result<Option<SecretString>, StoreError> {
        let Some(raw) = self.backend.get(TOKENS_TABLE, &loaded.key)? else {
            return Ok(None);
        };
        let sealed: seal::Sealed = decode_json(&raw, &loaded.id, "refresh token")?;
        let plain = seal::open(
            data_key.expose(),
            &loaded.record.refresh_token_aad()?,
            &sealed,
        )?
        .map_err(|error| rejected(&loaded.id, "refresh token", error))?;
        let token = std::str::from_utf8(&plain).map_err(|_| corrupt(&loaded.id))?;
        Ok(Some(SecretString::new(token)))
    }

    fn open_management(
        &self,
        id: &UserId,
        record: &UserRecord,
    ) -> Result<Option<SecretString>, StoreError> {
        let Some(raw) = self.backend.get(MANAGEMENT_TABLE, &id.to_key())? else {
            tracing::warn!(user = %id, "user has no management record");
            return Err(corrupt(id));
        };
        let management: ManagementRecord = decode_json(&raw, id, "management record")?;
        if management.format != RECORD_FORMAT {
            return Err(corrupt(id));
        }
        let wrapping_key = self.keys.wrapping_key()?;
        let payload = seal::open(
            wrapping_key.expose(),
            &record.management_aad()?,
            &management.sealed,
        )?
        .map_err(|error| rejected(id, "management", error))?;
        let token = decode_management_payload(&payload).ok_or_else(|| {
            tracing::warn!(user = %id, "decrypted management secrets have an unknown layout");
            corrupt(id)
        })?;
        Ok(token.map(SecretString::new))
    }

    // ---- wrapping ----

    fn seal_management(
        &self,
        record: &UserRecord,
        token: Option<&str>,
    ) -> Result<ManagementRecord, StoreError> {
        let wrapping_key = self.keys.wrapping_key()?;
        Ok(ManagementRecord {
            format: RECORD_FORMAT,
            sealed: seal::seal(
                wrapping_key.expose(),
                &record.management_aad()?,
                &encode_management_payload(token),
            )?,
        })
    }

    /// Wraps `data_key` for `record` (whose `authentication_mode` is `protection`'s).
    fn wrap_data_key(
        &self,
        record: &UserRecord,
        data_key: &SecretBytes,
        protection: &Protection,
    ) -> Result<WrappedKey, StoreError> {
        match protection {
            Protection::No => {
                let wrapping_key = self.keys.wrapping_key()?;
                Ok(WrappedKey::No {
                    sealed: seal::seal(
                        wrapping_key.expose(),
                        &record.data_key_aad(StoredAuthMode::No)?,
                        data_key.expose(),
                    )?,
                })
            }
            Protection::Password(secret) | Protection::Pin(secret) => {
                self.wrap_with_secret(record, data_key, secret)
            }
            Protection::Biometric => {
                let provider = self
                    .biometric
                    .as_ref()
                    .ok_or_else(|| StoreError::Biometric(no_biometric_provider()))?;
                let id = record.sealed_id();
                provider.create_key(&id).map_err(StoreError::Biometric)?;
                match provider.wrap(&id, data_key, BIOMETRIC_SETUP_PROMPT) {
                    Ok(platform_ciphertext) => Ok(WrappedKey::Biometric {
                        platform_ciphertext,
                    }),
                    Err(error) => {
                        provider.delete_key(&id);
                        Err(StoreError::Biometric(error))
                    }
                }
            }
        }
    }

    /// Wraps `data_key` under the typed secret of `record`'s mode (PASSWORD or PIN): one KDF
    /// and one seal for both; PIN adds the outer seal under the `KeyProvider` key.
    fn wrap_with_secret(
        &self,
        record: &UserRecord,
        data_key: &SecretBytes,
        secret: &SecretString,
    ) -> Result<WrappedKey, StoreError> {
        let mode = record.authentication_mode;
        let kdf = KdfParams::new(self.settings.kdf.pbkdf2_iterations)?;
        let derived = kdf.derive(secret).ok_or(StoreError::InvalidInput {
            reason: "the KDF settings are out of range",
        })?;
        let aad = record.data_key_aad(mode)?;
        let sealed = seal::seal(derived.as_ref(), &aad, data_key.expose())?;
        match mode {
            StoredAuthMode::Pin => {
                let wrapping_key = self.keys.wrapping_key()?;
                let outer = seal::seal(wrapping_key.expose(), &aad, &encode_json(&sealed)?)?;
                Ok(WrappedKey::Pin { kdf, sealed: outer })
            }
            _ => Ok(WrappedKey::Password { kdf, sealed }),
        }
    }

    fn delete_platform_key(&self, id: &UserId) {
        if let Some(provider) = &self.biometric {
            provider.delete_key(id);
        }
    }
}

fn no_biometric_provider() -> BiometricError {
    BiometricError::NotAvailable("no biometric provider is configured in this runtime".to_string())
}

fn corrupt(id: &UserId) -> StoreError {
    StoreError::Corrupt {
        user: Some(id.clone()),
    }
}

fn rejected(id: &UserId, stage: &'static str, error: OpenError) -> StoreError {
    match error {
        OpenError::Malformed => {
            tracing::warn!(user = %id, stage, "sealed value is malformed");
            corrupt(id)
        }
        OpenError::Rejected => {
            tracing::warn!(user = %id, stage, "sealed value failed authentication");
            StoreError::DecryptionFailed { user: id.clone() }
        }
    }
}

/// Whole seconds from `now` to `until`, at least 1 while `now < until`.
fn secs_between(now: i64, until: i64) -> u64 {
    u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1)
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
        corrupt(id)
    })
}

/// Takes the group and other permission bits off the store directory (Unix): it holds the key
/// file and the sealed credentials, which no other account has any business listing.
#[cfg(unix)]
fn restrict_to_owner(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & !0o077))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests;
