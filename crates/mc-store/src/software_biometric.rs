//! [`SoftwareBiometric`]: the stand-in for a platform biometric key, for tests and demos
//! (feature `software-biometric`, included in `testing`). It has no biometric sensor and
//! protects nothing beyond its key file's permissions, but it behaves like a platform key,
//! including every failure, which tests script one by one. Never a product's protection: a
//! product build without the feature does not contain it.

use std::collections::{BTreeMap, VecDeque};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use mc_secret::SecretBytes;
use serde::{Deserialize, Serialize};

use crate::biometric::{BiometricError, BiometricKeyProvider};
use crate::keys::random_key;
use crate::seal::{self, hex, Sealed};
use crate::user::UserId;

/// What the next prompted operation of a [`SoftwareBiometric`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptedOutcome {
    /// The user is recognised (the default when nothing is scripted).
    Succeed,
    /// The user dismisses the prompt.
    Cancel,
    /// The platform is locked out with this code.
    Lockout(u32),
    /// The key of this user is invalidated now, as by a new fingerprint.
    Invalidate,
    /// The platform fails with this code.
    Fail(u32),
}

/// Software platform key for tests and desktops: one AES-256-GCM key per user (ring), kept in
/// memory or in a 0600 JSON file written atomically. There is no biometric check: outcomes
/// are scripted with [`SoftwareBiometric::script_next`] and [`SoftwareBiometric::invalidate_all`].
pub struct SoftwareBiometric {
    state: Mutex<SoftState>,
    file: Option<PathBuf>,
}

#[derive(Default)]
struct SoftState {
    /// User key -> platform key; `None` once invalidated.
    keys: BTreeMap<Vec<u8>, Option<SecretBytes>>,
    script: VecDeque<ScriptedOutcome>,
    prompts: Vec<String>,
}

impl std::fmt::Debug for SoftwareBiometric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareBiometric")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    keys: Vec<KeyFileEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyFileEntry {
    #[serde(with = "hex")]
    user: Vec<u8>,
    /// Hex of the key; absent once invalidated.
    #[serde(default)]
    key: Option<mc_secret::SecretString>,
}

const KEY_FILE_FORMAT: u32 = 1;

impl SoftwareBiometric {
    /// Keys in memory only: gone when dropped.
    pub fn in_memory() -> Self {
        Self {
            state: Mutex::new(SoftState::default()),
            file: None,
        }
    }

    /// Keys in the file at `path` (created 0600 on first write). A file that cannot be read
    /// is refused with [`BiometricError::NotAvailable`], never silently replaced.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Self, BiometricError> {
        let path = path.as_ref().to_path_buf();
        let mut state = SoftState::default();
        match std::fs::read(&path) {
            Ok(raw) => {
                let unreadable = || {
                    BiometricError::NotAvailable(format!(
                        "software biometric key file {} is damaged",
                        path.display()
                    ))
                };
                let file: KeyFile = serde_json::from_slice(&raw).map_err(|_| unreadable())?;
                if file.format != KEY_FILE_FORMAT {
                    return Err(unreadable());
                }
                for entry in file.keys {
                    let key = match entry.key {
                        None => None,
                        Some(text) => Some(SecretBytes::new(
                            hex::decode(text.expose()).map_err(|_| unreadable())?,
                        )),
                    };
                    state.keys.insert(entry.user, key);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(BiometricError::NotAvailable(format!(
                    "cannot read {}: {error}",
                    path.display()
                )))
            }
        }
        Ok(Self {
            state: Mutex::new(state),
            file: Some(path),
        })
    }

    /// Queues the outcome of the next prompted operation (wrap or unwrap).
    pub fn script_next(&self, outcome: ScriptedOutcome) {
        self.lock().script.push_back(outcome);
    }

    /// Invalidates every key, as enrolling a new fingerprint does on a phone.
    pub fn invalidate_all(&self) {
        let mut state = self.lock();
        for key in state.keys.values_mut() {
            *key = None;
        }
        // In memory the invalidation holds even if the file cannot be written.
        if let Err(error) = self.persist(&state) {
            tracing::warn!(%error, "cannot persist the invalidated software biometric keys");
        }
    }

    /// Whether `user` has a key, valid or invalidated.
    pub fn has_key(&self, user: &UserId) -> bool {
        self.lock().keys.contains_key(&user.to_key())
    }

    /// The prompts shown so far, oldest first.
    pub fn prompts(&self) -> Vec<String> {
        self.lock().prompts.clone()
    }

