//! The development IDP over real HTTP on 127.0.0.1, driven by reqwest with mc-jose acting as a device.

use std::net::SocketAddr;

use mc_devidp::{DevIdp, DevIdpConfig, Stats};
use mc_jose::{random_token, unix_now, verify_es256, ClaimChecks, JwkSet, Jwt, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start(config: DevIdpConfig) -> DevIdp {
    DevIdp::start(any_port(), config).await.unwrap()
}

/// A device as the runtime would be: its own key, and what registration gave it.
struct Device {
    key: SigningKey,
    client_id: String,
    registration_access_token: String,
    registration_client_uri: String,
    issuer: String,
    token_endpoint: String,
}

impl Device {
    fn assertion_with(&self, claims: Value) -> String {
        self.key
            .sign_jwt("JWT", serde_json::Map::new(), &claims)
            .unwrap()
    }

    fn assertion(&self) -> String {
        let now = unix_now();
        self.assertion_with(json!({
            "iss": self.client_id, "sub": self.client_id, "aud": self.issuer,
            "jti": random_token(16), "iat": now, "exp": now + 60,
        }))
    }

    async fn token_request(
        &self,
        http: &reqwest::Client,
        assertion: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(extra);
        http.post(&self.token_endpoint)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, http: &reqwest::Client) -> reqwest::Response {
        self.token_request(
            http,
            &self.assertion(),
            &[("grant_type", "client_credentials")],
        )
        .await
    }

    async fn login_token(&self, http: &reqwest::Client) -> String {
        let response = self.login(http).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn exchange(
        &self,
        http: &reqwest::Client,
        subject_token: &str,
        audience: &str,
    ) -> reqwest::Response {
        self.token_request(
            http,
            &self.assertion(),
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject_token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
                ("audience", audience),
            ],
        )
        .await
    }
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Value {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn registration_body(key: &SigningKey) -> Value {
    json!({
        "client_name": "test device",
        "software_id": "AnonymousUserEnrollment",
        "grant_types": ["client_credentials", TOKEN_EXCHANGE],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": { "keys": [key.public_jwk()] },
    })
}

async fn post_registration(
    http: &reqwest::Client,
    issuer: &str,
    body: &Value,
) -> reqwest::Response {
    let discovery = discover(http, issuer).await;
    let endpoint = discovery["registration_endpoint"].as_str().unwrap();
    http.post(endpoint).json(body).send().await.unwrap()
}

async fn enroll(http: &reqwest::Client, idp: &DevIdp, tenant: &str) -> Device {
    enroll_with_key(http, idp, tenant, SigningKey::generate().unwrap()).await
}

async fn enroll_with_key(
    http: &reqwest::Client,
    idp: &DevIdp,
    tenant: &str,
    key: SigningKey,
) -> Device {
    let issuer = idp.issuer(tenant);
    let discovery = discover(http, &issuer).await;
    let response = post_registration(http, &issuer, &registration_body(&key)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    Device {
        key,
        client_id: body["client_id"].as_str().unwrap().to_owned(),
        registration_access_token: body["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        registration_client_uri: body["registration_client_uri"].as_str().unwrap().to_owned(),
        token_endpoint: discovery["token_endpoint"].as_str().unwrap().to_owned(),
        issuer,
    }
}

async fn tenant_jwks(http: &reqwest::Client, issuer: &str) -> JwkSet {
    let discovery = discover(http, issuer).await;
    let url = discovery["jwks_uri"].as_str().unwrap();
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"].is_string(),
        "error body without description: {body}"
    );
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_the_exact_issuer() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let issuer = idp.issuer("demo");
    assert_eq!(issuer, format!("{}/realms/demo", idp.base_url()));
    let response = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().contains_key("date"),
        "Date header is needed for clock offset"
    );
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], json!(issuer));
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{issuer}/protocol/openid-connect/token"))
    );
    assert_eq!(
        doc["jwks_uri"],
        json!(format!("{issuer}/protocol/openid-connect/certs"))
    );
    assert_eq!(
        doc["registration_endpoint"],
        json!(format!("{issuer}/clients-registrations/openid-connect"))
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt", "none"])
    );
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let grants = doc["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")));
    assert!(grants.contains(&json!(TOKEN_EXCHANGE)));

    let jwks = tenant_jwks(&http, &issuer).await;
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kty, "EC");
    assert_eq!(jwks.keys[0].crv.as_deref(), Some("P-256"));

    // Unknown tenant and unknown path: 404 with an OAuth-style JSON body.
    let response = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            idp.issuer("nope")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let response = http
        .get(format!("{}/nothing/here", idp.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn several_tenants_have_their_own_issuer_and_key() {
    let config = DevIdpConfig {
        tenants: vec!["demo".into(), "other".into()],
        ..DevIdpConfig::default()
    };
    let idp = start(config).await;
    let http = http();
    let demo = tenant_jwks(&http, &idp.issuer("demo")).await;
    let other = tenant_jwks(&http, &idp.issuer("other")).await;
    assert_ne!(demo.keys[0].kid, other.keys[0].kid);
    let device = enroll(&http, &idp, "other").await;
    assert!(idp.client_exists("other", &device.client_id));
    assert!(!idp.client_exists("demo", &device.client_id));
    let token = device.login_token(&http).await;
    assert!(verify_es256(&token, &other).is_ok());
    assert!(verify_es256(&token, &demo).is_err());
}

#[tokio::test]
async fn registered_device_logs_in_and_its_token_verifies_with_the_right_claims() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    assert!(idp.client_exists("demo", &device.client_id));
    assert_eq!(
        device.registration_client_uri,
        format!(
            "{}/clients-registrations/openid-connect/{}",
            device.issuer, device.client_id
        )
    );

    let response = device.login(&http).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("refresh_token").is_none());

    let jwks = tenant_jwks(&http, &device.issuer).await;
    let token = verify_es256(body["access_token"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(token.header["typ"], "at+jwt");
    assert_eq!(token.kid(), jwks.keys[0].kid.as_deref());
    token
        .check(&ClaimChecks {
            issuer: Some(&device.issuer),
            audience: Some(&device.client_id),
            now: unix_now(),
            leeway: 0,
        })
        .unwrap();
    let sub = token.claim_str("sub").unwrap();
    assert!(
        uuid::Uuid::parse_str(sub).is_ok(),
        "sub must be a UUID: {sub}"
    );
    assert_eq!(token.claim_str("azp"), Some(device.client_id.as_str()));
    assert_eq!(
        token.claim_str("client_id"),
        Some(device.client_id.as_str())
    );
    assert_eq!(token.claim_str("acr"), Some("0"));
    assert_eq!(token.claim_str("scope"), Some("openid"));
    assert!(token.claim_str("jti").is_some());
    let iat = token.claim_i64("iat").unwrap();
    assert_eq!(token.claim_i64("exp").unwrap() - iat, 300);

    // Logging in again gives the same anonymous user.
    let again = device.login_token(&http).await;
    let again = Jwt::decode_unverified(&again).unwrap();
    assert_eq!(again.claim_str("sub"), Some(sub));

    // The registration can be read back with its access token (RFC 7592).
    let read = http
        .get(&device.registration_client_uri)
        .bearer_auth(&device.registration_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], json!(device.client_id));
    assert_eq!(read["software_id"], "AnonymousUserEnrollment");
}

#[tokio::test]
async fn registration_refuses_bad_metadata() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let issuer = idp.issuer("demo");
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();

    let mut unknown_software = registration_body(&key);
    unknown_software["software_id"] = json!("SomeOtherClient");
    let mut no_software = registration_body(&key);
    no_software.as_object_mut().unwrap().remove("software_id");
    let mut secret_method = registration_body(&key);
    secret_method["token_endpoint_auth_method"] = json!("client_secret_basic");
    let mut no_jwks = registration_body(&key);
    no_jwks.as_object_mut().unwrap().remove("jwks");
    let mut two_keys = registration_body(&key);
    two_keys["jwks"] = json!({ "keys": [key.public_jwk(), other.public_jwk()] });
    let mut private_part = registration_body(&key);
    private_part["jwks"]["keys"][0]["d"] = json!("AAAA");
    let mut rsa_key = registration_body(&key);
    rsa_key["jwks"] = json!({ "keys": [{ "kty": "RSA", "n": "AQAB", "e": "AQAB" }] });
    let mut code_grant = registration_body(&key);
    code_grant["grant_types"] = json!(["authorization_code"]);

    for (name, body) in [
        ("unknown software_id", unknown_software),
        ("no software_id", no_software),
        ("client secret method", secret_method),
        ("no jwks", no_jwks),
        ("two keys", two_keys),
        ("private key part", private_part),
        ("RSA key", rsa_key),
        ("authorization_code grant", code_grant),
    ] {
        let response = post_registration(&http, &issuer, &body).await;
        let (status, error) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            error == "invalid_client_metadata" || error == "invalid_software_statement",
            "{name}: {error}"
        );
    }
    let response = http
        .post(format!("{issuer}/clients-registrations/openid-connect"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_client_metadata".into())
    );
    assert_eq!(idp.stats().registration, 9);
}

