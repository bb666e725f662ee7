//! The committed stores of earlier schema versions (written by `schema_fixture.rs` with the
//! code of their time) open with this version, with every user unlockable: schema 1 (the first
//! release, mode NO only) is migrated once, in one transaction; schema 2 (users in all three
//! modes, anonymous ones named by their registration client_id) opens as schema 3, and each
//! anonymous user moves to its `sub` at its next login (`UserStore::adopt_subject`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_store::{
    KeyProvider, KvBackend, Protection, RedbBackend, SecretBytes, SecretString, StoreError,
    StoreSettings, Unlock, UserId, UserStore, Write, DEFAULT_DB_FILE, DEFAULT_KEY_FILE,
    SCHEMA_VERSION,
};
use ring::digest::{digest, SHA256};
use serde_json::Value;

fn fixture_dir(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/schema-v{version}"))
}

/// A private copy of the fixture: git keeps no file modes, and the key file must be 0600.
fn copy_fixture(version: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in expected(version)["files"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        std::fs::copy(fixture_dir(version).join(name), dir.path().join(name)).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [
            (dir.path().join(DEFAULT_KEY_FILE), 0o600),
            (dir.path().join(DEFAULT_DB_FILE), 0o600),
            (dir.path().to_path_buf(), 0o700),
        ] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    dir
}

fn expected(version: u32) -> Value {
    let text = std::fs::read_to_string(fixture_dir(version).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    digest(&SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn id_of(user: &Value) -> UserId {
    UserId::new(
        user["tenant_id"].as_str().unwrap(),
        user["user_id"].as_str().unwrap(),
    )
}

fn raw_schema_version(dir: &Path) -> String {
    let backend = RedbBackend::open(&dir.join(DEFAULT_DB_FILE)).unwrap();
    String::from_utf8(backend.get("meta", b"schema_version").unwrap().unwrap()).unwrap()
}

#[test]
fn the_schema_1_fixture_opens_and_both_users_unlock_with_the_same_keys() {
    let expected = expected(1);
    assert_eq!(expected["schema_version"], 1);
    let dir = copy_fixture(1);
    assert_eq!(raw_schema_version(dir.path()), "1");
    let users = expected["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);

    for round in 0..2 {
        // round 0 migrates; round 1 reopens the migrated store
        let store = UserStore::open_default(dir.path()).unwrap();
        let listed = store.list_users().unwrap();
        assert_eq!(listed.len(), 2, "round {round}");
        for want in users {
            let id = id_of(want);
            let user = store
                .unlock_user(&id, Unlock::No, 1_800_000_000)
                .unwrap_or_else(|error| panic!("round {round}: {id}: {error}"));
            assert_eq!(user.enrollment_client_id, want["enrollment_client_id"]);
            assert_eq!(user.server_url, want["server_url"]);
            assert_eq!(user.issuer, want["issuer"]);
            assert_eq!(
                user.registration_client_uri.as_deref(),
                want["registration_client_uri"].as_str()
            );
            assert_eq!(
                user.authentication_mode.as_str(),
                want["authentication_mode"]
            );
            assert_eq!(user.subject.as_deref(), want["subject"].as_str());
            assert_eq!(user.created_at, want["created_at"].as_i64().unwrap());
            assert_eq!(user.last_login_at, want["last_login_at"].as_i64());
            assert_eq!(
                sha256_hex(user.secrets.device_key_pkcs8.expose()),
                want["device_key_sha256"],
                "round {round}: {id}"
            );
            let token = user.secrets.registration_access_token.as_ref().unwrap();
            assert_eq!(
                sha256_hex(token.expose().as_bytes()),
                want["registration_access_token_sha256"]
            );
            // the device key is a real ES256 key that still signs
            ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                user.secrets.device_key_pkcs8.expose(),
                &ring::rand::SystemRandom::new(),
            )
            .unwrap();
            // the token moved to the management record, readable without an unlock
            let management = store.management_secrets(&id).unwrap();
            assert_eq!(management.registration_access_token.as_ref(), Some(token));
            assert_eq!(store.lockout_state(&id).unwrap().failed_attempts, 0);
        }
        let last = &expected["last_user"];
        assert_eq!(store.last_user().unwrap(), Some(id_of(last)));
        drop(store);
        assert_eq!(raw_schema_version(dir.path()), SCHEMA_VERSION.to_string());
    }

    // a migrated user can take the new modes
    let settings = StoreSettings {
        kdf: mc_store::KdfSettings::for_tests(1_000),
        ..StoreSettings::default()
    };
    let store = UserStore::open_default_with(dir.path(), None, settings).unwrap();
    let id = id_of(&users[0]);
    let password = SecretString::new("migrated-password");
    store
        .change_protection(&id, Unlock::No, &Protection::Password(password.clone()), 1)
        .unwrap();
    let user = store
        .unlock_user(&id, Unlock::Password(&password), 2)
        .unwrap();
    assert_eq!(
        sha256_hex(user.secrets.device_key_pkcs8.expose()),
        users[0]["device_key_sha256"]
    );
}

#[test]
fn without_the_key_the_schema_1_store_is_left_untouched() {
    struct Locked;
    impl KeyProvider for Locked {
        fn wrapping_key(&self) -> Result<SecretBytes, StoreError> {
            Err(StoreError::KeyUnavailable {
                reason: "keystore locked".into(),
            })
        }
    }
    let dir = copy_fixture(1);
    {
        let backend = Arc::new(RedbBackend::open(&dir.path().join(DEFAULT_DB_FILE)).unwrap());
        let result = UserStore::open(backend, Arc::new(Locked));
        assert!(
            matches!(result, Err(StoreError::KeyUnavailable { .. })),
            "{result:?}"
        );
    }
    assert_eq!(raw_schema_version(dir.path()), "1");
    // the next open, with the key, migrates
    let store = UserStore::open_default(dir.path()).unwrap();
    for want in expected(1)["users"].as_array().unwrap() {
        store.get_user(&id_of(want)).unwrap().unwrap();
    }
}

#[test]
fn a_damaged_schema_1_user_stays_unusable_and_the_other_migrates() {
    let dir = copy_fixture(1);
    let expected = expected(1);
    let users = expected["users"].as_array().unwrap();
    let (damaged, intact) = (id_of(&users[0]), id_of(&users[1]));
    {
        let backend = RedbBackend::open(&dir.path().join(DEFAULT_DB_FILE)).unwrap();
        let key = {
            let mut key = (damaged.tenant_id.len() as u32).to_be_bytes().to_vec();
            key.extend_from_slice(damaged.tenant_id.as_bytes());
            key.extend_from_slice(damaged.user_id.as_bytes());
            key
        };
        let mut raw = backend.get("user_secrets", &key).unwrap().unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        // flip one hex digit inside the sealed secrets
        let at = text.rfind("\"ciphertext\":\"").unwrap() + 20;
        raw[at] = if raw[at] == b'0' { b'1' } else { b'0' };
        backend
            .commit(vec![Write::put("user_secrets", key, raw)])
            .unwrap();
    }
    let store = UserStore::open_default(dir.path()).unwrap();
    let result = store.get_user(&damaged);
    assert!(
        matches!(&result, Err(StoreError::Corrupt { user: Some(user) }) if *user == damaged),
        "{result:?}"
    );
    store.get_user(&intact).unwrap().unwrap();
    // left out of the listing like any undecodable record, but deletable by id
    let listed: Vec<UserId> = store
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, vec![intact.clone()]);
    assert!(store.delete_user(&damaged).unwrap());
    drop(store);
    assert_eq!(raw_schema_version(dir.path()), SCHEMA_VERSION.to_string());
}

#[test]
fn the_schema_2_fixture_opens_and_every_mode_unlocks() {
    let expected = expected(2);
    let dir = copy_fixture(2);
    let bio_file = dir.path().join("biometric-keys.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bio_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let bio = Arc::new(mc_store::SoftwareBiometric::open_file(&bio_file).unwrap());
    let iterations = u32::try_from(expected["kdf_iterations"].as_u64().unwrap()).unwrap();
    let settings = StoreSettings {
        kdf: mc_store::KdfSettings::for_tests(iterations),
        ..StoreSettings::default()
    };
    let store = UserStore::open_default_with(dir.path(), Some(bio), settings).unwrap();
    let users = expected["users"].as_array().unwrap();
    let modes: Vec<&str> = users
        .iter()
        .map(|u| u["authentication_mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["NO", "NO", "PASSWORD", "BIOMETRIC"]);
    assert_eq!(store.list_users().unwrap().len(), users.len());
    for want in users {
        let id = id_of(want);
        let password = want["fixture_password"].as_str().map(SecretString::new);
        let unlock = match (want["authentication_mode"].as_str().unwrap(), &password) {
            ("PASSWORD", Some(password)) => Unlock::Password(password),
            ("BIOMETRIC", _) => Unlock::Biometric { prompt: "fixture" },
            _ => Unlock::No,
        };
        let user = store
            .unlock_user(&id, unlock, 1_800_000_000)
            .unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(
            user.authentication_mode.as_str(),
            want["authentication_mode"]
        );
        assert_eq!(user.last_login_at, want["last_login_at"].as_i64());
        assert_eq!(
            sha256_hex(user.secrets.device_key_pkcs8.expose()),
            want["device_key_sha256"],
            "{id}"
        );
        let token = store
            .management_secrets(&id)
            .unwrap()
            .registration_access_token;
        assert_eq!(
            sha256_hex(token.unwrap().expose().as_bytes()),
            want["registration_access_token_sha256"]
        );
    }
    assert_eq!(
        store.last_user().unwrap(),
        Some(id_of(&expected["last_user"]))
    );
}

/// The schema 2 fixture, opened with its biometric keys and test KDF settings.
fn open_schema_2(dir: &Path) -> UserStore {
    open_fixture(dir, 2)
}

/// A fixture of schema 2 or later, opened with its biometric keys and test KDF settings.
fn open_fixture(dir: &Path, version: u32) -> UserStore {
    let bio_file = dir.join("biometric-keys.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bio_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let bio = Arc::new(mc_store::SoftwareBiometric::open_file(&bio_file).unwrap());
    let iterations = u32::try_from(expected(version)["kdf_iterations"].as_u64().unwrap()).unwrap();
    let settings = StoreSettings {
        kdf: mc_store::KdfSettings::for_tests(iterations),
        ..StoreSettings::default()
    };
    UserStore::open_default_with(dir, Some(bio), settings).unwrap()
}

/// Unlocks the fixture user `want` under `id` and checks its secrets are the fixture's.
fn assert_unlocks_as_fixture(store: &UserStore, id: &UserId, want: &Value) {
    let password = want["fixture_password"].as_str().map(SecretString::new);
    let unlock = match (want["authentication_mode"].as_str().unwrap(), &password) {
        ("PASSWORD", Some(password)) => Unlock::Password(password),
        ("BIOMETRIC", _) => Unlock::Biometric { prompt: "fixture" },
        _ => Unlock::No,
    };
    let user = store
        .unlock_user(id, unlock, 1_800_000_000)
        .unwrap_or_else(|error| panic!("{id}: {error}"));
    assert_eq!(&user.id, id);
    assert_eq!(
        sha256_hex(user.secrets.device_key_pkcs8.expose()),
        want["device_key_sha256"],
        "{id}"
    );
    let token = store
        .management_secrets(id)
        .unwrap()
        .registration_access_token;
    assert_eq!(
        sha256_hex(token.unwrap().expose().as_bytes()),
        want["registration_access_token_sha256"]
    );
}

/// Schema 2 -> 3: the open only bumps the version (the runtime cannot know a `sub` without
/// a token); each anonymous user then moves to its `sub` in one commit at its next login,
/// keeping its client_id for its client assertions, in every mode without re-sealing.
#[test]
fn schema_2_users_keep_their_id_until_adopt_subject_moves_them_in_every_mode() {
    let expected = expected(2);
    let users = expected["users"].as_array().unwrap();
    let dir = copy_fixture(2);
    let store = open_schema_2(dir.path());
    drop(store);
    assert_eq!(raw_schema_version(dir.path()), SCHEMA_VERSION.to_string());
    let store = open_schema_2(dir.path());
    // until a login, the old ids (the registration client_ids) name them
    for want in users {
        let summary = store
            .list_users()
            .unwrap()
            .into_iter()
            .find(|u| u.id == id_of(want))
            .unwrap();
        assert_eq!(summary.registration_client_id, None);
    }
    for want in users {
        let old = id_of(want);
        let sub = format!("6f1c2b8e-{}", old.user_id);
        let new = store.adopt_subject(&old, &sub).unwrap();
        assert_eq!(new, UserId::new(old.tenant_id.clone(), sub.clone()));
        assert_unlocks_as_fixture(&store, &new, want);
        let summary = store
            .list_users()
            .unwrap()
            .into_iter()
            .find(|u| u.id == new)
            .unwrap();
        assert_eq!(
            summary.registration_client_id.as_deref(),
            Some(old.user_id.as_str())
        );
        assert_eq!(summary.subject.as_deref(), Some(sub.as_str()));
        // nothing is left under the old id
        assert!(matches!(
            store.management_secrets(&old),
            Err(StoreError::NotFound { .. })
        ));
        // moved once: a second move (the IDP naming another sub) is refused
        let again = store.adopt_subject(&new, "someone-else");
        assert!(
            matches!(again, Err(StoreError::InvalidInput { .. })),
            "{again:?}"
        );
    }
    assert_eq!(store.list_users().unwrap().len(), users.len());
    let last = id_of(&expected["last_user"]);
    assert_eq!(
        store.last_user().unwrap(),
        Some(UserId::new(
            last.tenant_id.clone(),
            format!("6f1c2b8e-{}", last.user_id)
        ))
    );
    // a moved user changes mode and is deleted like any other (its platform key too)
    let moved = UserId::new("demo", format!("6f1c2b8e-{}", id_of(&users[0]).user_id));
    store
        .change_protection(
            &moved,
            Unlock::No,
            &Protection::Password(SecretString::new("new-password")),
            1_800_000_001,
        )
        .unwrap();
    store
        .unlock_user(
            &moved,
            Unlock::Password(&SecretString::new("new-password")),
            1_800_000_002,
        )
        .unwrap();
    // reopened: still there under the new ids
    drop(store);
    let store = open_schema_2(dir.path());
    for want in &users[1..] {
        let new = UserId::new(
            id_of(want).tenant_id,
            format!("6f1c2b8e-{}", id_of(want).user_id),
        );
        assert_unlocks_as_fixture(&store, &new, want);
        assert!(store.delete_user(&new).unwrap());
    }
}

/// Hostile: a `sub` another user has, an empty one, an identified user, and records copied
/// or edited by hand are refused, and a refused move changes nothing.
#[test]
fn adopt_subject_refuses_a_taken_id_and_tampered_records() {
    let expected = expected(2);
    let users = expected["users"].as_array().unwrap();
    let dir = copy_fixture(2);
    let store = open_schema_2(dir.path());
    let (first, second) = (id_of(&users[0]), id_of(&users[2]));
    assert_eq!(first.tenant_id, second.tenant_id);
    // the IDP answers device A's login with device B's id
    let taken = store.adopt_subject(&first, &second.user_id);
    assert!(
        matches!(&taken, Err(StoreError::UserIdTaken { user }) if *user == second),
        "{taken:?}"
    );
    assert_unlocks_as_fixture(&store, &first, &users[0]);
    assert_unlocks_as_fixture(&store, &second, &users[2]);
    assert!(matches!(
        store.adopt_subject(&first, ""),
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        store.adopt_subject(&UserId::new("demo", "nobody"), "sub"),
        Err(StoreError::NotFound { .. })
    ));
    // the same sub as its client_id (some IDPs): the id stays, the client_id is recorded
    assert_eq!(
        store.adopt_subject(&first, &first.user_id).unwrap(),
        first.clone()
    );
    assert_unlocks_as_fixture(&store, &first, &users[0]);
    drop(store);

    // a moved user's record edited to claim another original id no longer opens
    let store = open_schema_2(dir.path());
    let moved = store.adopt_subject(&second, "sub-of-second").unwrap();
    drop(store);
    {
        let backend = RedbBackend::open(&dir.path().join(DEFAULT_DB_FILE)).unwrap();
        let key = raw_key(&moved);
        let raw = backend.get("users", &key).unwrap().unwrap();
        let edited = String::from_utf8(raw)
            .unwrap()
            .replace(
                &format!("\"sealed_as\":\"{}\"", second.user_id),
                "\"sealed_as\":\"device-a\"",
            )
            .into_bytes();
        backend
            .commit(vec![Write::put("users", key, edited)])
            .unwrap();
    }
    let store = open_schema_2(dir.path());
    let password = SecretString::new(users[2]["fixture_password"].as_str().unwrap());
    let result = store.unlock_user(&moved, Unlock::Password(&password), 1_800_000_000);
    assert!(result.is_err(), "{result:?}");
    drop(store);

    // an old record copied under another id is refused, not moved
    let dir = copy_fixture(2);
    {
        let backend = RedbBackend::open(&dir.path().join(DEFAULT_DB_FILE)).unwrap();
        let copy = UserId::new("demo", "copied-device");
        let mut batch = Vec::new();
        for table in ["users", "user_secrets", "user_management"] {
            let raw = backend.get(table, &raw_key(&first)).unwrap().unwrap();
            batch.push(Write::put(table, raw_key(&copy), raw));
        }
        backend.commit(batch).unwrap();
    }
    let store = open_schema_2(dir.path());
    let copied = store.adopt_subject(&UserId::new("demo", "copied-device"), "sub-x");
    assert!(
        matches!(copied, Err(StoreError::Corrupt { .. })),
        "{copied:?}"
    );
    assert!(store
        .list_users()
        .unwrap()
        .iter()
        .all(|u| u.id.user_id != "sub-x"));
}

fn raw_key(id: &UserId) -> Vec<u8> {
    let mut key = (id.tenant_id.len() as u32).to_be_bytes().to_vec();
    key.extend_from_slice(id.tenant_id.as_bytes());
    key.extend_from_slice(id.user_id.as_bytes());
    key
}

/// Schema 3 as this version writes it: users named by their `sub` (two as an enrollment
/// stores them, the PASSWORD and BIOMETRIC ones moved from their client_id by a login), every
/// mode unlocking, each keeping its registration client_id.
#[test]
fn the_schema_3_fixture_opens_and_every_mode_unlocks_named_by_sub() {
    let expected = expected(3);
    let users = expected["users"].as_array().unwrap();
    let dir = copy_fixture(3);
    let store = open_fixture(dir.path(), 3);
    let listed = store.list_users().unwrap();
    assert_eq!(listed.len(), users.len());
    for want in users {
        let id = id_of(want);
        assert!(id.user_id.starts_with("sub-"), "{id}");
        assert_unlocks_as_fixture(&store, &id, want);
        let summary = listed.iter().find(|u| u.id == id).unwrap();
        assert_eq!(
            summary.registration_client_id.as_deref(),
            want["registration_client_id"].as_str()
        );
        // named by its sub already: a later login naming another is the IDP swapping ids
        assert!(matches!(
            store.adopt_subject(&id, "another-sub"),
            Err(StoreError::InvalidInput { .. })
        ));
    }
    assert_eq!(
        store.last_user().unwrap(),
        Some(id_of(&expected["last_user"]))
    );
}
