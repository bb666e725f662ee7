//! The bindings carry mc-events' own types: what a Kotlin, Swift or Python host sends crosses
//! the FFI as the same `mc_events` value as its JSON form, every catalog name is reachable
//! through the binding types, and a malformed buffer from the foreign side is an error, never a
//! panic or a half-read value.

use mc_events::{
    AuthenticationMode, ClearBehavior, Event, HttpCommonStatus, HttpMethod, NextAction,
    RequestEvent, RequestKind, StatusType, EVENT_TYPE_NAMES,
};
use mc_ffi::{event_request_id, event_status, event_type_name, UniFfiTag};
use uniffi::{Lift, Lower, RustBuffer};

/// `value` as the foreign side receives it (lowered into a buffer) and sends it back (lifted).
fn across_the_ffi<T: Lower<UniFfiTag> + Lift<UniFfiTag>>(value: T) -> T {
    let bytes = <T as Lower<UniFfiTag>>::lower_into_rust_buffer(value).destroy_into_vec();
    lift_bytes(bytes).expect("a buffer the bindings wrote lifts back")
}

/// Lifts what a foreign caller wrote, as the generated scaffolding does.
fn lift_bytes<T: Lift<UniFfiTag>>(bytes: Vec<u8>) -> uniffi::Result<T> {
    <T as Lift<UniFfiTag>>::try_lift_from_rust_buffer(RustBuffer::from_vec(bytes))
}

fn request(json: &str) -> RequestEvent {
    mc_events::Request::from_json(json)
        .unwrap_or_else(|e| panic!("{json}: {e}"))
        .event
}

/// One request of each kind, in its JSON form. A new catalog request without a line here fails
/// `every_catalog_request_crosses_the_ffi`: add its smallest valid JSON.
fn request_sample(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Start => {
            r#"{"type":"StartEvent","appName":"demo","appVersion":{"major":1,"minor":2,"build":3},"configuration":{"serverUrl":"https://idp.example"}}"#
        }
        RequestKind::Restart => r#"{"type":"RestartEvent","locale":"de-CH"}"#,
        RequestKind::EnrollAnonymousUser => {
            r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"PASSWORD","clientId":"AnonymousUserEnrollment","password":"hunter2-secret"}"#
        }
        RequestKind::OfflineLogin => {
            r#"{"type":"OfflineLoginEvent","userIdentifier":{"tenantId":"demo","userId":"u-1"},"password":"hunter2-secret"}"#
        }
        RequestKind::ExchangeIamToken => {
            r#"{"type":"ExchangeIamTokenEvent","audience":"demo-api","forceUpdate":true}"#
        }
        RequestKind::GetIamAccessTokenClaims => r#"{"type":"GetIamAccessTokenClaimsEvent"}"#,
        RequestKind::ClearIamTokenCache => {
            r#"{"type":"ClearIamTokenCacheEvent","clearBehavior":"CLEAR_OFFLINE"}"#
        }
        RequestKind::DeleteIamTokenByAudience => {
            r#"{"type":"DeleteIamTokenByAudienceEvent","audiences":["a","b"]}"#
        }
        RequestKind::GetInformation => r#"{"type":"GetInformationEvent"}"#,
        RequestKind::DeleteUser => r#"{"type":"DeleteUserEvent"}"#,
        RequestKind::EnableAuthenticationMode => {
            r#"{"type":"EnableAuthenticationModeEvent","authenticationMode":"NO","password":"old-secret"}"#
        }
        RequestKind::CreateHttpCommon => {
            r#"{"type":"CreateHttpCommonRequest","fullUrl":"http://127.0.0.1:1/demo/echo","method":"POST","content":"{}","contentType":"application/json","httpHeaders":{"X-B":"2","X-A":"1"},"audience":"demo-api","timeout":5000}"#
        }
        RequestKind::GetState => r#"{"type":"GetStateEvent"}"#,
        RequestKind::CreateAuthorizationRequest => {
            r#"{"type":"CreateAuthorizationRequestEvent","tenantId":"demo","clientId":"demo-app","redirectUri":"http://127.0.0.1:1/callback","acrValues":"2","maxAge":600}"#
        }
        RequestKind::SetAuthorisationCode => {
            r#"{"type":"SetAuthorisationCodeEvent","tenantId":"demo","clientId":"demo-app","authenticationMode":"NO","authorisationCode":"code-secret","state":"s-1","keepAnonymous":true}"#
        }
        RequestKind::SwitchWorkspace => r#"{"type":"SwitchWorkspaceEvent","tenantId":"other"}"#,
        #[allow(unreachable_patterns)] // rows other engineers add land here until they add a sample
        other => panic!("no JSON sample of {other}: add one to request_sample"),
    }
}

