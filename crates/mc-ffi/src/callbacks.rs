//! Host-implemented interfaces (listeners, keystores) and their adapters to the runtime's traits.
//!
//! Every method returns a `Result` whose error converts from UniFFI's "unexpected callback
//! error": an exception thrown by host code becomes an `Err` here instead of a panic in Rust,
//! so a listener that throws does not break its delivery thread and a keystore that throws is
//! a typed store error, never a crash.

use std::sync::Arc;

use mc_events as ev;
use mc_runtime::{BiometricError as StoreBiometricError, UserId};
use mc_secret::SecretBytes;

use mc_events::{Event, UserIdentifier};

/// The failure of a host callback. Host code may throw it or anything else; either way the
/// runtime logs the failure (without the event's fields) and goes on.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HostError {
    #[error("host callback failed: {message}")]
    Failed { message: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HostError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HostError::Failed {
            message: error.reason,
        }
    }
}

/// Receives every event: results of every request (also those posted by others) and pushed
/// events. Mirrors the MC-SDK's `EventListener.onEventReceived`. Called on a thread of its own
/// per listener, in emission order; never on the thread that posted.
#[uniffi::export(foreign)]
pub trait EventListener: Send + Sync {
    fn on_event_received(&self, event: Event) -> Result<(), HostError>;
}

/// As [`EventListener`], with each event in its JSON form (docs/events.md), for wrappers that
/// prefer strings. The JSON of an `ExchangeIamTokenResultEvent` holds the token.
#[uniffi::export(foreign)]
pub trait JsonEventListener: Send + Sync {
    fn on_event_json(&self, json: String) -> Result<(), HostError>;
}

/// Receives only the events the runtime pushes on its own (not results). Mirrors the MC-SDK's
/// `SynchronousEventHandler.executeEvent`. Threads as for [`EventListener`].
#[uniffi::export(foreign)]
pub trait SynchronousEventHandler: Send + Sync {
    fn execute_event(&self, event: Event) -> Result<(), HostError>;
}

/// Why the platform keystore did not wrap or unwrap (mirrors mc-store's `BiometricError`).
/// Never carries key material.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum BiometricError {
    /// The user dismissed the prompt.
    #[error("the biometric prompt was cancelled")]
    Cancelled,
    /// Too many failed tries; the platform refuses for a while.
    #[error("biometrics are locked by the platform (code {platform_code})")]
    Lockout { platform_code: u32 },
    /// The key is gone for good (the biometric set changed).
    #[error("the biometric key was invalidated")]
    KeyInvalidated,
    /// No sensor, no enrolled biometric.
    #[error("biometrics are not available: {message}")]
    NotAvailable { message: String },
    #[error("the biometric platform failed (code {platform_code}): {message}")]
    Failed { platform_code: u32, message: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for BiometricError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        BiometricError::Failed {
            platform_code: 0,
            message: format!("the host's biometric provider threw: {}", error.reason),
        }
    }
}

impl From<BiometricError> for StoreBiometricError {
    fn from(error: BiometricError) -> Self {
        match error {
            BiometricError::Cancelled => StoreBiometricError::Cancelled,
            BiometricError::Lockout { platform_code } => {
                StoreBiometricError::Lockout { platform_code }
            }
            BiometricError::KeyInvalidated => StoreBiometricError::KeyInvalidated,
            BiometricError::NotAvailable { message } => StoreBiometricError::NotAvailable(message),
            BiometricError::Failed {
                platform_code,
                message,
            } => StoreBiometricError::Failed {
                platform_code,
                message,
            },
        }
    }
}

/// The platform key behind mode BIOMETRIC (Android Keystore with
/// `setUserAuthenticationRequired`, or a Secure Enclave key with a biometric access control).
/// The platform key never leaves the platform: the runtime hands it bytes (a per-user data
/// key) to wrap and unwrap. Called on the runtime's storage thread, which waits for the
/// prompt: show it on the UI thread and block this call until the user answers.
#[uniffi::export(foreign)]
pub trait BiometricKeyProvider: Send + Sync {
    /// Creates (or replaces) the key of `user`, bound to the current biometric set.
    fn create_key(&self, user: UserIdentifier) -> Result<(), BiometricError>;
    /// Encrypts `plaintext` under the key of `user`, after a prompt if the platform wants one.
    fn wrap(
        &self,
        user: UserIdentifier,
        plaintext: Vec<u8>,
        prompt: String,
    ) -> Result<Vec<u8>, BiometricError>;
    /// Shows `prompt`, then decrypts what `wrap` returned.
    fn unwrap(
        &self,
        user: UserIdentifier,
        ciphertext: Vec<u8>,
        prompt: String,
    ) -> Result<Vec<u8>, BiometricError>;
    /// Deletes the key of `user`; deleting an absent key does nothing.
    fn delete_key(&self, user: UserIdentifier) -> Result<(), BiometricError>;
}

