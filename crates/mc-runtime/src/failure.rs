//! [`Failure`]: why a request did not succeed, as the app will read it in the result event
//! (status, error code, description). Every lower-level error is mapped here, in one place, so
//! the table of statuses in `docs/events.md` can be checked against one file.

use mc_events::{error_code, ResultInfo, StatusType};
use mc_oidc::{OidcError, OidcErrorKind};
use mc_store::{BiometricError, StoreError, UnlockError};

/// A failed request: what the app sees, and what it should do next (in `description`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusType,
    pub code: u32,
    pub description: String,
    /// For wrong passwords and locks: what OfflineLoginResultEvent reports as
    /// `retryCounter` (attempts left before the credential is destroyed) and `retryDelay`.
    pub retry: Option<Retry>,
}

/// The retry counter and delay of a failed password or biometric unlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    pub attempts_left: Option<u32>,
    pub delay_secs: Option<u64>,
}

/// The protocol step a failure happened in; the same IDP answer means different things in
/// different steps (an `invalid_client` at enrollment is a refused registration, at login it
/// means the registration is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Enroll,
    Login,
    Exchange,
    DeleteRegistration,
}

impl Failure {
    pub fn new(status: StatusType, code: u32, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry: None,
        }
    }

    pub fn invalid_parameter(description: impl Into<String>) -> Self {
        Self::new(
            StatusType::InvalidParameter,
            error_code::INVALID_PARAMETER,
            description,
        )
    }

    pub fn not_supported(description: impl Into<String>) -> Self {
        Self::new(
            StatusType::NotSupported,
            error_code::NOT_SUPPORTED,
            description,
        )
    }

    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(
            StatusType::InternalError,
            error_code::INTERNAL_ERROR,
            description,
        )
    }

    pub fn unknown_user(description: impl Into<String>) -> Self {
        Self::new(
            StatusType::InvalidUserId,
            error_code::UNKNOWN_USER,
            description,
        )
    }

    /// The common part of the result event.
    pub fn info(&self) -> ResultInfo {
        ResultInfo::error(self.status, self.code, self.description.clone())
    }

    /// Maps a protocol error in `step` to the status the app gets.
    pub fn from_oidc(error: &OidcError, step: Step) -> Self {
        use OidcErrorKind as K;
        let description = error.to_string();
        let (status, code) = match (error.kind(), step) {
            (K::NotReachable, _) => (StatusType::NotReachable, error_code::SERVER_NOT_REACHABLE),
            (K::Timeout, _) => (StatusType::NotReachable, error_code::SERVER_TIMEOUT),
            // Not an outage: an untrusted or wrongly pinned certificate may be a man in the
            // middle, and retrying will not help until the certificate or the pins change.
            (K::Tls, _) => (StatusType::Failed, error_code::TLS_FAILED),
            // The registration is gone at the IDP: the stored credential is proven unusable.
            (K::InvalidClient, Step::Login | Step::Exchange) => (
                StatusType::OfflineNotActivated,
                error_code::REGISTRATION_INVALID,
            ),
            (K::InvalidClient, Step::Enroll | Step::DeleteRegistration) => {
                (StatusType::AccessDenied, error_code::REGISTRATION_INVALID)
            }
            (K::AccessDenied, _) => (StatusType::AccessDenied, error_code::ACCESS_DENIED),
            (K::BadRequest, Step::Exchange) => {
                (StatusType::InvalidParameter, error_code::ACCESS_DENIED)
            }
            (K::BadRequest, _) => (StatusType::Failed, error_code::ACCESS_DENIED),
            (K::ServerError, _) => (StatusType::ServerCancel, error_code::IDP_SERVER_ERROR),
            (K::InvalidResponse, _) => (StatusType::Failed, error_code::INVALID_RESPONSE),
            (K::IssuerMismatch | K::Config, _) => {
                (StatusType::Failed, error_code::INVALID_CONFIGURATION)
            }
            (K::InvalidToken, _) => (StatusType::InvalidToken, error_code::INVALID_TOKEN),
        };
        Self::new(status, code, description)
    }

    /// Maps a store error to the status the app gets.
    pub fn from_store(error: &StoreError) -> Self {
        let description = error.to_string();
        let (status, code) = match error {
            StoreError::DecryptionFailed { .. } => (
                StatusType::NoTokenDataAvailable,
                error_code::DECRYPTION_FAILED,
            ),
            StoreError::Corrupt { .. } => (
                StatusType::NoTokenDataAvailable,
                error_code::STORE_READ_FAILED,
            ),
            StoreError::KeyUnavailable { .. } => (
                StatusType::NoTokenDataAvailable,
                error_code::KEY_UNAVAILABLE,
            ),
            StoreError::NewerSchema { .. } => (
                StatusType::InternalError,
                error_code::STORE_FORMAT_UNSUPPORTED,
            ),
            StoreError::Unsupported { .. } => (StatusType::NotSupported, error_code::NOT_SUPPORTED),
            StoreError::NotFound { .. } => (StatusType::InvalidUserId, error_code::UNKNOWN_USER),
            // A biometric prompt while storing (enrollment, mode switch) was refused.
            StoreError::Biometric(biometric) => return Self::from_biometric(biometric),
            StoreError::NeedsUnlock { .. } => {
                (StatusType::InvalidParameter, error_code::INVALID_PARAMETER)
            }
            StoreError::InvalidInput { .. } => {
                (StatusType::InvalidParameter, error_code::INVALID_PARAMETER)
            }
            _ => (StatusType::InternalError, error_code::STORE_WRITE_FAILED),
        };
        Self::new(status, code, description)
    }
}

