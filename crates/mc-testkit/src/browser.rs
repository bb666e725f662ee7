//! A real headless Chromium for the tests that drive an IDP's login page, spoken to over W3C
//! WebDriver (plain HTTP + JSON to Debian's `chromedriver`; no WebDriver crate).
//!
//! [`ChromeDriver::start`] runs `chromedriver` on a free loopback port in its own process
//! group, killed (with the Chromium it started) when the value is dropped, also while a failing
//! test unwinds; a watchdog shell in the group stops it if the test process dies without
//! unwinding. [`ChromeDriver::new_session`] opens a headless Chromium with the flags this
//! closed network needs and a new empty profile. Install both with
//! `scripts/install-chromium.sh` (the README's test command runs it).
//!
//! What is typed into a page (a password) never appears in an error or Debug output.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian's packages put the binaries; `MC_CHROMEDRIVER` / `MC_CHROMIUM` override.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// WebDriver commands wait for page loads; a login page on loopback loads in well under this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The W3C key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Why the browser could not do something. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("{0} not found: run scripts/install-chromium.sh (Debian packages chromium and chromium-driver)")]
    NotInstalled(String),
    #[error("starting chromedriver failed: {0}")]
    Start(String),
    #[error("WebDriver {command}: {error}: {message}")]
    WebDriver {
        command: String,
        error: String,
        message: String,
    },
    #[error("WebDriver {command}: {reason}")]
    Transport { command: String, reason: String },
    #[error("timed out after {0:?} waiting for {1}")]
    TimedOut(Duration, String),
}

