//! PASSWORD and BIOMETRIC protection through the public API: lockout counting, escalation and
//! block, clock changes, KDF parameters, biometric outcomes, mode switches and their failures.
//! Tests use a cheap KDF through `KdfSettings::for_tests` (never a product setting), except
//! `default_settings_use_600000_iterations`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mc_store::{
    BiometricError, EnrolledUser, KdfSettings, KvBackend, LockoutState, MemoryBackend, Protection,
    ScriptedOutcome, SecretBytes, SecretString, SoftwareBiometric, StaticKeyProvider, StoreError,
    StoreSettings, StoredAuthMode, Unlock, UnlockError, UserId, UserSecrets, UserStore, Write,
    DEFAULT_DB_FILE, DEFAULT_KEY_FILE,
};

const DEVICE_KEY_MARKER: &[u8] = b"DEVICE-KEY-MARKER-3c1d";
const TOKEN_MARKER: &str = "REG-TOKEN-MARKER-88af";
const PASSWORD: &str = "correct horse battery staple";

fn user(client: &str) -> EnrolledUser {
    let mut key = DEVICE_KEY_MARKER.to_vec();
    key.extend_from_slice(client.as_bytes());
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
            device_key_pkcs8: SecretBytes::new(key),
            registration_access_token: Some(SecretString::new(format!("{TOKEN_MARKER}-{client}"))),
        },
    }
}

fn pw(text: &str) -> SecretString {
    SecretString::new(text)
}

fn test_settings() -> StoreSettings {
    StoreSettings {
        kdf: KdfSettings::for_tests(1_000),
        ..StoreSettings::default()
    }
}

/// A memory backend whose commits can be made to fail, as a full disk would.
#[derive(Default)]
struct FlakyBackend {
    inner: MemoryBackend,
    /// `Some(n)`: the next `n` commits succeed, every later one fails.
    commits_left: Mutex<Option<usize>>,
}

impl FlakyBackend {
    fn fail_after(&self, commits: usize) {
        *self.commits_left.lock().unwrap() = Some(commits);
    }
    fn heal(&self) {
        *self.commits_left.lock().unwrap() = None;
    }
}

impl KvBackend for FlakyBackend {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.keys(table)
    }
    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut left = self.commits_left.lock().unwrap();
        match left.as_mut() {
            Some(0) => return Err(StoreError::Backend("disk full (test)".into())),
            Some(n) => *n -= 1,
            None => {}
        }
        self.inner.commit(batch)
    }
}

struct Setup {
    backend: Arc<FlakyBackend>,
    bio: Arc<SoftwareBiometric>,
    store: UserStore,
}

fn setup_with(settings: StoreSettings) -> Setup {
    let backend = Arc::new(FlakyBackend::default());
    let bio = Arc::new(SoftwareBiometric::in_memory());
    let store = UserStore::open_with(
        backend.clone(),
        Arc::new(StaticKeyProvider::random().unwrap()),
        Some(bio.clone()),
        settings,
    )
    .unwrap();
    Setup {
        backend,
        bio,
        store,
    }
}

fn setup() -> Setup {
    setup_with(test_settings())
}

fn state(store: &UserStore, id: &UserId) -> LockoutState {
    store.lockout_state(id).unwrap()
}

fn wrong(store: &UserStore, id: &UserId, now: i64) -> Result<EnrolledUser, UnlockError> {
    store.unlock_user(id, Unlock::Password(&pw("wrong")), now)
}

fn right(store: &UserStore, id: &UserId, now: i64) -> Result<EnrolledUser, UnlockError> {
    store.unlock_user(id, Unlock::Password(&pw(PASSWORD)), now)
}

