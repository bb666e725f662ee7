//! UserStore behaviour that needs the record layout: tampering, swapping, schema checks,
//! stored KDF parameters.

use super::*;
use crate::backend::MemoryBackend;
use crate::keys::StaticKeyProvider;

fn user(tenant: &str, client: &str) -> EnrolledUser {
    EnrolledUser {
        id: UserId::new(tenant, client),
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: format!("http://127.0.0.1:8080/realms/{tenant}"),
        registration_client_uri: Some(format!("http://127.0.0.1:8080/register/{client}")),
        registration_client_id: None,
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: Some(format!("sub-{client}")),
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(format!("pkcs8-of-{client}").into_bytes()),
            registration_access_token: Some(SecretString::new(format!("rat-of-{client}"))),
        },
    }
}

struct Fixture {
    backend: Arc<MemoryBackend>,
    keys: Arc<StaticKeyProvider>,
    store: UserStore,
}

fn fixture() -> Fixture {
    let backend = Arc::new(MemoryBackend::new());
    let keys = Arc::new(StaticKeyProvider::random().unwrap());
    let store = UserStore::open(backend.clone(), keys.clone()).unwrap();
    Fixture {
        backend,
        keys,
        store,
    }
}

fn replace(backend: &MemoryBackend, table: &str, id: &UserId, value: Vec<u8>) {
    backend
        .commit(vec![Write::put(table, id.to_key(), value)])
        .unwrap();
}

fn is_failure_of(result: &Result<Option<EnrolledUser>, StoreError>, id: &UserId) -> bool {
    match result {
        Err(StoreError::DecryptionFailed { user }) => user == id,
        Err(StoreError::Corrupt { user: Some(user) }) => user == id,
        _ => false,
    }
}

#[test]
fn every_flipped_byte_of_a_secrets_record_fails_for_that_user_only() {
    let f = fixture();
    let (a, b) = (user("demo", "a"), user("demo", "b"));
    f.store.put_user(&a, &Protection::No).unwrap();
    f.store.put_user(&b, &Protection::No).unwrap();
    let original = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    for index in 0..original.len() {
        let mut tampered = original.clone();
        tampered[index] ^= 0x01;
        replace(&f.backend, SECRETS_TABLE, &a.id, tampered);
        let result = f.store.get_user(&a.id);
        assert!(is_failure_of(&result, &a.id), "byte {index}: {result:?}");
        assert_eq!(f.store.get_user(&b.id).unwrap().unwrap(), b);
    }
    for len in 0..original.len() {
        replace(&f.backend, SECRETS_TABLE, &a.id, original[..len].to_vec());
        let result = f.store.get_user(&a.id);
        assert!(is_failure_of(&result, &a.id), "length {len}: {result:?}");
    }
    assert_eq!(f.store.list_users().unwrap().len(), 2);
    replace(&f.backend, SECRETS_TABLE, &a.id, original);
    assert_eq!(f.store.get_user(&a.id).unwrap().unwrap(), a);
}

#[test]
fn a_flipped_metadata_byte_never_yields_wrong_secrets_and_spares_others() {
    let f = fixture();
    let (a, b) = (user("demo", "a"), user("demo", "b"));
    f.store.put_user(&a, &Protection::No).unwrap();
    f.store.put_user(&b, &Protection::No).unwrap();
    let original = f.backend.get(USERS_TABLE, &a.id.to_key()).unwrap().unwrap();
    let mut failures = 0;
    for index in 0..original.len() {
        let mut tampered = original.clone();
        tampered[index] ^= 0x01;
        replace(&f.backend, USERS_TABLE, &a.id, tampered);
        match f.store.get_user(&a.id) {
            // Unbound display fields (subject, last login) may change; secrets never may.
            Ok(Some(read)) => assert_eq!(read.secrets, a.secrets, "byte {index}"),
            result => {
                assert!(is_failure_of(&result, &a.id), "byte {index}: {result:?}");
                failures += 1;
            }
        }
        assert_eq!(f.store.get_user(&b.id).unwrap().unwrap(), b);
        // listing never fails because of one user
        assert!(f.store.list_users().unwrap().iter().any(|s| s.id == b.id));
    }
    assert!(
        failures > original.len() / 2,
        "{failures} of {}",
        original.len()
    );
}

