//! Events the runtime emits: the result of every request and the events it pushes on its own.

use std::collections::BTreeMap;
use std::fmt;

use mc_secret::SecretString;
use serde::{Deserialize, Serialize};

use crate::error_code;
use crate::parse::InvalidRequest;
use crate::request::{ByteCount, HeaderNames, RequestKind};
use crate::types::{
    HttpCommonStatus, IamConfigurationData, NextAction, RequestId, SdkState, ServerConnectionState,
    StatusType, TraceContext, UserDetails, UserIdentifier,
};

/// What every result carries: the request it answers, its status and error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(rename_all = "camelCase")]
pub struct StatusResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
}

/// Answers `OfflineLoginEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[serde(rename_all = "camelCase")]
pub struct GetIamAccessTokenClaimsResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// Answers `ClearIamTokenCacheEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearIamTokenCacheResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
}

/// Answers `DeleteIamTokenByAudienceEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteIamTokenByAudienceResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
}

/// Answers `GetInformationEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[serde(rename_all = "camelCase")]
pub struct DeleteUserResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
    #[serde(default)]
    pub user_list: Vec<UserIdentifier>,
}

/// Answers `GetStateEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetStateResultEvent {
    #[serde(flatten)]
    pub info: ResultInfo,
    pub sdk_state: SdkState,
}

/// Answers `CreateHttpCommonRequest`. Unlike the other results its `status` is the MC-SDK's
/// transport outcome; the server's answer is in `httpStatus`, `response` and `responseHeaders`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
#[serde(rename_all = "camelCase")]
pub struct StartLoginEvent {
    /// The user an `OfflineLoginEvent` without `userIdentifier` logs in.
    pub user_identifier: UserIdentifier,
    #[serde(default)]
    pub user_list: Vec<UserIdentifier>,
}

/// Pushed when the connection to the IDP changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerConnectionEvent {
    pub connection_state: ServerConnectionState,
    pub server_url: String,
}

/// Pushed after a login with the claims of the device's token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginTokenClaimsAvailableEvent {
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// The fields of `WarningEvent`, `RuntimeErrorEvent` and `FatalErrorEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// The request that led to it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// A short stable category, e.g. `STORE`, `NETWORK`, `LISTENER`.
    pub error_type: String,
    pub error_description: String,
    pub error_code: u32,
}

impl ErrorReport {
    pub fn new(error_type: impl Into<String>, code: u32, description: impl Into<String>) -> Self {
        Self {
            request_id: None,
            error_type: error_type.into(),
            error_description: description.into(),
            error_code: code,
        }
    }
}

/// Pushed when the IDP requires an interactive login for a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdpLoginRequiredEvent {
    pub user_identifier: UserIdentifier,
}

/// Any event the runtime emits. JSON: one object, `"type"` = the event's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[allow(clippy::large_enum_variant)] // built once and moved to listeners, never stored in bulk
pub enum Event {
    // results
    StartResultEvent(StartResultEvent),
    RestartResultEvent(RestartResultEvent),
    StatusResultEvent(StatusResultEvent),
    OfflineLoginResultEvent(OfflineLoginResultEvent),
    ExchangeIamTokenResultEvent(ExchangeIamTokenResultEvent),
    GetIamAccessTokenClaimsResultEvent(GetIamAccessTokenClaimsResultEvent),
    ClearIamTokenCacheResultEvent(ClearIamTokenCacheResultEvent),
    DeleteIamTokenByAudienceResultEvent(DeleteIamTokenByAudienceResultEvent),
    GetInformationResultEvent(GetInformationResultEvent),
    DeleteUserResultEvent(DeleteUserResultEvent),
    GetStateResultEvent(GetStateResultEvent),
    CreateHttpCommonResultEvent(CreateHttpCommonResultEvent),
    // pushed
    InvalidStateEvent(InvalidStateEvent),
    StartLoginEvent(StartLoginEvent),
    ServerConnectionEvent(ServerConnectionEvent),
    LoginTokenClaimsAvailableEvent(LoginTokenClaimsAvailableEvent),
    WarningEvent(ErrorReport),
    RuntimeErrorEvent(ErrorReport),
    FatalErrorEvent(ErrorReport),
    IdpLoginRequiredEvent(IdpLoginRequiredEvent),
}

/// Every event `"type"` name, results first, in the order of `docs/events.md`.
pub const EVENT_TYPE_NAMES: &[&str] = &[
    "StartResultEvent",
    "RestartResultEvent",
    "StatusResultEvent",
    "OfflineLoginResultEvent",
    "ExchangeIamTokenResultEvent",
    "GetIamAccessTokenClaimsResultEvent",
    "ClearIamTokenCacheResultEvent",
    "DeleteIamTokenByAudienceResultEvent",
    "GetInformationResultEvent",
    "DeleteUserResultEvent",
    "GetStateResultEvent",
    "CreateHttpCommonResultEvent",
    "InvalidStateEvent",
    "StartLoginEvent",
    "ServerConnectionEvent",
    "LoginTokenClaimsAvailableEvent",
    "WarningEvent",
    "RuntimeErrorEvent",
    "FatalErrorEvent",
    "IdpLoginRequiredEvent",
];

