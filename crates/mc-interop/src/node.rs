//! node-oidc-provider (npm `oidc-provider` 8.x on Node 20) for a test, from
//! `crates/mc-interop/node`: installed with `npm ci` when `node_modules` is missing or older
//! than `package-lock.json`, started as `node server.mjs --port 0 --profile <profile>` on
//! 127.0.0.1, and killed when the [`NodeOidcProvider`] is dropped (also when a test panics).
//! The [`NodeProfile`] chooses the server key and the device token format.
//!
//! The provider closes itself when its stdin closes, so even a test process killed without
//! unwinding leaves no provider behind.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How long `npm ci` may take on a cold cache (it downloads about 100 small packages).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the provider may take to listen and answer discovery (it needs well under 2 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One `npm ci` at a time in this process: tests of one binary run in parallel.
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// Why the provider could not be provided; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("npm install in {dir} failed: {reason}; install Node 20 with npm and check access to the npm registry")]
    Install { dir: String, reason: String },
    #[error("`node` could not be started: {0}; install Node 20 and put it on PATH")]
    Spawn(String),
    #[error("node-oidc-provider did not start: {0}; run `node server.mjs` in crates/mc-interop/node to see why")]
    Startup(String),
    #[error("HTTP to node-oidc-provider failed: {0}")]
    Http(String),
}

/// The provider configurations of `config.mjs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeProfile {
    /// An EC P-256 server key; every access token a JWT signed ES256.
    Es256Jwt,
    /// The provider as it ships: an RSA server key (RS256, its default) and opaque device
    /// tokens, checked by introspection (RFC 7662); exchanged tokens are RS256 JWTs.
    Rs256Opaque,
}

impl NodeProfile {
    /// The `--profile` value of `server.mjs`.
    pub fn name(self) -> &'static str {
        match self {
            NodeProfile::Es256Jwt => "es256-jwt",
            NodeProfile::Rs256Opaque => "rs256-opaque",
        }
    }
}

/// How long the setup took, for the CI report.
#[derive(Debug, Clone, Copy)]
pub struct NodeTimings {
    /// Time of `npm ci`, when it had to run.
    pub npm_install: Option<Duration>,
    /// From spawning `node` until discovery answered.
    pub startup: Duration,
}

/// A running node-oidc-provider on 127.0.0.1. Its issuer is its base URL (no realms), so the
/// runtime needs `oidc.issuer_template = "{server}"` and `server_url = issuer()`.
pub struct NodeOidcProvider {
    child: Child,
    /// Kept open: the provider exits when it closes.
    stdin: Option<ChildStdin>,
    issuer: String,
    http: reqwest::Client,
    timings: NodeTimings,
}

impl std::fmt::Debug for NodeOidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOidcProvider")
            .field("pid", &self.child.id())
            .field("issuer", &self.issuer)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

