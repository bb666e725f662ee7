//! The queue of IDP deletions: one commit with the user's removal, sealed, refused when moved
//! or tampered, bounded.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::backend::MemoryBackend;
use crate::keys::StaticKeyProvider;

const NOW: i64 = 1_800_000_000;
const TOKEN: &str = "rat-secret-of-alice";

fn user(client: &str) -> EnrolledUser {
    EnrolledUser {
        id: UserId::new("tenant", client),
        registration_client_id: None,
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: "http://127.0.0.1:8080/realms/tenant".into(),
        registration_client_uri: Some(format!("http://127.0.0.1:8080/register/{client}")),
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: None,
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(format!("pkcs8-of-{client}").into_bytes()),
            registration_access_token: Some(SecretString::new(TOKEN)),
        },
    }
}

fn registration(client: &str) -> IdpDeletion {
    IdpDeletion::Registration {
        registration_client_uri: format!("http://127.0.0.1:8080/register/{client}"),
        registration_access_token: SecretString::new(TOKEN),
    }
}

/// The memory backend, whose commits can be made to fail from the `fail_from`-th on.
#[derive(Default)]
struct Backend {
    inner: MemoryBackend,
    commits: AtomicUsize,
    fail_from: AtomicUsize,
}

impl KvBackend for Backend {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.keys(table)
    }
    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        let fail_from = self.fail_from.load(Ordering::SeqCst);
        if fail_from != 0 && n >= fail_from {
            return Err(StoreError::Backend("disk full (test)".into()));
        }
        self.inner.commit(batch)
    }
}

struct Fixture {
    backend: Arc<Backend>,
    store: UserStore,
    damage: Arc<AtomicUsize>,
}

fn fixture_with(keys: Arc<StaticKeyProvider>) -> Fixture {
    let backend = Arc::new(Backend::default());
    let store = UserStore::open(backend.clone(), keys).unwrap();
    let damage = Arc::new(AtomicUsize::new(0));
    let seen = damage.clone();
    store.set_damage_observer(Arc::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    Fixture {
        backend,
        store,
        damage,
    }
}

fn fixture() -> Fixture {
    fixture_with(Arc::new(StaticKeyProvider::random().unwrap()))
}

fn queued(f: &Fixture, client: &str) -> IdpDeletionId {
    f.store.put_user(&user(client), &Protection::No).unwrap();
    f.store
        .delete_user_queueing(
            &UserId::new("tenant", client),
            Some(registration(client)),
            NOW,
        )
        .unwrap()
        .expect("queued")
}

fn raw(f: &Fixture, id: &IdpDeletionId) -> Vec<u8> {
    f.backend
        .get(IDP_DELETIONS_TABLE, id.as_str().as_bytes())
        .unwrap()
        .expect("the record")
}

fn put_raw(f: &Fixture, key: &str, value: Vec<u8>) {
    f.backend
        .inner
        .commit(vec![Write::put(
            IDP_DELETIONS_TABLE,
            key.as_bytes().to_vec(),
            value,
        )])
        .unwrap();
}

#[test]
fn the_user_goes_and_the_record_comes_in_one_commit() {
    let f = fixture();
    let alice = user("alice");
    f.store.put_user(&alice, &Protection::No).unwrap();
    let before = f.backend.commits.load(Ordering::SeqCst);
    let id = f
        .store
        .delete_user_queueing(&alice.id, Some(registration("alice")), NOW)
        .unwrap()
        .expect("queued");
    assert_eq!(f.backend.commits.load(Ordering::SeqCst), before + 1);
    assert!(f.store.list_users().unwrap().is_empty());
    assert_eq!(f.store.last_user().unwrap(), None);
    for table in [SECRETS_TABLE, TOKENS_TABLE, MANAGEMENT_TABLE, USERS_TABLE] {
        assert!(f.backend.get(table, &alice.id.to_key()).unwrap().is_none());
    }
    let pending = f.store.pending_idp_deletions().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].user, alice.id);
    assert_eq!(pending[0].deletion, registration("alice"));
    assert_eq!((pending[0].attempts, pending[0].next_attempt_at), (0, NOW));
    // Sealed on disk; hidden in Debug.
    let stored = String::from_utf8_lossy(&raw(&f, &id)).to_string();
    assert!(!stored.contains(TOKEN), "{stored}");
    assert!(!stored.contains("/register/alice"), "{stored}");
    assert!(!format!("{pending:?}").contains(TOKEN));
}

