//! What the runtime stores per enrolled user.

use std::fmt;

use mc_secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

/// One enrolled user at one tenant, as the app names it (`userIdentifier`). Not secret (an
/// IDP user id), so it may appear in logs and errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId {
    pub tenant_id: String,
    /// The IDP's user id: the `sub` of the user's tokens (an anonymous device: of its device
    /// token; an identified user: of its ID token). An anonymous user stored before schema 3
    /// keeps its registration client_id here until its next login
    /// ([`crate::UserStore::adopt_subject`]); so does one whose IDP gives no `sub`.
    pub user_id: String,
}

impl UserId {
    pub fn new(tenant_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            user_id: user_id.into(),
        }
    }

    /// The backend key: a 4-byte big-endian length of the tenant, the tenant, then the user.
    /// Unambiguous whatever characters either part holds.
    pub(crate) fn to_key(&self) -> Vec<u8> {
        let tenant = self.tenant_id.as_bytes();
        let user = self.user_id.as_bytes();
        let mut key = Vec::with_capacity(4 + tenant.len() + user.len());
        // Ids longer than 4 GiB are refused by `validate` before any key is built.
        key.extend_from_slice(
            &u32::try_from(tenant.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        key.extend_from_slice(tenant);
        key.extend_from_slice(user);
        key
    }

    /// Inverse of [`UserId::to_key`]; `None` for bytes it did not produce.
    pub(crate) fn from_key(key: &[u8]) -> Option<Self> {
        let (len, rest) = key.split_first_chunk::<4>()?;
        let tenant_len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < tenant_len {
            return None;
        }
        let (tenant, user) = rest.split_at(tenant_len);
        Some(Self {
            tenant_id: String::from_utf8(tenant.to_vec()).ok()?,
            user_id: String::from_utf8(user.to_vec()).ok()?,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), crate::StoreError> {
        let reason = if self.tenant_id.is_empty() {
            "tenant_id is empty"
        } else if self.user_id.is_empty() {
            "user_id is empty"
        } else if u32::try_from(self.tenant_id.len()).is_err() {
            "tenant_id is too long"
        } else {
            return Ok(());
        };
        Err(crate::StoreError::InvalidInput { reason })
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant_id, self.user_id)
    }
}

/// How a user's secrets are unlocked: which key wraps its data key (see docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StoredAuthMode {
    /// Wrapped by the platform `KeyProvider` key.
    No,
    /// Wrapped by a key derived from the user's password.
    Password,
    /// Wrapped by the host's biometric-gated platform key.
    Biometric,
    /// Wrapped by a key derived from the user's PIN (the PASSWORD KDF and seal), inside a
    /// seal under the platform `KeyProvider` key (see docs/security.md).
    Pin,
}

impl StoredAuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredAuthMode::No => "NO",
            StoredAuthMode::Password => "PASSWORD",
            StoredAuthMode::Biometric => "BIOMETRIC",
            StoredAuthMode::Pin => "PIN",
        }
    }

    /// PASSWORD and PIN: a secret the user types, whose wrong tries are counted, lock and
    /// finally destroy the credential (the [`crate::LockoutPolicy`]).
    pub fn counts_attempts(self) -> bool {
        matches!(self, StoredAuthMode::Password | StoredAuthMode::Pin)
    }
}

/// Everything the runtime keeps about one enrolled user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledUser {
    pub id: UserId,
    /// The clientId of EnrollAnonymousUserEvent (sent as `software_id`).
    pub enrollment_client_id: String,
    pub server_url: String,
    pub issuer: String,
    pub registration_client_uri: Option<String>,
    /// The OAuth client_id the IDP assigned to this device at registration (what its
    /// client assertions name). `None` for an identified user, and for an anonymous user
    /// stored before schema 3, whose `id.user_id` is that client_id.
    pub registration_client_id: Option<String>,
    /// An identified user's redirect URI (of the login that stored it), for
    /// GetInformationEvent after an offline login; `None` for an anonymous device.
    pub redirect_uri: Option<String>,
    pub authentication_mode: StoredAuthMode,
    /// `sub` of the device token (or ID token) the user was stored with.
    pub subject: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful login.
    pub last_login_at: Option<i64>,
    /// Encrypted at rest; `Debug` shows only their length.
    pub secrets: UserSecrets,
}

