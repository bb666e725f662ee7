//! An anonymous user's `userId` is the IDP's user id, the `sub` of its device token (issue 11
//! point 8), through the public API against the dev IDP (whose device tokens name a random
//! UUID per registration, as Keycloak names the service-account user): enrollment names the
//! user so, every lookup by `userIdentifier` uses it, a login whose token names another `sub`
//! is refused with nothing stored, and a store written before (users named by their
//! registration client_id) is migrated user by user at the next login, in one commit.

use std::path::Path;
use std::time::Duration;

use mc_devidp::DevIdp;
use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_store::{EnrolledUser, KvBackend, Protection, RedbBackend, UserId, UserStore, Write};
use mc_testkit::*;

fn file_runtime(idp: &DevIdp, dir: &Path) -> MasterController {
    runtime_at(&idp.base_url(), StoreLocation::Directory(dir.into()))
}

fn listed(started: &StartResultEvent) -> Vec<UserIdentifier> {
    started
        .user_details_list
        .iter()
        .map(|details| details.user_identifier.clone())
        .collect()
}

fn login_as(user: &UserIdentifier) -> OfflineLoginEvent {
    OfflineLoginEvent::new().for_user(user.clone())
}

/// The store of a stopped runtime (its actor closes the file shortly after the drop).
async fn open_store(dir: &Path) -> UserStore {
    for _ in 0..100 {
        if let Ok(store) = UserStore::open_default(dir) {
            return store;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    UserStore::open_default(dir).expect("the stopped runtime's store opens")
}

fn code_of(event: impl Into<Event>) -> u32 {
    let json = event.into().to_json_value();
    json["errorCode"].as_u64().unwrap_or_default() as u32
}

#[tokio::test]
async fn the_user_id_of_an_anonymous_user_is_its_device_token_sub() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let user = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    let claims = post(&runtime, GetIamAccessTokenClaimsEvent::new()).await;
    assert_eq!(claims.claims.get("sub"), Some(&user.user_id));
    let client = idp.client_of_subject(TENANT, &user.user_id).unwrap();
    assert_eq!(claims.claims.get("azp"), Some(&client));
    assert_ne!(client, user.user_id);

    // Every lookup by userIdentifier takes the sub, none the client_id.
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(
        restarted
            .user_details_list
            .iter()
            .map(|d| d.user_identifier.clone())
            .collect::<Vec<_>>(),
        vec![user.clone()]
    );
    let by_client = post(
        &runtime,
        login_as(&UserIdentifier::new(TENANT, client.as_str())),
    )
    .await;
    assert_status(&by_client, StatusType::InvalidUserId);
    assert_status(&post(&runtime, login_as(&user)).await, StatusType::Ok);
    // ... and the exchange still authenticates as the client (its assertion names it).
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
    let deleted = post(&runtime, DeleteUserEvent::new().for_user(user.clone())).await;
    assert_status(&deleted, StatusType::Ok);
    assert!(!idp.client_exists(TENANT, &client));
}

/// Hostile: the IDP answers a later login (or a token renewal) with another user's `sub`.
#[tokio::test]
async fn a_login_whose_token_names_another_sub_is_refused_and_nothing_is_stored() {
    let idp = idp().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = file_runtime(&idp, dir.path());
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let user = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    post(&runtime, RestartEvent::new()).await;

    idp.faults()
        .set_device_token_subject(Some("swapped-identity".into()));
    let refused = post(&runtime, login_as(&user)).await;
    assert_status(&refused, StatusType::InvalidToken);
    assert_eq!(code_of(refused), error_code::SUBJECT_CHANGED);
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    drop(runtime);
    {
        let store = open_store(dir.path()).await;
        let users = store.list_users().unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].id.user_id, user.user_id, "not renamed");
        assert_eq!(
            users[0].last_login_at,
            store.get_user(&users[0].id).unwrap().unwrap().last_login_at
        );
    }

    // With the IDP honest again the same user logs in.
    idp.faults().set_device_token_subject(None);
    let runtime = file_runtime(&idp, dir.path());
    start(&runtime).await;
    assert_status(&post(&runtime, login_as(&user)).await, StatusType::Ok);

    // A renewal of the device token that names another sub fails the request that needed it.
    post(
        &runtime,
        ClearIamTokenCacheEvent::new().with_behavior(ClearBehavior::ClearAccessAndRefresh),
    )
    .await;
    idp.faults()
        .set_device_token_subject(Some("swapped-identity".into()));
    let exchange = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    assert_status(&exchange, StatusType::InvalidToken);
    assert_eq!(code_of(exchange), error_code::SUBJECT_CHANGED);
}

/// Hostile: a new registration whose token names a user already on this device (the IDP
/// gave two registrations one `sub`) is refused; the old user stays, the new registration
/// is undone at the IDP.
#[tokio::test]
async fn an_enrollment_whose_sub_is_taken_is_refused_and_undone() {
    let idp = idp().await;
    let runtime = enrolled_memory_runtime(&idp).await;
    let first = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    post(&runtime, RestartEvent::new()).await;
    idp.faults()
        .set_device_token_subject(Some(first.user_id.clone()));
    let deletes = idp.stats().registration_delete;
    let again = enroll(&runtime).await;
    assert_status(&again, StatusType::InvalidToken);
    assert_eq!(code_of(again), error_code::SUBJECT_CHANGED);
    assert_eq!(idp.stats().registration_delete, deletes + 1, "undone");
    idp.faults().set_device_token_subject(None);
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(
        restarted
            .user_details_list
            .iter()
            .map(|d| d.user_identifier.clone())
            .collect::<Vec<_>>(),
        vec![first.clone()]
    );
    assert_status(&post(&runtime, login_as(&first)).await, StatusType::Ok);
}

