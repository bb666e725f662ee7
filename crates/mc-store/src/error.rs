//! The errors of the store: [`StoreError`] for storage, [`UnlockError`] for unlocking a user.
//! Each variant says what the caller should do next. No variant ever carries a secret:
//! messages hold paths, lengths, user ids, counters and static reasons.

use crate::biometric::BiometricError;
use crate::user::{StoredAuthMode, UserId};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system failed (disk full, permissions, missing directory).
    #[error("store I/O failed: {0}; check the disk and the directory permissions, then retry")]
    Io(#[from] std::io::Error),

    /// The store was closed (its owner shut it down) and cannot be used any more: open it again
    /// (start a new runtime).
    #[error("the store is closed; start a new runtime")]
    Closed,

    /// The database backend failed or is unavailable (locked by another process, damaged file).
    #[error("store backend failed: {0}; retry, and check the disk if it persists")]
    Backend(String),

    /// A stored record cannot be decoded. `user: None` means store-wide data (schema, last user).
    #[error("{}", corrupt_message(.user))]
    Corrupt { user: Option<UserId> },

    /// The key that wraps the per-user data keys cannot be read (missing, wrong length, loose
    /// permissions, keystore refused).
    #[error("store key unavailable: {reason}")]
    KeyUnavailable { reason: String },

    /// Authenticated decryption failed: the key is not the one the record was sealed with, or the
    /// record was tampered with. The user's secrets are unusable.
    #[error("secrets of user {user} cannot be decrypted (wrong key or tampered record); enroll this user again")]
    DecryptionFailed { user: UserId },

    /// The request needs a feature this version does not have.
    #[error("not supported yet: {what}")]
    Unsupported { what: String },

    /// The store was written by a newer version of this library.
    #[error("store schema version {found} is newer than the supported version {supported}; upgrade the runtime (the data is left untouched)")]
    NewerSchema { found: u32, supported: u32 },

    /// The named user is not enrolled in this store.
    #[error("user {user} is not enrolled; enroll it first")]
    NotFound { user: UserId },

    /// Another enrolled user already has this id: the IDP answered one device's login with
    /// the user id (`sub`) of another. Nothing was changed; delete one of the two users.
    #[error("another enrolled user already has the id {user}; the IDP gave two users one id: delete one of them")]
    UserIdTaken { user: UserId },

    /// The caller passed a value the store cannot hold (empty id, empty table name, empty
    /// password, settings below the minimum).
    #[error("invalid input: {reason}; fix the value and retry")]
    InvalidInput { reason: &'static str },

    /// The user is protected by PASSWORD or BIOMETRIC: a read without an unlock cannot open it.
    #[error("user {user} is protected by mode {}; unlock it with its {}", .mode.as_str(), unlock_hint(*.mode))]
    NeedsUnlock { user: UserId, mode: StoredAuthMode },

    /// The platform refused to create or use a biometric key while storing a user
    /// (`Cancelled`: the user dismissed the prompt; nothing was stored).
    #[error("{0}")]
    Biometric(BiometricError),
}

fn unlock_hint(mode: StoredAuthMode) -> &'static str {
    match mode {
        StoredAuthMode::No => "platform key",
        StoredAuthMode::Password => "password",
        StoredAuthMode::Biometric => "biometric prompt",
        StoredAuthMode::Pin => "PIN",
    }
}

/// Why a user could not be unlocked (or its protection changed).
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// The password did not open the wrapped key. The failure is already counted and durable.
    #[error("wrong password ({failed_attempts} failed in a row, {attempts_left_before_block} left before the key is destroyed){}", retry_hint(*.retry_after_secs))]
    WrongPassword {
        failed_attempts: u32,
        attempts_left_before_block: u32,
        /// Set when this failure started a temporary lock.
        retry_after_secs: Option<u64>,
    },
    /// Too many failures: no password is tried until the wait is over.
    #[error(
        "temporarily locked after {failed_attempts} wrong passwords; retry in {retry_after_secs} s"
    )]
    TemporarilyLocked {
        retry_after_secs: u64,
        failed_attempts: u32,
    },
    /// The wrapped key was destroyed (the policy reached `attempts_before_block`): delete the
    /// registration at the IDP (its management secrets are still readable) and enroll again.
    #[error("the credential was destroyed after too many wrong passwords; delete this user and enroll again")]
    Blocked,
    /// ClearIamTokenCache CLEAR_OFFLINE/CLEAR_ALL destroyed the stored credential: log in at
    /// the IDP again (identified user) or enroll again (anonymous device).
    #[error("the stored credential was cleared; log in at the identity provider or enroll again")]
    CredentialCleared,
    /// The mode needs a secret the caller did not give (or gave for another mode).
    #[error("this user is protected by mode {}; unlock it with its {}", .mode.as_str(), unlock_hint(*.mode))]
    WrongUnlockMethod { mode: StoredAuthMode },
    /// The platform refused. `KeyInvalidated`: this user must use a fallback or enroll again.
    #[error("{0}")]
    Biometric(#[from] BiometricError),
    /// Storage failed, or the user is not enrolled ([`StoreError::NotFound`]).
    #[error("{0}")]
    Store(#[from] StoreError),
}

fn retry_hint(retry_after_secs: Option<u64>) -> String {
    match retry_after_secs {
        Some(secs) => format!("; locked, retry in {secs} s"),
        None => String::new(),
    }
}

fn corrupt_message(user: &Option<UserId>) -> String {
    match user {
        Some(user) => {
            format!("stored record of user {user} cannot be decoded; enroll this user again")
        }
        None => "store-wide record cannot be decoded; the store must be recreated".to_string(),
    }
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> Self {
        match error {
            redb::Error::Io(io) => StoreError::Io(io),
            redb::Error::DatabaseAlreadyOpen => StoreError::Backend(
                "the database file is already open by another process or handle; close it first"
                    .to_string(),
            ),
            redb::Error::Corrupted(_) => StoreError::Backend(
                "the database file is damaged; restore the store directory from a backup, or \
                 delete it and enroll again"
                    .to_string(),
            ),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(error: $t) -> Self {
                StoreError::from(redb::Error::from(error))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
