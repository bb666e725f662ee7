//! The harness's view of mc-store: open a real store directory the way a host does, and the
//! five operations the worker loops on, each returning what the harness needs to judge it.
//! Everything that names the mc-store API lives here, so an API change touches one file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use mc_jose::{JwkSet, SigningKey};
use mc_secret::{SecretBytes, SecretString};
use mc_store::{
    BiometricKeyProvider, EnrolledUser, FileKeyProvider, IdpDeletion, KdfSettings, KvBackend,
    LockoutPolicy, Protection, RedbBackend, SoftwareBiometric, StoreError, StoreSettings,
    StoredAuthMode, Unlock, UnlockError, UserId, UserSecrets, UserStore, DEFAULT_DB_FILE,
    DEFAULT_KEY_FILE,
};

use crate::journal::Cred;

/// PBKDF2 iterations for the harness. Far below the product's 600,000 on purpose: crash
/// safety does not depend on the count (the KDF runs before any write of the wrap it protects,
/// and the counter is committed before it runs), and 200 kills with a check of every user
/// after each must finish in seconds, not hours.
pub const PBKDF2_ITERATIONS: u32 = 1_000;

/// The worker and the driver use a virtual clock: `CLOCK_BASE + CLOCK_STEP * journal lines`.
/// It only moves forward (the journal only grows), and each step is longer than the longest
/// temporary lock, so wrong-password streaks run into the block instead of waiting on a lock.
pub const CLOCK_BASE: i64 = 1_700_000_000;
pub const CLOCK_STEP: i64 = 7_200;

pub const TENANT: &str = "crash";
pub const BIOMETRIC_FILE: &str = "biometric.json";
pub const SLED_DIR: &str = "users.sled";
const PROMPT: &str = "crash harness unlock";

pub fn virtual_now(journal_lines: u64) -> i64 {
    let lines = i64::try_from(journal_lines).unwrap_or(i64::MAX / CLOCK_STEP);
    CLOCK_BASE.saturating_add(CLOCK_STEP.saturating_mul(lines))
}

/// The store settings of the harness: product lockout policy, cheap KDF (see
/// [`PBKDF2_ITERATIONS`]).
pub fn settings() -> StoreSettings {
    StoreSettings {
        kdf: KdfSettings::for_tests(PBKDF2_ITERATIONS),
        lockout: LockoutPolicy::default(),
    }
}

/// Which embedded database holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Redb,
    Sled,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Redb => "redb",
            BackendKind::Sled => "sled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "redb" => Some(BackendKind::Redb),
            "sled" => Some(BackendKind::Sled),
            _ => None,
        }
    }
}

/// What one unlock attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// Unlocked, and the device key signed a JWT that verified; the key's SHA-256 (hex).
    Unlocked {
        key_hash: String,
        /// The stored refresh token (harness-made test value).
        token: Option<String>,
    },
    WrongPassword {
        failed_attempts: u32,
    },
    /// The credential offered is for another mode.
    WrongMethod,
    TemporarilyLocked,
    Blocked,
    NotFound,
    /// ClearIamTokenCache CLEAR_OFFLINE destroyed the credential (the user stays listed).
    Cleared,
    /// Anything else: a record that does not decrypt, a damaged store, a key that cannot sign.
    Failed(String),
}

/// A [`UserStore`] on a real directory, opened as a host would.
pub struct HarnessStore {
    store: UserStore,
}

impl std::fmt::Debug for HarnessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HarnessStore")
    }
}

fn user_id(id: &str) -> UserId {
    UserId::new(TENANT, id)
}

/// What the harness's delete queues for user `id` (as enrolled: its registration URI and
/// access token).
fn idp_deletion(id: &str) -> IdpDeletion {
    IdpDeletion::Registration {
        registration_client_uri: format!("http://127.0.0.1:9/register/{id}"),
        registration_access_token: SecretString::new(format!("rat-{id}")),
    }
}

/// SHA-256 of `bytes`, lowercase hex (ring: the only crypto library allowed).
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn protection(cred: &Cred) -> Protection {
    match (cred.mode, &cred.password) {
        (StoredAuthMode::Password, Some(password)) => {
            Protection::Password(SecretString::new(password.as_str()))
        }
        (StoredAuthMode::Pin, Some(pin)) => Protection::Pin(SecretString::new(pin.as_str())),
        (StoredAuthMode::Biometric, _) => Protection::Biometric,
        _ => Protection::No,
    }
}

