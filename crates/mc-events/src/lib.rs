//! The event catalog of mc-runtime: every request, result and pushed event of the MC-SDK
//! "MasterController" model as a typed Rust value, and its stable JSON form.
//!
//! What it is for: the one vocabulary the runtime, the bindings and the event console share.
//! - Requests: one struct per request ([`EnrollAnonymousUserEvent`], ...), [`RequestEvent`] over
//!   all of them, and [`Request`] (event + [`RequestId`] + [`TraceContext`]).
//!   [`Request::from_json`] reads the JSON form and names the field at fault in
//!   [`InvalidRequest`]; [`RequestEvent::validate`] applies the same checks to requests built
//!   in Rust.
//! - Events the runtime emits: [`Event`] (results and pushed events), with
//!   [`Event::failure`] / [`Event::invalid_request`] so every request gets its own result type.
//! - Enums ([`SdkState`], [`StatusType`], ...) and [`error_code`].
//!
//! Free of any runtime: the optional feature `actix` only adds `impl actix::Message` to each
//! request type, with its own result event as `Result` (what mc-runtime's actors handle).
//! The optional feature `uniffi` (mc-ffi turns it on) derives `uniffi::Record` / `uniffi::Enum`
//! on every request, result and pushed type, so the Kotlin, Swift and Python bindings use these
//! types themselves (namespace `mc_events`); a `SecretString` crosses as a plain string there.
//!
//! JSON form: one object per event, `"type"` = the event's name, fields in camelCase as the
//! MC-SDK names them; optional fields are left out when absent; unknown fields are ignored.
//! Secrets (passwords, tokens) are [`mc_secret::SecretString`]: present in JSON (the host needs
//! its token), never in `Debug`. `docs/events.md` is the reference; a test keeps it in step.
//!
//! ```
//! use mc_events::*;
//!
//! // Built in Rust, as in the MC-SDK's Kotlin samples ...
//! let request: Request =
//!     EnrollAnonymousUserEvent::new("demo", AuthenticationMode::No, "AnonymousUserEnrollment")
//!         .into();
//! // ... or read from its JSON form; both are the same request.
//! let parsed = Request::from_json(
//!     r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"NO","clientId":"AnonymousUserEnrollment"}"#,
//! )?;
//! assert_eq!(parsed, request);
//!
//! // A bad request names the field, and gets the result type of its request.
//! let err = Request::from_json(r#"{"type":"ExchangeIamTokenEvent","requestId":"r-1","audience":5}"#)
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "field `audience`: expected a string");
//! let answer = Event::invalid_request(&err);
//! assert_eq!(answer.type_name(), "ExchangeIamTokenResultEvent");
//! assert_eq!(answer.status(), Some(StatusType::InvalidParameter));
//! # Ok::<(), InvalidRequest>(())
//! ```
//!
//! What it must not touch: no I/O, no async runtime, no logging, no crypto. It decides what
//! an event looks like, not what the runtime does with it.

mod catalog;
pub mod error_code;
mod event;
mod json;
mod next_action;
mod parse;
mod request;
mod typed;
mod types;
#[cfg(feature = "uniffi")]
mod uniffi_types;

// Feature `uniffi`: the catalog's types are the bindings' types, in the UniFFI namespace
// `mc_events` (Kotlin package `uniffi.mc_events`, Swift and Python module `mc_events`).
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("mc_events");

pub use event::{
    ClearIamTokenCacheResultEvent, CreateAuthorizationRequestResultEvent,
    CreateHttpCommonResultEvent, DeleteIamTokenByAudienceResultEvent, DeleteUserResultEvent,
    ErrorReport, Event, ExchangeIamTokenResultEvent, GetIamAccessTokenClaimsResultEvent,
    GetInformationResultEvent, GetStateResultEvent, IdpLoginRequiredEvent, InvalidStateEvent,
    LoginTokenClaimsAvailableEvent, OfflineLoginResultEvent, RestartResultEvent, ResultInfo,
    ServerConnectionEvent, StartLoginEvent, StartResultEvent, StatusResultEvent,
    SwitchWorkspaceResultEvent, EVENT_TYPE_NAMES, PUSHED_TYPE_NAMES, RESULT_TYPE_NAMES,
};
pub use mc_secret::SecretString;
pub use next_action::{BUSY_RETRY_SECS, DEFAULT_RETRY_SECS};
pub use parse::InvalidRequest;
pub use request::{parse_audience_scopes, MAX_AUDIENCE_SCOPES};
pub use request::{
    pin_problem, ClearIamTokenCacheEvent, CreateAuthorizationRequestEvent, CreateHttpCommonRequest,
    DeleteIamTokenByAudienceEvent, DeleteUserEvent, EnableAuthenticationModeEvent,
    EnrollAnonymousUserEvent, ExchangeIamTokenEvent, GetIamAccessTokenClaimsEvent,
    GetInformationEvent, GetStateEvent, OfflineLoginEvent, Request, RequestEvent, RequestKind,
    RestartEvent, SetAuthorisationCodeEvent, StartEvent, SwitchWorkspaceEvent, MAX_APP_NAME_BYTES,
    MAX_AUTHORIZATION_FIELD_BYTES, MAX_CONFIGURATION_VALUE_BYTES, MAX_IDENTIFIER_BYTES,
    MAX_LOCALE_BYTES, PIN_MAX_DIGITS, PIN_MIN_DIGITS, START_CONFIGURATION_KEYS,
};
pub use typed::{RequestType, ResultType};
pub use types::{
    AppVersion, AuthenticationMode, ClearBehavior, HttpCommonStatus, HttpMethod,
    IamConfigurationData, NextAction, RequestId, SdkState, ServerConnectionState, StatusType,
    TraceContext, UserDetails, UserIdentifier, MAX_REQUEST_ID_BYTES, MAX_TRACESTATE_BYTES,
};
