//! Writes the schema fixture of the CURRENT version into `tests/fixtures/schema-v{N}/`, where a
//! later version's test (`schema_migration.rs`) checks that it still opens it.
//!
//! Run by hand, once per schema version, and commit the output:
//! `cargo test -p mc-store --test schema_fixture -- --ignored`
//! It writes `users.redb`, `store.key` (0600 here, but git does not keep modes: readers copy
//! and chmod it), from schema 2 on `biometric-keys.json` (the `SoftwareBiometric` keys), and
//! `expected.json`: the users' ids, metadata, protection and the SHA-256 of each secret, never
//! a secret itself. The PASSWORD user's password is a fixture value written in the JSON, and
//! its KDF runs 1,000 iterations (test settings) so the test that reads it stays fast.

use std::path::PathBuf;
use std::sync::Arc;

use mc_store::{
    EnrolledUser, KdfSettings, Protection, SecretBytes, SecretString, SoftwareBiometric,
    StoreSettings, StoredAuthMode, UserId, UserSecrets, UserStore, DEFAULT_DB_FILE,
    DEFAULT_KEY_FILE, SCHEMA_VERSION,
};
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const FIXTURE_PASSWORD: &str = "fixture-password-not-a-secret";
const FIXTURE_ITERATIONS: u32 = 1_000;
const BIOMETRIC_FILE: &str = "biometric-keys.json";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest(&SHA256, bytes).as_ref())
}

fn user(tenant: &str, client: &str, created_at: i64) -> EnrolledUser {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
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
        created_at,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: SecretBytes::new(pkcs8.as_ref().to_vec()),
            registration_access_token: Some(SecretString::new(format!(
                "rat-{client}-{}",
                hex(&digest(&SHA256, pkcs8.as_ref()).as_ref()[..8])
            ))),
        },
    }
}

#[test]
#[ignore = "writes the committed fixture; run by hand once per schema version"]
fn write_schema_fixture_of_the_current_version() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("schema-v{SCHEMA_VERSION}"));
    assert!(
        !out.exists(),
        "{} exists: a committed fixture is never rewritten",
        out.display()
    );
    let mut users = vec![
        (user("demo", "device-a", 1_700_000_000), Protection::No),
        (
            user("other-tenant", "device-b", 1_700_000_500),
            Protection::No,
        ),
    ];
    // Schema 1 knew mode NO only.
    if SCHEMA_VERSION >= 2 {
        users.push((
            user("demo", "device-c", 1_700_001_000),
            Protection::Password(SecretString::new(FIXTURE_PASSWORD)),
        ));
        users.push((
            user("demo", "device-d", 1_700_002_000),
            Protection::Biometric,
        ));
    }
    let mut files = vec![DEFAULT_DB_FILE, DEFAULT_KEY_FILE];
    {
        std::fs::create_dir_all(&out).unwrap();
        let biometric = if SCHEMA_VERSION >= 2 {
            files.push(BIOMETRIC_FILE);
            let provider = SoftwareBiometric::open_file(out.join(BIOMETRIC_FILE)).unwrap();
            Some(Arc::new(provider) as Arc<dyn mc_store::BiometricKeyProvider>)
        } else {
            None
        };
        let settings = StoreSettings {
            kdf: KdfSettings::for_tests(FIXTURE_ITERATIONS),
            ..StoreSettings::default()
        };
        let store = UserStore::open_default_with(&out, biometric, settings).unwrap();
        for (u, protection) in &users {
            store.put_user(u, protection).unwrap();
        }
        if SCHEMA_VERSION >= 3 {
            // Schema 3 names users by their `sub`: the first two as an enrollment writes
            // them, the PASSWORD and BIOMETRIC ones moved from their client_id by a login
            // (`adopt_subject`: `sealed_as` in the record), so both forms are guarded.
            for (index, (u, _)) in users.iter_mut().enumerate() {
                let client = u.id.user_id.clone();
                let sub = format!("sub-{client}");
                if index < 2 {
                    store.delete_user(&u.id).unwrap();
                    u.id = UserId::new(u.id.tenant_id.clone(), sub);
                    u.registration_client_id = Some(client);
                } else {
                    u.id = store.adopt_subject(&u.id, &sub).unwrap();
                    u.registration_client_id = Some(client);
                }
            }
            for (u, protection) in users.iter().take(2) {
                store.put_user(u, protection).unwrap();
            }
        }
        store.set_last_user(&users[0].0.id).unwrap();
        store.record_login(&users[0].0.id, 1_700_000_100).unwrap();
    }
    let expected: Vec<serde_json::Value> = users
        .iter()
        .map(|(u, protection)| {
            let last_login_at = (u.id == users[0].0.id).then_some(1_700_000_100i64);
            let password = match protection {
                Protection::Password(password) => Some(password.expose().to_string()),
                _ => None,
            };
            serde_json::json!({
                "tenant_id": u.id.tenant_id,
                "user_id": u.id.user_id,
                "enrollment_client_id": u.enrollment_client_id,
                "server_url": u.server_url,
                "issuer": u.issuer,
                "registration_client_uri": u.registration_client_uri,
                "registration_client_id": u.registration_client_id,
                "authentication_mode": protection.mode().as_str(),
                "fixture_password": password,
                "subject": u.subject,
                "created_at": u.created_at,
                "last_login_at": last_login_at,
                "device_key_sha256": sha256_hex(u.secrets.device_key_pkcs8.expose()),
                "registration_access_token_sha256": u
                    .secrets
                    .registration_access_token
                    .as_ref()
                    .map(|t| sha256_hex(t.expose().as_bytes())),
            })
        })
        .collect();
    let document = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "files": files,
        "kdf_iterations": FIXTURE_ITERATIONS,
        "last_user": { "tenant_id": users[0].0.id.tenant_id, "user_id": users[0].0.id.user_id },
        "users": expected,
    });
    std::fs::write(
        out.join("expected.json"),
        serde_json::to_string_pretty(&document).unwrap() + "\n",
    )
    .unwrap();
}
