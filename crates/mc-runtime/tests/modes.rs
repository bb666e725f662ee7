//! Authentication modes through the runtime: PASSWORD with its lockout, BIOMETRIC with each
//! platform outcome, and switching modes without losing the credential.

use std::sync::Arc;

use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_secret::SecretString;
use mc_store::{ScriptedOutcome, SoftwareBiometric};
use mc_testkit::*;

const PASSWORD: &str = "correct horse battery staple";

fn enroll_with(mode: AuthenticationMode, password: Option<&str>) -> EnrollAnonymousUserEvent {
    let event = EnrollAnonymousUserEvent::new(TENANT, mode, CLIENT);
    match password {
        Some(password) => event.with_password(password),
        None => event,
    }
}

fn login_with(password: Option<&str>) -> OfflineLoginEvent {
    let event = OfflineLoginEvent::new();
    match password {
        Some(password) => event.with_password(password),
        None => event,
    }
}

fn retry(login: &OfflineLoginResultEvent) -> (Option<u32>, Option<u64>) {
    (login.retry_counter, login.retry_delay)
}

fn code<R: Clone + Into<Event>>(answer: &R) -> u32 {
    let event: Event = answer.clone().into();
    event.result_info().expect("a result").error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_mode_counts_locks_and_survives_a_restart_of_the_process() {
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

    let no_password = post(&runtime, enroll_with(AuthenticationMode::Password, None)).await;
    assert_status(&no_password, StatusType::InvalidParameter);
    assert_status(
        &post(
            &runtime,
            enroll_with(AuthenticationMode::Password, Some(PASSWORD)),
        )
        .await,
        StatusType::Ok,
    );
    post(&runtime, RestartEvent::new()).await;

    let missing = post(&runtime, login_with(None)).await;
    assert_status(&missing, StatusType::InvalidParameter);
    assert!(missing.info.error_description.contains("password"));

    for failed in 1..=3u32 {
        let wrong = post(&runtime, login_with(Some("wrong"))).await;
        assert_status(&wrong, StatusType::InvalidPassword);
        assert_eq!(code(&wrong), error_code::WRONG_PASSWORD);
        assert_eq!(retry(&wrong), (Some(10 - failed), None));
    }
    // The counter is durable: a new process goes on counting.
    drop(runtime);
    let runtime = MasterController::start(config()).unwrap();
    start(&runtime).await;
    let fourth = post(&runtime, login_with(Some("wrong"))).await;
    assert_eq!(retry(&fourth), (Some(6), None));
    // The fifth failure locks, for the first delay of the policy.
    let fifth = post(&runtime, login_with(Some("wrong"))).await;
    assert_status(&fifth, StatusType::TemporaryLocked);
    assert_eq!(code(&fifth), error_code::TEMPORARILY_LOCKED);
    assert_eq!(retry(&fifth), (Some(5), Some(60)));
    // While locked, even the right password is not tried.
    let locked = post(&runtime, login_with(Some(PASSWORD))).await;
    assert_status(&locked, StatusType::TemporaryLocked);
    let (_, delay) = retry(&locked);
    assert!(matches!(delay, Some(1..=60)), "{delay:?}");
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_password_resets_the_counter() {
    let idp = idp().await;
    let runtime =
        MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory)).unwrap();
    start(&runtime).await;
    post(
        &runtime,
        enroll_with(AuthenticationMode::Password, Some(PASSWORD)),
    )
    .await;
    post(&runtime, RestartEvent::new()).await;
    for _ in 0..3 {
        post(&runtime, login_with(Some("wrong"))).await;
    }
    assert_status(
        &post(&runtime, login_with(Some(PASSWORD))).await,
        StatusType::Ok,
    );
    post(&runtime, RestartEvent::new()).await;
    let wrong = post(&runtime, login_with(Some("wrong"))).await;
    assert_eq!(retry(&wrong), (Some(9), None), "counting starts again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_wrong_passwords_block_destroy_and_delete_at_the_idp() {
    let idp = idp().await;
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    // No temporary locks, so the test reaches the block without waiting for the clock.
    config.store_settings.lockout.lock_delays_secs = Vec::new();
    let runtime = MasterController::start(config).unwrap();
    start(&runtime).await;
    post(
        &runtime,
        enroll_with(AuthenticationMode::Password, Some(PASSWORD)),
    )
    .await;
    let info = post(&runtime, GetInformationEvent::new()).await;
    let user = info.logged_in_user.unwrap();
    let client = idp.client_of_subject(TENANT, &user.user_id).unwrap();
    post(&runtime, RestartEvent::new()).await;
    for _ in 1..10 {
        assert_status(
            &post(&runtime, login_with(Some("wrong"))).await,
            StatusType::InvalidPassword,
        );
    }
    let blocked = post(&runtime, login_with(Some("wrong"))).await;
    assert_status(&blocked, StatusType::PasswordBlocked);
    assert_eq!(code(&blocked), error_code::RETRIES_EXCEEDED);
    assert_eq!(retry(&blocked), (Some(0), None));
    assert!(!idp.client_exists(TENANT, &client), "deleted at the IDP");
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    // Even the right password cannot bring it back.
    assert_status(
        &post(&runtime, login_with(Some(PASSWORD))).await,
        StatusType::InvalidState,
    );
}

fn biometric_runtime(
    idp: &mc_devidp::DevIdp,
    platform: &Arc<SoftwareBiometric>,
) -> MasterController {
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    config.biometric = Some(platform.clone());
    MasterController::start(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn biometric_outcomes_map_to_statuses() {
    let idp = idp().await;
    let platform = Arc::new(SoftwareBiometric::in_memory());
    let runtime = biometric_runtime(&idp, &platform);
    start(&runtime).await;
    assert_status(
        &post(&runtime, enroll_with(AuthenticationMode::Biometric, None)).await,
        StatusType::Ok,
    );
    post(&runtime, RestartEvent::new()).await;
    assert_status(&post(&runtime, login_with(None)).await, StatusType::Ok);
    assert!(
        !platform.prompts().is_empty(),
        "the platform showed a prompt"
    );

    post(&runtime, RestartEvent::new()).await;
    platform.script_next(ScriptedOutcome::Cancel);
    let cancelled = post(&runtime, login_with(None)).await;
    assert_status(&cancelled, StatusType::UserCancel);
    assert_eq!(code(&cancelled), error_code::USER_CANCELLED);

    platform.script_next(ScriptedOutcome::Lockout(7));
    let locked = post(&runtime, login_with(None)).await;
    assert_status(&locked, StatusType::TemporaryLocked);
    assert_eq!(code(&locked), error_code::biometric(7));

    platform.script_next(ScriptedOutcome::Fail(12));
    let failed = post(&runtime, login_with(None)).await;
    assert_status(&failed, StatusType::Failed);
    assert_eq!(code(&failed), error_code::biometric(12));

    // None of these lost the credential.
    assert_status(&post(&runtime, login_with(None)).await, StatusType::Ok);

    post(&runtime, RestartEvent::new()).await;
    platform.invalidate_all();
    let invalidated = post(&runtime, login_with(None)).await;
    assert_status(&invalidated, StatusType::BiometricKeyInvalidated);
    assert_eq!(code(&invalidated), error_code::BIOMETRIC_KEY_INVALIDATED);
    // A typed status, not a silent logout: the user is still listed for a fallback or deletion.
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn biometric_without_a_platform_key_provider_is_not_supported() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    let answer = post(&runtime, enroll_with(AuthenticationMode::Biometric, None)).await;
    assert_status(&answer, StatusType::NotSupported);
    assert_eq!(idp.stats().registration, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_modes_keeps_the_same_credential() {
    let idp = idp().await;
    let platform = Arc::new(SoftwareBiometric::in_memory());
    let runtime = biometric_runtime(&idp, &platform);
    start(&runtime).await;
    post(&runtime, enroll_with(AuthenticationMode::No, None)).await;
    let client_before = idp.stats().registration;
    let azp = |runtime: &MasterController| {
        let runtime = runtime.clone();
        async move {
            let claims = post(&runtime, GetIamAccessTokenClaimsEvent::new()).await;
            claims.claims.get("azp").cloned().unwrap()
        }
    };
    let device = azp(&runtime).await;

    // NO -> PASSWORD needs the new password.
    let missing = post(
        &runtime,
        EnableAuthenticationModeEvent::new(AuthenticationMode::Password),
    )
    .await;
    assert_status(&missing, StatusType::InvalidParameter);
    let mut to_password = EnableAuthenticationModeEvent::new(AuthenticationMode::Password);
    to_password.new_password = Some(SecretString::new(PASSWORD));
    assert_status(&post(&runtime, to_password).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, login_with(None)).await,
        StatusType::InvalidParameter,
    );
    assert_status(
        &post(&runtime, login_with(Some(PASSWORD))).await,
        StatusType::Ok,
    );
    assert_eq!(azp(&runtime).await, device);

    // PASSWORD -> BIOMETRIC needs the current password; a wrong one changes nothing.
    let mut wrong = EnableAuthenticationModeEvent::new(AuthenticationMode::Biometric);
    wrong.password = Some(SecretString::new("wrong"));
    assert_status(&post(&runtime, wrong).await, StatusType::InvalidPassword);
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, login_with(Some(PASSWORD))).await,
        StatusType::Ok,
    );
    let mut to_biometric = EnableAuthenticationModeEvent::new(AuthenticationMode::Biometric);
    to_biometric.password = Some(SecretString::new(PASSWORD));
    assert_status(&post(&runtime, to_biometric).await, StatusType::Ok);
    post(&runtime, RestartEvent::new()).await;
    assert_status(&post(&runtime, login_with(None)).await, StatusType::Ok);
    assert_eq!(azp(&runtime).await, device);

    // BIOMETRIC -> NO: leaving BIOMETRIC never loses the credential.
    assert_status(
        &post(
            &runtime,
            EnableAuthenticationModeEvent::new(AuthenticationMode::No),
        )
        .await,
        StatusType::Ok,
    );
    post(&runtime, RestartEvent::new()).await;
    assert_status(&post(&runtime, login_with(None)).await, StatusType::Ok);
    assert_eq!(azp(&runtime).await, device);
    assert_eq!(
        idp.stats().registration,
        client_before,
        "no new enrollment was needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_biometric_enrollment_stores_nothing_and_undoes_the_registration() {
    let idp = idp().await;
    let platform = Arc::new(SoftwareBiometric::in_memory());
    let runtime = biometric_runtime(&idp, &platform);
    start(&runtime).await;
    platform.script_next(ScriptedOutcome::Cancel);
    let answer = post(&runtime, enroll_with(AuthenticationMode::Biometric, None)).await;
    assert_status(&answer, StatusType::UserCancel);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    let stats = idp.stats();
    assert_eq!((stats.registration, stats.registration_delete), (1, 1));
}
