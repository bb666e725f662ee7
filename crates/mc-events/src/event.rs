//! Events the runtime emits: the result of every request and the events it pushes on its own.

use std::collections::BTreeMap;
use std::fmt;

use mc_secret::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::catalog::{Event, EVENT_TYPE_NAMES, PUSHED_TYPE_NAMES, RESULT_TYPE_NAMES};
use crate::catalog::{PushedFields, ResultFields};
use crate::error_code;
use crate::parse::InvalidRequest;
use crate::request::{ByteCount, HeaderNames, RequestKind};
use crate::types::{
    HttpCommonStatus, IamConfigurationData, NextAction, RequestId, SdkState, ServerConnectionState,
    StatusType, TraceContext, UserDetails, UserIdentifier,
};

/// What every result carries: the request it answers, its status and error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
    pub status: StatusType,
    #[serde(default)]
    pub has_error_occurred: bool,
    #[serde(default)]
    pub error_code: u32,
    #[serde(default)]
    pub error_description: String,
    /// What to do next, as data (absent when OK or when nothing more specific applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
}

impl Default for ResultInfo {
    fn default() -> Self {
        Self::ok()
    }
}

impl ResultInfo {
    /// Status OK, no error.
    pub fn ok() -> Self {
        Self {
            request_id: None,
            trace_context: None,
            status: StatusType::Ok,
            has_error_occurred: false,
            error_code: error_code::NONE,
            error_description: String::new(),
            next_action: None,
        }
    }

    /// A result with `status`; `hasErrorOccurred` is true unless `status` is OK.
    /// `description` must say what the host should do next and must hold no secret;
    /// `nextAction` is the default for the status and code ([`NextAction::default_for`]),
    /// which [`ResultInfo::with_next_action`] replaces when more is known.
    pub fn error(status: StatusType, code: u32, description: impl Into<String>) -> Self {
        Self {
            request_id: None,
            trace_context: None,
            status,
            has_error_occurred: !status.is_ok(),
            error_code: code,
            error_description: description.into(),
            next_action: NextAction::default_for(status, code),
        }
    }

    /// Adds what the app should do next.
    pub fn with_next_action(mut self, next_action: NextAction) -> Self {
        self.next_action = Some(next_action);
        self
    }

    /// Ties the result to the request it answers.
    pub fn with_request(
        mut self,
        request_id: Option<RequestId>,
        trace_context: Option<TraceContext>,
    ) -> Self {
        self.request_id = request_id;
        self.trace_context = trace_context;
        self
    }
}

/// Answers `StartEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct StartResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
    #[serde(default)]
    pub user_details_list: Vec<UserDetails>,
    #[serde(default)]
    pub supported_features: Vec<String>,
}

/// Answers `RestartEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct RestartResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
    #[serde(default)]
    pub user_details_list: Vec<UserDetails>,
    #[serde(default)]
    pub supported_features: Vec<String>,
}

/// Answers `EnrollAnonymousUserEvent` and `EnableAuthenticationModeEvent`, and a request whose
/// type could not be read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct StatusResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    /// SetAuthorisationCodeEvent that upgraded an anonymous device: the anonymous user it
    /// replaced (so the app can move its server-side data). Absent otherwise.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_user_identifier: Option<UserIdentifier>,
    /// **Ours** (EnableAuthenticationModeEvent): password attempts left before a lock, after
    /// a wrong current password.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_counter: Option<u32>,
    /// **Ours** (EnableAuthenticationModeEvent): seconds to wait (TEMPORARY_LOCKED).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<u64>,
}

impl StatusResultEvent {
    /// A result with these common fields and none of the optional ones.
    pub fn new(info: ResultInfo) -> Self {
        Self {
            info,
            ..Default::default()
        }
    }
}

/// Answers `CreateAuthorizationRequestEvent`: the URL to open in the browser and the `state`
/// that the redirect will carry back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct CreateAuthorizationRequestResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    #[serde(default)]
    pub authorization_url: String,
    #[serde(default)]
    pub state: String,
}

/// Answers `OfflineLoginEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct OfflineLoginResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    /// Password attempts left before a lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_counter: Option<u32>,
    /// Seconds to wait before the next attempt (TEMPORARY_LOCKED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<u64>,
}

/// Answers `ExchangeIamTokenEvent`. The token is for the host; Debug never shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ExchangeIamTokenResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretString>,
    /// Unix time (seconds) when the token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Answers `GetIamAccessTokenClaimsEvent`: the device token's claims as strings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct GetIamAccessTokenClaimsResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// Answers `ClearIamTokenCacheEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ClearIamTokenCacheResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
}

/// Answers `DeleteIamTokenByAudienceEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct DeleteIamTokenByAudienceResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
}

/// Answers `GetInformationEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct GetInformationResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    #[serde(default)]
    pub sdk_version: String,
    pub sdk_state: SdkState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in_user: Option<UserIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_configuration_data: Option<IamConfigurationData>,
}

