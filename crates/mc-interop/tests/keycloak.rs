//! The runtime's whole lifecycle against a stock Keycloak 26, started once for this test run.
//!
//! Keycloak is fetched through Maven and started by `mc_interop::keycloak` with the realm of
//! `keycloak/demo-realm.json` (what each setting is for: `docs/protocol.md`, "Keycloak").
//! Every case runs in sequence in the one test below, so the server starts once. The identified
//! user's cases (Keycloak's login page in headless Chromium, the loopback redirect) are in
//! `keycloak/identified.rs`.
//!
//! `MC_KEYCLOAK_URL` (with `MC_KEYCLOAK_ADMIN_USER` / `MC_KEYCLOAK_ADMIN_PASSWORD`) runs the
//! cases against a Keycloak already running with that realm, instead of starting one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use axum::{Json, Router};
use mc_events::*;
use mc_interop::keycloak::{Keycloak, KeycloakOptions};
use mc_oidc::{DpopMode, OidcClient, OidcConfig, ProviderMetadata};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_secret::SecretString;
use mc_store::SoftwareBiometric;
use mc_testkit::assert_status;
use serde_json::{json, Value};

#[path = "keycloak/identified.rs"]
mod identified;

const REALM: &str = "demo";
/// The enrollment client: sent as `software_id`, shown in GetInformation.
const ENROLLMENT_CLIENT: &str = "AnonymousUserEnrollment";
/// A client of the realm that devices may exchange their token for.
const AUDIENCE: &str = "demo-api";
const PASSWORD: &str = "correct horse battery staple";
/// The hosts the realm's anonymous Trusted Hosts policy names: where the devices (here, the
/// test) send their registration from.
const TRUSTED_HOSTS: &[&str] = &["127.0.0.1", "localhost"];
/// Keycloak answers in milliseconds once warm; the first token of a fresh JVM can take seconds.
const WAIT: Duration = Duration::from_secs(60);

/// The origin of the suite's resource server, set when it starts.
static RESOURCE_ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_lifecycle_against_keycloak() {
    let suite_started = Instant::now();
    let keycloak = Arc::new(keycloak().await);
    eprintln!(
        "keycloak: fetch {:?}, unpack {:?}, startup {:?} (log: {})",
        keycloak.timings.fetch,
        keycloak.timings.unpack,
        keycloak.timings.startup,
        keycloak.log_path().display()
    );
    let resource = Arc::new(Resource::start(&keycloak).await);

    let cases_started = Instant::now();
    run_case(
        &keycloak,
        "the realm is Keycloak's defaults but for the listed deviations",
        {
            let keycloak = keycloak.clone();
            async move { realm_deviates_only_as_documented(&keycloak).await }
        },
    )
    .await;
    run_case(&keycloak, "the stock Consent Required policy", {
        let keycloak = keycloak.clone();
        async move { consent_required_policy(keycloak).await }
    })
    .await;
    for dpop in [DpopMode::Auto, DpopMode::Never] {
        let name = format!("mode NO, DPoP {dpop:?}: enroll, login, exchange, resource, delete");
        run_case(&keycloak, &name, {
            let (keycloak, resource) = (keycloak.clone(), resource.clone());
            async move { mode_no_lifecycle(&keycloak, &resource, dpop).await }
        })
        .await;
    }
    run_case(&keycloak, "mode PASSWORD", {
        let (keycloak, resource) = (keycloak.clone(), resource.clone());
        async move { password_mode(&keycloak, &resource).await }
    })
    .await;
    run_case(&keycloak, "mode BIOMETRIC", {
        let (keycloak, resource) = (keycloak.clone(), resource.clone());
        async move { biometric_mode(&keycloak, &resource).await }
    })
    .await;
    run_case(&keycloak, "refused audiences", {
        let keycloak = keycloak.clone();
        async move { refused_audiences(&keycloak).await }
    })
    .await;
    run_case(&keycloak, "registration from an untrusted host", {
        let keycloak = keycloak.clone();
        async move { registration_from_an_untrusted_host(&keycloak).await }
    })
    .await;
    run_case(&keycloak, "registration deleted by an administrator", {
        let keycloak = keycloak.clone();
        async move { registration_deleted_at_keycloak(&keycloak).await }
    })
    .await;
    run_case(
        &keycloak,
        "identified user: the login page in headless Chromium, loopback redirect",
        {
            let keycloak = keycloak.clone();
            async move { identified::login_page_in_a_real_browser(&keycloak).await }
        },
    )
    .await;
    run_case(&keycloak, "identified user through the runtime's events", {
        let keycloak = keycloak.clone();
        async move { identified::runtime_flow_in_a_real_browser(&keycloak).await }
    })
    .await;
    run_case(&keycloak, "identified user: anonymous device upgraded", {
        let keycloak = keycloak.clone();
        async move { identified::anonymous_device_upgraded_in_a_real_browser(&keycloak).await }
    })
    .await;
    eprintln!(
        "keycloak cases took {:?}; the whole suite {:?}",
        cases_started.elapsed(),
        suite_started.elapsed()
    );
}

