//! Mode PIN through the runtime (issue 11 point 10), against the dev IDP on 127.0.0.1: the
//! PIN travels in the `password` fields, is digits only within 6–12 of them (anything else is
//! INVALID_PARAMETER naming the field, and never counted), counts toward the lockout like a
//! password and ends as PIN_BLOCKED; every mode switch to or from PIN keeps the credential.

use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_testkit::*;

const PIN: &str = "482916";

fn code<R: Clone + Into<Event>>(answer: &R) -> u32 {
    let event: Event = answer.clone().into();
    event.result_info().expect("a result").error_code
}

fn description<R: Clone + Into<Event>>(answer: &R) -> String {
    let event: Event = answer.clone().into();
    event
        .result_info()
        .expect("a result")
        .error_description
        .clone()
}

/// A memory runtime with the cheap test KDF (the product KDF costs a second per PIN try).
fn fast_runtime(idp: &mc_devidp::DevIdp) -> MasterController {
    MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory)).unwrap()
}

fn enroll_pin(pin: Option<&str>) -> EnrollAnonymousUserEvent {
    let event = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Pin, CLIENT);
    match pin {
        Some(pin) => event.with_password(pin),
        None => event,
    }
}

fn login_pin(pin: &str) -> OfflineLoginEvent {
    OfflineLoginEvent::new().with_password(pin)
}

/// Asserts INVALID_PARAMETER naming `field`, without quoting the PIN.
fn assert_refused_field<R: Clone + Into<Event>>(answer: &R, field: &str, pin: &str) {
    assert_status(answer, StatusType::InvalidParameter);
    let text = description(answer);
    assert!(text.contains(&format!("`{field}`")), "{text}");
    if !pin.is_empty() {
        assert!(!text.contains(pin), "the PIN is quoted: {text}");
    }
    let event: Event = answer.clone().into();
    assert_eq!(
        event.result_info().unwrap().next_action,
        Some(NextAction::FixField {
            field: field.to_string()
        })
    );
}