#[tokio::test]
async fn max_clients_limit_answers_403() {
    let config = DevIdpConfig {
        max_clients: Some(1),
        ..DevIdpConfig::default()
    };
    let idp = start(config).await;
    let http = http();
    let first = enroll(&http, &idp, "demo").await;
    let key = SigningKey::generate().unwrap();
    let response = post_registration(&http, &idp.issuer("demo"), &registration_body(&key)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Deleting the first frees the place.
    let deleted = http
        .delete(&first.registration_client_uri)
        .bearer_auth(&first.registration_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let response = post_registration(&http, &idp.issuer("demo"), &registration_body(&key)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn exchange_to_demo_api_keeps_the_user_and_names_the_audience() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let device_token = device.login_token(&http).await;
    let response = device.exchange(&http, &device_token, "demo-api").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    let jwks = tenant_jwks(&http, &device.issuer).await;
    let iam = verify_es256(body["access_token"].as_str().unwrap(), &jwks).unwrap();
    iam.check(&ClaimChecks {
        issuer: Some(&device.issuer),
        audience: Some("demo-api"),
        now: unix_now(),
        leeway: 0,
    })
    .unwrap();
    let device_claims = Jwt::decode_unverified(&device_token).unwrap();
    assert_eq!(iam.claim_str("sub"), device_claims.claim_str("sub"));
    assert_eq!(iam.claim_str("azp"), Some(device.client_id.as_str()));
}

#[tokio::test]
async fn exchange_refuses_the_enrollment_client_unknown_audiences_and_foreign_subject_tokens() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let other = enroll(&http, &idp, "demo").await;
    let device_token = device.login_token(&http).await;
    for audience in ["AnonymousUserEnrollment", "unknown-api"] {
        let response = device.exchange(&http, &device_token, audience).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_target".into()),
            "{audience}"
        );
    }
    // Another device cannot exchange this device's token.
    let response = other.exchange(&http, &device_token, "demo-api").await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    // A subject token that is not ours at all.
    let forged = other.assertion();
    let response = device.exchange(&http, &forged, "demo-api").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_authentication_refuses_replays_foreign_keys_and_bad_claims() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let cc = [("grant_type", "client_credentials")];

    // Reused jti.
    let assertion = device.assertion();
    assert_eq!(
        device.token_request(&http, &assertion, &cc).await.status(),
        StatusCode::OK
    );
    let replay = device.token_request(&http, &assertion, &cc).await;
    assert_eq!(
        error_of(replay).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );

    // Signed by another key with the right claims.
    let thief = Device {
        key: SigningKey::generate().unwrap(),
        client_id: device.client_id.clone(),
        registration_access_token: String::new(),
        registration_client_uri: String::new(),
        issuer: device.issuer.clone(),
        token_endpoint: device.token_endpoint.clone(),
    };
    let response = thief.login(&http).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );

    let now = unix_now();
    let id = device.client_id.as_str();
    let token_endpoint = device.token_endpoint.as_str();
    let bad_claims = [
        (
            "wrong aud",
            json!({"iss": id, "sub": id, "aud": "https://elsewhere", "jti": random_token(8), "exp": now + 60}),
        ),
        (
            "no exp",
            json!({"iss": id, "sub": id, "aud": device.issuer, "jti": random_token(8)}),
        ),
        (
            "expired",
            json!({"iss": id, "sub": id, "aud": device.issuer, "jti": random_token(8), "exp": now - 120}),
        ),
        (
            "exp too far",
            json!({"iss": id, "sub": id, "aud": device.issuer, "jti": random_token(8), "exp": now + 3600}),
        ),
        (
            "no jti",
            json!({"iss": id, "sub": id, "aud": device.issuer, "exp": now + 60}),
        ),
        (
            "sub differs",
            json!({"iss": id, "sub": "someone", "aud": device.issuer, "jti": random_token(8), "exp": now + 60}),
        ),
    ];
    for (name, claims) in bad_claims {
        let response = device
            .token_request(&http, &device.assertion_with(claims), &cc)
            .await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into()),
            "{name}"
        );
    }
    // The token endpoint as aud, and a small clock skew, are fine.
    let good = json!({"iss": id, "sub": id, "aud": token_endpoint, "jti": random_token(8), "iat": now + 30, "exp": now + 90});
    let response = device
        .token_request(&http, &device.assertion_with(good), &cc)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // No assertion at all, and a client secret instead.
    let response = http
        .post(&device.token_endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn token_endpoint_answers_bad_forms_and_unknown_grants() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let response = http
        .post(&device.token_endpoint)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let response = device
        .token_request(&http, &device.assertion(), &[("grant_type", "password")])
        .await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
    let response = device
        .token_request(
            &http,
            &device.assertion(),
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn delete_needs_the_registration_token_and_then_login_fails() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let response = http
        .delete(&device.registration_client_uri)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    let response = http
        .delete(&device.registration_client_uri)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(idp.client_exists("demo", &device.client_id));

    let response = http
        .delete(&device.registration_client_uri)
        .bearer_auth(&device.registration_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!idp.client_exists("demo", &device.client_id));

    let response = device.login(&http).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    // Deleting again: the client is gone, so its token no longer opens anything.
    let response = http
        .delete(&device.registration_client_uri)
        .bearer_auth(&device.registration_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(idp.stats().registration_delete, 4);
}

#[tokio::test]
async fn echo_accepts_only_demo_api_tokens() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let device_token = device.login_token(&http).await;
    let response = device.exchange(&http, &device_token, "demo-api").await;
    let body: Value = response.json().await.unwrap();
    let iam_token = body["access_token"].as_str().unwrap().to_owned();
    let echo = format!("{}/demo/echo", idp.base_url());

    let response = http
        .post(format!("{echo}?a=1&b=two"))
        .bearer_auth(&iam_token)
        .header("content-type", "text/plain")
        .header("x-request-id", "req-42")
        .body("hello idp")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let sub = Jwt::decode_unverified(&device_token)
        .unwrap()
        .claim_str("sub")
        .unwrap()
        .to_owned();
    assert_eq!(answer["method"], "POST");
    assert_eq!(answer["path"], "/demo/echo");
    assert_eq!(answer["query"], "a=1&b=two");
    assert_eq!(answer["body"], "hello idp");
    assert_eq!(answer["sub"], json!(sub));
    assert_eq!(answer["aud"], "demo-api");
    assert_eq!(answer["headers"]["x-request-id"], "req-42");
    assert_eq!(answer["headers"]["content-type"], "text/plain");
    assert!(answer["headers"].get("authorization").is_none());

    let response = http
        .get(&echo)
        .bearer_auth(&iam_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["method"], "GET");
    assert_eq!(answer["query"], Value::Null);

    // The device token (aud = client_id) is refused, as is no token at all.
    for token in [Some(device_token.as_str()), Some("not.a.jwt"), None] {
        let mut request = http.get(&echo);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        // Never echo a token back in the challenge or body.
        let text = response.text().await.unwrap();
        assert!(!text.contains(&device_token));
    }
    assert_eq!(idp.stats().echo, 5);
}

#[tokio::test]
async fn state_dir_keeps_keys_and_registrations_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevIdpConfig {
        state_dir: Some(dir.path().join("idp")),
        ..DevIdpConfig::default()
    };
    let idp = start(config.clone()).await;
    let addr = idp.local_addr();
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let removed = enroll(&http, &idp, "demo").await;
    let deleted = http
        .delete(&removed.registration_client_uri)
        .bearer_auth(&removed.registration_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let first_token = device.login_token(&http).await;
    let jwks_before = tenant_jwks(&http, &device.issuer).await;
    idp.shutdown().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("idp/devidp-state.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Same address, so the same issuer.
    let idp = DevIdp::start(addr, config.clone()).await.unwrap();
    let http = self::http();
    assert!(idp.client_exists("demo", &device.client_id));
    assert!(!idp.client_exists("demo", &removed.client_id));
    let jwks_after = tenant_jwks(&http, &device.issuer).await;
    assert_eq!(jwks_before.keys, jwks_after.keys);
    // Tokens issued before the restart still verify, and the device logs in as the same user.
    assert!(verify_es256(&first_token, &jwks_after).is_ok());
    let token = device.login_token(&http).await;
    let before = Jwt::decode_unverified(&first_token).unwrap();
    let after = Jwt::decode_unverified(&token).unwrap();
    assert_eq!(before.claim_str("sub"), after.claim_str("sub"));
    let response = removed.login(&http).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    idp.shutdown().await;

    // Without state_dir a restart forgets everything.
    let idp = start(DevIdpConfig::default()).await;
    let http = self::http();
    let device = enroll(&http, &idp, "demo").await;
    let addr = idp.local_addr();
    idp.shutdown().await;
    let _idp = DevIdp::start(addr, DevIdpConfig::default()).await.unwrap();
    let response = device.login(&http).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("devidp-state.json"), "{ not json").unwrap();
    let config = DevIdpConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..DevIdpConfig::default()
    };
    let error = DevIdp::start(any_port(), config).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("devidp-state.json"), "{message}");
    assert!(message.contains("remove"), "{message}");
}

