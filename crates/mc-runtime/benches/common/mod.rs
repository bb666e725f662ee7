//! Shared set-up of the mc-runtime benchmarks: a development IDP on a thread of its own, a
//! logged-in runtime, the hand-written protocol client that is the baseline of
//! `benches/protocol.rs`, and the summary that prints each runtime figure as a ratio to its
//! baseline measured in the same run.
//!
//! Bench code: it panics with a message when the set-up fails, as a test does.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use mc_devidp::{DevIdp, DevIdpConfig};
use mc_events::{
    AuthenticationMode, EnrollAnonymousUserEvent, Event, ExchangeIamTokenEvent, StartEvent,
    StatusType,
};
use mc_jose::{ClaimChecks, JwkSet, SigningKey};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use serde_json::{json, Map, Value};

pub const TENANT: &str = mc_devidp::DEFAULT_TENANT;
pub const CLIENT: &str = mc_devidp::DEFAULT_ENROLLMENT_CLIENT;
pub const AUDIENCE: &str = mc_devidp::DEMO_AUDIENCE;

/// The development IDP, served by a one-worker tokio runtime, so its work runs on one thread
/// of its own for the runtime and the baseline alike.
pub struct LocalIdp {
    idp: Option<DevIdp>,
    server: tokio::runtime::Runtime,
}

impl LocalIdp {
    pub fn start() -> LocalIdp {
        Self::start_with(DevIdpConfig::default())
    }

    /// As [`LocalIdp::start`], with `config`.
    pub fn start_with(config: DevIdpConfig) -> LocalIdp {
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dev-idp")
            .enable_all()
            .build()
            .expect("the dev IDP's tokio runtime starts");
        let address = "127.0.0.1:0".parse().expect("a socket address");
        let idp = server
            .block_on(DevIdp::start(address, config))
            .expect("the dev IDP starts");
        LocalIdp {
            idp: Some(idp),
            server,
        }
    }

    pub fn idp(&self) -> &DevIdp {
        self.idp.as_ref().expect("the dev IDP runs until dropped")
    }

    pub fn base_url(&self) -> String {
        self.idp().base_url()
    }

    pub fn issuer(&self) -> String {
        self.idp().issuer(TENANT)
    }

    /// Makes the IDP answer nothing for `pause`: its only worker thread sleeps. Requests sent
    /// meanwhile wait on their open connections and are answered afterwards.
    pub fn pause(&self, pause: Duration) {
        self.server.spawn(async move { std::thread::sleep(pause) });
    }
}

impl Drop for LocalIdp {
    fn drop(&mut self) {
        let _inside = self.server.enter();
        drop(self.idp.take());
    }
}

/// The current-thread tokio runtime the bench itself (the "host app") runs on.
pub fn host_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the host's tokio runtime starts")
}

pub fn assert_ok(event: &Event, what: &str) {
    assert_eq!(
        event.status(),
        Some(StatusType::Ok),
        "{what} failed: {event:#?}"
    );
}

/// A runtime with an in-memory store, started (StartEvent) and with one enrolled, logged-in
/// user.
pub async fn enrolled_runtime(idp: &LocalIdp) -> MasterController {
    let mut config = RuntimeConfig::new(idp.base_url(), StoreLocation::Memory);
    // The dev IDP's /demo/echo is the demo audience's resource.
    config
        .audience_origins
        .allow(mc_devidp::DEMO_AUDIENCE, &idp.base_url())
        .expect("a loopback origin");
    let runtime = MasterController::start(config).expect("the runtime starts");
    assert_ok(&runtime.post_event(StartEvent::new()).await, "StartEvent");
    assert_ok(&runtime.post_event(enroll_event()).await, "enrollment");
    runtime
}

pub fn enroll_event() -> EnrollAnonymousUserEvent {
    EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::No, CLIENT)
}

pub fn cold_exchange_event() -> ExchangeIamTokenEvent {
    ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(true)
}

// ---- the baseline: the same requests, hand-written with reqwest and mc-jose ----------------

const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What discovery gives the baseline.
pub struct Endpoints {
    pub token: String,
    pub registration: String,
}

