//! The stored form of schema version 2 (see the layout in the parent module) and the
//! additional authenticated data that binds each ciphertext to its place.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::protect::KdfParams;
use crate::seal::{hex, Sealed};
use crate::user::{EnrolledUser, StoredAuthMode, UserId, UserSummary};

/// Version of each record's own encoding (users, secrets, management, lockout), checked on
/// read. Schema 1 records carry 1; a record still at 1 in a schema 2 store is one the
/// migration could not read, and is reported as damaged.
pub(crate) const RECORD_FORMAT: u32 = 2;

/// Version byte at the start of the sealed secrets and management payloads.
const SECRETS_PAYLOAD_FORMAT: u8 = 2;
const MANAGEMENT_PAYLOAD_FORMAT: u8 = 1;

/// Metadata of one user, in clear: readable without any key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub format: u32,
    pub tenant_id: String,
    pub user_id: String,
    pub enrollment_client_id: String,
    pub server_url: String,
    pub issuer: String,
    #[serde(default)]
    pub registration_client_uri: Option<String>,
    /// The OAuth client_id of an anonymous device's registration; absent in records written
    /// before schema 3 (their `user_id` is that client_id) and for identified users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_id: Option<String>,
    /// The user id this user's ciphertexts (AAD) and platform biometric key were made for,
    /// when it is no longer `user_id`: set when [`super::UserStore::adopt_subject`] moved an
    /// anonymous user from its client_id to its `sub`, which re-seals nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_as: Option<String>,
    /// An identified user's redirect URI (informational, not bound by any AAD: the runtime
    /// never redeems a code with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    pub authentication_mode: StoredAuthMode,
    #[serde(default)]
    pub subject: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub last_login_at: Option<i64>,
    /// ClearIamTokenCache CLEAR_OFFLINE/CLEAR_ALL removed the secrets (and refresh token):
    /// the user stays listed, but cannot log in offline (NO_TOKEN_DATA_AVAILABLE).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credential_cleared: bool,
    /// An identified user (authorization code login), not an anonymous device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identified: bool,
}

/// The device key sealed under the data key, and the data key wrapped by the user's mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SecretsRecord {
    pub format: u32,
    pub data_key: WrappedKey,
    pub secrets: Sealed,
}

/// A data key wrapped by one authentication mode, with what that mode needs to unwrap it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum WrappedKey {
    /// Sealed under the `KeyProvider` key.
    No { sealed: Sealed },
    /// Sealed under the key derived from the password with `kdf`.
    Password { kdf: KdfParams, sealed: Sealed },
    /// Opaque output of the host's `BiometricKeyProvider::wrap`.
    Biometric {
        #[serde(with = "hex")]
        platform_ciphertext: Vec<u8>,
    },
    /// `sealed` is, under the `KeyProvider` key, the JSON of the data key sealed under the
    /// key derived from the PIN with `kdf` (as PASSWORD). The outer seal keeps a copy of the
    /// file without the platform key from being tried offline against the few PINs there are.
    Pin { kdf: KdfParams, sealed: Sealed },
}

impl WrappedKey {
    pub fn mode(&self) -> StoredAuthMode {
        match self {
            WrappedKey::No { .. } => StoredAuthMode::No,
            WrappedKey::Password { .. } => StoredAuthMode::Password,
            WrappedKey::Biometric { .. } => StoredAuthMode::Biometric,
            WrappedKey::Pin { .. } => StoredAuthMode::Pin,
        }
    }
}

/// The registration access token, sealed under the `KeyProvider` key whatever the mode, so
/// a blocked or forgotten user can still be deleted at the IDP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManagementRecord {
    pub format: u32,
    pub sealed: Sealed,
}

/// Failed password attempts, in clear (it protects against guessing through the app, not
/// against someone who holds the file: see docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LockoutRecord {
    pub format: u32,
    pub failed_attempts: u32,
    /// The latest attempt time seen (never moves back with the clock).
    pub last_attempt_at: Option<i64>,
    /// No password is tried before this time.
    pub locked_until: Option<i64>,
    /// The wrapped key was destroyed.
    pub blocked: bool,
}