impl EnrolledUser {
    /// The OAuth client_id an anonymous device authenticates as: its registration client_id,
    /// or, stored before schema 3, its user id (which was that client_id).
    pub fn oauth_client_id(&self) -> &str {
        self.registration_client_id
            .as_deref()
            .unwrap_or(&self.id.user_id)
    }
}

/// The secrets of one user. Both fields redact themselves in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSecrets {
    /// The device's ES256 private key, PKCS#8 DER.
    pub device_key_pkcs8: SecretBytes,
    /// RFC 7592 bearer token for reading or deleting the registration.
    pub registration_access_token: Option<SecretString>,
}

/// The metadata of one user, readable without any key (for StartResultEvent and listings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub id: UserId,
    pub enrollment_client_id: String,
    pub server_url: String,
    pub issuer: String,
    /// As [`EnrolledUser::registration_client_id`].
    pub registration_client_id: Option<String>,
    pub authentication_mode: StoredAuthMode,
    pub subject: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    /// An identified user (logged in at the IDP's page), not an anonymous device.
    pub identified: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_are_unambiguous_and_round_trip() {
        let pairs = [("ab", "c"), ("a", "bc"), ("", "x"), ("t/é\0", "u\u{1F600}")];
        let keys: Vec<_> = pairs
            .iter()
            .map(|(t, u)| UserId::new(*t, *u).to_key())
            .collect();
        for (index, (tenant, user)) in pairs.iter().enumerate() {
            assert_eq!(
                UserId::from_key(&keys[index]),
                Some(UserId::new(*tenant, *user))
            );
        }
        assert_ne!(keys[0], keys[1]);
    }

    #[test]
    fn foreign_key_bytes_decode_to_none() {
        assert_eq!(UserId::from_key(&[]), None);
        assert_eq!(UserId::from_key(&[0, 0]), None);
        assert_eq!(UserId::from_key(&[0, 0, 0, 9, b'a']), None);
        assert_eq!(UserId::from_key(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(UserId::from_key(&[0, 0, 0, 1, 0xff, b'u']), None);
    }

    #[test]
    fn debug_of_a_user_shows_no_secret() {
        let user = EnrolledUser {
            id: UserId::new("demo", "client-1"),
            enrollment_client_id: "AnonymousUserEnrollment".into(),
            server_url: "http://127.0.0.1:1".into(),
            issuer: "http://127.0.0.1:1/realms/demo".into(),
            registration_client_uri: None,
            registration_client_id: Some("client-1".into()),
            redirect_uri: None,
            authentication_mode: StoredAuthMode::No,
            subject: None,
            created_at: 1,
            last_login_at: None,
            secrets: UserSecrets {
                device_key_pkcs8: SecretBytes::new(b"PRIVATE-KEY-BYTES".to_vec()),
                registration_access_token: Some(SecretString::new("reg-token-value")),
            },
        };
        let printed = format!("{user:?} {user:#?}");
        assert!(!printed.contains("PRIVATE-KEY-BYTES"), "{printed}");
        // a derived Debug of raw bytes would print numbers, not text
        let as_numbers = format!("{:?}", b"PRIVATE-KEY-BYTES".to_vec());
        let inner = as_numbers.trim_start_matches('[').trim_end_matches(']');
        assert!(!printed.contains(inner), "{printed}");
        assert!(!printed.contains("reg-token-value"), "{printed}");
        assert!(printed.contains("client-1"), "{printed}");
    }
}