/// A running chromedriver. Dropping it stops chromedriver and every browser it started.
pub struct ChromeDriver {
    child: Option<Child>,
    base_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for ChromeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromeDriver")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ChromeDriver {
    /// Starts chromedriver on a free port of 127.0.0.1 and waits until it is ready.
    pub async fn start() -> Result<ChromeDriver, BrowserError> {
        let driver = binary("MC_CHROMEDRIVER", CHROMEDRIVER)?;
        binary("MC_CHROMIUM", CHROMIUM)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| BrowserError::Start(format!("finding a free port: {e}")))?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("chromedriver-watchdog")
            .arg(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .env("MC_TEST_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Drop stops chromedriver, Chromium and the watchdog together.
            .process_group(0)
            .spawn()
            .map_err(|e| BrowserError::Start(format!("spawning {}: {e}", driver.display())))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                mc_oidc::tls_client_config().map_err(|e| BrowserError::Start(e.to_string()))?,
            )
            .timeout(COMMAND_TIMEOUT)
            .build()
            .map_err(|e| BrowserError::Start(format!("HTTP client: {e}")))?;
        let mut driver = ChromeDriver {
            child: Some(child),
            base_url: format!("http://127.0.0.1:{port}"),
            http,
        };
        driver.wait_ready(Duration::from_secs(20)).await?;
        Ok(driver)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), BrowserError> {
        let started = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(BrowserError::Start(format!(
                    "chromedriver exited: {status}"
                )));
            }
            let ready = self
                .http
                .get(format!("{}/status", self.base_url))
                .send()
                .await
                .ok();
            if let Some(answer) = ready {
                if let Ok(body) = answer.json::<Value>().await {
                    if body["value"]["ready"] == true {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > timeout {
                return Err(BrowserError::TimedOut(
                    timeout,
                    "chromedriver /status".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium with an empty profile of its own.
    pub async fn new_session(&self) -> Result<Browser, BrowserError> {
        let profile = tempfile::tempdir()
            .map_err(|e| BrowserError::Start(format!("profile directory: {e}")))?;
        let chromium = binary("MC_CHROMIUM", CHROMIUM)?;
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {
                    "binary": chromium,
                    // Headless as root on a closed network: without the networking flags
                    // Chromium keeps dialling Google's hosts and is refused.
                    "args": [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--disable-dev-shm-usage",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let answer = command(
            &self.http,
            "new session",
            reqwest::Method::POST,
            &format!("{}/session", self.base_url),
            Some(capabilities),
        )
        .await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Transport {
                command: "new session".into(),
                reason: format!("no sessionId in {answer}"),
            })?;
        Ok(Browser {
            http: self.http.clone(),
            session_url: format!("{}/session/{id}", self.base_url),
            _profile: profile,
        })
    }

    /// Stops chromedriver and its browsers (process group: TERM, then KILL).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.wait();
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs chromedriver in the background and stops the whole process group when it ends or
/// when the test process ($MC_TEST_PID) is gone.
const WATCHDOG_SCRIPT: &str = r#"
driver="$1"; shift
"$driver" "$@" &
server=$!
while kill -0 "$MC_TEST_PID" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
trap '' TERM
kill -TERM 0
sleep 2
kill -KILL 0
"#;

/// One browser session (one Chromium window). [`Browser::close`] ends it; otherwise it ends
/// with its [`ChromeDriver`].
pub struct Browser {
    http: reqwest::Client,
    session_url: String,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("session_url", &self.session_url)
            .finish_non_exhaustive()
    }
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    async fn call(
        &self,
        name: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let url = format!("{}{path}", self.session_url);
        command(&self.http, name, method, &url, body).await
    }

    /// Loads `url` (waits for the page load).
    pub async fn navigate(&self, url: &str) -> Result<(), BrowserError> {
        self.call(
            "navigate",
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": url })),
        )
        .await
        .map(drop)
    }

    /// The first element matching the CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element, BrowserError> {
        let name = format!("find {css}");
        let found = self
            .call(
                &name,
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        found[ELEMENT_KEY]
            .as_str()
            .map(|id| Element(id.to_string()))
            .ok_or_else(|| BrowserError::Transport {
                command: name,
                reason: format!("no element reference in {found}"),
            })
    }

    /// Types `text` into the element. The text is not repeated in any error.
    pub async fn send_keys(&self, element: &Element, text: &str) -> Result<(), BrowserError> {
        self.call(
            "send keys",
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    pub async fn click(&self, element: &Element) -> Result<(), BrowserError> {
        self.call(
            "click",
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    pub async fn current_url(&self) -> Result<String, BrowserError> {
        let url = self
            .call("current url", reqwest::Method::GET, "/url", None)
            .await?;
        Ok(url.as_str().unwrap_or_default().to_string())
    }

    pub async fn page_source(&self) -> Result<String, BrowserError> {
        let source = self
            .call("page source", reqwest::Method::GET, "/source", None)
            .await?;
        Ok(source.as_str().unwrap_or_default().to_string())
    }

    /// Polls the current URL until `accept` holds (a redirect after a form post may finish
    /// after the click returned).
    pub async fn wait_for_url(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String, BrowserError> {
        let started = Instant::now();
        loop {
            let url = self.current_url().await?;
            if accept(&url) {
                return Ok(url);
            }
            if started.elapsed() > timeout {
                return Err(BrowserError::TimedOut(
                    timeout,
                    format!("{what} (the browser is at {url})"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the page source until it contains `text` (a form post's answer may render after
    /// the click returned); returns the source.
    pub async fn wait_for_text(
        &self,
        text: &str,
        timeout: Duration,
    ) -> Result<String, BrowserError> {
        let started = Instant::now();
        loop {
            let source = self.page_source().await?;
            if source.contains(text) {
                return Ok(source);
            }
            if started.elapsed() > timeout {
                let url = self.current_url().await.unwrap_or_default();
                return Err(BrowserError::TimedOut(
                    timeout,
                    format!("the text {text:?} (the browser is at {url}; its page:\n{source})"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (closes the browser).
    pub async fn close(self) -> Result<(), BrowserError> {
        command(
            &self.http,
            "delete session",
            reqwest::Method::DELETE,
            &self.session_url,
            None,
        )
        .await
        .map(drop)
    }
}

/// One WebDriver command: its `value`, or the W3C error it answered.
async fn command(
    http: &reqwest::Client,
    name: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, BrowserError> {
    let transport = |reason: String| BrowserError::Transport {
        command: name.to_string(),
        reason,
    };
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.map_err(|e| transport(e.to_string()))?;
    let status = answer.status();
    let mut body: Value = answer
        .json()
        .await
        .map_err(|e| transport(format!("HTTP {status}, unreadable answer: {e}")))?;
    let value = body["value"].take();
    if status.is_success() {
        return Ok(value);
    }
    Err(BrowserError::WebDriver {
        command: name.to_string(),
        error: value["error"].as_str().unwrap_or("unknown").to_string(),
        message: value["message"].as_str().unwrap_or_default().to_string(),
    })
}

fn binary(env: &str, default: &str) -> Result<PathBuf, BrowserError> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.is_file() {
        Ok(path)
    } else {
        Err(BrowserError::NotInstalled(path.display().to_string()))
    }
}
