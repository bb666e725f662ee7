//! `event-console demo`: the whole lifecycle once, each step checked and timed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mc_events::{
    AuthenticationMode, CreateHttpCommonRequest, DeleteUserEvent, EnrollAnonymousUserEvent, Event,
    ExchangeIamTokenEvent, HttpMethod, OfflineLoginEvent, Request, RestartEvent, SdkState,
    StartEvent, StatusType,
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
pub async fn run(env: &Environment, defaults: &Defaults) -> bool {
    let painter = Painter::for_stdout();
    say!("event-console demo — {}", env.describe());
    let steps = steps(defaults, &env.server_url);
    let total = steps.len();
    let started = Instant::now();
    for (index, step) in steps.into_iter().enumerate() {
        let label = format!("[{}/{total}] {:<28}", index + 1, step.name);
        let token_requests_before = env.dev_idp().map(|idp| idp.stats().token_exchange);
        let began = Instant::now();
        let result = env
            .runtime
            .post_event_with_timeout(step.request, STEP_TIMEOUT)
            .await;
        let took = painter.paint(&format_duration(began.elapsed()), Tone::Dim);
        let status = status_text(&result);
        match (step.check)(&result) {
            Ok(mut details) => {
                if let Event::ExchangeIamTokenResultEvent(_) = result {
                    if let (Some(before), Some(idp)) = (token_requests_before, env.dev_idp()) {
                        let source = if idp.stats().token_exchange == before {
                            "from the runtime's cache"
                        } else {
                            "exchanged at the IDP"
                        };
                        details.push_str(&format!(", {source}"));
                    }
                }
                say!(
                    "{label} {} {took}  {details}",
                    painter.paint(&format!("{status:<10}"), Tone::Ok)
                );
            }
            Err(problem) => {
                let tone = match tone_of(&result) {
                    Tone::Ok => Tone::Error,
                    other => other,
                };
                say!(
                    "{label} {} {took}  {}",
                    painter.paint(&format!("{status:<10}"), tone),
                    painter.paint(&problem, Tone::Error)
                );
                say!(
                    "demo: step {} of {total} failed; the remaining steps were skipped",
                    index + 1
                );
                return false;
            }
        }
    }
    say!(
        "demo: all {total} steps gave the expected status in {}",
        format_duration(started.elapsed()).trim_start()
    );
    true
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
                    "deleted at the IDP and locally, sdkState {}",
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
