//! The catalog, declared once: every request with its kind, its result type and the states it
//! is valid in; every result type; every pushed event. `RequestEvent`, `RequestKind`, `Event`,
//! `EVENT_TYPE_NAMES`, the accessors of `Event`, the `RequestType` / `ResultType` impls and the
//! docs check (`tests/docs.rs`) are all generated from [`catalog!`]'s one invocation below.
//!
//! Adding a request: declare its struct (request.rs) and its result struct (event.rs) if new,
//! with the derives and `uniffi` attributes their neighbours carry, add one line under
//! `requests` (and one under `results` for a new result type), document it in
//! `docs/events.md`, and handle it in its actor. The compiler points at every match left.
//!
//! Feature `uniffi`: `RequestEvent`, `RequestKind` and `Event` derive `uniffi::Enum` here, so
//! every catalog row is a case of the bindings' enums (each carrying its record); a struct
//! without `derive(uniffi::Record)` cannot be such a case and fails the build with the feature.

use crate::event::*;
use crate::request::*;
use crate::types::{RequestId, SdkState, StatusType, TraceContext};

/// Generates the catalog from its one declaration (see the invocation below).
///
/// - `requests`: `Struct => Kind, ResultStruct, valid_states;` where `valid_states` is an
///   expression over the `SdkState` variants (in scope unqualified).
/// - `results`: `ResultStruct: how;` in the order of `docs/events.md`, where `how` is
///   `info` (a `ResultInfo` field named `info`, the others from `Default`), `info_state`
///   (`info` plus `sdk_state`), or `by_hand` (the struct implements [`ResultFields`] itself
///   and has `fn from_info(ResultInfo) -> Self` for its failures).
/// - `pushed`: `Name(Struct);` for events the runtime sends on its own; `Name(Struct) answers;`
///   for a pushed event that answers a request in place of its result (`InvalidStateEvent`).
///   Each pushed struct implements [`PushedFields`].
macro_rules! catalog {
    (
        requests {
            $($request:ident => $kind:ident, $result_of:ident, $states:expr;)*
        }
        results {
            $($result:ident: $how:ident;)*
        }
        pushed {
            $($pushed:ident($pushed_ty:ident) $($answers:ident)?;)*
        }
    ) => {
        /// Any request. JSON: one object, `"type"` = the request's name.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        #[serde(tag = "type")]
        #[allow(clippy::large_enum_variant)] // built once per request and moved, never stored in bulk
        pub enum RequestEvent {
            $($request($request),)*
        }

        /// Which request it is, without its fields.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        pub enum RequestKind {
            $($kind,)*
        }

        impl RequestKind {
            /// Every request kind, in the order of `docs/events.md`.
            pub const ALL: &'static [RequestKind] = &[$(RequestKind::$kind),*];

            /// The request's `"type"` name in JSON.
            pub const fn name(self) -> &'static str {
                match self {
                    $(RequestKind::$kind => stringify!($request),)*
                }
            }

            /// The `"type"` of the result event that answers this request.
            pub const fn result_name(self) -> &'static str {
                match self {
                    $(RequestKind::$kind => stringify!($result_of),)*
                }
            }

            /// The kind whose `"type"` name this is.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($request) => Some(RequestKind::$kind),)*
                    _ => None,
                }
            }

            /// The states in which this request is valid; in any other it is answered with
            /// `InvalidStateEvent`. `UNINITIALISED` means "not started yet".
            pub const fn valid_states(self) -> &'static [SdkState] {
                #[allow(unused_imports)]
                use SdkState::*;
                match self {
                    $(RequestKind::$kind => $states,)*
                }
            }
        }

        impl RequestEvent {
            pub const fn kind(&self) -> RequestKind {
                match self {
                    $(RequestEvent::$request(_) => RequestKind::$kind,)*
                }
            }
        }

        /// Deserializes the fields of a request of this kind, naming the field on error.
        pub(crate) fn deserialize_request(
            kind: RequestKind,
            object: serde_json::Value,
        ) -> Result<RequestEvent, crate::parse::FieldError> {
            Ok(match kind {
                $(RequestKind::$kind => {
                    RequestEvent::$request(crate::parse::deserialize_fields::<$request>(object)?)
                })*
            })
        }

        // Per-request generated impls. Other derived impls for every request (e.g. an
        // `actix::Message` behind a feature) go here, one block per trait.
        $(
            impl crate::typed::RequestType for $request {
                const KIND: RequestKind = RequestKind::$kind;
                type Result = $result_of;
            }

            // actix feature: the request is a Message answered by its own result event.
            #[cfg(feature = "actix")]
            impl actix::Message for $request {
                type Result = $result_of;
            }

            impl From<$request> for RequestEvent {
                fn from(event: $request) -> Self {
                    RequestEvent::$request(event)
                }
            }

            impl From<$request> for Request {
                fn from(event: $request) -> Self {
                    Request::new(RequestEvent::$request(event))
                }
            }
        )*
        // End of the per-request generated impls.

        /// Any event the runtime emits. JSON: one object, `"type"` = the event's name.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        #[serde(tag = "type")]
        #[allow(clippy::large_enum_variant)] // built once and moved to listeners, never stored in bulk
        pub enum Event {
            $($result($result),)*
            $($pushed($pushed_ty),)*
        }

        /// Every event `"type"` name, results first, in the order of `docs/events.md`.
        pub const EVENT_TYPE_NAMES: &[&str] = &[
            $(stringify!($result),)*
            $(stringify!($pushed),)*
        ];

        /// Every result event `"type"` name, in the order of `docs/events.md`.
        pub const RESULT_TYPE_NAMES: &[&str] = &[$(stringify!($result),)*];

        /// Every pushed event `"type"` name, in the order of `docs/events.md`.
        pub const PUSHED_TYPE_NAMES: &[&str] = &[$(stringify!($pushed),)*];

        impl Event {
            /// The event's `"type"` name.
            pub const fn type_name(&self) -> &'static str {
                match self {
                    $(Event::$result(_) => stringify!($result),)*
                    $(Event::$pushed(_) => stringify!($pushed),)*
                }
            }

            /// The common result fields, for every result except `CreateHttpCommonResultEvent`
            /// (whose status is an HTTP transport outcome).
            pub fn result_info(&self) -> Option<&ResultInfo> {
                match self {
                    $(Event::$result(e) => ResultFields::result_info(e),)*
                    $(Event::$pushed(_) => None,)*
                }
            }

            /// Mutable access to the common result fields (to stamp a request id on a result).
            pub fn result_info_mut(&mut self) -> Option<&mut ResultInfo> {
                match self {
                    $(Event::$result(e) => ResultFields::result_info_mut(e),)*
                    $(Event::$pushed(_) => None,)*
                }
            }

            /// The id of the request this event answers or was caused by.
            pub fn request_id(&self) -> Option<&RequestId> {
                match self {
                    $(Event::$result(e) => ResultFields::request_id(e),)*
                    $(Event::$pushed(e) => PushedFields::request_id(e),)*
                }
            }

            /// The trace context of the request this event answers.
            pub fn trace_context(&self) -> Option<&TraceContext> {
                match self {
                    $(Event::$result(e) => ResultFields::trace_context(e),)*
                    $(Event::$pushed(e) => PushedFields::trace_context(e),)*
                }
            }

            /// Sets the request id and trace context of an answer (a result or
            /// `InvalidStateEvent`); other events are left unchanged.
            pub fn set_request(
                &mut self,
                request_id: Option<RequestId>,
                trace_context: Option<TraceContext>,
            ) {
                match self {
                    $(Event::$result(e) => ResultFields::set_request(e, request_id, trace_context),)*
                    $(Event::$pushed(e) => PushedFields::set_request(e, request_id, trace_context),)*
                }
            }

            /// Sets the trace context of a pushed event (that of the request whose handling
            /// pushed it, or a fresh one); results are left unchanged (`set_request` is theirs).
            pub fn set_pushed_trace_context(&mut self, trace_context: Option<TraceContext>) {
                match self {
                    $(Event::$result(_) => { let _ = &trace_context; })*
                    $(Event::$pushed(e) => PushedFields::set_trace_context(e, trace_context),)*
                }
            }

            /// The status of an answer: a result's `status` (HTTP transport outcomes mapped to
            /// `StatusType`), INVALID_STATE for `InvalidStateEvent`, `None` for pushed events.
            pub fn status(&self) -> Option<StatusType> {
                match self {
                    $(Event::$result(e) => Some(ResultFields::status(e)),)*
                    $(Event::$pushed(e) => PushedFields::status(e),)*
                }
            }

            /// True for the events that answer a request: every result event, and
            /// `InvalidStateEvent` (which answers a request in place of its result).
            pub const fn is_result(&self) -> bool {
                match self {
                    $(Event::$result(_) => true,)*
                    $(Event::$pushed(_) => catalog!(@answers $($answers)?),)*
                }
            }

            /// As [`Event::failure`], with the `sdkState` the runtime is in.
            pub fn failure_in_state(
                kind: RequestKind,
                info: ResultInfo,
                sdk_state: SdkState,
            ) -> Event {
                match kind {
                    $(RequestKind::$kind => {
                        Event::$result_of(<$result_of as crate::typed::ResultType>::failure(
                            info, sdk_state,
                        ))
                    })*
                }
            }
        }

        $(
            catalog!(@result_fields $how $result);

            impl From<$result> for Event {
                fn from(result: $result) -> Event {
                    Event::$result(result)
                }
            }

            impl crate::typed::ResultType for $result {
                #[allow(clippy::needless_update)] // some results have no field besides `info`
                fn failure(info: ResultInfo, sdk_state: SdkState) -> Self {
                    catalog!(@failure $how $result, info, sdk_state)
                }

                #[allow(clippy::result_large_err)] // see the trait
                fn from_answer(kind: RequestKind, event: Event) -> Result<Self, Event> {
                    match event.into_result_of(kind) {
                        Event::$result(result) => Ok(result),
                        other => Err(other),
                    }
                }
            }
        )*
    };

    (@answers) => { false };
    (@answers answers) => { true };

    (@result_fields by_hand $result:ident) => {};
    (@result_fields $how:ident $result:ident) => {
        impl ResultFields for $result {
            fn result_info(&self) -> Option<&ResultInfo> {
                Some(&self.info)
            }
            fn result_info_mut(&mut self) -> Option<&mut ResultInfo> {
                Some(&mut self.info)
            }
            fn request_id(&self) -> Option<&RequestId> {
                self.info.request_id.as_ref()
            }
            fn trace_context(&self) -> Option<&TraceContext> {
                self.info.trace_context.as_ref()
            }
            fn set_request(
                &mut self,
                request_id: Option<RequestId>,
                trace_context: Option<TraceContext>,
            ) {
                self.info.request_id = request_id;
                self.info.trace_context = trace_context;
            }
            fn status(&self) -> StatusType {
                self.info.status
            }
        }
    };

    (@failure info $result:ident, $info:ident, $state:ident) => {{
        let _ = $state;
        $result { $info, ..Default::default() }
    }};
    (@failure info_state $result:ident, $info:ident, $state:ident) => {
        $result { $info, sdk_state: $state, ..Default::default() }
    };
    (@failure by_hand $result:ident, $info:ident, $state:ident) => {{
        let _ = $state;
        $result::from_info($info)
    }};
}

