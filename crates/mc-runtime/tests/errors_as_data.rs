//! Errors as data: every failure the runtime makes carries `nextAction`, typed, and the codes
//! the issue named are fixed (invalid_target has its own code, a stopped component is
//! COMPONENT_FAILED). Each case talks to the real dev IDP on 127.0.0.1 through the typed API.

use mc_devidp::{FaultTarget, HttpFault};
use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_testkit::*;

fn next(info: &ResultInfo) -> Option<NextAction> {
    info.next_action.clone()
}

async fn enrolled(idp: &mc_devidp::DevIdp) -> MasterController {
    enrolled_memory_runtime(idp).await
}

/// Before: status SERVER_CANCEL with the delay only in the text. Now RETRY_AFTER with the
/// IDP's own seconds; without a Retry-After, the default delay.
#[tokio::test]
async fn an_unavailable_idp_says_when_to_retry() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    rt.post(StartEvent::new()).await;
    idp.faults().set_http_fault(
        FaultTarget::Registration,
        HttpFault::Status {
            status: 503,
            retry_after_secs: Some(120),
        },
        None,
    );
    let refused = rt
        .post(EnrollAnonymousUserEvent::new(
            TENANT,
            AuthenticationMode::No,
            CLIENT,
        ))
        .await;
    assert_eq!(refused.info.status, StatusType::ServerCancel, "{refused:?}");
    assert_eq!(
        next(&refused.info),
        Some(NextAction::RetryAfter { seconds: 120 })
    );
    assert_eq!(
        refused
            .info
            .to_owned()
            .next_action
            .map(|a| serde_json::to_value(a).unwrap()),
        Some(serde_json::json!({"action": "RETRY_AFTER", "seconds": 120}))
    );

    // No Retry-After: the runtime's default, never nothing.
    idp.faults().set_http_fault(
        FaultTarget::Registration,
        HttpFault::Status {
            status: 503,
            retry_after_secs: None,
        },
        None,
    );
    let refused = rt
        .post(EnrollAnonymousUserEvent::new(
            TENANT,
            AuthenticationMode::No,
            CLIENT,
        ))
        .await;
    assert_eq!(
        next(&refused.info),
        Some(NextAction::RetryAfter {
            seconds: DEFAULT_RETRY_SECS
        })
    );
}

/// Before: (INVALID_PARAMETER, ACCESS_DENIED) and no field. Now its own code and FIX_FIELD
/// audience.
#[tokio::test]
async fn an_audience_the_idp_refuses_names_the_field() {
    let idp = idp().await;
    let rt = enrolled(&idp).await;
    let refused = rt.post(ExchangeIamTokenEvent::new("no-such-api")).await;
    assert_eq!(
        refused.info.status,
        StatusType::InvalidParameter,
        "{refused:?}"
    );
    assert_eq!(refused.info.error_code, error_code::AUDIENCE_NOT_ALLOWED);
    assert_eq!(
        next(&refused.info),
        Some(NextAction::FixField {
            field: "audience".into()
        })
    );
    // The good audience still works: the refusal changed nothing.
    let ok = rt.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(ok.info.status, StatusType::Ok, "{ok:?}");
    assert_eq!(ok.info.next_action, None);
}

/// A request refused by state says which request to send first.
#[tokio::test]
async fn a_refusal_by_state_names_the_request_to_send_first() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    let early = rt.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(early.info.status, StatusType::InvalidState, "{early:?}");
    assert_eq!(
        next(&early.info),
        Some(NextAction::SendFirst {
            request_type: "StartEvent".into()
        })
    );
    rt.post(StartEvent::new()).await;
    let not_enrolled = rt.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(
        next(&not_enrolled.info),
        Some(NextAction::SendFirst {
            request_type: "EnrollAnonymousUserEvent".into()
        })
    );
    // A second start: ALREADY_INITIALIZED (no request to send first; nothing to do).
    let again = rt.post(StartEvent::new()).await;
    assert_eq!(again.info.status, StatusType::AlreadyInitialized);
    assert_eq!(next(&again.info), None);
}

