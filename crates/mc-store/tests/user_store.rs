//! The default store through the public API only: a real redb file and a real key file.

use std::path::Path;

use mc_store::{
    EnrolledUser, Protection, SecretBytes, SecretString, StoreError, StoredAuthMode, UserId,
    UserSecrets, UserStore, DEFAULT_DB_FILE, DEFAULT_KEY_FILE,
};

const KEY_MARKER: &[u8] = b"0\x81\x87PKCS8-DEVICE-PRIVATE-KEY-MARKER";
const TOKEN_MARKER: &str = "registration-access-token-MARKER-7f3a";

fn user(tenant: &str, client: &str) -> EnrolledUser {
    let mut key = KEY_MARKER.to_vec();
    key.extend_from_slice(client.as_bytes());
    EnrolledUser {
        id: UserId::new(tenant, client),
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: format!("http://127.0.0.1:8080/realms/{tenant}"),
        registration_client_uri: Some(format!("http://127.0.0.1:8080/reg/{client}")),
        registration_client_id: None,
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: Some(format!("subject-{client}")),
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(key),
            registration_access_token: Some(SecretString::new(format!("{TOKEN_MARKER}-{client}"))),
        },
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn users_and_last_user_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (user("demo", "a"), user("demo", "b"), user("other", "c"));
    {
        let store = UserStore::open_default(dir.path()).unwrap();
        store.put_user(&a, &Protection::No).unwrap();
        store.put_user(&b, &Protection::No).unwrap();
        store.put_user(&c, &Protection::No).unwrap();
        store.record_login(&b.id, 1_700_000_100).unwrap();
        assert!(store.delete_user(&c.id).unwrap());
    }
    let store = UserStore::open_default(dir.path()).unwrap();
    assert_eq!(store.get_user(&a.id).unwrap().unwrap(), a);
    let read_b = store.get_user(&b.id).unwrap().unwrap();
    assert_eq!(read_b.last_login_at, Some(1_700_000_100));
    assert_eq!(read_b.secrets, b.secrets);
    assert_eq!(store.get_user(&c.id).unwrap(), None);
    assert_eq!(store.last_user().unwrap(), Some(b.id.clone()));
    let listed: Vec<UserId> = store
        .list_users()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![a.id.clone(), b.id.clone()]);

    store.set_last_user(&a.id).unwrap();
    assert!(store.delete_user(&b.id).unwrap());
    drop(store);
    let store = UserStore::open_default(dir.path()).unwrap();
    assert_eq!(store.last_user().unwrap(), Some(a.id.clone()));
    assert_eq!(store.list_users().unwrap().len(), 1);
}

#[test]
fn the_raw_files_hold_no_plaintext_secret() {
    let dir = tempfile::tempdir().unwrap();
    let users = [user("demo", "a"), user("demo", "b")];
    {
        let store = UserStore::open_default(dir.path()).unwrap();
        for u in &users {
            store.put_user(u, &Protection::No).unwrap();
        }
        // a replacement and a login leave old pages behind in the file: they are sealed too
        store.put_user(&users[0], &Protection::No).unwrap();
        store.record_login(&users[1].id, 5).unwrap();
    }
    let db = std::fs::read(dir.path().join(DEFAULT_DB_FILE)).unwrap();
    let key_file = std::fs::read(dir.path().join(DEFAULT_KEY_FILE)).unwrap();
    // the search works: non-secret metadata is there in clear
    assert!(contains(&db, b"http://127.0.0.1:8080/realms/demo"));
    assert!(contains(&db, b"subject-a"));
    for file in [&db, &key_file] {
        assert!(!contains(file, KEY_MARKER));
        assert!(!contains(file, b"PKCS8-DEVICE-PRIVATE-KEY"));
        assert!(!contains(file, TOKEN_MARKER.as_bytes()));
        assert!(!contains(file, b"MARKER"));
    }
    // and the key file is not sitting in the database either
    assert!(!contains(&db, &key_file));
}

#[test]
fn a_replaced_key_file_cannot_open_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let a = user("demo", "a");
    UserStore::open_default(dir.path())
        .unwrap()
        .put_user(&a, &Protection::No)
        .unwrap();
    std::fs::remove_file(dir.path().join(DEFAULT_KEY_FILE)).unwrap();
    // a new key file is created on open; the old user's secrets stay sealed
    let store = UserStore::open_default(dir.path()).unwrap();
    let result = store.get_user(&a.id);
    assert!(
        matches!(&result, Err(StoreError::DecryptionFailed { user }) if *user == a.id),
        "{result:?}"
    );
    assert_eq!(store.list_users().unwrap().len(), 1);
    // the user can be enrolled again under the new key
    store.put_user(&a, &Protection::No).unwrap();
    assert_eq!(store.get_user(&a.id).unwrap().unwrap(), a);
}

#[cfg(unix)]
#[test]
fn key_file_and_directory_are_private_and_loose_key_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    drop(UserStore::open_default(&dir).unwrap());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(DEFAULT_KEY_FILE)), 0o600);
    assert_eq!(mode(&dir.join(DEFAULT_DB_FILE)), 0o600);
    assert_eq!(std::fs::read(dir.join(DEFAULT_KEY_FILE)).unwrap().len(), 32);

    std::fs::set_permissions(
        dir.join(DEFAULT_KEY_FILE),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let result = UserStore::open_default(&dir);
    assert!(
        matches!(&result, Err(StoreError::KeyUnavailable { reason }) if reason.contains("640")),
        "{result:?}"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = UserStore::open_default(dir.path()).unwrap();
    let second = UserStore::open_default(dir.path());
    assert!(matches!(second, Err(StoreError::Backend(_))), "{second:?}");
}

#[test]
fn errors_and_debug_output_carry_no_secret() {
    let a = user("demo", "a");
    let printed = format!("{a:?}");
    assert!(!printed.contains(TOKEN_MARKER), "{printed}");
    assert!(!printed.contains("MARKER"), "{printed}");
    let numbers = format!("{:?}", &KEY_MARKER[3..]);
    assert!(!printed.contains(numbers.trim_matches(|c| c == '[' || c == ']')));
    let error = StoreError::DecryptionFailed { user: a.id.clone() };
    assert!(error.to_string().contains("enroll this user again"));
}
