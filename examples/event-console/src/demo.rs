//! `event-console demo`: the whole lifecycle once, each step checked and timed: an anonymous
//! device, then (with the in-process dev IDP) an identified user's login and logout.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mc_events::{
    AuthenticationMode, ClearBehavior, ClearIamTokenCacheEvent, CreateAuthorizationRequestEvent,
    CreateHttpCommonRequest, DeleteUserEvent, EnrollAnonymousUserEvent, Event,
    ExchangeIamTokenEvent, HttpMethod, OfflineLoginEvent, Request, RestartEvent, SdkState,
    SetAuthorisationCodeEvent, StartEvent, StatusType,
};

use crate::command::Defaults;
use crate::environment::Environment;
use crate::pretty::{shorten_secret, tone_of, Painter, Tone};

/// Prints a line; a closed stdout (`event-console demo | head -1`) is not worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// No step of the demo may take longer than this (the runtime has its own, longer timeouts).
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What a step checks in its result: `Ok(details to print)` or `Err(what was wrong)`.
type Check = fn(&Event) -> Result<String, String>;

struct Step {
    name: String,
    request: Request,
    check: Check,
}

/// Runs the steps in order and stops at the first that fails. True when every step passed.
/// With the in-process dev IDP, an identified user's login follows the anonymous lifecycle.
pub async fn run(env: &Environment, defaults: &Defaults) -> bool {
    let painter = Painter::for_stdout();
    say!("event-console demo — {}", env.describe());
    let anonymous = steps(defaults, &env.server_url);
    let total = anonymous.len()
        + if env.dev_idp().is_some() {
            IDENTIFIED_STEPS
        } else {
            0
        };
    let mut runner = Runner {
        env,
        painter,
        total,
        done: 0,
    };
    let started = Instant::now();
    for step in anonymous {
        if runner.post(step).await.is_none() {
            return false;
        }
    }
    if env.dev_idp().is_some() && !identified(&mut runner, defaults).await {
        return false;
    }
    if env.dev_idp().is_none() {
        say!("demo: the identified user's login needs the in-process dev IDP; skipped");
    }
    say!(
        "demo: all {total} steps gave the expected status in {}",
        format_duration(started.elapsed()).trim_start()
    );
    true
}

/// Numbers, times and prints the steps; stops the demo at the first failure.
struct Runner<'a> {
    env: &'a Environment,
    painter: Painter,
    total: usize,
    done: usize,
}

impl Runner<'_> {
    fn label(&mut self, name: &str) -> String {
        self.done += 1;
        format!("[{}/{}] {:<28}", self.done, self.total, name)
    }

    fn passed(&self, label: &str, status: &str, took: Duration, details: &str) {
        let took = self.painter.paint(&format_duration(took), Tone::Dim);
        say!(
            "{label} {} {took}  {details}",
            self.painter.paint(&format!("{status:<10}"), Tone::Ok)
        );
    }

    fn failed(&self, label: &str, status: &str, tone: Tone, took: Duration, problem: &str) {
        let took = self.painter.paint(&format_duration(took), Tone::Dim);
        say!(
            "{label} {} {took}  {}",
            self.painter.paint(&format!("{status:<10}"), tone),
            self.painter.paint(problem, Tone::Error)
        );
        say!(
            "demo: step {} of {} failed; the remaining steps were skipped",
            self.done,
            self.total
        );
    }

    /// Posts the step's request; its result when the check passed.
    async fn post(&mut self, step: Step) -> Option<Event> {
        let label = self.label(&step.name);
        let token_requests_before = self.env.dev_idp().map(|idp| idp.stats().token_exchange);
        let began = Instant::now();
        let result = self
            .env
            .runtime
            .post_event_with_timeout(step.request, STEP_TIMEOUT)
            .await;
        let took = began.elapsed();
        let status = status_text(&result);
        match (step.check)(&result) {
            Ok(mut details) => {
                if let Event::ExchangeIamTokenResultEvent(_) = result {
                    if let (Some(before), Some(idp)) = (token_requests_before, self.env.dev_idp()) {
                        let source = if idp.stats().token_exchange == before {
                            "from the runtime's cache"
                        } else {
                            "exchanged at the IDP"
                        };
                        details.push_str(&format!(", {source}"));
                    }
                }
                self.passed(&label, &status, took, &details);
                Some(result)
            }
            Err(problem) => {
                let tone = match tone_of(&result) {
                    Tone::Ok => Tone::Error,
                    other => other,
                };
                self.failed(&label, &status, tone, took, &problem);
                None
            }
        }
    }
}