/// INVALID_PARAMETER names the field, from Rust and from JSON.
#[tokio::test]
async fn a_bad_field_is_named() {
    let idp = idp().await;
    let rt = memory_runtime(&idp);
    rt.post(StartEvent::new()).await;
    let empty_tenant = rt
        .post(EnrollAnonymousUserEvent::new(
            "",
            AuthenticationMode::No,
            CLIENT,
        ))
        .await;
    assert_eq!(empty_tenant.info.status, StatusType::InvalidParameter);
    assert_eq!(
        next(&empty_tenant.info),
        Some(NextAction::FixField {
            field: "tenantId".into()
        })
    );
    let no_password = rt
        .post(EnrollAnonymousUserEvent::new(
            TENANT,
            AuthenticationMode::Password,
            CLIENT,
        ))
        .await;
    assert_eq!(no_password.info.status, StatusType::InvalidParameter);
    assert_eq!(
        next(&no_password.info),
        Some(NextAction::FixField {
            field: "password".into()
        })
    );
    let json = rt
        .post_json(
            r#"{"type":"ExchangeIamTokenEvent","requestId":"j-1","audience":5}"#,
            Some(WAIT),
        )
        .await;
    assert_eq!(
        json.result_info().and_then(|i| i.next_action.clone()),
        Some(NextAction::FixField {
            field: "audience".into()
        })
    );
}

/// The registration gone at the IDP: ENROLL_AGAIN.
#[tokio::test]
async fn a_registration_gone_at_the_idp_asks_to_enroll_again() {
    let idp = idp().await;
    let rt = enrolled(&idp).await;
    idp.faults().set_reject_all_tokens_with_invalid_client(true);
    let refused = rt.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(
        refused.info.status,
        StatusType::OfflineNotActivated,
        "{refused:?}"
    );
    assert_eq!(next(&refused.info), Some(NextAction::EnrollAgain));
}

/// An IDP whose discovery names another issuer: nothing the app can do.
#[tokio::test]
async fn an_idp_configuration_error_asks_for_support() {
    let idp = idp().await;
    idp.faults().set_wrong_discovery_issuer(true);
    let rt = memory_runtime(&idp);
    rt.post(StartEvent::new()).await;
    let refused = rt
        .post(EnrollAnonymousUserEvent::new(
            TENANT,
            AuthenticationMode::No,
            CLIENT,
        ))
        .await;
    assert_eq!(
        refused.info.error_code,
        error_code::INVALID_CONFIGURATION,
        "{refused:?}"
    );
    assert_eq!(next(&refused.info), Some(NextAction::ContactSupport));
}

/// Wrong password: UNLOCK (ask again); the lock that follows: RETRY_AFTER its delay.
#[tokio::test]
async fn a_wrong_password_asks_to_unlock_and_a_lock_says_how_long() {
    let idp = idp().await;
    let rt = MasterController::start(fast_config(&idp.base_url(), StoreLocation::Memory))
        .expect("runtime starts");
    rt.post(StartEvent::new()).await;
    let enrolled = rt
        .post(
            EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT)
                .with_password("right-password"),
        )
        .await;
    assert_eq!(enrolled.info.status, StatusType::Ok, "{enrolled:?}");
    rt.post(RestartEvent::new()).await;
    let mut saw_lock = false;
    for _ in 0..10 {
        let wrong = rt
            .post(OfflineLoginEvent::new().with_password("wrong-password"))
            .await;
        match wrong.info.status {
            StatusType::InvalidPassword => {
                assert_eq!(next(&wrong.info), Some(NextAction::Unlock), "{wrong:?}")
            }
            StatusType::TemporaryLocked => {
                let delay = wrong.retry_delay.expect("a lock has a retryDelay");
                assert_eq!(
                    next(&wrong.info),
                    Some(NextAction::RetryAfter { seconds: delay }),
                    "{wrong:?}"
                );
                saw_lock = true;
                break;
            }
            other => panic!("unexpected {other:?}: {wrong:?}"),
        }
    }
    assert!(
        saw_lock,
        "the lockout policy locks within 10 wrong passwords"
    );
}

/// Too many requests at once: RETRY_AFTER a moment.
#[tokio::test]
async fn too_many_requests_says_retry_soon() {
    let idp = idp().await;
    let mut config = config_at(&idp.base_url(), StoreLocation::Memory);
    config.max_requests_in_flight = 1;
    let rt = MasterController::start(config).expect("runtime starts");
    rt.post(StartEvent::new()).await;
    idp.faults().set_http_fault(
        FaultTarget::Registration,
        HttpFault::Delay { millis: 1_000 },
        None,
    );
    rt.forward_event(EnrollAnonymousUserEvent::new(
        TENANT,
        AuthenticationMode::No,
        CLIENT,
    ));
    let refused = rt.post(GetStateEvent::new()).await;
    assert_eq!(
        refused.info.error_code,
        error_code::TOO_MANY_REQUESTS,
        "{refused:?}"
    );
    assert_eq!(
        next(&refused.info),
        Some(NextAction::RetryAfter {
            seconds: BUSY_RETRY_SECS
        })
    );
}
