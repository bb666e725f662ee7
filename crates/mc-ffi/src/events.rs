//! The typed events as UniFFI types, and their conversion to and from `mc_events`.
//!
//! Requests are one enum, [`RequestEvent`], whose variants carry the MC-SDK names, so Kotlin
//! reads `postEvent(EnrollAnonymousUserEvent(tenantId, AuthenticationMode.NO, clientId))` once
//! `RequestEvent.EnrollAnonymousUserEvent` is imported. Every emitted event is one enum,
//! [`Event`], mirroring all 20 types of `docs/events.md` field for field. The conversions are
//! plain matches, so a field added in `mc_events` breaks the build here instead of vanishing.

use std::collections::{BTreeMap, HashMap};

use mc_events as ev;

/// Declares a fieldless UniFFI enum with the same variants as the `mc_events` enum of the same
/// name, and the conversions both ways.
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl From<ev::$name> for $name {
            fn from(value: ev::$name) -> Self {
                match value {
                    $(ev::$name::$variant => $name::$variant,)*
                }
            }
        }

        impl From<$name> for ev::$name {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => ev::$name::$variant,)*
                }
            }
        }
    };
}

mirror_enum! {
    /// Where the runtime is in its lifecycle (`sdkState`).
    SdkState { Uninitialised, ActivationRequired, LoginRequired, LoggedIn, Unidentified }
}

mirror_enum! {
    /// How an enrolled user's credential is guarded: `NO`, `PASSWORD`, `BIOMETRIC`.
    AuthenticationMode { No, Password, Biometric }
}

mirror_enum! {
    /// The outcome of a request, with the MC-SDK's names (see docs/events.md, Statuses).
    StatusType {
        Ok, Failed, InternalError, InvalidState, InvalidParameter, InvalidUserId,
        WrongCredentials, InvalidPassword, TemporaryLocked, PasswordBlocked, PinBlocked,
        AccessDenied, InvalidToken, NotReachable, ConnectionLost, ServerCancel, NotSupported,
        LoginRequired, OfflineNotActivated, NoTokenDataAvailable, TokenDataIsOutdated,
        CannotAcquireTokenData, UserCancel, AlreadyInitialized, Uninitialized, Timeout,
        BiometricKeyInvalidated,
    }
}

mirror_enum! {
    /// What `ClearIamTokenCacheEvent` removes.
    ClearBehavior { ClearAll, ClearAccessAndRefresh, ClearOffline }
}

mirror_enum! {
    /// The method of a `CreateHttpCommonRequest`.
    HttpMethod { Get, Post, Put, Delete, Patch, Head }
}

mirror_enum! {
    /// The transport outcome of a `CreateHttpCommonRequest` (any HTTP answer is `Success`).
    HttpCommonStatus { Success, ServerNotReachable, SslHandshakeFailed, Failed, Timeout }
}

mirror_enum! {
    /// The state of the connection to the IDP in a `ServerConnectionEvent`.
    ServerConnectionState { ConnectionLost, NotReachable, Disconnected, Connected }
}

/// One enrolled user: the tenant (IDP realm) and the user's id there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, uniffi::Record)]
pub struct UserIdentifier {
    pub tenant_id: String,
    pub user_id: String,
}

impl From<ev::UserIdentifier> for UserIdentifier {
    fn from(value: ev::UserIdentifier) -> Self {
        Self {
            tenant_id: value.tenant_id,
            user_id: value.user_id,
        }
    }
}

impl From<UserIdentifier> for ev::UserIdentifier {
    fn from(value: UserIdentifier) -> Self {
        ev::UserIdentifier::new(value.tenant_id, value.user_id)
    }
}

/// The app's version, as `StartEvent` reports it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AppVersion {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
}

/// W3C Trace Context of a request, echoed in its result.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TraceContext {
    pub traceparent: String,
    #[uniffi(default = None)]
    pub tracestate: Option<String>,
}

impl From<ev::TraceContext> for TraceContext {
    fn from(value: ev::TraceContext) -> Self {
        Self {
            traceparent: value.traceparent,
            tracestate: value.tracestate,
        }
    }
}

/// An enrolled user with what the IDP told about them.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct UserDetails {
    pub user_identifier: UserIdentifier,
    pub display_username: Option<String>,
    pub display_email: Option<String>,
}