async fn keycloak() -> Keycloak {
    if let Ok(url) = std::env::var("MC_KEYCLOAK_URL") {
        let user = std::env::var("MC_KEYCLOAK_ADMIN_USER").unwrap_or_else(|_| "admin".into());
        let password = std::env::var("MC_KEYCLOAK_ADMIN_PASSWORD").unwrap_or_default();
        let keycloak = Keycloak::external(&url, &user, &password).unwrap();
        allow_anonymous_devices(&keycloak).await;
        return keycloak;
    }
    let options = KeycloakOptions::new(
        env!("CARGO_TARGET_TMPDIR"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/keycloak/demo-realm.json"),
        REALM,
    );
    let keycloak = Keycloak::start(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    allow_anonymous_devices(&keycloak).await;
    keycloak
}

/// What the realm administrator sets for the app (docs/protocol.md, "Keycloak", deviations).
async fn allow_anonymous_devices(keycloak: &Keycloak) {
    keycloak
        .allow_anonymous_devices(REALM, TRUSTED_HOSTS, AUDIENCE)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", keycloak.log_tail(4000)));
    // The identified user's audience token: an optional scope of the native client.
    keycloak
        .let_client_ask_for_audience(REALM, identified::NATIVE_CLIENT, AUDIENCE)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", keycloak.log_tail(4000)));
}

/// Runs one case on its own task, so a failing case shows Keycloak's log (its events say why
/// it refused something) before the test fails.
async fn run_case(
    keycloak: &Keycloak,
    name: &str,
    case: impl std::future::Future<Output = ()> + Send + 'static,
) {
    // `MC_KEYCLOAK_CASES=identified` runs only the cases whose name contains that text.
    if let Ok(wanted) = std::env::var("MC_KEYCLOAK_CASES") {
        if !name.contains(wanted.as_str()) {
            eprintln!("case `{name}`: skipped (MC_KEYCLOAK_CASES={wanted})");
            return;
        }
    }
    let started = Instant::now();
    let outcome = tokio::spawn(case).await;
    eprintln!("case `{name}`: {:?}", started.elapsed());
    if let Err(failure) = outcome {
        eprintln!(
            "---- end of the Keycloak log ----\n{}",
            keycloak.log_tail(6000)
        );
        match failure.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("case `{name}` did not finish: {e}"),
        }
    }
}

// ---- the cases ----

/// `dpop`: Keycloak advertises DPoP, so `Auto` gets bound tokens and `Never` Bearer ones.
async fn mode_no_lifecycle(keycloak: &Keycloak, resource: &Resource, dpop: DpopMode) {
    let runtime = runtime_with(keycloak, None, dpop);
    let started = post(&runtime, StartEvent::new()).await;
    assert_status(&started, StatusType::Ok);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);

    assert_status(
        &post(&runtime, enroll(AuthenticationMode::No, None)).await,
        StatusType::Ok,
    );
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);

    // The device is its own client at Keycloak: private_key_jwt, a service account, and
    // standard token exchange on.
    let (user, config) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    assert_eq!(user.tenant_id, REALM);
    assert_eq!(config.client_id, ENROLLMENT_CLIENT);
    assert_eq!(config.issuer, Some(keycloak.issuer(REALM)));
    let client = keycloak
        .client(REALM, &client_id)
        .await
        .unwrap()
        .expect("the device's client exists at Keycloak");
    assert_eq!(
        client["clientAuthenticatorType"], "client-jwt",
        "{client:#}"
    );
    assert_eq!(client["serviceAccountsEnabled"], true, "{client:#}");
    assert_eq!(client["publicClient"], false, "{client:#}");
    assert_eq!(
        client["attributes"]["standard.token.exchange.enabled"], "true",
        "{client:#}"
    );

    // Claims of the device token: Keycloak's service-account token of that client.
    let device = claims(&runtime).await;
    assert_eq!(device.get("azp"), Some(&client_id), "{device:#?}");
    assert_eq!(device.get("iss"), Some(&keycloak.issuer(REALM)));
    let sub = device.get("sub").cloned().expect("sub claim");
    // userId is the IDP's user id: the service-account user's, not the client's.
    assert_eq!(sub, user.user_id, "userId = the device token's sub");
    assert_ne!(sub, client_id);

    // Restart keeps the enrollment; the offline login is a new client_credentials token.
    let restarted = post(&runtime, RestartEvent::new()).await;
    assert_status(&restarted, StatusType::Ok);
    assert_eq!(state_of(&runtime).await, SdkState::LoginRequired);
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    let after_login = claims(&runtime).await;
    assert_eq!(after_login.get("sub"), Some(&sub), "the same identity");
    assert_ne!(after_login.get("jti"), device.get("jti"), "a new token");

    // RFC 8693 at Keycloak: a token for demo-api, for the same subject, held by the device.
    let exchanged = exchange(&runtime, AUDIENCE).await;
    let iam = mc_jose::Jwt::decode_unverified(exchanged.expose()).unwrap();
    // Keycloak's default signing algorithm: the realm has no other key.
    assert_eq!(iam.alg(), Some("RS256"));
    assert_eq!(audiences(&iam.claims), vec![AUDIENCE.to_string()]);
    assert_eq!(iam.claim_str("sub"), Some(sub.as_str()));
    assert_eq!(iam.claim_str("azp"), Some(client_id.as_str()));
    let again = exchange(&runtime, AUDIENCE).await;
    assert_eq!(again, exchanged, "served from the cache");

    // A resource server that trusts only Keycloak's JWKS and the audience demo-api.
    let url = format!("{}/orders?x=1", resource.base_url);
    let answer = http(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Post)
            .with_audience(AUDIENCE)
            .with_content("hello", "text/plain"),
    )
    .await;
    assert_eq!(
        answer.http_status,
        Some(200),
        "{answer:#?}: {}",
        String::from_utf8_lossy(&answer.response)
    );
    let seen: Value = serde_json::from_slice(&answer.response).unwrap();
    assert_eq!(seen["sub"], sub.as_str());
    assert_eq!(seen["azp"], client_id.as_str());
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], "hello");
    let anonymous = http(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Get),
    )
    .await;
    assert_eq!(anonymous.http_status, Some(401), "no token, no entry");

    // With DPoP (the runtime's default when Keycloak advertises it), the exchanged token is
    // bound to the key the device registered, and is worthless without it.
    let bound_to = iam
        .claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str);
    eprintln!(
        "DPoP {dpop:?}: resource call with a {} token",
        seen["scheme"]
    );
    assert_eq!(
        bound_to.is_some(),
        dpop != DpopMode::Never,
        "{:?}",
        iam.claims
    );
    match bound_to {
        Some(jkt) => {
            assert_eq!(seen["scheme"], "DPoP");
            let registered: mc_jose::JwkSet =
                serde_json::from_str(client["attributes"]["jwks.string"].as_str().unwrap())
                    .unwrap();
            assert_eq!(registered.keys[0].thumbprint().unwrap(), jkt);
            let stolen = plain_http()
                .get(&url)
                .bearer_auth(exchanged.expose())
                .send()
                .await
                .unwrap();
            assert_eq!(stolen.status().as_u16(), 401, "replayed without the key");
        }
        None => assert_eq!(seen["scheme"], "Bearer"),
    }

    // RFC 7592 delete: the client is gone at Keycloak.
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert_eq!(deleted.sdk_state, SdkState::ActivationRequired);
    assert!(
        keycloak.client(REALM, &client_id).await.unwrap().is_none(),
        "the client is deleted at Keycloak"
    );
}