impl Default for LockoutRecord {
    fn default() -> Self {
        Self {
            format: RECORD_FORMAT,
            failed_attempts: 0,
            last_attempt_at: None,
            locked_until: None,
            blocked: false,
        }
    }
}

/// What the additional authenticated data of a schema 2 ciphertext says about its place.
#[derive(Serialize)]
struct SealContext<'a> {
    schema: u32,
    purpose: &'static str,
    tenant_id: &'a str,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<StoredAuthMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bound: Option<BoundMetadata<'a>>,
}

/// The metadata a ciphertext is bound to: pointing a user at another server (where its
/// registration token would be sent) makes its secrets fail to open.
#[derive(Serialize)]
struct BoundMetadata<'a> {
    enrollment_client_id: &'a str,
    server_url: &'a str,
    issuer: &'a str,
    registration_client_uri: Option<&'a str>,
    created_at: i64,
}

impl UserRecord {
    pub fn new(user: &EnrolledUser, mode: StoredAuthMode) -> Self {
        Self {
            format: RECORD_FORMAT,
            tenant_id: user.id.tenant_id.clone(),
            user_id: user.id.user_id.clone(),
            enrollment_client_id: user.enrollment_client_id.clone(),
            server_url: user.server_url.clone(),
            issuer: user.issuer.clone(),
            registration_client_uri: user.registration_client_uri.clone(),
            registration_client_id: user.registration_client_id.clone(),
            sealed_as: None,
            redirect_uri: user.redirect_uri.clone(),
            authentication_mode: mode,
            subject: user.subject.clone(),
            created_at: user.created_at,
            last_login_at: user.last_login_at,
            credential_cleared: false,
            identified: false,
        }
    }

    pub fn id(&self) -> UserId {
        UserId::new(self.tenant_id.clone(), self.user_id.clone())
    }

    /// The id the ciphertexts and the platform biometric key of this user were made for.
    pub fn sealed_id(&self) -> UserId {
        UserId::new(
            self.tenant_id.clone(),
            self.sealed_as
                .clone()
                .unwrap_or_else(|| self.user_id.clone()),
        )
    }

    pub fn summary(self) -> UserSummary {
        UserSummary {
            id: UserId::new(self.tenant_id, self.user_id),
            enrollment_client_id: self.enrollment_client_id,
            server_url: self.server_url,
            issuer: self.issuer,
            registration_client_id: self.registration_client_id,
            authentication_mode: self.authentication_mode,
            subject: self.subject,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
            identified: self.identified,
        }
    }

    fn context(
        &self,
        purpose: &'static str,
        mode: Option<StoredAuthMode>,
        bound: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let context = SealContext {
            schema: 2,
            purpose,
            tenant_id: &self.tenant_id,
            user_id: self.sealed_as.as_deref().unwrap_or(&self.user_id),
            mode,
            bound: bound.then(|| BoundMetadata {
                enrollment_client_id: &self.enrollment_client_id,
                server_url: &self.server_url,
                issuer: &self.issuer,
                registration_client_uri: self.registration_client_uri.as_deref(),
                created_at: self.created_at,
            }),
        };
        serde_json::to_vec(&context).map_err(|error| {
            StoreError::Backend(format!("cannot encode the record context: {error}"))
        })
    }

    /// AAD of the wrapped data key: the user and the mode that wrapped it.
    pub fn data_key_aad(&self, mode: StoredAuthMode) -> Result<Vec<u8>, StoreError> {
        self.context("data-key", Some(mode), false)
    }

    /// AAD of the secrets: the user and its bound metadata, not the mode, so that a mode
    /// switch re-wraps only the data key and never touches the sealed device key.
    pub fn secrets_aad(&self) -> Result<Vec<u8>, StoreError> {
        self.context("secrets", None, true)
    }

