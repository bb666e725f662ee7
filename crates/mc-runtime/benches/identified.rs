//! The identified-user flows through the runtime against the in-process development IDP, each
//! beside the same HTTP requests made by hand with reqwest and mc-jose in the same run, against
//! the same IDP (issue 10's note).
//!
//! | runtime                          | baseline (same requests, nothing around them)          |
//! |----------------------------------|---------------------------------------------------------|
//! | CreateAuthorizationRequestEvent  | discovery, ES256 key, PKCE/state/nonce, PAR POST        |
//! | SetAuthorisationCodeEvent        | code redeemed with verifier + DPoP proof,               |
//! |                                  | ID token verified (signature, iss, aud, exp, nonce)     |
//! | OfflineLoginEvent (refresh)      | discovery, refresh grant + DPoP proof, rotation kept    |
//!
//! Both keep the JWKS fetched once. Untimed: the login form each code needs (posted by
//! `mc_devidp::form_login`, with the authorization request that precedes it), and the
//! runtime's RestartEvent before each offline login. What only the runtime does: the pending
//! request table, the redirect and `iss` checks, the encrypted store (save with the sealed
//! refresh token; unlock and the rotation's commit), the state machine, actor hops and events.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use common::{assert_ok, host_runtime, print_ratios, Comparison, LocalIdp, TENANT};
use criterion::Criterion;
use mc_devidp::{DEMO_APP_CLIENT, DEMO_USER, DEMO_USER_PASSWORD};
use mc_events::{
    AuthenticationMode, CreateAuthorizationRequestEvent, Event, OfflineLoginEvent, RestartEvent,
    SetAuthorisationCodeEvent, StartEvent,
};
use mc_jose::{ClaimChecks, JwkSet, SigningKey};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use serde_json::{json, Map, Value};

const REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";

fn no_redirects() -> reqwest::Client {
    // reqwest is built with rustls but without a crypto provider: ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("reqwest client")
}

