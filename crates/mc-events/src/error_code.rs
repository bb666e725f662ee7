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
//! `0` means no error. [`ALL`] lists every named code with its meaning; `docs/events.md`
//! documents the same list (a test keeps the two in step).

/// No error.
pub const NONE: u32 = 0;

// 100: host input and API use.
/// A field of the request is missing, has the wrong type, or is out of range.
pub const INVALID_PARAMETER: u32 = 100_000_001;
/// The request is not valid in the current `sdkState`.
pub const INVALID_STATE: u32 = 100_000_002;
/// The host's wait for the result ran out (a post with a timeout).
pub const TIMEOUT: u32 = 100_000_003;
/// The request is not a JSON object, or its `type` is missing or unknown.
pub const MALFORMED_REQUEST: u32 = 100_000_004;
/// The request asks for something this version does not support.
pub const NOT_SUPPORTED: u32 = 100_000_005;
/// The runtime stopped before it answered the request.
pub const RUNTIME_STOPPED: u32 = 100_000_006;
/// The user cancelled a prompt (biometric).
pub const USER_CANCELLED: u32 = 100_000_008;
/// No enrolled user matches the given `userIdentifier`.
pub const UNKNOWN_USER: u32 = 100_000_007;
/// Too many requests are running at once (`RuntimeConfig::max_requests_in_flight`): nothing
/// was done; retry once some have been answered.
pub const TOO_MANY_REQUESTS: u32 = 100_000_009;
/// A listener fell behind and events were dropped for it (a `WarningEvent` says how many).
pub const LISTENER_OVERFLOW: u32 = 100_000_010;
/// A listener or synchronous handler panicked (a `WarningEvent` to the others names it); it
/// stays registered.
pub const LISTENER_PANICKED: u32 = 100_000_011;

// 500: local security module and store.
/// The local store could not be read.
pub const STORE_READ_FAILED: u32 = 500_000_001;
/// The local store could not be written; nothing was changed.
pub const STORE_WRITE_FAILED: u32 = 500_000_002;
/// A stored secret could not be decrypted (wrong key or damaged data).
pub const DECRYPTION_FAILED: u32 = 500_000_003;
/// The key that protects the store is missing or was invalidated by the platform.
pub const KEY_UNAVAILABLE: u32 = 500_000_004;
/// The store was written by a newer, unknown format version.
pub const STORE_FORMAT_UNSUPPORTED: u32 = 500_000_005;
/// No usable stored credential for the user: enroll again.
pub const NO_STORED_CREDENTIAL: u32 = 500_000_006;
/// The platform key behind BIOMETRIC was invalidated: use another way to log in, or enroll again.
pub const BIOMETRIC_KEY_INVALIDATED: u32 = 500_000_007;
/// Too many wrong passwords: retries exceeded.
pub const RETRIES_EXCEEDED: u32 = 500_000_030;
/// The user is locked.
pub const USER_LOCKED: u32 = 500_000_031;
/// The password is wrong; retries remain.
pub const WRONG_PASSWORD: u32 = 500_000_032;
/// The user is temporarily locked; retry after the delay in the result.
pub const TEMPORARILY_LOCKED: u32 = 500_000_033;

// 800: backend, IDP and configuration.
/// The IDP or server could not be reached (DNS, connection refused, no route).
pub const SERVER_NOT_REACHABLE: u32 = 800_000_001;
/// The IDP or server did not answer in time.
pub const SERVER_TIMEOUT: u32 = 800_000_002;
/// The TLS handshake failed (certificate, pinning or protocol).
pub const TLS_FAILED: u32 = 800_000_003;
/// The IDP's answer could not be understood (not the expected JSON or fields).
pub const INVALID_RESPONSE: u32 = 800_000_004;
/// A token failed verification (signature, issuer, audience, expiry).
pub const INVALID_TOKEN: u32 = 800_000_005;
/// The IDP refused the request (HTTP 401/403, `access_denied`, `unauthorized_client`).
pub const ACCESS_DENIED: u32 = 800_000_006;
/// The device's registration is gone at the IDP (`invalid_client`): enroll again.
pub const REGISTRATION_INVALID: u32 = 800_000_007;
/// The IDP failed with a server error (HTTP 5xx, `server_error`, `temporarily_unavailable`).
pub const IDP_SERVER_ERROR: u32 = 800_000_008;
/// The configuration is unusable (bad server URL, discovery lacks an endpoint, unknown tenant).
pub const INVALID_CONFIGURATION: u32 = 800_000_009;
/// The request's URL may not receive the token of its audience (an origin outside the
/// audience's allowed origins, or a user name or password in the URL); nothing was sent.
pub const TOKEN_ORIGIN_NOT_ALLOWED: u32 = 800_000_020;
/// The IDP does not allow the requested audience for this client (`invalid_target`): fix
/// the `audience` (or the IDP's configuration of it); retrying the same one will not help.
pub const AUDIENCE_NOT_ALLOWED: u32 = 800_000_021;