impl Failure {
    /// Maps a failed unlock (password, biometric, store) to the status the app gets.
    pub fn from_unlock(error: &UnlockError) -> Self {
        let description = error.to_string();
        match error {
            UnlockError::WrongPassword {
                attempts_left_before_block,
                retry_after_secs,
                ..
            } => {
                // The failure that starts a lock is reported as the lock.
                let (status, code) = match retry_after_secs {
                    Some(_) => (StatusType::TemporaryLocked, error_code::TEMPORARILY_LOCKED),
                    None => (StatusType::InvalidPassword, error_code::WRONG_PASSWORD),
                };
                Self {
                    retry: Some(Retry {
                        attempts_left: Some(*attempts_left_before_block),
                        delay_secs: *retry_after_secs,
                    }),
                    ..Self::new(status, code, description)
                }
            }
            UnlockError::TemporarilyLocked {
                retry_after_secs, ..
            } => Self {
                retry: Some(Retry {
                    attempts_left: None,
                    delay_secs: Some(*retry_after_secs),
                }),
                ..Self::new(
                    StatusType::TemporaryLocked,
                    error_code::TEMPORARILY_LOCKED,
                    description,
                )
            },
            UnlockError::Blocked => Self {
                retry: Some(Retry {
                    attempts_left: Some(0),
                    delay_secs: None,
                }),
                ..Self::new(
                    StatusType::PasswordBlocked,
                    error_code::RETRIES_EXCEEDED,
                    description,
                )
            },
            UnlockError::WrongUnlockMethod { .. } => {
                Self::invalid_parameter(format!("field `password`: {description}"))
            }
            UnlockError::Biometric(biometric) => Self::from_biometric(biometric),
            UnlockError::Store(store) => Self::from_store(store),
        }
    }

    fn from_biometric(error: &BiometricError) -> Self {
        let description = error.to_string();
        let (status, code) = match error {
            BiometricError::Cancelled => (StatusType::UserCancel, error_code::USER_CANCELLED),
            BiometricError::Lockout { platform_code } => (
                StatusType::TemporaryLocked,
                error_code::biometric(*platform_code),
            ),
            BiometricError::KeyInvalidated => (
                StatusType::BiometricKeyInvalidated,
                error_code::BIOMETRIC_KEY_INVALIDATED,
            ),
            BiometricError::NotAvailable(_) => {
                (StatusType::NotSupported, error_code::NOT_SUPPORTED)
            }
            BiometricError::Failed { platform_code, .. } => {
                (StatusType::Failed, error_code::biometric(*platform_code))
            }
        };
        Self::new(status, code, description)
    }
}