fn query_value(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

/// An authorization request the baseline made, waiting for its code.
struct RawPending {
    url: String,
    verifier: String,
    nonce: String,
    key: SigningKey,
    /// From the discovery of the authorization request, as the runtime keeps it.
    token_endpoint: String,
}

/// The identified half of `protocol-profile.md` by hand.
struct RawUserClient {
    http: reqwest::Client,
    issuer: String,
    jwks: JwkSet,
}

impl RawUserClient {
    async fn new(issuer: String) -> RawUserClient {
        let http = no_redirects();
        let mut client = RawUserClient {
            http,
            issuer,
            jwks: JwkSet::default(),
        };
        let jwks_uri = client.discover().await["jwks_uri"]
            .as_str()
            .expect("jwks_uri")
            .to_string();
        let jwks: Value = client
            .http
            .get(&jwks_uri)
            .send()
            .await
            .expect("JWKS")
            .json()
            .await
            .expect("JWKS JSON");
        client.jwks = serde_json::from_value(jwks).expect("a JWKS");
        client
    }

    async fn discover(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let document: Value = self
            .http
            .get(&url)
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        assert_eq!(document["issuer"].as_str(), Some(self.issuer.as_str()));
        document
    }

    fn dpop_proof(key: &SigningKey, url: &str) -> String {
        let public = key.public_jwk();
        let mut header = Map::new();
        header.insert(
            "jwk".into(),
            json!({ "kty": public.kty, "crv": public.crv, "x": public.x, "y": public.y }),
        );
        let claims = json!({
            "jti": mc_jose::random_token(16),
            "htm": "POST",
            "htu": url,
            "iat": mc_jose::unix_now(),
        });
        key.sign_jwt("dpop+jwt", header, &claims)
            .expect("DPoP proof signing")
    }

    /// CreateAuthorizationRequest's requests: discovery, then PAR with PKCE S256, state,
    /// nonce and `dpop_jkt` of a new key.
    async fn authorize(&self) -> RawPending {
        let document = self.discover().await;
        let key = SigningKey::generate().expect("key generation");
        let verifier = mc_jose::random_token(32);
        let challenge = mc_jose::sha256_b64url(verifier.as_bytes());
        let state = mc_jose::random_token(16);
        let nonce = mc_jose::random_token(16);
        // The key id is its RFC 7638 thumbprint.
        let jkt = key.kid().to_string();
        let par = document["pushed_authorization_request_endpoint"]
            .as_str()
            .expect("PAR endpoint");
        let answer = self
            .http
            .post(par)
            .form(&[
                ("response_type", "code"),
                ("client_id", DEMO_APP_CLIENT),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid offline_access"),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("dpop_jkt", jkt.as_str()),
            ])
            .send()
            .await
            .expect("PAR");
        assert!(answer.status().is_success(), "PAR: {}", answer.status());
        let pushed: Value = answer.json().await.expect("PAR JSON");
        let request_uri = pushed["request_uri"].as_str().expect("request_uri");
        let mut url = reqwest::Url::parse(
            document["authorization_endpoint"]
                .as_str()
                .expect("authorization endpoint"),
        )
        .expect("a URL");
        url.query_pairs_mut()
            .append_pair("client_id", DEMO_APP_CLIENT)
            .append_pair("request_uri", request_uri);
        RawPending {
            url: url.into(),
            verifier,
            nonce,
            key,
            token_endpoint: document["token_endpoint"]
                .as_str()
                .expect("token endpoint")
                .to_string(),
        }
    }

    async fn token(&self, endpoint: &str, key: &SigningKey, form: &[(&str, &str)]) -> Value {
        let answer = self
            .http
            .post(endpoint)
            .header("DPoP", Self::dpop_proof(key, endpoint))
            .form(form)
            .send()
            .await
            .expect("token POST");
        assert!(answer.status().is_success(), "token: {}", answer.status());
        answer.json().await.expect("token JSON")
    }

    /// SetAuthorisationCode's requests: the code redeemed (at the token endpoint the
    /// authorization request discovered), the ID token verified. Answers the refresh token.
    async fn redeem(&self, pending: &RawPending, redirect: &str) -> String {
        let code = query_value(redirect, "code");
        let tokens = self
            .token(
                &pending.token_endpoint,
                &pending.key,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", DEMO_APP_CLIENT),
                    ("code_verifier", pending.verifier.as_str()),
                ],
            )
            .await;
        let id_token = tokens["id_token"].as_str().expect("id_token");
        let jwt = mc_jose::verify_es256(id_token, &self.jwks).expect("ID token signature");
        jwt.check(&ClaimChecks {
            issuer: Some(&self.issuer),
            audience: Some(DEMO_APP_CLIENT),
            now: mc_jose::unix_now(),
            leeway: 60,
        })
        .expect("ID token claims");
        assert_eq!(jwt.claim_str("nonce"), Some(pending.nonce.as_str()));
        tokens["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string()
    }

    /// OfflineLogin's requests: discovery, the refresh grant. Answers the rotated token.
    async fn refresh(&self, key: &SigningKey, refresh_token: &str) -> String {
        let document = self.discover().await;
        let endpoint = document["token_endpoint"].as_str().expect("token endpoint");
        let tokens = self
            .token(
                endpoint,
                key,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", DEMO_APP_CLIENT),
                ],
            )
            .await;
        tokens["refresh_token"]
            .as_str()
            .expect("a rotated refresh_token")
            .to_string()
    }
}

/// The demo user at the login form of `url`: the redirect URL with the code.
async fn log_in_at(browser: &reqwest::Client, url: &str) -> String {
    mc_devidp::form_login(browser, url, DEMO_USER, DEMO_USER_PASSWORD, None)
        .await
        .expect("the dev IDP's login form")
}

fn authorization_event() -> CreateAuthorizationRequestEvent {
    CreateAuthorizationRequestEvent::new(TENANT, DEMO_APP_CLIENT, REDIRECT_URI)
}

async fn runtime_authorize(runtime: &MasterController) -> String {
    match runtime.post_event(authorization_event()).await {
        Event::CreateAuthorizationRequestResultEvent(answer) => answer.authorization_url,
        other => panic!("CreateAuthorizationRequest failed: {other:#?}"),
    }
}