async fn password_mode(keycloak: &Keycloak, resource: &Resource) {
    let runtime = runtime(keycloak, None);
    post(&runtime, StartEvent::new()).await;
    assert_status(
        &post(
            &runtime,
            enroll(AuthenticationMode::Password, Some(PASSWORD)),
        )
        .await,
        StatusType::Ok,
    );
    let (user, _) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, login(Some("wrong"))).await,
        StatusType::InvalidPassword,
    );
    assert_status(&post(&runtime, login(Some(PASSWORD))).await, StatusType::Ok);
    assert_eq!(claims(&runtime).await.get("azp"), Some(&client_id));
    exchange_and_call(&runtime, resource).await;
    delete_and_check(keycloak, &runtime, &client_id).await;
}

async fn biometric_mode(keycloak: &Keycloak, resource: &Resource) {
    let platform = Arc::new(SoftwareBiometric::in_memory());
    let runtime = runtime(keycloak, Some(platform.clone()));
    post(&runtime, StartEvent::new()).await;
    assert_status(
        &post(&runtime, enroll(AuthenticationMode::Biometric, None)).await,
        StatusType::Ok,
    );
    let (user, _) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    post(&runtime, RestartEvent::new()).await;
    assert_status(&post(&runtime, login(None)).await, StatusType::Ok);
    assert!(!platform.prompts().is_empty(), "the platform prompted");
    assert_eq!(claims(&runtime).await.get("azp"), Some(&client_id));
    exchange_and_call(&runtime, resource).await;
    delete_and_check(keycloak, &runtime, &client_id).await;
}

