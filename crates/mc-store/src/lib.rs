//! Encrypted embedded storage of enrolled users for mc-runtime.
//!
//! What it is for: keeping each enrolled user (its registration data and the device private
//! key) across restarts, in an embedded database (redb by default), with every secret sealed
//! by AES-256-GCM (ring) under a per-user data key that is itself wrapped by the key of the
//! user's authentication mode ([`Protection`]): NO (the [`KeyProvider`] key), PASSWORD (a
//! PBKDF2-HMAC-SHA256 key, with the lockout of [`LockoutPolicy`]), PIN (as PASSWORD, inside a
//! seal under the [`KeyProvider`] key) or BIOMETRIC (the host's [`BiometricKeyProvider`]). A stolen store file gives nothing without that key. A damaged
//! record or file costs only the affected users and never panics; writes, including a mode
//! switch ([`UserStore::change_protection`]), are atomic and durable when they return. Older
//! schema versions are migrated when opened, except what needs a token: users are named by
//! tenant and IDP user id (`sub`), and an anonymous user stored by schema 2 (named by its
//! registration client_id) is renamed at its next login ([`UserStore::adopt_subject`], one
//! commit). A user deleted while the IDP is out of reach leaves a sealed record of what the IDP must still be told, written in the commit that
//! deletes the user ([`UserStore::delete_user_queueing`], [`PendingIdpDeletion`]); sending it
//! is the runtime's job. The threat model is in docs/security.md.
//!
//! Layers: [`KvBackend`] (named byte tables with atomic batch commits: [`RedbBackend`],
//! [`MemoryBackend`]), [`KeyProvider`] (the keystore stand-in: [`FileKeyProvider`],
//! [`StaticKeyProvider`]), [`BiometricKeyProvider`] (`SoftwareBiometric` for tests and
//! demos) and [`UserStore`], the API the runtime uses.
//!
//! What it must not touch: no network, no async runtime, no protocol logic, and no logging of
//! any secret (logs carry user ids and reasons only). Methods block on disk I/O, on the slow
//! KDF of a PASSWORD or PIN unlock and on the prompt of a BIOMETRIC one.
//!
//! Feature `fuzzing` (for `fuzz/` only): `mc_store::fuzzing` runs the decoders of stored bytes.
//! Feature `software-biometric`: `SoftwareBiometric`, a biometric stand-in without a sensor
//! (tests, and demos such as the event console). Feature `testing` (tests only; never in a
//! product): `software-biometric` plus `KdfSettings::for_tests`, a KDF below the minimum.

mod backend;
mod biometric;
mod error;
mod keys;
mod protect;
mod seal;
mod settings;
#[cfg(any(test, feature = "software-biometric"))]
mod software_biometric;
mod store;
mod user;

#[cfg(feature = "sled")]
pub use backend::SledBackend;
pub use backend::{KvBackend, MemoryBackend, RedbBackend, Write};
pub use biometric::{BiometricError, BiometricKeyProvider, BIOMETRIC_SETUP_PROMPT};
pub use error::{StoreError, UnlockError};
pub use keys::{FileKeyProvider, KeyProvider, StaticKeyProvider, KEY_LEN};
pub use protect::{Protection, Unlock};
pub use settings::{KdfSettings, LockoutPolicy, StoreSettings, MIN_PBKDF2_ITERATIONS};
#[cfg(any(test, feature = "software-biometric"))]
pub use software_biometric::{ScriptedOutcome, SoftwareBiometric};
#[cfg(feature = "fuzzing")]
pub use store::fuzzing;
pub use store::{
    DamageObserver, IdpDeletion, IdpDeletionId, LockoutState, ManagementSecrets,
    PendingIdpDeletion, Postponed, SealingKey, UnlockedUser, UserStore, DEFAULT_DB_FILE,
    DEFAULT_KEY_FILE, MAX_IDP_DELETION_AGE_SECS, MAX_IDP_DELETION_ATTEMPTS,
    MAX_PENDING_IDP_DELETIONS, SCHEMA_VERSION,
};
pub use user::{EnrolledUser, StoredAuthMode, UserId, UserSecrets, UserSummary};

// Re-exported so callers build secrets without naming another crate.
pub use mc_secret::{SecretBytes, SecretString};