/// Where the logged-in user is enrolled.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct IamConfigurationData {
    pub client_id: String,
    pub server_url: String,
    pub tenant_id: String,
    pub issuer: Option<String>,
}

/// Every request the host can post. The variants carry the MC-SDK's names and fields; optional
/// fields default to absent. Secrets (`password`, `newPassword`) are plain strings here: the
/// runtime wraps them in a redacted type at once and never logs them, but the generated data
/// classes print every field, so never log a request that carries one.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum RequestEvent {
    /// Starts the runtime; the only request valid before the first `StartResultEvent`.
    StartEvent {
        #[uniffi(default = None)]
        locale: Option<String>,
        #[uniffi(default = None)]
        app_version: Option<AppVersion>,
        /// At most 32 bytes of UTF-8.
        #[uniffi(default = None)]
        app_name: Option<String>,
        #[uniffi(default = None)]
        configuration: Option<HashMap<String, String>>,
    },
    /// Starts the runtime again (not a logout: an enrolled device comes back LOGIN_REQUIRED).
    RestartEvent {
        #[uniffi(default = None)]
        locale: Option<String>,
        #[uniffi(default = None)]
        app_version: Option<AppVersion>,
        #[uniffi(default = None)]
        app_name: Option<String>,
    },
    /// Registers the device anonymously (RFC 7591) and logs it in.
    EnrollAnonymousUserEvent {
        tenant_id: String,
        authentication_mode: AuthenticationMode,
        client_id: String,
        /// Mode PASSWORD only.
        #[uniffi(default = None)]
        password: Option<String>,
    },
    /// Logs in with the stored credential (default: the user who logged in last).
    OfflineLoginEvent {
        #[uniffi(default = None)]
        user_identifier: Option<UserIdentifier>,
        #[uniffi(default = None)]
        password: Option<String>,
    },
    /// Exchanges the device token for an IAM access token of `audience` (RFC 8693).
    ExchangeIamTokenEvent {
        audience: String,
        #[uniffi(default = false)]
        force_update: bool,
    },
    /// The claims of the device token (never the token).
    GetIamAccessTokenClaimsEvent,
    ClearIamTokenCacheEvent {
        #[uniffi(default = None)]
        user_identifier: Option<UserIdentifier>,
        /// Default: `CLEAR_ALL`.
        #[uniffi(default = None)]
        clear_behavior: Option<ClearBehavior>,
    },
    DeleteIamTokenByAudienceEvent {
        audiences: Vec<String>,
    },
    GetInformationEvent,
    /// Deletes the user locally and its registration at the IDP (RFC 7592).
    DeleteUserEvent {
        #[uniffi(default = None)]
        user_identifier: Option<UserIdentifier>,
    },
    EnableAuthenticationModeEvent {
        authentication_mode: AuthenticationMode,
        #[uniffi(default = None)]
        client_id: Option<String>,
        /// The current password, when switching away from PASSWORD.
        #[uniffi(default = None)]
        password: Option<String>,
        #[uniffi(default = None)]
        new_password: Option<String>,
    },
    /// An HTTP request through the runtime; with `audience` it carries the cached IAM token.
    CreateHttpCommonRequest {
        full_url: String,
        method: HttpMethod,
        #[uniffi(default = None)]
        content: Option<String>,
        #[uniffi(default = None)]
        content_type: Option<String>,
        #[uniffi(default = None)]
        http_headers: Option<HashMap<String, String>>,
        /// PEM certificate chain to pin.
        #[uniffi(default = None)]
        certificate_chain: Option<String>,
        #[uniffi(default = true)]
        follow_redirect: bool,
        #[uniffi(default = None)]
        audience: Option<String>,
        /// The MC-SDK's name for `audience` (give one, or both equal).
        #[uniffi(default = None)]
        access_token_identifier: Option<String>,
        /// Milliseconds.
        #[uniffi(default = None)]
        timeout: Option<u64>,
    },
    GetStateEvent,
}

