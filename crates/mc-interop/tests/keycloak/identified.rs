//! Identified users at Keycloak: its real login page in a real headless Chromium, the redirect
//! caught by the RFC 8252 loopback receiver (`mc_runtime::loopback`).
//!
//! [`login_page_in_a_real_browser`] builds the authorization request by hand (state, nonce,
//! PKCE S256) and redeems the code with plain reqwest: what the realm's native client gives any
//! app. [`runtime_flow_in_a_real_browser`] does the same through the runtime's JSON events
//! (issue 10), and [`anonymous_device_upgraded_in_a_real_browser`] upgrades an anonymous
//! device to the identified user.

use std::time::{Duration, Instant};

use mc_runtime::loopback::{LoopbackError, LoopbackReceiver};
use mc_testkit::browser::{Browser, ChromeDriver};
use reqwest::Url;
use serde_json::{json, Value};

use super::{plain_http, Keycloak, REALM};

/// The realm's public native client (docs/protocol.md, "Keycloak").
pub const NATIVE_CLIENT: &str = "demo-app";
/// The realm's test user and its password (a test realm's, committed on purpose).
pub const TEST_USER: &str = "demo-user";
pub const TEST_USER_PASSWORD: &str = "demo-user-password";
/// A login page is typed into in well under this, even with a cold JVM.
const REDIRECT_WAIT: Duration = Duration::from_secs(60);
/// How long to watch for a redirect that must not come: checked once the browser shows
/// Keycloak's final page, after which nothing is pending.
const NO_REDIRECT_WAIT: Duration = Duration::from_secs(1);