/// How many steps [`identified`] prints.
const IDENTIFIED_STEPS: usize = 8;

/// An identified user at the in-process dev IDP: the authorization request, its login page
/// filled in and posted as a browser would (`mc_devidp::form_login`, the redirect not
/// followed: the app's redirect URI is where it ends), the code handed to the runtime, a
/// token exchange and call, then the MC-SDK's logout, after which offline login is refused.
async fn identified(runner: &mut Runner<'_>, defaults: &Defaults) -> bool {
    let redirect_uri = mc_devidp::DEMO_APP_REDIRECT_URIS[0];
    let create = Step {
        name: format!("Authorize {}", mc_devidp::DEMO_USER),
        request: CreateAuthorizationRequestEvent::new(
            defaults.tenant.clone(),
            mc_devidp::DEMO_APP_CLIENT,
            redirect_uri,
        )
        .into(),
        check: |event| match event {
            Event::CreateAuthorizationRequestResultEvent(e)
                if e.info.status.is_ok() && !e.authorization_url.is_empty() =>
            {
                Ok(format!("login page {}", shorten_url(&e.authorization_url)))
            }
            other => Err(unexpected(
                other,
                "CreateAuthorizationRequestResultEvent OK with a URL",
            )),
        },
    };
    let Some(Event::CreateAuthorizationRequestResultEvent(created)) = runner.post(create).await
    else {
        return false;
    };

    let label = runner.label("Login form (as a browser)");
    let began = Instant::now();
    // rustls on ring as everywhere in the binary; the page is plain http on 127.0.0.1 anyway.
    let browser = match mc_oidc::tls_client_config()
        .map_err(|e| e.to_string())
        .and_then(|tls| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        }) {
        Ok(browser) => browser,
        Err(err) => {
            runner.failed(&label, "ERROR", Tone::Error, began.elapsed(), &err);
            return false;
        }
    };
    let login = mc_devidp::form_login(
        &browser,
        &created.authorization_url,
        mc_devidp::DEMO_USER,
        mc_devidp::DEMO_USER_PASSWORD,
        Some(mc_devidp::DEMO_USER_OTP),
    )
    .await;
    let redirect_url = match login {
        Ok(url) if url.starts_with(redirect_uri) => {
            runner.passed(
                &label,
                "REDIRECT",
                began.elapsed(),
                &format!("redirected to {redirect_uri}"),
            );
            url
        }
        Ok(url) => {
            let problem = format!(
                "redirected to {} instead of {redirect_uri}",
                shorten_url(&url)
            );
            runner.failed(&label, "REDIRECT", Tone::Error, began.elapsed(), &problem);
            return false;
        }
        Err(err) => {
            runner.failed(
                &label,
                "ERROR",
                Tone::Error,
                began.elapsed(),
                &err.to_string(),
            );
            return false;
        }
    };

    let echo_url = format!("{}/demo/echo", runner.env.server_url);
    let steps = vec![
        Step {
            name: "SetAuthorisationCode".into(),
            request: SetAuthorisationCodeEvent::with_redirect_url(
                defaults.tenant.clone(),
                mc_devidp::DEMO_APP_CLIENT,
                AuthenticationMode::No,
                redirect_url,
            )
            .into(),
            check: |event| match event {
                Event::StatusResultEvent(e) if e.info.status.is_ok() => Ok(format!(
                    "logged in as {} (code redeemed, ID token checked)",
                    mc_devidp::DEMO_USER
                )),
                other => Err(unexpected(other, "StatusResultEvent OK")),
            },
        },
        exchange_step(
            format!("Exchange {}", defaults.audience),
            &defaults.audience,
        ),
        Step {
            name: "HTTP GET /demo/echo".into(),
            request: CreateHttpCommonRequest::new(echo_url, HttpMethod::Get)
                .with_audience(defaults.audience.clone())
                .into(),
            check: |event| {
                let details = check_echo(event)?;
                if details.ends_with(mc_devidp::DEMO_USER_SUB) {
                    Ok(format!("{details} (the identified user)"))
                } else {
                    Err(format!("{details}: not the identified user's sub"))
                }
            },
        },
        Step {
            name: "Logout: ClearIamTokenCache".into(),
            request: ClearIamTokenCacheEvent::new()
                .with_behavior(ClearBehavior::ClearAll)
                .into(),
            check: |event| match event {
                Event::ClearIamTokenCacheResultEvent(e) if e.info.status.is_ok() => {
                    Ok("CLEAR_ALL: tokens and the stored offline token gone".to_owned())
                }
                other => Err(unexpected(other, "ClearIamTokenCacheResultEvent OK")),
            },
        },
        Step {
            name: "Logout: Restart".into(),
            request: RestartEvent::new().into(),
            check: |event| match event {
                Event::RestartResultEvent(e) if e.info.status.is_ok() => {
                    Ok(format!("sdkState {}", e.sdk_state))
                }
                other => Err(unexpected(other, "RestartResultEvent OK")),
            },
        },
        Step {
            name: "OfflineLogin (refused)".into(),
            request: OfflineLoginEvent::new().into(),
            check: |event| match event {
                Event::OfflineLoginResultEvent(e)
                    if e.info.status == StatusType::NoTokenDataAvailable =>
                {
                    Ok("logged out: the browser login is needed again".to_owned())
                }
                other => Err(unexpected(
                    other,
                    "OfflineLoginResultEvent NO_TOKEN_DATA_AVAILABLE",
                )),
            },
        },
    ];
    for step in steps {
        if runner.post(step).await.is_none() {
            return false;
        }
    }
    true
}