fn sorted(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

fn unsorted(map: BTreeMap<String, String>) -> HashMap<String, String> {
    map.into_iter().collect()
}

fn app_version(version: Option<AppVersion>) -> Option<ev::AppVersion> {
    version.map(|v| ev::AppVersion::new(v.major, v.minor, v.build))
}

fn secret(value: Option<String>) -> Option<ev::SecretString> {
    value.map(ev::SecretString::from)
}

impl From<RequestEvent> for ev::RequestEvent {
    fn from(request: RequestEvent) -> Self {
        match request {
            RequestEvent::StartEvent {
                locale,
                app_version: version,
                app_name,
                configuration,
            } => ev::StartEvent {
                locale,
                app_version: app_version(version),
                app_name,
                configuration: configuration.map(sorted),
            }
            .into(),
            RequestEvent::RestartEvent {
                locale,
                app_version: version,
                app_name,
            } => ev::RestartEvent {
                locale,
                app_version: app_version(version),
                app_name,
            }
            .into(),
            RequestEvent::EnrollAnonymousUserEvent {
                tenant_id,
                authentication_mode,
                client_id,
                password,
            } => ev::EnrollAnonymousUserEvent {
                tenant_id,
                authentication_mode: authentication_mode.into(),
                client_id,
                password: secret(password),
                replace_existing: false,
            }
            .into(),
            RequestEvent::OfflineLoginEvent {
                user_identifier,
                password,
            } => ev::OfflineLoginEvent {
                user_identifier: user_identifier.map(Into::into),
                password: secret(password),
            }
            .into(),
            RequestEvent::ExchangeIamTokenEvent {
                audience,
                force_update,
            } => ev::ExchangeIamTokenEvent {
                audience,
                force_update,
            }
            .into(),
            RequestEvent::GetIamAccessTokenClaimsEvent => {
                ev::GetIamAccessTokenClaimsEvent::new().into()
            }
            RequestEvent::ClearIamTokenCacheEvent {
                user_identifier,
                clear_behavior,
            } => ev::ClearIamTokenCacheEvent {
                user_identifier: user_identifier.map(Into::into),
                clear_behavior: clear_behavior.map(Into::into).unwrap_or_default(),
            }
            .into(),
            RequestEvent::DeleteIamTokenByAudienceEvent { audiences } => {
                ev::DeleteIamTokenByAudienceEvent { audiences }.into()
            }
            RequestEvent::GetInformationEvent => ev::GetInformationEvent::new().into(),
            RequestEvent::DeleteUserEvent { user_identifier } => ev::DeleteUserEvent {
                user_identifier: user_identifier.map(Into::into),
            }
            .into(),
            RequestEvent::EnableAuthenticationModeEvent {
                authentication_mode,
                client_id,
                password,
                new_password,
            } => ev::EnableAuthenticationModeEvent {
                authentication_mode: authentication_mode.into(),
                client_id,
                password: secret(password),
                new_password: secret(new_password),
            }
            .into(),
            RequestEvent::CreateHttpCommonRequest {
                full_url,
                method,
                content,
                content_type,
                http_headers,
                certificate_chain,
                follow_redirect,
                audience,
                access_token_identifier,
                timeout,
            } => ev::CreateHttpCommonRequest {
                full_url,
                method: method.into(),
                content,
                content_type,
                http_headers: http_headers.map(sorted).unwrap_or_default(),
                certificate_chain,
                follow_redirect,
                audience,
                access_token_identifier,
                timeout,
            }
            .into(),
            RequestEvent::GetStateEvent => ev::GetStateEvent::new().into(),
        }
    }
}

/// The fields every result carries (all results except `CreateHttpCommonResultEvent`, whose
/// status is an HTTP transport outcome).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ResultInfo {
    /// The id of the request this answers.
    pub request_id: Option<String>,
    pub trace_context: Option<TraceContext>,
    pub status: StatusType,
    /// True unless `status` is `OK`.
    pub has_error_occurred: bool,
    /// `0` on success; otherwise a code of docs/events.md (subsystem prefix + six digits).
    pub error_code: u32,
    /// What went wrong and what to do next; empty on success.
    pub error_description: String,
}

impl From<ev::ResultInfo> for ResultInfo {
    fn from(info: ev::ResultInfo) -> Self {
        Self {
            request_id: info.request_id.map(|id| id.as_str().to_string()),
            trace_context: info.trace_context.map(Into::into),
            status: info.status.into(),
            has_error_occurred: info.has_error_occurred,
            error_code: info.error_code,
            error_description: info.error_description,
        }
    }
}

