//! Mode PIN through the public API: it unlocks through the PASSWORD KDF and seal and counts,
//! locks and blocks as PASSWORD does; its wrap also needs the platform key (a copy of the
//! store without it cannot be tried against the PINs); a tampered PIN record is refused,
//! never used; switching to and from PIN keeps the same device key.

use std::sync::Arc;

use mc_store::{
    EnrolledUser, KdfSettings, KvBackend, LockoutPolicy, MemoryBackend, Protection, SecretBytes,
    SecretString, StaticKeyProvider, StoreError, StoreSettings, StoredAuthMode, Unlock,
    UnlockError, UserId, UserSecrets, UserStore, Write,
};

const PIN: &str = "246810";
const DEVICE_KEY_MARKER: &[u8] = b"PIN-DEVICE-KEY-MARKER-71ab";

fn user(name: &str) -> EnrolledUser {
    EnrolledUser {
        registration_client_id: None,
        id: UserId::new("demo", name),
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: "http://127.0.0.1:8080/realms/demo".into(),
        registration_client_uri: Some(format!("http://127.0.0.1:8080/register/{name}")),
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: None,
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(DEVICE_KEY_MARKER.to_vec()),
            registration_access_token: Some(SecretString::new("reg-token")),
        },
    }
}

fn pin(text: &str) -> SecretString {
    SecretString::new(text)
}

fn settings() -> StoreSettings {
    StoreSettings {
        kdf: KdfSettings::for_tests(1_000),
        ..StoreSettings::default()
    }
}

fn store_over(backend: &Arc<MemoryBackend>, keys: &Arc<StaticKeyProvider>) -> UserStore {
    UserStore::open_with(backend.clone(), keys.clone(), None, settings()).unwrap()
}

fn new_store() -> (Arc<MemoryBackend>, Arc<StaticKeyProvider>, UserStore) {
    let backend = Arc::new(MemoryBackend::default());
    let keys = Arc::new(StaticKeyProvider::random().unwrap());
    let store = store_over(&backend, &keys);
    (backend, keys, store)
}

fn mode(store: &UserStore, id: &UserId) -> StoredAuthMode {
    let users = store.list_users().unwrap();
    users
        .iter()
        .find(|u| u.id == *id)
        .unwrap()
        .authentication_mode
}

#[test]
fn a_pin_unlocks_and_wrong_pins_count_lock_and_block_as_passwords_do() {
    let (_, _, store) = new_store();
    let a = user("a");
    store.put_user(&a, &Protection::Pin(pin(PIN))).unwrap();
    assert_eq!(mode(&store, &a.id), StoredAuthMode::Pin);
    assert!(matches!(
        store.get_user(&a.id),
        Err(StoreError::NeedsUnlock {
            mode: StoredAuthMode::Pin,
            ..
        })
    ));
    // A password is not the PIN's unlock, even with the same text.
    assert!(matches!(
        store.unlock_user(&a.id, Unlock::Password(&pin(PIN)), 1),
        Err(UnlockError::WrongUnlockMethod {
            mode: StoredAuthMode::Pin
        })
    ));
    let read = store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), 1).unwrap();
    assert_eq!(read.secrets, a.secrets);

    let policy = LockoutPolicy::default();
    let mut now = 10;
    let mut blocked = false;
    for attempt in 1..=policy.attempts_before_block {
        // Wait out any lock, so every try is counted.
        if let Some(until) = store.lockout_state(&a.id).unwrap().locked_until {
            now = now.max(until);
        }
        match store.unlock_user(&a.id, Unlock::Pin(&pin("000000")), now) {
            Err(UnlockError::WrongPassword {
                failed_attempts, ..
            }) => assert_eq!(failed_attempts, attempt),
            Err(UnlockError::Blocked) => {
                assert_eq!(attempt, policy.attempts_before_block);
                blocked = true;
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
        if attempt == policy.attempts_before_temporary_lock {
            assert!(store.lockout_state(&a.id).unwrap().locked_until.is_some());
            // While locked, even the right PIN is not tried.
            assert!(matches!(
                store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), now),
                Err(UnlockError::TemporarilyLocked { .. })
            ));
        }
    }
    assert!(blocked, "the last allowed wrong PIN blocks");
    assert!(store.lockout_state(&a.id).unwrap().blocked);
    assert!(matches!(
        store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), now + 1_000_000),
        Err(UnlockError::Blocked)
    ));
    // The registration can still be deleted at the IDP.
    assert!(store
        .management_secrets(&a.id)
        .unwrap()
        .registration_access_token
        .is_some());
}

#[test]
fn the_pin_wrap_cannot_be_tried_without_the_platform_key() {
    let (backend, _, store) = new_store();
    let a = user("a");
    store.put_user(&a, &Protection::Pin(pin(PIN))).unwrap();
    drop(store);
    // The same file with another platform key: even the right PIN opens nothing, and the
    // failure is damage, not a wrong PIN (nothing counted).
    let other_keys = Arc::new(StaticKeyProvider::random().unwrap());
    let copy = store_over(&backend, &other_keys);
    // A wrong PIN tells nothing either: the PBKDF2 layer is never reached (were it, this
    // would be a counted WrongPassword, an oracle for offline guessing).
    for guess in ["000000", PIN] {
        let result = copy.unlock_user(&a.id, Unlock::Pin(&pin(guess)), 1);
        assert!(
            matches!(
                result,
                Err(UnlockError::Store(StoreError::DecryptionFailed { .. }))
            ),
            "{guess}: {result:?}"
        );
    }
    assert_eq!(copy.lockout_state(&a.id).unwrap().failed_attempts, 0);
}