#[test]
fn a_failed_commit_keeps_the_user_and_queues_nothing() {
    let f = fixture();
    let alice = user("alice");
    f.store.put_user(&alice, &Protection::No).unwrap();
    f.backend.fail_from.store(
        f.backend.commits.load(Ordering::SeqCst) + 1,
        Ordering::SeqCst,
    );
    assert!(f
        .store
        .delete_user_queueing(&alice.id, Some(registration("alice")), NOW)
        .is_err());
    f.backend.fail_from.store(0, Ordering::SeqCst);
    assert!(f.store.get_user(&alice.id).unwrap().is_some());
    assert_eq!(f.store.idp_deletion_count().unwrap(), 0);
}

#[test]
fn an_unknown_user_is_not_found_and_nothing_is_queued() {
    let f = fixture();
    let result = f.store.delete_user_queueing(
        &UserId::new("tenant", "nobody"),
        Some(registration("nobody")),
        NOW,
    );
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );
    assert_eq!(f.store.idp_deletion_count().unwrap(), 0);
}

#[test]
fn a_revocation_round_trips_sealed() {
    let f = fixture();
    let alice = user("alice");
    f.store.put_user(&alice, &Protection::No).unwrap();
    let revocation = IdpDeletion::Revocation {
        issuer: "http://127.0.0.1:8080/realms/tenant".into(),
        client_id: "demo-app".into(),
        refresh_token: SecretString::new("refresh-secret"),
    };
    let id = f
        .store
        .delete_user_queueing(&alice.id, Some(revocation.clone()), NOW)
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw(&f, &id)).contains("refresh-secret"));
    assert!(!format!("{revocation:?}").contains("refresh-secret"));
    assert_eq!(
        f.store.pending_idp_deletions().unwrap()[0].deletion,
        revocation
    );
}

#[test]
fn every_flipped_byte_of_the_sealed_part_is_refused_reported_and_dropped() {
    let f = fixture();
    let id = queued(&f, "alice");
    let original = raw(&f, &id);
    let mut record: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let ciphertext = record["sealed"]["ciphertext"].as_str().unwrap().to_string();
    for position in (0..ciphertext.len()).step_by(7) {
        let mut flipped = ciphertext.clone().into_bytes();
        flipped[position] = if flipped[position] == b'0' {
            b'1'
        } else {
            b'0'
        };
        record["sealed"]["ciphertext"] = String::from_utf8(flipped).unwrap().into();
        put_raw(&f, id.as_str(), serde_json::to_vec(&record).unwrap());
        let before = f.damage.load(Ordering::SeqCst);
        assert!(f.store.pending_idp_deletions().unwrap().is_empty());
        assert_eq!(f.damage.load(Ordering::SeqCst), before + 1, "reported");
        assert_eq!(f.store.idp_deletion_count().unwrap(), 0, "dropped");
    }
    // Garbage that is not even a record: refused the same way, no panic.
    put_raw(&f, id.as_str(), b"{not json".to_vec());
    assert!(f.store.pending_idp_deletions().unwrap().is_empty());
    assert_eq!(f.store.idp_deletion_count().unwrap(), 0);
}

#[test]
fn a_record_copied_under_another_key_or_user_is_refused_the_original_kept() {
    let f = fixture();
    let id = queued(&f, "alice");
    let original = raw(&f, &id);
    // The same record twice: the copy does not open under its new key.
    put_raw(&f, "00112233445566778899aabbccddeeff", original.clone());
    let pending = f.store.pending_idp_deletions().unwrap();
    assert_eq!(pending.len(), 1, "one deletion, not two");
    assert_eq!(pending[0].id, id);
    assert_eq!(f.damage.load(Ordering::SeqCst), 1);

    // Pointed at another user (the clear part changed): refused.
    let mut record: serde_json::Value = serde_json::from_slice(&original).unwrap();
    record["userId"] = "mallory".into();
    put_raw(&f, id.as_str(), serde_json::to_vec(&record).unwrap());
    assert!(f.store.pending_idp_deletions().unwrap().is_empty());
    assert_eq!(f.damage.load(Ordering::SeqCst), 2);
}

