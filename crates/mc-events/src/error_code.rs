//! The `errorCode` of results and error events: a subsystem prefix, then six digits.
//!
//! | prefix | subsystem |
//! |---|---|
//! | 100 | host input and API use (bad parameter, wrong state, timeout) |
//! | 500 | local security module and store (lockout, store read/write, decryption) |
//! | 800 | backend, IDP and configuration (reachability, TLS, answers, tokens) |
//! | 802 | biometric: `802000000` plus the platform's own code |
//! | 900 | internal faults of the runtime |
//!
//! `0` means no error. [`ErrorCode`] is every named code with the status it goes with and its
//! meaning, declared once with its `pub const`; [`ALL`] lists them as data. `docs/events.md`
//! documents the same list (a test keeps the two in step).

use crate::types::StatusType;

/// Declares every named code once: its `pub const`, its [`ErrorCode`] variant, the status it
/// always goes with, and its one-line meaning.
macro_rules! error_codes {
    ($($(#[$meta:meta])* $name:ident = $code:literal, $variant:ident, $status:ident, $meaning:literal;)*) => {
        $($(#[$meta])* pub const $name: u32 = $code;)*

        /// A named error code. Each goes with one [`StatusType`] (see [`ErrorCode::status`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$meta])* $variant,)*
        }

        impl ErrorCode {
            /// Every named code, in the order of `docs/events.md`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The number in `errorCode`.
            pub const fn code(self) -> u32 {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The name, as in `docs/events.md` and the `pub const`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => stringify!($name),)*
                }
            }

            /// The status a result with this code carries.
            pub const fn status(self) -> StatusType {
                match self {
                    $(ErrorCode::$variant => StatusType::$status,)*
                }
            }

            /// What it means, in one line.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }

        /// Every named code (the biometric range is [`BIOMETRIC_BASE`] plus a platform code).
        pub const ALL: &[ErrorCodeInfo] = &[
            $(ErrorCodeInfo { code: $code, name: stringify!($name), meaning: $meaning },)*
        ];
    };
}

error_codes! {
    /// No error.
    NONE = 0, NoError, Ok, "no error";
    // 100: host input and API use.
    /// A field of the request is missing, has the wrong type, or is out of range.
    INVALID_PARAMETER = 100_000_001, InvalidParameter, InvalidParameter, "a field of the request is missing, has the wrong type, or is out of range";
    /// The request is not valid in the current `sdkState`.
    INVALID_STATE = 100_000_002, InvalidState, InvalidState, "the request is not valid in the current sdkState";
    /// The host's wait for the result ran out (a post with a timeout).
    TIMEOUT = 100_000_003, Timeout, Timeout, "the host's wait for the result ran out";
    /// The request is not a JSON object, or its `type` is missing or unknown.
    MALFORMED_REQUEST = 100_000_004, MalformedRequest, InvalidParameter, "the request is not a JSON object, or its type is missing or unknown";
    /// The request asks for something this version does not support.
    NOT_SUPPORTED = 100_000_005, NotSupported, NotSupported, "the request asks for something this version does not support";
    /// The runtime stopped before it answered the request.
    RUNTIME_STOPPED = 100_000_006, RuntimeStopped, InternalError, "the runtime stopped before it answered the request";
    /// No enrolled user matches the given `userIdentifier`.
    UNKNOWN_USER = 100_000_007, UnknownUser, InvalidUserId, "no enrolled user matches the given userIdentifier";
    /// The user cancelled a prompt (biometric).
    USER_CANCELLED = 100_000_008, UserCancelled, UserCancel, "the user cancelled a prompt (biometric)";
    /// Too many requests are running at once (`RuntimeConfig::max_requests_in_flight`): nothing
    /// was done; retry once some have been answered.
    TOO_MANY_REQUESTS = 100_000_009, TooManyRequests, Failed, "too many requests are running at once; nothing was done, retry later";
    /// A listener fell behind and events were dropped for it (a `WarningEvent` says how many).
    LISTENER_OVERFLOW = 100_000_010, ListenerOverflow, Failed, "a listener fell behind; events were dropped for it (the WarningEvent says how many)";
    /// A listener or synchronous handler panicked (a `WarningEvent` to the others names it); it
    /// stays registered.
    LISTENER_PANICKED = 100_000_011, ListenerPanicked, Failed, "a listener or synchronous handler panicked; it stays registered (the WarningEvent names it)";
    /// The `state` of SetAuthorisationCodeEvent matches no pending authorization request (unknown,
    /// already used, expired, or made before a restart): nothing was redeemed.
    AUTHORIZATION_REQUEST_UNKNOWN = 100_000_012, AuthorizationRequestUnknown, InvalidParameter, "the state matches no pending authorization request (unknown, used, expired or before a restart): create a new one";
    /// The redirect URL is not the redirect URI of its authorization request, or its tenant or
    /// client differ: nothing was redeemed.
    AUTHORIZATION_RESPONSE_MISMATCH = 100_000_013, AuthorizationResponseMismatch, InvalidParameter, "the redirect does not belong to the authorization request (redirect URI, tenant or client differ)";
    /// A StartEvent after the runtime started: nothing changed; the result carries the
    /// current state and users (use RestartEvent to read them again).
    ALREADY_INITIALIZED = 100_000_014, AlreadyInitialized, AlreadyInitialized, "the runtime is already started; nothing changed (the result carries the state and users)";
    /// SwitchWorkspaceEvent names a `tenantId` no enrolled user of this device belongs to:
    /// nothing changed; enroll in it first, or pick one from StartResultEvent.
    UNKNOWN_TENANT = 100_000_015, UnknownTenant, InvalidUserId, "no enrolled user of this device belongs to the tenantId: enroll in it first or pick one from StartResultEvent";
    // 500: local security module and store.
    /// The local store could not be read.
    STORE_READ_FAILED = 500_000_001, StoreReadFailed, NoTokenDataAvailable, "the local store could not be read";
    /// The local store could not be written; nothing was changed.
    STORE_WRITE_FAILED = 500_000_002, StoreWriteFailed, InternalError, "the local store could not be written; nothing was changed";
    /// A stored secret could not be decrypted (wrong key or damaged data).
    DECRYPTION_FAILED = 500_000_003, DecryptionFailed, NoTokenDataAvailable, "a stored secret could not be decrypted";
    /// The key that protects the store is missing or was invalidated by the platform.
    KEY_UNAVAILABLE = 500_000_004, KeyUnavailable, NoTokenDataAvailable, "the key that protects the store is missing or was invalidated";
    /// The store was written by a newer, unknown format version.
    STORE_FORMAT_UNSUPPORTED = 500_000_005, StoreFormatUnsupported, InternalError, "the store was written by a newer, unknown format version";
    /// No usable stored credential for the user: enroll again.
    NO_STORED_CREDENTIAL = 500_000_006, NoStoredCredential, NoTokenDataAvailable, "no usable stored credential for the user: enroll again";
    /// The platform key behind BIOMETRIC was invalidated: use another way to log in, or enroll again.
    BIOMETRIC_KEY_INVALIDATED = 500_000_007, BiometricKeyInvalidated, BiometricKeyInvalidated, "the biometric platform key was invalidated: log in another way or enroll again";
    /// The stored credential was cleared (ClearIamTokenCache CLEAR_OFFLINE or CLEAR_ALL): log in
    /// at the IDP (identified user) or enroll again (anonymous device).
    CREDENTIAL_CLEARED = 500_000_008, CredentialCleared, NoTokenDataAvailable, "the stored credential was cleared (CLEAR_OFFLINE/CLEAR_ALL): log in at the IDP or enroll again";
    /// Too many wrong passwords: retries exceeded.
    RETRIES_EXCEEDED = 500_000_030, RetriesExceeded, PasswordBlocked, "too many wrong passwords: retries exceeded";
    /// The user is locked.
    USER_LOCKED = 500_000_031, UserLocked, PasswordBlocked, "the user is locked";
    /// The password is wrong; retries remain.
    WRONG_PASSWORD = 500_000_032, WrongPassword, InvalidPassword, "the password is wrong; retries remain";
    /// The user is temporarily locked; retry after the delay in the result.
    TEMPORARILY_LOCKED = 500_000_033, TemporarilyLocked, TemporaryLocked, "the user is temporarily locked; retry after the delay";
    /// Too many wrong PINs (mode PIN): the credential was destroyed; enroll again.
    PIN_RETRIES_EXCEEDED = 500_000_034, PinRetriesExceeded, PinBlocked, "too many wrong PINs: the credential was destroyed, enroll again";
    // 800: backend, IDP and configuration.
    /// The IDP or server could not be reached (DNS, connection refused, no route).
    SERVER_NOT_REACHABLE = 800_000_001, ServerNotReachable, NotReachable, "the IDP or server could not be reached";
    /// The IDP or server did not answer in time.
    SERVER_TIMEOUT = 800_000_002, ServerTimeout, NotReachable, "the IDP or server did not answer in time";
    /// The TLS handshake failed (certificate, pinning or protocol).
    TLS_FAILED = 800_000_003, TlsFailed, Failed, "the TLS handshake failed";
    /// The IDP's answer could not be understood (not the expected JSON or fields).
    INVALID_RESPONSE = 800_000_004, InvalidResponse, Failed, "the IDP's answer could not be understood";
    /// A token failed verification (signature, issuer, audience, expiry).
    INVALID_TOKEN = 800_000_005, InvalidToken, InvalidToken, "a token failed verification (signature, issuer, audience, expiry)";
    /// The IDP refused the request (HTTP 401/403, `access_denied`, `unauthorized_client`).
    ACCESS_DENIED = 800_000_006, AccessDenied, AccessDenied, "the IDP refused the request";
    /// The device's registration is gone at the IDP (`invalid_client`): enroll again.
    REGISTRATION_INVALID = 800_000_007, RegistrationInvalid, AccessDenied, "the device's registration is gone at the IDP: enroll again";
    /// The IDP failed with a server error (HTTP 5xx, `server_error`, `temporarily_unavailable`).
    IDP_SERVER_ERROR = 800_000_008, IdpServerError, ServerCancel, "the IDP failed with a server error";
    /// The configuration is unusable (bad server URL, discovery lacks an endpoint, unknown tenant).
    INVALID_CONFIGURATION = 800_000_009, InvalidConfiguration, Failed, "the configuration is unusable (server URL, discovery, tenant)";
    /// The request's URL may not receive the token of its audience (an origin outside the
    /// audience's allowed origins, or a user name or password in the URL); nothing was sent.
    TOKEN_ORIGIN_NOT_ALLOWED = 800_000_020, TokenOriginNotAllowed, Failed, "the URL may not receive the token of its audience; nothing was sent";
    /// The IDP does not allow the requested audience for this client (`invalid_target`): fix
    /// the `audience` (or the IDP's configuration of it); retrying the same one will not help.
    AUDIENCE_NOT_ALLOWED = 800_000_021, AudienceNotAllowed, InvalidParameter, "the IDP does not allow the requested audience (invalid_target): fix the audience";
    /// The IDP answered the authorization request with `error=access_denied`.
    AUTHORIZATION_DENIED = 800_000_022, AuthorizationDenied, AccessDenied, "the IDP denied the authorization (error=access_denied)";
    /// The user cancelled the login at the IDP (`access_denied` with a cancel hint).
    AUTHORIZATION_CANCELLED = 800_000_023, AuthorizationCancelled, UserCancel, "the user cancelled the login at the IDP";
    /// The IDP needs an interactive login (`login_required`, `interaction_required`,
    /// `consent_required`, `account_selection_required`): open the login page without `prompt=none`.
    IDP_INTERACTION_REQUIRED = 800_000_024, IdpInteractionRequired, LoginRequired, "the IDP needs an interactive login: open its login page";
    /// The IDP answered the authorization request with another `error`.
    AUTHORIZATION_FAILED = 800_000_025, AuthorizationFailed, Failed, "the IDP answered the authorization request with an error";
    /// The authorization response names another issuer (RFC 9207 `iss`), or lacks it where the
    /// IDP promised it: a mix-up attempt; nothing was redeemed.
    AUTHORIZATION_ISSUER_MISMATCH = 800_000_026, AuthorizationIssuerMismatch, Failed, "the authorization response comes from another issuer (RFC 9207): nothing was redeemed";
    /// The IDP refused the authorization code (expired, used, for another client or verifier).
    AUTHORIZATION_CODE_REJECTED = 800_000_027, AuthorizationCodeRejected, LoginRequired, "the IDP refused the authorization code: create a new authorization request";
    /// The IDP refused the stored refresh token (`invalid_grant`: revoked, expired, rotated):
    /// the user must log in at the IDP again.
    REFRESH_TOKEN_REJECTED = 800_000_028, RefreshTokenRejected, LoginRequired, "the IDP refused the stored refresh token: log in at the IDP again";
    /// A resource asked for a stronger or fresher authentication (RFC 9470
    /// `insufficient_user_authentication`): log in at the IDP with the `acrValues`/`maxAge` of
    /// the IdpLoginRequiredEvent.
    STEP_UP_REQUIRED = 800_000_029, StepUpRequired, LoginRequired, "the resource wants a stronger authentication (RFC 9470): log in with the acrValues/maxAge given";
    /// The ID token failed verification (signature, alg, iss, aud, azp, nonce, exp, iat).
    INVALID_ID_TOKEN = 800_000_030, InvalidIdToken, InvalidToken, "the ID token failed verification (signature, alg, iss, aud, azp, nonce, exp)";
    /// A verified token names another user (`sub`) than the one this device stored (the
    /// IDP swapped identities): nothing was stored and the user is not logged in.
    SUBJECT_CHANGED = 800_000_031, SubjectChanged, InvalidToken, "the IDP's token names another user (sub) than the stored one: nothing was stored; delete this user and enroll again";
    // 802: biometric.
    /// Base of the biometric codes: `802000000` plus the platform's own code.
    BIOMETRIC_BASE = 802_000_000, BiometricBase, Failed, "biometric failure; add the platform's own code";
    // 900: internal.
    /// An internal fault of the runtime; the details are in `errorDescription` and the log.
    INTERNAL_ERROR = 900_000_001, InternalError, InternalError, "an internal fault of the runtime";
    /// A part of the runtime (an actor) stopped unexpectedly while handling the request.
    COMPONENT_FAILED = 900_000_002, ComponentFailed, InternalError, "a part of the runtime stopped unexpectedly";
}

impl ErrorCode {
    /// The named code with this number, if any (biometric codes other than the base are not
    /// named: see [`biometric`]).
    pub fn from_code(code: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code)
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        code.code()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The biometric code for a platform's own code (kept within the six digits of the subsystem).
pub const fn biometric(platform_code: u32) -> u32 {
    let code = if platform_code > 999_999 {
        999_999
    } else {
        platform_code
    };
    BIOMETRIC_BASE + code
}

/// One named code: its value, its constant's name and what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCodeInfo {
    pub code: u32,
    pub name: &'static str,
    pub meaning: &'static str,
}

/// The named code with this value, if any (biometric codes other than the base are not named).
pub fn describe(code: u32) -> Option<&'static ErrorCodeInfo> {
    ALL.iter().find(|info| info.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_their_subsystem() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.code, b.code, "{} and {} share a code", a.name, b.name);
            }
            if a.code != NONE {
                let prefix = a.code / 1_000_000;
                assert!(
                    [100, 500, 800, 802, 900].contains(&prefix),
                    "{} has prefix {prefix}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn the_enum_and_the_constants_are_one_table() {
        assert_eq!(ErrorCode::ALL.len(), ALL.len());
        for (code, info) in ErrorCode::ALL.iter().zip(ALL) {
            assert_eq!((code.code(), code.name()), (info.code, info.name));
            assert_eq!(ErrorCode::from_code(info.code), Some(*code));
        }
        assert_eq!(ErrorCode::InvalidState.code(), INVALID_STATE);
        assert_eq!(ErrorCode::InvalidState.status(), StatusType::InvalidState);
        assert_eq!(ErrorCode::NoError.status(), StatusType::Ok);
        // only "no error" goes with OK
        for code in ErrorCode::ALL.iter().filter(|c| **c != ErrorCode::NoError) {
            assert!(!code.status().is_ok(), "{code} goes with OK");
        }
        assert_eq!(ErrorCode::from_code(123), None);
        assert_eq!(ErrorCode::from_code(biometric(7)), None);
    }

    #[test]
    fn biometric_stays_in_its_range() {
        assert_eq!(biometric(7), 802_000_007);
        assert_eq!(biometric(u32::MAX), 802_999_999);
        assert_eq!(
            describe(TEMPORARILY_LOCKED).map(|i| i.name),
            Some("TEMPORARILY_LOCKED")
        );
    }
}
