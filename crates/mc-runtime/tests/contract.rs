//! The MC-SDK contract points of issue 11, each through the public API against the dev IDP:
//! what a host app written against the MC-SDK relies on, with the hostile variant beside it.

use mc_events::*;
use mc_testkit::*;

// ---- point 1: a second StartEvent answers ALREADY_INITIALIZED with the state and users ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_answers_already_initialized_with_the_state_and_users() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let users = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("a logged-in user");

    let again = post(&runtime, StartEvent::new()).await;

    assert_status(&again, StatusType::AlreadyInitialized);
    assert_eq!(again.info.error_code, error_code::ALREADY_INITIALIZED);
    assert_eq!(again.sdk_state, SdkState::LoggedIn);
    let listed: Vec<_> = again
        .user_details_list
        .iter()
        .map(|u| u.user_identifier.clone())
        .collect();
    assert_eq!(listed, vec![users]);
    assert!(!again.supported_features.is_empty());
    // Nothing changed: still logged in, the session still works.
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_changes_nothing_whatever_it_carries() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    assert_status(&start(&runtime).await, StatusType::Ok);
    let mut hostile = StartEvent::new();
    hostile.app_name = Some("other app".into());
    let again = post(&runtime, hostile).await;
    assert_status(&again, StatusType::AlreadyInitialized);
    assert_eq!(again.sdk_state, SdkState::ActivationRequired);
    assert!(again.user_details_list.is_empty());
    // An invalid one is still refused for its field first.
    let mut invalid = StartEvent::new();
    invalid.app_name = Some("x".repeat(MAX_APP_NAME_BYTES + 1));
    assert_status(&post(&runtime, invalid).await, StatusType::InvalidParameter);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
}