/// A device registration the baseline made.
pub struct RawDevice {
    pub client_id: String,
    pub key: SigningKey,
    pub registration_client_uri: String,
    pub registration_access_token: String,
}

/// The protocol steps of `protocol-profile.md` with nothing around them: one reqwest client
/// (keep-alive pool, as the runtime's), mc-jose for keys, assertions and token checks, and
/// the JWKS fetched once and kept, as the runtime's protocol client keeps it.
pub struct RawClient {
    http: reqwest::Client,
    issuer: String,
    jwks: JwkSet,
}

impl RawClient {
    pub async fn new(issuer: String) -> RawClient {
        // reqwest is built with rustls but without a crypto provider: ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("reqwest client");
        let mut client = RawClient {
            http,
            issuer,
            jwks: JwkSet::default(),
        };
        let jwks_uri = client.discover_document().await["jwks_uri"]
            .as_str()
            .expect("jwks_uri")
            .to_string();
        client.jwks = serde_json::from_value(client.get_json(&jwks_uri).await).expect("a JWKS");
        client
    }

    async fn get_json(&self, url: &str) -> Value {
        let answer = self.http.get(url).send().await.expect("GET");
        assert!(
            answer.status().is_success(),
            "GET {url}: {}",
            answer.status()
        );
        answer.json().await.expect("JSON answer")
    }

    async fn discover_document(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let document = self.get_json(&url).await;
        assert_eq!(document["issuer"].as_str(), Some(self.issuer.as_str()));
        document
    }

