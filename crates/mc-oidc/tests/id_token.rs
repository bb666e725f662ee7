//! ID token validation (OIDC Core §3.1.3.7) against a JWKS served from 127.0.0.1 by the test:
//! the good token passes; a wrong nonce, issuer, audience, azp, an algorithm the IDP does not
//! advertise, `alg: none`, an HMAC token, an expired one, a foreign key and a missing
//! `auth_time` under `max_age` are each refused as `InvalidToken`.

use axum::{routing::get, Json, Router};
use mc_jose::{Algorithm, JwsSigner};
use mc_oidc::{OidcClient, OidcConfig, OidcError, ProviderMetadata, RetryPolicy};
use mc_secret::SecretString;
use serde_json::{json, Map, Value};

const CLIENT: &str = "mc-native";

struct Idp {
    meta: ProviderMetadata,
    signer: JwsSigner,
}

/// Serves `{"keys": [signer's public JWK]}` at /jwks; advertises ES256 only.
async fn idp() -> Idp {
    let signer = JwsSigner::generate(Algorithm::Es256).unwrap();
    let jwks = json!({ "keys": [signer.public_jwk()] });
    let app = Router::new().route("/jwks", get(move || async move { Json(jwks.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Idp {
        meta: ProviderMetadata {
            issuer: base.clone(),
            token_endpoint: format!("{base}/token"),
            jwks_uri: format!("{base}/jwks"),
            id_token_signing_alg_values_supported: vec!["ES256".into()],
            ..Default::default()
        },
        signer,
    }
}

fn client() -> OidcClient {
    OidcClient::new(OidcConfig {
        retry: RetryPolicy::none(),
        ..OidcConfig::default()
    })
    .unwrap()
}

fn claims(idp: &Idp) -> Map<String, Value> {
    let now = mc_jose::unix_now();
    json!({
        "iss": idp.meta.issuer,
        "aud": CLIENT,
        "sub": "user-1",
        "nonce": "n-1",
        "iat": now,
        "exp": now + 300,
        "auth_time": now - 10,
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn sign(signer: &JwsSigner, claims: &Map<String, Value>) -> SecretString {
    SecretString::new(
        signer
            .sign_jwt("JWT", Map::new(), &Value::Object(claims.clone()))
            .unwrap(),
    )
}

async fn verify(
    idp: &Idp,
    token: &SecretString,
    max_age: Option<u64>,
) -> Result<String, OidcError> {
    client()
        .verify_id_token(
            &idp.meta,
            token,
            CLIENT,
            Some(&SecretString::new("n-1")),
            max_age,
        )
        .await
        .map(|v| v.subject.unwrap_or_default())
}

fn is_refused(result: Result<String, OidcError>, what: &str) {
    match result {
        Err(OidcError::InvalidToken(_)) => {}
        other => panic!("{what}: expected InvalidToken, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_id_token_passes_and_gives_its_subject() {
    let idp = idp().await;
    let token = sign(&idp.signer, &claims(&idp));
    assert_eq!(verify(&idp, &token, Some(300)).await.unwrap(), "user-1");
    // several audiences with azp = us is fine
    let mut c = claims(&idp);
    c.insert("aud".into(), json!([CLIENT, "other"]));
    c.insert("azp".into(), json!(CLIENT));
    assert!(verify(&idp, &sign(&idp.signer, &c), None).await.is_ok());
}

#[tokio::test]
async fn wrong_claims_are_refused() {
    let idp = idp().await;
    let now = mc_jose::unix_now();
    let cases: Vec<(&str, Value)> = vec![
        ("nonce", json!("n-2")),
        ("iss", json!("http://127.0.0.1:1")),
        ("aud", json!("another-client")),
        ("exp", json!(now - 3600)),
        ("iat", json!(now + 3600)),
        ("sub", json!("")),
    ];
    for (name, value) in cases {
        let mut c = claims(&idp);
        c.insert(name.into(), value);
        is_refused(verify(&idp, &sign(&idp.signer, &c), None).await, name);
    }
    for missing in ["nonce", "iat", "sub", "exp"] {
        let mut c = claims(&idp);
        c.remove(missing);
        is_refused(verify(&idp, &sign(&idp.signer, &c), None).await, missing);
    }
    // several audiences without azp, and an azp naming another client
    let mut c = claims(&idp);
    c.insert("aud".into(), json!([CLIENT, "other"]));
    is_refused(verify(&idp, &sign(&idp.signer, &c), None).await, "no azp");
    let mut c = claims(&idp);
    c.insert("azp".into(), json!("other"));
    is_refused(verify(&idp, &sign(&idp.signer, &c), None).await, "azp");
    // max_age asked: auth_time must be there and recent enough
    let mut c = claims(&idp);
    c.remove("auth_time");
    is_refused(
        verify(&idp, &sign(&idp.signer, &c), Some(60)).await,
        "auth_time",
    );
    let mut c = claims(&idp);
    c.insert("auth_time".into(), json!(now - 7200));
    is_refused(
        verify(&idp, &sign(&idp.signer, &c), Some(60)).await,
        "max_age",
    );
}

#[tokio::test]
async fn wrong_algorithms_and_keys_are_refused() {
    let idp = idp().await;
    let c = Value::Object(claims(&idp));
    // signed by a key the IDP does not publish
    let stranger = JwsSigner::generate(Algorithm::Es256).unwrap();
    let foreign = SecretString::new(stranger.sign_jwt("JWT", Map::new(), &c).unwrap());
    is_refused(verify(&idp, &foreign, None).await, "foreign key");
    // an algorithm the IDP does not advertise (ES384, with a published kid swapped in)
    let es384 = JwsSigner::generate(Algorithm::Es384).unwrap();
    let mut header = Map::new();
    header.insert("kid".into(), json!(idp.signer.kid()));
    let rs = SecretString::new(es384.sign_with_header(header, &c).unwrap());
    is_refused(verify(&idp, &rs, None).await, "ES384 not advertised");
    // alg none and HS256 (the public key as an HMAC secret)
    let payload = mc_jose::b64url_encode(c.to_string().as_bytes());
    for alg in ["none", "HS256"] {
        let header = mc_jose::b64url_encode(
            json!({"alg": alg, "kid": idp.signer.kid()})
                .to_string()
                .as_bytes(),
        );
        let token = SecretString::new(format!("{header}.{payload}.AAAA"));
        is_refused(verify(&idp, &token, None).await, alg);
    }
    // an access token's typ
    let at = SecretString::new(idp.signer.sign_jwt("at+jwt", Map::new(), &c).unwrap());
    is_refused(verify(&idp, &at, None).await, "typ at+jwt");
}
