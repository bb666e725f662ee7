//! A damaged store FILE (flipped bytes, truncation) never panics: opening either works, with
//! damaged users reported per user while the others stay usable, or fails with a typed
//! [`StoreError`] the runtime can report. An unlock that succeeds always returns the exact
//! secrets that were stored: damage is never turned into wrong secrets.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use mc_store::{
    EnrolledUser, KdfSettings, Protection, SecretBytes, SecretString, SoftwareBiometric,
    StoreError, StoreSettings, StoredAuthMode, Unlock, UnlockError, UserId, UserSecrets, UserStore,
    DEFAULT_DB_FILE, DEFAULT_KEY_FILE,
};

const PASSWORD: &str = "corruption-test-password";

fn user(client: &str) -> EnrolledUser {
    EnrolledUser {
        id: UserId::new("demo", client),
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: "http://127.0.0.1:8080/realms/demo".into(),
        registration_client_uri: Some(format!("http://127.0.0.1:8080/register/{client}")),
        registration_client_id: None,
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: Some(format!("sub-{client}")),
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(format!("pkcs8-{client}").repeat(8).into_bytes()),
            registration_access_token: Some(SecretString::new(format!("rat-{client}"))),
        },
    }
}

fn settings() -> StoreSettings {
    StoreSettings {
        kdf: KdfSettings::for_tests(100),
        ..StoreSettings::default()
    }
}

fn protection(client: &str) -> Protection {
    match client {
        "p" => Protection::Password(SecretString::new(PASSWORD)),
        "b" => Protection::Biometric,
        _ => Protection::No,
    }
}

const CLIENTS: [&str; 4] = ["n1", "n2", "p", "b"];

/// A real store with users in every mode; returns its files' bytes.
fn pristine(dir: &Path, bio: &Arc<SoftwareBiometric>) -> Vec<u8> {
    let store = UserStore::open_default_with(dir, Some(bio.clone()), settings()).unwrap();
    for client in CLIENTS {
        store.put_user(&user(client), &protection(client)).unwrap();
    }
    store.record_login(&user("n1").id, 1_700_000_100).unwrap();
    drop(store);
    std::fs::read(dir.join(DEFAULT_DB_FILE)).unwrap()
}

#[derive(Default, Debug)]
struct Tally {
    opened: usize,
    open_failed: usize,
    users_ok: usize,
    users_failed: usize,
}

/// Opens the damaged file and reads everything; panics only on a wrong secret.
fn exercise(dir: &Path, bio: &Arc<SoftwareBiometric>, tally: &mut Tally) {
    let store = match UserStore::open_default_with(dir, Some(bio.clone()), settings()) {
        Ok(store) => store,
        Err(error) => {
            // a typed error with a message the runtime can show
            assert!(!error.to_string().is_empty());
            tally.open_failed += 1;
            return;
        }
    };
    tally.opened += 1;
    let _ = store.list_users();
    let _ = store.last_user();
    for client in CLIENTS {
        let expected = user(client);
        let id = &expected.id;
        let _ = store.lockout_state(id);
        if let Ok(management) = store.management_secrets(id) {
            assert_eq!(
                management.registration_access_token,
                expected.secrets.registration_access_token
            );
        }
        let password = SecretString::new(PASSWORD);
        let result = match client {
            "p" => store.unlock_user(id, Unlock::Password(&password), 1),
            "b" => store.unlock_user(id, Unlock::Biometric { prompt: "p" }, 1),
            _ => store.unlock_user(id, Unlock::No, 1),
        };
        match result {
            Ok(read) => {
                assert_eq!(read.secrets, expected.secrets, "{client}: wrong secrets");
                tally.users_ok += 1;
            }
            Err(
                UnlockError::Store(_)
                | UnlockError::Biometric(_)
                | UnlockError::WrongPassword { .. }
                | UnlockError::TemporarilyLocked { .. }
                | UnlockError::Blocked
                | UnlockError::CredentialCleared
                | UnlockError::WrongUnlockMethod { .. },
            ) => tally.users_failed += 1,
        }
    }
}

