//! Writes the committed seed corpus `fuzz/seeds/<target>/` from real components: requests
//! from docs/events.md read by mc-events, a JWKS and JWS made by mc-jose, IDP answers in the
//! dev IDP's form, and store dumps of the mc-store schema fixtures plus a store written by
//! `UserStore` now. Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml -p mc-runtime-fuzz-seedgen`
//! (a new key is generated each run, so the jose and store seeds change on every run).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_events::Request;
use mc_jose::{b64url_encode, JwkSet, SigningKey};
use mc_store::{
    EnrolledUser, KvBackend, MemoryBackend, Protection, RedbBackend, SecretBytes,
    StaticKeyProvider, StoredAuthMode, UserId, UserSecrets, UserStore,
};
use serde_json::{json, Map};

const TABLES: [&str; 5] = [
    "meta",
    "users",
    "user_secrets",
    "user_management",
    "user_lockout",
];

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let seeds = root.join("fuzz/seeds");
    request_json(&root, &seeds.join("request_json"));
    let (jwks, token) = jose(&seeds.join("jose"));
    oidc_responses(&seeds.join("oidc_responses"), &jwks, &token);
    store_records(&root, &seeds.join("store_records"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("seed directory");
    fs::write(dir.join(name), bytes).expect("seed file");
}

/// Every ```json block of docs/events.md that is a request, plus a few refused ones.
fn request_json(root: &Path, dir: &Path) {
    let doc = fs::read_to_string(root.join("docs/events.md")).expect("docs/events.md");
    let mut count = 0;
    for block in doc.split("```json").skip(1) {
        let Some((text, _)) = block.split_once("```") else {
            continue;
        };
        if let Ok(request) = Request::from_json(text) {
            count += 1;
            write(
                dir,
                &format!("doc-{count:02}-{}", request.event.name()),
                text.trim().as_bytes(),
            );
        }
    }
    assert!(count >= 5, "docs/events.md gave only {count} requests");
    for (name, text) in [
        (
            "bad-type",
            r#"{"type":"ExchangeIamTokenEvent","requestId":"r-1","audience":5}"#,
        ),
        (
            "bad-trace",
            r#"{"type":"GetStateEvent","traceContext":{"traceparent":"00-zz"}}"#,
        ),
        ("bad-kind", r#"{"type":"NoSuchEvent","requestId":"r-2"}"#),
        ("not-object", r#"[1,2,3]"#),
    ] {
        write(dir, name, text.as_bytes());
    }
}

/// `<JWKS> 0xFF <JWS>` as the jose target reads it.
fn jose(dir: &Path) -> (String, String) {
    let key = SigningKey::generate().expect("P-256 key");
    let other = SigningKey::generate().expect("P-256 key");
    let jwks = JwkSet {
        keys: vec![key.public_jwk(), other.public_jwk()],
    };
    let jwks = serde_json::to_string(&jwks).expect("JWKS");
    let claims = json!({"iss": "http://127.0.0.1:8080/realms/demo", "aud": ["api"], "sub": "s",
        "exp": 1_700_000_600, "iat": 1_700_000_000, "nbf": 1_700_000_000});
    let token = key.sign_jwt("JWT", Map::new(), &claims).expect("JWS");
    let mut dpop_header = Map::new();
    dpop_header.insert(
        "jwk".into(),
        serde_json::to_value(key.public_jwk()).expect("JWK"),
    );
    let dpop = key
        .sign_jwt(
            "dpop+jwt",
            dpop_header,
            &json!({"htm": "POST", "htu": "https://idp/token", "iat": 1, "jti": "j"}),
        )
        .expect("JWS");
    let none = format!(
        "{}.{}.",
        b64url_encode(br#"{"alg":"none"}"#),
        b64url_encode(br#"{"sub":"x"}"#)
    );
    let joined = |jwks: &str, token: &str| [jwks.as_bytes(), &[0xFF], token.as_bytes()].concat();
    write(dir, "jwks-and-token", &joined(&jwks, &token));
    write(dir, "jwks-and-dpop-proof", &joined(&jwks, &dpop));
    write(dir, "jwks-and-alg-none", &joined(&jwks, &none));
    write(
        dir,
        "jwk-only",
        serde_json::to_string(&key.public_jwk())
            .expect("JWK")
            .as_bytes(),
    );
    (jwks, token)
}

/// `[decoder][status index][body]` as the oidc_responses target reads it (status indexes:
/// 0 = 200, 1 = 201, 4 = 400, 5 = 401, 8 = 429, 11 = 503).
fn oidc_responses(dir: &Path, jwks: &str, token: &str) {
    let issuer = "http://127.0.0.1:8080/realms/demo";
    let discovery = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
        "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
        "registration_endpoint": format!("{issuer}/clients-registrations/openid-connect"),
        "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": ["ES256"],
    });
    let tokens = json!({"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": "openid"});
    let tokens_string_expiry =
        json!({"access_token": "opaque", "token_type": "DPoP", "expires_in": "60"});
    let registration = json!({
        "client_id": "c-123", "registration_access_token": "rat-secret",
        "registration_client_uri": format!("{issuer}/clients-registrations/openid-connect/c-123"),
        "token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
    });
    let seeds: [(&str, u8, u8, String); 10] = [
        ("discovery", 0, 0, discovery.to_string()),
        ("discovery-503", 0, 11, String::new()),
        ("jwks", 1, 0, jwks.to_owned()),
        ("token", 2, 0, tokens.to_string()),
        ("token-exchange", 3, 0, tokens.to_string()),
        (
            "token-string-expiry",
            2,
            0,
            tokens_string_expiry.to_string(),
        ),
        (
            "token-error",
            3,
            4,
            json!({"error": "invalid_client", "error_description": "Audience not found"})
                .to_string(),
        ),
        ("registration", 4, 1, registration.to_string()),
        (
            "registration-refused",
            4,
            5,
            json!({"error": "invalid_token"}).to_string(),
        ),
        (
            "error-dpop-nonce",
            5,
            4,
            json!({"error": "use_dpop_nonce"}).to_string(),
        ),
    ];
    for (name, decoder, status, body) in seeds {
        write(dir, name, &[&[decoder, status], body.as_bytes()].concat());
    }
}

/// `[key selector]` then `[table][key len u8][key][value len u16 LE][value]` per row.
fn dump(selector: u8, backend: &dyn KvBackend) -> Vec<u8> {
    let mut out = vec![selector];
    for (index, table) in TABLES.iter().enumerate() {
        for key in backend.keys(table).expect("keys") {
            let value = backend.get(table, &key).expect("get").expect("listed");
            out.push(index as u8);
            out.push(u8::try_from(key.len()).expect("short key"));
            out.extend_from_slice(&key);
            out.extend_from_slice(
                &u16::try_from(value.len())
                    .expect("short value")
                    .to_le_bytes(),
            );
            out.extend_from_slice(&value);
        }
    }
    out
}

fn store_records(root: &Path, dir: &Path) {
    let fixtures = root.join("crates/mc-store/tests/fixtures");
    for (selector, schema) in [(1u8, "schema-v1"), (0u8, "schema-v2")] {
        // redb opens its file for writing: read a copy.
        let copy =
            std::env::temp_dir().join(format!("mc-fuzz-seed-{schema}-{}.redb", std::process::id()));
        fs::copy(fixtures.join(schema).join("users.redb"), &copy).expect("fixture copy");
        let backend = RedbBackend::open(&copy).expect("fixture opens");
        write(dir, &format!("fixture-{schema}"), &dump(selector, &backend));
        drop(backend);
        let _ = fs::remove_file(&copy);
    }
    // A store written now, under the schema 2 fixture key the target uses for selector 0.
    let key = fs::read(fixtures.join("schema-v2/store.key")).expect("fixture key");
    let backend = Arc::new(MemoryBackend::new());
    let keys = Arc::new(StaticKeyProvider::new(SecretBytes::new(key)).expect("32 bytes"));
    let store = UserStore::open(backend.clone(), keys).expect("store");
    let device_key = SigningKey::generate().expect("key").to_pkcs8();
    let user = EnrolledUser {
        id: UserId::new("demo", "c-123"),
        enrollment_client_id: "AnonymousUserEnrollment".into(),
        server_url: "http://127.0.0.1:8080".into(),
        issuer: "http://127.0.0.1:8080/realms/demo".into(),
        registration_client_uri: Some("http://127.0.0.1:8080/register/c-123".into()),
        registration_client_id: None,
        redirect_uri: None,
        authentication_mode: StoredAuthMode::No,
        subject: Some("sub-1".into()),
        created_at: 1_700_000_000,
        last_login_at: None,
        secrets: UserSecrets {
            device_key_pkcs8: device_key,
            registration_access_token: Some("rat-secret".into()),
        },
    };
    store.put_user(&user, &Protection::No).expect("put");
    assert!(store.get_user(&user.id).expect("get").is_some());
    write(dir, "fresh-mode-no", &dump(0, backend.as_ref()));
}
