//! `login-user` and `logout` of the interactive prompt: an identified user's login through
//! the system browser (RFC 8252 loopback redirect) and the MC-SDK's logout.
//!
//! Both post the JSON form of the events (`MasterController::post_json`), as a script would;
//! the listener prints every result as usual.

use std::process::{Command, Stdio};
use std::time::Duration;

use mc_events::Event;
use mc_runtime::loopback::LoopbackReceiver;
use mc_runtime::MasterController;
use serde_json::{json, Value};

use crate::tracker::AnsweredRequests;

/// How long a person may take on the login page.
pub const LOGIN_WAIT: Duration = Duration::from_secs(300);

/// Posts JSON requests and waits until the listener has printed each result.
pub struct Steps<'a> {
    pub runtime: &'a MasterController,
    pub answered: &'a AnsweredRequests,
    pub print_wait: Duration,
    pub say: Box<dyn Fn(String) + Send + Sync + 'a>,
}

impl Steps<'_> {
    /// Posts one request; returns its result as JSON (the result event) and the event.
    async fn post(&self, request: Value) -> (Value, Event) {
        let event = self.runtime.post_json(&request.to_string(), None).await;
        if let Some(id) = event.request_id() {
            self.answered.wait_for(id, self.print_wait).await;
        }
        let json = serde_json::from_str(&event.to_json()).unwrap_or(Value::Null);
        (json, event)
    }
}

/// CreateAuthorizationRequest with a loopback redirect URI → the browser → the redirect that
/// carries the result's `state` (the receiver answers anything else and keeps waiting) →
/// SetAuthorisationCode with `redirectUrl`. Returns the last result.
pub async fn login_user(steps: &Steps<'_>, tenant: &str, client: &str) -> Option<Event> {
    let receiver = match LoopbackReceiver::bind().await {
        Ok(receiver) => receiver,
        Err(err) => {
            (steps.say)(err.to_string());
            return None;
        }
    };
    let (created, event) = steps
        .post(json!({
            "type": "CreateAuthorizationRequestEvent",
            "tenantId": tenant,
            "clientId": client,
            "redirectUri": receiver.redirect_uri(),
        }))
        .await;
    let (Some(url), Some(state)) = (
        created["authorizationUrl"]
            .as_str()
            .filter(|_| created["status"] == "OK"),
        created["state"].as_str(),
    ) else {
        (steps.say)("no login page to open: see the result above".to_owned());
        return Some(event);
    };
    (steps.say)(format!(
        "Log in in your browser (waiting up to {} s for the redirect to {}):\n  {url}",
        LOGIN_WAIT.as_secs(),
        receiver.redirect_uri()
    ));
    if !open_in_browser(url) {
        (steps.say)("(no desktop opener found: open the URL yourself)".to_owned());
    }
    let redirect_url = match receiver.wait_for_redirect(state, LOGIN_WAIT).await {
        Ok(redirect_url) => redirect_url,
        Err(err) => {
            (steps.say)(err.to_string());
            return Some(event);
        }
    };
    let (_, event) = steps
        .post(json!({
            "type": "SetAuthorisationCodeEvent",
            "tenantId": tenant,
            "clientId": client,
            "authenticationMode": "NO",
            "redirectUrl": redirect_url,
        }))
        .await;
    Some(event)
}

/// The MC-SDK's logout: ClearIamTokenCache(CLEAR_ALL), then Restart.
pub async fn logout(steps: &Steps<'_>) -> Option<Event> {
    let (cleared, event) = steps
        .post(json!({ "type": "ClearIamTokenCacheEvent", "clearBehavior": "CLEAR_ALL" }))
        .await;
    if cleared["status"] != "OK" {
        return Some(event);
    }
    let (_, event) = steps
        .post(json!({ "type": "RestartEvent", "appName": "event-console" }))
        .await;
    Some(event)
}

/// Starts the desktop's URL opener (`xdg-open`; `open` on macOS) without waiting for it; false
/// when there is none.
fn open_in_browser(url: &str) -> bool {
    // Not `open` elsewhere: on Debian it is openvt.
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            // Reaped in the background: the opener may outlive this command.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}
