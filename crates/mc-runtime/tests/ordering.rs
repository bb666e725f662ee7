//! The cached-token fast path keeps the ordering rule: a request never sees a state older than
//! one its poster already saw answered. After ClearIamTokenCache, DeleteIamTokenByAudience,
//! Restart or DeleteUser was answered, no later post gets a token from before it. Through the
//! real runtime against the dev IDP on loopback; typed results throughout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_devidp::{DevIdp, DevIdpConfig, FaultTarget, HttpFault};
use mc_events::*;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};

const TENANT: &str = "demo";
const CLIENT: &str = "AnonymousUserEnrollment";
const AUDIENCE: &str = "demo-api";

async fn idp() -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), DevIdpConfig::default())
        .await
        .expect("dev IDP starts")
}

/// A runtime on `idp`, started and enrolled (LOGGED_IN).
async fn logged_in(idp: &DevIdp) -> MasterController {
    let runtime =
        MasterController::start(RuntimeConfig::new(idp.base_url(), StoreLocation::Memory))
            .expect("runtime starts");
    let started = runtime.post(StartEvent::new()).await;
    assert_eq!(started.info.status, StatusType::Ok, "{started:?}");
    let enrolled = runtime
        .post(EnrollAnonymousUserEvent::new(
            TENANT,
            AuthenticationMode::No,
            CLIENT,
        ))
        .await;
    assert_eq!(enrolled.info.status, StatusType::Ok, "{enrolled:?}");
    runtime
}

/// The IAM token an exchange answered; fails the test on any other answer.
async fn token(runtime: &MasterController, audience: &str) -> String {
    let result = runtime.post(ExchangeIamTokenEvent::new(audience)).await;
    assert_eq!(result.info.status, StatusType::Ok, "{result:?}");
    result.token.expect("an IAM token").expose().to_string()
}

#[tokio::test]
async fn a_cached_token_is_answered_until_the_cache_is_cleared() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    let first = token(&runtime, AUDIENCE).await;
    // A hit: the same token, and a result like any other (its own request id).
    let hit = runtime.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(hit.token.as_ref().map(|t| t.expose()), Some(first.as_str()));
    assert!(hit.info.request_id.is_some(), "{hit:?}");

    let cleared = runtime
        .post(ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearAccessAndRefresh))
        .await;
    assert_eq!(cleared.info.status, StatusType::Ok, "{cleared:?}");
    let after = token(&runtime, AUDIENCE).await;
    assert_ne!(after, first, "a token from before the clear");
}

#[tokio::test]
async fn every_post_after_a_clear_gets_a_fresh_token_even_when_many_run_at_once() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    let first = token(&runtime, AUDIENCE).await;
    for _ in 0..3 {
        assert_eq!(token(&runtime, AUDIENCE).await, first);
    }
    runtime
        .post(ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearAccessAndRefresh))
        .await;
    let posts = (0..32).map(|_| token(&runtime, AUDIENCE));
    let tokens = futures::future::join_all(posts).await;
    assert!(
        tokens.iter().all(|t| *t != first),
        "a token from before the clear"
    );
    // Single-flight: all 32 waited for one exchange.
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "one exchange for all"
    );
}

#[tokio::test]
async fn delete_by_audience_drops_only_that_audience() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    let first = token(&runtime, AUDIENCE).await;
    let deleted = runtime
        .post(DeleteIamTokenByAudienceEvent::new(vec![
            AUDIENCE.to_string()
        ]))
        .await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:?}");
    assert_ne!(token(&runtime, AUDIENCE).await, first);
}

#[tokio::test]
async fn after_restart_or_delete_user_no_token_comes_from_the_cache() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    token(&runtime, AUDIENCE).await;

    let restarted = runtime.post(RestartEvent::new()).await;
    assert_eq!(
        restarted.sdk_state,
        SdkState::LoginRequired,
        "{restarted:?}"
    );
    let refused = runtime.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(refused.info.status, StatusType::InvalidState, "{refused:?}");
    assert!(refused.token.is_none());

    // Logged in again, the (surviving) cache answers; deleting the user ends that.
    let login = runtime.post(OfflineLoginEvent::new()).await;
    assert_eq!(login.info.status, StatusType::Ok, "{login:?}");
    token(&runtime, AUDIENCE).await;
    let deleted = runtime.post(DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:?}");
    let refused = runtime.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_eq!(refused.info.status, StatusType::InvalidState, "{refused:?}");
    assert!(refused.token.is_none());
}

#[tokio::test]
async fn an_exchange_under_way_during_a_clear_is_not_joined_nor_kept() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    // The next token request is slow: the exchange below is still under way when the
    // clear is answered.
    idp.faults().set_http_fault(
        FaultTarget::Token,
        HttpFault::Delay { millis: 1_500 },
        Some(1),
    );
    let slow = {
        let runtime = runtime.clone();
        tokio::spawn(async move { token(&runtime, AUDIENCE).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    runtime
        .post(ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearAccessAndRefresh))
        .await;
    // Posted after the clear was answered: its own exchange, not the one under way.
    let after = token(&runtime, AUDIENCE).await;
    let before = slow.await.expect("the slow exchange ends");
    assert_ne!(after, before, "joined an exchange from before the clear");
    // And the slow exchange's token was not stored once it arrived.
    assert_ne!(token(&runtime, AUDIENCE).await, before);
}

#[tokio::test]
async fn the_listeners_receive_cached_answers_with_their_ids() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = Arc::clone(&seen);
    runtime.add_event_listener(move |event: &Event| {
        sink.lock().unwrap().push(event.clone());
    });
    token(&runtime, AUDIENCE).await;
    let hit = runtime.post(ExchangeIamTokenEvent::new(AUDIENCE)).await;
    let id = hit.info.request_id.clone().expect("an id");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = seen.lock().unwrap().iter().any(|e| {
            matches!(e, Event::ExchangeIamTokenResultEvent(r) if r.info.request_id.as_ref() == Some(&id))
        });
        if found {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no listener got the cached answer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_host_request_id_still_passes_admission() {
    let idp = idp().await;
    let runtime = logged_in(&idp).await;
    token(&runtime, AUDIENCE).await;
    // A cache hit with the host's own id is answered through admission, with that id.
    let mut request: Request = ExchangeIamTokenEvent::new(AUDIENCE).into();
    request.request_id = Some(RequestId::new("host-1"));
    let answer = runtime.post_event(request).await;
    assert_eq!(answer.status(), Some(StatusType::Ok), "{answer:?}");
    assert_eq!(answer.request_id().map(RequestId::as_str), Some("host-1"));
    // The enrollment client is never an audience, cached or not.
    let refused = runtime.post(ExchangeIamTokenEvent::new(CLIENT)).await;
    assert_eq!(
        refused.info.status,
        StatusType::InvalidParameter,
        "{refused:?}"
    );
}