impl NodeOidcProvider {
    /// The directory with `package.json`, `server.mjs` and `config.mjs`.
    pub fn node_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
    }

    /// [`NodeOidcProvider::start_with`] the [`NodeProfile::Es256Jwt`] profile.
    pub async fn start() -> Result<NodeOidcProvider, NodeError> {
        Self::start_with(NodeProfile::Es256Jwt).await
    }

    /// Installs the npm packages if needed, starts the provider with `profile` on a free port
    /// and waits until its discovery document answers with its issuer.
    pub async fn start_with(profile: NodeProfile) -> Result<NodeOidcProvider, NodeError> {
        let dir = Self::node_dir();
        let install_dir = dir.clone();
        let npm_install = tokio::task::spawn_blocking(move || ensure_installed(&install_dir))
            .await
            .map_err(|e| NodeError::Install {
                dir: dir.display().to_string(),
                reason: format!("install task failed: {e}"),
            })??;

        let started = Instant::now();
        let mut child = Command::new("node")
            .args(["server.mjs", "--port", "0", "--profile", profile.name()])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NodeError::Spawn(e.to_string()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                mc_oidc::tls_client_config().map_err(|e| NodeError::Http(e.to_string()))?,
            )
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| NodeError::Http(e.to_string()))?;
        // From here on, an early return drops `provider`, which kills the child.
        let mut provider = NodeOidcProvider {
            child,
            stdin,
            issuer: String::new(),
            http,
            timings: NodeTimings {
                npm_install,
                startup: Duration::ZERO,
            },
        };
        if let Some(stderr) = stderr {
            forward_lines(stderr, None);
        }
        let (first_line, received) = mpsc::channel();
        match stdout {
            Some(stdout) => forward_lines(stdout, Some(first_line)),
            None => return Err(NodeError::Startup("no stdout pipe".into())),
        }
        let line = tokio::task::spawn_blocking(move || received.recv_timeout(STARTUP_TIMEOUT))
            .await
            .map_err(|e| NodeError::Startup(format!("waiting task failed: {e}")))?
            .map_err(|_| {
                NodeError::Startup(format!(
                    "no issuer line on stdout within {STARTUP_TIMEOUT:?} (see its stderr above)"
                ))
            })?;
        provider.issuer = issuer_from_line(&line)?;
        provider.wait_for_discovery(started).await?;
        provider.timings.startup = started.elapsed();
        Ok(provider)
    }

    /// The issuer, which is also the server URL for the runtime.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn timings(&self) -> NodeTimings {
        self.timings
    }

    /// Whether `client_id` is registered now (the server script's test-only route).
    pub async fn client_registered(&self, client_id: &str) -> Result<bool, NodeError> {
        Ok(self.client_metadata(client_id).await?.is_some())
    }

    /// The metadata the provider holds for `client_id` (its RFC 7591 fields, no secret:
    /// devices use `private_key_jwt`), or `None` when no such client is registered.
    pub async fn client_metadata(
        &self,
        client_id: &str,
    ) -> Result<Option<serde_json::Value>, NodeError> {
        let url = format!(
            "{}/_test/clients/{}",
            self.issuer,
            encode_path_segment(client_id)
        );
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| NodeError::Http(e.without_url().to_string()))?;
        match answer.status().as_u16() {
            200 => answer
                .json()
                .await
                .map(Some)
                .map_err(|e| NodeError::Http(format!("client metadata is not JSON: {e}"))),
            404 => Ok(None),
            other => Err(NodeError::Http(format!(
                "client lookup answered HTTP {other}"
            ))),
        }
    }

    /// From now on the provider revokes every opaque token it issues to `client_id` right
    /// after issuing it, so its introspection answers `{"active": false}` (the server
    /// script's test-only route; only the `rs256-opaque` profile stores tokens).
    pub async fn revoke_on_issue(&self, client_id: &str) -> Result<(), NodeError> {
        let url = format!(
            "{}/_test/revoke-on-issue/{}",
            self.issuer,
            encode_path_segment(client_id)
        );
        let answer = self
            .http
            .post(url)
            .send()
            .await
            .map_err(|e| NodeError::Http(e.without_url().to_string()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(NodeError::Http(format!(
                "revoke-on-issue answered HTTP {}",
                answer.status().as_u16()
            )))
        }
    }

    /// Logs `login` in through the provider's own login and consent pages (its development
    /// interactions), as a browser would, with a plain HTTP client: GET `authorization_url`,
    /// follow the provider's redirects with its cookies, post the login form (`login`,
    /// `password`), pass the consent prompt, and return the URL the provider finally sends
    /// the browser to (the redirect with `code`, or `error`) without following it.
    /// `cancel`: press the pages' abort link instead of logging in.
    pub async fn log_in_through_pages(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
        cancel: bool,
    ) -> Result<String, NodeError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                mc_oidc::tls_client_config().map_err(|e| NodeError::Http(e.to_string()))?,
            )
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| NodeError::Http(e.to_string()))?;
        let mut cookies: Vec<(String, String)> = Vec::new();
        let mut next = Some((reqwest::Method::GET, authorization_url.to_string(), None));
        for _ in 0..12 {
            let Some((method, url, form)) = next.take() else {
                break;
            };
            let cookie = cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut request = http.request(method, &url).header("cookie", cookie);
            if let Some(form) = form {
                request = request.form(&form);
            }
            let answer = request
                .send()
                .await
                .map_err(|e| NodeError::Http(e.without_url().to_string()))?;
            for value in answer.headers().get_all("set-cookie") {
                let Some((name, rest)) = value.to_str().unwrap_or_default().split_once('=') else {
                    continue;
                };
                let value = rest.split(';').next().unwrap_or_default().to_string();
                cookies.retain(|(n, _)| n != name);
                if !value.is_empty() {
                    cookies.push((name.to_string(), value));
                }
            }
            if answer.status().is_redirection() {
                let location = answer
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| NodeError::Http("a redirect without Location".into()))?;
                let target = resolve(&url, location)?;
                if !target.starts_with(&self.issuer) {
                    // Leaving the provider: the redirect to the app.
                    return Ok(target);
                }
                next = Some((reqwest::Method::GET, target, None));
                continue;
            }
            let page = answer
                .text()
                .await
                .map_err(|e| NodeError::Http(e.without_url().to_string()))?;
            let form = |fields: &[(&str, &str)]| {
                Some(
                    fields
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect::<Vec<_>>(),
                )
            };
            next = if cancel && url.contains("/interaction/") {
                Some((reqwest::Method::GET, format!("{url}/abort"), None))
            } else if page.contains(r#"name="prompt" value="login""#) {
                let fields = form(&[
                    ("prompt", "login"),
                    ("login", login),
                    ("password", password),
                ]);
                Some((reqwest::Method::POST, url, fields))
            } else if page.contains(r#"name="prompt" value="consent""#) {
                Some((reqwest::Method::POST, url, form(&[("prompt", "consent")])))
            } else {
                return Err(NodeError::Http(format!(
                    "unexpected page at {url}: {}",
                    page.chars().take(200).collect::<String>()
                )));
            };
        }
        Err(NodeError::Http(
            "the login did not reach the redirect in 12 steps".into(),
        ))
    }

    /// Destroys every refresh token the provider issued so far (the server script's
    /// test-only route): what an administrator revoking the user's sessions does.
    pub async fn revoke_refresh_tokens(&self) -> Result<(), NodeError> {
        let answer = self
            .http
            .post(format!("{}/_test/revoke-refresh-tokens", self.issuer))
            .send()
            .await
            .map_err(|e| NodeError::Http(e.without_url().to_string()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(NodeError::Http(format!(
                "revoke-refresh-tokens answered HTTP {}",
                answer.status().as_u16()
            )))
        }
    }

    /// How many tokens the provider issued with `grant_type` since it started.
    pub async fn grants_issued(&self, grant_type: &str) -> Result<u64, NodeError> {
        let answer = self
            .http
            .get(format!("{}/_test/grants", self.issuer))
            .send()
            .await
            .map_err(|e| NodeError::Http(e.without_url().to_string()))?;
        if !answer.status().is_success() {
            return Err(NodeError::Http(format!(
                "grant counts answered HTTP {}",
                answer.status().as_u16()
            )));
        }
        let counts: serde_json::Value = answer
            .json()
            .await
            .map_err(|e| NodeError::Http(format!("grant counts are not JSON: {e}")))?;
        Ok(counts
            .get(grant_type)
            .and_then(|count| count.as_u64())
            .unwrap_or(0))
    }

    async fn wait_for_discovery(&self, started: Instant) -> Result<(), NodeError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        loop {
            let answer = self.http.get(&url).send().await;
            if let Ok(answer) = answer {
                if answer.status().is_success() {
                    let document: serde_json::Value = answer
                        .json()
                        .await
                        .map_err(|e| NodeError::Startup(format!("discovery is not JSON: {e}")))?;
                    return match document.get("issuer").and_then(|v| v.as_str()) {
                        Some(issuer) if issuer == self.issuer => Ok(()),
                        other => Err(NodeError::Startup(format!(
                            "discovery names issuer {other:?}, expected {}",
                            self.issuer
                        ))),
                    };
                }
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                return Err(NodeError::Startup(format!(
                    "discovery did not answer within {STARTUP_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NodeOidcProvider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // Already gone is fine; the wait reaps it so no zombie stays.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `npm ci` (or `npm install` without a lock file) when `node_modules` is missing or
/// older than `package-lock.json`. Returns how long it took, or `None` when nothing ran.
pub fn ensure_installed(dir: &Path) -> Result<Option<Duration>, NodeError> {
    let _one_at_a_time = INSTALL_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lock_file = dir.join("package-lock.json");
    // npm writes this file last, so its presence means a completed install.
    let installed_marker = dir.join("node_modules").join(".package-lock.json");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    let up_to_date = match (modified(&installed_marker), modified(&lock_file)) {
        (Some(installed), Some(locked)) => installed >= locked,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if up_to_date {
        return Ok(None);
    }
    let command = if lock_file.exists() { "ci" } else { "install" };
    let started = Instant::now();
    let failed = |reason: String| NodeError::Install {
        dir: dir.display().to_string(),
        reason,
    };
    let mut child = Command::new("npm")
        .args([command, "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("npm could not be started: {e}")))?;
    let stderr = child.stderr.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(pipe).read_to_string(&mut text);
            text
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > INSTALL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "npm {command} took over {INSTALL_TIMEOUT:?}"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let errors = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if !status.success() {
        let tail: String = errors
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(failed(format!(
            "npm {command} exited with {status}: {tail}"
        )));
    }
    Ok(Some(started.elapsed()))
}

/// Copies the lines of `pipe` to this test's stderr (shown when a test fails), sending the
/// first one to `first` instead when given.
fn forward_lines(pipe: impl Read + Send + 'static, mut first: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            match first.take() {
                Some(sender) => {
                    let _ = sender.send(line);
                }
                None => eprintln!("[node-oidc-provider] {line}"),
            }
        }
    });
}

/// The server script's first stdout line: `{"issuer":"http://127.0.0.1:PORT","profile":...}`.
fn issuer_from_line(line: &str) -> Result<String, NodeError> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|_| NodeError::Startup(format!("unexpected first line {line:?}")))?;
    match value.get("issuer").and_then(|v| v.as_str()) {
        Some(issuer) if issuer.starts_with("http://127.0.0.1:") => Ok(issuer.to_string()),
        _ => Err(NodeError::Startup(format!(
            "first line names no loopback issuer: {line:?}"
        ))),
    }
}

fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `location` relative to `base`.
fn resolve(base: &str, location: &str) -> Result<String, NodeError> {
    let base = reqwest::Url::parse(base).map_err(|e| NodeError::Http(e.to_string()))?;
    base.join(location)
        .map(|u| u.to_string())
        .map_err(|e| NodeError::Http(format!("bad Location: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_line_must_name_a_loopback_issuer() {
        assert_eq!(
            issuer_from_line(r#"{"issuer":"http://127.0.0.1:4000"}"#).unwrap(),
            "http://127.0.0.1:4000"
        );
        for bad in [
            "listening",
            r#"{"issuer":"https://idp.example"}"#,
            r#"{"iss":"http://127.0.0.1:1"}"#,
        ] {
            assert!(
                matches!(issuer_from_line(bad), Err(NodeError::Startup(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_ids_stay_one_path_segment() {
        assert_eq!(encode_path_segment("abc-_.~9"), "abc-_.~9");
        assert_eq!(encode_path_segment("../x y"), "..%2Fx%20y");
    }
}