/// Scheme, host and path of a URL: its query holds the request's parameters (or a code).
fn shorten_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

fn steps(defaults: &Defaults, server_url: &str) -> Vec<Step> {
    let echo_url = format!("{server_url}/demo/echo");
    vec![
        Step {
            name: "Start".into(),
            request: StartEvent::new().into(),
            check: |event| match event {
                Event::StartResultEvent(e) if e.info.status.is_ok() => {
                    Ok(format!("sdkState {}", e.sdk_state))
                }
                other => Err(unexpected(other, "StartResultEvent OK")),
            },
        },
        Step {
            name: format!("Enroll {}", defaults.tenant),
            request: EnrollAnonymousUserEvent::new(
                defaults.tenant.clone(),
                AuthenticationMode::No,
                defaults.client_id.clone(),
            )
            .into(),
            check: |event| match event {
                Event::StatusResultEvent(e) if e.info.status.is_ok() => Ok(format!(
                    "enrolled anonymously (mode {}), logged in",
                    AuthenticationMode::No
                )),
                other => Err(unexpected(other, "StatusResultEvent OK")),
            },
        },
        exchange_step(
            format!("Exchange {}", defaults.audience),
            &defaults.audience,
        ),
        Step {
            name: "HTTP GET /demo/echo".into(),
            request: CreateHttpCommonRequest::new(echo_url, HttpMethod::Get)
                .with_audience(defaults.audience.clone())
                .into(),
            check: check_echo,
        },
        Step {
            name: "Restart".into(),
            request: RestartEvent::new().into(),
            check: |event| match event {
                Event::RestartResultEvent(e)
                    if e.info.status.is_ok() && e.sdk_state == SdkState::LoginRequired =>
                {
                    Ok(format!(
                        "sdkState {}, {} enrolled user(s) kept",
                        e.sdk_state,
                        e.user_details_list.len()
                    ))
                }
                other => Err(unexpected(other, "RestartResultEvent OK in LOGIN_REQUIRED")),
            },
        },
        Step {
            name: "OfflineLogin".into(),
            request: OfflineLoginEvent::new().into(),
            check: |event| match event {
                Event::OfflineLoginResultEvent(e) if e.info.status.is_ok() => {
                    Ok("logged in with the stored credential".to_owned())
                }
                other => Err(unexpected(other, "OfflineLoginResultEvent OK")),
            },
        },
        exchange_step(
            format!("Exchange {} (cached)", defaults.audience),
            &defaults.audience,
        ),
        Step {
            name: "Delete".into(),
            request: DeleteUserEvent::new().into(),
            check: |event| match event {
                Event::DeleteUserResultEvent(e) if e.info.status.is_ok() => Ok(format!(
                    "{}, sdkState {}",
                    if e.idp_deletion_pending {
                        "deleted locally; the IDP part is queued (sent at the next start or when \
                         the IDP is reachable again)"
                    } else {
                        "deleted at the IDP and locally"
                    },
                    e.sdk_state
                )),
                other => Err(unexpected(other, "DeleteUserResultEvent OK")),
            },
        },
    ]
}

