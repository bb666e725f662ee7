//! The typed UniFFI requests become the same `mc_events` requests as their JSON form, and
//! emitted events keep their fields across the boundary.

use std::collections::HashMap;

use mc_ffi::{
    event_request_id, event_status, event_type_name, AuthenticationMode, ClearBehavior, Event,
    HttpCommonStatus, HttpMethod, RequestEvent, StatusType,
};

fn same_as_json(typed: RequestEvent, json: &str) {
    let converted = mc_events::Request::new(mc_events::RequestEvent::from(typed));
    let parsed = mc_events::Request::from_json(json).unwrap();
    assert_eq!(converted, parsed, "{json}");
}

#[test]
fn typed_requests_equal_their_json_form() {
    same_as_json(
        RequestEvent::EnrollAnonymousUserEvent {
            tenant_id: "demo".into(),
            authentication_mode: AuthenticationMode::Password,
            client_id: "AnonymousUserEnrollment".into(),
            password: Some("pw".into()),
        },
        r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"PASSWORD","clientId":"AnonymousUserEnrollment","password":"pw"}"#,
    );
    same_as_json(
        RequestEvent::ClearIamTokenCacheEvent {
            user_identifier: None,
            clear_behavior: None,
        },
        r#"{"type":"ClearIamTokenCacheEvent"}"#,
    );
    same_as_json(
        RequestEvent::ClearIamTokenCacheEvent {
            user_identifier: None,
            clear_behavior: Some(ClearBehavior::ClearOffline),
        },
        r#"{"type":"ClearIamTokenCacheEvent","clearBehavior":"CLEAR_OFFLINE"}"#,
    );
    same_as_json(
        RequestEvent::CreateHttpCommonRequest {
            full_url: "http://127.0.0.1:1/demo/echo".into(),
            method: HttpMethod::Post,
            content: Some("{}".into()),
            content_type: Some("application/json".into()),
            http_headers: Some(HashMap::from([("X-A".into(), "1".into())])),
            certificate_chain: None,
            follow_redirect: true,
            audience: Some("demo-api".into()),
            access_token_identifier: None,
            timeout: Some(5000),
        },
        r#"{"type":"CreateHttpCommonRequest","fullUrl":"http://127.0.0.1:1/demo/echo","method":"POST","content":"{}","contentType":"application/json","httpHeaders":{"X-A":"1"},"audience":"demo-api","timeout":5000}"#,
    );
    same_as_json(
        RequestEvent::EnableAuthenticationModeEvent {
            authentication_mode: AuthenticationMode::No,
            client_id: None,
            password: Some("old".into()),
            new_password: None,
        },
        r#"{"type":"EnableAuthenticationModeEvent","authenticationMode":"NO","password":"old"}"#,
    );
    same_as_json(RequestEvent::GetStateEvent, r#"{"type":"GetStateEvent"}"#);
}

#[test]
fn a_request_keeps_its_secret_out_of_debug_once_converted() {
    let converted = mc_events::RequestEvent::from(RequestEvent::OfflineLoginEvent {
        user_identifier: None,
        password: Some("hunter2-secret".into()),
    });
    assert!(!format!("{converted:?}").contains("hunter2-secret"));
}

#[test]
fn emitted_events_keep_their_fields() {
    let json = r#"{"type":"ExchangeIamTokenResultEvent","requestId":"r-5","status":"OK","hasErrorOccurred":false,"errorCode":0,"errorDescription":"","audience":"demo-api","token":"a.b.c","expiresAt":1767225600}"#;
    let event = Event::from(mc_events::Event::from_json(json).unwrap());
    assert_eq!(event_type_name(&event), "ExchangeIamTokenResultEvent");
    assert_eq!(event_request_id(&event).as_deref(), Some("r-5"));
    assert_eq!(event_status(&event), Some(StatusType::Ok));
    match event {
        Event::ExchangeIamTokenResultEvent {
            audience,
            token,
            expires_at,
            ..
        } => {
            assert_eq!(audience.as_deref(), Some("demo-api"));
            assert_eq!(token.as_deref(), Some("a.b.c"));
            assert_eq!(expires_at, Some(1767225600));
        }
        other => panic!("unexpected {other:?}"),
    }

    let http = r#"{"type":"CreateHttpCommonResultEvent","requestId":"r-12b","status":"serverNotReachable","hasErrorOccurred":true,"errorCode":800000001,"errorDescription":"unreachable","response":"","responseHeaders":{}}"#;
    let event = Event::from(mc_events::Event::from_json(http).unwrap());
    assert_eq!(event_status(&event), Some(StatusType::NotReachable));
    assert!(matches!(
        event,
        Event::CreateHttpCommonResultEvent {
            status: HttpCommonStatus::ServerNotReachable,
            http_status: None,
            ..
        }
    ));

    let pushed = r#"{"type":"WarningEvent","errorType":"LISTENER","errorDescription":"x","errorCode":900000001}"#;
    let event = Event::from(mc_events::Event::from_json(pushed).unwrap());
    assert_eq!(event_type_name(&event), "WarningEvent");
    assert_eq!(event_status(&event), None);
}

#[test]
fn every_event_type_name_matches_the_catalog() {
    // One event per catalog type, built by the runtime's own failure constructor or JSON.
    for kind in mc_events::RequestKind::ALL {
        let event = mc_events::Event::failure(*kind, mc_events::ResultInfo::ok());
        let name = event.type_name();
        assert_eq!(event_type_name(&Event::from(event)), name);
    }
}
