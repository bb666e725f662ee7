//! The one error type of the store. Each variant says what the caller should do next.
//! No variant ever carries a secret: messages hold paths, lengths, user ids and static reasons.

use crate::user::UserId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system failed (disk full, permissions, missing directory).
    #[error("store I/O failed: {0}; check the disk and the directory permissions, then retry")]
    Io(#[from] std::io::Error),

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

    /// The request needs a feature this version does not have yet (PASSWORD, BIOMETRIC).
    #[error("not supported yet: {what}")]
    Unsupported { what: String },

    /// The store was written by a newer version of this library.
    #[error("store schema version {found} is newer than the supported version {supported}; upgrade the runtime (the data is left untouched)")]
    NewerSchema { found: u32, supported: u32 },

    /// The named user is not enrolled in this store.
    #[error("user {user} is not enrolled; enroll it first")]
    NotFound { user: UserId },

    /// The caller passed a value the store cannot hold (empty id, empty table name).
    #[error("invalid input: {reason}; fix the value and retry")]
    InvalidInput { reason: &'static str },
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
