//! RFC 9470 step-up: a resource that answers 401 `insufficient_user_authentication` makes the
//! CreateHttpCommonRequest result say so (errorCode STEP_UP_REQUIRED, nextAction LOG_IN) and
//! pushes an IdpLoginRequiredEvent with the wanted `acrValues` / `maxAge`. A 401 with another
//! error pushes nothing.

use mc_events::*;
use mc_testkit::*;

/// A resource on 127.0.0.1 that answers every request 401 with `challenge`.
async fn resource(challenge: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, challenge)],
            "step up",
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_step_up_challenge_asks_the_app_for_a_stronger_login() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let recorder = Recorder::attach(&runtime);
    let url = resource(
        r#"Bearer error="insufficient_user_authentication", error_description="more", acr_values="urn:mc:acr:strong", max_age="300""#,
    )
    .await;
    let answer = post(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Get),
    )
    .await;
    assert_eq!(answer.status, HttpCommonStatus::Success, "{answer:#?}");
    assert_eq!(answer.http_status, Some(401));
    assert_eq!(answer.error_code, error_code::STEP_UP_REQUIRED);
    assert_eq!(answer.next_action, Some(NextAction::LogIn));
    let event = recorder
        .wait_for("IdpLoginRequiredEvent", |e| {
            matches!(e, Event::IdpLoginRequiredEvent(_))
        })
        .await;
    let Event::IdpLoginRequiredEvent(event) = event else {
        unreachable!()
    };
    assert_eq!(event.acr_values.as_deref(), Some("urn:mc:acr:strong"));
    assert_eq!(event.max_age, Some(300));
    // still logged in: a step-up is not a logout
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
}

#[tokio::test]
async fn another_401_pushes_nothing() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let recorder = Recorder::attach(&runtime);
    let url = resource(r#"Bearer error="invalid_token""#).await;
    let answer = post(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Get),
    )
    .await;
    assert_eq!(answer.http_status, Some(401));
    assert_eq!(answer.error_code, 0);
    // a later event proves the listener caught up
    post(&runtime, GetStateEvent::new()).await;
    recorder
        .wait_for("GetStateResultEvent", |e| {
            matches!(e, Event::GetStateResultEvent(_))
        })
        .await;
    assert!(
        !recorder
            .events()
            .iter()
            .any(|e| matches!(e, Event::IdpLoginRequiredEvent(_))),
        "{:#?}",
        recorder.events()
    );
}

#[tokio::test]
async fn clear_all_makes_an_anonymous_device_unusable_until_it_enrolls_again() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let cleared = post(
        &runtime,
        ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearAll),
    )
    .await;
    assert_eq!(cleared.info.status, StatusType::Ok, "{cleared:#?}");
    post(&runtime, RestartEvent::new()).await;
    let refused = post(&runtime, OfflineLoginEvent::new()).await;
    assert_eq!(
        (refused.info.status, refused.info.error_code),
        (
            StatusType::NoTokenDataAvailable,
            error_code::CREDENTIAL_CLEARED
        ),
        "{refused:#?}"
    );
    // enrolling again works
    assert_status(&enroll(&runtime).await, StatusType::Ok);
}