/// Audiences Keycloak must refuse: an unknown client, and the enrollment client. A refusal
/// is not a logout and must not cost the device its registration.
async fn refused_audiences(keycloak: &Keycloak) {
    let runtime = runtime(keycloak, None);
    post(&runtime, StartEvent::new()).await;
    assert_status(
        &post(&runtime, enroll(AuthenticationMode::No, None)).await,
        StatusType::Ok,
    );
    let (user, _) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    // Keycloak: 400 `invalid_client` "Audience not found" for a client that does not exist,
    // 400 `invalid_request` "Requested audience not available" for one no client scope of the
    // device grants (the built-in `account`).
    for audience in ["no-such-api", "account"] {
        let refused = post(&runtime, ExchangeIamTokenEvent::new(audience)).await;
        assert_status(&refused, StatusType::InvalidParameter);
        assert_eq!(
            state_of(&runtime).await,
            SdkState::LoggedIn,
            "refusing {audience} is no logout: {refused:#?}"
        );
    }
    let own = post(&runtime, ExchangeIamTokenEvent::new(ENROLLMENT_CLIENT)).await;
    assert_status(&own, StatusType::InvalidParameter);
    // The registration survived the refusals.
    assert!(keycloak.client(REALM, &client_id).await.unwrap().is_some());
    exchange(&runtime, AUDIENCE).await;
    delete_and_check(keycloak, &runtime, &client_id).await;
}