#[test]
fn a_record_sealed_by_another_store_is_refused() {
    let other = fixture();
    let id = queued(&other, "alice");
    let foreign = raw(&other, &id);

    let f = fixture();
    put_raw(&f, id.as_str(), foreign);
    assert!(f.store.pending_idp_deletions().unwrap().is_empty());
    assert_eq!(f.damage.load(Ordering::SeqCst), 1);
    assert_eq!(f.store.idp_deletion_count().unwrap(), 0);
}

#[test]
fn retries_back_off_and_stop_at_the_attempt_bound() {
    let f = fixture();
    let id = queued(&f, "alice");
    assert_eq!(
        f.store.postpone_idp_deletion(&id, NOW, true).unwrap(),
        Postponed::Until(NOW + 30)
    );
    assert_eq!(
        f.store.postpone_idp_deletion(&id, NOW, true).unwrap(),
        Postponed::Until(NOW + 60)
    );
    let pending = &f.store.pending_idp_deletions().unwrap()[0];
    assert_eq!((pending.attempts, pending.next_attempt_at), (2, NOW + 60));
    for _ in 3..MAX_IDP_DELETION_ATTEMPTS {
        let Postponed::Until(next) = f.store.postpone_idp_deletion(&id, NOW, true).unwrap() else {
            panic!("kept below the bound");
        };
        assert!(next <= NOW + MAX_RETRY_DELAY_SECS);
    }
    assert_eq!(
        f.store.postpone_idp_deletion(&id, NOW, true).unwrap(),
        Postponed::Dropped
    );
    assert_eq!(f.store.idp_deletion_count().unwrap(), 0);
    assert_eq!(
        f.store.postpone_idp_deletion(&id, NOW, true).unwrap(),
        Postponed::Gone
    );
}

#[test]
fn an_unreachable_idp_counts_no_attempt_and_keeps_the_record_due() {
    let f = fixture();
    let id = queued(&f, "alice");
    for _ in 0..2 * MAX_IDP_DELETION_ATTEMPTS {
        assert_eq!(
            f.store.postpone_idp_deletion(&id, NOW + 5, false).unwrap(),
            Postponed::Until(NOW)
        );
    }
    let pending = &f.store.pending_idp_deletions().unwrap()[0];
    assert_eq!((pending.attempts, pending.next_attempt_at), (0, NOW));
}

#[test]
fn a_record_too_old_is_dropped_at_its_next_failure() {
    let f = fixture();
    let id = queued(&f, "alice");
    assert_eq!(
        f.store
            .postpone_idp_deletion(&id, NOW + MAX_IDP_DELETION_AGE_SECS, false)
            .unwrap(),
        Postponed::Dropped
    );
    assert!(f.store.pending_idp_deletions().unwrap().is_empty());
}

#[test]
fn finishing_removes_the_record_once() {
    let f = fixture();
    let id = queued(&f, "alice");
    assert!(f.store.finish_idp_deletion(&id).unwrap());
    assert!(!f.store.finish_idp_deletion(&id).unwrap());
    assert_eq!(f.store.idp_deletion_count().unwrap(), 0);
}

#[test]
fn the_queue_is_bounded_by_dropping_the_oldest() {
    let f = fixture();
    let mut ids = Vec::new();
    for n in 0..=MAX_PENDING_IDP_DELETIONS {
        let client = format!("user-{n}");
        f.store.put_user(&user(&client), &Protection::No).unwrap();
        ids.push(
            f.store
                .delete_user_queueing(
                    &UserId::new("tenant", &client),
                    Some(registration(&client)),
                    NOW + i64::try_from(n).unwrap(),
                )
                .unwrap()
                .unwrap(),
        );
    }
    let pending = f.store.pending_idp_deletions().unwrap();
    assert_eq!(pending.len(), MAX_PENDING_IDP_DELETIONS);
    assert!(pending.iter().all(|p| p.id != ids[0]), "the oldest went");
    assert_eq!(pending.last().unwrap().id, *ids.last().unwrap());
}
