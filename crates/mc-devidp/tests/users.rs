//! The dev IDP as an authorization server for users, over real HTTP on 127.0.0.1: the login
//! form, PKCE, PAR, the code and refresh grants, revocation and step-up, driven by reqwest as an
//! app and its browser would, each with its hostile variants.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use mc_devidp::{
    form_login, DevIdp, DevIdpConfig, DevUser, FormLoginError, PublicClient, ACR_PASSWORD,
    ACR_STRONG, DEMO_APP_CLIENT, DEMO_USER, DEMO_USER_OTP, DEMO_USER_PASSWORD, DEMO_USER_SUB,
};
use mc_jose::{random_token, sha256_b64url, unix_now, verify_es256, JwkSet, Jwt, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const REDIRECT: &str = "http://127.0.0.1:43123/callback";

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A browser-like client: redirects are looked at, never followed.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Idp {
    idp: DevIdp,
    http: reqwest::Client,
    issuer: String,
}

async fn start_with(config: DevIdpConfig) -> Idp {
    let idp = DevIdp::start(any_port(), config).await.unwrap();
    let issuer = idp.issuer("demo");
    Idp {
        idp,
        http: http(),
        issuer,
    }
}

async fn start() -> Idp {
    start_with(DevIdpConfig::default()).await
}

/// What an app keeps for one authorization request.
struct Login {
    verifier: String,
    state: String,
    nonce: String,
    redirect_uri: String,
}

impl Login {
    fn new() -> Self {
        Self {
            verifier: random_token(32),
            state: random_token(16),
            nonce: random_token(16),
            redirect_uri: REDIRECT.to_owned(),
        }
    }

    fn challenge(&self) -> String {
        sha256_b64url(self.verifier.as_bytes())
    }

    /// The authorization parameters, `extra` replacing or adding (an empty value removes).
    fn params(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("client_id", DEMO_APP_CLIENT.to_owned()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("response_type", "code".to_owned()),
            ("scope", "openid offline_access".to_owned()),
            ("state", self.state.clone()),
            ("nonce", self.nonce.clone()),
            ("code_challenge", self.challenge()),
            ("code_challenge_method", "S256".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (name, value) in extra {
            params.retain(|(k, _)| k != name);
            if !value.is_empty() {
                params.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        params
    }
}

impl Idp {
    fn authorization_url(&self, params: &[(String, String)]) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        format!("{}/protocol/openid-connect/auth?{query}", self.issuer)
    }

    fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    /// Signs in as the demo user and answers the redirect's query.
    async fn sign_in(&self, login: &Login, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let url = self.authorization_url(&login.params(extra));
        let location = form_login(&self.http, &url, DEMO_USER, DEMO_USER_PASSWORD, None)
            .await
            .unwrap();
        redirect_query(&location, &login.redirect_uri)
    }

    async fn code(&self, login: &Login, extra: &[(&str, &str)]) -> String {
        let query = self.sign_in(login, extra).await;
        query.get("code").cloned().expect("a code in the redirect")
    }

    async fn redeem(
        &self,
        login: &Login,
        code: &str,
        client_id: &str,
        dpop: Option<&SigningKey>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.token_endpoint()).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &login.redirect_uri),
            ("code_verifier", &login.verifier),
            ("client_id", client_id),
        ]);
        if let Some(key) = dpop {
            request = request.header("DPoP", proof(key, "POST", &self.token_endpoint(), None));
        }
        request.send().await.unwrap()
    }

    async fn refresh(&self, refresh_token: &str, dpop: Option<&SigningKey>) -> reqwest::Response {
        let mut request = self.http.post(self.token_endpoint()).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", DEMO_APP_CLIENT),
        ]);
        if let Some(key) = dpop {
            request = request.header("DPoP", proof(key, "POST", &self.token_endpoint(), None));
        }
        request.send().await.unwrap()
    }

    async fn revoke(&self, token: &str, hint: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/protocol/openid-connect/revoke", self.issuer))
            .form(&[
                ("token", token),
                ("token_type_hint", hint),
                ("client_id", DEMO_APP_CLIENT),
            ])
            .send()
            .await
            .unwrap()
    }

    /// RFC 8693 exchange of a user's access token by the public client, for `demo-api`.
    async fn exchange(&self, subject_token: &str, dpop: Option<&SigningKey>) -> reqwest::Response {
        let mut request = self.http.post(self.token_endpoint()).form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", DEMO_APP_CLIENT),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "demo-api"),
        ]);
        if let Some(key) = dpop {
            request = request.header("DPoP", proof(key, "POST", &self.token_endpoint(), None));
        }
        request.send().await.unwrap()
    }

    /// Calls a demo resource with `token` (DPoP with a proof of `dpop`, else Bearer).
    async fn resource(
        &self,
        path: &str,
        token: &str,
        dpop: Option<&SigningKey>,
    ) -> reqwest::Response {
        let url = format!("{}{path}", self.idp.base_url());
        let request = match dpop {
            Some(key) => self
                .http
                .get(&url)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof(key, "GET", &url, Some(token))),
            None => self.http.get(&url).bearer_auth(token),
        };
        request.send().await.unwrap()
    }

    async fn jwks(&self) -> JwkSet {
        let url = format!("{}/protocol/openid-connect/certs", self.issuer);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Signs in, redeems with `dpop` and answers the token response.
    async fn tokens(&self, dpop: Option<&SigningKey>) -> Value {
        let login = Login::new();
        let code = self.code(&login, &[]).await;
        let response = self.redeem(&login, &code, DEMO_APP_CLIENT, dpop).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// A DPoP proof (RFC 9449 §4.2).
fn proof(key: &SigningKey, htm: &str, htu: &str, access_token: Option<&str>) -> String {
    let mut header = Map::new();
    let mut jwk = serde_json::to_value(key.public_jwk()).unwrap();
    jwk.as_object_mut().unwrap().remove("kid");
    header.insert("jwk".into(), jwk);
    let mut claims = json!({ "htm": htm, "htu": htu, "iat": unix_now(), "jti": random_token(16) });
    if let Some(token) = access_token {
        claims["ath"] = json!(sha256_b64url(token.as_bytes()));
    }
    key.sign_jwt("dpop+jwt", header, &claims).unwrap()
}

fn thumbprint(key: &SigningKey) -> String {
    key.public_jwk().thumbprint().unwrap()
}

/// The query of a redirect to `redirect_uri` (which it must start with).
fn redirect_query(location: &str, redirect_uri: &str) -> HashMap<String, String> {
    let (base, query) = location.split_once('?').expect("a query in the redirect");
    assert_eq!(base, redirect_uri, "redirected elsewhere: {location}");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn location_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn claims(token: &str) -> Map<String, Value> {
    Jwt::decode_unverified(token).unwrap().claims
}

fn str_of(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

/// RFC 9110 §11.6.1 challenge: the scheme and its auth-params (quoted or token values).
fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = header.split_once(' ').unwrap();
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').unwrap();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap();
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        assert!(
            params
                .insert(name.trim().to_owned(), value.to_owned())
                .is_none(),
            "repeated auth-param {name}"
        );
        rest = after.trim_start_matches([',', ' ']);
    }
    (scheme.to_owned(), params)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_advertises_the_user_endpoints() {
    let t = start().await;
    let doc: Value = t
        .http
        .get(format!("{}/.well-known/openid-configuration", t.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = &t.issuer;
    assert_eq!(
        doc["authorization_endpoint"],
        json!(format!("{issuer}/protocol/openid-connect/auth"))
    );
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        json!(format!("{issuer}/protocol/openid-connect/ext/par/request"))
    );
    assert_eq!(
        doc["revocation_endpoint"],
        json!(format!("{issuer}/protocol/openid-connect/revoke"))
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(
        doc["acr_values_supported"],
        json!([ACR_PASSWORD, ACR_STRONG])
    );
    for grant in ["authorization_code", "refresh_token"] {
        assert!(doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(grant)));
    }
    for scope in ["openid", "offline_access"] {
        assert!(doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(scope)));
    }
}

#[tokio::test]
async fn happy_flow_authorize_form_code_tokens_refresh_exchange_revoke() {
    let t = start().await;
    let key = SigningKey::generate().unwrap();
    let login = Login::new();
    let jkt = thumbprint(&key);
    let query = t.sign_in(&login, &[("dpop_jkt", &jkt)]).await;
    assert_eq!(query.get("state"), Some(&login.state));
    assert_eq!(query.get("iss"), Some(&t.issuer), "RFC 9207 iss");
    let code = &query["code"];

    let response = t.redeem(&login, code, DEMO_APP_CLIENT, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["scope"], "openid offline_access");
    let access_token = str_of(&body, "access_token");
    let at = claims(&access_token);
    assert_eq!(at["sub"], DEMO_USER_SUB);
    assert_eq!(at["cnf"]["jkt"], json!(jkt));
    assert_eq!(at["acr"], ACR_PASSWORD);

    // The ID token: signed by the tenant key, with every claim a client checks.
    let jwks = t.jwks().await;
    let id_token = verify_es256(&str_of(&body, "id_token"), &jwks).unwrap();
    let id = &id_token.claims;
    assert_eq!(id["iss"], json!(t.issuer));
    assert_eq!(id["sub"], DEMO_USER_SUB);
    assert_eq!(id["aud"], DEMO_APP_CLIENT);
    assert_eq!(id["azp"], DEMO_APP_CLIENT);
    assert_eq!(id["nonce"], json!(login.nonce));
    assert_eq!(id["acr"], ACR_PASSWORD);
    assert_eq!(id["amr"], json!(["pwd"]));
    let now = unix_now();
    assert!(id["exp"].as_i64().unwrap() > now);
    assert!((id["iat"].as_i64().unwrap() - now).abs() < 30);
    assert!((id["auth_time"].as_i64().unwrap() - now).abs() < 30);

    // Refresh: a new refresh token each time, still DPoP-bound to the same key.
    let first_refresh = str_of(&body, "refresh_token");
    let response = t.refresh(&first_refresh, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    let second_refresh = str_of(&refreshed, "refresh_token");
    assert_ne!(first_refresh, second_refresh);
    assert_eq!(refreshed["token_type"], "DPoP");
    assert_eq!(
        claims(&str_of(&refreshed, "access_token"))["cnf"]["jkt"],
        json!(jkt)
    );
    let refreshed_id = verify_es256(&str_of(&refreshed, "id_token"), &jwks).unwrap();
    assert_eq!(refreshed_id.claims["auth_time"], id["auth_time"]);

    // The user's token is accepted by the exchange; sub and acr carry over to demo-api.
    let user_token = str_of(&refreshed, "access_token");
    let response = t.exchange(&user_token, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let exchanged: Value = response.json().await.unwrap();
    let exchanged_token = str_of(&exchanged, "access_token");
    let ex = claims(&exchanged_token);
    assert_eq!(ex["sub"], DEMO_USER_SUB);
    assert_eq!(ex["acr"], ACR_PASSWORD);
    assert_eq!(ex["aud"], "demo-api");
    assert_eq!(ex["azp"], DEMO_APP_CLIENT);
    let response = t.resource("/demo/echo", &exchanged_token, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["sub"], DEMO_USER_SUB);

    // Revocation: the refresh token and everything of its login, the exchanged token included.
    let response = t.revoke(&second_refresh, "refresh_token").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, error) = error_of(t.refresh(&second_refresh, Some(&key)).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let response = t.resource("/demo/echo", &exchanged_token, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, error) = error_of(t.exchange(&user_token, Some(&key)).await).await;
    assert_eq!(error, "invalid_grant");
    // Unknown tokens: 200 (RFC 7009 §2.2).
    assert_eq!(
        t.revoke("no-such-token", "refresh_token").await.status(),
        StatusCode::OK
    );

    let stats = t.idp.stats();
    assert_eq!(stats.token_authorization_code, 1);
    assert_eq!(stats.token_refresh, 2);
    assert_eq!(stats.revocation, 2);
}

#[tokio::test]
async fn redirect_uris_match_exactly_except_the_loopback_port() {
    let t = start().await;
    let login = Login::new();
    let page = |redirect: &str| t.authorization_url(&login.params(&[("redirect_uri", redirect)]));
    // Registered ones, and loopback on another port (RFC 8252 §7.3): the login page.
    for good in [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:50999/callback",
        "http://[::1]:8080/callback",
        "com.example.demo:/callback",
    ] {
        let response = t.http.get(page(good)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{good}");
        assert!(response.text().await.unwrap().contains("<form"), "{good}");
    }
    // Anything else: an error page, never a redirect.
    for bad in [
        "http://127.0.0.1:50999/other",
        "http://127.0.0.1:50999/callback/",
        "http://127.0.0.1:50999/callback?x=1",
        "http://127.0.0.1:50999/callback#f",
        "http://127.1:50999/callback",
        "http://localhost:50999/callback",
        "https://127.0.0.1:50999/callback",
        "http://evil.example/callback",
        "com.example.demo:/other",
        "com.example.evil:/callback",
    ] {
        let response = t.http.get(page(bad)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(location_of(&response).is_none(), "{bad} redirected");
        assert!(
            response.text().await.unwrap().contains("not registered"),
            "{bad}"
        );
    }
    // Unknown client, missing redirect URI: error page too.
    for params in [
        login.params(&[("client_id", "no-such-app")]),
        login.params(&[("redirect_uri", "")]),
        login.params(&[("client_id", "")]),
    ] {
        let response = t
            .http
            .get(t.authorization_url(&params))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(location_of(&response).is_none());
    }
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let t = start().await;
    let login = Login::new();
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "too-short")],
    ] {
        let response = t
            .http
            .get(t.authorization_url(&login.params(&extra)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{extra:?}");
        let query = redirect_query(&location_of(&response).unwrap(), REDIRECT);
        assert_eq!(query["error"], "invalid_request", "{extra:?}");
        assert_eq!(query["state"], login.state);
        assert_eq!(query["iss"], t.issuer);
        assert!(!query.contains_key("code"));
    }
    // Other refusals that go back to the app.
    for (extra, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
        (vec![("dpop_jkt", "not-a-thumbprint")], "invalid_request"),
    ] {
        let response = t
            .http
            .get(t.authorization_url(&login.params(&extra)))
            .send()
            .await
            .unwrap();
        let query = redirect_query(&location_of(&response).unwrap(), REDIRECT);
        assert_eq!(query["error"], error, "{extra:?}");
    }
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_and_burns_the_code() {
    let t = start().await;
    let login = Login::new();
    let code = t.code(&login, &[]).await;
    let wrong = Login {
        verifier: random_token(32),
        ..Login::new()
    };
    let wrong = Login {
        redirect_uri: login.redirect_uri.clone(),
        ..wrong
    };
    let (status, error) = error_of(t.redeem(&wrong, &code, DEMO_APP_CLIENT, None).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (_, error) = error_of(t.redeem(&login, &code, DEMO_APP_CLIENT, None).await).await;
    assert_eq!(error, "invalid_grant", "a code is worth one attempt");
}

#[tokio::test]
async fn a_code_used_twice_is_refused_and_its_tokens_revoked() {
    let t = start().await;
    let login = Login::new();
    let code = t.code(&login, &[]).await;
    let response = t.redeem(&login, &code, DEMO_APP_CLIENT, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["token_type"], "Bearer");
    // Before the reuse the first tokens work.
    let user_token = str_of(&first, "access_token");
    assert_eq!(t.exchange(&user_token, None).await.status(), StatusCode::OK);

    let (status, error) = error_of(t.redeem(&login, &code, DEMO_APP_CLIENT, None).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (_, error) = error_of(t.refresh(&str_of(&first, "refresh_token"), None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "refresh token of the first use revoked"
    );
    let (_, error) = error_of(t.exchange(&user_token, None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "access token of the first use revoked"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let t = start_with(DevIdpConfig {
        authorization_code_ttl: Duration::from_millis(300),
        ..DevIdpConfig::default()
    })
    .await;
    let login = Login::new();
    let code = t.code(&login, &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, error) = error_of(t.redeem(&login, &code, DEMO_APP_CLIENT, None).await).await;
    assert_eq!(error, "invalid_grant");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let t = start_with(
        DevIdpConfig::default().with_public_client(PublicClient::new(
            "other-app",
            &["http://127.0.0.1/callback"],
        )),
    )
    .await;
    let login = Login::new();
    let code = t.code(&login, &[]).await;
    let (_, error) = error_of(t.redeem(&login, &code, "other-app", None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "code of demo-app redeemed by other-app"
    );

    let login = Login::new();
    let code = t.code(&login, &[]).await;
    let moved = Login {
        redirect_uri: "http://127.0.0.1:1/callback".to_owned(),
        verifier: login.verifier.clone(),
        ..Login::new()
    };
    let (_, error) = error_of(t.redeem(&moved, &code, DEMO_APP_CLIENT, None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "another redirect_uri at the token endpoint"
    );

    // Unknown client, and a public client pretending to authenticate.
    let login = Login::new();
    let code = t.code(&login, &[]).await;
    let (status, error) = error_of(t.redeem(&login, &code, "no-such-app", None).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_that_key() {
    let t = start().await;
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let login = Login::new();
    let code = t.code(&login, &[("dpop_jkt", &thumbprint(&key))]).await;
    let (_, error) = error_of(t.redeem(&login, &code, DEMO_APP_CLIENT, Some(&other)).await).await;
    assert_eq!(error, "invalid_grant", "proof by another key than dpop_jkt");

    let login = Login::new();
    let code = t.code(&login, &[("dpop_jkt", &thumbprint(&key))]).await;
    let (_, error) = error_of(t.redeem(&login, &code, DEMO_APP_CLIENT, None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "no proof although dpop_jkt was given"
    );
}

#[tokio::test]
async fn a_bound_refresh_token_needs_its_key() {
    let t = start().await;
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let tokens = t.tokens(Some(&key)).await;
    let refresh_token = str_of(&tokens, "refresh_token");
    let (_, error) = error_of(t.refresh(&refresh_token, Some(&other)).await).await;
    assert_eq!(error, "invalid_grant", "refresh with another DPoP key");
    let (_, error) = error_of(t.refresh(&refresh_token, None).await).await;
    assert_eq!(error, "invalid_dpop_proof", "refresh without a proof");
    // Neither attempt rotated or revoked it: the holder of the key still refreshes.
    assert_eq!(
        t.refresh(&refresh_token, Some(&key)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_family() {
    let t = start().await;
    let tokens = t.tokens(None).await;
    let old = str_of(&tokens, "refresh_token");
    let response = t.refresh(&old, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    let new = str_of(&rotated, "refresh_token");

    let (_, error) = error_of(t.refresh(&old, None).await).await;
    assert_eq!(error, "invalid_grant", "the rotated-out token");
    let (_, error) = error_of(t.refresh(&new, None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "the whole family is revoked after a reuse"
    );
    let (_, error) = error_of(t.exchange(&str_of(&rotated, "access_token"), None).await).await;
    assert_eq!(error, "invalid_grant");
}

#[tokio::test]
async fn admin_revocation_and_the_fail_next_refresh_knob() {
    let t = start().await;
    let tokens = t.tokens(None).await;
    let refresh_token = str_of(&tokens, "refresh_token");

    t.idp.faults().set_fail_next_refresh(true);
    let (_, error) = error_of(t.refresh(&refresh_token, None).await).await;
    assert_eq!(error, "invalid_grant");
    let response = t.refresh(&refresh_token, None).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the knob fails one refresh only"
    );
    let refresh_token = str_of(&response.json().await.unwrap(), "refresh_token");

    assert_eq!(t.idp.revoke_user_tokens("demo", DEMO_USER_SUB), 1);
    let (_, error) = error_of(t.refresh(&refresh_token, None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "refresh after an admin revoked the user"
    );
    assert_eq!(t.idp.revoke_user_tokens("demo", DEMO_USER_SUB), 0);
}

#[tokio::test]
async fn revocation_checks_the_client_and_access_tokens_can_be_revoked() {
    let t = start_with(
        DevIdpConfig::default().with_public_client(PublicClient::new(
            "other-app",
            &["http://127.0.0.1/callback"],
        )),
    )
    .await;
    let tokens = t.tokens(None).await;
    let revoke_as = |client: &'static str, token: String| {
        let http = t.http.clone();
        let url = format!("{}/protocol/openid-connect/revoke", t.issuer);
        async move {
            http.post(url)
                .form(&[("token", token.as_str()), ("client_id", client)])
                .send()
                .await
                .unwrap()
        }
    };
    let refresh_token = str_of(&tokens, "refresh_token");
    let (_, error) = error_of(revoke_as("other-app", refresh_token.clone()).await).await;
    assert_eq!(error, "invalid_request", "another client's token");
    let (status, error) = error_of(revoke_as("no-such-app", refresh_token.clone()).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert_eq!(
        t.refresh(&refresh_token, None).await.status(),
        StatusCode::OK
    );

    let tokens = t.tokens(None).await;
    let access_token = str_of(&tokens, "access_token");
    assert_eq!(
        t.revoke(&access_token, "access_token").await.status(),
        StatusCode::OK
    );
    let (_, error) = error_of(t.exchange(&access_token, None).await).await;
    assert_eq!(
        error, "invalid_grant",
        "a revoked access token is not exchanged"
    );
}

#[tokio::test]
async fn par_request_uri_is_single_use_bound_to_the_client_and_expires() {
    let t = start_with(
        DevIdpConfig {
            par_ttl: Duration::from_millis(400),
            ..DevIdpConfig::default()
        }
        .with_public_client(PublicClient::new(
            "other-app",
            &["http://127.0.0.1/callback"],
        )),
    )
    .await;
    let par_endpoint = format!("{}/protocol/openid-connect/ext/par/request", t.issuer);
    let push = |params: Vec<(String, String)>| {
        let http = t.http.clone();
        let url = par_endpoint.clone();
        async move { http.post(url).form(&params).send().await.unwrap() }
    };
    let login = Login::new();
    let response = push(login.params(&[])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let pushed: Value = response.json().await.unwrap();
    let request_uri = str_of(&pushed, "request_uri");
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert!(pushed["expires_in"].as_u64().unwrap() >= 1);
    let by_reference = |client: &str, uri: &str| {
        t.authorization_url(&[
            ("client_id".to_owned(), client.to_owned()),
            ("request_uri".to_owned(), uri.to_owned()),
        ])
    };
    // Used once: the login works with the pushed parameters.
    let location = form_login(
        &t.http,
        &by_reference(DEMO_APP_CLIENT, &request_uri),
        DEMO_USER,
        DEMO_USER_PASSWORD,
        None,
    )
    .await
    .unwrap();
    let query = redirect_query(&location, REDIRECT);
    assert_eq!(query["state"], login.state);
    let response = t
        .redeem(&login, &query["code"], DEMO_APP_CLIENT, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Used twice: error page.
    let response = t
        .http
        .get(by_reference(DEMO_APP_CLIENT, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location_of(&response).is_none());

    // Pushed by demo-app, presented by other-app: error page.
    let request_uri = str_of(
        &push(login.params(&[])).await.json().await.unwrap(),
        "request_uri",
    );
    let response = t
        .http
        .get(by_reference("other-app", &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location_of(&response).is_none());

    // Expired: error page.
    let request_uri = str_of(
        &push(login.params(&[])).await.json().await.unwrap(),
        "request_uri",
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let response = t
        .http
        .get(by_reference(DEMO_APP_CLIENT, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // PAR validates as the authorization endpoint does, answering JSON errors.
    let (status, error) =
        error_of(push(login.params(&[("code_challenge_method", "plain")])).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (_, error) =
        error_of(push(login.params(&[("redirect_uri", "http://evil.example/cb")])).await).await;
    assert_eq!(error, "invalid_request");
    let (status, error) = error_of(push(login.params(&[("client_id", "no-such-app")])).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let (_, error) = error_of(push(login.params(&[("request_uri", "urn:x")])).await).await;
    assert_eq!(error, "invalid_request");
}

#[tokio::test]
async fn the_login_form_refuses_forged_stale_and_wrong_posts() {
    let t = start_with(DevIdpConfig {
        login_page_ttl: Duration::from_millis(400),
        ..DevIdpConfig::default()
    })
    .await;
    let form_url = format!("{}/protocol/openid-connect/auth/login", t.issuer);
    let post = |login_request: &str, password: &str, action: &str| {
        let http = t.http.clone();
        let url = form_url.clone();
        let form = vec![
            ("login_request".to_owned(), login_request.to_owned()),
            ("username".to_owned(), DEMO_USER.to_owned()),
            ("password".to_owned(), password.to_owned()),
            ("action".to_owned(), action.to_owned()),
        ];
        async move { http.post(url).form(&form).send().await.unwrap() }
    };
    let open_page = || async {
        let login = Login::new();
        let html = t
            .http
            .get(t.authorization_url(&login.params(&[])))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "name=\"login_request\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        let id = html[start..start + html[start..].find('"').unwrap()].to_owned();
        (login, id)
    };

    // A forged hidden field.
    let response = post(&random_token(32), DEMO_USER_PASSWORD, "login").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location_of(&response).is_none());

    // Wrong password: the form again with a message, no redirect; then the right one works.
    let (login, id) = open_page().await;
    let response = post(&id, "wrong", "login").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(location_of(&response).is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("Wrong username or password") && html.contains("<form"));
    let response = post(&id, DEMO_USER_PASSWORD, "login").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let query = redirect_query(&location_of(&response).unwrap(), REDIRECT);
    assert_eq!(query["state"], login.state);
    assert!(query.contains_key("code"));
    // The same hidden field again (stale): refused.
    let response = post(&id, DEMO_USER_PASSWORD, "login").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Cancel: access_denied back to the app, with state and iss.
    let (login, id) = open_page().await;
    let response = post(&id, "", "cancel").await;
    let query = redirect_query(&location_of(&response).unwrap(), REDIRECT);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], login.state);
    assert_eq!(query["iss"], t.issuer);

    // Too many wrong passwords close the page.
    let (_, id) = open_page().await;
    for _ in 0..4 {
        assert_eq!(post(&id, "wrong", "login").await.status(), StatusCode::OK);
    }
    let response = post(&id, "wrong", "login").await;
    let query = redirect_query(&location_of(&response).unwrap(), REDIRECT);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(
        post(&id, DEMO_USER_PASSWORD, "login").await.status(),
        StatusCode::BAD_REQUEST
    );

    // An expired page.
    let (_, id) = open_page().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let response = post(&id, DEMO_USER_PASSWORD, "login").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location_of(&response).is_none());

    // form_login reports a refused login rather than a URL.
    let login = Login::new();
    let url = t.authorization_url(&login.params(&[]));
    let refused = form_login(&t.http, &url, DEMO_USER, "wrong", None).await;
    assert!(
        matches!(refused, Err(FormLoginError::Refused { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn html_in_parameters_is_escaped_on_the_page() {
    let t = start().await;
    let login = Login::new();
    let url = t.authorization_url(&login.params(&[("login_hint", "\"><script>alert(1)</script>")]));
    let html = t.http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn oversized_and_repeated_parameters_are_refused() {
    let t = start().await;
    let login = Login::new();
    let long = "x".repeat(3000);
    for params in [
        login.params(&[("state", &long)]),
        login.params(&[("login_hint", &long)]),
        {
            let mut p = login.params(&[]);
            p.push((
                "redirect_uri".to_owned(),
                "http://127.0.0.1/callback".to_owned(),
            ));
            p
        },
    ] {
        let response = t
            .http
            .get(t.authorization_url(&params))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(location_of(&response).is_none());
    }
    // At the token endpoint.
    let response = t
        .http
        .post(t.token_endpoint())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", long.as_str()),
            ("client_id", DEMO_APP_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "invalid_grant");
}

#[tokio::test]
async fn step_up_challenges_a_weak_login_as_rfc_9470_says() {
    let t = start().await;
    let key = SigningKey::generate().unwrap();

    // DPoP: a password-only login, exchanged for demo-api.
    let tokens = t.tokens(Some(&key)).await;
    let exchanged: Value = t
        .exchange(&str_of(&tokens, "access_token"), Some(&key))
        .await
        .json()
        .await
        .unwrap();
    let weak = str_of(&exchanged, "access_token");
    let response = t.resource("/demo/step-up", &weak, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let header = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let (scheme, params) = parse_challenge(&header);
    assert_eq!(scheme, "DPoP");
    assert_eq!(params["error"], "insufficient_user_authentication");
    assert_eq!(params["acr_values"], ACR_STRONG);
    assert!(params["max_age"].parse::<u64>().unwrap() > 0);
    assert!(!params["error_description"].is_empty());

    // Bearer: the same challenge in the Bearer scheme.
    let tokens = t.tokens(None).await;
    let exchanged: Value = t
        .exchange(&str_of(&tokens, "access_token"), None)
        .await
        .json()
        .await
        .unwrap();
    let response = t
        .resource("/demo/step-up", &str_of(&exchanged, "access_token"), None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (scheme, params) =
        parse_challenge(response.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(scheme, "Bearer");
    assert_eq!(params["error"], "insufficient_user_authentication");
    assert_eq!(params["acr_values"], ACR_STRONG);

    // Step up: acr_values asks for the second factor; the new token passes.
    let login = Login::new();
    let url = t.authorization_url(&login.params(&[("acr_values", ACR_STRONG), ("max_age", "600")]));
    let missing = form_login(&t.http, &url, DEMO_USER, DEMO_USER_PASSWORD, None).await;
    assert!(
        matches!(missing, Err(FormLoginError::SecondFactorRequired)),
        "{missing:?}"
    );
    let url = t.authorization_url(&login.params(&[("acr_values", ACR_STRONG)]));
    let wrong = form_login(&t.http, &url, DEMO_USER, DEMO_USER_PASSWORD, Some("000000")).await;
    assert!(
        matches!(wrong, Err(FormLoginError::Refused { .. })),
        "{wrong:?}"
    );
    let url = t.authorization_url(&login.params(&[("acr_values", ACR_STRONG)]));
    let location = form_login(
        &t.http,
        &url,
        DEMO_USER,
        DEMO_USER_PASSWORD,
        Some(DEMO_USER_OTP),
    )
    .await
    .unwrap();
    let code = redirect_query(&location, REDIRECT)["code"].clone();
    let tokens: Value = t
        .redeem(&login, &code, DEMO_APP_CLIENT, Some(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims(&str_of(&tokens, "id_token"))["acr"], ACR_STRONG);
    let exchanged: Value = t
        .exchange(&str_of(&tokens, "access_token"), Some(&key))
        .await
        .json()
        .await
        .unwrap();
    let strong = str_of(&exchanged, "access_token");
    assert_eq!(claims(&strong)["acr"], ACR_STRONG);
    assert_eq!(claims(&strong)["sub"], DEMO_USER_SUB);
    let response = t.resource("/demo/step-up", &strong, Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A device token (acr 0) is challenged too, and no token at all is a plain 401.
    let response = t.resource("/demo/step-up", "not-a-token", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_added_at_run_time_sign_in_with_their_own_sub() {
    let t = start().await;
    let alice = DevUser::new("alice", "alice-pw", "424242");
    assert!(t.idp.add_user(alice.clone()));
    assert!(!t.idp.add_user(alice.clone()), "username taken");
    let login = Login::new();
    let url = t.authorization_url(&login.params(&[]));
    let location = form_login(&t.http, &url, "alice", "alice-pw", None)
        .await
        .unwrap();
    let code = redirect_query(&location, REDIRECT)["code"].clone();
    let tokens: Value = t
        .redeem(&login, &code, DEMO_APP_CLIENT, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(&str_of(&tokens, "id_token"))["sub"],
        json!(alice.sub)
    );
    assert!(
        !format!("{alice:?}").contains("alice-pw"),
        "no password in Debug"
    );

    assert!(t
        .idp
        .add_public_client(PublicClient::new("bad", &["not a uri"]))
        .is_err());
    assert!(t
        .idp
        .add_public_client(PublicClient::new(DEMO_APP_CLIENT, &["http://127.0.0.1/cb"]))
        .is_err());
}

#[tokio::test]
async fn the_id_token_override_knob_changes_only_the_id_token() {
    let t = start().await;
    let mut members = Map::new();
    members.insert("nonce".into(), json!("not-the-nonce"));
    members.insert("aud".into(), json!("another-client"));
    t.idp.faults().set_id_token_override(Some(members));
    let tokens = t.tokens(None).await;
    let id = claims(&str_of(&tokens, "id_token"));
    assert_eq!(id["nonce"], "not-the-nonce");
    assert_eq!(id["aud"], "another-client");
    assert_eq!(
        claims(&str_of(&tokens, "access_token"))["aud"],
        DEMO_APP_CLIENT
    );
    t.idp.faults().clear_all();
    let tokens = t.tokens(None).await;
    assert_eq!(claims(&str_of(&tokens, "id_token"))["aud"], DEMO_APP_CLIENT);
}

#[tokio::test]
async fn a_dpop_proof_with_par_binds_the_code_to_its_key() {
    let t = start().await;
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let par_endpoint = format!("{}/protocol/openid-connect/ext/par/request", t.issuer);
    let login = Login::new();
    let response = t
        .http
        .post(&par_endpoint)
        .header("DPoP", proof(&key, "POST", &par_endpoint, None))
        .form(&login.params(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let request_uri = str_of(&response.json().await.unwrap(), "request_uri");
    let url = t.authorization_url(&[
        ("client_id".to_owned(), DEMO_APP_CLIENT.to_owned()),
        ("request_uri".to_owned(), request_uri),
    ]);
    let location = form_login(&t.http, &url, DEMO_USER, DEMO_USER_PASSWORD, None)
        .await
        .unwrap();
    let code = redirect_query(&location, REDIRECT)["code"].clone();
    let (_, error) = error_of(t.redeem(&login, &code, DEMO_APP_CLIENT, Some(&other)).await).await;
    assert_eq!(
        error, "invalid_grant",
        "the code is bound to the PAR proof's key"
    );

    // dpop_jkt and the proof naming different keys.
    let response = t
        .http
        .post(&par_endpoint)
        .header("DPoP", proof(&key, "POST", &par_endpoint, None))
        .form(&login.params(&[("dpop_jkt", &thumbprint(&other))]))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "invalid_dpop_proof");
}

#[tokio::test]
async fn codes_and_login_pages_belong_to_their_tenant() {
    let t = start_with(DevIdpConfig {
        tenants: vec!["demo".to_owned(), "other".to_owned()],
        ..DevIdpConfig::default()
    })
    .await;
    let other_issuer = t.idp.issuer("other");

    // A code of tenant demo redeemed at tenant other.
    let login = Login::new();
    let code = t.code(&login, &[]).await;
    let response = t
        .http
        .post(format!("{other_issuer}/protocol/openid-connect/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.verifier.as_str()),
            ("client_id", DEMO_APP_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "invalid_grant");

    // A login page of tenant demo posted to tenant other's form endpoint.
    let html = t
        .http
        .get(t.authorization_url(&Login::new().params(&[])))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"login_request\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let id = &html[start..start + html[start..].find('"').unwrap()];
    let response = t
        .http
        .post(format!("{other_issuer}/protocol/openid-connect/auth/login"))
        .form(&[
            ("login_request", id),
            ("username", DEMO_USER),
            ("password", DEMO_USER_PASSWORD),
            ("action", "login"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location_of(&response).is_none());
}

/// An ID token is for the client, not a credential (OIDC Core §2): it carries no `cnf`, so
/// accepting it as a `subject_token` would turn a DPoP-bound login into a bearer one for
/// whoever saw the ID token (it travels as `id_token_hint` through the browser).
#[tokio::test]
async fn an_id_token_is_not_accepted_as_a_subject_token() {
    let t = start().await;
    let key = SigningKey::generate().unwrap();
    let body = t.tokens(Some(&key)).await;
    let id_token = str_of(&body, "id_token");
    let thief = SigningKey::generate().unwrap();
    for dpop in [None, Some(&thief), Some(&key)] {
        let (status, error) = error_of(t.exchange(&id_token, dpop).await).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "an ID token exchanged with DPoP key {:?}",
            dpop.map(thumbprint)
        );
    }
    // The access token of the same login is still exchanged (by its key only).
    let access_token = str_of(&body, "access_token");
    assert_eq!(
        t.exchange(&access_token, Some(&key)).await.status(),
        StatusCode::OK
    );
    let (_, error) = error_of(t.exchange(&access_token, Some(&thief)).await).await;
    assert_ne!(error, "");
}

/// RFC 6749 §6: a refresh may ask for less than the login granted, and then gets less; it may
/// never ask for more. The login (its refresh token) keeps its whole scope.
#[tokio::test]
async fn a_refresh_with_a_narrower_scope_gets_that_scope() {
    let t = start().await;
    let tokens = t.tokens(None).await;
    let refresh = |token: String, scope: &'static str| {
        t.http.post(t.token_endpoint()).form(&[
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token),
            ("client_id", DEMO_APP_CLIENT.to_owned()),
            ("scope", scope.to_owned()),
        ])
    };
    let (_, error) = error_of(
        refresh(str_of(&tokens, "refresh_token"), "openid email")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error, "invalid_scope", "a refresh asking for more");

    let response = refresh(str_of(&tokens, "refresh_token"), "offline_access")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let narrowed: Value = response.json().await.unwrap();
    assert_eq!(narrowed["scope"], "offline_access");
    assert_eq!(
        claims(&str_of(&narrowed, "access_token"))["scope"],
        "offline_access"
    );
    assert!(narrowed.get("id_token").is_none(), "no openid, no ID token");
    // The next refresh without `scope` gets the login's whole scope back.
    let response = t.refresh(&str_of(&narrowed, "refresh_token"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let whole: Value = response.json().await.unwrap();
    assert_eq!(whole["scope"], "openid offline_access");
    assert!(whole.get("id_token").is_some());
}

/// A page whose form posts elsewhere gets no password: `form_login` fills in only a form that
/// posts back to the login page's own origin.
#[tokio::test]
async fn form_login_never_posts_the_password_to_another_origin() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let thief = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let thief_url = format!("http://{}/collect", thief.local_addr().unwrap());
    let page = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let page_url = format!("http://{}/auth", page.local_addr().unwrap());
    let html = format!(
        "<!DOCTYPE html><html><body><form method=\"post\" action=\"{thief_url}\">\
         <input type=\"hidden\" name=\"login_request\" value=\"x\">\
         <input name=\"username\"><input type=\"password\" name=\"password\"></form></body></html>"
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = page.accept().await {
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    // The thief answers with a redirect, so a posted password would look like a success.
    let (stolen_tx, mut stolen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = thief.accept().await {
            let mut request = vec![0u8; 8192];
            let read = stream.read(&mut request).await.unwrap_or(0);
            let _ = stolen_tx.send(String::from_utf8_lossy(&request[..read]).into_owned());
            let _ = stream
                .write_all(b"HTTP/1.1 303 See Other\r\nLocation: http://127.0.0.1:1/cb?code=x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        form_login(&http(), &page_url, DEMO_USER, DEMO_USER_PASSWORD, None),
    )
    .await
    .expect("form_login answers");
    assert!(
        matches!(result, Err(FormLoginError::NoForm { .. })),
        "{result:?}"
    );
    assert!(
        stolen.try_recv().is_err(),
        "the password went to {thief_url}"
    );
}