#[test]
fn metadata_pointed_at_another_server_fails_authentication() {
    let f = fixture();
    let a = user("demo", "a");
    f.store.put_user(&a, &Protection::No).unwrap();
    let raw = f.backend.get(USERS_TABLE, &a.id.to_key()).unwrap().unwrap();
    let text = String::from_utf8(raw).unwrap();
    let redirected = text.replace("127.0.0.1:8080", "evil.example:443");
    assert_ne!(text, redirected);
    replace(&f.backend, USERS_TABLE, &a.id, redirected.into_bytes());
    let result = f.store.get_user(&a.id);
    assert!(
        matches!(&result, Err(StoreError::DecryptionFailed { user }) if *user == a.id),
        "{result:?}"
    );
}

#[test]
fn records_copied_to_another_user_do_not_open() {
    let f = fixture();
    let (a, b) = (user("demo", "a"), user("demo", "b"));
    f.store.put_user(&a, &Protection::No).unwrap();
    f.store.put_user(&b, &Protection::No).unwrap();
    let secrets_a = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    replace(&f.backend, SECRETS_TABLE, &b.id, secrets_a);
    let result = f.store.get_user(&b.id);
    assert!(
        matches!(&result, Err(StoreError::DecryptionFailed { user }) if *user == b.id),
        "{result:?}"
    );

    let meta_a = f.backend.get(USERS_TABLE, &a.id.to_key()).unwrap().unwrap();
    replace(&f.backend, USERS_TABLE, &b.id, meta_a);
    let result = f.store.get_user(&b.id);
    assert!(
        matches!(&result, Err(StoreError::Corrupt { user: Some(user) }) if *user == b.id),
        "{result:?}"
    );
    assert_eq!(f.store.get_user(&a.id).unwrap().unwrap(), a);
}

#[test]
fn missing_secrets_record_is_corrupt_for_that_user() {
    let f = fixture();
    let a = user("demo", "a");
    f.store.put_user(&a, &Protection::No).unwrap();
    f.backend
        .commit(vec![Write::delete(SECRETS_TABLE, a.id.to_key())])
        .unwrap();
    let result = f.store.get_user(&a.id);
    assert!(is_failure_of(&result, &a.id), "{result:?}");
    // and it can still be deleted, so the user can enroll again
    assert!(f.store.delete_user(&a.id).unwrap());
    assert_eq!(f.store.get_user(&a.id).unwrap(), None);
}

#[test]
fn a_different_key_cannot_open_the_secrets_but_listing_needs_no_key() {
    let f = fixture();
    let a = user("demo", "a");
    f.store.put_user(&a, &Protection::No).unwrap();
    let other = UserStore::open(
        f.backend.clone(),
        Arc::new(StaticKeyProvider::random().unwrap()),
    )
    .unwrap();
    let result = other.get_user(&a.id);
    assert!(
        matches!(&result, Err(StoreError::DecryptionFailed { user }) if *user == a.id),
        "{result:?}"
    );

    struct Locked;
    impl KeyProvider for Locked {
        fn wrapping_key(&self) -> Result<SecretBytes, StoreError> {
            Err(StoreError::KeyUnavailable {
                reason: "keystore locked".into(),
            })
        }
    }
    let locked = UserStore::open(f.backend.clone(), Arc::new(Locked)).unwrap();
    let listed = locked.list_users().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, a.id);
    assert_eq!(listed[0].subject.as_deref(), Some("sub-a"));
    assert!(matches!(
        locked.get_user(&a.id),
        Err(StoreError::KeyUnavailable { .. })
    ));
    assert!(matches!(
        locked.put_user(&user("demo", "b"), &Protection::No),
        Err(StoreError::KeyUnavailable { .. })
    ));
    // the original key still works
    let same = UserStore::open(f.backend.clone(), f.keys.clone()).unwrap();
    assert_eq!(same.get_user(&a.id).unwrap().unwrap(), a);
}