#[test]
fn wrong_passwords_count_and_a_correct_one_resets() {
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    assert_eq!(
        s.store.list_users().unwrap()[0].authentication_mode,
        StoredAuthMode::Password
    );
    for n in 1..=3u32 {
        let result = wrong(&s.store, &a.id, 100);
        assert!(
            matches!(
                result,
                Err(UnlockError::WrongPassword {
                    failed_attempts,
                    attempts_left_before_block,
                    retry_after_secs: None,
                }) if failed_attempts == n && attempts_left_before_block == 10 - n
            ),
            "{result:?}"
        );
        assert_eq!(state(&s.store, &a.id).failed_attempts, n);
    }
    let read = right(&s.store, &a.id, 101).unwrap();
    assert_eq!(read.secrets, a.secrets);
    assert_eq!(read.authentication_mode, StoredAuthMode::Password);
    assert_eq!(
        state(&s.store, &a.id),
        LockoutState {
            failed_attempts: 0,
            locked_until: None,
            blocked: false
        }
    );
    // the other unlock methods are refused without counting
    for unlock in [Unlock::No, Unlock::Biometric { prompt: "p" }] {
        let result = s.store.unlock_user(&a.id, unlock, 102);
        assert!(
            matches!(
                result,
                Err(UnlockError::WrongUnlockMethod {
                    mode: StoredAuthMode::Password
                })
            ),
            "{result:?}"
        );
    }
    assert!(matches!(
        s.store.get_user(&a.id),
        Err(StoreError::NeedsUnlock {
            mode: StoredAuthMode::Password,
            ..
        })
    ));
    assert_eq!(state(&s.store, &a.id).failed_attempts, 0);
}

#[test]
fn the_attempt_is_counted_durably_before_the_password_is_checked() {
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    // the counting commit succeeds, everything after it fails (as if the process died there)
    s.backend.fail_after(1);
    let result = right(&s.store, &a.id, 100);
    assert!(
        matches!(result, Err(UnlockError::Store(StoreError::Backend(_)))),
        "{result:?}"
    );
    assert_eq!(state(&s.store, &a.id).failed_attempts, 1);
    // and when even the counting commit fails, the password is not tried at all
    s.backend.fail_after(0);
    let result = right(&s.store, &a.id, 101);
    assert!(matches!(result, Err(UnlockError::Store(_))), "{result:?}");
    s.backend.heal();
    assert_eq!(state(&s.store, &a.id).failed_attempts, 1);
    right(&s.store, &a.id, 102).unwrap();
    assert_eq!(state(&s.store, &a.id).failed_attempts, 0);
}

#[test]
fn escalation_timeline_then_block() {
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    let mut now = 10_000i64;
    for n in 1..=4 {
        assert!(matches!(
            wrong(&s.store, &a.id, now),
            Err(UnlockError::WrongPassword { failed_attempts, retry_after_secs: None, .. }) if failed_attempts == n
        ));
        now += 1;
    }
    // 5th..9th failures lock for 60, 300, 900, 3600, 3600 s
    for (n, delay) in [(5u32, 60u64), (6, 300), (7, 900), (8, 3600), (9, 3600)] {
        let result = wrong(&s.store, &a.id, now);
        assert!(
            matches!(
                result,
                Err(UnlockError::WrongPassword { failed_attempts, attempts_left_before_block, retry_after_secs: Some(wait) })
                    if failed_attempts == n && attempts_left_before_block == 10 - n && wait == delay
            ),
            "failure {n}: {result:?}"
        );
        assert_eq!(
            state(&s.store, &a.id).locked_until,
            Some(now + delay as i64)
        );
        // while locked, even the right password is not tried and nothing is counted
        let result = right(&s.store, &a.id, now + delay as i64 - 1);
        assert!(
            matches!(result, Err(UnlockError::TemporarilyLocked { retry_after_secs: 1, failed_attempts }) if failed_attempts == n),
            "{result:?}"
        );
        let result = wrong(&s.store, &a.id, now + 1);
        assert!(
            matches!(result, Err(UnlockError::TemporarilyLocked { retry_after_secs, .. }) if retry_after_secs == delay - 1),
            "{result:?}"
        );
        assert_eq!(state(&s.store, &a.id).failed_attempts, n);
        now += delay as i64;
    }
    // the 10th failure destroys the wrapped key
    assert!(matches!(
        wrong(&s.store, &a.id, now),
        Err(UnlockError::Blocked)
    ));
    assert!(matches!(
        right(&s.store, &a.id, now + 100_000),
        Err(UnlockError::Blocked)
    ));
    let blocked = state(&s.store, &a.id);
    assert!(blocked.blocked);
    assert_eq!(blocked.failed_attempts, 10);
    // no switch out of it either
    assert!(matches!(
        s.store
            .change_protection(&a.id, Unlock::Password(&pw(PASSWORD)), &Protection::No, now),
        Err(UnlockError::Blocked)
    ));
    // still listed, and what the IDP deletion needs is still readable without the password
    assert_eq!(s.store.list_users().unwrap().len(), 1);
    let management = s.store.management_secrets(&a.id).unwrap();
    assert_eq!(
        management.registration_access_token,
        a.secrets.registration_access_token
    );
    assert_eq!(
        management.registration_client_uri,
        a.registration_client_uri
    );
    // enrolling again starts over
    assert!(s.store.delete_user(&a.id).unwrap());
    assert!(matches!(
        s.store.lockout_state(&a.id),
        Err(StoreError::NotFound { .. })
    ));
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    assert_eq!(state(&s.store, &a.id).failed_attempts, 0);
    right(&s.store, &a.id, now).unwrap();
}

