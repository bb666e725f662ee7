//! Enums and small value types shared by requests and events.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a fieldless enum with its JSON names, `ALL`, `as_str()` and `Display`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $case:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $json:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        #[serde(rename_all = $case)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The name as it appears in JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $json,)*
                }
            }

            /// The value with this JSON name, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($json => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// Where the runtime is in its lifecycle.
    #[derive(Default)]
    pub enum SdkState : "SCREAMING_SNAKE_CASE" {
        /// Not started: only `StartEvent` is valid.
        #[default]
        Uninitialised => "UNINITIALISED",
        /// No enrolled user: the device must enroll.
        ActivationRequired => "ACTIVATION_REQUIRED",
        /// An enrolled user exists but nobody is logged in.
        LoginRequired => "LOGIN_REQUIRED",
        /// A user is logged in.
        LoggedIn => "LOGGED_IN",
        /// Started, but the user cannot be identified.
        Unidentified => "UNIDENTIFIED",
    }
}

named_enum! {
    /// How the long-lived credential of an enrolled user is guarded on the device.
    pub enum AuthenticationMode : "SCREAMING_SNAKE_CASE" {
        /// Reused silently.
        No => "NO",
        /// Guarded by a local password.
        Password => "PASSWORD",
        /// Guarded by a biometric gate bound to a platform key.
        Biometric => "BIOMETRIC",
        /// Guarded by a local PIN: ASCII digits only, [`crate::PIN_MIN_DIGITS`] to
        /// [`crate::PIN_MAX_DIGITS`] of them; sealed and locked out as PASSWORD is, blocked as
        /// `PIN_BLOCKED`. The PIN travels in the `password` fields.
        Pin => "PIN",
    }
}

named_enum! {
    /// The outcome of a request, as the MC-SDK names it.
    pub enum StatusType : "SCREAMING_SNAKE_CASE" {
        Ok => "OK",
        Failed => "FAILED",
        InternalError => "INTERNAL_ERROR",
        InvalidState => "INVALID_STATE",
        InvalidParameter => "INVALID_PARAMETER",
        InvalidUserId => "INVALID_USER_ID",
        WrongCredentials => "WRONG_CREDENTIALS",
        InvalidPassword => "INVALID_PASSWORD",
        TemporaryLocked => "TEMPORARY_LOCKED",
        PasswordBlocked => "PASSWORD_BLOCKED",
        PinBlocked => "PIN_BLOCKED",
        AccessDenied => "ACCESS_DENIED",
        InvalidToken => "INVALID_TOKEN",
        NotReachable => "NOT_REACHABLE",
        ConnectionLost => "CONNECTION_LOST",
        ServerCancel => "SERVER_CANCEL",
        NotSupported => "NOT_SUPPORTED",
        LoginRequired => "LOGIN_REQUIRED",
        OfflineNotActivated => "OFFLINE_NOT_ACTIVATED",
        NoTokenDataAvailable => "NO_TOKEN_DATA_AVAILABLE",
        TokenDataIsOutdated => "TOKEN_DATA_IS_OUTDATED",
        CannotAcquireTokenData => "CANNOT_ACQUIRE_TOKEN_DATA",
        UserCancel => "USER_CANCEL",
        AlreadyInitialized => "ALREADY_INITIALIZED",
        Uninitialized => "UNINITIALIZED",
        /// Ours: the request was not answered in time (a post with a timeout).
        Timeout => "TIMEOUT",
        /// Ours: the platform key behind BIOMETRIC was invalidated (a new fingerprint, a
        /// lock-screen change): this user must log in another way or enroll again.
        BiometricKeyInvalidated => "BIOMETRIC_KEY_INVALIDATED",
    }
}

impl StatusType {
    /// True only for `OK`.
    pub const fn is_ok(self) -> bool {
        matches!(self, StatusType::Ok)
    }
}

named_enum! {
    /// What `ClearIamTokenCacheEvent` removes.
    #[derive(Default)]
    pub enum ClearBehavior : "SCREAMING_SNAKE_CASE" {
        /// Access, refresh and the long-lived offline credential.
        #[default]
        ClearAll => "CLEAR_ALL",
        /// Only the in-memory access and refresh tokens.
        ClearAccessAndRefresh => "CLEAR_ACCESS_AND_REFRESH",
        /// Only the long-lived offline credential.
        ClearOffline => "CLEAR_OFFLINE",
    }
}

named_enum! {
    /// The method of a `CreateHttpCommonRequest`.
    pub enum HttpMethod : "SCREAMING_SNAKE_CASE" {
        Get => "GET",
        Post => "POST",
        Put => "PUT",
        Delete => "DELETE",
        Patch => "PATCH",
        Head => "HEAD",
    }
}

named_enum! {
    /// The transport outcome of a `CreateHttpCommonRequest`, in the MC-SDK's own (camelCase) names.
    /// A server answer of any HTTP status is `success`; the HTTP status is in `httpStatus`.
    pub enum HttpCommonStatus : "camelCase" {
        Success => "success",
        ServerNotReachable => "serverNotReachable",
        SslHandshakeFailed => "sslHandshakeFailed",
        Failed => "failed",
        Timeout => "timeout",
    }
}

impl HttpCommonStatus {
    /// The `StatusType` a host sees for this transport outcome.
    pub const fn to_status_type(self) -> StatusType {
        match self {
            HttpCommonStatus::Success => StatusType::Ok,
            HttpCommonStatus::ServerNotReachable => StatusType::NotReachable,
            HttpCommonStatus::Timeout => StatusType::Timeout,
            HttpCommonStatus::SslHandshakeFailed | HttpCommonStatus::Failed => StatusType::Failed,
        }
    }