/// An authorization request as a native app makes it, and the secrets it keeps.
struct AuthorizationRequest {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

impl AuthorizationRequest {
    /// PKCE S256 (RFC 7636), `state` and `nonce` fresh; `extra` overrides or adds parameters.
    fn new(
        authorization_endpoint: &str,
        redirect_uri: &str,
        extra: &[(&str, Option<&str>)],
    ) -> Self {
        let state = mc_jose::random_token(16);
        let nonce = mc_jose::random_token(16);
        let verifier = mc_jose::random_token(32);
        let challenge = mc_jose::sha256_b64url(verifier.as_bytes());
        let mut params: Vec<(&str, Option<&str>)> = vec![
            ("response_type", Some("code")),
            ("client_id", Some(NATIVE_CLIENT)),
            ("redirect_uri", Some(redirect_uri)),
            ("scope", Some("openid offline_access")),
            ("state", Some(&state)),
            ("nonce", Some(&nonce)),
            ("code_challenge", Some(&challenge)),
            ("code_challenge_method", Some("S256")),
        ];
        for (name, value) in extra {
            match params.iter_mut().find(|(n, _)| n == name) {
                Some(param) => param.1 = *value,
                None => params.push((name, *value)),
            }
        }
        let mut url = Url::parse(authorization_endpoint).unwrap();
        for (name, value) in params {
            if let Some(value) = value {
                url.query_pairs_mut().append_pair(name, value);
            }
        }
        Self {
            url: url.into(),
            state,
            nonce,
            verifier,
        }
    }
}

async fn discover(keycloak: &Keycloak) -> Value {
    plain_http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            keycloak.issuer(REALM)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Types the credentials into Keycloak's login form and submits it.
async fn log_in(browser: &Browser, username: &str, password: &str) {
    let page = browser.page_source().await.unwrap();
    let username_field = browser
        .find("#username")
        .await
        .unwrap_or_else(|e| panic!("{e}; the page:\n{page}"));
    browser.send_keys(&username_field, username).await.unwrap();
    let password_field = browser.find("#password").await.unwrap();
    browser.send_keys(&password_field, password).await.unwrap();
    let submit = browser.find("#kc-login").await.unwrap();
    browser.click(&submit).await.unwrap();
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Redeems `code` at the token endpoint as a public client with the PKCE verifier, with a
/// DPoP proof of `key` when given.
async fn redeem(
    token_endpoint: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    key: Option<&mc_jose::SigningKey>,
) -> (u16, Value) {
    token_request(
        token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", NATIVE_CLIENT),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
        key,
    )
    .await
}

async fn token_request(
    token_endpoint: &str,
    form: &[(&str, &str)],
    key: Option<&mc_jose::SigningKey>,
) -> (u16, Value) {
    let mut request = plain_http().post(token_endpoint).form(form);
    if let Some(key) = key {
        request = request.header("DPoP", dpop_proof(key, token_endpoint));
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// An RFC 9449 proof for a POST to `url`.
fn dpop_proof(key: &mc_jose::SigningKey, url: &str) -> String {
    let mut header = serde_json::Map::new();
    header.insert(
        "jwk".into(),
        serde_json::to_value(key.public_jwk()).unwrap(),
    );
    let claims = json!({
        "jti": mc_jose::random_token(16),
        "htm": "POST",
        "htu": url,
        "iat": mc_jose::unix_now(),
    });
    key.sign_jwt("dpop+jwt", header, &claims).unwrap()
}

/// Authorize → Keycloak's login page in Chromium → loopback redirect → code redeemed with
/// the verifier → ID token checked. Then the hostile variants a real browser shows.
pub async fn login_page_in_a_real_browser(keycloak: &Keycloak) {
    let metadata = discover(keycloak).await;
    let issuer = keycloak.issuer(REALM);
    let authorization_endpoint = metadata["authorization_endpoint"].as_str().unwrap();
    let token_endpoint = metadata["token_endpoint"].as_str().unwrap();
    // RFC 9207: Keycloak says it sends `iss` with the response, so the app must check it.
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"], true,
        "{metadata:#}"
    );
    let started = Instant::now();
    let driver = ChromeDriver::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let driver_started = started.elapsed();
    let browser = driver.new_session().await.unwrap();
    eprintln!(
        "browser: chromedriver {driver_started:?}, Chromium session {:?}",
        started.elapsed() - driver_started
    );

    // ---- the happy path ----
    let login_started = Instant::now();
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let redirect_uri = receiver.redirect_uri();
    let request = AuthorizationRequest::new(authorization_endpoint, &redirect_uri, &[]);
    let waiting = tokio::spawn(receiver.wait_for_redirect(&request.state, REDIRECT_WAIT));
    browser.navigate(&request.url).await.unwrap();
    log_in(&browser, TEST_USER, TEST_USER_PASSWORD).await;
    let redirect = match waiting.await.unwrap() {
        Ok(redirect) => redirect,
        Err(e) => panic!("{e}; the browser shows:\n{}", page(&browser).await),
    };
    assert!(
        redirect.starts_with(&format!("{redirect_uri}?")),
        "{redirect}"
    );
    let params = query(&redirect);
    assert_eq!(params.get("state"), Some(&request.state), "{redirect}");
    assert_eq!(params.get("iss"), Some(&issuer), "{redirect}");
    assert!(!params.contains_key("error"), "{redirect}");
    let code = params.get("code").expect("a code").clone();
    eprintln!(
        "browser: login page, typed credentials, redirect received: {:?}",
        login_started.elapsed()
    );
    let shown = browser.page_source().await.unwrap();
    assert!(shown.contains("close this page"), "{shown}");

    // PKCE: the code is worthless without the verifier of this request.
    let (status, refused) = redeem(
        token_endpoint,
        &code,
        &redirect_uri,
        &mc_jose::random_token(32),
        None,
    )
    .await;
    assert_eq!((status, &refused["error"]), (400, &json!("invalid_grant")));
    // Keycloak burns a code at its first use, good or bad: a new login for the real redemption.
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let redirect_uri = receiver.redirect_uri();
    // The audience scope too: what the runtime asks for when the app maps demo-api to it.
    let request = AuthorizationRequest::new(
        authorization_endpoint,
        &redirect_uri,
        &[("scope", Some("openid offline_access demo-api-audience"))],
    );
    let waiting = tokio::spawn(receiver.wait_for_redirect(&request.state, REDIRECT_WAIT));
    // The browser holds Keycloak's session cookie now: no login page, straight back.
    browser.navigate(&request.url).await.unwrap();
    let redirect = waiting.await.unwrap().unwrap();
    let params = query(&redirect);
    assert_eq!(params.get("state"), Some(&request.state));
    let code = params.get("code").expect("a code").clone();
    // With a DPoP proof (RFC 9449): Keycloak binds the tokens at its defaults, no client setting.
    let device_key = mc_jose::SigningKey::generate().unwrap();
    let redeem_started = Instant::now();
    let (status, tokens) = redeem(
        token_endpoint,
        &code,
        &redirect_uri,
        &request.verifier,
        Some(&device_key),
    )
    .await;
    eprintln!(
        "plain reqwest: code + verifier + DPoP proof redeemed in {:?}",
        redeem_started.elapsed()
    );
    assert_eq!(status, 200, "{tokens:#}");
    assert_eq!(tokens["token_type"], "DPoP", "{tokens:#}");
    let access = mc_jose::Jwt::decode_unverified(tokens["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        access.claims["cnf"]["jkt"],
        device_key.public_jwk().thumbprint().unwrap().as_str()
    );
    // The ID token: Keycloak's signature (JWKS), issuer, audience, nonce, the user.
    let oidc = mc_oidc::OidcClient::new(mc_oidc::OidcConfig::default()).unwrap();
    let meta = oidc.discover(&issuer).await.unwrap();
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let verified = oidc
        .verify_access_token(&meta, &mc_secret::SecretString::new(id_token))
        .await
        .unwrap_or_else(|e| panic!("ID token signature: {e}"));
    assert_eq!(verified.claims["iss"], issuer.as_str());
    assert_eq!(verified.claims["aud"], NATIVE_CLIENT);
    assert_eq!(verified.claims["azp"], NATIVE_CLIENT);
    assert_eq!(verified.claims["nonce"], request.nonce.as_str());
    assert_eq!(verified.claims["preferred_username"], TEST_USER);
    let user_id = keycloak
        .admin_get(&format!("{REALM}/users?username={TEST_USER}&exact=true"))
        .await
        .unwrap()
        .unwrap()[0]["id"]
        .clone();
    assert_eq!(verified.claims["sub"], user_id);
    // `offline_access` gives an offline token: what OfflineLoginEvent would refresh with.
    let refresh =
        mc_jose::Jwt::decode_unverified(tokens["refresh_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        refresh.claim_str("typ"),
        Some("Offline"),
        "{:?}",
        refresh.claims
    );
    // A code is good once.
    let (status, replayed) = redeem(
        token_endpoint,
        &code,
        &redirect_uri,
        &request.verifier,
        Some(&device_key),
    )
    .await;
    assert_eq!((status, &replayed["error"]), (400, &json!("invalid_grant")));
    // The offline token of a public client is bound to the key: worthless without its proof,
    // or with another key's.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", NATIVE_CLIENT),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let other_key = mc_jose::SigningKey::generate().unwrap();
    for key in [None, Some(&other_key)] {
        let (status, refused) = token_request(token_endpoint, &refresh, key).await;
        assert_eq!(status, 400, "{refused:#}");
    }
    let (status, refreshed) = token_request(token_endpoint, &refresh, Some(&device_key)).await;
    assert_eq!(status, 200, "{refreshed:#}");
    assert_eq!(refreshed["token_type"], "DPoP");
    // What the runtime's audience tokens rely on (docs/protocol.md, "Keycloak"): the login
    // asked for the optional scope demo-api-audience, so its access token is also for
    // demo-api; a refresh narrowed to `openid` (the user's own refreshes) gets a token
    // without it, and the refresh token it returns still covers the scope (Keycloak keeps a
    // refresh token's scope), so a refresh narrowed to `openid demo-api-audience` gets
    // demo-api again. (The answer's `scope` member keeps naming the whole grant: only the
    // token says what it is for.)
    let access = |answer: &Value| {
        let jwt = mc_jose::Jwt::decode_unverified(answer["access_token"].as_str().unwrap());
        jwt.unwrap().claims
    };
    let for_api = |answer: &Value| {
        super::audiences(&access(answer))
            .iter()
            .any(|a| a == super::AUDIENCE)
    };
    assert!(for_api(&tokens), "{:#?}", access(&tokens));
    let mut current = refreshed["refresh_token"].as_str().unwrap().to_string();
    for (scope, audience_expected) in [
        ("openid", false),
        ("openid demo-api-audience", true),
        ("openid", false),
    ] {
        let narrowed = [
            ("grant_type", "refresh_token"),
            ("client_id", NATIVE_CLIENT),
            ("refresh_token", current.as_str()),
            ("scope", scope),
        ];
        let (status, answer) = token_request(token_endpoint, &narrowed, Some(&device_key)).await;
        assert_eq!(status, 200, "{scope}: {answer:#}");
        assert_eq!(
            for_api(&answer),
            audience_expected,
            "{scope}: {:#?}",
            access(&answer)
        );
        current = answer["refresh_token"].as_str().unwrap().to_string();
    }

    // ---- hostile: PKCE is required, and only S256 ----
    for downgrade in [
        vec![("code_challenge", None), ("code_challenge_method", None)],
        vec![("code_challenge_method", Some("plain"))],
    ] {
        let receiver = LoopbackReceiver::bind().await.unwrap();
        let redirect_uri = receiver.redirect_uri();
        let request = AuthorizationRequest::new(authorization_endpoint, &redirect_uri, &downgrade);
        let waiting = tokio::spawn(receiver.wait_for_redirect(&request.state, REDIRECT_WAIT));
        browser.navigate(&request.url).await.unwrap();
        // Keycloak answers the (registered) redirect URI with an error, never a code.
        let redirect = waiting.await.unwrap().unwrap();
        let params = query(&redirect);
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("invalid_request"),
            "{downgrade:?}: {redirect}"
        );
        assert!(!params.contains_key("code"), "{redirect}");
    }

    // ---- hostile: a redirect URI that is not registered gets no redirect at all ----
    let other_browser = driver.new_session().await.unwrap();
    for wrong in ["/elsewhere", "/callback/more"] {
        let receiver = LoopbackReceiver::bind().await.unwrap();
        let redirect_uri = format!("http://127.0.0.1:{}{wrong}", receiver.port());
        let request = AuthorizationRequest::new(authorization_endpoint, &redirect_uri, &[]);
        let waiting = tokio::spawn(receiver.wait_for_redirect(&request.state, NO_REDIRECT_WAIT));
        other_browser.navigate(&request.url).await.unwrap();
        let shown = other_browser.page_source().await.unwrap();
        assert!(shown.contains("Invalid parameter: redirect_uri"), "{shown}");
        assert!(
            other_browser
                .current_url()
                .await
                .unwrap()
                .starts_with(&issuer),
            "the browser stays at Keycloak"
        );
        assert!(matches!(
            waiting.await.unwrap(),
            Err(LoopbackError::TimedOut(_))
        ));
    }
    // `localhost` is not the registered 127.0.0.1 (RFC 8252 section 8.3).
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let redirect_uri = format!("http://localhost:{}/callback", receiver.port());
    let request = AuthorizationRequest::new(authorization_endpoint, &redirect_uri, &[]);
    other_browser.navigate(&request.url).await.unwrap();
    let shown = other_browser.page_source().await.unwrap();
    assert!(shown.contains("Invalid parameter: redirect_uri"), "{shown}");
    drop(receiver);

    // ---- hostile: a wrong password shows Keycloak's error and redirects nowhere ----
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let redirect_uri = receiver.redirect_uri();
    let request = AuthorizationRequest::new(authorization_endpoint, &redirect_uri, &[]);
    let waiting = tokio::spawn(receiver.wait_for_redirect(&request.state, NO_REDIRECT_WAIT));
    other_browser.navigate(&request.url).await.unwrap();
    log_in(&other_browser, TEST_USER, "not the password").await;
    let shown = other_browser
        .wait_for_text("Invalid username or password", REDIRECT_WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !shown.contains("not the password"),
        "the page echoes no password"
    );
    assert!(other_browser
        .current_url()
        .await
        .unwrap()
        .starts_with(&issuer));
    assert!(matches!(
        waiting.await.unwrap(),
        Err(LoopbackError::TimedOut(_))
    ));

    other_browser.close().await.unwrap();
    browser.close().await.unwrap();
}

/// The page the browser shows, for failure messages.
async fn page(browser: &Browser) -> String {
    let url = browser.current_url().await.unwrap_or_default();
    let source = browser.page_source().await.unwrap_or_default();
    format!("{url}\n{source}")
}

/// The identified lifecycle through the runtime's JSON events (issue 10): Create → browser →
/// SetAuthorisationCode with the redirect URL → exchange → restart → offline login (refresh
/// token) → logout (ClearIamTokenCache CLEAR_ALL + Restart) → offline login refused.
pub async fn runtime_flow_in_a_real_browser(keycloak: &Keycloak) {
    let runtime = super::runtime(keycloak, None);
    let post = |json: Value| {
        let runtime = runtime.clone();
        async move {
            let event = runtime
                .post_json(&json.to_string(), Some(super::WAIT))
                .await;
            serde_json::from_str::<Value>(&event.to_json()).unwrap()
        }
    };
    let ok = |answer: &Value| assert_eq!(answer["status"], "OK", "{answer:#}");

    // The app maps its API's audience to the native client's optional scope (Keycloak 26 does
    // not exchange a public client's token); `other-api` is a wrong mapping for the hostile
    // case below (that scope brings demo-api, not other-api).
    let audience_scopes = format!(
        "{audience}={audience}-audience, other-api={audience}-audience",
        audience = super::AUDIENCE
    );
    ok(&post(json!({
        "type": "StartEvent",
        "configuration": { "audienceScopes": audience_scopes },
    }))
    .await);
    let driver = ChromeDriver::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let browser = driver.new_session().await.unwrap();
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let created = post(json!({
        "type": "CreateAuthorizationRequestEvent",
        "tenantId": REALM,
        "clientId": NATIVE_CLIENT,
        "redirectUri": receiver.redirect_uri(),
    }))
    .await;
    ok(&created);
    assert_eq!(created["type"], "CreateAuthorizationRequestResultEvent");
    let authorization_url = created["authorizationUrl"].as_str().unwrap();
    let sent = query(authorization_url);
    assert_eq!(
        sent.get("client_id").map(String::as_str),
        Some(NATIVE_CLIENT)
    );
    // Keycloak advertises PAR (RFC 9126): the parameters then went by the back channel and
    // the URL carries only a reference to them.
    match sent.get("request_uri") {
        Some(reference) => {
            assert!(
                reference.starts_with("urn:ietf:params:oauth:request_uri:"),
                "{authorization_url}"
            );
            assert!(!sent.contains_key("code_challenge"), "{authorization_url}");
        }
        None => {
            assert_eq!(
                sent.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
            assert_eq!(
                sent.get("state"),
                created["state"].as_str().map(str::to_string).as_ref()
            );
        }
    }

    let state = created["state"].as_str().expect("a state");
    let waiting = tokio::spawn(receiver.wait_for_redirect(state, REDIRECT_WAIT));
    browser.navigate(authorization_url).await.unwrap();
    log_in(&browser, TEST_USER, TEST_USER_PASSWORD).await;
    let redirect = waiting.await.unwrap().unwrap();
    let set_code = json!({
        "type": "SetAuthorisationCodeEvent",
        "tenantId": REALM,
        "clientId": NATIVE_CLIENT,
        "authenticationMode": "NO",
        "redirectUrl": redirect,
    });
    ok(&post(set_code.clone()).await);
    // The same redirect again: its state was used up.
    assert_ne!(post(set_code).await["status"], "OK");

    let information = post(json!({ "type": "GetInformationEvent" })).await;
    let user = information["loggedInUser"].clone();
    assert_eq!(user["tenantId"], REALM, "{information:#}");
    let user_id = keycloak
        .admin_get(&format!("{REALM}/users?username={TEST_USER}&exact=true"))
        .await
        .unwrap()
        .unwrap()[0]["id"]
        .clone();
    assert_eq!(user["userId"], user_id, "userId is the ID token's sub");
    // Keycloak 26's standard token exchange (V2) refuses public clients, and the native
    // client `demo-app` is public (RFC 8252 §8.4): the token for demo-api comes from the
    // refresh grant narrowed to `openid demo-api-audience` (docs/protocol.md, "Keycloak").
    let timer = Instant::now();
    let exchanged =
        post(json!({ "type": "ExchangeIamTokenEvent", "audience": super::AUDIENCE })).await;
    let narrowed_refresh = timer.elapsed();
    ok(&exchanged);
    let token = exchanged["token"].as_str().unwrap().to_string();
    let iam = mc_jose::Jwt::decode_unverified(&token).unwrap();
    assert!(
        super::audiences(&iam.claims)
            .iter()
            .any(|a| a == super::AUDIENCE),
        "{:#?}",
        iam.claims
    );
    assert_eq!(iam.claim_str("sub"), user_id.as_str());
    assert_eq!(iam.claim_str("azp"), Some(NATIVE_CLIENT));
    assert!(
        iam.claims.get("cnf").is_some(),
        "DPoP-bound: {:#?}",
        iam.claims
    );
    let timer = Instant::now();
    let again = post(json!({ "type": "ExchangeIamTokenEvent", "audience": super::AUDIENCE })).await;
    eprintln!(
        "audience token by narrowed refresh: {narrowed_refresh:?} (verified, rotation stored); \
         from the cache: {:?}",
        timer.elapsed()
    );
    assert_eq!(again["token"], exchanged["token"], "served from the cache");
    // The suite's resource server (Keycloak's JWKS, aud demo-api, the DPoP proof) takes it.
    let called = post(json!({
        "type": "CreateHttpCommonRequest",
        "fullUrl": format!("{}/orders", super::RESOURCE_ORIGIN.get().unwrap()),
        "method": "GET",
        "audience": super::AUDIENCE,
    }))
    .await;
    assert_eq!(called["httpStatus"], 200, "{called:#}");

    // An audience the app mapped to no scope: Keycloak's refusal of the exchange, with what
    // to configure; the user stays logged in.
    let refused = post(json!({ "type": "ExchangeIamTokenEvent", "audience": "no-such-api" })).await;
    assert_ne!(refused["status"], "OK", "{refused:#}");
    let description = refused["errorDescription"].as_str().unwrap_or_default();
    assert!(
        description.contains("token exchange is not enabled")
            && description.contains("configuration.audienceScopes"),
        "{refused:#}"
    );
    // A mapping whose scope brings another audience: INVALID_TOKEN, nothing cached (asked
    // again, it is refused again rather than served).
    for _ in 0..2 {
        let wrong = post(json!({ "type": "ExchangeIamTokenEvent", "audience": "other-api" })).await;
        assert_eq!(wrong["status"], "INVALID_TOKEN", "{wrong:#}");
        assert!(wrong.get("token").is_none_or(Value::is_null), "{wrong:#}");
    }
    let state = post(json!({ "type": "GetStateEvent" })).await;
    assert_eq!(state["sdkState"], "LOGGED_IN", "{state:#}");

    ok(&post(json!({ "type": "RestartEvent" })).await);
    ok(&post(json!({ "type": "OfflineLoginEvent" })).await);
    let claims = post(json!({ "type": "GetIamAccessTokenClaimsEvent" })).await;
    assert_eq!(claims["claims"]["sub"], user_id, "{claims:#}");
    // The offline login's refresh asked for `openid` only (the internal token has no API
    // audience: the dev IDP's test shows what the runtime sends, the browser case above what
    // Keycloak then issues). The refresh token still covers the audience scope, so the
    // audience token comes again.
    let renewed = post(json!({
        "type": "ExchangeIamTokenEvent",
        "audience": super::AUDIENCE,
        "forceUpdate": true,
    }))
    .await;
    ok(&renewed);
    assert_ne!(renewed["token"], exchanged["token"]);

    // Logout as the MC-SDK does it.
    ok(&post(json!({ "type": "ClearIamTokenCacheEvent", "clearBehavior": "CLEAR_ALL" })).await);
    ok(&post(json!({ "type": "RestartEvent" })).await);
    let refused = post(json!({ "type": "OfflineLoginEvent" })).await;
    assert_eq!(refused["status"], "NO_TOKEN_DATA_AVAILABLE", "{refused:#}");
    browser.close().await.unwrap();
}

/// The anonymous → identified upgrade at Keycloak (issue 10): a device enrolled anonymously
/// logs its user in through the login page; the anonymous registration (a Keycloak client) is
/// deleted, the result names it in `replacedUserIdentifier`, and the identified user is the
/// only one left, logging in offline with its DPoP-bound refresh token.
pub async fn anonymous_device_upgraded_in_a_real_browser(keycloak: &Keycloak) {
    use mc_events::*;

    let runtime = super::runtime(keycloak, None);
    mc_testkit::assert_status(
        &super::post(&runtime, StartEvent::new()).await,
        StatusType::Ok,
    );
    mc_testkit::assert_status(
        &super::post(&runtime, super::enroll(AuthenticationMode::No, None)).await,
        StatusType::Ok,
    );
    let (anonymous, _) = super::information(&runtime).await;
    let anonymous_client = super::device_client(&runtime, &anonymous).await;
    assert!(
        keycloak
            .client(REALM, &anonymous_client)
            .await
            .unwrap()
            .is_some(),
        "the anonymous device is registered at Keycloak"
    );

    let driver = ChromeDriver::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let browser = driver.new_session().await.unwrap();
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let created = super::post(
        &runtime,
        CreateAuthorizationRequestEvent::new(REALM, NATIVE_CLIENT, receiver.redirect_uri()),
    )
    .await;
    mc_testkit::assert_status(&created, StatusType::Ok);
    let waiting = tokio::spawn(receiver.wait_for_redirect(&created.state, REDIRECT_WAIT));
    browser.navigate(&created.authorization_url).await.unwrap();
    log_in(&browser, TEST_USER, TEST_USER_PASSWORD).await;
    let redirect = waiting.await.unwrap().unwrap();
    browser.close().await.unwrap();
    let upgraded = super::post(
        &runtime,
        SetAuthorisationCodeEvent::with_redirect_url(
            REALM,
            NATIVE_CLIENT,
            AuthenticationMode::No,
            redirect,
        ),
    )
    .await;
    mc_testkit::assert_status(&upgraded, StatusType::Ok);
    assert_eq!(
        upgraded.replaced_user_identifier.as_ref(),
        Some(&anonymous),
        "{upgraded:#?}"
    );
    assert!(
        keycloak
            .client(REALM, &anonymous_client)
            .await
            .unwrap()
            .is_none(),
        "the anonymous registration is deleted at Keycloak"
    );

    let (user, _) = super::information(&runtime).await;
    assert_ne!(user, anonymous);
    assert_eq!(user.tenant_id, REALM);
    // Only the identified user is left on the device, and its offline login works: the
    // refresh token Keycloak bound (DPoP) at the redemption takes proofs of the key the
    // runtime kept. (Which key that is cannot be seen from here: for an identified user
    // GetIamAccessTokenClaims lists the ID token's claims, and Keycloak refuses the exchange
    // whose token would show `cnf.jkt`.)
    let restarted = super::post(&runtime, RestartEvent::new()).await;
    let users: Vec<_> = restarted
        .user_details_list
        .into_iter()
        .map(|u| u.user_identifier)
        .collect();
    assert_eq!(users, vec![user.clone()]);
    mc_testkit::assert_status(
        &super::post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_eq!(super::information(&runtime).await.0, user);
}
