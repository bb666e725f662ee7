//! Mode BIOMETRIC: a platform key, gated by a biometric prompt, wraps the user's data key.
//!
//! The host implements [`BiometricKeyProvider`] over Android Keystore or the Secure Enclave
//! (a key bound to the current biometric set, so enrolling a new fingerprint invalidates it).
//! `SoftwareBiometric` (feature `software-biometric`, in `software_biometric.rs`) is the
//! stand-in for tests and demos.

use mc_secret::SecretBytes;

use crate::user::UserId;

/// The prompt shown when the store wraps a data key under a new platform key (enrollment in
/// mode BIOMETRIC, or a switch to it); unlocking uses the caller's prompt.
pub const BIOMETRIC_SETUP_PROMPT: &str = "Confirm to protect this device's sign-in key";

/// Why the platform did not wrap or unwrap. No variant ever carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BiometricError {
    /// The user dismissed the prompt: ask again later, or offer another way.
    #[error("the biometric prompt was cancelled")]
    Cancelled,
    /// Too many failed biometric tries: the platform refuses for a while (its code says how).
    #[error("biometrics are locked by the platform (code {platform_code}); wait, or unlock the device with its PIN first")]
    Lockout {
        /// The platform's own error code, for the 802xxxxxx status code.
        platform_code: u32,
    },
    /// The platform key is gone for good (for example a new fingerprint was enrolled): this
    /// user must log in another way or enroll again.
    #[error("the biometric key was invalidated (biometric set changed); enroll this user again")]
    KeyInvalidated,
    /// No sensor, no enrolled biometric, or no provider configured.
    #[error("biometrics are not available: {0}")]
    NotAvailable(String),
    /// Any other platform failure.
    #[error("the biometric platform failed (code {platform_code}): {message}")]
    Failed {
        /// The platform's own error code.
        platform_code: u32,
        /// The platform's explanation (never key material).
        message: String,
    },
}

/// Host-implemented platform key (Android Keystore / Secure Enclave) gated by a biometric
/// prompt. The platform key never leaves the platform: the store hands it bytes to wrap and
/// unwrap. One key per user.
pub trait BiometricKeyProvider: Send + Sync {
    /// Creates (or replaces) the key of `user`, bound to the current biometric set.
    fn create_key(&self, user: &UserId) -> Result<(), BiometricError>;
    /// Encrypts `plaintext` under the key of `user`, after a prompt if the platform wants one.
    fn wrap(
        &self,
        user: &UserId,
        plaintext: &SecretBytes,
        prompt: &str,
    ) -> Result<Vec<u8>, BiometricError>;
    /// Shows `prompt`, then decrypts what [`BiometricKeyProvider::wrap`] returned.
    fn unwrap(
        &self,
        user: &UserId,
        ciphertext: &[u8],
        prompt: &str,
    ) -> Result<SecretBytes, BiometricError>;
    /// Deletes the key of `user`; deleting an absent key does nothing.
    fn delete_key(&self, user: &UserId);
}
