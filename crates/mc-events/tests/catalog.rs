//! The event catalog through its public API: JSON round trips, request parsing errors that name
//! the field, secrets kept out of Debug, and the result type that answers each request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use mc_events::*;
use serde_json::json;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn user() -> UserIdentifier {
    UserIdentifier::new("demo", "6f1c2b8e-1a4d-4c1e-9a55-2d3f0e7b9c10")
}

fn trace() -> TraceContext {
    TraceContext::new(TRACEPARENT).with_tracestate("vendor=abc")
}

/// One request of every kind, with every optional field set.
fn every_request() -> Vec<Request> {
    let mut configuration = BTreeMap::new();
    configuration.insert("serverUrl".to_owned(), "http://127.0.0.1:8080".to_owned());
    vec![
        StartEvent {
            locale: Some("de-DE".into()),
            app_version: Some(AppVersion::new(1, 2, 3)),
            app_name: Some("demo app".into()),
            configuration: Some(configuration),
        }
        .into(),
        RestartEvent {
            locale: Some("en".into()),
            app_version: Some(AppVersion::new(1, 0, 0)),
            app_name: Some("demo".into()),
        }
        .into(),
        EnrollAnonymousUserEvent::new(
            "demo",
            AuthenticationMode::Password,
            "AnonymousUserEnrollment",
        )
        .with_password("correct horse")
        .into(),
        OfflineLoginEvent::new()
            .for_user(user())
            .with_password("pw")
            .into(),
        ExchangeIamTokenEvent::new("demo-api")
            .with_force_update(true)
            .into(),
        GetIamAccessTokenClaimsEvent::new().into(),
        ClearIamTokenCacheEvent::new()
            .for_user(user())
            .with_behavior(ClearBehavior::ClearOffline)
            .into(),
        DeleteIamTokenByAudienceEvent::new(["demo-api", "other-api"]).into(),
        GetInformationEvent::new().into(),
        DeleteUserEvent::new().for_user(user()).into(),
        EnableAuthenticationModeEvent {
            authentication_mode: AuthenticationMode::Password,
            client_id: Some("AnonymousUserEnrollment".into()),
            password: Some("old".into()),
            new_password: Some("new".into()),
        }
        .into(),
        CreateHttpCommonRequest {
            certificate_chain: Some("-----BEGIN CERTIFICATE-----\n...".into()),
            follow_redirect: false,
            access_token_identifier: Some("demo-api".into()),
            ..CreateHttpCommonRequest::new("http://127.0.0.1:8080/demo/echo", HttpMethod::Post)
                .with_audience("demo-api")
                .with_content("{\"a\":1}", "application/json")
                .with_header("X-Trace", "1")
                .with_timeout_ms(5000)
        }
        .into(),
        GetStateEvent::new().into(),
        CreateAuthorizationRequestEvent {
            scope: Some("openid offline_access".into()),
            acr_values: Some("urn:mc:acr:strong".into()),
            login_hint: Some("alice".into()),
            prompt: Some("login".into()),
            max_age: Some(300),
            ..CreateAuthorizationRequestEvent::new("demo", "mc-native", "http://127.0.0.1:5000/cb")
        }
        .into(),
        SwitchWorkspaceEvent::new("other-tenant").into(),
        SetAuthorisationCodeEvent::with_redirect_url(
            "demo",
            "mc-native",
            AuthenticationMode::Password,
            "http://127.0.0.1:5000/cb?code=code-secret&state=s1",
        )
        .with_password("pw")
        .into(),
        SetAuthorisationCodeEvent {
            keep_anonymous: Some(true),
            ..SetAuthorisationCodeEvent::with_code(
                "demo",
                "mc-native",
                AuthenticationMode::No,
                "code-secret",
                "s1",
            )
        }
        .into(),
    ]
}

fn ok_with_request() -> ResultInfo {
    ResultInfo::ok().with_request(Some(RequestId::new("r-1")), Some(trace()))
}