/// The demo realm compared with a realm created now with nothing but a name (Keycloak's
/// defaults): the only differences are the deviations docs/protocol.md lists. Keys and
/// signing algorithm, client scopes, the realm's settings and the registration policies
/// other than Trusted Hosts and Consent Required are Keycloak's; the clients are the stock
/// ones plus `demo-api` and the native `demo-app` (as the console creates it with the listed
/// settings); the one user is the test user.
async fn realm_deviates_only_as_documented(keycloak: &Keycloak) {
    let fresh = format!("fresh-{}", mc_jose::random_token(6).to_lowercase());
    keycloak
        .admin_post("", &json!({ "realm": fresh, "enabled": true }))
        .await
        .unwrap();
    let realm = |name: String| async move { keycloak.admin_get(&name).await.unwrap().unwrap() };

    // The realm's own settings: all equal but its name and ids.
    let (demo_rep, fresh_rep) = (realm(REALM.into()).await, realm(fresh.clone()).await);
    assert_eq!(demo_rep["defaultSignatureAlgorithm"], "RS256");
    let differing: Vec<&String> = demo_rep
        .as_object()
        .unwrap()
        .keys()
        .chain(fresh_rep.as_object().unwrap().keys())
        .filter(|k| !["id", "realm", "defaultRole"].contains(&k.as_str()))
        .filter(|k| demo_rep.get(k.as_str()) != fresh_rep.get(k.as_str()))
        .collect();
    assert!(differing.is_empty(), "realm settings differ: {differing:?}");
    assert_eq!(
        demo_rep["defaultRole"]["composite"],
        fresh_rep["defaultRole"]["composite"]
    );

    // Keys: the stock generated ones (RSA signing, RSA-OAEP, HMAC, AES), no EC key.
    let keys = |name: String| async move {
        let list = keycloak
            .admin_get(&format!(
                "{name}/components?type=org.keycloak.keys.KeyProvider"
            ))
            .await
            .unwrap()
            .unwrap();
        let mut keys: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                format!(
                    "{} {} {}",
                    k["providerId"], k["config"]["algorithm"], k["config"]["priority"]
                )
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(REALM.into()).await, keys(fresh.clone()).await);

    // Client-registration policies: the stock ones, but Trusted Hosts names the devices'
    // hosts and the anonymous Consent Required policy is gone.
    let policies = |name: String| async move {
        let mut policies: Vec<(String, String, Value)> = keycloak
            .registration_policies(&name)
            .await
            .unwrap()
            .into_iter()
            .map(|p| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                let id = format!("{} {}", text(&p["subType"]), text(&p["providerId"]));
                (id, text(&p["name"]), sorted_lists(&p["config"]))
            })
            .collect();
        policies.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        policies
    };
    let mut expected = policies(fresh.clone()).await;
    assert!(
        expected
            .iter()
            .any(|(id, _, _)| id == "anonymous consent-required"),
        "a new realm has the Consent Required policy: {expected:?}"
    );
    expected.retain(|(id, _, _)| id != "anonymous consent-required");
    for (id, _, config) in &mut expected {
        if id.as_str() == "anonymous trusted-hosts" {
            config["trusted-hosts"] = sorted_lists(&json!({ "h": TRUSTED_HOSTS }))["h"].clone();
        }
    }
    assert_eq!(policies(REALM.into()).await, expected);

    // Client scopes and the realm's default ones: the stock ones plus demo-api-audience.
    let names = |path: String| async move {
        let mut names: Vec<String> = keycloak
            .admin_get(&path)
            .await
            .unwrap()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    for list in [
        "client-scopes",
        "default-default-client-scopes",
        "default-optional-client-scopes",
    ] {
        let mut expected = names(format!("{fresh}/{list}")).await;
        if list != "default-optional-client-scopes" {
            expected.push(format!("{AUDIENCE}-audience"));
            expected.sort();
        }
        assert_eq!(names(format!("{REALM}/{list}")).await, expected, "{list}");
    }
    // Clients: the stock ones plus the exchange audience and the native app's client; the
    // native client is what an administrator creates in the console with the listed settings
    // and nothing else (the same client created now in the fresh realm has no other difference).
    let client_ids = |name: String| async move {
        let mut ids: Vec<String> = keycloak
            .admin_get(&format!("{name}/clients"))
            .await
            .unwrap()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["clientId"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut expected = client_ids(fresh.clone()).await;
    expected.extend([AUDIENCE.to_string(), identified::NATIVE_CLIENT.to_string()]);
    expected.sort();
    assert_eq!(client_ids(REALM.into()).await, expected);
    keycloak
        .admin_post(
            &format!("{fresh}/clients"),
            &json!({
                "clientId": identified::NATIVE_CLIENT,
                "publicClient": true,
                "directAccessGrantsEnabled": false,
                "redirectUris": ["http://127.0.0.1/callback"],
                // No CORS origins: a native app calls from no web page (the console would
                // derive http://127.0.0.1 from the redirect URI).
                "webOrigins": [],
                "attributes": {
                    "pkce.code.challenge.method": "S256",
                    // What Keycloak's import gives every imported client: the post-logout
                    // redirect URIs are the redirect URIs.
                    "post.logout.redirect.uris": "+"
                }
            }),
        )
        .await
        .unwrap();
    let comparable = |client: Value| {
        let mut client = client;
        let object = client.as_object_mut().unwrap();
        for ignored in ["id", "name", "description"] {
            object.remove(ignored);
        }
        sorted_lists(&client)
    };
    let native = keycloak
        .client(REALM, identified::NATIVE_CLIENT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(native["standardFlowEnabled"], true, "{native:#}");
    assert_eq!(native["implicitFlowEnabled"], false, "{native:#}");
    assert_eq!(native["serviceAccountsEnabled"], false, "{native:#}");
    let as_created = keycloak
        .client(&fresh, identified::NATIVE_CLIENT)
        .await
        .unwrap()
        .unwrap();
    // The one listed deviation: the audience scope is one of its optional client scopes.
    let mut as_created = as_created;
    if let Some(optional) = as_created["optionalClientScopes"].as_array_mut() {
        optional.push(json!(format!("{AUDIENCE}-audience")));
    }
    let (native, as_created) = (comparable(native), comparable(as_created));
    let differing: Vec<String> = native
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| as_created.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("{k}: {v} (console: {})", as_created[k.as_str()]))
        .collect();
    assert!(
        differing.is_empty(),
        "native client differs: {differing:#?}"
    );

    // Users: one test user, as the console creates it (the realm's default roles, a password).
    let users = keycloak
        .admin_get(&format!("{REALM}/users"))
        .await
        .unwrap()
        .unwrap();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:#?}");
    assert_eq!(users[0]["username"], identified::TEST_USER);
    assert_eq!(
        users[0]["requiredActions"],
        json!([]),
        "a login needs no extra step"
    );
    let user_id = users[0]["id"].as_str().unwrap();
    let roles = keycloak
        .admin_get(&format!("{REALM}/users/{user_id}/role-mappings/realm"))
        .await
        .unwrap()
        .unwrap();
    let roles: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(roles, vec![format!("default-roles-{REALM}")]);
    assert!(keycloak
        .admin_get(&format!("{fresh}/users"))
        .await
        .unwrap()
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());

    // Cleanup only (the suite's server keeps its realms in memory): a slow delete on a busy
    // machine is no failure of the realm under test.
    if let Err(e) = keycloak.admin_delete(&fresh).await {
        eprintln!("the comparison realm {fresh} was not deleted: {e}");
    }
}

/// A component's `config` with each list sorted: Keycloak keeps multi-valued settings in no
/// particular order.
fn sorted_lists(config: &Value) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Array(items) => {
                            let mut items = items.clone();
                            items.sort_by_key(|i| i.to_string());
                            Value::Array(items)
                        }
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Keycloak's stock anonymous *Consent Required* policy marks every registered device client
/// `consentRequired`. Registration and the device's own token still work, but Keycloak's
/// Standard Token Exchange then asks for a user's consent to the client's default scopes
/// that are shown on a consent screen (`profile`, `email`, `roles`), which a service account
/// never gives: 400 `invalid_scope` "Missing consents for Token Exchange in client <id>".
/// The app gets INVALID_PARAMETER (ACCESS_DENIED) and stays logged in. The demo realm removes
/// the policy; this case puts it back for a while.
async fn consent_required_policy(keycloak: Arc<Keycloak>) {
    let realm_id = keycloak.admin_get(REALM).await.unwrap().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let policy_id = keycloak
        .admin_post(
            &format!("{REALM}/components"),
            &json!({
                "name": "Consent Required",
                "providerId": "consent-required",
                "providerType": mc_interop::keycloak::REGISTRATION_POLICY_TYPE,
                "subType": "anonymous",
                "parentId": realm_id,
                "config": {}
            }),
        )
        .await
        .unwrap()
        .expect("the policy's id");
    let outcome = tokio::spawn(exchange_with_consent_required(keycloak.clone())).await;
    keycloak
        .admin_delete(&format!("{REALM}/components/{policy_id}"))
        .await
        .unwrap();
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn exchange_with_consent_required(keycloak: Arc<Keycloak>) {
    // The protocol as mc-oidc speaks it: what Keycloak answers.
    let oidc = OidcClient::new(OidcConfig::default()).unwrap();
    let meta = oidc.discover(&keycloak.issuer(REALM)).await.unwrap();
    let key = mc_jose::SigningKey::generate().unwrap();
    let registration = oidc
        .register(
            &meta,
            &key,
            &mc_oidc::RegistrationRequest {
                client_name: "consent check".into(),
                software_id: ENROLLMENT_CLIENT.into(),
                initial_access_token: None,
            },
        )
        .await
        .unwrap();
    let device = oidc
        .client_credentials(&meta, &registration.client_id, &key)
        .await
        .expect("the device's own token needs no consent");
    // Keycloak's default: RS256. The claim names show what the stock scopes add.
    let jwt = mc_jose::Jwt::decode_unverified(device.access_token.expose()).unwrap();
    eprintln!(
        "device token at the stock realm: alg {:?}, typ {:?}, claims {:?}",
        jwt.alg(),
        jwt.header.get("typ"),
        jwt.claims.keys().collect::<Vec<_>>()
    );
    assert_eq!(jwt.alg(), Some("RS256"));
    // 400 `invalid_scope` "Missing consents for Token Exchange in client <id>": a request
    // nobody on the device can fix (the app: ACCESS_DENIED), not a lost registration.
    let refused = oidc
        .exchange(
            &meta,
            &registration.client_id,
            &key,
            &device.access_token,
            AUDIENCE,
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("invalid_scope"), "{refused:?}");
    assert_ne!(
        refused.kind(),
        mc_oidc::OidcErrorKind::InvalidClient,
        "{refused:?}"
    );
    if let (Some(uri), Some(rat)) = (
        &registration.registration_client_uri,
        &registration.registration_access_token,
    ) {
        oidc.delete_registration(uri, rat).await.unwrap();
    }

    // What the app gets: a refusal that asks the IDP's policy to change, no logout, and the
    // registration kept.
    let runtime = runtime(&keycloak, None);
    post(&runtime, StartEvent::new()).await;
    assert_status(
        &post(&runtime, enroll(AuthenticationMode::No, None)).await,
        StatusType::Ok,
    );
    let (user, _) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    let refused = post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE)).await;
    eprintln!("exchange under Consent Required: {:?}", refused.info);
    assert_status(&refused, StatusType::AccessDenied);
    let info = &refused.info;
    assert_eq!(info.error_code, error_code::ACCESS_DENIED);
    assert!(
        info.error_description
            .contains("Missing consents for Token Exchange"),
        "{info:?}"
    );
    assert_eq!(state_of(&runtime).await, SdkState::LoggedIn);
    delete_and_check(&keycloak, &runtime, &client_id).await;
}

/// An administrator deletes the device's client: the next login gets `invalid_client` and
/// the runtime asks for a new enrollment.
async fn registration_deleted_at_keycloak(keycloak: &Keycloak) {
    let runtime = runtime(keycloak, None);
    post(&runtime, StartEvent::new()).await;
    assert_status(
        &post(&runtime, enroll(AuthenticationMode::No, None)).await,
        StatusType::Ok,
    );
    let (user, _) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    post(&runtime, RestartEvent::new()).await;
    keycloak.delete_client(REALM, &client_id).await.unwrap();
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_status(&login, StatusType::OfflineNotActivated);
    assert_eq!(login.info.error_code, error_code::REGISTRATION_INVALID);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
}

/// The realm's anonymous "Trusted Hosts" policy is what lets a device register: without
/// 127.0.0.1 in it, Keycloak refuses the registration (403) and the runtime stores nothing.
async fn registration_from_an_untrusted_host(keycloak: &Keycloak) {
    let policies = format!(
        "{REALM}/components?type=org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy"
    );
    let trusted_hosts = keycloak
        .admin_get(&policies)
        .await
        .unwrap()
        .and_then(|list| list.as_array().cloned())
        .and_then(|list| {
            list.into_iter()
                .find(|p| p["providerId"] == "trusted-hosts" && p["subType"] == "anonymous")
        })
        .expect("the realm has an anonymous Trusted Hosts policy");
    let id = trusted_hosts["id"].as_str().unwrap().to_string();
    let mut untrusting = trusted_hosts.clone();
    untrusting["config"]["trusted-hosts"] = json!(["192.0.2.1"]);
    keycloak
        .admin_put(&format!("{REALM}/components/{id}"), &untrusting)
        .await
        .unwrap();

    let runtime = runtime(keycloak, None);
    post(&runtime, StartEvent::new()).await;
    let refused = post(&runtime, enroll(AuthenticationMode::No, None)).await;
    // Put the realm back before asserting, so a failure here does not fail later cases.
    keycloak
        .admin_put(&format!("{REALM}/components/{id}"), &trusted_hosts)
        .await
        .unwrap();
    assert_status(&refused, StatusType::AccessDenied);
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
    let info = post(&runtime, GetInformationEvent::new()).await;
    assert!(info.logged_in_user.is_none(), "nothing stored: {info:#?}");
    // Trusted again: the same runtime enrolls.
    assert_status(
        &post(&runtime, enroll(AuthenticationMode::No, None)).await,
        StatusType::Ok,
    );
    let (user, _) = information(&runtime).await;
    let client_id = device_client(&runtime, &user).await;
    delete_and_check(keycloak, &runtime, &client_id).await;
}

async fn exchange_and_call(runtime: &MasterController, resource: &Resource) {
    let answer = http(
        runtime,
        CreateHttpCommonRequest::new(format!("{}/orders", resource.base_url), HttpMethod::Get)
            .with_audience(AUDIENCE),
    )
    .await;
    assert_eq!(
        answer.http_status,
        Some(200),
        "{answer:#?}: {}",
        String::from_utf8_lossy(&answer.response)
    );
}

async fn delete_and_check(keycloak: &Keycloak, runtime: &MasterController, client_id: &str) {
    assert_status(&post(runtime, DeleteUserEvent::new()).await, StatusType::Ok);
    assert!(
        keycloak.client(REALM, client_id).await.unwrap().is_none(),
        "the client is deleted at Keycloak"
    );
}

// ---- the runtime side ----

fn runtime(keycloak: &Keycloak, biometric: Option<Arc<SoftwareBiometric>>) -> MasterController {
    runtime_with(keycloak, biometric, DpopMode::Auto)
}

fn runtime_with(
    keycloak: &Keycloak,
    biometric: Option<Arc<SoftwareBiometric>>,
    dpop: DpopMode,
) -> MasterController {
    // The default issuer template `{server}/realms/{tenant}` is Keycloak's.
    let mut config = RuntimeConfig::new(keycloak.base_url(), StoreLocation::Memory);
    // The password KDF's cost is measured in the benches, not paid here.
    config.store_settings.kdf = mc_store::KdfSettings::for_tests(1_000);
    config.oidc.dpop = dpop;
    // The suite's resource server may receive the audience's token.
    if let Some(origin) = RESOURCE_ORIGIN.get() {
        config.audience_origins.allow(AUDIENCE, origin).unwrap();
    }
    config.biometric = biometric.map(|b| b as Arc<dyn mc_runtime::config::BiometricKeyProvider>);
    MasterController::start(config).expect("runtime starts")
}

fn enroll(mode: AuthenticationMode, password: Option<&str>) -> EnrollAnonymousUserEvent {
    let event = EnrollAnonymousUserEvent::new(REALM, mode, ENROLLMENT_CLIENT);
    match password {
        Some(password) => event.with_password(password),
        None => event,
    }
}

fn login(password: Option<&str>) -> OfflineLoginEvent {
    let event = OfflineLoginEvent::new();
    match password {
        Some(password) => event.with_password(password),
        None => event,
    }
}

/// Posts a request and returns its own result type; [`WAIT`] is Keycloak's, longer than the
/// dev IDP's.
async fn post<E: RequestType>(runtime: &MasterController, event: E) -> E::Result {
    runtime.post_with_timeout(event, WAIT).await
}

async fn state_of(runtime: &MasterController) -> SdkState {
    let answer = post(runtime, GetStateEvent::new()).await;
    assert_status(&answer, StatusType::Ok);
    answer.sdk_state
}

async fn information(runtime: &MasterController) -> (UserIdentifier, IamConfigurationData) {
    let info = post(runtime, GetInformationEvent::new()).await;
    assert_status(&info, StatusType::Ok);
    (
        info.logged_in_user.clone().expect("a logged-in user"),
        info.iam_configuration_data.expect("configuration data"),
    )
}

/// The device's own client at Keycloak: the `azp` of its token. Its `userId` is the
/// service-account user's id, the token's `sub`, not the client's.
async fn device_client(runtime: &MasterController, user: &UserIdentifier) -> String {
    let claims = claims(runtime).await;
    assert_eq!(claims.get("sub"), Some(&user.user_id), "userId = sub");
    claims.get("azp").cloned().expect("azp claim")
}

async fn claims(runtime: &MasterController) -> BTreeMap<String, String> {
    let answer = post(runtime, GetIamAccessTokenClaimsEvent::new()).await;
    assert_status(&answer, StatusType::Ok);
    answer.claims
}

async fn exchange(runtime: &MasterController, audience: &str) -> SecretString {
    let answer = post(runtime, ExchangeIamTokenEvent::new(audience)).await;
    assert_eq!(
        answer.info.status,
        StatusType::Ok,
        "exchange for {audience}: {answer:#?}"
    );
    answer.token.expect("a token")
}

async fn http(
    runtime: &MasterController,
    request: CreateHttpCommonRequest,
) -> CreateHttpCommonResultEvent {
    post(runtime, request).await
}

fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(mc_oidc::tls_client_config().unwrap())
        .build()
        .unwrap()
}