/// Answers `DeleteUserEvent`: the state after the delete and the users that remain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct DeleteUserResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
    #[serde(default)]
    pub user_list: Vec<UserIdentifier>,
    /// **Ours**: the user is gone locally, but the IDP has not confirmed its part yet (the
    /// registration delete or the token revocation); the runtime retries it on later starts
    /// and when the IDP is reachable again. `false` when the IDP part is done or not needed.
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    #[serde(default)]
    pub idp_deletion_pending: bool,
}

/// Answers `SwitchWorkspaceEvent`: the state after it (`LOGIN_REQUIRED` after a switch: the
/// new active user logs in with OfflineLoginEvent) and the active user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct SwitchWorkspaceResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
    /// The active user after the request (on OK: the user of the requested tenant).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identifier: Option<UserIdentifier>,
}

/// Answers `GetStateEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct GetStateResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
}

/// Answers `CreateHttpCommonRequest`. Unlike the other results its `status` is the MC-SDK's
/// transport outcome; the server's answer is in `httpStatus`, `response` and `responseHeaders`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct CreateHttpCommonResultEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
    pub status: HttpCommonStatus,
    #[serde(default)]
    pub has_error_occurred: bool,
    #[serde(default)]
    pub error_code: u32,
    #[serde(default)]
    pub error_description: String,
    /// What to do next, as data (see [`NextAction`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The response body; standard base64 in JSON.
    #[serde(default, with = "base64_bytes")]
    pub response: Vec<u8>,
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
}

impl CreateHttpCommonResultEvent {
    /// A result built from the common result fields; `status` follows `info.status`.
    pub fn from_info(info: ResultInfo) -> Self {
        Self {
            status: HttpCommonStatus::from_status_type(info.status),
            request_id: info.request_id,
            trace_context: info.trace_context,
            has_error_occurred: info.has_error_occurred,
            error_code: info.error_code,
            error_description: info.error_description,
            next_action: info.next_action,
            http_status: None,
            response: Vec::new(),
            response_headers: BTreeMap::new(),
        }
    }
}

// The body may be large and hold personal data; header values may hold cookies.
impl fmt::Debug for CreateHttpCommonResultEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateHttpCommonResultEvent")
            .field("request_id", &self.request_id)
            .field("trace_context", &self.trace_context)
            .field("status", &self.status)
            .field("has_error_occurred", &self.has_error_occurred)
            .field("error_code", &self.error_code)
            .field("error_description", &self.error_description)
            .field("next_action", &self.next_action)
            .field("http_status", &self.http_status)
            .field("response", &ByteCount(self.response.len()))
            .field("response_headers", &HeaderNames(&self.response_headers))
            .finish()
    }
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("expected standard base64"))
    }
}

/// Pushed instead of a result when a request is not valid in the current state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct InvalidStateEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
    /// The `"type"` of the refused request.
    pub request_type: String,
    pub sdk_state: SdkState,
    pub error_message: String,
}

/// Pushed after start when an enrolled user exists: log in (`OfflineLoginEvent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct StartLoginEvent {
    /// The user an `OfflineLoginEvent` without `userIdentifier` logs in.
    pub user_identifier: UserIdentifier,
    #[serde(default)]
    pub user_list: Vec<UserIdentifier>,
    /// The W3C trace context of the request whose handling pushed this event, or a fresh
    /// random one when no request caused it (docs/events.md).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

/// Pushed when the connection to the IDP changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ServerConnectionEvent {
    pub connection_state: ServerConnectionState,
    pub server_url: String,
    /// The W3C trace context of the request whose handling pushed this event, or a fresh
    /// random one when no request caused it (docs/events.md).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

/// Pushed after a login with the claims of the device's token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct LoginTokenClaimsAvailableEvent {
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// The W3C trace context of the request whose handling pushed this event, or a fresh
    /// random one when no request caused it (docs/events.md).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

/// The fields of `WarningEvent`, `RuntimeErrorEvent` and `FatalErrorEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// The request that led to it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// A short stable category, e.g. `STORE`, `NETWORK`, `LISTENER`.
    pub error_type: String,
    pub error_description: String,
    pub error_code: u32,
    /// The W3C trace context of the request whose handling pushed this event, or a fresh
    /// random one when no request caused it (docs/events.md).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

impl ErrorReport {
    pub fn new(error_type: impl Into<String>, code: u32, description: impl Into<String>) -> Self {
        Self {
            request_id: None,
            error_type: error_type.into(),
            error_description: description.into(),
            error_code: code,
            trace_context: None,
        }
    }
}

/// Pushed when the IDP requires an interactive login for a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct IdpLoginRequiredEvent {
    pub user_identifier: UserIdentifier,
    /// Step-up (RFC 9470): the `acr_values` the resource asked for; pass them to
    /// CreateAuthorizationRequestEvent.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// Step-up (RFC 9470): the `max_age` the resource asked for, in seconds.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// The W3C trace context of the request whose handling pushed this event, or a fresh
    /// random one when no request caused it (docs/events.md).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
}

