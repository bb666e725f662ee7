//! Where the key that wraps per-user data keys comes from.
//!
//! On a phone this is the platform keystore; here [`KeyProvider`] is its stand-in for mode NO.
//! The contract is one method returning a 256-bit key, because that is all mode NO needs and
//! every software keystore can give it. A hardware keystore that cannot export its key would
//! instead seal and open the data key itself; that is a second, optional trait for later (the
//! record format already names the wrapping mode and algorithm, so it needs no format change).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use mc_secret::SecretBytes;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::StoreError;

/// Length of every wrapping key and data key: AES-256.
pub const KEY_LEN: usize = 32;

/// Source of the key that wraps the per-user data keys of mode NO.
pub trait KeyProvider: Send + Sync {
    /// The 256-bit wrapping key. Called for every seal and open, so a provider may lock itself
    /// (return [`StoreError::KeyUnavailable`]) at any time; the store holds the key only for the
    /// duration of one operation.
    fn wrapping_key(&self) -> Result<SecretBytes, StoreError>;
}

/// A fixed key given by the caller, for tests and for hosts that derive the key themselves.
pub struct StaticKeyProvider {
    key: SecretBytes,
}

impl StaticKeyProvider {
    /// Fails with [`StoreError::KeyUnavailable`] unless `key` is exactly 32 bytes.
    pub fn new(key: SecretBytes) -> Result<Self, StoreError> {
        if key.len() != KEY_LEN {
            return Err(StoreError::KeyUnavailable {
                reason: format!("a static key must be {KEY_LEN} bytes, got {}", key.len()),
            });
        }
        Ok(Self { key })
    }

    /// A fresh random key, for tests.
    pub fn random() -> Result<Self, StoreError> {
        Self::new(random_key()?)
    }
}

impl KeyProvider for StaticKeyProvider {
    fn wrapping_key(&self) -> Result<SecretBytes, StoreError> {
        Ok(self.key.clone())
    }
}

/// A random 32-byte key kept in a file readable by its owner only (0600): the stand-in for a
/// phone's keystore. Whoever can read this file can read the store's secrets, so keep it beside
/// the store only where the OS account is the trust boundary.
pub struct FileKeyProvider {
    path: PathBuf,
    key: SecretBytes,
}

impl std::fmt::Debug for FileKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileKeyProvider {
    /// Reads the key file at `path`, or creates it with a new random key when it does not exist.
    ///
    /// Creation is atomic (write a temporary file with mode 0600, fsync, then link it into
    /// place without replacing anything), so a crash never leaves a half-written key and two
    /// processes racing to create it end up with the same key. An existing file is refused when
    /// it is not exactly 32 bytes, not a regular file, or (on Unix) readable or writable by
    /// group or others.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        match File::open(&path) {
            Ok(file) => Self::read_existing(path, file),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(error) => Err(StoreError::KeyUnavailable {
                reason: format!("cannot open key file {}: {error}", path.display()),
            }),
        }
    }

    /// Where the key lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_existing(path: PathBuf, mut file: File) -> Result<Self, StoreError> {
        let unavailable = |what: String| StoreError::KeyUnavailable {
            reason: format!("key file {}: {what}", path.display()),
        };
        let metadata = file
            .metadata()
            .map_err(|error| unavailable(format!("cannot read its metadata: {error}")))?;
        if !metadata.is_file() {
            return Err(unavailable("is not a regular file".to_string()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(unavailable(format!(
                    "has permissions {mode:03o}, looser than 600; another account may have read \
                     it: remove it and enroll again, or `chmod 600` it if it was never exposed"
                )));
            }
        }
        if metadata.len() != KEY_LEN as u64 {
            return Err(unavailable(format!(
                "is {} bytes, expected {KEY_LEN}; it is not a key written by this store",
                metadata.len()
            )));
        }
        let mut key = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        // Read one byte more than needed to notice a file that grew after the metadata check.
        (&mut file)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut key)
            .map_err(|error| unavailable(format!("cannot be read: {error}")))?;
        if key.len() != KEY_LEN {
            return Err(unavailable(format!(
                "changed length while being read ({} bytes)",
                key.len()
            )));
        }
        Ok(Self {
            path,
            key: SecretBytes::new(key.as_slice()),
        })
    }

    fn create(path: PathBuf) -> Result<Self, StoreError> {
        let key = random_key()?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .ok_or(StoreError::InvalidInput {
                reason: "key file path has no file name",
            })?
            .to_string_lossy()
            .into_owned();
        let temp = dir.join(format!(".{file_name}.{}.tmp", random_suffix()?));

        let written = write_private_file(&temp, key.expose());
        let placed = written.and_then(|()| link_no_replace(&temp, &path));
        // The temporary name is never needed again, whether linking worked or not.
        let _ = std::fs::remove_file(&temp);
        match placed {
            Ok(()) => {
                sync_dir(&dir)?;
                tracing::info!(path = %path.display(), "created a new store key file");
                Ok(Self { path, key })
            }
            // Another process created it first: use theirs, so both agree on one key.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let file = File::open(&path)?;
                Self::read_existing(path, file)
            }
            Err(error) => Err(StoreError::KeyUnavailable {
                reason: format!("cannot create key file {}: {error}", path.display()),
            }),
        }
    }
}

