//! The whole anonymous lifecycle through the Rust API against a real dev IDP on loopback.

use mc_events::*;
use mc_runtime::StoreLocation;
use mc_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_exchange_http_restart_login_delete() {
    let idp = idp().await;
    let store = tempfile::tempdir().unwrap();
    let runtime = runtime_at(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    let recorder = Recorder::attach(&runtime);

    let started = start(&runtime).await;
    assert_status(&started, StatusType::Ok);
    assert_eq!(started.sdk_state, SdkState::ActivationRequired);

    let enrolled = enroll(&runtime).await;
    assert_status(&enrolled, StatusType::Ok);
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    let claims_pushed = recorder
        .wait_for("LoginTokenClaimsAvailableEvent", |e| {
            matches!(e, Event::LoginTokenClaimsAvailableEvent(_))
        })
        .await;

    // The device is its own OAuth client at the IDP.
    let info = post(&runtime, GetInformationEvent::new()).await;
    let user = info.logged_in_user.clone().expect("a logged-in user");
    assert_eq!(user.tenant_id, TENANT);
    // Its userId is the IDP's user id (the device token's `sub`), not its client_id.
    let client = idp
        .client_of_subject(TENANT, &user.user_id)
        .expect("the registration whose tokens name the userId");
    assert_ne!(client, user.user_id);
    assert!(idp.client_exists(TENANT, &client));
    let config = info.iam_configuration_data.expect("configuration data");
    assert_eq!(config.client_id, CLIENT);
    assert_eq!(config.issuer.as_deref(), Some(idp.issuer(TENANT).as_str()));

    // Claims of the device token, never the token itself.
    let claims = post(&runtime, GetIamAccessTokenClaimsEvent::new()).await;
    let sub = claims.claims.get("sub").cloned().expect("sub claim");
    assert_eq!(sub, user.user_id, "userId is the device token's sub");
    assert_eq!(claims.claims.get("azp"), Some(&client));
    assert_eq!(claims.claims.get("iss"), Some(&idp.issuer(TENANT)));
    let Event::LoginTokenClaimsAvailableEvent(pushed) = claims_pushed else {
        unreachable!()
    };
    assert_eq!(pushed.claims.get("sub"), Some(&sub));

    // Exchange, then a cache hit that does not reach the IDP, then forceUpdate that does.
    let before = idp.stats().token_exchange;
    let first = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&first, StatusType::Ok);
    let token = first.token.clone().expect("an IAM token");
    let iam = mc_jose::Jwt::decode_unverified(token.expose()).unwrap();
    assert_eq!(iam.claim_str("aud"), Some(AUDIENCE));
    assert_eq!(iam.claim_str("sub"), Some(sub.as_str()));
    assert_eq!(idp.stats().token_exchange, before + 1);

    let cached = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(
        cached.token, first.token,
        "a cache hit returns the same token"
    );
    assert_eq!(
        idp.stats().token_exchange,
        before + 1,
        "a cache hit must not call the IDP"
    );

    let forced = post(
        &runtime,
        ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
    )
    .await;
    assert_status(&forced, StatusType::Ok);
    assert_eq!(idp.stats().token_exchange, before + 2);

    // Authenticated HTTP through the runtime: the echo resource sees the device's sub.
    let url = format!("{}/demo/echo?x=1", idp.base_url());
    let http = post(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Post)
            .with_audience(AUDIENCE)
            .with_content("hello", "text/plain"),
    )
    .await;
    assert_eq!(http.status, HttpCommonStatus::Success, "{http:#?}");
    assert_eq!(http.http_status, Some(200));
    let echo: serde_json::Value = serde_json::from_slice(&http.response).unwrap();
    assert_eq!(echo["sub"], sub.as_str());
    assert_eq!(echo["body"], "hello");
    assert_eq!(echo["method"], "POST");

    // Without an audience the resource refuses: the runtime reports the server's answer.
    let anonymous = post(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Get),
    )
    .await;
    assert_eq!(anonymous.status, HttpCommonStatus::Success);
    assert_eq!(anonymous.http_status, Some(401));

    // Restart keeps the enrollment but needs an offline login.
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_status(&restarted, StatusType::Ok);
    assert_eq!(restarted.sdk_state, SdkState::LoginRequired);
    let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&refused, StatusType::InvalidState);
    // The listeners get the MC-SDK's InvalidStateEvent for it.
    recorder
        .wait_for("InvalidStateEvent", |e| {
            matches!(e, Event::InvalidStateEvent(_))
                && e.request_id() == refused.info.request_id.as_ref()
        })
        .await;
    recorder
        .wait_for(
            "StartLoginEvent",
            |e| matches!(e, Event::StartLoginEvent(s) if s.user_identifier == user),
        )
        .await;

    // A new process on the same store: the user is still there.
    drop(runtime);
    let runtime = runtime_at(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    let started = start(&runtime).await;
    assert_eq!(started.sdk_state, SdkState::LoginRequired);
    assert_eq!(started.user_details_list.len(), 1);
    assert_eq!(started.user_details_list[0].user_identifier, user);

    let logins_before = idp.stats().token_client_credentials;
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_status(&login, StatusType::Ok);
    assert_eq!(idp.stats().token_client_credentials, logins_before + 1);
    let exchanges = idp.stats().token_exchange;
    let again = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&again, StatusType::Ok);
    assert_eq!(
        idp.stats().token_exchange,
        exchanges + 1,
        "a new process starts with an empty cache"
    );

    // Restart is not a logout: after it and a login, the cached IAM token is served.
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let cached = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&cached, StatusType::Ok);
    assert_eq!(
        idp.stats().token_exchange,
        exchanges + 1,
        "served from the cache"
    );

    // Delete: gone at the IDP and locally.
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert_eq!(deleted.sdk_state, SdkState::ActivationRequired);
    assert!(deleted.user_list.is_empty());
    assert!(!idp.client_exists(TENANT, &client));
    assert_eq!(idp.stats().registration_delete, 1);
    drop(runtime);
    let runtime = runtime_at(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    assert_eq!(
        start(&runtime).await.sdk_state,
        SdkState::ActivationRequired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_exactly_one_result_with_its_id() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    let recorder = Recorder::attach(&runtime);
    let requests: Vec<Request> = vec![
        Request::from(StartEvent::new()).with_id("a-start"),
        Request::from(EnrollAnonymousUserEvent::new(
            TENANT,
            AuthenticationMode::No,
            CLIENT,
        ))
        .with_id("a-enroll"),
        Request::from(ExchangeIamTokenEvent::new(AUDIENCE)).with_id("a-exchange"),
        Request::from(GetInformationEvent::new()).with_id("a-info"),
    ];
    for request in requests {
        let id = request.request_id.clone();
        let result = post_event(&runtime, request).await;
        assert_eq!(result.request_id(), id.as_ref());
        assert!(
            result.trace_context().is_some(),
            "a trace context is assigned"
        );
    }
    // A forwarded request's result reaches the listeners only.
    let forwarded = runtime.forward_event(GetStateEvent::new());
    recorder
        .wait_for("the forwarded result", |e| {
            e.request_id() == Some(&forwarded)
        })
        .await;
    let events = recorder.events();
    for id in ["a-start", "a-enroll", "a-exchange", "a-info"] {
        let answers = events
            .iter()
            .filter(|e| e.is_result() && e.request_id().map(|r| r.as_str()) == Some(id))
            .count();
        assert_eq!(answers, 1, "{id} answered {answers} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_two_users_login_defaults_to_the_last_one() {
    let config = mc_devidp::DevIdpConfig {
        tenants: vec!["demo".into(), "other".into()],
        ..Default::default()
    };
    let idp = mc_devidp::DevIdp::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let second = post(
        &runtime,
        EnrollAnonymousUserEvent::new("other", AuthenticationMode::No, CLIENT),
    )
    .await;
    assert_status(&second, StatusType::Ok);
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(restarted.user_details_list.len(), 2);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(
        info.logged_in_user.unwrap().tenant_id,
        "other",
        "the last user used"
    );

    // Enrolling again for the same tenant and client replaces the old enrollment.
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(restarted.user_details_list.len(), 2, "{restarted:#?}");
}
