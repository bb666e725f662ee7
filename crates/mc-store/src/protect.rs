//! What protects a user's data key: the mode chosen at enrollment ([`Protection`]), what the
//! caller offers to unlock it ([`Unlock`]), and the password KDF with its stored parameters.

use std::num::NonZeroU32;

use mc_secret::SecretString;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::keys::KEY_LEN;
use crate::seal::hex;
use crate::settings::MAX_STORED_PBKDF2_ITERATIONS;
use crate::user::StoredAuthMode;

/// How a user's device credential is protected (at enrollment, or after a mode switch).
/// `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// Wrapped by the platform [`crate::KeyProvider`] key: unlocks without asking anyone.
    No,
    /// Wrapped by a key derived from this password (never stored).
    Password(SecretString),
    /// Wrapped by the host's [`crate::BiometricKeyProvider`].
    Biometric,
    /// Wrapped by a key derived from this PIN as for a password (never stored), inside a
    /// seal under the [`crate::KeyProvider`] key. Its format (digits, length) is the
    /// runtime's policy; the store only refuses an empty one.
    Pin(SecretString),
}

impl Protection {
    /// The mode stored for this protection.
    pub fn mode(&self) -> StoredAuthMode {
        match self {
            Protection::No => StoredAuthMode::No,
            Protection::Password(_) => StoredAuthMode::Password,
            Protection::Biometric => StoredAuthMode::Biometric,
            Protection::Pin(_) => StoredAuthMode::Pin,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        match self {
            Protection::Password(password) if password.is_empty() => {
                Err(StoreError::InvalidInput {
                    reason: "the password is empty",
                })
            }
            Protection::Pin(pin) if pin.is_empty() => Err(StoreError::InvalidInput {
                reason: "the PIN is empty",
            }),
            _ => Ok(()),
        }
    }
}

/// What the caller offers to unlock a user now. `Debug` never shows the password.
#[derive(Debug, Clone, Copy)]
pub enum Unlock<'a> {
    /// Mode NO: nothing to ask.
    No,
    /// Mode PASSWORD: the password the user typed.
    Password(&'a SecretString),
    /// The text of the biometric prompt the platform shows.
    Biometric { prompt: &'a str },
    /// Mode PIN: the PIN the user typed.
    Pin(&'a SecretString),
}

impl Unlock<'_> {
    /// The mode this unlock is meant for.
    pub fn mode(&self) -> StoredAuthMode {
        match self {
            Unlock::No => StoredAuthMode::No,
            Unlock::Password(_) => StoredAuthMode::Password,
            Unlock::Biometric { .. } => StoredAuthMode::Biometric,
            Unlock::Pin(_) => StoredAuthMode::Pin,
        }
    }
}

/// The KDF of a stored password wrap, named so another can be added beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KdfName {
    #[serde(rename = "PBKDF2-HMAC-SHA256")]
    Pbkdf2HmacSha256,
}

/// Length of the random salt of a new password wrap.
pub(crate) const SALT_LEN: usize = 16;

/// The KDF parameters stored beside a password-wrapped key: enough to derive the same key
/// again whatever the current settings say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KdfParams {
    pub name: KdfName,
    pub iterations: u32,
    #[serde(with = "hex")]
    pub salt: Vec<u8>,
}

impl KdfParams {
    /// Fresh parameters: the given iteration count and a new random salt.
    pub fn new(iterations: u32) -> Result<Self, StoreError> {
        let mut salt = vec![0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| StoreError::KeyUnavailable {
                reason: "the system random generator failed".to_string(),
            })?;
        Ok(Self {
            name: KdfName::Pbkdf2HmacSha256,
            iterations,
            salt,
        })
    }

    /// Whether these parameters are weaker than the current settings ask for.
    pub fn is_outdated(&self, current_iterations: u32) -> bool {
        let KdfName::Pbkdf2HmacSha256 = self.name;
        self.iterations < current_iterations
    }

    /// The wrapping key for `password`; `None` when the stored parameters are out of range
    /// (damage, not a wrong password). Wiped when dropped.
    pub fn derive(&self, password: &SecretString) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let KdfName::Pbkdf2HmacSha256 = self.name;
        if self.iterations > MAX_STORED_PBKDF2_ITERATIONS
            || !(SALT_LEN..=64).contains(&self.salt.len())
        {
            return None;
        }
        let iterations = NonZeroU32::new(self.iterations)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &self.salt,
            password.expose().as_bytes(),
            key.as_mut(),
        );
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_depends_on_password_salt_and_iterations() {
        let params = KdfParams::new(10).unwrap();
        let password = SecretString::new("correct horse");
        let key = params.derive(&password).unwrap();
        assert_eq!(*key, *params.derive(&password).unwrap());
        assert_ne!(*key, *params.derive(&SecretString::new("wrong")).unwrap());
        let other_salt = KdfParams::new(10).unwrap();
        assert_ne!(params.salt, other_salt.salt);
        assert_ne!(*key, *other_salt.derive(&password).unwrap());
        let more = KdfParams {
            iterations: 11,
            ..params.clone()
        };
        assert_ne!(*key, *more.derive(&password).unwrap());
        // out-of-range stored parameters are damage
        for bad in [
            KdfParams {
                iterations: 0,
                ..params.clone()
            },
            KdfParams {
                iterations: u32::MAX,
                ..params.clone()
            },
            KdfParams {
                salt: vec![1; 3],
                ..params.clone()
            },
        ] {
            assert!(bad.derive(&password).is_none());
        }
        assert!(params.is_outdated(11));
        assert!(!params.is_outdated(10));
    }

    #[test]
    fn stored_form_names_the_kdf_and_debug_hides_passwords() {
        let params = KdfParams::new(600_000).unwrap();
        let json = serde_json::to_string(&params).unwrap();
        assert!(json.contains(r#""name":"PBKDF2-HMAC-SHA256""#), "{json}");
        assert!(json.contains(r#""iterations":600000"#), "{json}");
        let password = SecretString::new("hunter2-secret");
        let printed = format!(
            "{:?} {:?}",
            Protection::Password(password.clone()),
            Unlock::Password(&password)
        );
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(Protection::Password(SecretString::new(""))
            .validate()
            .is_err());
    }
}