/// One pushed event of each name, in its JSON form (results come from `Event::failure`).
fn pushed_sample(name: &str) -> String {
    let fields = match name {
        "InvalidStateEvent" => {
            r#""requestId":"r-9","requestType":"ExchangeIamTokenEvent","sdkState":"LOGIN_REQUIRED","errorMessage":"log in first""#
        }
        "StartLoginEvent" => {
            r#""userIdentifier":{"tenantId":"demo","userId":"u-1"},"userList":[{"tenantId":"demo","userId":"u-1"}]"#
        }
        "ServerConnectionEvent" => {
            r#""connectionState":"NOT_REACHABLE","serverUrl":"http://127.0.0.1:9","traceContext":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#
        }
        "LoginTokenClaimsAvailableEvent" => r#""claims":{"sub":"u-1","azp":"demo"}"#,
        "WarningEvent" | "RuntimeErrorEvent" | "FatalErrorEvent" => {
            r#""requestId":"r-3","errorType":"LISTENER","errorDescription":"x","errorCode":900000001,"traceContext":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"k=v"}"#
        }
        "IdpLoginRequiredEvent" => {
            r#""userIdentifier":{"tenantId":"demo","userId":"u-1"},"acrValues":"2","maxAge":600"#
        }
        other => panic!("no JSON sample of the pushed event {other}: add one to pushed_sample"),
    };
    format!(r#"{{"type":"{name}",{fields}}}"#)
}

/// Every event name of the catalog, as an event: results by the runtime's own failure
/// constructor, pushed events from their JSON samples.
fn one_event_of_each_name() -> Vec<Event> {
    EVENT_TYPE_NAMES
        .iter()
        .map(|name| {
            let answered_by = RequestKind::ALL.iter().find(|k| k.result_name() == *name);
            match answered_by {
                Some(kind) => Event::failure(
                    *kind,
                    mc_events::ResultInfo::error(StatusType::Failed, 100_000_001, "x")
                        .with_request(Some("r-1".into()), None),
                ),
                None => {
                    Event::from_json(&pushed_sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
                }
            }
        })
        .collect()
}

#[test]
fn every_catalog_request_crosses_the_ffi_unchanged() {
    assert!(!RequestKind::ALL.is_empty());
    for kind in RequestKind::ALL {
        let json = request_sample(*kind);
        let sent = request(json);
        let received = across_the_ffi(sent.clone());
        assert_eq!(received.kind(), *kind);
        assert_eq!(received, sent, "{kind}");
        // The JSON form is the same as before the crossing (keys of maps sorted).
        let expected: serde_json::Value = serde_json::from_str(json).unwrap();
        let again = mc_events::Request::new(received).to_json_value();
        for (field, value) in expected.as_object().unwrap() {
            assert_eq!(again.get(field), Some(value), "{kind}: field {field}");
        }
    }
}

#[test]
fn every_catalog_event_name_crosses_the_ffi_unchanged() {
    let events = one_event_of_each_name();
    assert_eq!(events.len(), EVENT_TYPE_NAMES.len());
    for (event, name) in events.into_iter().zip(EVENT_TYPE_NAMES) {
        assert_eq!(event_type_name(&event), *name);
        let json = event.to_json();
        let received = across_the_ffi(event.clone());
        assert_eq!(received, event, "{name}");
        assert_eq!(received.to_json(), json, "{name}: the JSON form changed");
        assert_eq!(event_type_name(&received), *name);
    }
}

#[test]
fn secrets_cross_as_plain_strings_and_stay_out_of_debug() {
    // The host gives its password as a string; the Rust side holds it redacted.
    let sent = request(request_sample(RequestKind::OfflineLogin));
    let received = across_the_ffi(sent);
    assert!(!format!("{received:?}").contains("hunter2-secret"));
    match &received {
        RequestEvent::OfflineLoginEvent(login) => {
            assert_eq!(
                login.password.as_ref().map(|p| p.expose()),
                Some("hunter2-secret")
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    // The host needs its token in clear: the lowered buffer holds it as a plain string.
    let json = r#"{"type":"ExchangeIamTokenResultEvent","requestId":"r-5","status":"OK","hasErrorOccurred":false,"errorCode":0,"errorDescription":"","audience":"demo-api","token":"a.b.c-token","expiresAt":1767225600}"#;
    let event = Event::from_json(json).unwrap();
    assert!(!format!("{event:?}").contains("a.b.c-token"));
    let bytes = <Event as Lower<UniFfiTag>>::lower_into_rust_buffer(event).destroy_into_vec();
    assert!(bytes.windows(11).any(|w| w == b"a.b.c-token"));
    let received: Event = lift_bytes(bytes).unwrap();
    assert_eq!(event_request_id(&received).as_deref(), Some("r-5"));
    assert_eq!(event_status(&received), Some(StatusType::Ok));
    match received {
        Event::ExchangeIamTokenResultEvent(result) => {
            assert_eq!(
                result.token.as_ref().map(|t| t.expose()),
                Some("a.b.c-token")
            );
            assert_eq!(result.expires_at, Some(1767225600));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn next_action_and_transport_status_cross_the_ffi() {
    let http = r#"{"type":"CreateHttpCommonResultEvent","requestId":"r-12b","status":"serverNotReachable","hasErrorOccurred":true,"errorCode":800000001,"errorDescription":"unreachable","nextAction":{"action":"RETRY_AFTER","seconds":30},"response":"","responseHeaders":{}}"#;
    let event = across_the_ffi(Event::from_json(http).unwrap());
    assert_eq!(event_status(&event), Some(StatusType::NotReachable));
    match event {
        Event::CreateHttpCommonResultEvent(result) => {
            assert_eq!(result.status, HttpCommonStatus::ServerNotReachable);
            assert_eq!(result.http_status, None);
            assert_eq!(
                result.next_action,
                Some(NextAction::RetryAfter { seconds: 30 })
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    let pushed = Event::from_json(&pushed_sample("WarningEvent")).unwrap();
    assert_eq!(event_status(&pushed), None);
    assert_eq!(event_request_id(&pushed).as_deref(), Some("r-3"));
}

#[test]
fn requests_built_with_the_types_equal_their_json_form() {
    let built: RequestEvent = mc_events::ClearIamTokenCacheEvent::new()
        .with_behavior(ClearBehavior::ClearOffline)
        .into();
    assert_eq!(
        across_the_ffi(built),
        request(r#"{"type":"ClearIamTokenCacheEvent","clearBehavior":"CLEAR_OFFLINE"}"#)
    );
    let built: RequestEvent =
        mc_events::CreateHttpCommonRequest::new("http://h/x", HttpMethod::Get)
            .with_header("X-A", "1")
            .into();
    assert_eq!(
        across_the_ffi(built),
        request(
            r#"{"type":"CreateHttpCommonRequest","fullUrl":"http://h/x","method":"GET","httpHeaders":{"X-A":"1"}}"#
        )
    );
    let built: RequestEvent =
        mc_events::EnrollAnonymousUserEvent::new("demo", AuthenticationMode::No, "c").into();
    assert_eq!(
        across_the_ffi(built),
        request(
            r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"NO","clientId":"c"}"#
        )
    );
}

#[test]
fn a_malformed_buffer_from_the_host_is_an_error_not_a_panic() {
    let good = <RequestEvent as Lower<UniFfiTag>>::lower_into_rust_buffer(request(request_sample(
        RequestKind::ExchangeIamToken,
    )))
    .destroy_into_vec();

    // An unknown variant (a newer host against an older library).
    let mut unknown_variant = good.clone();
    unknown_variant[..4].copy_from_slice(&9_999_i32.to_be_bytes());
    assert!(lift_bytes::<RequestEvent>(unknown_variant).is_err());

    // Cut short, and with bytes left over.
    assert!(lift_bytes::<RequestEvent>(good[..good.len() - 3].to_vec()).is_err());
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(lift_bytes::<RequestEvent>(trailing).is_err());

    // A string length far beyond the buffer (no huge allocation, no panic).
    let mut oversized = good.clone();
    oversized[4..8].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(lift_bytes::<RequestEvent>(oversized).is_err());

    // Not UTF-8 where a string is expected.
    let mut not_utf8 = good;
    not_utf8[8] = 0xff;
    assert!(lift_bytes::<RequestEvent>(not_utf8).is_err());

    assert!(lift_bytes::<RequestEvent>(Vec::new()).is_err());
}

#[test]
fn every_authentication_mode_crosses_the_ffi() {
    assert!(AuthenticationMode::ALL.contains(&AuthenticationMode::Pin));
    for mode in AuthenticationMode::ALL {
        let json = format!(
            r#"{{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"{mode}","clientId":"c","password":"482916"}}"#
        );
        assert_eq!(across_the_ffi(request(&json)), request(&json), "{mode}");
    }
}

#[test]
fn a_pending_idp_deletion_crosses_the_ffi_and_defaults_to_false() {
    let json = r#"{"type":"DeleteUserResultEvent","requestId":"r-10","status":"OK","hasErrorOccurred":false,"errorCode":0,"errorDescription":"","sdkState":"ACTIVATION_REQUIRED","userList":[],"idpDeletionPending":true}"#;
    match across_the_ffi(Event::from_json(json).unwrap()) {
        Event::DeleteUserResultEvent(result) => assert!(result.idp_deletion_pending),
        other => panic!("unexpected {other:?}"),
    }
    // A result written before the field existed reads as "nothing pending".
    let older = json.replace(r#","idpDeletionPending":true"#, "");
    match Event::from_json(&older).unwrap() {
        Event::DeleteUserResultEvent(result) => assert!(!result.idp_deletion_pending),
        other => panic!("unexpected {other:?}"),
    }
}
