//! [`Failure`]: why a request did not succeed, as the app will read it in the result event
//! (status, error code, description, and what to do next as data: `nextAction`). Every
//! lower-level error is mapped here, in one place, so the table of statuses in
//! `docs/events.md` can be checked against one file.

use mc_events::{error_code, NextAction, ResultInfo, StatusType, DEFAULT_RETRY_SECS};
use mc_oidc::{OidcError, OidcErrorKind};
use mc_store::{BiometricError, StoreError, UnlockError};

/// A failed request: what the app sees, and what it should do next (in `description` for
/// people, in `next_action` for the app).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusType,
    pub code: u32,
    pub description: String,
    /// The result's `nextAction`; by default the one of the status and code
    /// ([`NextAction::default_for`]), replaced where the typed error knows more.
    pub next_action: Option<NextAction>,
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
            next_action: NextAction::default_for(status, code),
            retry: None,
        }
    }

    /// Replaces what the app is told to do next.
    pub fn with_next_action(mut self, next_action: Option<NextAction>) -> Self {
        self.next_action = next_action;
        self
    }

    /// INVALID_PARAMETER naming the request's field at fault (JSON name): the description
    /// reads "field `x`: why", and nextAction is FIX_FIELD x.
    pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Self {
        Self::invalid_parameter(format!("field `{field}`: {why}")).with_next_action(Some(
            NextAction::FixField {
                field: field.to_string(),
            },
        ))
    }

    /// A part of the runtime (an actor, the store's thread) stopped while the request was in
    /// it: COMPONENT_FAILED. The runtime cannot go on; the app starts a new one.
    pub fn component_stopped(component: &str) -> Self {
        Self::new(
            StatusType::InternalError,
            error_code::COMPONENT_FAILED,
            format!(
                "the {component} stopped unexpectedly; shut this runtime down and start a new one"
            ),
        )
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

    /// The same failure of a PIN unlock: the block is PIN_BLOCKED (PIN_RETRIES_EXCEEDED);
    /// a wrong PIN and a temporary lock keep their status and code (as the MC-SDK's), and
    /// every description says PIN where the store's says password.
    pub fn for_pin(self) -> Self {
        let description = self
            .description
            .replace("passwords", "PINs")
            .replace("password", "PIN");
        if self.code == error_code::RETRIES_EXCEEDED {
            return Self {
                status: StatusType::PinBlocked,
                code: error_code::PIN_RETRIES_EXCEEDED,
                description,
                ..self
            };
        }
        Self {
            description,
            ..self
        }
    }

    /// The common part of the result event.
    pub fn info(&self) -> ResultInfo {
        let mut info = ResultInfo::error(self.status, self.code, self.description.clone());
        info.next_action = self.next_action.clone();
        info
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
            // The audience the app asked for is not allowed: the app's field is wrong.
            (K::BadRequest, Step::Exchange) if error.cause() == &OidcError::InvalidTarget => (
                StatusType::InvalidParameter,
                error_code::AUDIENCE_NOT_ALLOWED,
            ),
            // The subject token (the device token) was not accepted: a new login gets one.
            (K::BadRequest, Step::Exchange) if error.cause() == &OidcError::InvalidGrant => {
                (StatusType::InvalidToken, error_code::INVALID_TOKEN)
            }
            // Keycloak answers an audience it does not know with `invalid_request`: in an
            // exchange the audience is the one thing the app chose.
            (K::BadRequest, Step::Exchange) if is_invalid_request(error) => (
                StatusType::InvalidParameter,
                error_code::AUDIENCE_NOT_ALLOWED,
            ),
            // Any other refusal (`use_dpop_nonce` twice, `unsupported_grant_type`, ...): the
            // IDP's configuration, not the app's request.
            (K::BadRequest, Step::Exchange) => {
                (StatusType::AccessDenied, error_code::ACCESS_DENIED)
            }
            (K::BadRequest, _) => (StatusType::Failed, error_code::ACCESS_DENIED),
            (K::ServerError, _) => (StatusType::ServerCancel, error_code::IDP_SERVER_ERROR),
            (K::InvalidResponse, _) => (StatusType::Failed, error_code::INVALID_RESPONSE),
            (K::IssuerMismatch | K::Config, _) => {
                (StatusType::Failed, error_code::INVALID_CONFIGURATION)
            }
            (K::InvalidToken, _) => (StatusType::InvalidToken, error_code::INVALID_TOKEN),
        };
        let next_action = match (error.cause(), step) {
            // The IDP's own delay when it named one.
            (
                OidcError::Unavailable {
                    retry_after_secs, ..
                },
                _,
            ) => Some(NextAction::RetryAfter {
                seconds: retry_after_secs.unwrap_or(DEFAULT_RETRY_SECS),
            }),
            (OidcError::InvalidTarget, _) => Some(NextAction::FixField {
                field: "audience".to_string(),
            }),
            (OidcError::Rejected { .. }, Step::Exchange) if is_invalid_request(error) => {
                Some(NextAction::FixField {
                    field: "audience".to_string(),
                })
            }
            // The subject token is not acceptable any more: a fresh login gets a new one.
            (OidcError::InvalidGrant, _) => Some(NextAction::LogIn),
            (OidcError::Rejected { .. }, _) => Some(NextAction::ContactSupport),
            // A registration refused at enrollment is the IDP's policy: enrolling again will
            // not help.
            (OidcError::InvalidClient, Step::Enroll | Step::DeleteRegistration) => {
                Some(NextAction::ContactSupport)
            }
            _ => NextAction::default_for(status, code),
        };
        Self::new(status, code, description).with_next_action(next_action)
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
            // The storage actor lost its store: a component of the runtime is gone.
            StoreError::Closed => return Self::component_stopped("store"),
            StoreError::Unsupported { .. } => (StatusType::NotSupported, error_code::NOT_SUPPORTED),
            StoreError::NotFound { .. } => (StatusType::InvalidUserId, error_code::UNKNOWN_USER),
            // A login's token named a user another record already has (the IDP swapped ids).
            StoreError::UserIdTaken { .. } => {
                (StatusType::InvalidToken, error_code::SUBJECT_CHANGED)
            }
            // A biometric prompt while storing (enrollment, mode switch) was refused.
            StoreError::Biometric(biometric) => return Self::from_biometric(biometric),
            StoreError::NeedsUnlock { .. } => {
                return Self::new(
                    StatusType::InvalidParameter,
                    error_code::INVALID_PARAMETER,
                    description,
                )
                .with_next_action(Some(NextAction::Unlock))
            }
            StoreError::InvalidInput { .. } => {
                (StatusType::InvalidParameter, error_code::INVALID_PARAMETER)
            }
            _ => (StatusType::InternalError, error_code::STORE_WRITE_FAILED),
        };
        Self::new(status, code, description)
    }
}