    fn lock(&self) -> MutexGuard<'_, SoftState> {
        // Every change to the state is a single assignment: a panic cannot leave it half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Shows the prompt and plays the next scripted outcome; the key on success.
    fn prompt(
        &self,
        state: &mut SoftState,
        user: &UserId,
        prompt: &str,
    ) -> Result<SecretBytes, BiometricError> {
        state.prompts.push(prompt.to_string());
        let outcome = state.script.pop_front().unwrap_or(ScriptedOutcome::Succeed);
        let user_key = user.to_key();
        match outcome {
            ScriptedOutcome::Succeed => {}
            ScriptedOutcome::Cancel => return Err(BiometricError::Cancelled),
            ScriptedOutcome::Lockout(platform_code) => {
                return Err(BiometricError::Lockout { platform_code })
            }
            ScriptedOutcome::Fail(platform_code) => {
                return Err(BiometricError::Failed {
                    platform_code,
                    message: "scripted failure".to_string(),
                })
            }
            ScriptedOutcome::Invalidate => {
                if let Some(key) = state.keys.get_mut(&user_key) {
                    *key = None;
                }
                if let Err(error) = self.persist(state) {
                    tracing::warn!(%error, "cannot persist an invalidated software biometric key");
                }
                return Err(BiometricError::KeyInvalidated);
            }
        }
        // A missing key means the same to the caller as an invalidated one: that user cannot
        // be unlocked by biometrics any more.
        match state.keys.get(&user_key) {
            Some(Some(key)) => Ok(key.clone()),
            _ => Err(BiometricError::KeyInvalidated),
        }
    }

    fn persist(&self, state: &SoftState) -> Result<(), BiometricError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let file = KeyFile {
            format: KEY_FILE_FORMAT,
            keys: state
                .keys
                .iter()
                .map(|(user, key)| KeyFileEntry {
                    user: user.clone(),
                    key: key
                        .as_ref()
                        .map(|key| mc_secret::SecretString::new(hex::encode(key.expose()))),
                })
                .collect(),
        };
        let failed = |error: String| BiometricError::Failed {
            platform_code: 0,
            message: format!("cannot write {}: {error}", path.display()),
        };
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&file).map_err(|error| failed(error.to_string()))?,
        );
        write_atomically(path, &json).map_err(|error| failed(error.to_string()))
    }
}

// Temporary file (0600) + fsync + rename + directory fsync: a crash leaves the old file or
// the new one, never a torn one.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    #[cfg(unix)]
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

fn software_aad(user: &UserId) -> Vec<u8> {
    let mut aad = b"mc-store software biometric v1:".to_vec();
    aad.extend_from_slice(&user.to_key());
    aad
}

impl BiometricKeyProvider for SoftwareBiometric {
    fn create_key(&self, user: &UserId) -> Result<(), BiometricError> {
        let key = random_key().map_err(|error| BiometricError::NotAvailable(error.to_string()))?;
        let mut state = self.lock();
        let previous = state.keys.insert(user.to_key(), Some(key));
        if let Err(error) = self.persist(&state) {
            // Put back what was there, so memory and file agree.
            match previous {
                Some(previous) => state.keys.insert(user.to_key(), previous),
                None => state.keys.remove(&user.to_key()),
            };
            return Err(error);
        }
        Ok(())
    }

    fn wrap(
        &self,
        user: &UserId,
        plaintext: &SecretBytes,
        prompt: &str,
    ) -> Result<Vec<u8>, BiometricError> {
        let mut state = self.lock();
        let key = self.prompt(&mut state, user, prompt)?;
        let sealed =
            seal::seal(key.expose(), &software_aad(user), plaintext.expose()).map_err(|error| {
                BiometricError::Failed {
                    platform_code: 0,
                    message: error.to_string(),
                }
            })?;
        let mut out = sealed.nonce;
        out.extend_from_slice(&sealed.ciphertext);
        Ok(out)
    }