fn code_event(redirect: &str) -> SetAuthorisationCodeEvent {
    SetAuthorisationCodeEvent::with_redirect_url(
        TENANT,
        DEMO_APP_CLIENT,
        AuthenticationMode::No,
        redirect,
    )
}

fn bench_identified(c: &mut Criterion) {
    // Pushed requests expire after 1 s instead of 60 s: the IDP keeps at most 10,000
    // outstanding, and the authorize benches push that many within a minute.
    let idp = LocalIdp::start_with(mc_devidp::DevIdpConfig {
        par_ttl: Duration::from_secs(1),
        ..Default::default()
    });
    let host = host_runtime();
    let raw = host.block_on(RawUserClient::new(idp.issuer()));
    let browser = no_redirects();
    let runtime =
        MasterController::start(RuntimeConfig::new(idp.base_url(), StoreLocation::Memory))
            .expect("the runtime starts");
    assert_ok(
        &host.block_on(runtime.post_event(StartEvent::new())),
        "StartEvent",
    );
    let (raw, runtime, browser) = (&raw, &runtime, &browser);

    let mut group = c.benchmark_group("identified");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));

    // ---- CreateAuthorizationRequest ----
    group.bench_function("baseline_authorize", |b| {
        b.to_async(&host)
            .iter(|| async move { black_box(raw.authorize().await.url) })
    });
    group.bench_function("runtime_authorize", |b| {
        b.to_async(&host)
            .iter(|| async move { black_box(runtime_authorize(runtime).await) })
    });

    // ---- SetAuthorisationCode (a fresh code each iteration, made untimed) ----
    group.bench_function("baseline_code", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let pending = raw.authorize().await;
                let redirect = log_in_at(browser, &pending.url).await;
                let started = Instant::now();
                black_box(raw.redeem(&pending, &redirect).await);
                timed += started.elapsed();
            }
            timed
        })
    });
    group.bench_function("runtime_code", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let url = runtime_authorize(runtime).await;
                let redirect = log_in_at(browser, &url).await;
                let started = Instant::now();
                let answer = runtime.post_event(code_event(&redirect)).await;
                timed += started.elapsed();
                assert_ok(&answer, "SetAuthorisationCodeEvent");
            }
            timed
        })
    });

    // ---- OfflineLogin via the (rotating) refresh token ----
    let (key, first_token) = host.block_on(async {
        let pending = raw.authorize().await;
        let redirect = log_in_at(browser, &pending.url).await;
        let token = raw.redeem(&pending, &redirect).await;
        (pending.key, token)
    });
    let current = std::cell::RefCell::new(first_token);
    let (key, current) = (&key, &current);
    group.bench_function("baseline_refresh", |b| {
        b.to_async(&host).iter(|| async move {
            let old = current.borrow().clone();
            let rotated = raw.refresh(key, &old).await;
            *current.borrow_mut() = rotated;
        })
    });
    group.bench_function("runtime_refresh", |b| {
        b.to_async(&host).iter_custom(|iters| async move {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                assert_ok(
                    &runtime.post_event(RestartEvent::new()).await,
                    "RestartEvent",
                );
                let started = Instant::now();
                let logged_in = runtime.post_event(OfflineLoginEvent::new()).await;
                timed += started.elapsed();
                assert_ok(&logged_in, "OfflineLoginEvent");
            }
            timed
        })
    });
    group.finish();
    runtime.shutdown();
}

fn main() {
    let since = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    bench_identified(&mut criterion);
    criterion.final_summary();
    print_ratios(
        "Identified users (dev IDP on loopback)",
        &[
            Comparison {
                what: "CreateAuthorizationRequestEvent",
                runtime_id: "identified/runtime_authorize",
                baseline_id: "identified/baseline_authorize",
                goal_ratio: None,
            },
            Comparison {
                what: "SetAuthorisationCodeEvent",
                runtime_id: "identified/runtime_code",
                baseline_id: "identified/baseline_code",
                goal_ratio: None,
            },
            Comparison {
                what: "OfflineLoginEvent (refresh)",
                runtime_id: "identified/runtime_refresh",
                baseline_id: "identified/baseline_refresh",
                goal_ratio: None,
            },
        ],
        since,
    );
}
