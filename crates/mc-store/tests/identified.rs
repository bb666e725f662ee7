//! Identified users: the refresh token sealed under the user's data key (so each mode
//! protects it as it protects the device key), rotation in one commit, and
//! ClearIamTokenCache's `clear_credential`. Hostile: a token row moved to another user, a
//! sealing key of another user, an unlock after the credential was cleared.

use std::sync::Arc;

use mc_store::{
    EnrolledUser, KdfSettings, KvBackend, MemoryBackend, Protection, SecretBytes, SecretString,
    StaticKeyProvider, StoreError, StoreSettings, StoredAuthMode, Unlock, UnlockError, UserId,
    UserSecrets, UserStore, Write,
};

const TOKEN_MARKER: &str = "refresh-token-MARKER-91c2";

fn identified(sub: &str) -> EnrolledUser {
    EnrolledUser {
        id: UserId::new("demo", sub),
        enrollment_client_id: "mc-native".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: "http://127.0.0.1:8080/realms/demo".into(),
        registration_client_uri: None,
        registration_client_id: None,
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: Some(sub.into()),
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(b"device-key".to_vec()),
            registration_access_token: None,
        },
    }
}

fn store() -> (Arc<MemoryBackend>, UserStore) {
    let backend = Arc::new(MemoryBackend::default());
    let store = UserStore::open_with(
        backend.clone(),
        Arc::new(StaticKeyProvider::random().unwrap()),
        None,
        StoreSettings {
            kdf: KdfSettings::for_tests(1_000),
            ..StoreSettings::default()
        },
    )
    .unwrap();
    (backend, store)
}

fn token(n: u32) -> SecretString {
    SecretString::new(format!("{TOKEN_MARKER}-{n}"))
}

#[test]
fn the_refresh_token_is_sealed_and_comes_back_only_with_the_unlock() {
    let (backend, store) = store();
    let alice = identified("alice");
    store
        .put_identified_user(
            &alice,
            &Protection::Password(SecretString::new("pw")),
            Some(&token(1)),
        )
        .unwrap();
    // never in clear in the backend
    for table in [
        "users",
        "user_secrets",
        "user_management",
        "user_tokens",
        "meta",
    ] {
        for key in backend.keys(table).unwrap() {
            let value = backend.get(table, &key).unwrap().unwrap();
            assert!(
                !String::from_utf8_lossy(&value).contains(TOKEN_MARKER),
                "{table} holds the token in clear"
            );
        }
    }
    let wrong =
        store.unlock_user_with_key(&alice.id, Unlock::Password(&SecretString::new("no")), 0);
    assert!(
        matches!(wrong, Err(UnlockError::WrongPassword { .. })),
        "{wrong:?}"
    );
    let unlocked = store
        .unlock_user_with_key(&alice.id, Unlock::Password(&SecretString::new("pw")), 0)
        .unwrap();
    assert_eq!(unlocked.refresh_token, Some(token(1)));
    assert!(!format!("{unlocked:?}").contains(TOKEN_MARKER));
    // an anonymous device has none
    let mut device = identified("device");
    device.registration_client_uri = Some("http://127.0.0.1:8080/reg/device".into());
    store.put_user(&device, &Protection::No).unwrap();
    let unlocked = store
        .unlock_user_with_key(&device.id, Unlock::No, 0)
        .unwrap();
    assert_eq!(unlocked.refresh_token, None);
}

#[test]
fn rotation_replaces_the_token_and_a_foreign_sealing_key_is_refused() {
    let (_, store) = store();
    let (alice, bob) = (identified("alice"), identified("bob"));
    store
        .put_identified_user(&alice, &Protection::No, Some(&token(1)))
        .unwrap();
    store
        .put_identified_user(&bob, &Protection::No, Some(&token(7)))
        .unwrap();
    let unlocked = store
        .unlock_user_with_key(&alice.id, Unlock::No, 0)
        .unwrap();
    store
        .replace_refresh_token(&unlocked.sealing_key, &token(2))
        .unwrap();
    let again = store
        .unlock_user_with_key(&alice.id, Unlock::No, 0)
        .unwrap();
    assert_eq!(again.refresh_token, Some(token(2)));
    // bob re-enrolled since: alice's old key cannot write bob's token, and a key from
    // before a replacement cannot write the new record either
    let bobs = store.unlock_user_with_key(&bob.id, Unlock::No, 0).unwrap();
    store
        .put_identified_user(&bob, &Protection::No, Some(&token(8)))
        .unwrap();
    let stale = store.replace_refresh_token(&bobs.sealing_key, &token(9));
    assert!(
        matches!(stale, Err(StoreError::DecryptionFailed { .. })),
        "{stale:?}"
    );
    let current = store.unlock_user_with_key(&bob.id, Unlock::No, 0).unwrap();
    assert_eq!(current.refresh_token, Some(token(8)));
}

