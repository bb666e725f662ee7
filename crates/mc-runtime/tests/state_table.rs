//! The (state × request) table, driven through a real runtime: in every state, every request
//! that is not valid there is answered with InvalidStateEvent, and every valid one is not.
//! The table itself is `RequestKind::valid_states` (mc-events), printed in docs/events.md.
//! The one exception is a second StartEvent: the MC-SDK answers it with its own result,
//! status ALREADY_INITIALIZED (tests/contract.rs).
//! UNIDENTIFIED is reached only when the store cannot be read at start; it is not driven here.

use mc_devidp::DevIdp;
use mc_events::*;
use mc_runtime::MasterController;
use mc_testkit::*;

fn sample(kind: RequestKind, idp: &DevIdp) -> Request {
    match kind {
        RequestKind::Start => StartEvent::new().into(),
        RequestKind::Restart => RestartEvent::new().into(),
        RequestKind::EnrollAnonymousUser => {
            EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT).into()
        }
        RequestKind::OfflineLogin => OfflineLoginEvent::new().into(),
        RequestKind::ExchangeIamToken => ExchangeIamTokenEvent::new(AUDIENCE).into(),
        RequestKind::GetIamAccessTokenClaims => GetIamAccessTokenClaimsEvent::new().into(),
        RequestKind::ClearIamTokenCache => ClearIamTokenCacheEvent::new().into(),
        RequestKind::DeleteIamTokenByAudience => {
            DeleteIamTokenByAudienceEvent::new([AUDIENCE]).into()
        }
        RequestKind::GetInformation => GetInformationEvent::new().into(),
        RequestKind::DeleteUser => DeleteUserEvent::new().into(),
        RequestKind::EnableAuthenticationMode => {
            EnableAuthenticationModeEvent::new(AuthenticationMode::No).into()
        }
        RequestKind::CreateHttpCommon => {
            CreateHttpCommonRequest::new(format!("{}/demo/echo", idp.base_url()), HttpMethod::Get)
                .with_audience(AUDIENCE)
                .into()
        }
        RequestKind::GetState => GetStateEvent::new().into(),
        RequestKind::CreateAuthorizationRequest => {
            CreateAuthorizationRequestEvent::new(TENANT, "mc-native", "http://127.0.0.1:5/cb")
                .into()
        }
        RequestKind::SetAuthorisationCode => SetAuthorisationCodeEvent::with_code(
            TENANT,
            "mc-native",
            AuthenticationMode::No,
            "code",
            "state",
        )
        .into(),
        RequestKind::SwitchWorkspace => SwitchWorkspaceEvent::new(TENANT).into(),
    }
}

/// A fresh runtime brought into `state` through the public API.
async fn runtime_in(state: SdkState, idp: &DevIdp) -> MasterController {
    let runtime = memory_runtime(idp);
    if state != SdkState::Uninitialised {
        assert_status(&start(&runtime).await, StatusType::Ok);
    }
    if matches!(state, SdkState::LoginRequired | SdkState::LoggedIn) {
        assert_status(&enroll(&runtime).await, StatusType::Ok);
    }
    if state == SdkState::LoginRequired {
        assert_status(&post(&runtime, RestartEvent::new()).await, StatusType::Ok);
    }
    if state != SdkState::Uninitialised {
        assert_eq!(state_of(&runtime).await, state);
    }
    runtime
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_and_request_pair() {
    let idp = idp().await;
    let states = [
        SdkState::Uninitialised,
        SdkState::ActivationRequired,
        SdkState::LoginRequired,
        SdkState::LoggedIn,
    ];
    let mut pairs = 0;
    for state in states {
        for &kind in RequestKind::ALL {
            let runtime = runtime_in(state, &idp).await;
            let answer = post_event(&runtime, sample(kind, &idp)).await;
            let refused = matches!(answer, Event::InvalidStateEvent(_));
            let second_start = kind == RequestKind::Start && state != SdkState::Uninitialised;
            if second_start {
                assert_eq!(answer.status(), Some(StatusType::AlreadyInitialized));
            }
            assert_eq!(
                refused,
                !kind.is_valid_in(state) && !second_start,
                "{} in {state:?} answered {answer:#?}",
                kind.name()
            );
            if let Event::InvalidStateEvent(e) = &answer {
                assert_eq!(e.request_type, kind.name());
                assert_eq!(e.sdk_state, state);
                assert!(!e.error_message.is_empty());
            } else {
                assert_eq!(answer.type_name(), kind.result_name(), "{answer:#?}");
            }
            pairs += 1;
        }
    }
    assert_eq!(pairs, 4 * RequestKind::ALL.len());
}