/// Not PINs: letters, whitespace, other scripts' digits, too short, too long, empty.
const NOT_PINS: &[&str] = &[
    "48291a",
    "482 916",
    "482916\n",
    "٤٨٢٩١٦",
    "４８２９１６",
    "48291",
    "4829164829164",
    "",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_user_enrolls_logs_in_after_a_restart_and_is_listed_as_pin() {
    let idp = idp().await;
    let runtime = fast_runtime(&idp);
    let started = start(&runtime).await;
    assert!(started
        .supported_features
        .contains(&"AUTHENTICATION_MODE_PIN".to_string()));
    for not_a_pin in NOT_PINS {
        let refused = post(&runtime, enroll_pin(Some(not_a_pin))).await;
        assert_refused_field(&refused, "password", not_a_pin);
    }
    assert_refused_field(&post(&runtime, enroll_pin(None)).await, "password", "");
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);

    assert_status(&post(&runtime, enroll_pin(Some(PIN))).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    // A malformed PIN is refused before the store: it is not counted.
    for not_a_pin in NOT_PINS {
        let refused = post(&runtime, login_pin(not_a_pin)).await;
        assert_refused_field(&refused, "password", not_a_pin);
    }
    let missing = post(&runtime, OfflineLoginEvent::new()).await;
    assert_refused_field(&missing, "password", "");
    let wrong = post(&runtime, login_pin("000000")).await;
    assert_status(&wrong, StatusType::InvalidPassword);
    assert_eq!(wrong.retry_counter, Some(9), "only the wrong PIN counted");
    assert_status(&post(&runtime, login_pin(PIN)).await, StatusType::Ok);
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_pins_lock_temporarily_and_the_count_survives_a_new_process() {
    let idp = idp().await;
    let store = tempfile::tempdir().unwrap();
    let config = || {
        fast_config(
            &idp.base_url(),
            StoreLocation::Directory(store.path().into()),
        )
    };
    let runtime = MasterController::start(config()).unwrap();
    start(&runtime).await;
    assert_status(&post(&runtime, enroll_pin(Some(PIN))).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    for failed in 1..=3u32 {
        let wrong = post(&runtime, login_pin("111111")).await;
        assert_status(&wrong, StatusType::InvalidPassword);
        assert_eq!(code(&wrong), error_code::WRONG_PASSWORD);
        assert_eq!(wrong.retry_counter, Some(10 - failed));
        assert!(description(&wrong).contains("wrong PIN"), "{wrong:?}");
    }
    drop(runtime);
    let runtime = MasterController::start(config()).unwrap();
    start(&runtime).await;
    assert_eq!(
        post(&runtime, login_pin("111111")).await.retry_counter,
        Some(6)
    );
    let fifth = post(&runtime, login_pin("111111")).await;
    assert_status(&fifth, StatusType::TemporaryLocked);
    assert_eq!(code(&fifth), error_code::TEMPORARILY_LOCKED);
    assert_eq!(
        (fifth.retry_counter, fifth.retry_delay),
        (Some(5), Some(60))
    );
    // While locked, even the right PIN is not tried.
    let locked = post(&runtime, login_pin(PIN)).await;
    assert_status(&locked, StatusType::TemporaryLocked);
    assert!(matches!(locked.retry_delay, Some(1..=60)));
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_wrong_pins_block_as_pin_blocked_and_delete_at_the_idp() {
    let idp = idp().await;
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    // No temporary locks, so the test reaches the block without waiting for the clock.
    config.store_settings.lockout.lock_delays_secs = Vec::new();
    let runtime = MasterController::start(config).unwrap();
    start(&runtime).await;
    assert_status(&post(&runtime, enroll_pin(Some(PIN))).await, StatusType::Ok);
    let user = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("logged in");
    // userId is the token's sub; the registration is the client whose tokens name it.
    let client = idp
        .client_of_subject(TENANT, &user.user_id)
        .expect("registered at the IDP");
    post(&runtime, RestartEvent::new()).await;
    for _ in 1..10 {
        assert_status(
            &post(&runtime, login_pin("111111")).await,
            StatusType::InvalidPassword,
        );
    }
    let blocked = post(&runtime, login_pin("111111")).await;
    assert_status(&blocked, StatusType::PinBlocked);
    assert_eq!(code(&blocked), error_code::PIN_RETRIES_EXCEEDED);
    assert_eq!(blocked.retry_counter, Some(0));
    assert_eq!(blocked.info.next_action, Some(NextAction::EnrollAgain));
    assert!(description(&blocked).contains("wrong PINs"), "{blocked:?}");
    assert!(!idp.client_exists(TENANT, &client), "deleted at the IDP");
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    // Even the right PIN cannot bring it back.
    assert_status(
        &post(&runtime, login_pin(PIN)).await,
        StatusType::InvalidState,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_lock_while_logged_in_ends_the_session() {
    let idp = idp().await;
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    config.store_settings.lockout.lock_delays_secs = Vec::new();
    let runtime = MasterController::start(config).unwrap();
    start(&runtime).await;
    assert_status(&post(&runtime, enroll_pin(Some(PIN))).await, StatusType::Ok);
    let recorder = Recorder::attach(&runtime);
    for _ in 1..10 {
        post(&runtime, login_pin("222222")).await;
    }
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    let blocked = post(&runtime, login_pin("222222")).await;
    assert_status(&blocked, StatusType::PinBlocked);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    recorder
        .wait_for("the session-ended warning", |e| {
            matches!(e, Event::WarningEvent(w) if w.error_code == error_code::PIN_RETRIES_EXCEEDED)
        })
        .await;
}

fn switch_to(mode: AuthenticationMode) -> EnableAuthenticationModeEvent {
    EnableAuthenticationModeEvent::new(mode)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_no_password_pin_keeps_the_credential_and_checks_the_current_secret() {
    let idp = idp().await;
    let runtime = fast_runtime(&idp);
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let user = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();

    // NO -> PIN: the new PIN in `newPassword`, checked like any PIN.
    for not_a_pin in NOT_PINS {
        let mut event = switch_to(AuthenticationMode::Pin);
        event.new_password = Some(SecretString::from(*not_a_pin));
        assert_refused_field(&post(&runtime, event).await, "newPassword", not_a_pin);
    }
    let mut event = switch_to(AuthenticationMode::Pin);
    event.new_password = Some(SecretString::from(PIN));
    assert_status(&post(&runtime, event).await, StatusType::Ok);

    // PIN -> PASSWORD with a wrong current PIN: counted (retry fields), nothing changed.
    let mut event = switch_to(AuthenticationMode::Password);
    event.password = Some(SecretString::from("999999"));
    event.new_password = Some(SecretString::from("a long password"));
    let wrong = post(&runtime, event).await;
    assert_status(&wrong, StatusType::InvalidPassword);
    assert_eq!(wrong.retry_counter, Some(9));
    // ...and a current "PIN" that cannot be one: refused naming `password`, not counted.
    let mut event = switch_to(AuthenticationMode::Password);
    event.password = Some(SecretString::from("abcdef"));
    event.new_password = Some(SecretString::from("a long password"));
    assert_refused_field(&post(&runtime, event).await, "password", "abcdef");
    post(&runtime, RestartEvent::new()).await;
    let login = post(&runtime, login_pin(PIN)).await;
    assert_status(&login, StatusType::Ok);

    // PIN -> PASSWORD -> PIN (PIN -> PIN changes it) -> NO: the same user all along.
    let mut event = switch_to(AuthenticationMode::Password);
    event.password = Some(SecretString::from(PIN));
    event.new_password = Some(SecretString::from("a long password"));
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    let mut event = switch_to(AuthenticationMode::Pin);
    event.password = Some(SecretString::from("a long password"));
    event.new_password = Some(SecretString::from("13572468"));
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    let mut event = switch_to(AuthenticationMode::Pin);
    event.password = Some(SecretString::from("13572468"));
    event.new_password = Some(SecretString::from("97531864"));
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    let old = post(&runtime, login_pin("13572468")).await;
    assert_status(&old, StatusType::InvalidPassword);
    assert_status(&post(&runtime, login_pin("97531864")).await, StatusType::Ok);
    let mut event = switch_to(AuthenticationMode::No);
    event.password = Some(SecretString::from("97531864"));
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let after = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    assert_eq!(after, user, "the credential survived every switch");
    // The device token still works at the IDP: an exchange succeeds.
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identified_user_in_mode_pin_logs_in_at_the_idp_then_offline_with_the_pin() {
    use mc_testkit::identified::{authorization_request, code_event, log_in_with};
    let idp = idp().await;
    let runtime = fast_runtime(&idp);
    start(&runtime).await;
    // A PIN with a letter: refused naming `password`, nothing stored, nothing redeemed.
    let refused = log_in_with(&runtime, authorization_request(), |redirect| {
        let mut event = code_event(redirect);
        event.authentication_mode = AuthenticationMode::Pin;
        event.with_password("12345x")
    })
    .await;
    assert_refused_field(&refused, "password", "12345x");
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);

    let answer = log_in_with(&runtime, authorization_request(), |redirect| {
        let mut event = code_event(redirect);
        event.authentication_mode = AuthenticationMode::Pin;
        event.with_password(PIN)
    })
    .await;
    assert_status(&answer, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    let wrong = post(&runtime, login_pin("000000")).await;
    assert_status(&wrong, StatusType::InvalidPassword);
    assert_eq!(wrong.retry_counter, Some(9));
    // The right PIN unlocks the refresh token; the IDP refreshes the login.
    assert_status(&post(&runtime, login_pin(PIN)).await, StatusType::Ok);
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_of_a_pin_protected_anonymous_user_not_logged_in_asks_for_its_login_first() {
    use mc_testkit::identified::authorization_request;
    let idp = idp().await;
    let runtime = fast_runtime(&idp);
    start(&runtime).await;
    assert_status(&post(&runtime, enroll_pin(Some(PIN))).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    let refused = post(&runtime, authorization_request()).await;
    assert_status(&refused, StatusType::InvalidState);
    assert!(
        refused.info.error_description.contains("PIN"),
        "{refused:?}"
    );
    assert_eq!(
        refused.info.next_action,
        Some(NextAction::SendFirst {
            request_type: "OfflineLoginEvent".into()
        })
    );
    assert!(refused.authorization_url.is_empty());
}
