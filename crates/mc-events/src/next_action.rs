//! Which [`NextAction`] a non-OK result carries when nothing more specific is known: one per
//! status or error code ([`NextAction::default_for`]), and the request to send first after a
//! refusal in a state ([`NextAction::after_refusal`]). The runtime overrides the default where
//! its typed error knows more (the server's `Retry-After`, the field at fault).

use crate::error_code;
use crate::request::RequestKind;
use crate::types::{NextAction, SdkState, StatusType};

/// Seconds to wait before retrying when the cause is passing but nobody named a delay (an
/// unreachable or failing IDP without `Retry-After`).
pub const DEFAULT_RETRY_SECS: u64 = 30;

/// Seconds to wait after TOO_MANY_REQUESTS or a refusal while another request runs: the
/// running ones are answered within moments.
pub const BUSY_RETRY_SECS: u64 = 1;

impl NextAction {
    /// What to do after a result with `status` and `code` when nothing more specific is known;
    /// `None` for OK and where the app cannot be told more than the description says.
    pub fn default_for(status: StatusType, code: u32) -> Option<NextAction> {
        // Identified users: the next step is the IDP's login page, not OfflineLogin.
        if matches!(
            code,
            error_code::AUTHORIZATION_CODE_REJECTED
                | error_code::REFRESH_TOKEN_REJECTED
                | error_code::STEP_UP_REQUIRED
                | error_code::IDP_INTERACTION_REQUIRED
                | error_code::CREDENTIAL_CLEARED
        ) {
            return Some(NextAction::LogIn);
        }
        let by_status = match status {
            StatusType::Ok => return None,
            StatusType::LoginRequired => Some(NextAction::SendFirst {
                request_type: RequestKind::OfflineLogin.name().to_string(),
            }),
            StatusType::InvalidPassword | StatusType::UserCancel => Some(NextAction::Unlock),
            StatusType::PasswordBlocked
            | StatusType::PinBlocked
            | StatusType::OfflineNotActivated
            | StatusType::NoTokenDataAvailable
            | StatusType::BiometricKeyInvalidated => Some(NextAction::EnrollAgain),
            _ => None,
        };
        by_status.or_else(|| Self::for_code(code))
    }

    fn for_code(code: u32) -> Option<NextAction> {
        use error_code::*;
        let retry = |seconds| Some(NextAction::RetryAfter { seconds });
        let fix = |field: &str| {
            Some(NextAction::FixField {
                field: field.to_string(),
            })
        };
        match code {
            UNKNOWN_USER => fix("userIdentifier"),
            UNKNOWN_TENANT => fix("tenantId"),
            TOKEN_ORIGIN_NOT_ALLOWED => fix("fullUrl"),
            AUDIENCE_NOT_ALLOWED => fix("audience"),
            USER_CANCELLED | WRONG_PASSWORD => Some(NextAction::Unlock),
            TOO_MANY_REQUESTS => retry(BUSY_RETRY_SECS),
            SERVER_NOT_REACHABLE | SERVER_TIMEOUT | IDP_SERVER_ERROR | STORE_WRITE_FAILED => {
                retry(DEFAULT_RETRY_SECS)
            }
            STORE_READ_FAILED
            | DECRYPTION_FAILED
            | KEY_UNAVAILABLE
            | NO_STORED_CREDENTIAL
            | BIOMETRIC_KEY_INVALIDATED
            | RETRIES_EXCEEDED
            | PIN_RETRIES_EXCEEDED
            | REGISTRATION_INVALID => Some(NextAction::EnrollAgain),
            INVALID_TOKEN | INVALID_ID_TOKEN => Some(NextAction::LogIn),
            AUTHORIZATION_REQUEST_UNKNOWN => fix("state"),
            AUTHORIZATION_RESPONSE_MISMATCH => fix("redirectUrl"),
            STORE_FORMAT_UNSUPPORTED
            | USER_LOCKED
            | TLS_FAILED
            | INVALID_RESPONSE
            | ACCESS_DENIED
            | INVALID_CONFIGURATION
            | INTERNAL_ERROR
            | COMPONENT_FAILED => Some(NextAction::ContactSupport),
            _ => None,
        }
    }

    /// What to do after `kind` was refused in `state`: the request that leads to a state where
    /// it is valid, or (when `kind` is valid in `state` and was refused only because a
    /// state-changing request is running) retry shortly. `None` when no request helps (a
    /// second StartEvent).
    pub fn after_refusal(state: SdkState, kind: RequestKind) -> Option<NextAction> {
        if kind.is_valid_in(state) {
            return Some(NextAction::RetryAfter {
                seconds: BUSY_RETRY_SECS,
            });
        }
        let first = match (state, kind) {
            (_, RequestKind::Start) => return None,
            (SdkState::Uninitialised, _) => RequestKind::Start,
            (SdkState::ActivationRequired, _) => RequestKind::EnrollAnonymousUser,
            (SdkState::LoginRequired, _) => RequestKind::OfflineLogin,
            (SdkState::Unidentified, _) => RequestKind::DeleteUser,
            // Nothing is refused while logged in but StartEvent.
            (SdkState::LoggedIn, _) => return None,
        };
        Some(NextAction::SendFirst {
            request_type: first.name().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_names_a_request_that_makes_the_refused_one_valid() {
        for state in [
            SdkState::Uninitialised,
            SdkState::ActivationRequired,
            SdkState::LoginRequired,
            SdkState::LoggedIn,
            SdkState::Unidentified,
        ] {
            for kind in RequestKind::ALL.iter().copied() {
                match NextAction::after_refusal(state, kind) {
                    Some(NextAction::SendFirst { request_type }) => {
                        assert!(!kind.is_valid_in(state));
                        assert!(
                            RequestKind::ALL
                                .iter()
                                .any(|k| k.name() == request_type && k.is_valid_in(state)),
                            "{request_type} is not valid in {state:?}"
                        );
                    }
                    Some(NextAction::RetryAfter { .. }) => assert!(kind.is_valid_in(state)),
                    Some(other) => panic!("unexpected {other:?}"),
                    None => assert!(kind == RequestKind::Start || state == SdkState::LoggedIn),
                }
            }
        }
    }

    #[test]
    fn ok_has_no_next_action_and_codes_override_nothing_specific() {
        assert_eq!(NextAction::default_for(StatusType::Ok, 0), None);
        assert_eq!(
            NextAction::default_for(StatusType::Failed, error_code::TOO_MANY_REQUESTS),
            Some(NextAction::RetryAfter {
                seconds: BUSY_RETRY_SECS
            })
        );
        assert_eq!(
            NextAction::default_for(StatusType::PasswordBlocked, error_code::RETRIES_EXCEEDED),
            Some(NextAction::EnrollAgain)
        );
        assert_eq!(
            NextAction::default_for(StatusType::InvalidParameter, error_code::INVALID_PARAMETER),
            None
        );
    }
}