/// One event of every type, with every optional field set.
fn every_event() -> Vec<Event> {
    let details = UserDetails {
        user_identifier: user(),
        display_username: Some("anon".into()),
        display_email: Some("a@example.invalid".into()),
    };
    let mut claims = BTreeMap::new();
    claims.insert("sub".to_owned(), "6f1c2b8e".to_owned());
    claims.insert("acr".to_owned(), "0".to_owned());
    let mut headers = BTreeMap::new();
    headers.insert("content-type".to_owned(), "application/json".to_owned());
    let report = ErrorReport {
        request_id: Some(RequestId::new("r-9")),
        trace_context: Some(trace()),
        ..ErrorReport::new(
            "STORE",
            error_code::STORE_READ_FAILED,
            "the store could not be read",
        )
    };
    vec![
        Event::StartResultEvent(StartResultEvent {
            info: ok_with_request(),
            sdk_state: SdkState::LoginRequired,
            user_details_list: vec![details.clone()],
            supported_features: vec!["ANONYMOUS_ENROLLMENT".into()],
        }),
        Event::RestartResultEvent(RestartResultEvent {
            info: ok_with_request(),
            sdk_state: SdkState::LoginRequired,
            user_details_list: vec![details],
            supported_features: vec![],
        }),
        Event::StatusResultEvent(StatusResultEvent {
            info: ok_with_request(),
            ..Default::default()
        }),
        Event::OfflineLoginResultEvent(OfflineLoginResultEvent {
            info: ResultInfo::error(
                StatusType::TemporaryLocked,
                error_code::TEMPORARILY_LOCKED,
                "wait 30 s, then try again",
            ),
            retry_counter: Some(2),
            retry_delay: Some(30),
        }),
        Event::ExchangeIamTokenResultEvent(ExchangeIamTokenResultEvent {
            info: ok_with_request(),
            audience: Some("demo-api".into()),
            token: Some(SecretString::new("eyJhbGciOiJFUzI1NiJ9.secret-token.sig")),
            expires_at: Some(1_760_000_000),
        }),
        Event::GetIamAccessTokenClaimsResultEvent(GetIamAccessTokenClaimsResultEvent {
            info: ok_with_request(),
            claims: claims.clone(),
        }),
        Event::ClearIamTokenCacheResultEvent(ClearIamTokenCacheResultEvent {
            info: ok_with_request(),
        }),
        Event::DeleteIamTokenByAudienceResultEvent(DeleteIamTokenByAudienceResultEvent {
            info: ok_with_request(),
        }),
        Event::GetInformationResultEvent(GetInformationResultEvent {
            info: ok_with_request(),
            sdk_version: "0.1.0".into(),
            sdk_state: SdkState::LoggedIn,
            logged_in_user: Some(user()),
            iam_configuration_data: Some(IamConfigurationData {
                client_id: "AnonymousUserEnrollment".into(),
                server_url: "http://127.0.0.1:8080".into(),
                tenant_id: "demo".into(),
                issuer: Some("http://127.0.0.1:8080/realms/demo".into()),
                redirect_uri: None,
            }),
        }),
        Event::DeleteUserResultEvent(DeleteUserResultEvent {
            info: ok_with_request(),
            sdk_state: SdkState::ActivationRequired,
            user_list: vec![],
            idp_deletion_pending: true,
        }),
        Event::GetStateResultEvent(GetStateResultEvent {
            info: ok_with_request(),
            sdk_state: SdkState::LoggedIn,
        }),
        Event::SwitchWorkspaceResultEvent(SwitchWorkspaceResultEvent {
            info: ok_with_request(),
            sdk_state: SdkState::LoginRequired,
            user_identifier: Some(UserIdentifier::new("other-tenant", "u-2")),
        }),
        Event::CreateHttpCommonResultEvent(CreateHttpCommonResultEvent {
            http_status: Some(200),
            response: vec![0, 1, 2, 255],
            response_headers: headers,
            ..CreateHttpCommonResultEvent::from_info(ok_with_request())
        }),
        Event::CreateAuthorizationRequestResultEvent(CreateAuthorizationRequestResultEvent {
            info: ok_with_request(),
            authorization_url: "http://127.0.0.1:8080/auth?client_id=mc-native".into(),
            state: "s1".into(),
        }),
        Event::StatusResultEvent(StatusResultEvent {
            info: ok_with_request(),
            replaced_user_identifier: Some(UserIdentifier::new("demo", "anon-client")),
            ..Default::default()
        }),
        Event::InvalidStateEvent(InvalidStateEvent {
            request_id: Some(RequestId::new("r-2")),
            trace_context: Some(trace()),
            request_type: "ExchangeIamTokenEvent".into(),
            sdk_state: SdkState::LoginRequired,
            error_message: "log in first (OfflineLoginEvent)".into(),
        }),
        Event::StartLoginEvent(StartLoginEvent {
            user_identifier: user(),
            user_list: vec![user()],
            trace_context: Some(trace()),
        }),
        Event::ServerConnectionEvent(ServerConnectionEvent {
            connection_state: ServerConnectionState::NotReachable,
            server_url: "http://127.0.0.1:8080".into(),
            trace_context: None,
        }),
        Event::LoginTokenClaimsAvailableEvent(LoginTokenClaimsAvailableEvent {
            claims,
            trace_context: Some(trace()),
        }),
        Event::WarningEvent(report.clone()),
        Event::RuntimeErrorEvent(report.clone()),
        Event::FatalErrorEvent(report),
        Event::IdpLoginRequiredEvent(IdpLoginRequiredEvent {
            user_identifier: user(),
            acr_values: Some("urn:mc:acr:strong".into()),
            max_age: Some(300),
            trace_context: Some(trace()),
        }),
    ]
}