/// Rewrites the JSON of `id`'s secrets record with `change`.
fn rewrite_secrets(backend: &MemoryBackend, change: impl FnOnce(&mut serde_json::Value)) {
    let keys = backend.keys("user_secrets").unwrap();
    let [key] = keys.as_slice() else {
        panic!("one user expected")
    };
    let raw = backend.get("user_secrets", key).unwrap().unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    change(&mut json);
    backend
        .commit(vec![Write::put(
            "user_secrets",
            key.clone(),
            serde_json::to_vec(&json).unwrap(),
        )])
        .unwrap();
}

#[test]
fn a_tampered_pin_record_is_refused_never_used() {
    // A flipped byte of the outer seal.
    let (backend, keys, store) = new_store();
    let a = user("a");
    store.put_user(&a, &Protection::Pin(pin(PIN))).unwrap();
    let pristine = backend.get("user_secrets", &backend.keys("user_secrets").unwrap()[0]);
    rewrite_secrets(&backend, |json| {
        let text = json["data_key"]["sealed"]["ciphertext"]
            .as_str()
            .unwrap()
            .to_string();
        let flipped = if text.starts_with('0') { "1" } else { "0" };
        json["data_key"]["sealed"]["ciphertext"] = format!("{flipped}{}", &text[1..]).into();
    });
    let result = store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), 1);
    assert!(
        matches!(
            result,
            Err(UnlockError::Store(StoreError::DecryptionFailed { .. }))
        ),
        "{result:?}"
    );

    // The PIN wrap relabelled as a PASSWORD wrap (the record still says PIN): refused.
    let (backend, _, store) = (backend, keys, store);
    backend
        .commit(vec![Write::put(
            "user_secrets",
            backend.keys("user_secrets").unwrap()[0].clone(),
            pristine.unwrap().unwrap(),
        )])
        .unwrap();
    assert!(store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), 2).is_ok());
    rewrite_secrets(&backend, |json| {
        json["data_key"]["mode"] = "PASSWORD".into()
    });
    for unlock in [Unlock::Pin(&pin(PIN)), Unlock::Password(&pin(PIN))] {
        let result = store.unlock_user(&a.id, unlock, 3);
        assert!(
            matches!(result, Err(UnlockError::Store(StoreError::Corrupt { .. }))),
            "{result:?}"
        );
    }
}

#[test]
fn switching_to_and_from_pin_keeps_the_device_key_and_a_wrong_current_pin_counts() {
    let (_, _, store) = new_store();
    let a = user("a");
    store
        .put_user(&a, &Protection::Password(pin("a password")))
        .unwrap();
    store
        .change_protection(
            &a.id,
            Unlock::Password(&pin("a password")),
            &Protection::Pin(pin(PIN)),
            1,
        )
        .unwrap();
    assert_eq!(mode(&store, &a.id), StoredAuthMode::Pin);
    assert!(matches!(
        store.unlock_user(&a.id, Unlock::Password(&pin("a password")), 2),
        Err(UnlockError::WrongUnlockMethod { .. })
    ));
    // A wrong current PIN: counted, nothing changed.
    assert!(matches!(
        store.change_protection(&a.id, Unlock::Pin(&pin("999999")), &Protection::No, 3),
        Err(UnlockError::WrongPassword {
            failed_attempts: 1,
            ..
        })
    ));
    assert_eq!(mode(&store, &a.id), StoredAuthMode::Pin);
    // PIN -> PIN changes the PIN.
    store
        .change_protection(
            &a.id,
            Unlock::Pin(&pin(PIN)),
            &Protection::Pin(pin("13579135")),
            4,
        )
        .unwrap();
    assert_eq!(store.lockout_state(&a.id).unwrap().failed_attempts, 0);
    assert!(store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), 5).is_err());
    store
        .change_protection(&a.id, Unlock::Pin(&pin("13579135")), &Protection::No, 6)
        .unwrap();
    assert_eq!(store.get_user(&a.id).unwrap().unwrap().secrets, a.secrets);
    store
        .change_protection(&a.id, Unlock::No, &Protection::Pin(pin(PIN)), 7)
        .unwrap();
    let read = store.unlock_user(&a.id, Unlock::Pin(&pin(PIN)), 8).unwrap();
    assert_eq!(read.secrets, a.secrets);
    // An empty PIN is refused by the store itself.
    assert!(matches!(
        store.put_user(&user("b"), &Protection::Pin(pin(""))),
        Err(StoreError::InvalidInput { .. })
    ));
}

#[test]
fn the_stored_records_hold_neither_the_pin_nor_the_device_key() {
    let (backend, _, store) = new_store();
    let a = user("a");
    store.put_user(&a, &Protection::Pin(pin(PIN))).unwrap();
    let _ = store.unlock_user(&a.id, Unlock::Pin(&pin("135791")), 1);
    for table in [
        "users",
        "user_secrets",
        "user_management",
        "user_lockout",
        "meta",
    ] {
        for key in backend.keys(table).unwrap() {
            let raw = backend.get(table, &key).unwrap().unwrap();
            let text = String::from_utf8_lossy(&raw);
            assert!(!text.contains(PIN) && !text.contains("135791"), "{table}");
            assert!(
                !raw.windows(DEVICE_KEY_MARKER.len())
                    .any(|w| w == DEVICE_KEY_MARKER),
                "{table}"
            );
        }
    }
}