    /// Step 1: discovery, with the issuer check.
    pub async fn discover(&self) -> Endpoints {
        let document = self.discover_document().await;
        let endpoint = |name: &str| {
            document[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in discovery"))
                .to_string()
        };
        Endpoints {
            token: endpoint("token_endpoint"),
            registration: endpoint("registration_endpoint"),
        }
    }

    /// Steps 2 and 3: a fresh ES256 key and the RFC 7591 registration.
    pub async fn register(&self, endpoints: &Endpoints) -> RawDevice {
        let key = SigningKey::generate().expect("key generation");
        let body = json!({
            "client_name": "mc-runtime anonymous device",
            "software_id": CLIENT,
            "grant_types": [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": { "keys": [key.public_jwk()] },
            // As the runtime asks when the IDP offers DPoP (the dev IDP does): every token
            // request then carries a proof, so the baseline pays the same signing cost.
            "dpop_bound_access_tokens": true,
        });
        let answer = self
            .http
            .post(&endpoints.registration)
            .json(&body)
            .send()
            .await
            .expect("registration POST");
        assert!(
            answer.status().is_success(),
            "registration: {}",
            answer.status()
        );
        let registration: Value = answer.json().await.expect("registration JSON");
        let field = |name: &str| {
            registration[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in the registration answer"))
                .to_string()
        };
        RawDevice {
            client_id: field("client_id"),
            registration_client_uri: field("registration_client_uri"),
            registration_access_token: field("registration_access_token"),
            key,
        }
    }

    /// RFC 7523 client assertion, as the runtime makes it.
    fn assertion(&self, device: &RawDevice) -> String {
        let iat = mc_jose::unix_now();
        let claims = json!({
            "iss": device.client_id,
            "sub": device.client_id,
            "aud": self.issuer,
            "jti": mc_jose::random_token(16),
            "iat": iat,
            "exp": iat + 60,
        });
        device
            .key
            .sign_jwt("JWT", Map::new(), &claims)
            .expect("assertion signing")
    }

    /// RFC 9449 proof for a POST to `url`, built as mc-oidc builds it (header `jwk` with the
    /// RFC 7638 members, claims jti, htm, htu, iat), signed by the same mc-jose function.
    fn dpop_proof(&self, device: &RawDevice, url: &str) -> String {
        let public = device.key.public_jwk();
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
        device
            .key
            .sign_jwt("dpop+jwt", header, &claims)
            .expect("DPoP proof signing")
    }

    async fn token_request(
        &self,
        endpoints: &Endpoints,
        device: &RawDevice,
        grant: &[(&str, &str)],
    ) -> String {
        let assertion = self.assertion(device);
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("client_id", &device.client_id));
        form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
        form.push(("client_assertion", &assertion));
        let answer = self
            .http
            .post(&endpoints.token)
            .header("DPoP", self.dpop_proof(device, &endpoints.token))
            .form(&form)
            .send()
            .await
            .expect("token POST");
        assert!(answer.status().is_success(), "token: {}", answer.status());
        let tokens: Value = answer.json().await.expect("token JSON");
        tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Steps 4 and 5: client_credentials with private_key_jwt, and the device token verified
    /// against the JWKS (signature, issuer, expiry). Answers the device token.
    pub async fn login(&self, endpoints: &Endpoints, device: &RawDevice) -> String {
        let token = self
            .token_request(
                endpoints,
                device,
                &[("grant_type", GRANT_CLIENT_CREDENTIALS)],
            )
            .await;
        let jwt = mc_jose::verify_es256(&token, &self.jwks).expect("device token signature");
        jwt.check(&ClaimChecks {
            issuer: Some(&self.issuer),
            audience: None,
            now: mc_jose::unix_now(),
            leeway: 60,
        })
        .expect("device token claims");
        // Bound to the device key, as the runtime checks (RFC 9449 cnf.jkt).
        assert_eq!(
            jwt.claims["cnf"]["jkt"].as_str(),
            Some(device.key.kid()),
            "the device token is not bound to the device key"
        );
        token
    }

    /// Step 7: RFC 8693 exchange of the device token for `AUDIENCE`.
    pub async fn exchange(
        &self,
        endpoints: &Endpoints,
        device: &RawDevice,
        device_token: &str,
    ) -> String {
        self.token_request(
            endpoints,
            device,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", device_token),
                ("subject_token_type", TOKEN_TYPE_ACCESS_TOKEN),
                ("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN),
                ("audience", AUDIENCE),
            ],
        )
        .await
    }

    /// Step 9: RFC 7592 delete, so the bench leaves no client behind.
    pub async fn delete(&self, device: &RawDevice) {
        let answer = self
            .http
            .delete(&device.registration_client_uri)
            .bearer_auth(&device.registration_access_token)
            .send()
            .await
            .expect("registration DELETE");
        assert!(answer.status().is_success(), "delete: {}", answer.status());
    }
}

// ---- the summary ------------------------------------------------------------------------------

/// One runtime figure beside its baseline, by criterion benchmark id ("group/function").
pub struct Comparison {
    pub what: &'static str,
    pub runtime_id: &'static str,
    pub baseline_id: &'static str,
    /// The goal, as the largest acceptable runtime / baseline ratio; `None`: no ratio goal.
    pub goal_ratio: Option<f64>,
}

/// Where criterion keeps its results: as criterion itself picks it.
fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    // The bench binary is <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// Criterion's time estimate of one benchmark in nanoseconds (the slope of its linear
/// sampling, else the mean), if it was measured after `since`.
pub fn estimate_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home()?
        .join(id)
        .join("new")
        .join("estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    ["slope", "mean"]
        .iter()
        .find_map(|name| estimates[*name]["point_estimate"].as_f64())
}

pub fn format_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints each comparison measured in this run as runtime / baseline against its goal.
pub fn print_ratios(title: &str, comparisons: &[Comparison], since: SystemTime) {
    println!("\n{title}: runtime / baseline, measured in this run");
    println!(
        "{:<34} {:>11} {:>11} {:>8} {:>7}  verdict",
        "", "runtime", "baseline", "ratio", "goal"
    );
    for c in comparisons {
        match (
            estimate_ns(c.runtime_id, since),
            estimate_ns(c.baseline_id, since),
        ) {
            (Some(runtime), Some(baseline)) if baseline > 0.0 => {
                let ratio = runtime / baseline;
                let (goal, verdict) = match c.goal_ratio {
                    Some(goal) if ratio <= goal => (format!("{goal:.2}x"), "met"),
                    Some(goal) => (format!("{goal:.2}x"), "MISSED"),
                    None => ("-".to_string(), "-"),
                };
                println!(
                    "{:<34} {:>11} {:>11} {:>7.2}x {goal:>7}  {verdict}",
                    c.what,
                    format_ns(runtime),
                    format_ns(baseline),
                    ratio,
                );
            }
            _ => println!("{:<34} not measured in this run", c.what),
        }
    }
}