/// Turns the store's only user into what the previous version wrote: keyed by its
/// registration client_id, no client_id of its own, schema version 2. Answers its old id.
async fn make_it_a_previous_version_store(dir: &Path) -> (UserId, EnrolledUser) {
    let store = open_store(dir).await;
    let current = store.list_users().unwrap().remove(0);
    let user = store.get_user(&current.id).unwrap().unwrap();
    let client = user.registration_client_id.clone().unwrap();
    let old_id = UserId::new(TENANT, client.as_str());
    let legacy = EnrolledUser {
        id: old_id.clone(),
        registration_client_id: None,
        ..user.clone()
    };
    assert!(store.delete_user(&user.id).unwrap());
    store.put_user(&legacy, &Protection::No).unwrap();
    drop(store);
    let backend = RedbBackend::open(&dir.join(mc_store::DEFAULT_DB_FILE)).unwrap();
    backend
        .commit(vec![Write::put("meta", *b"schema_version", *b"2")])
        .unwrap();
    (old_id, user)
}

#[tokio::test]
async fn a_previous_version_store_moves_each_user_to_its_sub_at_its_next_login() {
    let idp = idp().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = file_runtime(&idp, dir.path());
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    drop(runtime);
    let (old_id, user) = make_it_a_previous_version_store(dir.path()).await;
    let old = UserIdentifier::new(TENANT, old_id.user_id.as_str());
    let sub = UserIdentifier::new(TENANT, user.id.user_id.as_str());

    // Until it logs in, the user is named as before.
    let runtime = file_runtime(&idp, dir.path());
    assert_eq!(listed(&start(&runtime).await), vec![old.clone()]);
    assert_status(&post(&runtime, login_as(&old)).await, StatusType::Ok);
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert_eq!(info.logged_in_user, Some(sub.clone()));
    assert_status(
        &post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await,
        StatusType::Ok,
    );
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_eq!(
        restarted
            .user_details_list
            .iter()
            .map(|d| d.user_identifier.clone())
            .collect::<Vec<_>>(),
        vec![sub.clone()]
    );
    assert_status(
        &post(&runtime, login_as(&old)).await,
        StatusType::InvalidUserId,
    );
    assert_status(&post(&runtime, login_as(&sub)).await, StatusType::Ok);
    drop(runtime);

    let store = open_store(dir.path()).await;
    let users = store.list_users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, user.id);
    assert_eq!(
        users[0].registration_client_id.as_deref(),
        Some(old_id.user_id.as_str())
    );
    assert_eq!(store.last_user().unwrap(), Some(user.id.clone()));
    let moved = store.get_user(&user.id).unwrap().unwrap();
    assert_eq!(
        moved.secrets.device_key_pkcs8,
        user.secrets.device_key_pkcs8
    );
}

/// Hostile: the IDP answers the first login of a previous-version user with the `sub` of
/// another user of this device: refused, nothing moved or overwritten.
#[tokio::test]
async fn a_previous_version_user_whose_login_names_a_taken_sub_is_refused() {
    let idp = idp().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = file_runtime(&idp, dir.path());
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    drop(runtime);
    let (old_id, user) = make_it_a_previous_version_store(dir.path()).await;
    {
        // Another user of this device, named "taken-sub".
        let store = open_store(dir.path()).await;
        let other = EnrolledUser {
            id: UserId::new(TENANT, "taken-sub"),
            enrollment_client_id: "AnotherEnrollmentClient".into(),
            ..user.clone()
        };
        store.put_user(&other, &Protection::No).unwrap();
        store.set_last_user(&old_id).unwrap();
    }
    idp.faults()
        .set_device_token_subject(Some("taken-sub".into()));
    let runtime = file_runtime(&idp, dir.path());
    start(&runtime).await;
    let old = UserIdentifier::new(TENANT, old_id.user_id.as_str());
    let refused = post(&runtime, login_as(&old)).await;
    assert_status(&refused, StatusType::InvalidToken);
    assert_eq!(code_of(refused), error_code::SUBJECT_CHANGED);
    let restarted = post(&runtime, RestartEvent::new()).await;
    let mut users: Vec<String> = restarted
        .user_details_list
        .iter()
        .map(|d| d.user_identifier.user_id.clone())
        .collect();
    users.sort();
    let mut want = vec![old_id.user_id.clone(), "taken-sub".to_string()];
    want.sort();
    assert_eq!(users, want);
    drop(runtime);
    let store = open_store(dir.path()).await;
    let other = store
        .get_user(&UserId::new(TENANT, "taken-sub"))
        .unwrap()
        .unwrap();
    assert_eq!(other.enrollment_client_id, "AnotherEnrollmentClient");
}