/// Any event the runtime emits: the result of a request, or an event it pushes on its own.
/// Variants and fields mirror docs/events.md one to one. `ExchangeIamTokenResultEvent.token`
/// is the IAM access token in clear (the host needs it): never log that event whole.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum Event {
    StartResultEvent {
        info: ResultInfo,
        sdk_state: SdkState,
        user_details_list: Vec<UserDetails>,
        supported_features: Vec<String>,
    },
    RestartResultEvent {
        info: ResultInfo,
        sdk_state: SdkState,
        user_details_list: Vec<UserDetails>,
        supported_features: Vec<String>,
    },
    /// Answers `EnrollAnonymousUserEvent`, `EnableAuthenticationModeEvent`, and a JSON request
    /// whose `type` could not be read.
    StatusResultEvent {
        info: ResultInfo,
    },
    OfflineLoginResultEvent {
        info: ResultInfo,
        /// Attempts left after a wrong password.
        retry_counter: Option<u32>,
        /// Seconds to wait (`TEMPORARY_LOCKED`).
        retry_delay: Option<u64>,
    },
    ExchangeIamTokenResultEvent {
        info: ResultInfo,
        audience: Option<String>,
        /// The IAM access token for `audience`. A secret: never log it.
        token: Option<String>,
        /// Unix seconds.
        expires_at: Option<i64>,
    },
    GetIamAccessTokenClaimsResultEvent {
        info: ResultInfo,
        claims: HashMap<String, String>,
    },
    ClearIamTokenCacheResultEvent {
        info: ResultInfo,
    },
    DeleteIamTokenByAudienceResultEvent {
        info: ResultInfo,
    },
    GetInformationResultEvent {
        info: ResultInfo,
        sdk_version: String,
        sdk_state: SdkState,
        logged_in_user: Option<UserIdentifier>,
        iam_configuration_data: Option<IamConfigurationData>,
    },
    DeleteUserResultEvent {
        info: ResultInfo,
        sdk_state: SdkState,
        user_list: Vec<UserIdentifier>,
    },
    GetStateResultEvent {
        info: ResultInfo,
        sdk_state: SdkState,
    },
    CreateHttpCommonResultEvent {
        request_id: Option<String>,
        trace_context: Option<TraceContext>,
        status: HttpCommonStatus,
        has_error_occurred: bool,
        error_code: u32,
        error_description: String,
        http_status: Option<u16>,
        response: Vec<u8>,
        response_headers: HashMap<String, String>,
    },
    /// In place of the result, for a request not valid in the current state.
    InvalidStateEvent {
        request_id: Option<String>,
        trace_context: Option<TraceContext>,
        request_type: String,
        sdk_state: SdkState,
        error_message: String,
    },
    StartLoginEvent {
        user_identifier: UserIdentifier,
        user_list: Vec<UserIdentifier>,
    },
    ServerConnectionEvent {
        connection_state: ServerConnectionState,
        server_url: String,
    },
    LoginTokenClaimsAvailableEvent {
        claims: HashMap<String, String>,
    },
    WarningEvent {
        report: ErrorReport,
    },
    RuntimeErrorEvent {
        report: ErrorReport,
    },
    FatalErrorEvent {
        report: ErrorReport,
    },
    IdpLoginRequiredEvent {
        user_identifier: UserIdentifier,
    },
}

/// The fields of `WarningEvent`, `RuntimeErrorEvent` and `FatalErrorEvent`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ErrorReport {
    pub request_id: Option<String>,
    /// A short stable category, e.g. `STORE`, `NETWORK`, `LISTENER`.
    pub error_type: String,
    pub error_description: String,
    pub error_code: u32,
}

fn id(value: Option<ev::RequestId>) -> Option<String> {
    value.map(|id| id.as_str().to_string())
}

fn users(list: Vec<ev::UserIdentifier>) -> Vec<UserIdentifier> {
    list.into_iter().map(Into::into).collect()
}

fn user_details(list: Vec<ev::UserDetails>) -> Vec<UserDetails> {
    list.into_iter()
        .map(|details| UserDetails {
            user_identifier: details.user_identifier.into(),
            display_username: details.display_username,
            display_email: details.display_email,
        })
        .collect()
}

fn report(report: ev::ErrorReport) -> ErrorReport {
    ErrorReport {
        request_id: id(report.request_id),
        error_type: report.error_type,
        error_description: report.error_description,
        error_code: report.error_code,
    }
}