/// The source of the 256-bit key that wraps the per-user data keys of mode NO (on a phone: a
/// key kept in the platform keystore). Called on the storage thread for every seal and open.
#[uniffi::export(foreign)]
pub trait KeyProvider: Send + Sync {
    /// Exactly 32 bytes. Throw when the key is unavailable (device locked); the request then
    /// fails with a store status instead of crashing.
    fn wrapping_key(&self) -> Result<Vec<u8>, HostError>;
}

fn user_identifier(user: &UserId) -> UserIdentifier {
    UserIdentifier::new(user.tenant_id.clone(), user.user_id.clone())
}

/// [`KeyProvider`] as mc-store's trait. A host failure, or a key of the wrong length, is
/// `KeyUnavailable`: the request fails with a store status, nothing is written.
pub(crate) struct HostKeyProvider(pub Arc<dyn KeyProvider>);

impl mc_runtime::KeyProvider for HostKeyProvider {
    fn wrapping_key(&self) -> Result<SecretBytes, mc_runtime::StoreError> {
        let key =
            self.0
                .wrapping_key()
                .map_err(|error| mc_runtime::StoreError::KeyUnavailable {
                    reason: format!("the host key provider failed: {error}"),
                })?;
        let key = SecretBytes::new(key);
        if key.len() != mc_runtime::KEY_LEN {
            return Err(mc_runtime::StoreError::KeyUnavailable {
                reason: format!(
                    "the host key provider returned {} bytes; it must return {}",
                    key.len(),
                    mc_runtime::KEY_LEN
                ),
            });
        }
        Ok(key)
    }
}

/// [`BiometricKeyProvider`] as mc-store's trait.
pub(crate) struct HostBiometric(pub Arc<dyn BiometricKeyProvider>);

impl mc_runtime::BiometricKeyProvider for HostBiometric {
    fn create_key(&self, user: &UserId) -> Result<(), StoreBiometricError> {
        Ok(self.0.create_key(user_identifier(user))?)
    }

    fn wrap(
        &self,
        user: &UserId,
        plaintext: &SecretBytes,
        prompt: &str,
    ) -> Result<Vec<u8>, StoreBiometricError> {
        Ok(self.0.wrap(
            user_identifier(user),
            plaintext.expose().to_vec(),
            prompt.to_string(),
        )?)
    }

    fn unwrap(
        &self,
        user: &UserId,
        ciphertext: &[u8],
        prompt: &str,
    ) -> Result<SecretBytes, StoreBiometricError> {
        let plaintext = self.0.unwrap(
            user_identifier(user),
            ciphertext.to_vec(),
            prompt.to_string(),
        )?;
        Ok(SecretBytes::new(plaintext))
    }

    fn delete_key(&self, user: &UserId) {
        if let Err(error) = self.0.delete_key(user_identifier(user)) {
            tracing::warn!(%error, "the host could not delete a biometric key; it is unused from now on");
        }
    }
}

/// Adapts a host [`EventListener`] to the runtime's listener trait.
pub(crate) struct ListenerAdapter(pub Arc<dyn EventListener>);

impl mc_runtime::EventListener for ListenerAdapter {
    fn on_event_received(&self, event: &ev::Event) {
        let name = event.type_name();
        if let Err(error) = self.0.on_event_received(event.clone()) {
            tracing::warn!(event = name, %error, "a host event listener threw; it stays registered");
        }
    }
}

/// Adapts a host [`JsonEventListener`].
pub(crate) struct JsonListenerAdapter(pub Arc<dyn JsonEventListener>);

impl mc_runtime::EventListener for JsonListenerAdapter {
    fn on_event_received(&self, event: &ev::Event) {
        let name = event.type_name();
        if let Err(error) = self.0.on_event_json(event.to_json()) {
            tracing::warn!(event = name, %error, "a host JSON listener threw; it stays registered");
        }
    }
}

/// Adapts a host [`SynchronousEventHandler`].
pub(crate) struct HandlerAdapter(pub Arc<dyn SynchronousEventHandler>);

impl mc_runtime::SynchronousEventHandler for HandlerAdapter {
    fn execute_event(&self, event: &ev::Event) {
        let name = event.type_name();
        if let Err(error) = self.0.execute_event(event.clone()) {
            tracing::warn!(event = name, %error, "a host event handler threw; it stays registered");
        }
    }
}
