//! DeleteUserEvent with the IDP out of reach (issue 11 point 5): the user is deleted locally at
//! once, what the IDP must still be told is queued sealed in the store, and sent on later
//! starts and when the IDP is reachable again, once. Against a real dev IDP on loopback that
//! persists its state, so it can be taken down and brought back on the same port.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mc_devidp::{DevIdp, DevIdpConfig, FaultTarget, HttpFault};
use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_store::{KvBackend, RedbBackend, Write};
use mc_testkit::*;

const OTHER_TENANT: &str = "other";
/// mc-store's queue table (its file format, read here only to damage it on purpose).
const QUEUE_TABLE: &str = "pending_idp_deletions";

fn idp_config(state: &Path) -> DevIdpConfig {
    DevIdpConfig {
        state_dir: Some(state.into()),
        tenants: vec![TENANT.to_owned(), OTHER_TENANT.to_owned()],
        ..Default::default()
    }
}

async fn idp_at(addr: SocketAddr, state: &Path) -> DevIdp {
    DevIdp::start(addr, idp_config(state)).await.unwrap()
}

fn runtime_in(idp_url: &str, store: &Path) -> MasterController {
    runtime_at(idp_url, StoreLocation::Directory(store.into()))
}

async fn enroll_in(runtime: &MasterController, tenant: &str) -> UserIdentifier {
    let enrolled = post(
        runtime,
        EnrollAnonymousUserEvent::new(tenant, AuthenticationMode::No, CLIENT),
    )
    .await;
    assert_status(&enrolled, StatusType::Ok);
    post(runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .expect("the enrolled user is logged in")
}

/// Waits until the runtime's queue holds `expected` records (a drain runs after the result
/// that started it).
async fn queue_reaches(runtime: &MasterController, expected: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let queued = runtime.queued_idp_deletions_for_tests().await.unwrap();
        if queued == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue holds {queued}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Enrolls one user, takes the IDP down, deletes the user: the test's usual start.
/// Answers the IDP's address, the deleted user and the store path.
async fn deleted_while_down(
    state: &Path,
    store: &Path,
) -> (SocketAddr, String, UserIdentifier, DevIdp) {
    let idp = idp_at("127.0.0.1:0".parse().unwrap(), state).await;
    let (addr, url) = (idp.local_addr(), idp.base_url());
    let runtime = runtime_in(&url, store);
    start(&runtime).await;
    let user = enroll_in(&runtime, TENANT).await;
    idp.shutdown().await;
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert!(deleted.idp_deletion_pending);
    queue_reaches(&runtime, 1).await;
    runtime.shutdown();
    drop(runtime);
    // Brought back, the client still registered (the delete never reached it).
    let idp = idp_at(addr, state).await;
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_some());
    (addr, url, user, idp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_down_at_delete_deletes_locally_and_the_next_start_deletes_at_the_idp() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let idp = idp_at("127.0.0.1:0".parse().unwrap(), state.path()).await;
    let (addr, url) = (idp.local_addr(), idp.base_url());
    let runtime = runtime_in(&url, store.path());
    start(&runtime).await;
    let deleted_user = enroll_in(&runtime, TENANT).await;
    let kept_user = enroll_in(&runtime, OTHER_TENANT).await;
    idp.shutdown().await;

    let deleted = post(
        &runtime,
        DeleteUserEvent::new().for_user(deleted_user.clone()),
    )
    .await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert!(deleted.idp_deletion_pending, "{deleted:#?}");
    assert_eq!(deleted.user_list, vec![kept_user.clone()]);
    assert_eq!(
        deleted.sdk_state,
        SdkState::LoggedIn,
        "the other user's session goes on"
    );
    // Gone locally: no offline login of it, now or after a restart.
    let login = post(
        &runtime,
        OfflineLoginEvent::new().for_user(deleted_user.clone()),
    )
    .await;
    assert_eq!(login.info.status, StatusType::InvalidUserId, "{login:#?}");
    queue_reaches(&runtime, 1).await;
    drop(runtime);

    // The IDP back, a new process: its start sends the queued delete.
    let idp = idp_at(addr, state.path()).await;
    assert!(idp
        .client_of_subject(TENANT, &deleted_user.user_id)
        .is_some());
    let runtime = runtime_in(&url, store.path());
    let started = start(&runtime).await;
    assert_eq!(started.user_details_list.len(), 1);
    queue_reaches(&runtime, 0).await;
    assert!(idp
        .client_of_subject(TENANT, &deleted_user.user_id)
        .is_none());
    assert!(idp
        .client_of_subject(OTHER_TENANT, &kept_user.user_id)
        .is_some());
    assert_eq!(idp.stats().registration_delete, 1);
    let login = post(&runtime, OfflineLoginEvent::new().for_user(deleted_user)).await;
    assert_eq!(login.info.status, StatusType::InvalidUserId, "{login:#?}");

    // Another start sends nothing more.
    post(&runtime, RestartEvent::new()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(idp.stats().registration_delete, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idp_reachable_again_sends_the_queued_delete_without_a_restart() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let idp = idp_at("127.0.0.1:0".parse().unwrap(), state.path()).await;
    let (addr, url) = (idp.local_addr(), idp.base_url());
    let runtime = runtime_in(&url, store.path());
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    let deleted_user = enroll_in(&runtime, TENANT).await;
    enroll_in(&runtime, OTHER_TENANT).await;
    idp.shutdown().await;
    let deleted = post(
        &runtime,
        DeleteUserEvent::new().for_user(deleted_user.clone()),
    )
    .await;
    assert!(deleted.idp_deletion_pending);
    recorder
        .wait_for("ServerConnectionEvent NOT_REACHABLE", |e| {
            matches!(e, Event::ServerConnectionEvent(s) if s.connection_state == ServerConnectionState::NotReachable)
        })
        .await;

    let idp = idp_at(addr, state.path()).await;
    // Any request that reaches the IDP: the runtime sees it back (CONNECTED) and drains.
    assert_status(
        &post(
            &runtime,
            ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true),
        )
        .await,
        StatusType::Ok,
    );
    recorder
        .wait_for("ServerConnectionEvent CONNECTED", |e| {
            matches!(e, Event::ServerConnectionEvent(s) if s.connection_state == ServerConnectionState::Connected)
        })
        .await;
    queue_reaches(&runtime, 0).await;
    assert!(idp
        .client_of_subject(TENANT, &deleted_user.user_id)
        .is_none());
    assert_eq!(idp.stats().registration_delete, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_keeps_the_record_and_each_start_retries_it_once() {
    let idp = idp().await;
    let store = tempfile::tempdir().unwrap();
    let runtime = runtime_in(&idp.base_url(), store.path());
    start(&runtime).await;
    let user = enroll_in(&runtime, TENANT).await;
    idp.faults().set_http_fault(
        FaultTarget::RegistrationManagement,
        HttpFault::Status {
            status: 500,
            retry_after_secs: None,
        },
        Some(2),
    );
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert!(deleted.idp_deletion_pending);
    assert!(deleted.user_list.is_empty());
    assert_eq!(deleted.sdk_state, SdkState::ActivationRequired);
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_some());

    // Every start sends it (whatever the backoff): the second 500, then the real answer.
    let mut starts = 0;
    while idp.client_of_subject(TENANT, &user.user_id).is_some() {
        starts += 1;
        assert!(starts <= 3, "the queued delete never got through");
        post(&runtime, RestartEvent::new()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    queue_reaches(&runtime, 0).await;
    // Reached the handler once: the 500s were answered before it, the success is not repeated.
    assert_eq!(idp.stats().registration_delete, 1);
    post(&runtime, RestartEvent::new()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(idp.stats().registration_delete, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_drops_the_record() {
    let idp = idp().await;
    let runtime = memory_runtime(&idp);
    start(&runtime).await;
    enroll_in(&runtime, TENANT).await;
    idp.faults().set_http_fault(
        FaultTarget::RegistrationManagement,
        HttpFault::OAuthError {
            status: 400,
            error: "invalid_request".into(),
            description: "refused for good (test)".into(),
        },
        None,
    );
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert!(!deleted.idp_deletion_pending);
    queue_reaches(&runtime, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_idp_answered_makes_the_retry_harmless() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, url, user, idp) = deleted_while_down(state.path(), store.path()).await;
    // As if the earlier try had reached the IDP and the process died before removing the
    // record: the client is gone, the record is still queued.
    let client = idp.client_of_subject(TENANT, &user.user_id).unwrap();
    assert!(idp.delete_client(TENANT, &client));
    let runtime = runtime_in(&url, store.path());
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    // The IDP answers "unknown client": done, the record goes, nothing is reported.
    queue_reaches(&runtime, 0).await;
    assert!(recorder
        .events()
        .iter()
        .all(|e| !matches!(e, Event::RuntimeErrorEvent(_))));
}

/// Changes the stored queue (the runtime must not hold the store).
fn edit_queue(store: &Path, edit: impl FnOnce(&RedbBackend, Vec<(Vec<u8>, Vec<u8>)>)) {
    let backend = RedbBackend::open(&store.join(mc_store::DEFAULT_DB_FILE)).unwrap();
    let records = backend
        .keys(QUEUE_TABLE)
        .unwrap()
        .into_iter()
        .map(|key| {
            let value = backend.get(QUEUE_TABLE, &key).unwrap().unwrap();
            (key, value)
        })
        .collect();
    edit(&backend, records);
}

fn flip_ciphertext_byte(value: &[u8]) -> Vec<u8> {
    let mut record: serde_json::Value = serde_json::from_slice(value).unwrap();
    let mut hex = record["sealed"]["ciphertext"].as_str().unwrap().to_string();
    let flipped = if hex.as_bytes()[10] == b'0' { "1" } else { "0" };
    hex.replace_range(10..11, flipped);
    record["sealed"]["ciphertext"] = hex.into();
    serde_json::to_vec(&record).unwrap()
}

async fn store_damage_reported(recorder: &Recorder) {
    recorder
        .wait_for(
            "RuntimeErrorEvent STORE",
            |e| matches!(e, Event::RuntimeErrorEvent(r) if r.error_type == "STORE"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_record_is_refused_reported_and_never_sent() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, url, user, idp) = deleted_while_down(state.path(), store.path()).await;
    edit_queue(store.path(), |backend, records| {
        let (key, value) = &records[0];
        backend
            .commit(vec![Write::put(
                QUEUE_TABLE,
                key.clone(),
                flip_ciphertext_byte(value),
            )])
            .unwrap();
    });
    let runtime = runtime_in(&url, store.path());
    let recorder = Recorder::attach(&runtime);
    assert_status(&start(&runtime).await, StatusType::Ok);
    store_damage_reported(&recorder).await;
    queue_reaches(&runtime, 0).await;
    assert_eq!(idp.stats().registration_delete, 0, "nothing sent");
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_record_is_sent_once() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, url, user, idp) = deleted_while_down(state.path(), store.path()).await;
    edit_queue(store.path(), |backend, records| {
        let (_, value) = &records[0];
        backend
            .commit(vec![Write::put(
                QUEUE_TABLE,
                b"00112233445566778899aabbccddeeff".to_vec(),
                value.clone(),
            )])
            .unwrap();
    });
    let runtime = runtime_in(&url, store.path());
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    queue_reaches(&runtime, 0).await;
    store_damage_reported(&recorder).await;
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_none());
    assert_eq!(idp.stats().registration_delete, 1, "one IDP call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_from_another_store_is_refused() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (addr, url, user, idp) = deleted_while_down(state.path(), store.path()).await;
    let mut foreign = Vec::new();
    edit_queue(store.path(), |backend, records| {
        // Moved out of its own store...
        backend
            .commit(vec![Write::delete(QUEUE_TABLE, records[0].0.clone())])
            .unwrap();
        foreign = records;
    });
    idp.shutdown().await;
    // ...into another device's store (its own store key), which has a user of its own.
    let other_store = tempfile::tempdir().unwrap();
    let idp = idp_at(addr, state.path()).await;
    let runtime = runtime_in(&url, other_store.path());
    start(&runtime).await;
    enroll_in(&runtime, TENANT).await;
    runtime.shutdown();
    drop(runtime);
    edit_queue(other_store.path(), |backend, _| {
        let (key, value) = &foreign[0];
        backend
            .commit(vec![Write::put(QUEUE_TABLE, key.clone(), value.clone())])
            .unwrap();
    });
    let before = idp.stats().registration_delete;
    let runtime = runtime_in(&url, other_store.path());
    let recorder = Recorder::attach(&runtime);
    start(&runtime).await;
    store_damage_reported(&recorder).await;
    queue_reaches(&runtime, 0).await;
    assert_eq!(idp.stats().registration_delete, before, "nothing sent");
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_some());
}

/// A copy of a store directory as it is now (the redb file and its key file).
fn snapshot(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identified_users_refresh_token_is_revoked_once_the_idp_takes_it() {
    let idp = idp().await;
    let store = tempfile::tempdir().unwrap();
    let config = fast_config(
        &idp.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    let runtime = MasterController::start(config).unwrap();
    start(&runtime).await;
    mc_testkit::identified::log_in(&runtime).await;
    // The store as it was: its refresh token proves below whether the IDP revoked it.
    let before_delete = snapshot(store.path());
    idp.faults().set_http_fault(
        FaultTarget::Revocation,
        HttpFault::Status {
            status: 500,
            retry_after_secs: None,
        },
        None,
    );
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert!(deleted.idp_deletion_pending, "{deleted:#?}");
    assert_eq!(deleted.sdk_state, SdkState::ActivationRequired);
    queue_reaches(&runtime, 1).await;

    idp.faults().clear_http_fault();
    let revocations = idp.stats().revocation;
    post(&runtime, RestartEvent::new()).await;
    queue_reaches(&runtime, 0).await;
    assert_eq!(idp.stats().revocation, revocations + 1);
    runtime.shutdown();
    drop(runtime);

    // The old refresh token no longer logs anyone in.
    let runtime = MasterController::start(fast_config(
        &idp.base_url(),
        StoreLocation::Directory(before_delete.path().into()),
    ))
    .unwrap();
    start(&runtime).await;
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    // Refused by the IDP (invalid_grant), not by the copy: the copy still holds the user.
    assert_eq!(login.info.status, StatusType::LoginRequired, "{login:#?}");
    assert!(
        login.info.error_description.contains("invalid_grant"),
        "{login:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_blocked_while_the_idp_is_down_is_deleted_there_later() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let idp = idp_at("127.0.0.1:0".parse().unwrap(), state.path()).await;
    let (addr, url) = (idp.local_addr(), idp.base_url());
    let config = || {
        let mut config = fast_config(&url, StoreLocation::Directory(store.path().into()));
        // No temporary locks: the test reaches the block without waiting for the clock.
        config.store_settings.lockout.lock_delays_secs = Vec::new();
        config
    };
    let runtime = MasterController::start(config()).unwrap();
    start(&runtime).await;
    let enrolled = post(
        &runtime,
        EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT)
            .with_password("the-right-password"),
    )
    .await;
    assert_status(&enrolled, StatusType::Ok);
    let user = post(&runtime, GetInformationEvent::new())
        .await
        .logged_in_user
        .unwrap();
    post(&runtime, RestartEvent::new()).await;
    idp.shutdown().await;
    let wrong = || OfflineLoginEvent::new().with_password("wrong");
    for _ in 1..10 {
        assert_status(&post(&runtime, wrong()).await, StatusType::InvalidPassword);
    }
    assert_status(&post(&runtime, wrong()).await, StatusType::PasswordBlocked);
    // Gone locally at once; its registration queued.
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    queue_reaches(&runtime, 1).await;
    drop(runtime);

    let idp = idp_at(addr, state.path()).await;
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_some());
    let runtime = MasterController::start(config()).unwrap();
    start(&runtime).await;
    queue_reaches(&runtime, 0).await;
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_running_at_once_send_a_record_once() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, url, user, idp) = deleted_while_down(state.path(), store.path()).await;
    // The first delete is slow to answer: the drains of the restarts below start meanwhile.
    idp.faults().set_http_fault(
        FaultTarget::RegistrationManagement,
        HttpFault::Delay { millis: 600 },
        Some(1),
    );
    let runtime = runtime_in(&url, store.path());
    start(&runtime).await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        post(&runtime, RestartEvent::new()).await;
    }
    queue_reaches(&runtime, 0).await;
    assert!(idp.client_of_subject(TENANT, &user.user_id).is_none());
    // Past the slow answer: a second DELETE sent meanwhile would have reached the IDP by now.
    tokio::time::sleep(Duration::from_millis(900)).await;
    // The IDP counts every DELETE that reached it, also one answered 401.
    assert_eq!(idp.stats().registration_delete, 1, "one IDP call");
}
