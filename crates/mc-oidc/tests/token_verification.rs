//! Device tokens from the dev IDP signed with other algorithms, opaque device tokens checked by
//! introspection (RFC 7662), and the hostile variants: a token for another client, introspection
//! saying inactive, naming another client or another key, an introspection endpoint that fails.

use mc_devidp::{
    DevIdp, DevIdpConfig, FaultTarget, HttpFault, DEFAULT_ENROLLMENT_CLIENT, DEMO_AUDIENCE,
};
use mc_jose::{Algorithm, SigningKey};
use mc_oidc::{
    ClaimsSource, OidcClient, OidcConfig, OidcError, OidcErrorKind, ProviderMetadata, Registration,
    RegistrationRequest, RetryPolicy,
};
use serde_json::json;

async fn idp_with(config: DevIdpConfig) -> DevIdp {
    DevIdp::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn client() -> OidcClient {
    OidcClient::new(OidcConfig {
        retry: RetryPolicy::none(),
        ..OidcConfig::default()
    })
    .unwrap()
}

async fn enrolled(oidc: &OidcClient, idp: &DevIdp) -> (ProviderMetadata, SigningKey, Registration) {
    let meta = oidc.discover(&idp.issuer("demo")).await.unwrap();
    let key = SigningKey::generate().unwrap();
    let request = RegistrationRequest {
        client_name: "token verification test".into(),
        software_id: DEFAULT_ENROLLMENT_CLIENT.into(),
        initial_access_token: None,
    };
    let registration = oidc.register(&meta, &key, &request).await.unwrap();
    (meta, key, registration)
}

#[tokio::test]
async fn device_and_exchanged_tokens_verify_with_each_idp_algorithm() {
    for alg in [
        Algorithm::Rs256,
        Algorithm::Ps384,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ] {
        let idp = idp_with(DevIdpConfig {
            signing_alg: alg,
            ..DevIdpConfig::default()
        })
        .await;
        let oidc = client();
        let (meta, key, registration) = enrolled(&oidc, &idp).await;
        assert_eq!(meta.accepted_token_algorithms(), vec![alg]);
        let device = oidc
            .client_credentials(&meta, &registration.client_id, &key)
            .await
            .unwrap();
        let verified = oidc
            .verify_device_token(&meta, &device, &key, &registration.client_id)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.source, ClaimsSource::Jwt);
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
        oidc.verify_access_token(&meta, &exchanged.access_token)
            .await
            .unwrap();
        // The same token against metadata advertising only ES256 is refused by name.
        if alg != Algorithm::Es256 {
            let es256_only = ProviderMetadata {
                id_token_signing_alg_values_supported: vec!["ES256".into()],
                ..meta.clone()
            };
            let e = oidc
                .verify_device_token(&es256_only, &device, &key, &registration.client_id)
                .await
                .unwrap_err();
            assert!(
                matches!(&e, OidcError::InvalidToken(m) if m.contains(alg.name())),
                "{e}"
            );
        }
    }
}

#[tokio::test]
async fn a_device_token_issued_to_another_client_is_refused() {
    let idp = idp_with(DevIdpConfig::default()).await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    let e = oidc
        .verify_device_token(&meta, &device, &key, "another-client")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OidcError::InvalidToken(m) if m.contains("another client")),
        "{e}"
    );
}

fn opaque_idp_config() -> DevIdpConfig {
    DevIdpConfig {
        opaque_device_tokens: true,
        ..DevIdpConfig::default()
    }
}

#[tokio::test]
async fn an_opaque_device_token_is_introspected_and_exchanged() {
    let idp = idp_with(opaque_idp_config()).await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    assert!(meta.introspection_endpoint.is_some());
    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    assert!(mc_jose::Jwt::decode_unverified(device.access_token.expose()).is_err());
    let verified = oidc
        .verify_device_token(&meta, &device, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(verified.source, ClaimsSource::Introspection);
    assert_eq!(idp.stats().introspection, 1);
    assert_eq!(
        verified.claims.get("client_id"),
        Some(&json!(registration.client_id))
    );
    assert_eq!(verified.claims.get("cnf"), Some(&json!({"jkt": key.kid()})));
    assert!(verified.claims.get("active").is_none());
    assert!(verified.subject.is_some());
    assert!(verified.expires_at <= device.expires_at);
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
    let iam = oidc
        .verify_access_token(&meta, &exchanged.access_token)
        .await
        .unwrap();
    assert_eq!(iam.subject, verified.subject);

    // Without an introspection endpoint: usable, no claims.
    let no_introspection = ProviderMetadata {
        introspection_endpoint: None,
        ..meta.clone()
    };
    let bare = oidc
        .verify_device_token(&no_introspection, &device, &key, &registration.client_id)
        .await
        .unwrap();
    assert_eq!(bare.source, ClaimsSource::Unavailable);
    assert!(bare.claims.is_empty());
}

#[tokio::test]
async fn hostile_introspection_answers_are_refused() {
    let idp = idp_with(opaque_idp_config()).await;
    let oidc = client();
    let (meta, key, registration) = enrolled(&oidc, &idp).await;
    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .unwrap();
    let other = SigningKey::generate().unwrap();
    for members in [
        json!({"active": false}),
        json!({"client_id": "another-client", "azp": "another-client"}),
        json!({"cnf": {"jkt": other.kid()}}),
        json!({"exp": mc_jose::unix_now() - 3600}),
        json!({"iss": "http://127.0.0.1:1/realms/other"}),
    ] {
        idp.faults()
            .set_introspection_override(members.as_object().cloned());
        let e = oidc
            .verify_device_token(&meta, &device, &key, &registration.client_id)
            .await
            .unwrap_err();
        assert!(matches!(e, OidcError::InvalidToken(_)), "{members}: {e}");
    }
    idp.faults().clear_all();
    // Another device asking about this token: the IDP answers inactive.
    let (_, other_key, other_registration) = enrolled(&oidc, &idp).await;
    let e = oidc
        .verify_device_token(&meta, &device, &other_key, &other_registration.client_id)
        .await
        .unwrap_err();
    assert!(matches!(e, OidcError::InvalidToken(_)), "{e}");
    // The endpoint fails: a server error, not an accepted token.
    idp.faults().set_http_fault(
        FaultTarget::Introspection,
        HttpFault::Status {
            status: 500,
            retry_after_secs: None,
        },
        None,
    );
    let e = oidc
        .verify_device_token(&meta, &device, &key, &registration.client_id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), OidcErrorKind::ServerError, "{e}");
    idp.faults().clear_all();
    // The endpoint is gone: not reachable.
    let unreachable = ProviderMetadata {
        introspection_endpoint: Some("http://127.0.0.1:9/introspect".into()),
        ..meta.clone()
    };
    let e = oidc
        .verify_device_token(&unreachable, &device, &key, &registration.client_id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), OidcErrorKind::NotReachable, "{e}");
    // And the real answer still passes.
    oidc.verify_device_token(&meta, &device, &key, &registration.client_id)
        .await
        .unwrap();
}