    /// AAD of the management secrets: the user and its bound metadata.
    pub fn management_aad(&self) -> Result<Vec<u8>, StoreError> {
        self.context("management", None, true)
    }

    /// AAD of an identified user's refresh token (sealed under the data key, like the
    /// secrets): the user and its bound metadata.
    pub fn refresh_token_aad(&self) -> Result<Vec<u8>, StoreError> {
        self.context("refresh-token", None, true)
    }
}

/// Secrets payload: `[2][device key PKCS#8 ...]`.
pub(crate) fn encode_secrets_payload(device_key: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut payload = zeroize::Zeroizing::new(Vec::with_capacity(1 + device_key.len()));
    payload.push(SECRETS_PAYLOAD_FORMAT);
    payload.extend_from_slice(device_key);
    payload
}

pub(crate) fn decode_secrets_payload(payload: &[u8]) -> Option<&[u8]> {
    match payload.split_first()? {
        (&SECRETS_PAYLOAD_FORMAT, device_key) => Some(device_key),
        _ => None,
    }
}

/// Management payload: `[1][0]` without a token, `[1][1][token UTF-8 ...]` with one.
pub(crate) fn encode_management_payload(token: Option<&str>) -> zeroize::Zeroizing<Vec<u8>> {
    let token = token.map(str::as_bytes);
    let mut payload = zeroize::Zeroizing::new(Vec::with_capacity(2 + token.map_or(0, <[u8]>::len)));
    payload.push(MANAGEMENT_PAYLOAD_FORMAT);
    match token {
        None => payload.push(0),
        Some(token) => {
            payload.push(1);
            payload.extend_from_slice(token);
        }
    }
    payload
}

/// `Some(None)`: no token; `None`: not a payload this version wrote.
pub(crate) fn decode_management_payload(payload: &[u8]) -> Option<Option<&str>> {
    match payload {
        [MANAGEMENT_PAYLOAD_FORMAT, 0] => Some(None),
        [MANAGEMENT_PAYLOAD_FORMAT, 1, token @ ..] => std::str::from_utf8(token).ok().map(Some),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_foreign_bytes_are_refused() {
        let payload = encode_secrets_payload(b"pkcs8");
        assert_eq!(decode_secrets_payload(&payload), Some(&b"pkcs8"[..]));
        assert_eq!(decode_secrets_payload(&[]), None);
        assert_eq!(decode_secrets_payload(&[2]), Some(&[][..]));
        assert_eq!(decode_secrets_payload(&[1, 5]), None);
        let with = encode_management_payload(Some("tok"));
        assert_eq!(decode_management_payload(&with), Some(Some("tok")));
        let without = encode_management_payload(None);
        assert_eq!(decode_management_payload(&without), Some(None));
        assert_eq!(decode_management_payload(&[1, 0, 0]), None);
        assert_eq!(decode_management_payload(&[1, 1, 0xff]), None);
        assert_eq!(decode_management_payload(&[2, 0]), None);
    }

    #[test]
    fn wrapped_keys_name_their_mode_in_the_stored_form() {
        let sealed = crate::seal::seal(&[1u8; 32], b"", b"k").unwrap();
        let no = serde_json::to_string(&WrappedKey::No {
            sealed: sealed.clone(),
        })
        .unwrap();
        assert!(no.starts_with(r#"{"mode":"NO""#), "{no}");
        let bio = WrappedKey::Biometric {
            platform_ciphertext: vec![0xab, 0x01],
        };
        let json = serde_json::to_string(&bio).unwrap();
        assert_eq!(json, r#"{"mode":"BIOMETRIC","platform_ciphertext":"ab01"}"#);
        assert_eq!(serde_json::from_str::<WrappedKey>(&json).unwrap(), bio);
        assert!(serde_json::from_str::<WrappedKey>(r#"{"mode":"PIN"}"#).is_err());
    }
}