    /// The transport outcome that best describes a failure `StatusType` (used when a request
    /// fails before any HTTP is sent, e.g. INVALID_STATE or INVALID_PARAMETER → `failed`).
    pub const fn from_status_type(status: StatusType) -> Self {
        match status {
            StatusType::Ok => HttpCommonStatus::Success,
            StatusType::NotReachable | StatusType::ConnectionLost => {
                HttpCommonStatus::ServerNotReachable
            }
            StatusType::Timeout => HttpCommonStatus::Timeout,
            _ => HttpCommonStatus::Failed,
        }
    }
}

named_enum! {
    /// The state of the connection to the IDP, pushed in `ServerConnectionEvent`.
    pub enum ServerConnectionState : "SCREAMING_SNAKE_CASE" {
        ConnectionLost => "CONNECTION_LOST",
        NotReachable => "NOT_REACHABLE",
        Disconnected => "DISCONNECTED",
        /// Ours: the IDP is reachable again.
        Connected => "CONNECTED",
    }
}

/// One enrolled user: the tenant (IDP realm) and the user's id there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct UserIdentifier {
    pub tenant_id: String,
    pub user_id: String,
}

impl UserIdentifier {
    pub fn new(tenant_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            user_id: user_id.into(),
        }
    }
}

/// The host app's version, as given in `StartEvent`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct AppVersion {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
}

impl AppVersion {
    pub const fn new(major: u32, minor: u32, build: u32) -> Self {
        Self {
            major,
            minor,
            build,
        }
    }
}

/// W3C trace context of a request (`traceparent`, optional `tracestate`), echoed in its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// Longest `tracestate` accepted (W3C allows 32 members of at most 256 bytes; 512 is the
/// size propagators must keep).
pub const MAX_TRACESTATE_BYTES: usize = 512;

impl TraceContext {
    pub fn new(traceparent: impl Into<String>) -> Self {
        Self {
            traceparent: traceparent.into(),
            tracestate: None,
        }
    }

    pub fn with_tracestate(mut self, tracestate: impl Into<String>) -> Self {
        self.tracestate = Some(tracestate.into());
        self
    }

    /// Checks the W3C form `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>` (lowercase,
    /// ids not all zero) and the `tracestate` size. The error names the part that is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let parts: Vec<&str> = self.traceparent.split('-').collect();
        let well_formed = match parts.as_slice() {
            [version, trace_id, parent_id, flags] => {
                is_lower_hex(version, 2)
                    && *version != "ff"
                    && is_lower_hex(trace_id, 32)
                    && is_lower_hex(parent_id, 16)
                    && is_lower_hex(flags, 2)
                    && trace_id.bytes().any(|b| b != b'0')
                    && parent_id.bytes().any(|b| b != b'0')
            }
            _ => false,
        };
        if !well_formed {
            return Err((
                "traceparent",
                "expected the W3C form `00-<32 hex>-<16 hex>-<2 hex>` with lowercase hex and non-zero ids"
                    .to_owned(),
            ));
        }
        if let Some(state) = &self.tracestate {
            if state.len() > MAX_TRACESTATE_BYTES {
                return Err((
                    "tracestate",
                    format!("too long: at most {MAX_TRACESTATE_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The id that ties a result to its request. The host may choose it; the runtime assigns one
/// when a request comes without.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(String);

/// Longest request id accepted: it is echoed in every result, so a huge one is refused.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

impl RequestId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for RequestId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

/// An enrolled user as listed in `StartResultEvent` / `RestartResultEvent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct UserDetails {
    pub user_identifier: UserIdentifier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_email: Option<String>,
}

impl UserDetails {
    pub fn new(user_identifier: UserIdentifier) -> Self {
        Self {
            user_identifier,
            display_username: None,
            display_email: None,
        }
    }
}

/// The IDP configuration of the logged-in user, in `GetInformationResultEvent`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct IamConfigurationData {
    pub client_id: String,
    pub server_url: String,
    pub tenant_id: String,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The redirect URI of an identified user's login (absent for anonymous devices).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// What the app should do next after a result that is not OK, as data (`nextAction` in JSON,
/// beside the human `errorDescription`). JSON: an object whose `"action"` names the step,
/// e.g. `{"action":"RETRY_AFTER","seconds":30}` or `{"action":"FIX_FIELD","field":"audience"}`.
/// Additive: apps that do not read it lose nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(
    tag = "action",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum NextAction {
    /// Send the same request again after `seconds` (0: at once); the cause is passing
    /// (server unreachable or busy, a temporary lock, too many requests in flight).
    RetryAfter { seconds: u64 },
    /// The request itself is wrong: correct the named field (JSON name) and send it again.
    FixField { field: String },
    /// Send `requestType` first (e.g. `StartEvent`, `OfflineLoginEvent`), then this again.
    SendFirst { request_type: String },
    /// The user must log in again (`OfflineLoginEvent`; for an identified user the IDP's
    /// login page).
    LogIn,
    /// Ask the user for the password or biometric again (the last attempt was wrong or
    /// cancelled).
    Unlock,
    /// The device identity is gone or unusable: enroll again.
    EnrollAgain,
    /// Nothing the app can do itself: the configuration, the IDP or the runtime is at fault.
    ContactSupport,
}