#[tokio::test]
async fn fault_sign_with_foreign_key_gives_tokens_the_jwks_does_not_verify() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let jwks = tenant_jwks(&http, &device.issuer).await;
    idp.faults().set_sign_with_foreign_key(true);
    assert!(idp.faults().sign_with_foreign_key());
    let token = device.login_token(&http).await;
    assert!(verify_es256(&token, &jwks).is_err());
    let decoded = Jwt::decode_unverified(&token).unwrap();
    let kid = decoded.kid().unwrap();
    assert_ne!(Some(kid), jwks.keys[0].kid.as_deref());
    assert_eq!(
        kid.len(),
        jwks.keys[0].kid.as_deref().unwrap().len(),
        "same kid shape"
    );
    // The JWKS did not change, and the foreign-signed token opens nothing.
    assert_eq!(tenant_jwks(&http, &device.issuer).await.keys, jwks.keys);
    idp.faults().set_sign_with_foreign_key(false);
    let response = device.exchange(&http, &token, "demo-api").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let token = device.login_token(&http).await;
    assert!(verify_es256(&token, &jwks).is_ok());
}

#[tokio::test]
async fn fault_wrong_token_issuer_gives_tokens_of_another_issuer() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let jwks = tenant_jwks(&http, &device.issuer).await;
    idp.faults().set_wrong_token_issuer(true);
    let token = device.login_token(&http).await;
    let verified = verify_es256(&token, &jwks).unwrap();
    assert_ne!(verified.claim_str("iss"), Some(device.issuer.as_str()));
    let checks = ClaimChecks {
        issuer: Some(&device.issuer),
        audience: None,
        now: unix_now(),
        leeway: 60,
    };
    assert!(verified.check(&checks).is_err());
    idp.faults().clear_all();
    let token = device.login_token(&http).await;
    assert!(verify_es256(&token, &jwks).unwrap().check(&checks).is_ok());
}