impl From<ev::Event> for Event {
    fn from(event: ev::Event) -> Self {
        match event {
            ev::Event::StartResultEvent(e) => Event::StartResultEvent {
                info: e.info.into(),
                sdk_state: e.sdk_state.into(),
                user_details_list: user_details(e.user_details_list),
                supported_features: e.supported_features,
            },
            ev::Event::RestartResultEvent(e) => Event::RestartResultEvent {
                info: e.info.into(),
                sdk_state: e.sdk_state.into(),
                user_details_list: user_details(e.user_details_list),
                supported_features: e.supported_features,
            },
            ev::Event::StatusResultEvent(e) => Event::StatusResultEvent {
                info: e.info.into(),
            },
            ev::Event::OfflineLoginResultEvent(e) => Event::OfflineLoginResultEvent {
                info: e.info.into(),
                retry_counter: e.retry_counter,
                retry_delay: e.retry_delay,
            },
            ev::Event::ExchangeIamTokenResultEvent(e) => Event::ExchangeIamTokenResultEvent {
                info: e.info.into(),
                audience: e.audience,
                token: e.token.map(|token| token.expose().to_string()),
                expires_at: e.expires_at,
            },
            ev::Event::GetIamAccessTokenClaimsResultEvent(e) => {
                Event::GetIamAccessTokenClaimsResultEvent {
                    info: e.info.into(),
                    claims: unsorted(e.claims),
                }
            }
            ev::Event::ClearIamTokenCacheResultEvent(e) => Event::ClearIamTokenCacheResultEvent {
                info: e.info.into(),
            },
            ev::Event::DeleteIamTokenByAudienceResultEvent(e) => {
                Event::DeleteIamTokenByAudienceResultEvent {
                    info: e.info.into(),
                }
            }
            ev::Event::GetInformationResultEvent(e) => Event::GetInformationResultEvent {
                info: e.info.into(),
                sdk_version: e.sdk_version,
                sdk_state: e.sdk_state.into(),
                logged_in_user: e.logged_in_user.map(Into::into),
                iam_configuration_data: e.iam_configuration_data.map(|data| IamConfigurationData {
                    client_id: data.client_id,
                    server_url: data.server_url,
                    tenant_id: data.tenant_id,
                    issuer: data.issuer,
                }),
            },
            ev::Event::DeleteUserResultEvent(e) => Event::DeleteUserResultEvent {
                info: e.info.into(),
                sdk_state: e.sdk_state.into(),
                user_list: users(e.user_list),
            },
            ev::Event::GetStateResultEvent(e) => Event::GetStateResultEvent {
                info: e.info.into(),
                sdk_state: e.sdk_state.into(),
            },
            ev::Event::CreateHttpCommonResultEvent(e) => Event::CreateHttpCommonResultEvent {
                request_id: id(e.request_id),
                trace_context: e.trace_context.map(Into::into),
                status: e.status.into(),
                has_error_occurred: e.has_error_occurred,
                error_code: e.error_code,
                error_description: e.error_description,
                http_status: e.http_status,
                response: e.response,
                response_headers: unsorted(e.response_headers),
            },
            ev::Event::InvalidStateEvent(e) => Event::InvalidStateEvent {
                request_id: id(e.request_id),
                trace_context: e.trace_context.map(Into::into),
                request_type: e.request_type,
                sdk_state: e.sdk_state.into(),
                error_message: e.error_message,
            },
            ev::Event::StartLoginEvent(e) => Event::StartLoginEvent {
                user_identifier: e.user_identifier.into(),
                user_list: users(e.user_list),
            },
            ev::Event::ServerConnectionEvent(e) => Event::ServerConnectionEvent {
                connection_state: e.connection_state.into(),
                server_url: e.server_url,
            },
            ev::Event::LoginTokenClaimsAvailableEvent(e) => Event::LoginTokenClaimsAvailableEvent {
                claims: unsorted(e.claims),
            },
            ev::Event::WarningEvent(e) => Event::WarningEvent { report: report(e) },
            ev::Event::RuntimeErrorEvent(e) => Event::RuntimeErrorEvent { report: report(e) },
            ev::Event::FatalErrorEvent(e) => Event::FatalErrorEvent { report: report(e) },
            ev::Event::IdpLoginRequiredEvent(e) => Event::IdpLoginRequiredEvent {
                user_identifier: e.user_identifier.into(),
            },
        }
    }
}