/// Identified users (`actors::identified`): the steps of the authorization code flow.
impl Failure {
    /// An authorization response that is not a code to redeem.
    pub fn from_authorization(error: &mc_oidc::AuthorizationError) -> Self {
        use mc_oidc::AuthorizationError as A;
        let description = error.to_string();
        let (status, code) = match error {
            A::Denied { .. } => (StatusType::AccessDenied, error_code::AUTHORIZATION_DENIED),
            A::Cancelled { .. } => (StatusType::UserCancel, error_code::AUTHORIZATION_CANCELLED),
            A::InteractionRequired { .. } => (
                StatusType::LoginRequired,
                error_code::IDP_INTERACTION_REQUIRED,
            ),
            A::Other { .. } => (StatusType::Failed, error_code::AUTHORIZATION_FAILED),
            A::IssuerMismatch => (
                StatusType::Failed,
                error_code::AUTHORIZATION_ISSUER_MISMATCH,
            ),
            A::Malformed(_) => return Self::invalid_field("redirectUrl", description),
        };
        Self::new(status, code, description)
    }

    /// A failed code redemption: `invalid_grant` is a code the IDP refuses (expired, used,
    /// another client's, a wrong verifier), an invalid token an ID token that failed.
    pub fn from_code_redemption(error: &OidcError) -> Self {
        match error.cause() {
            OidcError::InvalidGrant => Self::new(
                StatusType::LoginRequired,
                error_code::AUTHORIZATION_CODE_REJECTED,
                format!("{error}; create a new authorization request"),
            ),
            OidcError::InvalidToken(_) => Self::new(
                StatusType::InvalidToken,
                error_code::INVALID_ID_TOKEN,
                error.to_string(),
            ),
            _ => Self::from_oidc(error, Step::Login),
        }
    }