// 802: biometric.
/// Base of the biometric codes: `802000000` plus the platform's own code.
pub const BIOMETRIC_BASE: u32 = 802_000_000;

/// The biometric code for a platform's own code (kept within the six digits of the subsystem).
pub const fn biometric(platform_code: u32) -> u32 {
    let code = if platform_code > 999_999 {
        999_999
    } else {
        platform_code
    };
    BIOMETRIC_BASE + code
}

// 900: internal.
/// An internal fault of the runtime; the details are in `errorDescription` and the log.
pub const INTERNAL_ERROR: u32 = 900_000_001;
/// A part of the runtime (an actor) stopped unexpectedly while handling the request.
pub const COMPONENT_FAILED: u32 = 900_000_002;

/// One named code: its value, its constant's name and what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCodeInfo {
    pub code: u32,
    pub name: &'static str,
    pub meaning: &'static str,
}

macro_rules! catalog {
    ($($name:ident: $meaning:literal,)*) => {
        /// Every named code (the biometric range is [`BIOMETRIC_BASE`] plus a platform code).
        pub const ALL: &[ErrorCodeInfo] = &[
            $(ErrorCodeInfo { code: $name, name: stringify!($name), meaning: $meaning },)*
        ];
    };
}

catalog! {
    NONE: "no error",
    INVALID_PARAMETER: "a field of the request is missing, has the wrong type, or is out of range",
    INVALID_STATE: "the request is not valid in the current sdkState",
    TIMEOUT: "the host's wait for the result ran out",
    MALFORMED_REQUEST: "the request is not a JSON object, or its type is missing or unknown",
    NOT_SUPPORTED: "the request asks for something this version does not support",
    RUNTIME_STOPPED: "the runtime stopped before it answered the request",
    UNKNOWN_USER: "no enrolled user matches the given userIdentifier",
    USER_CANCELLED: "the user cancelled a prompt (biometric)",
    TOO_MANY_REQUESTS: "too many requests are running at once; nothing was done, retry later",
    LISTENER_OVERFLOW: "a listener fell behind; events were dropped for it (the WarningEvent says how many)",
    LISTENER_PANICKED: "a listener or synchronous handler panicked; it stays registered (the WarningEvent names it)",
    STORE_READ_FAILED: "the local store could not be read",
    STORE_WRITE_FAILED: "the local store could not be written; nothing was changed",
    DECRYPTION_FAILED: "a stored secret could not be decrypted",
    KEY_UNAVAILABLE: "the key that protects the store is missing or was invalidated",
    STORE_FORMAT_UNSUPPORTED: "the store was written by a newer, unknown format version",
    NO_STORED_CREDENTIAL: "no usable stored credential for the user: enroll again",
    BIOMETRIC_KEY_INVALIDATED: "the biometric platform key was invalidated: log in another way or enroll again",
    RETRIES_EXCEEDED: "too many wrong passwords: retries exceeded",
    USER_LOCKED: "the user is locked",
    WRONG_PASSWORD: "the password is wrong; retries remain",
    TEMPORARILY_LOCKED: "the user is temporarily locked; retry after the delay",
    SERVER_NOT_REACHABLE: "the IDP or server could not be reached",
    SERVER_TIMEOUT: "the IDP or server did not answer in time",
    TLS_FAILED: "the TLS handshake failed",
    INVALID_RESPONSE: "the IDP's answer could not be understood",
    INVALID_TOKEN: "a token failed verification (signature, issuer, audience, expiry)",
    ACCESS_DENIED: "the IDP refused the request",
    REGISTRATION_INVALID: "the device's registration is gone at the IDP: enroll again",
    IDP_SERVER_ERROR: "the IDP failed with a server error",
    INVALID_CONFIGURATION: "the configuration is unusable (server URL, discovery, tenant)",
    TOKEN_ORIGIN_NOT_ALLOWED: "the URL may not receive the token of its audience; nothing was sent",
    AUDIENCE_NOT_ALLOWED: "the IDP does not allow the requested audience (invalid_target): fix the audience",
    BIOMETRIC_BASE: "biometric failure; add the platform's own code",
    INTERNAL_ERROR: "an internal fault of the runtime",
    COMPONENT_FAILED: "a part of the runtime stopped unexpectedly",
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
    fn biometric_stays_in_its_range() {
        assert_eq!(biometric(7), 802_000_007);
        assert_eq!(biometric(u32::MAX), 802_999_999);
        assert_eq!(
            describe(TEMPORARILY_LOCKED).map(|i| i.name),
            Some("TEMPORARILY_LOCKED")
        );
    }
}