impl KeyProvider for FileKeyProvider {
    fn wrapping_key(&self) -> Result<SecretBytes, StoreError> {
        Ok(self.key.clone())
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

// A hard link fails when the target exists, unlike rename, which would silently replace a key
// that another process has just started to use. Where hard links are unsupported, fall back to
// rename after checking the target is still absent.
fn link_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(error),
        Err(_) if to.exists() => Err(std::io::ErrorKind::AlreadyExists.into()),
        Err(_) => std::fs::rename(from, to),
    }
}

// Makes the new directory entry durable; without it a power cut can lose a key that already
// encrypts stored users.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

pub(crate) fn random_key() -> Result<SecretBytes, StoreError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new()
        .fill(key.as_mut())
        .map_err(|_| StoreError::KeyUnavailable {
            reason: "the system random generator failed".to_string(),
        })?;
    Ok(SecretBytes::new(key.as_slice()))
}

fn random_suffix() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::KeyUnavailable {
            reason: "the system random generator failed".to_string(),
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_a_private_key_and_reads_the_same_key_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        let created = FileKeyProvider::open_or_create(&path).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        let reopened = FileKeyProvider::open_or_create(&path).unwrap();
        assert_eq!(
            created.wrapping_key().unwrap().expose(),
            reopened.wrapping_key().unwrap().expose()
        );
        // no temporary file is left behind
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // two fresh key files differ
        let other = FileKeyProvider::open_or_create(dir.path().join("other.key")).unwrap();
        assert_ne!(
            created.wrapping_key().unwrap().expose(),
            other.wrapping_key().unwrap().expose()
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_file_with_loose_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        FileKeyProvider::open_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = FileKeyProvider::open_or_create(&path).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, StoreError::KeyUnavailable { .. }));
        assert!(message.contains("644"), "{message}");
        // the refused file is left as it was, not replaced by a new key
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
    }

    #[test]
    fn refuses_a_key_file_of_the_wrong_length() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 31, 33, 64] {
            let path = dir.path().join(format!("key{len}"));
            write_private_file(&path, &vec![7u8; len]).unwrap();
            let error = FileKeyProvider::open_or_create(&path).unwrap_err();
            assert!(
                matches!(&error, StoreError::KeyUnavailable { reason } if reason.contains("expected 32")),
                "{error}"
            );
        }
    }

    #[test]
    fn refuses_a_directory_as_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = FileKeyProvider::open_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(error, StoreError::KeyUnavailable { .. }),
            "{error}"
        );
    }

    #[test]
    fn static_provider_checks_the_length_and_debug_hides_the_key() {
        assert!(StaticKeyProvider::new(SecretBytes::new(vec![1u8; 16])).is_err());
        let provider = StaticKeyProvider::new(SecretBytes::new(vec![0xAB; 32])).unwrap();
        assert_eq!(provider.wrapping_key().unwrap().expose(), &[0xAB; 32][..]);
        let dir = tempfile::tempdir().unwrap();
        let file = FileKeyProvider::open_or_create(dir.path().join("k")).unwrap();
        let printed = format!("{file:?}");
        assert!(printed.starts_with("FileKeyProvider"), "{printed}");
        assert!(!printed.contains("key:"), "{printed}");
    }
}