    fn unwrap(
        &self,
        user: &UserId,
        ciphertext: &[u8],
        prompt: &str,
    ) -> Result<SecretBytes, BiometricError> {
        let mut state = self.lock();
        let key = self.prompt(&mut state, user, prompt)?;
        let undecryptable = || BiometricError::Failed {
            platform_code: 0,
            message: "the wrapped key does not decrypt under this user's platform key".to_string(),
        };
        let (nonce, ciphertext) = ciphertext
            .split_at_checked(ring::aead::NONCE_LEN)
            .ok_or_else(undecryptable)?;
        let sealed = Sealed {
            algorithm: seal::Algorithm::Aes256Gcm,
            nonce: nonce.to_vec(),
            ciphertext: ciphertext.to_vec(),
        };
        match seal::open(key.expose(), &software_aad(user), &sealed) {
            Ok(Ok(plaintext)) => Ok(SecretBytes::new(plaintext.to_vec())),
            _ => Err(undecryptable()),
        }
    }

    fn delete_key(&self, user: &UserId) {
        let mut state = self.lock();
        if state.keys.remove(&user.to_key()).is_some() {
            if let Err(error) = self.persist(&state) {
                tracing::warn!(%error, "cannot persist a deleted software biometric key");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretBytes {
        SecretBytes::new(vec![0x5a; 32])
    }

    #[test]
    fn wraps_unwraps_and_plays_each_scripted_outcome() {
        let bio = SoftwareBiometric::in_memory();
        let alice = UserId::new("t", "alice");
        assert_eq!(
            bio.wrap(&alice, &secret(), "p"),
            Err(BiometricError::KeyInvalidated)
        );
        bio.create_key(&alice).unwrap();
        let wrapped = bio.wrap(&alice, &secret(), "wrap").unwrap();
        assert_eq!(bio.unwrap(&alice, &wrapped, "unwrap").unwrap(), secret());
        // another user's key does not open it
        let bob = UserId::new("t", "bob");
        bio.create_key(&bob).unwrap();
        assert!(matches!(
            bio.unwrap(&bob, &wrapped, "x"),
            Err(BiometricError::Failed { .. })
        ));
        assert!(matches!(
            bio.unwrap(&alice, &wrapped[..5], "x"),
            Err(BiometricError::Failed { .. })
        ));

        bio.script_next(ScriptedOutcome::Cancel);
        bio.script_next(ScriptedOutcome::Lockout(7));
        bio.script_next(ScriptedOutcome::Fail(9));
        assert_eq!(
            bio.unwrap(&alice, &wrapped, "a"),
            Err(BiometricError::Cancelled)
        );
        assert_eq!(
            bio.unwrap(&alice, &wrapped, "b"),
            Err(BiometricError::Lockout { platform_code: 7 })
        );
        assert!(matches!(
            bio.unwrap(&alice, &wrapped, "c"),
            Err(BiometricError::Failed {
                platform_code: 9,
                ..
            })
        ));
        // the script is used up: success again
        assert_eq!(bio.unwrap(&alice, &wrapped, "d").unwrap(), secret());

        bio.script_next(ScriptedOutcome::Invalidate);
        assert_eq!(
            bio.unwrap(&alice, &wrapped, "e"),
            Err(BiometricError::KeyInvalidated)
        );
        assert_eq!(
            bio.unwrap(&alice, &wrapped, "f"),
            Err(BiometricError::KeyInvalidated)
        );
        // bob is unaffected by alice's invalidation, not by invalidate_all
        let bob_wrapped = bio.wrap(&bob, &secret(), "g").unwrap();
        bio.invalidate_all();
        assert_eq!(
            bio.unwrap(&bob, &bob_wrapped, "h"),
            Err(BiometricError::KeyInvalidated)
        );
        assert_eq!(bio.prompts().len(), 13);
        assert_eq!(bio.prompts()[2], "unwrap");
        bio.delete_key(&bob);
        assert!(!bio.has_key(&bob));
    }

    #[test]
    fn a_key_file_survives_reopening_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bio.json");
        let alice = UserId::new("t", "alice");
        let wrapped = {
            let bio = SoftwareBiometric::open_file(&path).unwrap();
            bio.create_key(&alice).unwrap();
            bio.wrap(&alice, &secret(), "w").unwrap()
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let bio = SoftwareBiometric::open_file(&path).unwrap();
        assert_eq!(bio.unwrap(&alice, &wrapped, "u").unwrap(), secret());
        bio.invalidate_all();
        let bio = SoftwareBiometric::open_file(&path).unwrap();
        assert_eq!(
            bio.unwrap(&alice, &wrapped, "u"),
            Err(BiometricError::KeyInvalidated)
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            SoftwareBiometric::open_file(&path),
            Err(BiometricError::NotAvailable(_))
        ));
        let printed = format!("{bio:?}");
        assert!(!printed.contains("keys"), "{printed}");
    }
}
