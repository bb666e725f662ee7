//! UserStore behaviour that needs the record layout: tampering, swapping, schema checks.

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
    f.store.put_user(&a).unwrap();
    f.store.put_user(&b).unwrap();
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
    f.store.put_user(&a).unwrap();
    f.store.put_user(&b).unwrap();
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
    f.store.put_user(&a).unwrap();
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
    f.store.put_user(&a).unwrap();
    f.store.put_user(&b).unwrap();
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
    f.store.put_user(&a).unwrap();
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
    f.store.put_user(&a).unwrap();
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
        locked.put_user(&user("demo", "b")),
        Err(StoreError::KeyUnavailable { .. })
    ));
    // the original key still works
    let same = UserStore::open(f.backend.clone(), f.keys.clone()).unwrap();
    assert_eq!(same.get_user(&a.id).unwrap().unwrap(), a);
}

#[test]
fn password_and_biometric_are_refused_and_store_nothing() {
    let f = fixture();
    for mode in [StoredAuthMode::Password, StoredAuthMode::Biometric] {
        let mut u = user("demo", "a");
        u.authentication_mode = mode;
        let result = f.store.put_user(&u);
        assert!(
            matches!(&result, Err(StoreError::Unsupported { what }) if what.contains(mode.as_str())),
            "{result:?}"
        );
    }
    assert!(f.store.list_users().unwrap().is_empty());
    assert_eq!(f.store.last_user().unwrap(), None);
    assert!(f.backend.keys(SECRETS_TABLE).unwrap().is_empty());
}

#[test]
fn a_record_wrapped_by_an_unsupported_mode_reports_unsupported() {
    let f = fixture();
    let a = user("demo", "a");
    f.store.put_user(&a).unwrap();
    let rewrite = |table: &str| {
        let raw = f.backend.get(table, &a.id.to_key()).unwrap().unwrap();
        let text = String::from_utf8(raw)
            .unwrap()
            .replace("\"NO\"", "\"PASSWORD\"");
        replace(&f.backend, table, &a.id, text.into_bytes());
    };
    rewrite(USERS_TABLE);
    rewrite(SECRETS_TABLE);
    assert!(matches!(
        f.store.get_user(&a.id),
        Err(StoreError::Unsupported { .. })
    ));
}

#[test]
fn schema_version_is_written_and_newer_or_garbage_is_refused() {
    let f = fixture();
    assert_eq!(
        f.backend
            .get(META_TABLE, SCHEMA_VERSION_KEY)
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    // reopening an existing store keeps working
    UserStore::open(f.backend.clone(), f.keys.clone()).unwrap();

    f.backend
        .commit(vec![Write::put(META_TABLE, SCHEMA_VERSION_KEY, *b"2")])
        .unwrap();
    let result = UserStore::open(f.backend.clone(), f.keys.clone());
    assert!(
        matches!(
            result,
            Err(StoreError::NewerSchema {
                found: 2,
                supported: 1
            })
        ),
        "{result:?}"
    );
    // the newer store is left untouched
    assert_eq!(
        f.backend
            .get(META_TABLE, SCHEMA_VERSION_KEY)
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
    f.backend
        .commit(vec![Write::put(
            META_TABLE,
            SCHEMA_VERSION_KEY,
            vec![0xff, 0],
        )])
        .unwrap();
    let result = UserStore::open(f.backend.clone(), f.keys.clone());
    assert!(
        matches!(result, Err(StoreError::Corrupt { user: None })),
        "{result:?}"
    );
}

#[test]
fn last_user_follows_put_login_choice_and_delete() {
    let f = fixture();
    let (a, b) = (user("demo", "a"), user("other", "b"));
    assert_eq!(f.store.last_user().unwrap(), None);
    f.store.put_user(&a).unwrap();
    assert_eq!(f.store.last_user().unwrap(), Some(a.id.clone()));
    f.store.put_user(&b).unwrap();
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
    f.store.put_user(&a).unwrap();
    let first = f
        .backend
        .get(SECRETS_TABLE, &a.id.to_key())
        .unwrap()
        .unwrap();
    a.secrets.registration_access_token = None;
    a.secrets.device_key_pkcs8 = SecretBytes::new(b"new key".to_vec());
    a.subject = None;
    f.store.put_user(&a).unwrap();
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
        f.store.put_user(&user(tenant, client)).unwrap();
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
            f.store.put_user(&user(tenant, client)),
            Err(StoreError::InvalidInput { .. })
        ));
    }
}

#[test]
fn secrets_payload_round_trips_and_rejects_every_truncation() {
    let with_token = UserSecrets {
        device_key_pkcs8: SecretBytes::new(vec![1, 2, 3, 0, 255]),
        registration_access_token: Some(SecretString::new("tok\u{e9}n")),
    };
    let without = UserSecrets {
        device_key_pkcs8: SecretBytes::new(Vec::new()),
        registration_access_token: None,
    };
    for secrets in [with_token, without] {
        let payload = encode_secrets(&secrets).unwrap();
        assert_eq!(decode_secrets(&payload), Some(secrets));
        for len in 0..payload.len() {
            assert_eq!(decode_secrets(&payload[..len]), None, "length {len}");
        }
        let mut longer = payload.to_vec();
        longer.push(0);
        assert_eq!(decode_secrets(&longer), None);
    }
    assert_eq!(decode_secrets(&[2, 0, 0, 0, 0, 0]), None);
    assert_eq!(decode_secrets(&[1, 0, 0, 0, 0, 7]), None);
    assert_eq!(decode_secrets(&[1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xff]), None);
}
