//! The protocol client against the development IDP over real HTTP on 127.0.0.1.

use std::time::Duration;

use mc_devidp::{DevIdp, DevIdpConfig, DEFAULT_ENROLLMENT_CLIENT, DEMO_AUDIENCE};
use mc_jose::SigningKey;
use mc_oidc::{
    OidcClient, OidcConfig, OidcError, OidcErrorKind, ProviderMetadata, Registration,
    RegistrationRequest,
};
use mc_secret::SecretString;

async fn idp() -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), DevIdpConfig::default())
        .await
        .unwrap()
}

fn client_with(config: OidcConfig) -> OidcClient {
    OidcClient::new(config).unwrap()
}

fn client() -> OidcClient {
    client_with(OidcConfig::default())
}

fn registration_request() -> RegistrationRequest {
    RegistrationRequest {
        client_name: "mc-oidc test device".into(),
        software_id: DEFAULT_ENROLLMENT_CLIENT.into(),
        initial_access_token: None,
    }
}

/// Discovery, a fresh key and a registration: an enrolled device.
async fn enrolled(oidc: &OidcClient, idp: &DevIdp) -> (ProviderMetadata, SigningKey, Registration) {
    let issuer = oidc.issuer_for(&idp.base_url(), "demo");
    let meta = oidc.discover(&issuer).await.unwrap();
    let key = SigningKey::generate().unwrap();
    let registration = oidc
        .register(&meta, &key, &registration_request())
        .await
        .unwrap();
    (meta, key, registration)
}

#[tokio::test]
async fn full_lifecycle_from_discovery_to_deletion() {
    let idp = idp().await;
    let oidc = client();

    let issuer = oidc.issuer_for(&idp.base_url(), "demo");
    assert_eq!(issuer, idp.issuer("demo"));
    let meta = oidc.discover(&issuer).await.unwrap();
    assert_eq!(meta.issuer, issuer);
    assert!(meta.registration_endpoint.is_some());

    let key = SigningKey::generate().unwrap();
    let registration = oidc
        .register(&meta, &key, &registration_request())
        .await
        .unwrap();
    assert!(idp.client_exists("demo", &registration.client_id));
    let rat = registration.registration_access_token.clone().unwrap();
    let client_uri = registration.registration_client_uri.clone().unwrap();

    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    // The dev IDP advertises DPoP: by default (DpopMode::Auto) tokens are bound to the key.
    assert_eq!(device.token_type, "DPoP");
    let now = oidc.now();
    assert!(device.expires_at > now && device.expires_at <= now + 301);

    let verified = oidc
        .verify_access_token(&meta, &device.access_token)
        .await
        .unwrap();
    assert_eq!(
        verified.claims.get("iss").and_then(|v| v.as_str()),
        Some(issuer.as_str())
    );
    assert!(verified.subject.is_some());
    assert!(verified.expires_at >= now);

    let exchanged = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &key,
            &device.access_token,
            DEMO_AUDIENCE,
        )
        .await
        .unwrap();
    assert_ne!(exchanged.access_token, device.access_token);
    let exchanged_claims = oidc
        .verify_access_token(&meta, &exchanged.access_token)
        .await
        .unwrap();
    let aud = exchanged_claims.claims.get("aud").unwrap();
    assert!(
        aud.as_str() == Some(DEMO_AUDIENCE)
            || aud
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(DEMO_AUDIENCE))),
        "aud {aud}"
    );
    assert_eq!(exchanged_claims.subject, verified.subject);

    oidc.delete_registration(&client_uri, &rat).await.unwrap();
    assert!(!idp.client_exists("demo", &registration.client_id));

    let after = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap_err();
    assert_eq!(after.cause(), &OidcError::InvalidClient);
    assert_eq!(after.kind(), OidcErrorKind::InvalidClient);

    // RFC 7592: the server answers 401 for a client that is gone.
    let again = oidc
        .delete_registration(&client_uri, &rat)
        .await
        .unwrap_err();
    assert_eq!(again.cause(), &OidcError::InvalidClient);

    let stats = idp.stats();
    assert_eq!(stats.discovery, 1);
    assert_eq!(stats.registration, 1);
    assert_eq!(stats.token_client_credentials, 2);
    assert_eq!(stats.token_exchange, 1);
    assert_eq!(stats.jwks, 1, "the JWKS is cached between verifications");
}