#[tokio::test]
async fn fault_wrong_discovery_issuer_changes_only_the_issuer() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let issuer = idp.issuer("demo");
    idp.faults().set_wrong_discovery_issuer(true);
    let doc = discover(&http, &issuer).await;
    assert_ne!(doc["issuer"], json!(issuer));
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{issuer}/protocol/openid-connect/token"))
    );
    idp.faults().set_wrong_discovery_issuer(false);
    assert_eq!(discover(&http, &issuer).await["issuer"], json!(issuer));
}

#[tokio::test]
async fn fault_reject_all_tokens_answers_invalid_client() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    let device = enroll(&http, &idp, "demo").await;
    let device_token = device.login_token(&http).await;
    idp.faults().set_reject_all_tokens_with_invalid_client(true);
    let response = device.login(&http).await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let response = device.exchange(&http, &device_token, "demo-api").await;
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    // The registration itself is untouched.
    assert!(idp.client_exists("demo", &device.client_id));
    idp.faults()
        .set_reject_all_tokens_with_invalid_client(false);
    assert_eq!(device.login(&http).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn stats_count_every_endpoint() {
    let idp = start(DevIdpConfig::default()).await;
    let http = http();
    assert_eq!(idp.stats(), Stats::default());
    let device = enroll(&http, &idp, "demo").await; // 2 discoveries, 1 registration
    let token = device.login_token(&http).await;
    let _ = device.login_token(&http).await;
    let _ = device.exchange(&http, &token, "demo-api").await;
    let _ = tenant_jwks(&http, &device.issuer).await; // 1 discovery, 1 jwks
    let _ = http
        .get(format!("{}/demo/echo", idp.base_url()))
        .send()
        .await
        .unwrap();
    let _ = http
        .delete(&device.registration_client_uri)
        .bearer_auth(&device.registration_access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        idp.stats(),
        Stats {
            discovery: 3,
            jwks: 1,
            registration: 1,
            registration_read: 0,
            registration_delete: 1,
            token_client_credentials: 2,
            token_exchange: 1,
            token_other: 0,
            introspection: 0,
            echo: 1,
            ..Stats::default()
        }
    );
}