#[test]
fn every_request_round_trips_through_json() {
    let mut kinds = BTreeSet::new();
    for request in every_request() {
        let request = request.with_id("req-42").with_trace_context(trace());
        kinds.insert(request.kind());
        let text = request.to_json();
        assert!(
            text.starts_with(&format!(
                r#"{{"type":"{}","requestId":"req-42""#,
                request.kind()
            )),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], request.kind().name(), "{text}");
        assert_eq!(value["requestId"], "req-42");
        let back = Request::from_json(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back, request, "{text}");
        // serde's own entry points agree
        let via_serde: Request = serde_json::from_str(&text).unwrap();
        assert_eq!(via_serde, request);
    }
    assert_eq!(
        kinds.len(),
        RequestKind::ALL.len(),
        "a request kind lacks a round trip"
    );
}

#[test]
fn every_event_round_trips_through_json() {
    let mut names = BTreeSet::new();
    for event in every_event() {
        names.insert(event.type_name());
        let text = event.to_json();
        assert!(
            text.starts_with(&format!(r#"{{"type":"{}""#, event.type_name())),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], event.type_name(), "{text}");
        assert_eq!(Event::from_json(&text).unwrap(), event, "{text}");
    }
    let expected: BTreeSet<&str> = EVENT_TYPE_NAMES.iter().copied().collect();
    assert_eq!(names, expected, "an event type lacks a round trip");
}

#[test]
fn the_issue_example_parses() {
    let request = Request::from_json(
        r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"NO","clientId":"AnonymousUserEnrollment"}"#,
    )
    .unwrap();
    assert_eq!(request.request_id, None);
    assert_eq!(
        request.event,
        RequestEvent::EnrollAnonymousUserEvent(EnrollAnonymousUserEvent::new(
            "demo",
            AuthenticationMode::No,
            "AnonymousUserEnrollment"
        ))
    );
    // and the Rust-built one writes the same JSON
    let built: Request =
        EnrollAnonymousUserEvent::new("demo", AuthenticationMode::No, "AnonymousUserEnrollment")
            .into();
    assert_eq!(
        built.to_json_value(),
        json!({"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"NO","clientId":"AnonymousUserEnrollment"})
    );
}

#[test]
fn optional_fields_are_left_out_and_defaults_apply() {
    assert_eq!(
        Request::from(StartEvent::new()).to_json(),
        r#"{"type":"StartEvent"}"#
    );

    let exchange =
        Request::from_json(r#"{"type":"ExchangeIamTokenEvent","audience":"demo-api"}"#).unwrap();
    assert_eq!(
        exchange.event,
        ExchangeIamTokenEvent::new("demo-api").into()
    );

    let clear = Request::from_json(r#"{"type":"ClearIamTokenCacheEvent"}"#).unwrap();
    let RequestEvent::ClearIamTokenCacheEvent(clear) = clear.event else {
        panic!("wrong kind")
    };
    assert_eq!(clear.clear_behavior, ClearBehavior::ClearAll);

    let http = Request::from_json(
        r#"{"type":"CreateHttpCommonRequest","fullUrl":"http://127.0.0.1/x","method":"GET","accessTokenIdentifier":"demo-api"}"#,
    )
    .unwrap();
    let RequestEvent::CreateHttpCommonRequest(http) = http.event else {
        panic!("wrong kind")
    };
    assert!(http.follow_redirect);
    assert!(http.http_headers.is_empty());
    assert_eq!(http.effective_audience(), Some("demo-api"));
}

#[test]
fn unknown_fields_are_ignored() {
    let request = Request::from_json(
        r#"{"type":"ExchangeIamTokenEvent","audience":"demo-api","futureField":{"x":[1,2]},"forceUpdate":true}"#,
    )
    .unwrap();
    assert_eq!(
        request.event,
        ExchangeIamTokenEvent::new("demo-api")
            .with_force_update(true)
            .into()
    );
}

fn parse_err(text: &str) -> InvalidRequest {
    match Request::from_json(text) {
        Ok(request) => panic!("accepted {text}: {request:?}"),
        Err(err) => err,
    }
}

#[test]
fn a_missing_field_is_named() {
    let err = parse_err(r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","clientId":"c"}"#);
    assert_eq!(err.field.as_deref(), Some("authenticationMode"));
    assert_eq!(err.kind, Some(RequestKind::EnrollAnonymousUser));
    assert_eq!(err.to_string(), "field `authenticationMode`: missing field");

    let nested = parse_err(r#"{"type":"DeleteUserEvent","userIdentifier":{"tenantId":"demo"}}"#);
    assert_eq!(nested.field.as_deref(), Some("userIdentifier.userId"));

    let no_type = parse_err(r#"{"tenantId":"demo"}"#);
    assert_eq!(no_type.field.as_deref(), Some("type"));
    assert_eq!(no_type.kind, None);
}

#[test]
fn a_wrong_type_is_named() {
    let err = parse_err(
        r#"{"type":"EnrollAnonymousUserEvent","tenantId":5,"authenticationMode":"NO","clientId":"c"}"#,
    );
    assert_eq!(err.field.as_deref(), Some("tenantId"));
    assert_eq!(err.to_string(), "field `tenantId`: expected a string");

    let err = parse_err(r#"{"type":"ExchangeIamTokenEvent","audience":"a","forceUpdate":"yes"}"#);
    assert_eq!(err.to_string(), "field `forceUpdate`: expected a boolean");

    let err = parse_err(
        r#"{"type":"CreateHttpCommonRequest","fullUrl":"http://x","method":"GET","timeout":-1}"#,
    );
    assert_eq!(err.field.as_deref(), Some("timeout"));
    assert!(
        err.message.starts_with("expected a non-negative integer"),
        "{err}"
    );

    let err = parse_err(r#"{"type":"DeleteIamTokenByAudienceEvent","audiences":["a",7]}"#);
    assert_eq!(err.field.as_deref(), Some("audiences[1]"));

    let err = parse_err(r#"{"type":"StartEvent","appVersion":"1.2.3"}"#);
    assert_eq!(err.to_string(), "field `appVersion`: expected an object");
}

#[test]
fn an_unknown_mode_is_named_with_the_allowed_values() {
    let err = parse_err(
        r#"{"type":"EnrollAnonymousUserEvent","tenantId":"demo","authenticationMode":"FACE","clientId":"c"}"#,
    );
    assert_eq!(err.field.as_deref(), Some("authenticationMode"));
    assert_eq!(
        err.message,
        "unknown value, expected one of `NO`, `PASSWORD`, `BIOMETRIC`, `PIN`"
    );
}

#[test]
fn an_unknown_type_or_a_non_object_is_refused() {
    let err = parse_err(r#"{"type":"Foo","requestId":"r-7"}"#);
    assert_eq!(err.to_string(), "unknown event type `Foo`");
    assert_eq!(err.kind, None);
    assert_eq!(err.request_id, Some(RequestId::new("r-7")));
    assert_eq!(err.error_code(), error_code::MALFORMED_REQUEST);

    let long_type = format!(r#"{{"type":"{}"}}"#, "X".repeat(10_000));
    assert!(parse_err(&long_type).to_string().len() < 100);

    for text in [r#"[1,2]"#, r#""StartEvent""#, "42", "null"] {
        assert_eq!(parse_err(text).to_string(), "not a JSON object", "{text}");
    }
    let err = parse_err(r#"{"type":"StartEvent""#);
    assert!(err.to_string().starts_with("not valid JSON"), "{err}");
    assert_eq!(
        parse_err(r#"{"type":5}"#).to_string(),
        "field `type`: expected a string"
    );
}

#[test]
fn a_10_mb_tenant_id_is_refused_cheaply_and_clearly() {
    let huge = "t".repeat(10 * 1024 * 1024);
    let text = format!(
        r#"{{"type":"EnrollAnonymousUserEvent","requestId":"big","tenantId":"{huge}","authenticationMode":"NO","clientId":"c"}}"#
    );
    let started = Instant::now();
    let err = parse_err(&text);
    assert!(
        started.elapsed().as_secs() < 2,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.field.as_deref(), Some("tenantId"));
    assert_eq!(err.request_id, Some(RequestId::new("big")));
    let message = err.to_string();
    assert!(
        message.len() < 120,
        "message echoes the value: {} bytes",
        message.len()
    );
    assert!(message.contains("at most 256"), "{message}");

    let empty = parse_err(
        r#"{"type":"EnrollAnonymousUserEvent","tenantId":"","authenticationMode":"NO","clientId":"c"}"#,
    );
    assert_eq!(empty.to_string(), "field `tenantId`: must not be empty");
}

#[test]
fn validation_covers_sizes_and_audiences() {
    let err = parse_err(r#"{"type":"StartEvent","appName":"123456789012345678901234567890123"}"#);
    assert_eq!(err.field.as_deref(), Some("appName"));
    // 32 bytes of UTF-8 pass, 34 do not, whatever the character count
    assert!(Request::from_json(&format!(
        r#"{{"type":"StartEvent","appName":"{}"}}"#,
        "ä".repeat(16)
    ))
    .is_ok());
    assert!(Request::from_json(&format!(
        r#"{{"type":"RestartEvent","appName":"{}"}}"#,
        "ä".repeat(17)
    ))
    .is_err());

    let err = parse_err(r#"{"type":"DeleteIamTokenByAudienceEvent","audiences":[]}"#);
    assert_eq!(
        err.to_string(),
        "field `audiences`: give at least one audience"
    );
    let err = parse_err(r#"{"type":"DeleteIamTokenByAudienceEvent","audiences":["ok",""]}"#);
    assert_eq!(err.field.as_deref(), Some("audiences[1]"));
    let err = parse_err(r#"{"type":"ExchangeIamTokenEvent","audience":""}"#);
    assert_eq!(err.field.as_deref(), Some("audience"));
    let err = parse_err(
        r#"{"type":"CreateHttpCommonRequest","fullUrl":"http://x","method":"GET","audience":"a","accessTokenIdentifier":"b"}"#,
    );
    assert_eq!(err.field.as_deref(), Some("accessTokenIdentifier"));

    // Rust-built requests get the same checks
    let built = RequestEvent::from(EnrollAnonymousUserEvent::new(
        "",
        AuthenticationMode::No,
        "c",
    ));
    let err = built.validate().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("tenantId"));
    assert_eq!(err.kind, Some(RequestKind::EnrollAnonymousUser));
    let request = Request::from(ExchangeIamTokenEvent::new("x".repeat(300))).with_id("r-5");
    let err = request.validate().unwrap_err();
    assert_eq!(err.request_id, Some(RequestId::new("r-5")));
    for request in every_request() {
        request
            .validate()
            .unwrap_or_else(|e| panic!("{:?}: {e}", request.kind()));
    }
}

#[test]
fn the_request_id_and_trace_are_kept_when_the_rest_is_invalid() {
    let err = parse_err(&format!(
        r#"{{"type":"OfflineLoginEvent","requestId":"r-3","traceContext":{{"traceparent":"{TRACEPARENT}"}},"userIdentifier":7}}"#
    ));
    assert_eq!(err.request_id, Some(RequestId::new("r-3")));
    assert_eq!(
        err.trace_context.as_deref(),
        Some(&TraceContext::new(TRACEPARENT))
    );
    assert_eq!(err.kind, Some(RequestKind::OfflineLogin));
    assert_eq!(err.field.as_deref(), Some("userIdentifier"));

    // a bad trace context is named, the id is still kept
    let err = parse_err(
        r#"{"type":"GetStateEvent","requestId":"r-4","traceContext":{"traceparent":"nope"}}"#,
    );
    assert_eq!(err.field.as_deref(), Some("traceContext.traceparent"));
    assert_eq!(err.request_id, Some(RequestId::new("r-4")));
    assert_eq!(err.trace_context, None);

    // a bad request id is named, the kind is still kept
    let err = parse_err(r#"{"type":"GetStateEvent","requestId":17}"#);
    assert_eq!(err.field.as_deref(), Some("requestId"));
    assert_eq!(err.kind, Some(RequestKind::GetState));
    let err = parse_err(&format!(
        r#"{{"type":"GetStateEvent","requestId":"{}"}}"#,
        "r".repeat(129)
    ));
    assert_eq!(err.field.as_deref(), Some("requestId"));
}

#[test]
fn secrets_never_show_in_debug_or_messages() {
    for request in every_request() {
        let printed = format!("{request:?}");
        for secret in [
            "correct horse",
            "\"pw\"",
            "\"old\"",
            "\"new\"",
            "code-secret",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
    let exchange = every_event()
        .into_iter()
        .find(|e| e.type_name() == "ExchangeIamTokenResultEvent")
        .unwrap();
    assert!(!format!("{exchange:?}").contains("secret-token"));
    // the host needs its token: JSON carries it
    assert!(exchange.to_json().contains("secret-token"));

    // a password of the wrong type is not quoted back
    let err = parse_err(r#"{"type":"OfflineLoginEvent","password":98765432}"#);
    assert_eq!(err.field.as_deref(), Some("password"));
    assert!(!err.to_string().contains("98765432"), "{err}");
    let err = parse_err(
        r#"{"type":"EnableAuthenticationModeEvent","authenticationMode":"NO","newPassword":true}"#,
    );
    assert!(!err.to_string().contains("true"), "{err}");

    // header values and bodies stay out of Debug too
    let http = CreateHttpCommonRequest::new("http://x", HttpMethod::Post)
        .with_header("Authorization", "Bearer host-secret")
        .with_content("password=host-secret", "application/x-www-form-urlencoded");
    let printed = format!("{http:?}");
    assert!(!printed.contains("host-secret"), "{printed}");
    assert!(printed.contains("Authorization"), "{printed}");
}

#[test]
fn failure_gives_the_result_type_of_every_request_kind() {
    for &kind in RequestKind::ALL {
        let info = ResultInfo::error(
            StatusType::Timeout,
            error_code::TIMEOUT,
            "no answer in 50 ms",
        )
        .with_request(Some(RequestId::new("r-t")), Some(trace()));
        let event = Event::failure(kind, info);
        assert_eq!(event.type_name(), kind.result_name(), "{kind:?}");
        assert!(event.is_result());
        assert_eq!(event.status(), Some(StatusType::Timeout), "{kind:?}");
        assert_eq!(event.request_id(), Some(&RequestId::new("r-t")));
        assert_eq!(event.trace_context(), Some(&trace()));
        // and it survives JSON
        assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
    }
    let expected = [
        (RequestKind::Start, "StartResultEvent"),
        (RequestKind::Restart, "RestartResultEvent"),
        (RequestKind::EnrollAnonymousUser, "StatusResultEvent"),
        (RequestKind::OfflineLogin, "OfflineLoginResultEvent"),
        (RequestKind::ExchangeIamToken, "ExchangeIamTokenResultEvent"),
        (
            RequestKind::GetIamAccessTokenClaims,
            "GetIamAccessTokenClaimsResultEvent",
        ),
        (
            RequestKind::ClearIamTokenCache,
            "ClearIamTokenCacheResultEvent",
        ),
        (
            RequestKind::DeleteIamTokenByAudience,
            "DeleteIamTokenByAudienceResultEvent",
        ),
        (RequestKind::GetInformation, "GetInformationResultEvent"),
        (RequestKind::DeleteUser, "DeleteUserResultEvent"),
        (RequestKind::EnableAuthenticationMode, "StatusResultEvent"),
        (RequestKind::CreateHttpCommon, "CreateHttpCommonResultEvent"),
        (RequestKind::GetState, "GetStateResultEvent"),
        (
            RequestKind::CreateAuthorizationRequest,
            "CreateAuthorizationRequestResultEvent",
        ),
        (RequestKind::SetAuthorisationCode, "StatusResultEvent"),
        (RequestKind::SwitchWorkspace, "SwitchWorkspaceResultEvent"),
    ];
    assert_eq!(expected.len(), RequestKind::ALL.len());
    for (kind, name) in expected {
        assert_eq!(Event::failure(kind, ResultInfo::ok()).type_name(), name);
    }
    let in_state =
        Event::failure_in_state(RequestKind::GetState, ResultInfo::ok(), SdkState::LoggedIn);
    assert_eq!(in_state.to_json_value()["sdkState"], "LOGGED_IN");
}

#[test]
fn invalid_request_answers_with_invalid_parameter() {
    let err =
        parse_err(r#"{"type":"OfflineLoginEvent","requestId":"r-8","userIdentifier":"demo"}"#);
    let event = Event::invalid_request(&err);
    assert_eq!(event.type_name(), "OfflineLoginResultEvent");
    assert_eq!(event.status(), Some(StatusType::InvalidParameter));
    assert_eq!(event.request_id(), Some(&RequestId::new("r-8")));
    let value = event.to_json_value();
    assert_eq!(value["errorCode"], error_code::INVALID_PARAMETER);
    assert_eq!(value["hasErrorOccurred"], true);
    assert_eq!(
        value["errorDescription"],
        "field `userIdentifier`: expected an object"
    );

    let unknown = Event::invalid_request(&parse_err(r#"{"type":"Nope","requestId":"r-9"}"#));
    assert_eq!(unknown.type_name(), "StatusResultEvent");
    assert_eq!(unknown.request_id(), Some(&RequestId::new("r-9")));
    assert_eq!(
        unknown.to_json_value()["errorCode"],
        error_code::MALFORMED_REQUEST
    );

    let http = Event::invalid_request(&parse_err(
        r#"{"type":"CreateHttpCommonRequest","method":"GET"}"#,
    ));
    assert_eq!(http.to_json_value()["status"], "failed");
    assert_eq!(http.status(), Some(StatusType::Failed));
}

#[test]
fn status_maps_http_outcomes_and_invalid_state() {
    let http = |status| {
        Event::CreateHttpCommonResultEvent(CreateHttpCommonResultEvent {
            status,
            ..CreateHttpCommonResultEvent::from_info(ResultInfo::ok())
        })
    };
    assert_eq!(
        http(HttpCommonStatus::Success).status(),
        Some(StatusType::Ok)
    );
    assert_eq!(
        http(HttpCommonStatus::ServerNotReachable).status(),
        Some(StatusType::NotReachable)
    );
    assert_eq!(
        http(HttpCommonStatus::Timeout).status(),
        Some(StatusType::Timeout)
    );
    assert_eq!(
        http(HttpCommonStatus::SslHandshakeFailed).status(),
        Some(StatusType::Failed)
    );
    assert_eq!(
        http(HttpCommonStatus::Failed).status(),
        Some(StatusType::Failed)
    );

    for event in every_event() {
        match event.type_name() {
            "InvalidStateEvent" => {
                assert_eq!(event.status(), Some(StatusType::InvalidState));
                assert!(event.is_result());
            }
            name if name.ends_with("ResultEvent") => assert!(event.is_result(), "{name}"),
            name => {
                assert!(!event.is_result(), "{name}");
                assert_eq!(event.status(), None, "{name}");
            }
        }
    }
}

#[test]
fn result_info_follows_its_status() {
    let ok = ResultInfo::ok();
    assert!(!ok.has_error_occurred);
    assert_eq!(ok.error_code, 0);
    let failed = ResultInfo::error(
        StatusType::NotReachable,
        error_code::SERVER_NOT_REACHABLE,
        "check the network",
    );
    assert!(failed.has_error_occurred);
    assert!(StatusType::Ok.is_ok() && !StatusType::Timeout.is_ok());
    assert_eq!(
        serde_json::to_value(StatusType::TokenDataIsOutdated).unwrap(),
        "TOKEN_DATA_IS_OUTDATED"
    );
}

#[test]
fn http_response_is_standard_base64() {
    let event = Event::CreateHttpCommonResultEvent(CreateHttpCommonResultEvent {
        response: vec![0, 1, 2, 255],
        ..CreateHttpCommonResultEvent::from_info(ResultInfo::ok())
    });
    let value = event.to_json_value();
    assert_eq!(value["response"], "AAEC/w==");
    assert_eq!(value["status"], "success");
    let bad =
        r#"{"type":"CreateHttpCommonResultEvent","status":"success","response":"not base64!"}"#;
    assert!(Event::from_json(bad).is_err());
}

#[test]
fn enum_names_are_the_mc_sdk_names() {
    let names = |all: Vec<serde_json::Value>| {
        all.into_iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            SdkState::ALL
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect()
        ),
        [
            "UNINITIALISED",
            "ACTIVATION_REQUIRED",
            "LOGIN_REQUIRED",
            "LOGGED_IN",
            "UNIDENTIFIED"
        ]
    );
    assert_eq!(
        names(
            HttpCommonStatus::ALL
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect()
        ),
        [
            "success",
            "serverNotReachable",
            "sslHandshakeFailed",
            "failed",
            "timeout"
        ]
    );
    for &status in StatusType::ALL {
        assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        assert_eq!(StatusType::from_name(status.as_str()), Some(status));
    }
    for &kind in RequestKind::ALL {
        assert_eq!(RequestKind::from_name(kind.name()), Some(kind));
    }
}

#[test]
fn valid_states_follow_the_lifecycle() {
    for &kind in RequestKind::ALL {
        assert_eq!(
            kind.is_valid_in(SdkState::Uninitialised),
            kind == RequestKind::Start,
            "{kind:?}"
        );
    }
    assert!(RequestKind::EnrollAnonymousUser.is_valid_in(SdkState::ActivationRequired));
    assert!(!RequestKind::OfflineLogin.is_valid_in(SdkState::ActivationRequired));
    assert!(!RequestKind::ExchangeIamToken.is_valid_in(SdkState::LoginRequired));
    assert!(RequestKind::ExchangeIamToken.is_valid_in(SdkState::LoggedIn));
    assert!(RequestKind::GetState.is_valid_in(SdkState::Unidentified));
}

#[test]
fn is_result_follows_the_catalog_sections() {
    for event in every_event() {
        let name = event.type_name();
        let expected = RESULT_TYPE_NAMES.contains(&name) || name == "InvalidStateEvent";
        assert_eq!(event.is_result(), expected, "{name}");
        assert!(
            RESULT_TYPE_NAMES.contains(&name) != PUSHED_TYPE_NAMES.contains(&name),
            "{name} is in exactly one section"
        );
        // a result always has a status; a pushed event only when it answers a request
        assert_eq!(event.status().is_some(), expected, "{name}");
    }
}

#[test]
fn a_typed_failure_keeps_its_request_and_state() {
    let info = ResultInfo::error(StatusType::Timeout, error_code::TIMEOUT, "waited")
        .with_request(Some(RequestId::new("r-9")), Some(trace()));
    let state: GetStateResultEvent = ResultType::failure(info.clone(), SdkState::LoggedIn);
    assert_eq!(state.sdk_state, SdkState::LoggedIn);
    assert_eq!(state.info, info);
    let http: CreateHttpCommonResultEvent = ResultType::failure(info, SdkState::LoggedIn);
    assert_eq!(http.status, HttpCommonStatus::Timeout);
    let event = Event::from(http);
    assert_eq!(event.request_id().map(RequestId::as_str), Some("r-9"));
    assert_eq!(event.trace_context(), Some(&trace()));
    assert_eq!(event.result_info(), None);
}

#[test]
fn set_authorisation_code_needs_exactly_one_of_redirect_url_or_code_and_state() {
    let field_of = |text: &str| parse_err(text).field;
    let base = r#""type":"SetAuthorisationCodeEvent","tenantId":"demo","clientId":"c","authenticationMode":"NO""#;
    assert_eq!(
        field_of(&format!("{{{base}}}")).as_deref(),
        Some("redirectUrl")
    );
    assert_eq!(
        field_of(&format!(r#"{{{base},"authorisationCode":"x"}}"#)).as_deref(),
        Some("state")
    );
    assert_eq!(
        field_of(&format!(r#"{{{base},"state":"s"}}"#)).as_deref(),
        Some("authorisationCode")
    );
    assert_eq!(
        field_of(&format!(
            r#"{{{base},"redirectUrl":"http://127.0.0.1/cb?code=x&state=s","authorisationCode":"x","state":"s"}}"#
        ))
        .as_deref(),
        Some("redirectUrl")
    );
    assert_eq!(
        field_of(&format!(r#"{{{base},"authorisationCode":"","state":"s"}}"#)).as_deref(),
        Some("authorisationCode")
    );
    let huge = "a".repeat(MAX_AUTHORIZATION_FIELD_BYTES + 1);
    assert_eq!(
        field_of(&format!(r#"{{{base},"redirectUrl":"{huge}"}}"#)).as_deref(),
        Some("redirectUrl")
    );
    // the good forms parse
    for good in [
        format!(r#"{{{base},"redirectUrl":"http://127.0.0.1/cb?code=x&state=s"}}"#),
        format!(r#"{{{base},"authorisationCode":"x","state":"s"}}"#),
    ] {
        Request::from_json(&good).unwrap();
    }
}

#[test]
fn create_authorization_request_checks_its_fields() {
    let err =
        parse_err(r#"{"type":"CreateAuthorizationRequestEvent","tenantId":"demo","clientId":"c"}"#);
    assert_eq!(err.field.as_deref(), Some("redirectUri"));
    let err = parse_err(
        r#"{"type":"CreateAuthorizationRequestEvent","tenantId":"demo","clientId":"c","redirectUri":"http://127.0.0.1/cb","prompt":"a\u0000b"}"#,
    );
    assert_eq!(err.field.as_deref(), Some("prompt"));
}

#[test]
fn a_pin_is_ascii_digits_within_the_length_policy() {
    assert_eq!(pin_problem("123456"), None);
    assert_eq!(pin_problem(&"9".repeat(PIN_MAX_DIGITS)), None);
    for not_a_pin in [
        "12345a",        // a letter
        "123 456",       // whitespace
        " 123456",       // leading whitespace
        "١٢٣٤٥٦",        // Arabic-Indic digits
        "１２３４５６",  // fullwidth digits
        "12345",         // too short
        "",              // empty
        "1234567890123", // too long
        "123456\u{0}",   // a control character
    ] {
        let problem = pin_problem(not_a_pin).unwrap_or_else(|| panic!("{not_a_pin:?} accepted"));
        if !not_a_pin.is_empty() {
            assert!(!problem.contains(not_a_pin), "quotes the PIN: {problem}");
        }
    }
}

#[test]
fn switch_workspace_needs_a_tenant_of_identifier_size() {
    for tenant in [String::new(), "t".repeat(MAX_IDENTIFIER_BYTES + 1)] {
        let text = format!(r#"{{"type":"SwitchWorkspaceEvent","tenantId":"{tenant}"}}"#);
        assert_eq!(parse_err(&text).field.as_deref(), Some("tenantId"));
    }
    let err = parse_err(r#"{"type":"SwitchWorkspaceEvent"}"#);
    assert_eq!(err.field.as_deref(), Some("tenantId"));
}