#[test]
fn last_user_follows_put_login_choice_and_delete() {
    let f = fixture();
    let (a, b) = (user("demo", "a"), user("other", "b"));
    assert_eq!(f.store.last_user().unwrap(), None);
    f.store.put_user(&a, &Protection::No).unwrap();
    assert_eq!(f.store.last_user().unwrap(), Some(a.id.clone()));
    f.store.put_user(&b, &Protection::No).unwrap();
    assert_eq!(f.store.last_user().unwrap(), Some(b.id.clone()));
    f.store.record_login(&a.id, 1_700_000_500).unwrap();
    assert_eq!(f.store.last_user().unwrap(), Some(a.id.clone()));
    let read = f.store.get_user(&a.id).unwrap().unwrap();
    assert_eq!(read.last_login_at, Some(1_700_000_500));
    assert_eq!(read.secrets, a.secrets);
    f.store.set_last_user(&b.id).unwrap();
    assert_eq!(f.store.last_user().unwrap(), Some(b.id.clone()));
    // deleting another user keeps the last one
    assert!(f.store.delete_user(&a.id).unwrap());
    assert_eq!(f.store.last_user().unwrap(), Some(b.id.clone()));
    assert!(!f.store.delete_user(&a.id).unwrap());
    // deleting the last one clears it
    assert!(f.store.delete_user(&b.id).unwrap());
    assert_eq!(f.store.last_user().unwrap(), None);
    assert!(f.store.list_users().unwrap().is_empty());
    assert!(f.backend.keys(SECRETS_TABLE).unwrap().is_empty());

    let ghost = UserId::new("demo", "ghost");
    assert!(matches!(
        f.store.set_last_user(&ghost),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        f.store.record_login(&ghost, 1),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn put_replaces_and_reseals_under_a_new_data_key() {
    let f = fixture();
    let mut a = user("demo", "a");
    f.store.put_user(&a, &Protection::No).unwrap();
    let first = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    a.secrets.registration_access_token = None;
    a.secrets.device_key_pkcs8 = SecretBytes::new(b"new key".to_vec());
    a.subject = None;
    f.store.put_user(&a, &Protection::No).unwrap();
    let second = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(f.store.get_user(&a.id).unwrap().unwrap(), a);
    assert_eq!(f.store.list_users().unwrap().len(), 1);
}

#[test]
fn list_is_sorted_and_skips_an_undecodable_record() {
    let f = fixture();
    for (tenant, client) in [("zeta", "1"), ("alpha", "2"), ("alpha", "1"), ("mid", "x")] {
        f.store
            .put_user(&user(tenant, client), &Protection::No)
            .unwrap();
    }
    replace(
        &f.backend,
        USERS_TABLE,
        &UserId::new("mid", "x"),
        b"not json".to_vec(),
    );
    f.backend
        .commit(vec![Write::put(USERS_TABLE, *b"\xff", *b"foreign key")])
        .unwrap();
    let ids: Vec<String> = f
        .store
        .list_users()
        .unwrap()
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["alpha/1", "alpha/2", "zeta/1"]);
}

#[test]
fn empty_ids_are_invalid_input() {
    let f = fixture();
    for (tenant, client) in [("", "a"), ("demo", "")] {
        assert!(matches!(
            f.store.put_user(&user(tenant, client), &Protection::No),
            Err(StoreError::InvalidInput { .. })
        ));
    }
}

fn password(text: &str) -> SecretString {
    SecretString::new(text)
}

/// A store with a cheap KDF (tests only) and a software biometric provider.
fn fixture_with(iterations: u32) -> (Fixture, Arc<crate::SoftwareBiometric>) {
    let backend = Arc::new(MemoryBackend::new());
    let keys = Arc::new(StaticKeyProvider::random().unwrap());
    let bio = Arc::new(crate::SoftwareBiometric::in_memory());
    let store = open_with(&backend, &keys, &bio, iterations);
    (
        Fixture {
            backend,
            keys,
            store,
        },
        bio,
    )
}

fn open_with(
    backend: &Arc<MemoryBackend>,
    keys: &Arc<StaticKeyProvider>,
    bio: &Arc<crate::SoftwareBiometric>,
    iterations: u32,
) -> UserStore {
    let settings = StoreSettings {
        kdf: crate::KdfSettings::for_tests(iterations),
        ..StoreSettings::default()
    };
    UserStore::open_with(backend.clone(), keys.clone(), Some(bio.clone()), settings).unwrap()
}

fn stored_secrets(backend: &MemoryBackend, id: &UserId) -> SecretsRecord {
    serde_json::from_slice(&backend.get(SECRETS_TABLE, &id.to_key()).unwrap().unwrap()).unwrap()
}

#[test]
fn biometric_without_a_provider_and_empty_passwords_are_refused_and_store_nothing() {
    let f = fixture();
    let result = f.store.put_user(&user("demo", "a"), &Protection::Biometric);
    assert!(
        matches!(
            &result,
            Err(StoreError::Biometric(BiometricError::NotAvailable(_)))
        ),
        "{result:?}"
    );
    let result = f
        .store
        .put_user(&user("demo", "a"), &Protection::Password(password("")));
    assert!(
        matches!(&result, Err(StoreError::InvalidInput { .. })),
        "{result:?}"
    );
    assert!(f.store.list_users().unwrap().is_empty());
    assert_eq!(f.store.last_user().unwrap(), None);
    assert!(f.backend.keys(SECRETS_TABLE).unwrap().is_empty());
}

#[test]
fn a_mode_in_the_metadata_that_disagrees_with_the_wrapped_key_is_corrupt() {
    let f = fixture();
    let a = user("demo", "a");
    f.store.put_user(&a, &Protection::No).unwrap();
    let raw = f.backend.get(USERS_TABLE, &a.id.to_key()).unwrap().unwrap();
    let text = String::from_utf8(raw)
        .unwrap()
        .replace("\"NO\"", "\"PASSWORD\"");
    replace(&f.backend, USERS_TABLE, &a.id, text.into_bytes());
    let result = f
        .store
        .unlock_user(&a.id, Unlock::Password(&password("x")), 0);
    assert!(
        matches!(&result, Err(UnlockError::Store(StoreError::Corrupt { user: Some(u) })) if *u == a.id),
        "{result:?}"
    );
    // and nothing was counted for a record that could not be read
    assert!(f
        .backend
        .get(LOCKOUT_TABLE, &a.id.to_key())
        .unwrap()
        .is_none());
}

#[test]
fn schema_version_is_written_and_newer_zero_or_garbage_is_refused() {
    let f = fixture();
    let version = || f.backend.get(META_TABLE, SCHEMA_VERSION_KEY).unwrap();
    assert_eq!(version().as_deref(), Some(&b"3"[..]));
    // reopening an existing store keeps working
    UserStore::open(f.backend.clone(), f.keys.clone()).unwrap();

    f.backend
        .commit(vec![Write::put(META_TABLE, SCHEMA_VERSION_KEY, *b"4")])
        .unwrap();
    let result = UserStore::open(f.backend.clone(), f.keys.clone());
    assert!(
        matches!(
            result,
            Err(StoreError::NewerSchema {
                found: 4,
                supported: 3
            })
        ),
        "{result:?}"
    );
    // the newer store is left untouched
    assert_eq!(version().as_deref(), Some(&b"4"[..]));
    for garbage in [vec![0xff, 0], b"0".to_vec(), b"-1".to_vec()] {
        f.backend
            .commit(vec![Write::put(META_TABLE, SCHEMA_VERSION_KEY, garbage)])
            .unwrap();
        let result = UserStore::open(f.backend.clone(), f.keys.clone());
        assert!(
            matches!(result, Err(StoreError::Corrupt { user: None })),
            "{result:?}"
        );
    }
    // users without any schema version were not written by this library
    f.backend
        .commit(vec![Write::delete(META_TABLE, SCHEMA_VERSION_KEY)])
        .unwrap();
    f.store
        .put_user(&user("demo", "a"), &Protection::No)
        .unwrap();
    f.backend
        .commit(vec![Write::delete(META_TABLE, SCHEMA_VERSION_KEY)])
        .unwrap();
    let result = UserStore::open(f.backend.clone(), f.keys.clone());
    assert!(
        matches!(result, Err(StoreError::Corrupt { user: None })),
        "{result:?}"
    );
}

#[test]
fn kdf_parameters_are_stored_and_older_ones_still_unlock_then_are_raised() {
    let (f, bio) = fixture_with(1_000);
    let a = user("demo", "a");
    f.store
        .put_user(&a, &Protection::Password(password("pw-1")))
        .unwrap();
    let WrappedKey::Password { kdf, .. } = stored_secrets(&f.backend, &a.id).data_key else {
        panic!("not a password wrap");
    };
    assert_eq!(kdf.iterations, 1_000);
    assert_eq!(kdf.salt.len(), crate::protect::SALT_LEN);
    let raw = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(
        text.contains(r#""name":"PBKDF2-HMAC-SHA256","iterations":1000"#),
        "{text}"
    );

    // the settings are raised: the old record still unlocks, and is re-wrapped
    let raised = open_with(&f.backend, &f.keys, &bio, 2_000);
    let read = raised
        .unlock_user(&a.id, Unlock::Password(&password("pw-1")), 10)
        .unwrap();
    assert_eq!(read.secrets, a.secrets);
    let WrappedKey::Password { kdf: new_kdf, .. } = stored_secrets(&f.backend, &a.id).data_key
    else {
        panic!("not a password wrap");
    };
    assert_eq!(new_kdf.iterations, 2_000);
    assert_ne!(new_kdf.salt, kdf.salt);
    // the sealed device key itself was not touched
    assert_eq!(stored_secrets(&f.backend, &a.id).secrets, {
        let mut before: SecretsRecord = serde_json::from_str(&text).unwrap();
        before.data_key = stored_secrets(&f.backend, &a.id).data_key;
        before.secrets
    });
    // and a store with lower settings does not lower it again
    let lower = open_with(&f.backend, &f.keys, &bio, 1_000);
    lower
        .unlock_user(&a.id, Unlock::Password(&password("pw-1")), 20)
        .unwrap();
    let WrappedKey::Password { kdf: kept, .. } = stored_secrets(&f.backend, &a.id).data_key else {
        panic!("not a password wrap");
    };
    assert_eq!(kept, new_kdf);
}

#[test]
fn a_damaged_kdf_or_lockout_record_fails_closed_for_that_user_only() {
    let (f, _bio) = fixture_with(1_000);
    let (a, b) = (user("demo", "a"), user("demo", "b"));
    let pw = password("pw");
    f.store
        .put_user(&a, &Protection::Password(pw.clone()))
        .unwrap();
    f.store
        .put_user(&b, &Protection::Password(pw.clone()))
        .unwrap();
    // an absurd iteration count is damage, not hours of work
    let raw = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let slow = text.replace(r#""iterations":1000"#, r#""iterations":4000000000"#);
    assert_ne!(slow, text);
    replace(&f.backend, SECRETS_TABLE, &a.id, slow.into_bytes());
    let result = f.store.unlock_user(&a.id, Unlock::Password(&pw), 0);
    assert!(
        matches!(&result, Err(UnlockError::Store(StoreError::Corrupt { .. }))),
        "{result:?}"
    );
    replace(&f.backend, SECRETS_TABLE, &a.id, text.into_bytes());
    // a damaged counter does not reset: the user cannot be unlocked until deleted
    replace(&f.backend, LOCKOUT_TABLE, &a.id, b"{\"format\":2,".to_vec());
    let result = f.store.unlock_user(&a.id, Unlock::Password(&pw), 0);
    assert!(
        matches!(&result, Err(UnlockError::Store(StoreError::Corrupt { .. }))),
        "{result:?}"
    );
    assert!(f.store.lockout_state(&a.id).is_err());
    f.store
        .unlock_user(&b.id, Unlock::Password(&pw), 0)
        .unwrap();
    assert!(f.store.delete_user(&a.id).unwrap());
    assert!(f
        .backend
        .get(LOCKOUT_TABLE, &a.id.to_key())
        .unwrap()
        .is_none());
}

#[test]
fn blocking_deletes_the_wrapped_key_and_keeps_what_idp_deletion_needs() {
    let (f, _bio) = fixture_with(1_000);
    let a = user("demo", "a");
    f.store
        .put_user(&a, &Protection::Password(password("right")))
        .unwrap();
    let mut now = 1_000;
    let mut outcome = None;
    for _ in 0..30 {
        match f
            .store
            .unlock_user(&a.id, Unlock::Password(&password("wrong")), now)
        {
            Err(UnlockError::Blocked) => {
                outcome = Some(());
                break;
            }
            Err(_) => now += 10_000,
            Ok(_) => panic!("a wrong password unlocked"),
        }
    }
    assert!(outcome.is_some());
    assert!(f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .is_none());
    assert!(f
        .backend
        .get(USERS_TABLE, &a.id.to_key())
        .unwrap()
        .is_some());
    assert!(f
        .backend
        .get(MANAGEMENT_TABLE, &a.id.to_key())
        .unwrap()
        .is_some());
    let management = f.store.management_secrets(&a.id).unwrap();
    assert_eq!(
        management.registration_access_token,
        a.secrets.registration_access_token
    );
}

#[test]
fn a_counted_last_attempt_whose_outcome_was_lost_blocks_at_the_next_try() {
    let (f, _bio) = fixture_with(1_000);
    let a = user("demo", "a");
    let pw = password("right");
    f.store
        .put_user(&a, &Protection::Password(pw.clone()))
        .unwrap();
    // as if the process died after committing the 10th count, before checking the password
    let counted = LockoutRecord {
        failed_attempts: 10,
        last_attempt_at: Some(5),
        ..LockoutRecord::default()
    };
    replace(
        &f.backend,
        LOCKOUT_TABLE,
        &a.id,
        serde_json::to_vec(&counted).unwrap(),
    );
    let result = f.store.unlock_user(&a.id, Unlock::Password(&pw), 10);
    assert!(matches!(result, Err(UnlockError::Blocked)), "{result:?}");
    assert!(f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .is_none());
    let state = f.store.lockout_state(&a.id).unwrap();
    assert!(state.blocked);
    assert_eq!(state.failed_attempts, 10);
}

#[test]
fn a_tampered_management_record_fails_for_that_user_only() {
    let f = fixture();
    let (a, b) = (user("demo", "a"), user("demo", "b"));
    f.store.put_user(&a, &Protection::No).unwrap();
    f.store.put_user(&b, &Protection::No).unwrap();
    let original = f
        .backend
        .get(MANAGEMENT_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    for index in (0..original.len()).step_by(3) {
        let mut tampered = original.clone();
        tampered[index] ^= 0x01;
        replace(&f.backend, MANAGEMENT_TABLE, &a.id, tampered);
        let result = f.store.management_secrets(&a.id);
        assert!(
            matches!(
                &result,
                Err(StoreError::DecryptionFailed { user } | StoreError::Corrupt { user: Some(user) })
                    if *user == a.id
            ),
            "byte {index}: {result:?}"
        );
        assert!(f.store.get_user(&a.id).is_err());
        assert_eq!(f.store.get_user(&b.id).unwrap().unwrap(), b);
    }
    // the token is bound to the registration URI it is sent to
    replace(&f.backend, MANAGEMENT_TABLE, &a.id, original);
    let raw = f.backend.get(USERS_TABLE, &a.id.to_key()).unwrap().unwrap();
    let redirected = String::from_utf8(raw)
        .unwrap()
        .replace("/register/a", "/register/evil");
    replace(&f.backend, USERS_TABLE, &a.id, redirected.into_bytes());
    assert!(matches!(
        f.store.management_secrets(&a.id),
        Err(StoreError::DecryptionFailed { .. })
    ));
}

#[cfg(unix)]
#[test]
fn opening_a_store_directory_makes_it_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let base = tempfile::tempdir().unwrap();

    // Created by the store: 0700.
    let fresh = base.path().join("fresh");
    drop(UserStore::open_dir_with(&fresh, None, None, StoreSettings::default()).unwrap());
    assert_eq!(mode(&fresh), 0o700);

    // Made by someone else with 0755 (the default umask): tightened on open.
    let existing = base.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(UserStore::open_dir_with(&existing, None, None, StoreSettings::default()).unwrap());
    assert_eq!(mode(&existing), 0o700);
}