/// What every result type answers, so `Event`'s accessors need no fallback arm: a result
/// type is either declared `info` / `info_state` in the catalog (and these are generated) or
/// implements this trait itself.
pub(crate) trait ResultFields {
    fn result_info(&self) -> Option<&ResultInfo>;
    fn result_info_mut(&mut self) -> Option<&mut ResultInfo>;
    fn request_id(&self) -> Option<&RequestId>;
    fn trace_context(&self) -> Option<&TraceContext>;
    fn set_request(&mut self, request_id: Option<RequestId>, trace_context: Option<TraceContext>);
    fn status(&self) -> StatusType;
}

/// The request id and trace context of a pushed event, where it has them.
pub(crate) trait PushedFields {
    fn request_id(&self) -> Option<&RequestId>;
    fn trace_context(&self) -> Option<&TraceContext>;
    /// Sets the request this event answers; events that answer none ignore it.
    fn set_request(&mut self, request_id: Option<RequestId>, trace_context: Option<TraceContext>);
    /// Sets the trace context (of the request whose handling pushed it, or a fresh one).
    fn set_trace_context(&mut self, trace_context: Option<TraceContext>);
    /// `Some` only for a pushed event that answers a request.
    fn status(&self) -> Option<StatusType>;
}

catalog! {
    requests {
        StartEvent => Start, StartResultEvent, &[Uninitialised];
        RestartEvent => Restart, RestartResultEvent, STARTED_STATES;
        EnrollAnonymousUserEvent => EnrollAnonymousUser, StatusResultEvent,
            &[ActivationRequired, LoginRequired, LoggedIn];
        OfflineLoginEvent => OfflineLogin, OfflineLoginResultEvent, &[LoginRequired, LoggedIn];
        ExchangeIamTokenEvent => ExchangeIamToken, ExchangeIamTokenResultEvent, &[LoggedIn];
        GetIamAccessTokenClaimsEvent => GetIamAccessTokenClaims,
            GetIamAccessTokenClaimsResultEvent, &[LoggedIn];
        ClearIamTokenCacheEvent => ClearIamTokenCache, ClearIamTokenCacheResultEvent, &[LoggedIn];
        DeleteIamTokenByAudienceEvent => DeleteIamTokenByAudience,
            DeleteIamTokenByAudienceResultEvent, &[LoggedIn];
        GetInformationEvent => GetInformation, GetInformationResultEvent, STARTED_STATES;
        DeleteUserEvent => DeleteUser, DeleteUserResultEvent, STARTED_STATES;
        EnableAuthenticationModeEvent => EnableAuthenticationMode, StatusResultEvent, &[LoggedIn];
        CreateHttpCommonRequest => CreateHttpCommon, CreateHttpCommonResultEvent, &[LoggedIn];
        GetStateEvent => GetState, GetStateResultEvent, STARTED_STATES;
        // Identified users (issue 10): the app opens the URL in a browser, then hands back
        // the redirect. Not while a restart is needed (UNINITIALISED) or the store is
        // unreadable (UNIDENTIFIED): as EnrollAnonymousUser.
        CreateAuthorizationRequestEvent => CreateAuthorizationRequest,
            CreateAuthorizationRequestResultEvent, &[ActivationRequired, LoginRequired, LoggedIn];
        SetAuthorisationCodeEvent => SetAuthorisationCode, StatusResultEvent,
            &[ActivationRequired, LoginRequired, LoggedIn];
        // Workspaces (issue 11 point 10): only where enrolled users are known and no restart
        // is needed; refused while another state-changing request runs (controller).
        SwitchWorkspaceEvent => SwitchWorkspace, SwitchWorkspaceResultEvent,
            &[LoginRequired, LoggedIn];
    }
    results {
        StartResultEvent: info_state;
        RestartResultEvent: info_state;
        StatusResultEvent: info;
        OfflineLoginResultEvent: info;
        ExchangeIamTokenResultEvent: info;
        GetIamAccessTokenClaimsResultEvent: info;
        ClearIamTokenCacheResultEvent: info;
        DeleteIamTokenByAudienceResultEvent: info;
        GetInformationResultEvent: info_state;
        DeleteUserResultEvent: info_state;
        GetStateResultEvent: info_state;
        CreateHttpCommonResultEvent: by_hand;
        CreateAuthorizationRequestResultEvent: info;
        SwitchWorkspaceResultEvent: info_state;
    }
    pushed {
        InvalidStateEvent(InvalidStateEvent) answers;
        StartLoginEvent(StartLoginEvent);
        ServerConnectionEvent(ServerConnectionEvent);
        LoginTokenClaimsAvailableEvent(LoginTokenClaimsAvailableEvent);
        WarningEvent(ErrorReport);
        RuntimeErrorEvent(ErrorReport);
        FatalErrorEvent(ErrorReport);
        IdpLoginRequiredEvent(IdpLoginRequiredEvent);
    }
}

/// Every started state: where `GetStateEvent`, `RestartEvent` and the like are valid.
const STARTED_STATES: &[SdkState] = &[
    SdkState::ActivationRequired,
    SdkState::LoginRequired,
    SdkState::LoggedIn,
    SdkState::Unidentified,
];
