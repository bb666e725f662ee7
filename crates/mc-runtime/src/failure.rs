//! [`Failure`]: why a request did not succeed, as the app will read it in the result event
//! (status, error code, description). Every lower-level error is mapped here, in one place, so
//! the table of statuses in `docs/events.md` can be checked against one file.

use mc_events::{error_code, ResultInfo, StatusType};
use mc_oidc::{OidcError, OidcErrorKind};
use mc_store::StoreError;

/// A failed request: what the app sees, and what it should do next (in `description`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusType,
    pub code: u32,
    pub description: String,
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

    /// Whether this failure means the IDP could not be reached (for ServerConnection events).
    pub fn is_unreachable(&self) -> bool {
        self.code == error_code::SERVER_NOT_REACHABLE || self.code == error_code::SERVER_TIMEOUT
    }

    /// Maps a protocol error in `step` to the status the app gets.
    pub fn from_oidc(error: &OidcError, step: Step) -> Self {
        use OidcErrorKind as K;
        let description = error.to_string();
        let (status, code) = match (error.kind(), step) {
            (K::NotReachable, _) => (StatusType::NotReachable, error_code::SERVER_NOT_REACHABLE),
            (K::Timeout, _) => (StatusType::NotReachable, error_code::SERVER_TIMEOUT),
            (K::Tls, _) => (StatusType::NotReachable, error_code::TLS_FAILED),
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
            _ => (StatusType::InternalError, error_code::STORE_WRITE_FAILED),
        };
        Self::new(status, code, description)
    }
}
