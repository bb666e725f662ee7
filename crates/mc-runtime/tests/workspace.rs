//! SwitchWorkspaceEvent through the runtime (issue 11 point 10), against the dev IDP with two
//! tenants on 127.0.0.1: the switch ends the session and makes the other tenant's user the
//! one OfflineLogin logs in, survives a restart of the process, and refuses an unknown tenant,
//! a bad `tenantId`, a switch in the wrong state and one beside a running state change.

use mc_devidp::DevIdpConfig;
use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_testkit::*;

const OTHER: &str = "other";

async fn two_tenant_idp() -> mc_devidp::DevIdp {
    idp_with(DevIdpConfig {
        tenants: vec![TENANT.to_owned(), OTHER.to_owned()],
        ..DevIdpConfig::default()
    })
    .await
}

fn logged_in(info: &GetInformationResultEvent) -> Option<String> {
    info.logged_in_user.as_ref().map(|u| u.tenant_id.clone())
}

/// Enrolls a NO user in TENANT, then one in OTHER (the last enrolled is logged in).
async fn enroll_both(runtime: &MasterController) -> (UserIdentifier, UserIdentifier) {
    assert_status(&enroll(runtime).await, StatusType::Ok);
    let demo = post(runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    let other = EnrollAnonymousUserEvent::new(OTHER, AuthenticationMode::No, CLIENT);
    assert_status(&post(runtime, other).await, StatusType::Ok);
    let other = post(runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    assert_eq!(other.tenant_id, OTHER);
    (demo, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_ends_the_session_picks_the_tenants_user_and_survives_a_restart() {
    let idp = two_tenant_idp().await;
    let store = tempfile::tempdir().unwrap();
    let config = || {
        fast_config(
            &idp.base_url(),
            StoreLocation::Directory(store.path().into()),
        )
    };
    let runtime = MasterController::start(config()).unwrap();
    start(&runtime).await;
    let (demo, other) = enroll_both(&runtime).await;
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
    let recorder = Recorder::attach(&runtime);

    let switched = post(&runtime, SwitchWorkspaceEvent::new(TENANT)).await;
    assert_status(&switched, StatusType::Ok);
    assert_eq!(switched.user_identifier.as_ref(), Some(&demo));
    assert_eq!(switched.sdk_state, SdkState::LoginRequired);
    let start_login = recorder
        .wait_for("StartLoginEvent", |e| {
            matches!(e, Event::StartLoginEvent(_))
        })
        .await;
    let Event::StartLoginEvent(start_login) = start_login else {
        unreachable!()
    };
    assert_eq!(start_login.user_identifier, demo);
    // The old session is gone: its tokens are no longer served.
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(logged_in(&info), None);
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::InvalidState,
    );
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);

    // The choice is stored: a new process logs in the user of the chosen tenant.
    drop(runtime);
    let runtime = MasterController::start(config()).unwrap();
    let recorder = Recorder::attach(&runtime);
    let started = start(&runtime).await;
    assert_eq!(started.sdk_state, SdkState::LoginRequired);
    assert_eq!(started.user_details_list.len(), 2);
    assert!(started
        .supported_features
        .contains(&"SWITCH_WORKSPACE".to_string()));
    // The StartLoginEvent after Start names the stored active user.
    let announced = recorder
        .wait_for("StartLoginEvent", |e| {
            matches!(e, Event::StartLoginEvent(_))
        })
        .await;
    let Event::StartLoginEvent(announced) = announced else {
        unreachable!()
    };
    assert_eq!(announced.user_identifier, demo);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(info.logged_in_user.as_ref(), Some(&demo));

    // Switching back, then logging in without naming the user: the other tenant's user.
    let back = post(&runtime, SwitchWorkspaceEvent::new(OTHER)).await;
    assert_eq!(back.user_identifier.as_ref(), Some(&other));
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(info.logged_in_user.as_ref(), Some(&other));
    assert_eq!(
        info.iam_configuration_data.map(|c| c.tenant_id),
        Some(OTHER.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_tenant_is_a_no_op_that_keeps_the_session() {
    let idp = two_tenant_idp().await;
    let runtime =
        MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory)).unwrap();
    start(&runtime).await;
    let (_, other) = enroll_both(&runtime).await;
    let same = post(&runtime, SwitchWorkspaceEvent::new(OTHER)).await;
    assert_status(&same, StatusType::Ok);
    assert_eq!(same.user_identifier.as_ref(), Some(&other));
    assert_eq!(same.sdk_state, SdkState::LoggedIn);
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_empty_and_oversized_tenants_change_nothing() {
    let idp = two_tenant_idp().await;
    let runtime =
        MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory)).unwrap();
    start(&runtime).await;
    let (_, other) = enroll_both(&runtime).await;

    // A tenant the IDP knows but no user of this device belongs to, and one nobody knows.
    for tenant in ["no-such-tenant", "Other", "other "] {
        let unknown = post(&runtime, SwitchWorkspaceEvent::new(tenant)).await;
        assert_status(&unknown, StatusType::InvalidUserId);
        assert_eq!(unknown.info.error_code, error_code::UNKNOWN_TENANT);
        assert_eq!(
            unknown.info.next_action,
            Some(NextAction::FixField {
                field: "tenantId".into()
            })
        );
        assert_eq!(unknown.user_identifier.as_ref(), Some(&other));
        assert_eq!(unknown.sdk_state, SdkState::LoggedIn);
    }
    for tenant in [String::new(), "t".repeat(MAX_IDENTIFIER_BYTES + 1)] {
        let bad = post(&runtime, SwitchWorkspaceEvent::new(tenant)).await;
        assert_status(&bad, StatusType::InvalidParameter);
        assert!(bad.info.error_description.contains("`tenantId`"), "{bad:?}");
    }
    let json = runtime
        .post_json(
            r#"{"type":"SwitchWorkspaceEvent","tenantId":7}"#,
            Some(WAIT),
        )
        .await;
    assert_status(&json, StatusType::InvalidParameter);
    // Nothing changed: still logged in as the other tenant's user.
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(info.logged_in_user.as_ref(), Some(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_is_refused_before_start_without_users_and_beside_a_running_state_change() {
    let idp = two_tenant_idp().await;
    let runtime =
        MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory)).unwrap();
    let before_start: Event = post(&runtime, SwitchWorkspaceEvent::new(TENANT))
        .await
        .into();
    assert_status(&before_start, StatusType::InvalidState);
    start(&runtime).await;
    let no_users: Event = post(&runtime, SwitchWorkspaceEvent::new(TENANT))
        .await
        .into();
    assert_status(&no_users, StatusType::InvalidState);
    let (demo, other) = enroll_both(&runtime).await;

    // A switch posted while a login runs (the IDP answers slowly) is refused whole; the
    // login completes and the active user stays the other tenant's.
    let slow = mc_devidp::HttpFault::Delay { millis: 1_500 };
    idp.faults()
        .set_http_fault(mc_devidp::FaultTarget::Token, slow, None);
    let logging_in = post(&runtime, OfflineLoginEvent::new());
    let switching = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        post(&runtime, SwitchWorkspaceEvent::new(TENANT)).await
    };
    let (login, switched) = tokio::join!(logging_in, switching);
    idp.faults().clear_all();
    let switched: Event = switched.into();
    assert_status(&switched, StatusType::InvalidState);
    assert_status(&login, StatusType::Ok);
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(info.logged_in_user.as_ref(), Some(&other));
    // Once it is answered, the switch goes through.
    let switched = post(&runtime, SwitchWorkspaceEvent::new(TENANT)).await;
    assert_status(&switched, StatusType::Ok);
    assert_eq!(switched.user_identifier.as_ref(), Some(&demo));
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_in_flight_during_a_switch_leaves_no_token_behind() {
    let idp = two_tenant_idp().await;
    let runtime =
        MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory)).unwrap();
    start(&runtime).await;
    let (demo, other) = enroll_both(&runtime).await;

    // The exchange for the other tenant's user is slow; the switch lands while it runs (an
    // exchange changes no state, so the switch is admitted beside it).
    let slow = mc_devidp::HttpFault::Delay { millis: 1_500 };
    idp.faults()
        .set_http_fault(mc_devidp::FaultTarget::Token, slow, Some(1));
    let exchanging = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE));
    let switching = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        post(&runtime, SwitchWorkspaceEvent::new(TENANT)).await
    };
    let (exchanged, switched) = tokio::join!(exchanging, switching);
    idp.faults().clear_all();
    assert_status(&switched, StatusType::Ok);
    assert_eq!(switched.user_identifier.as_ref(), Some(&demo));
    // Asked before the switch, answered to its poster.
    assert_status(&exchanged, StatusType::Ok);
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);

    // Back to the other tenant's user: its token from before the switch was not kept, so a
    // new exchange goes to the IDP.
    let back = post(&runtime, SwitchWorkspaceEvent::new(OTHER)).await;
    assert_eq!(back.user_identifier.as_ref(), Some(&other));
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let before = idp.stats().token_exchange;
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
    assert_eq!(
        idp.stats().token_exchange,
        before + 1,
        "the exchange went to the IDP: nothing cached from before the switch"
    );
}