/// `aud` as a list (a JWT may carry one string or an array).
fn audiences(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

// ---- a resource server on loopback that trusts Keycloak ----

struct Resource {
    base_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Resource {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Verifier {
    oidc: OidcClient,
    meta: ProviderMetadata,
    base_url: String,
}

impl Resource {
    /// Discovers the realm like any resource server would, then serves every path: a request
    /// passes with a Keycloak-signed (JWKS) token for `demo-api` (and, for a DPoP-bound token,
    /// a valid proof of its key), and the answer echoes who called.
    async fn start(keycloak: &Keycloak) -> Resource {
        let oidc = OidcClient::new(OidcConfig::default()).unwrap();
        let meta = oidc.discover(&keycloak.issuer(REALM)).await.unwrap();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(any(serve)).with_state(Verifier {
            oidc,
            meta,
            base_url: base_url.clone(),
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let _ = RESOURCE_ORIGIN.set(base_url.clone());
        Resource { base_url, server }
    }
}

fn refuse(status: StatusCode, why: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": why })))
}

async fn serve(
    State(verifier): State<Verifier>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (scheme, token) = match authorization.split_once(' ') {
        Some(("Bearer", token)) => ("Bearer", token),
        Some(("DPoP", token)) => ("DPoP", token),
        _ => return refuse(StatusCode::UNAUTHORIZED, "no token"),
    };
    let verified = match verifier
        .oidc
        .verify_access_token(&verifier.meta, &SecretString::new(token))
        .await
    {
        Ok(verified) => verified,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    if !audiences(&verified.claims).iter().any(|a| a == AUDIENCE) {
        return refuse(StatusCode::FORBIDDEN, "token is not for demo-api");
    }
    let bound_to = verified.claims.get("cnf").and_then(|c| c.get("jkt"));
    match (scheme, bound_to.and_then(Value::as_str)) {
        ("Bearer", None) => {}
        ("DPoP", Some(jkt)) => {
            let htu = format!("{}{}", verifier.base_url, uri.path());
            if let Err(why) = check_dpop_proof(&headers, method.as_str(), &htu, token, jkt) {
                return refuse(StatusCode::UNAUTHORIZED, why);
            }
        }
        // A bound token without its proof is what a thief would send.
        ("Bearer", Some(_)) => return refuse(StatusCode::UNAUTHORIZED, "bound token as Bearer"),
        _ => return refuse(StatusCode::UNAUTHORIZED, "DPoP scheme for an unbound token"),
    }
    (
        StatusCode::OK,
        Json(json!({
            "sub": verified.subject,
            "azp": verified.claims.get("azp"),
            "aud": verified.claims.get("aud"),
            "scheme": scheme,
            "method": method.as_str(),
            "body": body,
        })),
    )
}

/// RFC 9449 section 4.3 as a resource server checks it: one proof, `typ` `dpop+jwt`, signed
/// by the ES256 `jwk` of its header whose thumbprint is the token's `cnf.jkt`, naming this
/// request (`htm`, `htu`), bound to this token (`ath`), and fresh.
fn check_dpop_proof(
    headers: &HeaderMap,
    method: &str,
    htu: &str,
    token: &str,
    jkt: &str,
) -> Result<(), &'static str> {
    let mut proofs = headers.get_all("dpop").iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return Err("exactly one DPoP proof is required");
    };
    let proof = proof.to_str().map_err(|_| "unreadable proof")?;
    let unverified = mc_jose::Jwt::decode_unverified(proof).map_err(|_| "malformed proof")?;
    if unverified.header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("typ must be dpop+jwt");
    }
    let jwk: mc_jose::Jwk = unverified
        .header
        .get("jwk")
        .cloned()
        .and_then(|j| serde_json::from_value(j).ok())
        .ok_or("no jwk in the proof")?;
    if jwk.thumbprint().map_err(|_| "bad jwk")? != jkt {
        return Err("proof key is not the token's cnf.jkt");
    }
    // The key is the one in the header; a `kid` beside it only names it.
    let jwk = mc_jose::Jwk {
        kid: unverified.kid().map(str::to_string),
        ..jwk
    };
    let proof = mc_jose::verify_es256(proof, &mc_jose::JwkSet { keys: vec![jwk] })
        .map_err(|_| "proof signature")?;
    if proof.claim_str("htm") != Some(method) || proof.claim_str("htu") != Some(htu) {
        return Err("proof names another request");
    }
    if proof.claim_str("ath") != Some(mc_jose::sha256_b64url(token.as_bytes()).as_str()) {
        return Err("proof is for another token");
    }
    let age = mc_jose::unix_now() - proof.claim_i64("iat").ok_or("no iat")?;
    if !(-60..=60).contains(&age) {
        return Err("stale proof");
    }
    Ok(())
}