    /// A failed refresh at offline login: `invalid_grant` means the stored refresh token is
    /// revoked, expired or rotated away: the user must log in at the IDP again.
    pub fn from_refresh(error: &OidcError) -> Self {
        match error.cause() {
            OidcError::InvalidGrant => Self::new(
                StatusType::LoginRequired,
                error_code::REFRESH_TOKEN_REJECTED,
                format!("{error}; open the IDP's login page (CreateAuthorizationRequestEvent)"),
            ),
            OidcError::InvalidToken(_) => Self::new(
                StatusType::InvalidToken,
                error_code::INVALID_ID_TOKEN,
                error.to_string(),
            ),
            _ => Self::from_oidc(error, Step::Login),
        }
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
                let (status, code, next_action) = match retry_after_secs {
                    Some(seconds) => (
                        StatusType::TemporaryLocked,
                        error_code::TEMPORARILY_LOCKED,
                        NextAction::RetryAfter { seconds: *seconds },
                    ),
                    None => (
                        StatusType::InvalidPassword,
                        error_code::WRONG_PASSWORD,
                        NextAction::Unlock,
                    ),
                };
                Self {
                    next_action: Some(next_action),
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
                next_action: Some(NextAction::RetryAfter {
                    seconds: *retry_after_secs,
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
            UnlockError::CredentialCleared => Self::new(
                StatusType::NoTokenDataAvailable,
                error_code::CREDENTIAL_CLEARED,
                description,
            ),
            UnlockError::WrongUnlockMethod { .. } => Self::invalid_field("password", description),
            UnlockError::Biometric(biometric) => Self::from_biometric(biometric),
            UnlockError::Store(store) => Self::from_store(store),
        }
    }

    fn from_biometric(error: &BiometricError) -> Self {
        let description = error.to_string();
        let (status, code) = match error {
            BiometricError::Cancelled => (StatusType::UserCancel, error_code::USER_CANCELLED),
            // The platform names no delay; its lockouts last about 30 s.
            BiometricError::Lockout { platform_code } => {
                return Self::new(
                    StatusType::TemporaryLocked,
                    error_code::biometric(*platform_code),
                    description,
                )
                .with_next_action(Some(NextAction::RetryAfter {
                    seconds: DEFAULT_RETRY_SECS,
                }))
            }
            BiometricError::KeyInvalidated => (
                StatusType::BiometricKeyInvalidated,
                error_code::BIOMETRIC_KEY_INVALIDATED,
            ),
            BiometricError::NotAvailable(_) => {
                (StatusType::NotSupported, error_code::NOT_SUPPORTED)
            }
            BiometricError::Failed { platform_code, .. } => {
                return Self::new(
                    StatusType::Failed,
                    error_code::biometric(*platform_code),
                    description,
                )
                .with_next_action(Some(NextAction::Unlock))
            }
        };
        Self::new(status, code, description)
    }
}

/// The IDP refused with the OAuth error `invalid_request`.
fn is_invalid_request(error: &OidcError) -> bool {
    matches!(error.cause(), OidcError::Rejected { code } if code == "invalid_request")
}
