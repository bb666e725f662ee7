//! The runtime's whole lifecycle against a stock Keycloak 26, started once for this test run.
//!
//! Keycloak is fetched through Maven and started by `mc_interop::keycloak` with the realm of
//! `keycloak/demo-realm.json` (what each setting is for: `docs/protocol.md`, "Keycloak").
//! Every case runs in sequence in the one test below, so the server starts once.
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
use mc_oidc::{OidcClient, OidcConfig, ProviderMetadata};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_secret::SecretString;
use mc_store::SoftwareBiometric;
use serde_json::{json, Value};

const REALM: &str = "demo";
/// The enrollment client: sent as `software_id`, shown in GetInformation.
const ENROLLMENT_CLIENT: &str = "AnonymousUserEnrollment";
/// A client of the realm that devices may exchange their token for.
const AUDIENCE: &str = "demo-api";
const PASSWORD: &str = "correct horse battery staple";
/// Keycloak answers in milliseconds once warm; the first token of a fresh JVM can take seconds.
const WAIT: Duration = Duration::from_secs(60);

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
        "mode NO: enroll, login, exchange, resource, delete",
        {
            let (keycloak, resource) = (keycloak.clone(), resource.clone());
            async move { mode_no_lifecycle(&keycloak, &resource).await }
        },
    )
    .await;
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
    run_case(&keycloak, "registration deleted by an administrator", {
        let keycloak = keycloak.clone();
        async move { registration_deleted_at_keycloak(&keycloak).await }
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
        return Keycloak::external(&url, &user, &password).unwrap();
    }
    let options = KeycloakOptions::new(
        env!("CARGO_TARGET_TMPDIR"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/keycloak/demo-realm.json"),
        REALM,
    );
    Keycloak::start(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one case on its own task, so a failing case shows Keycloak's log (its events say why
/// it refused something) before the test fails.
async fn run_case(
    keycloak: &Keycloak,
    name: &str,
    case: impl std::future::Future<Output = ()> + Send + 'static,
) {
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

async fn mode_no_lifecycle(keycloak: &Keycloak, resource: &Resource) {
    let runtime = runtime(keycloak, None);
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
    assert_eq!(user.tenant_id, REALM);
    assert_eq!(config.client_id, ENROLLMENT_CLIENT);
    assert_eq!(config.issuer, Some(keycloak.issuer(REALM)));
    let client = keycloak
        .client(REALM, &user.user_id)
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
    assert_eq!(device.get("azp"), Some(&user.user_id), "{device:#?}");
    assert_eq!(device.get("iss"), Some(&keycloak.issuer(REALM)));
    let sub = device.get("sub").cloned().expect("sub claim");

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
    assert_eq!(iam.alg(), Some("ES256"));
    assert_eq!(audiences(&iam.claims), vec![AUDIENCE.to_string()]);
    assert_eq!(iam.claim_str("sub"), Some(sub.as_str()));
    assert_eq!(iam.claim_str("azp"), Some(user.user_id.as_str()));
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
    assert_eq!(answer.http_status, Some(200), "{answer:#?}");
    let seen: Value = serde_json::from_slice(&answer.response).unwrap();
    assert_eq!(seen["sub"], sub.as_str());
    assert_eq!(seen["azp"], user.user_id.as_str());
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], "hello");
    let anonymous = http(
        &runtime,
        CreateHttpCommonRequest::new(&url, HttpMethod::Get),
    )
    .await;
    assert_eq!(anonymous.http_status, Some(401), "no token, no entry");

    // RFC 7592 delete: the client is gone at Keycloak.
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    let Event::DeleteUserResultEvent(deleted) = deleted else {
        panic!("{deleted:#?}")
    };
    assert_eq!(deleted.info.status, StatusType::Ok, "{deleted:#?}");
    assert_eq!(deleted.sdk_state, SdkState::ActivationRequired);
    assert!(
        keycloak
            .client(REALM, &user.user_id)
            .await
            .unwrap()
            .is_none(),
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
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, login(Some("wrong"))).await,
        StatusType::InvalidPassword,
    );
    assert_status(&post(&runtime, login(Some(PASSWORD))).await, StatusType::Ok);
    assert_eq!(claims(&runtime).await.get("azp"), Some(&user.user_id));
    exchange_and_call(&runtime, resource).await;
    delete_and_check(keycloak, &runtime, &user).await;
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
    post(&runtime, RestartEvent::new()).await;
    assert_status(&post(&runtime, login(None)).await, StatusType::Ok);
    assert!(!platform.prompts().is_empty(), "the platform prompted");
    assert_eq!(claims(&runtime).await.get("azp"), Some(&user.user_id));
    exchange_and_call(&runtime, resource).await;
    delete_and_check(keycloak, &runtime, &user).await;
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
    assert!(keycloak
        .client(REALM, &user.user_id)
        .await
        .unwrap()
        .is_some());
    exchange(&runtime, AUDIENCE).await;
    delete_and_check(keycloak, &runtime, &user).await;
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
    post(&runtime, RestartEvent::new()).await;
    keycloak.delete_client(REALM, &user.user_id).await.unwrap();
    let login = post(&runtime, OfflineLoginEvent::new()).await;
    assert_status(&login, StatusType::OfflineNotActivated);
    assert_eq!(
        login.result_info().unwrap().error_code,
        error_code::REGISTRATION_INVALID
    );
    assert_eq!(state_of(&runtime).await, SdkState::ActivationRequired);
}

async fn exchange_and_call(runtime: &MasterController, resource: &Resource) {
    let answer = http(
        runtime,
        CreateHttpCommonRequest::new(format!("{}/orders", resource.base_url), HttpMethod::Get)
            .with_audience(AUDIENCE),
    )
    .await;
    assert_eq!(answer.http_status, Some(200), "{answer:#?}");
}

async fn delete_and_check(keycloak: &Keycloak, runtime: &MasterController, user: &UserIdentifier) {
    assert_status(&post(runtime, DeleteUserEvent::new()).await, StatusType::Ok);
    assert!(
        keycloak
            .client(REALM, &user.user_id)
            .await
            .unwrap()
            .is_none(),
        "the client is deleted at Keycloak"
    );
}

// ---- the runtime side ----

fn runtime(keycloak: &Keycloak, biometric: Option<Arc<SoftwareBiometric>>) -> MasterController {
    // The default issuer template `{server}/realms/{tenant}` is Keycloak's.
    let mut config = RuntimeConfig::new(keycloak.base_url(), StoreLocation::Memory);
    // The password KDF's cost is measured in the benches, not paid here.
    config.store_settings.kdf = mc_store::KdfSettings::for_tests(1_000);
    config.biometric = biometric.map(|b| b as Arc<dyn mc_runtime::config::BiometricKeyProvider>);
    MasterController::start(config).expect("runtime starts")
}

fn enroll(mode: AuthenticationMode, password: Option<&str>) -> Request {
    let mut event = EnrollAnonymousUserEvent::new(REALM, mode, ENROLLMENT_CLIENT);
    if let Some(password) = password {
        event = event.with_password(password);
    }
    event.into()
}

fn login(password: Option<&str>) -> Request {
    let mut event = OfflineLoginEvent::new();
    if let Some(password) = password {
        event = event.with_password(password);
    }
    event.into()
}

async fn post(runtime: &MasterController, request: impl Into<Request>) -> Event {
    runtime.post_event_with_timeout(request, WAIT).await
}

fn assert_status(event: &Event, expected: StatusType) {
    assert_eq!(
        event.status(),
        Some(expected),
        "unexpected answer: {event:#?}"
    );
}

async fn state_of(runtime: &MasterController) -> SdkState {
    match post(runtime, GetStateEvent::new()).await {
        Event::GetStateResultEvent(e) => e.sdk_state,
        other => panic!("{other:#?}"),
    }
}

async fn information(runtime: &MasterController) -> (UserIdentifier, IamConfigurationData) {
    match post(runtime, GetInformationEvent::new()).await {
        Event::GetInformationResultEvent(info) => (
            info.logged_in_user.clone().expect("a logged-in user"),
            info.iam_configuration_data.expect("configuration data"),
        ),
        other => panic!("{other:#?}"),
    }
}

async fn claims(runtime: &MasterController) -> BTreeMap<String, String> {
    match post(runtime, GetIamAccessTokenClaimsEvent::new()).await {
        Event::GetIamAccessTokenClaimsResultEvent(e) if e.info.status == StatusType::Ok => e.claims,
        other => panic!("{other:#?}"),
    }
}

async fn exchange(runtime: &MasterController, audience: &str) -> SecretString {
    match post(runtime, ExchangeIamTokenEvent::new(audience)).await {
        Event::ExchangeIamTokenResultEvent(e) if e.info.status == StatusType::Ok => {
            e.token.expect("a token")
        }
        other => panic!("exchange for {audience}: {other:#?}"),
    }
}

async fn http(
    runtime: &MasterController,
    request: CreateHttpCommonRequest,
) -> CreateHttpCommonResultEvent {
    match post(runtime, request).await {
        Event::CreateHttpCommonResultEvent(e) => e,
        other => panic!("{other:#?}"),
    }
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
}

impl Resource {
    /// Discovers the realm like any resource server would, then serves every path: a request
    /// passes with a Keycloak-signed (JWKS) token for `demo-api`, and the answer echoes who
    /// called.
    async fn start(keycloak: &Keycloak) -> Resource {
        let oidc = OidcClient::new(OidcConfig::default()).unwrap();
        let meta = oidc.discover(&keycloak.issuer(REALM)).await.unwrap();
        let app = Router::new()
            .fallback(any(serve))
            .with_state(Verifier { oidc, meta });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Resource { base_url, server }
    }
}

async fn serve(
    State(verifier): State<Verifier>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "no bearer token"})),
        );
    };
    let verified = match verifier
        .oidc
        .verify_access_token(&verifier.meta, &SecretString::new(token))
        .await
    {
        Ok(verified) => verified,
        Err(e) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": e.to_string()})),
            )
        }
    };
    if !audiences(&verified.claims).iter().any(|a| a == AUDIENCE) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "token is not for demo-api"})),
        );
    }
    (
        StatusCode::OK,
        Json(json!({
            "sub": verified.subject,
            "azp": verified.claims.get("azp"),
            "aud": verified.claims.get("aud"),
            "method": method.as_str(),
            "body": body,
        })),
    )
}