#[tokio::test]
async fn discovery_with_the_wrong_issuer_is_refused() {
    let idp = idp().await;
    let oidc = client();
    let issuer = idp.issuer("demo");

    idp.faults().set_wrong_discovery_issuer(true);
    let e = oidc.discover(&issuer).await.unwrap_err();
    assert!(
        matches!(&e, OidcError::IssuerMismatch { expected, .. } if *expected == issuer),
        "{e:?}"
    );
    idp.faults().set_wrong_discovery_issuer(false);

    // Byte for byte: a trailing slash is another issuer, although the same document answers.
    let e = oidc.discover(&format!("{issuer}/")).await.unwrap_err();
    assert!(matches!(e, OidcError::IssuerMismatch { .. }), "{e:?}");

    // An unknown tenant has no discovery document: a configuration to fix, not a bad answer.
    let e = oidc.discover(&idp.issuer("nope")).await.unwrap_err();
    assert!(matches!(e, OidcError::Config(_)), "{e:?}");
    assert!(
        !e.to_string().contains("nope"),
        "no tenant name or path in {e}"
    );

    assert!(oidc.discover(&issuer).await.is_ok());
}

#[tokio::test]
async fn token_signed_by_a_foreign_key_is_refused_without_a_refetch_storm() {
    let idp = idp().await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let good = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    oidc.verify_access_token(&meta, &good.access_token)
        .await
        .unwrap();
    assert_eq!(idp.stats().jwks, 1);

    idp.faults().set_sign_with_foreign_key(true);
    let forged = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    for _ in 0..5 {
        let e = oidc
            .verify_access_token(&meta, &forged.access_token)
            .await
            .unwrap_err();
        assert!(matches!(e, OidcError::InvalidToken(_)), "{e:?}");
    }
    assert_eq!(
        idp.stats().jwks,
        1,
        "a JWKS fetched less than jwks_min_refetch_interval ago is not fetched again"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_once_even_when_many_ask_at_once() {
    let idp = idp().await;
    let oidc = client_with(OidcConfig {
        jwks_min_refetch_interval: Duration::from_millis(300),
        ..OidcConfig::default()
    });
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let good = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    oidc.verify_access_token(&meta, &good.access_token)
        .await
        .unwrap();
    assert_eq!(idp.stats().jwks, 1);

    idp.faults().set_sign_with_foreign_key(true);
    let forged = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let oidc = oidc.clone();
        let meta = meta.clone();
        let token = forged.access_token.clone();
        tasks.push(tokio::spawn(async move {
            oidc.verify_access_token(&meta, &token).await
        }));
    }
    for task in tasks {
        let e = task.await.unwrap().unwrap_err();
        assert!(matches!(e, OidcError::InvalidToken(_)), "{e:?}");
    }
    assert_eq!(
        idp.stats().jwks,
        2,
        "ten concurrent unknown kids, one refetch"
    );
}

#[tokio::test]
async fn token_with_the_wrong_issuer_is_refused() {
    let idp = idp().await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    idp.faults().set_wrong_token_issuer(true);
    let tokens = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    let e = oidc
        .verify_access_token(&meta, &tokens.access_token)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OidcError::InvalidToken(m) if m.contains("issuer")),
        "{e:?}"
    );
}

#[tokio::test]
async fn exchange_to_an_unknown_audience_is_invalid_target() {
    let idp = idp().await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    for audience in ["no-such-api", DEFAULT_ENROLLMENT_CLIENT] {
        let e = oidc
            .exchange(
                &meta,
                &registration.client_id,
                &key,
                &device.access_token,
                audience,
            )
            .await
            .unwrap_err();
        assert_eq!(e.cause(), &OidcError::InvalidTarget, "audience {audience}");
        assert_eq!(e.kind(), OidcErrorKind::BadRequest);
    }
}

#[tokio::test]
async fn a_key_the_idp_does_not_know_is_invalid_client() {
    let idp = idp().await;
    let oidc = client();
    let (meta, _key, registration) = enrolled(&oidc, &idp).await;
    let other_key = SigningKey::generate().unwrap();
    let e = oidc
        .client_credentials(&meta, &registration.client_id, &other_key)
        .await
        .unwrap_err();
    assert_eq!(e.cause(), &OidcError::InvalidClient);
}

#[tokio::test]
async fn exchange_of_a_garbage_subject_token_is_refused() {
    let idp = idp().await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let e = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &key,
            &SecretString::new("not-a-token"),
            DEMO_AUDIENCE,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), OidcErrorKind::BadRequest, "{e:?}");
}

#[tokio::test]
async fn registration_with_a_foreign_software_id_is_refused() {
    let idp = idp().await;
    let oidc = client();
    let meta = oidc.discover(&idp.issuer("demo")).await.unwrap();
    let key = SigningKey::generate().unwrap();
    let e = oidc
        .register(
            &meta,
            &key,
            &RegistrationRequest {
                software_id: "NotAnEnrollmentClient".into(),
                ..registration_request()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            OidcErrorKind::BadRequest | OidcErrorKind::AccessDenied
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn server_time_is_learned_from_the_idp() {
    let idp = idp().await;
    let oidc = client();
    oidc.discover(&idp.issuer("demo")).await.unwrap();
    // Same machine: the learned offset is at most a second or two.
    assert!((oidc.now() - mc_jose::unix_now()).abs() <= 2);
}