impl Event {
    /// The event's `"type"` name.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Event::StartResultEvent(_) => "StartResultEvent",
            Event::RestartResultEvent(_) => "RestartResultEvent",
            Event::StatusResultEvent(_) => "StatusResultEvent",
            Event::OfflineLoginResultEvent(_) => "OfflineLoginResultEvent",
            Event::ExchangeIamTokenResultEvent(_) => "ExchangeIamTokenResultEvent",
            Event::GetIamAccessTokenClaimsResultEvent(_) => "GetIamAccessTokenClaimsResultEvent",
            Event::ClearIamTokenCacheResultEvent(_) => "ClearIamTokenCacheResultEvent",
            Event::DeleteIamTokenByAudienceResultEvent(_) => "DeleteIamTokenByAudienceResultEvent",
            Event::GetInformationResultEvent(_) => "GetInformationResultEvent",
            Event::DeleteUserResultEvent(_) => "DeleteUserResultEvent",
            Event::GetStateResultEvent(_) => "GetStateResultEvent",
            Event::CreateHttpCommonResultEvent(_) => "CreateHttpCommonResultEvent",
            Event::InvalidStateEvent(_) => "InvalidStateEvent",
            Event::StartLoginEvent(_) => "StartLoginEvent",
            Event::ServerConnectionEvent(_) => "ServerConnectionEvent",
            Event::LoginTokenClaimsAvailableEvent(_) => "LoginTokenClaimsAvailableEvent",
            Event::WarningEvent(_) => "WarningEvent",
            Event::RuntimeErrorEvent(_) => "RuntimeErrorEvent",
            Event::FatalErrorEvent(_) => "FatalErrorEvent",
            Event::IdpLoginRequiredEvent(_) => "IdpLoginRequiredEvent",
        }
    }

    /// The common result fields, for every result except `CreateHttpCommonResultEvent`.
    pub fn result_info(&self) -> Option<&ResultInfo> {
        self.result_info_ref()
    }

    /// Mutable access to the common result fields (to stamp a request id on a result).
    pub fn result_info_mut(&mut self) -> Option<&mut ResultInfo> {
        match self {
            Event::StartResultEvent(e) => Some(&mut e.info),
            Event::RestartResultEvent(e) => Some(&mut e.info),
            Event::StatusResultEvent(e) => Some(&mut e.info),
            Event::OfflineLoginResultEvent(e) => Some(&mut e.info),
            Event::ExchangeIamTokenResultEvent(e) => Some(&mut e.info),
            Event::GetIamAccessTokenClaimsResultEvent(e) => Some(&mut e.info),
            Event::ClearIamTokenCacheResultEvent(e) => Some(&mut e.info),
            Event::DeleteIamTokenByAudienceResultEvent(e) => Some(&mut e.info),
            Event::GetInformationResultEvent(e) => Some(&mut e.info),
            Event::DeleteUserResultEvent(e) => Some(&mut e.info),
            Event::GetStateResultEvent(e) => Some(&mut e.info),
            _ => None,
        }
    }

    fn result_info_ref(&self) -> Option<&ResultInfo> {
        match self {
            Event::StartResultEvent(e) => Some(&e.info),
            Event::RestartResultEvent(e) => Some(&e.info),
            Event::StatusResultEvent(e) => Some(&e.info),
            Event::OfflineLoginResultEvent(e) => Some(&e.info),
            Event::ExchangeIamTokenResultEvent(e) => Some(&e.info),
            Event::GetIamAccessTokenClaimsResultEvent(e) => Some(&e.info),
            Event::ClearIamTokenCacheResultEvent(e) => Some(&e.info),
            Event::DeleteIamTokenByAudienceResultEvent(e) => Some(&e.info),
            Event::GetInformationResultEvent(e) => Some(&e.info),
            Event::DeleteUserResultEvent(e) => Some(&e.info),
            Event::GetStateResultEvent(e) => Some(&e.info),
            _ => None,
        }
    }

    /// The id of the request this event answers or was caused by.
    pub fn request_id(&self) -> Option<&RequestId> {
        if let Some(info) = self.result_info_ref() {
            return info.request_id.as_ref();
        }
        match self {
            Event::CreateHttpCommonResultEvent(e) => e.request_id.as_ref(),
            Event::InvalidStateEvent(e) => e.request_id.as_ref(),
            Event::WarningEvent(e) | Event::RuntimeErrorEvent(e) | Event::FatalErrorEvent(e) => {
                e.request_id.as_ref()
            }
            _ => None,
        }
    }

    /// The trace context of the request this event answers.
    pub fn trace_context(&self) -> Option<&TraceContext> {
        if let Some(info) = self.result_info_ref() {
            return info.trace_context.as_ref();
        }
        match self {
            Event::CreateHttpCommonResultEvent(e) => e.trace_context.as_ref(),
            Event::InvalidStateEvent(e) => e.trace_context.as_ref(),
            _ => None,
        }
    }

    /// Sets the request id and trace context of an answer (a result or `InvalidStateEvent`);
    /// other events are left unchanged.
    pub fn set_request(
        &mut self,
        request_id: Option<RequestId>,
        trace_context: Option<TraceContext>,
    ) {
        match self {
            Event::CreateHttpCommonResultEvent(e) => {
                e.request_id = request_id;
                e.trace_context = trace_context;
            }
            Event::InvalidStateEvent(e) => {
                e.request_id = request_id;
                e.trace_context = trace_context;
            }
            other => {
                if let Some(info) = other.result_info_mut() {
                    info.request_id = request_id;
                    info.trace_context = trace_context;
                }
            }
        }
    }

    /// The status of an answer: a result's `status` (HTTP transport outcomes mapped to
    /// `StatusType`), INVALID_STATE for `InvalidStateEvent`, `None` for pushed events.
    pub fn status(&self) -> Option<StatusType> {
        if let Some(info) = self.result_info_ref() {
            return Some(info.status);
        }
        match self {
            Event::CreateHttpCommonResultEvent(e) => Some(e.status.to_status_type()),
            Event::InvalidStateEvent(_) => Some(StatusType::InvalidState),
            _ => None,
        }
    }

    /// True for the events that answer a request: every result event, and `InvalidStateEvent`
    /// (which answers a request in place of its result).
    pub fn is_result(&self) -> bool {
        self.result_info_ref().is_some()
            || matches!(
                self,
                Event::CreateHttpCommonResultEvent(_) | Event::InvalidStateEvent(_)
            )
    }

    /// The result event that answers a request of `kind`, carrying `info` and defaults for its
    /// other fields (`sdkState` UNINITIALISED; see [`Event::failure_in_state`]). Every request
    /// thus gets its own result type, also for INVALID_PARAMETER, TIMEOUT and other failures.
    pub fn failure(kind: RequestKind, info: ResultInfo) -> Event {
        Event::failure_in_state(kind, info, SdkState::default())
    }

    /// As [`Event::failure`], with the `sdkState` the runtime is in.
    pub fn failure_in_state(kind: RequestKind, info: ResultInfo, sdk_state: SdkState) -> Event {
        match kind {
            RequestKind::Start => Event::StartResultEvent(StartResultEvent {
                info,
                sdk_state,
                ..Default::default()
            }),
            RequestKind::Restart => Event::RestartResultEvent(RestartResultEvent {
                info,
                sdk_state,
                ..Default::default()
            }),
            RequestKind::EnrollAnonymousUser | RequestKind::EnableAuthenticationMode => {
                Event::StatusResultEvent(StatusResultEvent { info })
            }
            RequestKind::OfflineLogin => Event::OfflineLoginResultEvent(OfflineLoginResultEvent {
                info,
                ..Default::default()
            }),
            RequestKind::ExchangeIamToken => {
                Event::ExchangeIamTokenResultEvent(ExchangeIamTokenResultEvent {
                    info,
                    ..Default::default()
                })
            }
            RequestKind::GetIamAccessTokenClaims => {
                Event::GetIamAccessTokenClaimsResultEvent(GetIamAccessTokenClaimsResultEvent {
                    info,
                    ..Default::default()
                })
            }
            RequestKind::ClearIamTokenCache => {
                Event::ClearIamTokenCacheResultEvent(ClearIamTokenCacheResultEvent { info })
            }
            RequestKind::DeleteIamTokenByAudience => {
                Event::DeleteIamTokenByAudienceResultEvent(DeleteIamTokenByAudienceResultEvent {
                    info,
                })
            }
            RequestKind::GetInformation => {
                Event::GetInformationResultEvent(GetInformationResultEvent {
                    info,
                    sdk_state,
                    ..Default::default()
                })
            }
            RequestKind::DeleteUser => Event::DeleteUserResultEvent(DeleteUserResultEvent {
                info,
                sdk_state,
                ..Default::default()
            }),
            RequestKind::GetState => {
                Event::GetStateResultEvent(GetStateResultEvent { info, sdk_state })
            }
            RequestKind::CreateHttpCommon => {
                Event::CreateHttpCommonResultEvent(CreateHttpCommonResultEvent::from_info(info))
            }
        }
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
            None => Event::StatusResultEvent(StatusResultEvent { info }),
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
