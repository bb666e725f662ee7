//! A Keycloak server on 127.0.0.1 for the interoperability tests.
//!
//! [`Keycloak::start`] fetches the stock `org.keycloak:keycloak-quarkus-dist` zip through Maven
//! (the local Maven repository caches it, so only the first run downloads), unpacks it once
//! under the given work directory, and starts `bin/kc.sh start-dev` on free loopback ports
//! with an in-memory database and the committed realm files imported (a realm at Keycloak's
//! defaults; [`Keycloak::allow_anonymous_devices`] then applies, through the admin REST API,
//! what one app's administrator would set for anonymous devices). The server is stopped
//! (its whole process group) when the [`Keycloak`] value is dropped, also while a failing test
//! unwinds; a watchdog shell in the same process group stops it if the test process dies
//! without unwinding (SIGKILL), so no server outlives its test run.
//!
//! Only test support: nothing here is used by the runtime.

use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Keycloak release the tests run against.
pub const KEYCLOAK_VERSION: &str = "26.7.3";

/// JDKs tried, in order, when neither the options nor `MC_KEYCLOAK_JAVA_HOME` name one.
/// Keycloak 26 needs Java 21 or newer; the machine's default Java may be older.
const JAVA_HOME_CANDIDATES: &[&str] = &[
    "/usr/lib/jvm/temurin-25-jdk-amd64",
    "/usr/lib/jvm/temurin-21-jdk-amd64",
    "/usr/lib/jvm/java-21-openjdk-amd64",
];

/// Why Keycloak could not be provided. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum KeycloakError {
    #[error("fetching Keycloak {version} through Maven failed: {reason}; check `mvn` and the access to Maven Central")]
    Fetch { version: String, reason: String },
    #[error(
        "unpacking the Keycloak distribution failed: {0}; check `unzip` and the free disk space"
    )]
    Unpack(String),
    #[error("no Java 21 or newer found (tried MC_KEYCLOAK_JAVA_HOME, the Temurin and OpenJDK 21+ paths under /usr/lib/jvm, JAVA_HOME); set MC_KEYCLOAK_JAVA_HOME to a JDK 21+")]
    NoJava,
    #[error("starting Keycloak failed: {0}")]
    Start(String),
    #[error("Keycloak was not ready after {waited:?}; the end of its log ({log}):\n{tail}")]
    NotReady {
        waited: Duration,
        log: PathBuf,
        tail: String,
    },
    #[error("Keycloak admin API: {0}")]
    Admin(String),
}

/// How to start Keycloak.
#[derive(Debug, Clone)]
pub struct KeycloakOptions {
    pub version: String,
    /// Downloads and the unpacked distribution live here (e.g. the tests' `target/tmp`).
    pub work_dir: PathBuf,
    /// Realm JSON files copied to `data/import` and imported at start.
    pub realm_files: Vec<PathBuf>,
    /// A JDK 21+; `None` tries `MC_KEYCLOAK_JAVA_HOME`, known install paths, then `JAVA_HOME`.
    pub java_home: Option<PathBuf>,
    /// JVM heap flags (`JAVA_OPTS_KC_HEAP`). Keycloak's default takes 70 % of the RAM.
    pub heap: String,
    /// Realm whose discovery document must answer before the server counts as ready.
    pub ready_realm: String,
    pub startup_timeout: Duration,
    pub admin_user: String,
    pub admin_password: String,
}

impl KeycloakOptions {
    pub fn new(
        work_dir: impl Into<PathBuf>,
        realm_file: impl Into<PathBuf>,
        ready_realm: &str,
    ) -> Self {
        Self {
            version: KEYCLOAK_VERSION.into(),
            work_dir: work_dir.into(),
            realm_files: vec![realm_file.into()],
            java_home: None,
            heap: "-Xms128m -Xmx768m".into(),
            ready_realm: ready_realm.into(),
            startup_timeout: Duration::from_secs(300),
            admin_user: "admin".into(),
            // Random, so a server left running on a shared machine is not an open door.
            admin_password: mc_jose::random_token(18),
        }
    }
}