#[test]
fn a_token_row_moved_to_another_user_does_not_open() {
    let (backend, store) = store();
    let (alice, bob) = (identified("alice"), identified("bob"));
    store
        .put_identified_user(&alice, &Protection::No, Some(&token(1)))
        .unwrap();
    store
        .put_identified_user(&bob, &Protection::No, Some(&token(2)))
        .unwrap();
    let keys = backend.keys("user_tokens").unwrap();
    let (a, b) = (keys[0].clone(), keys[1].clone());
    let alices = backend.get("user_tokens", &a).unwrap().unwrap();
    backend
        .commit(vec![Write::put("user_tokens", b.clone(), alices)])
        .unwrap();
    let result = store.unlock_user_with_key(&bob.id, Unlock::No, 0);
    assert!(
        matches!(
            result,
            Err(UnlockError::Store(StoreError::DecryptionFailed { .. }))
        ),
        "{result:?}"
    );
}

#[test]
fn a_cleared_credential_stays_listed_but_cannot_be_unlocked() {
    let (backend, store) = store();
    let alice = identified("alice");
    store
        .put_identified_user(&alice, &Protection::No, Some(&token(1)))
        .unwrap();
    assert!(store.clear_credential(&alice.id).unwrap());
    assert_eq!(store.list_users().unwrap().len(), 1);
    let result = store.unlock_user_with_key(&alice.id, Unlock::No, 0);
    assert!(
        matches!(result, Err(UnlockError::CredentialCleared)),
        "{result:?}"
    );
    assert!(backend.keys("user_tokens").unwrap().is_empty());
    assert!(backend.keys("user_secrets").unwrap().is_empty());
    // a mode switch cannot revive it; a new login (put) replaces it; delete removes all
    let switch = store.change_protection(
        &alice.id,
        Unlock::No,
        &Protection::Password(SecretString::new("pw")),
        0,
    );
    assert!(
        matches!(switch, Err(UnlockError::CredentialCleared)),
        "{switch:?}"
    );
    store
        .put_identified_user(&alice, &Protection::No, Some(&token(2)))
        .unwrap();
    let unlocked = store
        .unlock_user_with_key(&alice.id, Unlock::No, 0)
        .unwrap();
    assert_eq!(unlocked.refresh_token, Some(token(2)));
    assert!(store.delete_user(&alice.id).unwrap());
    assert!(backend.keys("user_tokens").unwrap().is_empty());
    assert!(!store.clear_credential(&alice.id).unwrap());
}

#[test]
fn identified_users_are_listed_as_such() {
    let (_, store) = store();
    let alice = identified("alice");
    store
        .put_identified_user(&alice, &Protection::No, None)
        .unwrap();
    let mut device = identified("device");
    device.registration_client_uri = Some("http://127.0.0.1:8080/reg/device".into());
    store.put_user(&device, &Protection::No).unwrap();
    let listed: Vec<(String, bool)> = store
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| (u.id.user_id, u.identified))
        .collect();
    assert_eq!(
        listed,
        vec![("alice".to_string(), true), ("device".to_string(), false)]
    );
}

/// A memory backend whose commits fail from some point on (a kill or a full disk at the
/// commit: redb commits are atomic, so "not committed" is what a kill before it leaves).
#[derive(Default)]
struct FailingBackend {
    inner: MemoryBackend,
    fail: std::sync::atomic::AtomicBool,
}

impl KvBackend for FailingBackend {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.keys(table)
    }
    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend(
                "killed before the commit (test)".into(),
            ));
        }
        self.inner.commit(batch)
    }
}

#[test]
fn a_rotation_that_does_not_commit_leaves_the_old_token_and_a_clear_that_does_not_leaves_the_user()
{
    let backend = Arc::new(FailingBackend::default());
    let store = UserStore::open_with(
        backend.clone(),
        Arc::new(StaticKeyProvider::random().unwrap()),
        None,
        StoreSettings::default(),
    )
    .unwrap();
    let alice = identified("alice");
    store
        .put_identified_user(&alice, &Protection::No, Some(&token(1)))
        .unwrap();
    let unlocked = store
        .unlock_user_with_key(&alice.id, Unlock::No, 0)
        .unwrap();
    backend
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(store
        .replace_refresh_token(&unlocked.sealing_key, &token(2))
        .is_err());
    assert!(store.clear_credential(&alice.id).is_err());
    backend
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let after = store
        .unlock_user_with_key(&alice.id, Unlock::No, 0)
        .unwrap();
    assert_eq!(after.refresh_token, Some(token(1)), "the old token, whole");
}