impl IdpLoginRequiredEvent {
    pub fn new(user_identifier: UserIdentifier) -> Self {
        Self {
            user_identifier,
            acr_values: None,
            max_age: None,
            trace_context: None,
        }
    }
}

// The `Event` enum over these types, `EVENT_TYPE_NAMES` and the accessors are generated by
// the catalog (catalog.rs). Below: the fields of the types the catalog cannot derive.

impl ResultFields for CreateHttpCommonResultEvent {
    fn result_info(&self) -> Option<&ResultInfo> {
        None
    }
    fn result_info_mut(&mut self) -> Option<&mut ResultInfo> {
        None
    }
    fn request_id(&self) -> Option<&RequestId> {
        self.request_id.as_ref()
    }
    fn trace_context(&self) -> Option<&TraceContext> {
        self.trace_context.as_ref()
    }
    fn set_request(&mut self, request_id: Option<RequestId>, trace_context: Option<TraceContext>) {
        self.request_id = request_id;
        self.trace_context = trace_context;
    }
    fn status(&self) -> StatusType {
        self.status.to_status_type()
    }
}

impl PushedFields for InvalidStateEvent {
    fn request_id(&self) -> Option<&RequestId> {
        self.request_id.as_ref()
    }
    fn trace_context(&self) -> Option<&TraceContext> {
        self.trace_context.as_ref()
    }
    fn set_request(&mut self, request_id: Option<RequestId>, trace_context: Option<TraceContext>) {
        self.request_id = request_id;
        self.trace_context = trace_context;
    }
    fn set_trace_context(&mut self, trace_context: Option<TraceContext>) {
        self.trace_context = trace_context;
    }
    fn status(&self) -> Option<StatusType> {
        Some(StatusType::InvalidState)
    }
}

impl PushedFields for ErrorReport {
    fn request_id(&self) -> Option<&RequestId> {
        self.request_id.as_ref()
    }
    fn trace_context(&self) -> Option<&TraceContext> {
        self.trace_context.as_ref()
    }
    fn set_request(&mut self, _: Option<RequestId>, _: Option<TraceContext>) {}
    fn set_trace_context(&mut self, trace_context: Option<TraceContext>) {
        self.trace_context = trace_context;
    }
    fn status(&self) -> Option<StatusType> {
        None
    }
}

/// Pushed events that carry no request (only the trace context of the one that caused them).
macro_rules! pushed_without_request {
    ($($event:ident),*) => {
        $(
            impl PushedFields for $event {
                fn request_id(&self) -> Option<&RequestId> {
                    None
                }
                fn trace_context(&self) -> Option<&TraceContext> {
                    self.trace_context.as_ref()
                }
                fn set_request(&mut self, _: Option<RequestId>, _: Option<TraceContext>) {}
                fn set_trace_context(&mut self, trace_context: Option<TraceContext>) {
                    self.trace_context = trace_context;
                }
                fn status(&self) -> Option<StatusType> {
                    None
                }
            }
        )*
    };
}

pushed_without_request!(
    StartLoginEvent,
    ServerConnectionEvent,
    LoginTokenClaimsAvailableEvent,
    IdpLoginRequiredEvent
);

impl Event {
    /// The result event that answers a request of `kind`, carrying `info` and defaults for its
    /// other fields (`sdkState` UNINITIALISED; see [`Event::failure_in_state`]). Every request
    /// thus gets its own result type, also for INVALID_PARAMETER, TIMEOUT and other failures.
    pub fn failure(kind: RequestKind, info: ResultInfo) -> Event {
        Event::failure_in_state(kind, info, SdkState::default())
    }

    /// The INVALID_PARAMETER answer to a request that could not be read or validated: the
    /// result type of its kind (a `StatusResultEvent` when the kind is unknown), its request id,
    /// and the error (naming the field) as `errorDescription`.
    pub fn invalid_request(err: &InvalidRequest) -> Event {
        let mut info = ResultInfo::error(
            StatusType::InvalidParameter,
            err.error_code(),
            err.to_string(),
        );
        // The path's first segment is the request's field (`userIdentifier.userId` → the
        // `userIdentifier` the app sets).
        if let Some(field) = &err.field {
            let field = field.split(['.', '[']).next().unwrap_or(field);
            info = info.with_next_action(NextAction::FixField {
                field: field.to_string(),
            });
        }
        let info = info.with_request(
            err.request_id.clone(),
            err.trace_context.as_deref().cloned(),
        );
        match err.kind {
            Some(kind) => Event::failure(kind, info),
            None => Event::StatusResultEvent(StatusResultEvent::new(info)),
        }
    }

    /// The JSON value: the event's fields plus `"type"`.
    pub fn to_json_value(&self) -> serde_json::Value {
        crate::json::to_value_or_error(self)
    }

    /// The JSON text, one line, `"type"` first.
    pub fn to_json(&self) -> String {
        crate::json::to_string_or_error(self)
    }

    /// Reads an event from its JSON text (for hosts, consoles and tests that consume events).
    pub fn from_json(text: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(text)
    }
}