fn run_damaged(
    work: &Path,
    key_file: &[u8],
    bio: &Arc<SoftwareBiometric>,
    db: &[u8],
    what: &str,
    tally: &mut Tally,
) {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(work.join(DEFAULT_DB_FILE), db).unwrap();
    std::fs::write(work.join(DEFAULT_KEY_FILE), key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            work.join(DEFAULT_KEY_FILE),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| exercise(work, bio, tally)));
    assert!(outcome.is_ok(), "{what}: panicked");
}

#[test]
fn flipped_bytes_and_truncations_of_the_file_never_panic_or_yield_wrong_secrets() {
    let base = tempfile::tempdir().unwrap();
    let original_dir = base.path().join("original");
    let bio = Arc::new(SoftwareBiometric::in_memory());
    let db = pristine(&original_dir, &bio);
    let key_file = std::fs::read(original_dir.join(DEFAULT_KEY_FILE)).unwrap();
    let work = base.path().join("work");

    // the pristine copy reads completely
    let mut clean = Tally::default();
    run_damaged(&work, &key_file, &bio, &db, "pristine", &mut clean);
    assert_eq!(clean.users_ok, CLIENTS.len(), "{clean:?}");

    // dense over the first 4 KiB (redb's header and commit slots), then spread over the
    // whole file; the low and the high bit alternately. About 400 opens: each one syncs.
    let mut offsets: Vec<usize> = (0..db.len().min(4096)).step_by(19).collect();
    let step = (db.len() / 200).max(1);
    offsets.extend((4096..db.len()).step_by(step));
    let mut flips = Tally::default();
    for (index, &offset) in offsets.iter().enumerate() {
        let mask = if index % 2 == 0 { 0x01u8 } else { 0x80 };
        let mut damaged = db.clone();
        damaged[offset] ^= mask;
        let what = format!("byte {offset} ^ {mask:#04x}");
        run_damaged(&work, &key_file, &bio, &damaged, &what, &mut flips);
    }
    eprintln!("{} flips over {} bytes: {flips:?}", offsets.len(), db.len());

    let mut cuts = Tally::default();
    let lengths = [
        0,
        1,
        16,
        511,
        512,
        4095,
        4096,
        db.len() / 3,
        db.len() / 2,
        db.len() - 4096,
        db.len() - 1,
    ];
    for len in lengths {
        run_damaged(
            &work,
            &key_file,
            &bio,
            &db[..len],
            &format!("length {len}"),
            &mut cuts,
        );
    }
    eprintln!("{} truncations: {cuts:?}", lengths.len());
    // most single flips hit unused space or are caught per user; the store stays usable
    assert!(flips.opened > 0 && flips.users_ok > 0, "{flips:?}");
}

#[test]
fn a_damaged_record_costs_only_its_user() {
    // damage inside one user's sealed secrets, found by its content in the file
    let base = tempfile::tempdir().unwrap();
    let original_dir = base.path().join("original");
    let bio = Arc::new(SoftwareBiometric::in_memory());
    let db = pristine(&original_dir, &bio);
    let key_file = std::fs::read(original_dir.join(DEFAULT_KEY_FILE)).unwrap();
    let needle = br#""secrets":{"algorithm":"AES-256-GCM","nonce":""#;
    let at = db
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a secrets record in the file")
        + needle.len()
        + 30; // inside the hex ciphertext
    let mut damaged = db.clone();
    damaged[at] = if damaged[at] == b'0' { b'1' } else { b'0' };
    let work = base.path().join("work");
    let mut tally = Tally::default();
    run_damaged(&work, &key_file, &bio, &damaged, "one record", &mut tally);
    assert_eq!(tally.opened, 1, "{tally:?}");
    assert_eq!(tally.users_failed, 1, "{tally:?}");
    assert_eq!(tally.users_ok, CLIENTS.len() - 1, "{tally:?}");
    // and the failure is a clear per-user error
    let store = UserStore::open_default_with(&work, Some(bio.clone()), settings()).unwrap();
    let failures: Vec<StoreError> = CLIENTS
        .iter()
        .filter_map(|client| store.management_secrets(&user(client).id).err())
        .collect();
    assert!(
        failures.is_empty(),
        "management records are intact: {failures:?}"
    );
}