/// The event's `type` name, e.g. `"ExchangeIamTokenResultEvent"`.
#[uniffi::export]
pub fn event_type_name(event: &Event) -> String {
    match event {
        Event::StartResultEvent { .. } => "StartResultEvent",
        Event::RestartResultEvent { .. } => "RestartResultEvent",
        Event::StatusResultEvent { .. } => "StatusResultEvent",
        Event::OfflineLoginResultEvent { .. } => "OfflineLoginResultEvent",
        Event::ExchangeIamTokenResultEvent { .. } => "ExchangeIamTokenResultEvent",
        Event::GetIamAccessTokenClaimsResultEvent { .. } => "GetIamAccessTokenClaimsResultEvent",
        Event::ClearIamTokenCacheResultEvent { .. } => "ClearIamTokenCacheResultEvent",
        Event::DeleteIamTokenByAudienceResultEvent { .. } => "DeleteIamTokenByAudienceResultEvent",
        Event::GetInformationResultEvent { .. } => "GetInformationResultEvent",
        Event::DeleteUserResultEvent { .. } => "DeleteUserResultEvent",
        Event::GetStateResultEvent { .. } => "GetStateResultEvent",
        Event::CreateHttpCommonResultEvent { .. } => "CreateHttpCommonResultEvent",
        Event::InvalidStateEvent { .. } => "InvalidStateEvent",
        Event::StartLoginEvent { .. } => "StartLoginEvent",
        Event::ServerConnectionEvent { .. } => "ServerConnectionEvent",
        Event::LoginTokenClaimsAvailableEvent { .. } => "LoginTokenClaimsAvailableEvent",
        Event::WarningEvent { .. } => "WarningEvent",
        Event::RuntimeErrorEvent { .. } => "RuntimeErrorEvent",
        Event::FatalErrorEvent { .. } => "FatalErrorEvent",
        Event::IdpLoginRequiredEvent { .. } => "IdpLoginRequiredEvent",
    }
    .to_string()
}

/// One status for every answer: the result's `status`; an HTTP transport outcome mapped
/// (`Success` → `OK`, `ServerNotReachable` → `NOT_REACHABLE`, `Timeout` → `TIMEOUT`, others →
/// `FAILED`); `INVALID_STATE` for an `InvalidStateEvent`; none for other pushed events.
#[uniffi::export]
pub fn event_status(event: &Event) -> Option<StatusType> {
    match event {
        Event::StartResultEvent { info, .. }
        | Event::RestartResultEvent { info, .. }
        | Event::StatusResultEvent { info }
        | Event::OfflineLoginResultEvent { info, .. }
        | Event::ExchangeIamTokenResultEvent { info, .. }
        | Event::GetIamAccessTokenClaimsResultEvent { info, .. }
        | Event::ClearIamTokenCacheResultEvent { info }
        | Event::DeleteIamTokenByAudienceResultEvent { info }
        | Event::GetInformationResultEvent { info, .. }
        | Event::DeleteUserResultEvent { info, .. }
        | Event::GetStateResultEvent { info, .. } => Some(info.status),
        Event::CreateHttpCommonResultEvent { status, .. } => {
            Some(ev::HttpCommonStatus::from(*status).to_status_type().into())
        }
        Event::InvalidStateEvent { .. } => Some(StatusType::InvalidState),
        _ => None,
    }
}

/// The id of the request the event answers (results and `InvalidStateEvent`), if any.
#[uniffi::export]
pub fn event_request_id(event: &Event) -> Option<String> {
    match event {
        Event::StartResultEvent { info, .. }
        | Event::RestartResultEvent { info, .. }
        | Event::StatusResultEvent { info }
        | Event::OfflineLoginResultEvent { info, .. }
        | Event::ExchangeIamTokenResultEvent { info, .. }
        | Event::GetIamAccessTokenClaimsResultEvent { info, .. }
        | Event::ClearIamTokenCacheResultEvent { info }
        | Event::DeleteIamTokenByAudienceResultEvent { info }
        | Event::GetInformationResultEvent { info, .. }
        | Event::DeleteUserResultEvent { info, .. }
        | Event::GetStateResultEvent { info, .. } => info.request_id.clone(),
        Event::CreateHttpCommonResultEvent { request_id, .. }
        | Event::InvalidStateEvent { request_id, .. } => request_id.clone(),
        Event::WarningEvent { report }
        | Event::RuntimeErrorEvent { report }
        | Event::FatalErrorEvent { report } => report.request_id.clone(),
        _ => None,
    }
}
