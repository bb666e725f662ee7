//! What an unlock costs, each beside the bare ring operations it is made of, measured in the
//! same run:
//! - `password_unlock`: UserStore::unlock_user in mode PASSWORD with the product KDF
//!   (PBKDF2-HMAC-SHA256, 600,000 iterations) vs `ring::pbkdf2::derive` alone. Slow by design.
//!   Mode PIN beside it: the same KDF plus one AES-256-GCM open under the KeyProvider key.
//! - `offline_login_no`: what an OfflineLogin in mode NO does before the network: open the
//!   store from disk, unlock (unwrap data key, open secrets), load the ES256 key and sign a
//!   client assertion; vs the bare ring steps (two AES-256-GCM opens, key load, one signature).

use std::num::NonZeroU32;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mc_jose::SigningKey;
use mc_secret::{SecretBytes, SecretString};
use mc_store::{
    EnrolledUser, MemoryBackend, Protection, StaticKeyProvider, StoreSettings, StoredAuthMode,
    Unlock, UserId, UserSecrets, UserStore,
};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

fn user(key: &SigningKey, mode: StoredAuthMode) -> EnrolledUser {
    EnrolledUser {
        id: UserId::new("demo", "bench-client"),
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "https://idp.example".into(),
        issuer: "https://idp.example/realms/demo".into(),
        registration_client_uri: Some("https://idp.example/reg/bench-client".into()),
        registration_client_id: None,
        redirect_uri: None,
        authentication_mode: mode,
        subject: None,
        created_at: 0,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: key.to_pkcs8(),
            registration_access_token: Some(SecretString::new("registration-token")),
        },
    }
}

fn assertion(key: &SigningKey) -> String {
    let claims = serde_json::json!({"iss": "bench-client", "sub": "bench-client", "aud": "https://idp.example/realms/demo", "jti": "x", "iat": 0, "exp": 60});
    key.sign_jwt("JWT", serde_json::Map::new(), &claims)
        .unwrap()
}

fn password_unlock(c: &mut Criterion) {
    let mut group = c.benchmark_group("password_unlock");
    group.sample_size(10);
    let store = UserStore::open_with(
        Arc::new(MemoryBackend::new()),
        Arc::new(StaticKeyProvider::random().unwrap()),
        None,
        StoreSettings::default(),
    )
    .unwrap();
    let key = SigningKey::generate().unwrap();
    let password = SecretString::new("correct horse battery staple");
    store
        .put_user(
            &user(&key, StoredAuthMode::Password),
            &Protection::Password(password.clone()),
        )
        .unwrap();
    let id = UserId::new("demo", "bench-client");
    let iterations = StoreSettings::default().kdf.pbkdf2_iterations;
    group.bench_function("baseline: ring pbkdf2 derive (600k iterations)", |b| {
        let salt = [7u8; 16];
        let mut out = [0u8; 32];
        b.iter(|| {
            ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                NonZeroU32::new(iterations).unwrap(),
                &salt,
                password.expose().as_bytes(),
                &mut out,
            )
        })
    });
    group.bench_function("UserStore::unlock_user (PASSWORD)", |b| {
        b.iter(|| {
            store
                .unlock_user(&id, Unlock::Password(&password), 0)
                .unwrap()
        })
    });
    // Mode PIN: the same KDF and seal, plus the outer seal under the KeyProvider key.
    let pin = SecretString::new("482916");
    let mut pin_user = user(&key, StoredAuthMode::Pin);
    pin_user.id = UserId::new("demo", "bench-pin-client");
    store
        .put_user(&pin_user, &Protection::Pin(pin.clone()))
        .unwrap();
    group.bench_function("UserStore::unlock_user (PIN)", |b| {
        b.iter(|| {
            store
                .unlock_user(&pin_user.id, Unlock::Pin(&pin), 0)
                .unwrap()
        })
    });
    group.finish();
}

fn offline_login_no(c: &mut Criterion) {
    let mut group = c.benchmark_group("offline_login_no");
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    {
        let store = UserStore::open_default(dir.path()).unwrap();
        store
            .put_user(&user(&key, StoredAuthMode::No), &Protection::No)
            .unwrap();
    }
    let id = UserId::new("demo", "bench-client");
    // Baseline: the same crypto, bare: two AES-256-GCM opens (data key, secrets), key load, sign.
    let wrap_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1u8; 32]).unwrap());
    let seal = |plain: &[u8]| {
        let mut buf = plain.to_vec();
        wrap_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([0u8; 12]),
                Aad::empty(),
                &mut buf,
            )
            .unwrap();
        buf
    };
    let sealed_data_key = seal(&[2u8; 32]);
    let sealed_secrets = seal(key.to_pkcs8().expose());
    group.bench_function("baseline: ring AES-GCM x2 + key load + ES256 sign", |b| {
        b.iter(|| {
            let mut data_key = sealed_data_key.clone();
            let opened = wrap_key
                .open_in_place(
                    Nonce::assume_unique_for_key([0u8; 12]),
                    Aad::empty(),
                    &mut data_key,
                )
                .unwrap()
                .to_vec();
            let inner = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &opened).unwrap());
            let _ = inner;
            let mut secrets = sealed_secrets.clone();
            let pkcs8 = wrap_key
                .open_in_place(
                    Nonce::assume_unique_for_key([0u8; 12]),
                    Aad::empty(),
                    &mut secrets,
                )
                .unwrap();
            let key = SigningKey::from_pkcs8(&SecretBytes::new(pkcs8.to_vec())).unwrap();
            assertion(&key)
        })
    });
    group.bench_function("store open + unlock (NO) + key load + ES256 sign", |b| {
        b.iter(|| {
            let store = UserStore::open_default(dir.path()).unwrap();
            let user = store.unlock_user(&id, Unlock::No, 0).unwrap();
            let key = SigningKey::from_pkcs8(&user.secrets.device_key_pkcs8).unwrap();
            assertion(&key)
        })
    });
    group.bench_function(
        "unlock (NO, store already open) + key load + ES256 sign",
        |b| {
            let store = UserStore::open_default(dir.path()).unwrap();
            b.iter(|| {
                let user = store.unlock_user(&id, Unlock::No, 0).unwrap();
                let key = SigningKey::from_pkcs8(&user.secrets.device_key_pkcs8).unwrap();
                assertion(&key)
            })
        },
    );
    group.finish();
}

criterion_group!(benches, password_unlock, offline_login_no);
criterion_main!(benches);