fn exchange_step(name: String, audience: &str) -> Step {
    Step {
        name,
        request: ExchangeIamTokenEvent::new(audience).into(),
        check: |event| match event {
            Event::ExchangeIamTokenResultEvent(e) if e.info.status.is_ok() => {
                let Some(token) = e.token.as_ref().filter(|t| !t.is_empty()) else {
                    return Err("status OK but no token".to_owned());
                };
                let expiry = match e.expires_at {
                    Some(at) => format!(", expires in {} s", at.saturating_sub(unix_now())),
                    None => String::new(),
                };
                Ok(format!("token {}{expiry}", shorten_secret(token.expose())))
            }
            other => Err(unexpected(
                other,
                "ExchangeIamTokenResultEvent OK with a token",
            )),
        },
    }
}

/// The echo must answer 200 with the `sub` of the token the runtime attached.
fn check_echo(event: &Event) -> Result<String, String> {
    let Event::CreateHttpCommonResultEvent(http) = event else {
        return Err(unexpected(event, "CreateHttpCommonResultEvent"));
    };
    if event.status() != Some(StatusType::Ok) {
        return Err(unexpected(event, "transport status success"));
    }
    if http.http_status != Some(200) {
        return Err(format!(
            "expected httpStatus 200, got {}",
            http.http_status
                .map_or_else(|| "none".to_owned(), |code| code.to_string())
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(&http.response)
        .map_err(|err| format!("the echo's answer is not JSON: {err}"))?;
    match body.get("sub").and_then(|sub| sub.as_str()) {
        Some(sub) if !sub.is_empty() => Ok(format!("httpStatus 200, echo sub {sub}")),
        _ => Err("the echo's answer has no `sub`".to_owned()),
    }
}

fn status_text(event: &Event) -> String {
    match event.status() {
        Some(status) => status.to_string(),
        None => event.type_name().to_owned(),
    }
}

/// What came instead of `expected`, with the runtime's error description.
fn unexpected(event: &Event, expected: &str) -> String {
    let description = match event {
        Event::InvalidStateEvent(e) => e.error_message.clone(),
        Event::CreateHttpCommonResultEvent(e) => e.error_description.clone(),
        other => other
            .result_info()
            .map(|info| info.error_description.clone())
            .unwrap_or_default(),
    };
    let mut text = format!(
        "expected {expected}, got {} {}",
        event.type_name(),
        status_text(event)
    );
    if let Event::StartResultEvent(e) = event {
        text.push_str(&format!(" (sdkState {})", e.sdk_state));
    }
    if let Event::RestartResultEvent(e) = event {
        text.push_str(&format!(" (sdkState {})", e.sdk_state));
    }
    if !description.is_empty() {
        text.push_str(&format!(": {description}"));
    }
    text
}

fn format_duration(duration: Duration) -> String {
    format!("{:>8.1} ms", duration.as_secs_f64() * 1000.0)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