/// Where the time of a start went.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartTimings {
    /// `mvn dependency:copy` (zero when the unpacked distribution was reused).
    pub fetch: Duration,
    pub unpack: Duration,
    /// From spawning `kc.sh` until the realm's discovery document answered.
    pub startup: Duration,
}

/// A running Keycloak. Dropping it stops the server.
pub struct Keycloak {
    child: Option<Child>,
    base_url: String,
    log_path: PathBuf,
    admin_user: String,
    admin_password: String,
    http: reqwest::Client,
    pub timings: StartTimings,
}

impl std::fmt::Debug for Keycloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keycloak")
            .field("base_url", &self.base_url)
            .field("log_path", &self.log_path)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

impl Keycloak {
    /// Fetches, unpacks and starts Keycloak, and waits until `options.ready_realm` answers
    /// its discovery document.
    pub async fn start(options: KeycloakOptions) -> Result<Keycloak, KeycloakError> {
        let http = http_client()?;
        let prepared = {
            let options = options.clone();
            tokio::task::spawn_blocking(move || prepare_distribution(&options))
                .await
                .map_err(|e| KeycloakError::Start(format!("preparing thread: {e}")))??
        };
        let java_home = find_java_home(options.java_home.as_deref())?;
        let http_port = free_port()?;
        let log_path = options
            .work_dir
            .join(format!("keycloak-{}-{http_port}.log", options.version));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| KeycloakError::Start(format!("log file {}: {e}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| KeycloakError::Start(format!("log file: {e}")))?;

        let spawned_at = Instant::now();
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("keycloak-watchdog")
            .arg(prepared.home.join("bin").join("kc.sh"))
            .args([
                "start-dev",
                "--import-realm",
                "--db=dev-mem",
                "--http-host=127.0.0.1",
                &format!("--http-port={http_port}"),
                "--hostname-strict=false",
            ])
            .env("MC_TEST_PID", std::process::id().to_string())
            .env("JAVA_HOME", &java_home)
            .env("JAVA_OPTS_KC_HEAP", &options.heap)
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", &options.admin_user)
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", &options.admin_password)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group, so Drop stops kc.sh, the JVM and the watchdog together.
            .process_group(0)
            .spawn()
            .map_err(|e| KeycloakError::Start(format!("spawning kc.sh: {e}")))?;

        let mut keycloak = Keycloak {
            child: Some(child),
            base_url: format!("http://127.0.0.1:{http_port}"),
            log_path,
            admin_user: options.admin_user.clone(),
            admin_password: options.admin_password.clone(),
            http,
            timings: StartTimings {
                fetch: prepared.fetch,
                unpack: prepared.unpack,
                startup: Duration::ZERO,
            },
        };
        keycloak
            .wait_ready(&options.ready_realm, options.startup_timeout)
            .await?;
        keycloak.timings.startup = spawned_at.elapsed();
        Ok(keycloak)
    }

    /// A Keycloak started by someone else (realms already imported), for working on the tests
    /// without paying a start per run. Dropping it stops nothing.
    pub fn external(
        base_url: &str,
        admin_user: &str,
        admin_password: &str,
    ) -> Result<Keycloak, KeycloakError> {
        Ok(Keycloak {
            child: None,
            base_url: base_url.trim_end_matches('/').to_string(),
            log_path: PathBuf::new(),
            admin_user: admin_user.into(),
            admin_password: admin_password.into(),
            http: http_client()?,
            timings: StartTimings::default(),
        })
    }

    /// `http://127.0.0.1:<port>`: the runtime's `server_url`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The issuer of a realm, as Keycloak names it.
    pub fn issuer(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.base_url)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `max_bytes` of the server log, for failure messages.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        log_tail(&self.log_path, max_bytes)
    }

    async fn wait_ready(&mut self, realm: &str, timeout: Duration) -> Result<(), KeycloakError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer(realm));
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(KeycloakError::NotReady {
                        waited: started.elapsed(),
                        log: self.log_path.clone(),
                        tail: format!("(kc.sh exited: {status})\n{}", self.log_tail(4000)),
                    });
                }
            }
            if let Ok(answer) = self.http.get(&url).send().await {
                if answer.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > timeout {
                return Err(KeycloakError::NotReady {
                    waited: started.elapsed(),
                    log: self.log_path.clone(),
                    tail: self.log_tail(4000),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// An access token of the bootstrap admin (master realm, `admin-cli`).
    pub async fn admin_token(&self) -> Result<String, KeycloakError> {
        let answer = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base_url
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", self.admin_user.as_str()),
                ("password", self.admin_password.as_str()),
            ])
            .send()
            .await
            .map_err(|e| KeycloakError::Admin(format!("admin login: {e}")))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .map_err(|e| KeycloakError::Admin(format!("admin login answer: {e}")))?;
        body.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| KeycloakError::Admin(format!("admin login refused (HTTP {status})")))
    }

    /// GET on the admin REST API (`/admin/realms/...`); `None` on 404.
    pub async fn admin_get(&self, path: &str) -> Result<Option<Value>, KeycloakError> {
        let token = self.admin_token().await?;
        let answer = self
            .http
            .get(format!("{}/admin/realms/{path}", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| KeycloakError::Admin(format!("GET {path}: {e}")))?;
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status().is_success() {
            return Err(KeycloakError::Admin(format!(
                "GET {path}: HTTP {}",
                answer.status()
            )));
        }
        answer
            .json()
            .await
            .map(Some)
            .map_err(|e| KeycloakError::Admin(format!("GET {path}: {e}")))
    }

    /// PUT of a JSON representation on the admin REST API (`/admin/realms/...`).
    pub async fn admin_put(&self, path: &str, body: &Value) -> Result<(), KeycloakError> {
        let token = self.admin_token().await?;
        let answer = self
            .http
            .put(format!("{}/admin/realms/{path}", self.base_url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| KeycloakError::Admin(format!("PUT {path}: {e}")))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(KeycloakError::Admin(format!(
                "PUT {path}: HTTP {}",
                answer.status()
            )))
        }
    }

    /// POST of a JSON representation on the admin REST API (`/admin/realms/...`; `path` ""
    /// creates a realm). Returns the id at the end of the answer's `Location`, when there is one.
    pub async fn admin_post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Option<String>, KeycloakError> {
        let token = self.admin_token().await?;
        let url = format!("{}/admin/realms/{path}", self.base_url);
        let answer = self
            .http
            .post(url.trim_end_matches('/'))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| KeycloakError::Admin(format!("POST {path}: {e}")))?;
        if !answer.status().is_success() {
            return Err(KeycloakError::Admin(format!(
                "POST {path}: HTTP {}",
                answer.status()
            )));
        }
        Ok(answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string))
    }

    /// DELETE on the admin REST API (`/admin/realms/...`).
    pub async fn admin_delete(&self, path: &str) -> Result<(), KeycloakError> {
        let token = self.admin_token().await?;
        let answer = self
            .http
            .delete(format!("{}/admin/realms/{path}", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| KeycloakError::Admin(format!("DELETE {path}: {e}")))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(KeycloakError::Admin(format!(
                "DELETE {path}: HTTP {}",
                answer.status()
            )))
        }
    }

    /// The representation of the client `client_id` of `realm`, if it exists.
    pub async fn client(
        &self,
        realm: &str,
        client_id: &str,
    ) -> Result<Option<Value>, KeycloakError> {
        let found = self
            .admin_get(&format!(
                "{realm}/clients?clientId={}",
                query_value(client_id)
            ))
            .await?;
        Ok(found
            .and_then(|list| list.as_array().cloned())
            .and_then(|list| {
                list.into_iter()
                    .find(|c| c.get("clientId").and_then(Value::as_str) == Some(client_id))
            }))
    }

    /// Deletes the client `client_id` of `realm` as an administrator would.
    pub async fn delete_client(&self, realm: &str, client_id: &str) -> Result<(), KeycloakError> {
        let client = self
            .client(realm, client_id)
            .await?
            .ok_or_else(|| KeycloakError::Admin(format!("no client {client_id} in {realm}")))?;
        let id = client
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| KeycloakError::Admin("client without id".into()))?;
        self.admin_delete(&format!("{realm}/clients/{id}")).await
    }

    /// The client-registration policies of `realm` (components of type
    /// [`REGISTRATION_POLICY_TYPE`]).
    pub async fn registration_policies(&self, realm: &str) -> Result<Vec<Value>, KeycloakError> {
        Ok(self
            .admin_get(&format!(
                "{realm}/components?type={REGISTRATION_POLICY_TYPE}"
            ))
            .await?
            .and_then(|list| list.as_array().cloned())
            .unwrap_or_default())
    }

    /// The anonymous client-registration policy of provider `provider_id` (e.g.
    /// `trusted-hosts`), if the realm has one.
    pub async fn anonymous_policy(
        &self,
        realm: &str,
        provider_id: &str,
    ) -> Result<Option<Value>, KeycloakError> {
        Ok(self
            .registration_policies(realm)
            .await?
            .into_iter()
            .find(|p| p["providerId"] == provider_id && p["subType"] == "anonymous"))
    }

    /// Sets up a realm at Keycloak's defaults for one app's anonymous devices, as a realm
    /// administrator would through the admin console, and nothing more (each step is a
    /// deviation listed in docs/protocol.md, "Keycloak"):
    ///
    /// 1. the anonymous *Trusted Hosts* policy names `trusted_hosts` (by default it trusts
    ///    nobody: "Host not trusted");
    /// 2. the anonymous *Consent Required* policy is removed (with it every device client needs a
    ///    user's consent, which a service account cannot give: the exchange answers
    ///    `invalid_scope` "Missing consents for Token Exchange");
    /// 3. a client scope `<audience>-audience` with an *Audience* mapper for the client
    ///    `audience` is a realm default client scope (Standard Token Exchange V2 only issues
    ///    audiences the requesting client's scopes give it).
    ///
    /// Idempotent, so it also prepares a Keycloak started by someone else.
    pub async fn allow_anonymous_devices(
        &self,
        realm: &str,
        trusted_hosts: &[&str],
        audience: &str,
    ) -> Result<(), KeycloakError> {
        let mut trusted = self
            .anonymous_policy(realm, "trusted-hosts")
            .await?
            .ok_or_else(|| {
                KeycloakError::Admin(format!("{realm} has no anonymous Trusted Hosts policy"))
            })?;
        let id = component_id(&trusted)?;
        trusted["config"]["trusted-hosts"] = serde_json::json!(trusted_hosts);
        self.admin_put(&format!("{realm}/components/{id}"), &trusted)
            .await?;

        if let Some(consent) = self.anonymous_policy(realm, "consent-required").await? {
            let id = component_id(&consent)?;
            self.admin_delete(&format!("{realm}/components/{id}"))
                .await?;
        }

        let scope_name = format!("{audience}-audience");
        let existing = self
            .admin_get(&format!("{realm}/client-scopes"))
            .await?
            .and_then(|list| list.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["name"] == scope_name.as_str());
        let scope_id = match existing {
            Some(scope) => component_id(&scope)?,
            None => self
                .admin_post(
                    &format!("{realm}/client-scopes"),
                    &audience_scope(&scope_name, audience),
                )
                .await?
                .ok_or_else(|| {
                    KeycloakError::Admin("client scope created without a Location".into())
                })?,
        };
        let defaults = self
            .admin_get(&format!("{realm}/default-default-client-scopes"))
            .await?
            .and_then(|list| list.as_array().cloned())
            .unwrap_or_default();
        if defaults.iter().any(|s| s["id"] == scope_id.as_str()) {
            return Ok(());
        }
        self.admin_put(
            &format!("{realm}/default-default-client-scopes/{scope_id}"),
            &Value::Null,
        )
        .await
    }

    /// Lets the (native, public) client `client_id` of `realm` ask for the audience scope
    /// `<audience>-audience` of [`Keycloak::allow_anonymous_devices`] (which must have run):
    /// it becomes one of the client's *optional* client scopes, as an administrator adds it
    /// in the console (Clients → the client → Client scopes → Add client scope → Optional).
    /// A user's token then carries `audience` in `aud` only when the scope is asked for: at
    /// the login, and at a refresh narrowed to it (Keycloak 26 will not exchange a public
    /// client's token; docs/protocol.md, "Keycloak"). Idempotent.
    pub async fn let_client_ask_for_audience(
        &self,
        realm: &str,
        client_id: &str,
        audience: &str,
    ) -> Result<(), KeycloakError> {
        let scope_name = format!("{audience}-audience");
        let scope = self
            .admin_get(&format!("{realm}/client-scopes"))
            .await?
            .and_then(|list| list.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["name"] == scope_name.as_str())
            .ok_or_else(|| KeycloakError::Admin(format!("{realm} has no scope {scope_name}")))?;
        let scope_id = component_id(&scope)?;
        let client = self
            .client(realm, client_id)
            .await?
            .ok_or_else(|| KeycloakError::Admin(format!("no client {client_id} in {realm}")))?;
        let id = component_id(&client)?;
        self.admin_put(
            &format!("{realm}/clients/{id}/optional-client-scopes/{scope_id}"),
            &Value::Null,
        )
        .await
    }

    /// Stops the server (process group: TERM, then KILL after 5 s: the in-memory database
    /// needs no clean shutdown, and a JVM still booting ignores TERM) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let signal = |name: &str| {
            Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        // `kill -0` succeeds while any process of the group is left.
        while signal("-0") && Instant::now() < deadline {
            let _ = child.try_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        signal("-KILL");
        let _ = child.wait();
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs kc.sh in the background and stops the whole process group when kc.sh ends or when
/// the test process ($MC_TEST_PID) is gone, e.g. killed without running destructors. A JVM
/// still booting ignores TERM, hence the KILL after a grace period.
const WATCHDOG_SCRIPT: &str = r#"
kc="$1"; shift
"$kc" "$@" &
server=$!
while kill -0 "$MC_TEST_PID" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
trap '' TERM
kill -TERM 0
sleep 5
kill -KILL 0
"#;

/// The component type of client-registration policies in the admin REST API.
pub const REGISTRATION_POLICY_TYPE: &str =
    "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy";

fn component_id(component: &Value) -> Result<String, KeycloakError> {
    component["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| KeycloakError::Admin(format!("no id in {component}")))
}

/// A client scope that puts `audience` into the access token's `aud` (Keycloak's *Audience*
/// mapper), shown on no consent screen: it grants the device nothing a person decides.
/// Named in the token's `scope` (Keycloak's default for a new scope): a refresh narrowed to
/// it finds it there (Keycloak keeps of a refresh's `scope` only what the refresh token's
/// `scope` names).
fn audience_scope(name: &str, audience: &str) -> Value {
    serde_json::json!({
        "name": name,
        "description": format!("Devices may exchange their token for the audience {audience}; users of the native app get it by asking for this scope"),
        "protocol": "openid-connect",
        "attributes": {
            "include.in.token.scope": "true",
            "display.on.consent.screen": "false"
        },
        "protocolMappers": [{
            "name": format!("audience {audience}"),
            "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {
                "included.client.audience": audience,
                "access.token.claim": "true",
                "introspection.token.claim": "true",
                "id.token.claim": "false"
            }
        }]
    })
}

struct Prepared {
    home: PathBuf,
    fetch: Duration,
    unpack: Duration,
}

/// Makes `<work_dir>/keycloak-<version>` exist (fetching and unpacking on first use) and puts
/// the realm files into its `data/import`.
fn prepare_distribution(options: &KeycloakOptions) -> Result<Prepared, KeycloakError> {
    let version = &options.version;
    std::fs::create_dir_all(&options.work_dir)
        .map_err(|e| KeycloakError::Unpack(format!("{}: {e}", options.work_dir.display())))?;
    let home = options.work_dir.join(format!("keycloak-{version}"));
    let mut fetch = Duration::ZERO;
    let mut unpack = Duration::ZERO;
    if !home.join("bin").join("kc.sh").is_file() {
        let downloads = options.work_dir.join("downloads");
        let fetch_started = Instant::now();
        let output = Command::new("mvn")
            .args([
                "-q",
                "-B",
                "dependency:copy",
                &format!("-Dartifact=org.keycloak:keycloak-quarkus-dist:{version}:zip"),
            ])
            .arg(format!("-DoutputDirectory={}", downloads.display()))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| KeycloakError::Fetch {
                version: version.clone(),
                reason: format!("running mvn: {e}"),
            })?;
        if !output.status.success() {
            let mut reason = String::from_utf8_lossy(&output.stdout).into_owned();
            reason.push_str(&String::from_utf8_lossy(&output.stderr));
            return Err(KeycloakError::Fetch {
                version: version.clone(),
                reason: last_chars(&reason, 2000),
            });
        }
        fetch = fetch_started.elapsed();

        let zip = downloads.join(format!("keycloak-quarkus-dist-{version}.zip"));
        let unpack_started = Instant::now();
        // Unpack beside the final place and rename, so a half-unpacked tree is never reused.
        let partial = options
            .work_dir
            .join(format!("keycloak-{version}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        let status = Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&partial)
            .status()
            .map_err(|e| KeycloakError::Unpack(format!("running unzip: {e}")))?;
        if !status.success() {
            return Err(KeycloakError::Unpack(format!(
                "unzip {} exited with {status}",
                zip.display()
            )));
        }
        match std::fs::rename(partial.join(format!("keycloak-{version}")), &home) {
            Ok(()) => {}
            // Another test run unpacked it meanwhile: use theirs.
            Err(_) if home.join("bin").join("kc.sh").is_file() => {}
            Err(e) => return Err(KeycloakError::Unpack(format!("moving into place: {e}"))),
        }
        let _ = std::fs::remove_dir_all(&partial);
        unpack = unpack_started.elapsed();
    }
    let import = home.join("data").join("import");
    std::fs::create_dir_all(&import)
        .map_err(|e| KeycloakError::Unpack(format!("{}: {e}", import.display())))?;
    for realm in &options.realm_files {
        let name = realm
            .file_name()
            .ok_or_else(|| KeycloakError::Start(format!("realm file {}", realm.display())))?;
        std::fs::copy(realm, import.join(name)).map_err(|e| {
            KeycloakError::Start(format!("copying realm file {}: {e}", realm.display()))
        })?;
    }
    Ok(Prepared {
        home,
        fetch,
        unpack,
    })
}

fn find_java_home(explicit: Option<&Path>) -> Result<PathBuf, KeycloakError> {
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let candidates = explicit
        .map(Path::to_path_buf)
        .into_iter()
        .chain(from_env("MC_KEYCLOAK_JAVA_HOME"))
        .chain(JAVA_HOME_CANDIDATES.iter().map(PathBuf::from))
        .chain(from_env("JAVA_HOME"));
    for home in candidates {
        if java_major(&home).is_some_and(|major| major >= 21) {
            return Ok(home);
        }
    }
    Err(KeycloakError::NoJava)
}

/// The major version from `<home>/release` (`JAVA_VERSION="25.0.1"`).
fn java_major(home: &Path) -> Option<u32> {
    if !home.join("bin").join("java").is_file() {
        return None;
    }
    let release = std::fs::read_to_string(home.join("release")).ok()?;
    let line = release
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))?;
    line.trim_matches('"').split('.').next()?.parse().ok()
}

fn free_port() -> Result<u16, KeycloakError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| KeycloakError::Start(format!("finding a free port: {e}")))
}

fn http_client() -> Result<reqwest::Client, KeycloakError> {
    let tls = mc_oidc::tls_client_config().map_err(|e| KeycloakError::Start(e.to_string()))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| KeycloakError::Start(format!("HTTP client: {e}")))
}

fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn log_tail(path: &Path, max_bytes: u64) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn last_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max)).collect()
}