#[test]
fn a_correct_password_at_the_last_attempt_still_unlocks() {
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    let mut now = 0;
    for _ in 0..9 {
        let _ = wrong(&s.store, &a.id, now);
        now += 10_000;
    }
    assert_eq!(state(&s.store, &a.id).failed_attempts, 9);
    right(&s.store, &a.id, now).unwrap();
    assert_eq!(state(&s.store, &a.id).failed_attempts, 0);
}

#[test]
fn a_clock_set_back_never_ends_a_lock_early() {
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    for _ in 0..5 {
        let _ = wrong(&s.store, &a.id, 10_000);
    }
    assert_eq!(state(&s.store, &a.id).locked_until, Some(10_060));
    // an hour back: still locked, until the stored time
    let result = right(&s.store, &a.id, 6_400);
    assert!(
        matches!(
            result,
            Err(UnlockError::TemporarilyLocked {
                retry_after_secs: 3_660,
                failed_attempts: 5
            })
        ),
        "{result:?}"
    );
    assert!(matches!(
        right(&s.store, &a.id, i64::MIN),
        Err(UnlockError::TemporarilyLocked { .. })
    ));
    assert!(matches!(
        right(&s.store, &a.id, 10_059),
        Err(UnlockError::TemporarilyLocked { .. })
    ));
    assert_eq!(state(&s.store, &a.id).failed_attempts, 5);
    right(&s.store, &a.id, 10_060).unwrap();

    // failures with the clock going back: the lock starts from the latest time seen
    let _ = wrong(&s.store, &a.id, 20_000);
    for _ in 0..4 {
        let _ = wrong(&s.store, &a.id, 15_000);
    }
    assert_eq!(state(&s.store, &a.id).failed_attempts, 5);
    assert_eq!(state(&s.store, &a.id).locked_until, Some(20_060));
    let result = right(&s.store, &a.id, 15_000);
    assert!(
        matches!(
            result,
            Err(UnlockError::TemporarilyLocked {
                retry_after_secs: 5_060,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn lockout_numbers_are_settings() {
    let settings = StoreSettings {
        kdf: KdfSettings::for_tests(1_000),
        lockout: mc_store::LockoutPolicy {
            attempts_before_temporary_lock: 2,
            lock_delays_secs: vec![7],
            attempts_before_block: 3,
        },
    };
    let s = setup_with(settings);
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    assert!(matches!(
        wrong(&s.store, &a.id, 0),
        Err(UnlockError::WrongPassword {
            retry_after_secs: None,
            attempts_left_before_block: 2,
            ..
        })
    ));
    assert!(matches!(
        wrong(&s.store, &a.id, 0),
        Err(UnlockError::WrongPassword {
            retry_after_secs: Some(7),
            attempts_left_before_block: 1,
            ..
        })
    ));
    assert!(matches!(
        wrong(&s.store, &a.id, 7),
        Err(UnlockError::Blocked)
    ));
}

#[test]
fn weak_kdf_settings_are_refused_outside_tests() {
    let mut settings = StoreSettings::default();
    settings.kdf.pbkdf2_iterations = 10_000;
    let result = UserStore::open_with(
        Arc::new(MemoryBackend::new()),
        Arc::new(StaticKeyProvider::random().unwrap()),
        None,
        settings,
    );
    assert!(
        matches!(result, Err(StoreError::InvalidInput { .. })),
        "{result:?}"
    );
}

#[test]
fn default_settings_use_600000_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let store = UserStore::open_default(dir.path()).unwrap();
    assert_eq!(store.settings().kdf.pbkdf2_iterations, 600_000);
    let a = user("a");
    store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    let started = Instant::now();
    let read = right(&store, &a.id, 1).unwrap();
    eprintln!(
        "one PASSWORD unlock at 600000 PBKDF2-HMAC-SHA256 iterations: {:?}",
        started.elapsed()
    );
    assert_eq!(read.secrets, a.secrets);
    drop(store);
    let db = std::fs::read(dir.path().join(DEFAULT_DB_FILE)).unwrap();
    let needle = br#""name":"PBKDF2-HMAC-SHA256","iterations":600000"#;
    assert!(db.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn biometric_outcomes_map_to_distinct_errors() {
    let s = setup();
    let a = user("a");
    s.store.put_user(&a, &Protection::Biometric).unwrap();
    assert!(s.bio.has_key(&a.id));
    let unlock = || {
        s.store
            .unlock_user(&a.id, Unlock::Biometric { prompt: "Sign in" }, 0)
    };
    assert_eq!(unlock().unwrap().secrets, a.secrets);
    assert_eq!(s.bio.prompts().last().map(String::as_str), Some("Sign in"));

    s.bio.script_next(ScriptedOutcome::Cancel);
    assert!(matches!(
        unlock(),
        Err(UnlockError::Biometric(BiometricError::Cancelled))
    ));
    s.bio.script_next(ScriptedOutcome::Lockout(7001));
    assert!(matches!(
        unlock(),
        Err(UnlockError::Biometric(BiometricError::Lockout {
            platform_code: 7001
        }))
    ));
    s.bio.script_next(ScriptedOutcome::Fail(5));
    assert!(matches!(
        unlock(),
        Err(UnlockError::Biometric(BiometricError::Failed {
            platform_code: 5,
            ..
        }))
    ));
    // transient failures leave the user usable
    unlock().unwrap();
    assert!(matches!(
        s.store
            .unlock_user(&a.id, Unlock::Password(&pw(PASSWORD)), 0),
        Err(UnlockError::WrongUnlockMethod {
            mode: StoredAuthMode::Biometric
        })
    ));
    assert!(matches!(
        s.store.get_user(&a.id),
        Err(StoreError::NeedsUnlock {
            mode: StoredAuthMode::Biometric,
            ..
        })
    ));

    // a new fingerprint: the key is gone for good, the IDP deletion still possible
    s.bio.invalidate_all();
    assert!(matches!(
        unlock(),
        Err(UnlockError::Biometric(BiometricError::KeyInvalidated))
    ));
    assert!(matches!(
        unlock(),
        Err(UnlockError::Biometric(BiometricError::KeyInvalidated))
    ));
    assert_eq!(
        s.store
            .management_secrets(&a.id)
            .unwrap()
            .registration_access_token,
        a.secrets.registration_access_token
    );
    assert!(s.store.delete_user(&a.id).unwrap());
    assert!(!s.bio.has_key(&a.id));
}

#[test]
fn a_cancelled_biometric_enrollment_stores_nothing() {
    let s = setup();
    let a = user("a");
    s.bio.script_next(ScriptedOutcome::Cancel);
    let result = s.store.put_user(&a, &Protection::Biometric);
    assert!(
        matches!(
            result,
            Err(StoreError::Biometric(BiometricError::Cancelled))
        ),
        "{result:?}"
    );
    assert!(s.store.list_users().unwrap().is_empty());
    assert!(!s.bio.has_key(&a.id));
    // a failed commit does not leave a platform key behind either
    s.backend.fail_after(0);
    assert!(s.store.put_user(&a, &Protection::Biometric).is_err());
    assert!(!s.bio.has_key(&a.id));
    s.backend.heal();
    // no provider: refused with a clear reason
    let none = UserStore::open_with(
        Arc::new(MemoryBackend::new()),
        Arc::new(StaticKeyProvider::random().unwrap()),
        None,
        test_settings(),
    )
    .unwrap();
    assert!(matches!(
        none.put_user(&a, &Protection::Biometric),
        Err(StoreError::Biometric(BiometricError::NotAvailable(_)))
    ));
}

#[test]
fn switching_no_password_biometric_no_keeps_the_same_device_key() {
    let s = setup();
    let (a, b) = (user("a"), user("b"));
    s.store.put_user(&a, &Protection::No).unwrap();
    s.store.put_user(&b, &Protection::No).unwrap();
    let mode = |id: &UserId| {
        s.store
            .list_users()
            .unwrap()
            .into_iter()
            .find(|u| u.id == *id)
            .unwrap()
            .authentication_mode
    };

    s.store
        .change_protection(&a.id, Unlock::No, &Protection::Password(pw(PASSWORD)), 1)
        .unwrap();
    assert_eq!(mode(&a.id), StoredAuthMode::Password);
    assert!(matches!(
        s.store.get_user(&a.id),
        Err(StoreError::NeedsUnlock { .. })
    ));
    assert_eq!(right(&s.store, &a.id, 2).unwrap().secrets, a.secrets);

    // a password change: the old one no longer opens it
    s.store
        .change_protection(
            &a.id,
            Unlock::Password(&pw(PASSWORD)),
            &Protection::Password(pw("new password")),
            3,
        )
        .unwrap();
    assert!(matches!(
        right(&s.store, &a.id, 4),
        Err(UnlockError::WrongPassword { .. })
    ));
    let read = s
        .store
        .unlock_user(&a.id, Unlock::Password(&pw("new password")), 5)
        .unwrap();
    assert_eq!(read.secrets, a.secrets);

    s.store
        .change_protection(
            &a.id,
            Unlock::Password(&pw("new password")),
            &Protection::Biometric,
            6,
        )
        .unwrap();
    assert_eq!(mode(&a.id), StoredAuthMode::Biometric);
    assert!(s.bio.has_key(&a.id));
    assert_eq!(
        s.store.lockout_state(&a.id).unwrap(),
        LockoutState {
            failed_attempts: 0,
            locked_until: None,
            blocked: false
        }
    );
    let read = s
        .store
        .unlock_user(&a.id, Unlock::Biometric { prompt: "p" }, 7)
        .unwrap();
    assert_eq!(read.secrets, a.secrets);
    assert!(matches!(
        s.store.change_protection(
            &a.id,
            Unlock::Biometric { prompt: "p" },
            &Protection::Biometric,
            7
        ),
        Err(UnlockError::Store(StoreError::InvalidInput { .. }))
    ));

    s.store
        .change_protection(&a.id, Unlock::Biometric { prompt: "p" }, &Protection::No, 8)
        .unwrap();
    assert_eq!(mode(&a.id), StoredAuthMode::No);
    assert!(
        !s.bio.has_key(&a.id),
        "the platform key is deleted after leaving BIOMETRIC"
    );
    assert_eq!(s.store.get_user(&a.id).unwrap().unwrap().secrets, a.secrets);
    // the other user never noticed
    assert_eq!(s.store.get_user(&b.id).unwrap().unwrap(), b);
}

#[test]
fn a_failed_switch_changes_nothing() {
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    // wrong current password: counted like any try, nothing else changes
    let result =
        s.store
            .change_protection(&a.id, Unlock::Password(&pw("wrong")), &Protection::No, 1);
    assert!(
        matches!(
            result,
            Err(UnlockError::WrongPassword {
                failed_attempts: 1,
                ..
            })
        ),
        "{result:?}"
    );
    // wrong unlock method: nothing counted
    let result = s
        .store
        .change_protection(&a.id, Unlock::No, &Protection::No, 1);
    assert!(
        matches!(result, Err(UnlockError::WrongUnlockMethod { .. })),
        "{result:?}"
    );
    assert_eq!(state(&s.store, &a.id).failed_attempts, 1);
    // the new mode's prompt is cancelled: still PASSWORD, no platform key left
    s.bio.script_next(ScriptedOutcome::Cancel);
    let result = s.store.change_protection(
        &a.id,
        Unlock::Password(&pw(PASSWORD)),
        &Protection::Biometric,
        2,
    );
    assert!(
        matches!(
            result,
            Err(UnlockError::Biometric(BiometricError::Cancelled))
        ),
        "{result:?}"
    );
    assert!(!s.bio.has_key(&a.id));
    // the right password was given: its attempt is not left counted
    assert_eq!(state(&s.store, &a.id).failed_attempts, 0);
    // the disk fails at the switch commit: the old mode still works
    s.backend.fail_after(1); // the counting commit passes, the switch fails
    let result = s.store.change_protection(
        &a.id,
        Unlock::Password(&pw(PASSWORD)),
        &Protection::Biometric,
        3,
    );
    assert!(
        matches!(result, Err(UnlockError::Store(StoreError::Backend(_)))),
        "{result:?}"
    );
    assert!(!s.bio.has_key(&a.id));
    s.backend.heal();
    let read = right(&s.store, &a.id, 4).unwrap();
    assert_eq!(read.secrets, a.secrets);
    assert_eq!(read.authentication_mode, StoredAuthMode::Password);
    assert_eq!(state(&s.store, &a.id).failed_attempts, 0);
    // empty new password: refused before anything
    assert!(matches!(
        s.store.change_protection(
            &a.id,
            Unlock::Password(&pw(PASSWORD)),
            &Protection::Password(pw("")),
            5
        ),
        Err(UnlockError::Store(StoreError::InvalidInput { .. }))
    ));

    // leaving BIOMETRIC: a cancelled prompt or a failed commit keeps the platform key
    let b = user("b");
    s.store.put_user(&b, &Protection::Biometric).unwrap();
    s.bio.script_next(ScriptedOutcome::Cancel);
    assert!(s
        .store
        .change_protection(&b.id, Unlock::Biometric { prompt: "p" }, &Protection::No, 6)
        .is_err());
    s.backend.fail_after(0);
    assert!(s
        .store
        .change_protection(&b.id, Unlock::Biometric { prompt: "p" }, &Protection::No, 6)
        .is_err());
    s.backend.heal();
    assert!(s.bio.has_key(&b.id));
    let read = s
        .store
        .unlock_user(&b.id, Unlock::Biometric { prompt: "p" }, 7)
        .unwrap();
    assert_eq!(read.secrets, b.secrets);
}

#[test]
fn errors_and_debug_output_carry_no_password() {
    let secret = "p4ssw0rd-MARKER";
    let printed = format!(
        "{:?} {:?}",
        Protection::Password(pw(secret)),
        Unlock::Password(&pw(secret))
    );
    assert!(!printed.contains(secret), "{printed}");
    let s = setup();
    let a = user("a");
    s.store
        .put_user(&a, &Protection::Password(pw(secret)))
        .unwrap();
    let error = s
        .store
        .unlock_user(&a.id, Unlock::Password(&pw("guess-MARKER")), 0)
        .unwrap_err();
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains("MARKER"), "{printed}");
    assert!(printed.contains("9 left"), "{printed}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn raw_store_files_hold_no_secret_in_any_mode() {
    let dir = tempfile::tempdir().unwrap();
    let bio_file = dir.path().join("biometric-keys.json");
    let passwords = ["first-PASSWORD-MARKER", "second-PASSWORD-MARKER"];
    {
        let bio = Arc::new(SoftwareBiometric::open_file(&bio_file).unwrap());
        let store = UserStore::open_default_with(dir.path(), Some(bio), test_settings()).unwrap();
        let (n, p, b) = (user("n"), user("p"), user("b"));
        store.put_user(&n, &Protection::No).unwrap();
        store
            .put_user(&p, &Protection::Password(pw(passwords[0])))
            .unwrap();
        store.put_user(&b, &Protection::Biometric).unwrap();
        // a lifecycle in every mode: unlocks, wrong tries, switches back and forth
        store.get_user(&n.id).unwrap().unwrap();
        let _ = store.unlock_user(&p.id, Unlock::Password(&pw("wrong-PASSWORD-MARKER")), 1);
        store
            .unlock_user(&p.id, Unlock::Password(&pw(passwords[0])), 2)
            .unwrap();
        store
            .unlock_user(&b.id, Unlock::Biometric { prompt: "p" }, 3)
            .unwrap();
        store
            .change_protection(
                &n.id,
                Unlock::No,
                &Protection::Password(pw(passwords[1])),
                4,
            )
            .unwrap();
        store
            .change_protection(
                &p.id,
                Unlock::Password(&pw(passwords[0])),
                &Protection::Biometric,
                5,
            )
            .unwrap();
        store
            .change_protection(&b.id, Unlock::Biometric { prompt: "p" }, &Protection::No, 6)
            .unwrap();
        store
            .unlock_user(&n.id, Unlock::Password(&pw(passwords[1])), 7)
            .unwrap();
        store
            .unlock_user(&p.id, Unlock::Biometric { prompt: "p" }, 8)
            .unwrap();
        store.get_user(&b.id).unwrap().unwrap();
    }
    let files = [
        std::fs::read(dir.path().join(DEFAULT_DB_FILE)).unwrap(),
        std::fs::read(dir.path().join(DEFAULT_KEY_FILE)).unwrap(),
        std::fs::read(&bio_file).unwrap(),
    ];
    // the search works: metadata is there in clear
    assert!(contains(&files[0], b"sub-p"));
    for file in &files {
        assert!(!contains(file, DEVICE_KEY_MARKER));
        assert!(!contains(file, TOKEN_MARKER.as_bytes()));
        assert!(!contains(file, b"MARKER"));
        for password in passwords {
            assert!(!contains(file, password.as_bytes()));
        }
    }
    // no key file appears inside another file
    assert!(!contains(&files[0], &files[1]));
}

/// Moving a pre-schema-3 anonymous user to its `sub` is one commit: when it fails (a full disk,
/// or a kill, which redb turns into "not committed") the user is whole under its old id, with
/// its lockout count, and nothing exists under the new one; the retry moves everything.
#[test]
fn a_failed_adopt_subject_commit_leaves_the_old_user_whole() {
    let s = setup();
    let old = UserId::new("demo", "client-of-device");
    let mut legacy = user("client-of-device");
    legacy.registration_client_id = None;
    s.store
        .put_user(&legacy, &Protection::Password(pw(PASSWORD)))
        .unwrap();
    assert!(wrong(&s.store, &old, 1).is_err());
    let new = UserId::new("demo", "sub-of-device");

    s.backend.fail_after(0);
    let failed = s.store.adopt_subject(&old, "sub-of-device");
    assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
    s.backend.heal();
    let ids: Vec<UserId> = s
        .store
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, vec![old.clone()]);
    assert_eq!(state(&s.store, &old).failed_attempts, 1);
    assert!(matches!(
        s.store.lockout_state(&new),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.store.last_user().unwrap(), Some(old.clone()));

    assert_eq!(s.store.adopt_subject(&old, "sub-of-device").unwrap(), new);
    // the lockout count moved with it; the password still opens the same key
    assert_eq!(state(&s.store, &new).failed_attempts, 1);
    let unlocked = right(&s.store, &new, 2).unwrap();
    assert_eq!(
        unlocked.secrets.device_key_pkcs8,
        legacy.secrets.device_key_pkcs8
    );
    assert_eq!(unlocked.oauth_client_id(), "client-of-device");
    assert_eq!(s.store.last_user().unwrap(), Some(new));
}