/// Calls `f` with the [`Unlock`] that `cred` offers.
fn with_unlock<T>(cred: &Cred, f: impl FnOnce(Unlock<'_>) -> T) -> T {
    match (cred.mode, &cred.password) {
        (StoredAuthMode::Password, Some(password)) => {
            let secret = SecretString::new(password.as_str());
            f(Unlock::Password(&secret))
        }
        (StoredAuthMode::Pin, Some(pin)) => {
            let secret = SecretString::new(pin.as_str());
            f(Unlock::Pin(&secret))
        }
        (StoredAuthMode::Biometric, _) => f(Unlock::Biometric { prompt: PROMPT }),
        _ => f(Unlock::No),
    }
}

impl HarnessStore {
    /// Opens the store in `dir`: the database (redb file or sled directory) first, whose lock
    /// keeps a second process out, then the 0600 key file and the software biometric file.
    pub fn open(dir: &Path, backend: BackendKind) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let kv: Arc<dyn KvBackend> = match backend {
            BackendKind::Redb => {
                Arc::new(RedbBackend::open(&dir.join(DEFAULT_DB_FILE)).map_err(|e| e.to_string())?)
            }
            BackendKind::Sled => open_sled(&dir.join(SLED_DIR))?,
        };
        let keys = FileKeyProvider::open_or_create(dir.join(DEFAULT_KEY_FILE))
            .map_err(|e| format!("key file: {e}"))?;
        let biometric: Arc<dyn BiometricKeyProvider> = Arc::new(
            SoftwareBiometric::open_file(dir.join(BIOMETRIC_FILE))
                .map_err(|e| format!("biometric file: {e:?}"))?,
        );
        let store = UserStore::open_with(kv, Arc::new(keys), Some(biometric), settings())
            .map_err(|e| format!("store: {e}"))?;
        Ok(Self { store })
    }

    pub fn enroll(&self, id: &str, cred: &Cred, key: &SigningKey, now: i64) -> Result<(), String> {
        let user = EnrolledUser {
            id: user_id(id),
            enrollment_client_id: "AnonymousUserEnrollment".to_string(),
            server_url: "http://127.0.0.1:9".to_string(),
            issuer: "http://127.0.0.1:9/realms/crash".to_string(),
            registration_client_uri: Some(format!("http://127.0.0.1:9/register/{id}")),
            registration_client_id: None,
            redirect_uri: None,
            authentication_mode: cred.mode,
            subject: Some(format!("device-{id}")),
            created_at: now,
            last_login_at: None,
            secrets: UserSecrets {
                device_key_pkcs8: key.to_pkcs8(),
                registration_access_token: Some(SecretString::new(format!("rat-{id}"))),
            },
        };
        // Every harness user is stored as an identified user with a refresh token, so
        // rotation (issue 10) is killed at random instants too.
        let token = SecretString::new(crate::journal::initial_token(&sha256_hex(
            key.to_pkcs8().expose(),
        )));
        self.store
            .put_identified_user(&user, &protection(cred), Some(&token))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Refresh-token rotation as the runtime does it: unlock (keeping the sealing key), then
    /// replace the stored refresh token in one commit.
    pub fn rotate(&self, id: &str, cred: &Cred, token: &str, now: i64) -> Result<(), String> {
        let unlocked = with_unlock(cred, |unlock| {
            self.store.unlock_user_with_key(&user_id(id), unlock, now)
        })
        .map_err(|e| e.to_string())?;
        self.store
            .replace_refresh_token(&unlocked.sealing_key, &SecretString::new(token))
            .map_err(|e| e.to_string())
    }

    /// Unlocks with `cred`, then proves the key works: signs a JWT and verifies it.
    pub fn unlock(&self, id: &str, cred: &Cred, now: i64) -> UnlockOutcome {
        let result = with_unlock(cred, |unlock| {
            self.store.unlock_user_with_key(&user_id(id), unlock, now)
        });
        match result {
            Ok(unlocked) => match prove_key(&unlocked.user.secrets.device_key_pkcs8, now) {
                UnlockOutcome::Unlocked { key_hash, .. } => UnlockOutcome::Unlocked {
                    key_hash,
                    token: unlocked
                        .refresh_token
                        .map(|token| token.expose().to_string()),
                },
                other => other,
            },
            Err(error) => classify(error),
        }
    }

    pub fn switch(&self, id: &str, from: &Cred, to: &Cred, now: i64) -> Result<(), UnlockOutcome> {
        with_unlock(from, |unlock| {
            self.store
                .change_protection(&user_id(id), unlock, &protection(to), now)
        })
        .map_err(classify)
    }

    /// `Ok(false)` when the user was not there.
    /// The runtime's CLEAR_OFFLINE: destroys the user's secrets, keeps it listed.
    pub fn clear_credential(&self, id: &str) -> Result<bool, String> {
        self.store
            .clear_credential(&user_id(id))
            .map_err(|e| e.to_string())
    }

    /// DeleteUser as the runtime does it offline: the user removed and its IDP deletion
    /// queued in one commit. `Ok(false)` when the user was not there.
    pub fn delete(&self, id: &str, now: i64) -> Result<bool, String> {
        match self
            .store
            .delete_user_queueing(&user_id(id), Some(idp_deletion(id)), now)
        {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The queue drain after the IDP confirmed: removes the queued deletion of user `id`.
    /// `Ok(false)` when none is queued for it.
    pub fn drain(&self, id: &str) -> Result<bool, String> {
        let pending = self
            .store
            .pending_idp_deletions()
            .map_err(|e| e.to_string())?;
        let Some(record) = pending.iter().find(|p| p.user == user_id(id)) else {
            return Ok(false);
        };
        self.store
            .finish_idp_deletion(&record.id)
            .map_err(|e| e.to_string())
    }

    /// The queued IDP deletions of the harness tenant, by user: how many each has and whether
    /// each holds what the delete queued. Err: records that do not open (the listing drops
    /// them), or an unreadable queue.
    pub fn queue(&self) -> Result<BTreeMap<String, (usize, bool)>, String> {
        let stored = self.store.idp_deletion_count().map_err(|e| e.to_string())?;
        let pending = self
            .store
            .pending_idp_deletions()
            .map_err(|e| e.to_string())?;
        if pending.len() != stored {
            return Err(format!(
                "{} of {stored} queued IDP deletions do not open",
                stored - pending.len()
            ));
        }
        let mut by_user: BTreeMap<String, (usize, bool)> = BTreeMap::new();
        for record in pending {
            let id = record.user.user_id.clone();
            let intact = record.user.tenant_id == TENANT && record.deletion == idp_deletion(&id);
            let entry = by_user.entry(id).or_insert((0, true));
            entry.0 += 1;
            entry.1 &= intact;
        }
        Ok(by_user)
    }

    /// Every listed user of the harness tenant with its stored mode.
    pub fn list(&self) -> Result<Vec<(String, StoredAuthMode)>, String> {
        Ok(self
            .store
            .list_users()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|user| user.id.tenant_id == TENANT)
            .map(|user| (user.id.user_id, user.authentication_mode))
            .collect())
    }

    /// The durable failed-attempt counter and whether the user is blocked.
    pub fn lockout(&self, id: &str) -> Result<(u32, bool), String> {
        let state = self
            .store
            .lockout_state(&user_id(id))
            .map_err(|e| e.to_string())?;
        Ok((state.failed_attempts, state.blocked))
    }
}

#[cfg(feature = "sled")]
fn open_sled(path: &Path) -> Result<Arc<dyn KvBackend>, String> {
    Ok(Arc::new(
        mc_store::SledBackend::open(path).map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "sled"))]
fn open_sled(_path: &Path) -> Result<Arc<dyn KvBackend>, String> {
    Err("this build has no sled backend: build mc-crashtest with --features sled".to_string())
}

fn prove_key(pkcs8: &SecretBytes, now: i64) -> UnlockOutcome {
    let key = match SigningKey::from_pkcs8(pkcs8) {
        Ok(key) => key,
        Err(error) => return UnlockOutcome::Failed(format!("stored key does not load: {error}")),
    };
    let claims = serde_json::json!({ "iss": "crash-harness", "aud": "crash", "exp": now + 60 });
    let token = match key.sign_jwt("JWT", serde_json::Map::new(), &claims) {
        Ok(token) => token,
        Err(error) => return UnlockOutcome::Failed(format!("signing failed: {error}")),
    };
    let keys = JwkSet {
        keys: vec![key.public_jwk()],
    };
    match mc_jose::verify_es256(&token, &keys) {
        Ok(_) => UnlockOutcome::Unlocked {
            key_hash: sha256_hex(pkcs8.expose()),
            token: None,
        },
        Err(error) => UnlockOutcome::Failed(format!("JWT does not verify: {error}")),
    }
}

fn classify(error: UnlockError) -> UnlockOutcome {
    match error {
        UnlockError::WrongPassword {
            failed_attempts, ..
        } => UnlockOutcome::WrongPassword { failed_attempts },
        UnlockError::TemporarilyLocked { .. } => UnlockOutcome::TemporarilyLocked,
        UnlockError::Blocked => UnlockOutcome::Blocked,
        UnlockError::CredentialCleared => UnlockOutcome::Cleared,
        UnlockError::WrongUnlockMethod { .. } => UnlockOutcome::WrongMethod,
        UnlockError::Store(StoreError::NotFound { .. }) => UnlockOutcome::NotFound,
        other => UnlockOutcome::Failed(other.to_string()),
    }
}
