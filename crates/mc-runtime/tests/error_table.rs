//! The error table of `docs/events.md` ("When each error comes and what the app does"),
//! driven row by row: every row names a status, an error code and the `nextAction` the app
//! gets; this test brings a real runtime (dev IDP on 127.0.0.1, faults where needed) into the
//! situation of the row and checks the answer carries exactly those. A row without a
//! scenario here, or a scenario without its row, fails the test: the table and the code
//! cannot drift apart.

use std::time::Duration;

use mc_devidp::{DevIdp, FaultTarget, HttpFault};
use mc_events::*;
use mc_oidc::RetryPolicy;
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use mc_testkit::*;

/// One row of the table: status, code name, the nextAction's `action` (or "—").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    status: String,
    code: String,
    action: String,
}

fn backticked(cell: &str) -> Option<String> {
    let start = cell.find('`')? + 1;
    let end = start + cell[start..].find('`')?;
    Some(cell[start..end].to_string())
}

/// The rows of the table under the heading "When each error comes and what the app does".
fn documented_rows() -> Vec<Row> {
    let docs = include_str!("../../../docs/events.md");
    let section = docs
        .split("### When each error comes and what the app does")
        .nth(1)
        .expect("the error table's heading in docs/events.md");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or_default();
            Row {
                status: backticked(cell(1)).expect("a status"),
                code: backticked(cell(2)).expect("a code"),
                action: backticked(cell(4)).unwrap_or_else(|| "—".to_string()),
            }
        })
        .collect()
}

/// What an answer says, read from its JSON form (as a host reads it); the status through
/// `Event::status` so CreateHttpCommonResultEvent's transport outcome maps like the others.
fn observed(event: &Event) -> Row {
    let status = serde_json::to_value(event.status().expect("an answer")).unwrap();
    let json = event.to_json_value();
    let code = json["errorCode"].as_u64().unwrap_or_default() as u32;
    let code = error_code::ErrorCode::from_code(code)
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| code.to_string());
    let action = json["nextAction"]["action"]
        .as_str()
        .unwrap_or("—")
        .to_string();
    Row {
        status: status.as_str().unwrap().to_string(),
        code,
        action,
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 0,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_millis(10),
        max_total_wait: Duration::from_secs(1),
    }
}

fn runtime_with(idp: &DevIdp, tune: impl FnOnce(&mut RuntimeConfig)) -> MasterController {
    let mut config = fast_config(&idp.base_url(), StoreLocation::Memory);
    config.oidc.retry = quick_retries();
    tune(&mut config);
    MasterController::start(config).expect("runtime starts")
}

async fn started(idp: &DevIdp) -> MasterController {
    let runtime = runtime_with(idp, |_| {});
    assert_status(&start(&runtime).await, StatusType::Ok);
    runtime
}

async fn enrolled(idp: &DevIdp) -> MasterController {
    let runtime = started(idp).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    runtime
}

/// Enrolled with PASSWORD `right`, restarted: the next login needs the password.
async fn password_user(idp: &DevIdp) -> MasterController {
    let runtime = started(idp).await;
    let mut event = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Password, CLIENT);
    event.password = Some(SecretString::from("right"));
    assert_status(&post(&runtime, event).await, StatusType::Ok);
    assert_status(&post(&runtime, RestartEvent::new()).await, StatusType::Ok);
    runtime
}

fn wrong_password() -> OfflineLoginEvent {
    let mut event = OfflineLoginEvent::new();
    event.password = Some(SecretString::from("wrong"));
    event
}

/// Brings a runtime into the situation(s) of `row` and returns the answers.
async fn drive(row: &Row, idp: &DevIdp) -> Vec<Event> {
    let mut answers = vec![drive_one(row, idp).await];
    if (row.status.as_str(), row.code.as_str()) == ("INVALID_PARAMETER", "AUDIENCE_NOT_ALLOWED") {
        // Keycloak's refusal of an audience it does not know: `invalid_request`.
        let runtime = enrolled(idp).await;
        let fault = HttpFault::OAuthError {
            status: 400,
            error: "invalid_request".into(),
            description: "Requested audience not available: no-such-api".into(),
        };
        idp.faults().set_http_fault(FaultTarget::Token, fault, None);
        answers.push(
            post(&runtime, ExchangeIamTokenEvent::new("no-such-api"))
                .await
                .into(),
        );
        idp.faults().clear_all();
    }
    answers
}

async fn drive_one(row: &Row, idp: &DevIdp) -> Event {
    idp.faults().clear_all();
    match (row.status.as_str(), row.code.as_str()) {
        ("INVALID_PARAMETER", "INVALID_PARAMETER") => {
            let runtime = started(idp).await;
            let event = EnrollAnonymousUserEvent::new("", AuthenticationMode::No, CLIENT);
            post(&runtime, event).await.into()
        }
        ("INVALID_PARAMETER", "MALFORMED_REQUEST") => {
            let runtime = started(idp).await;
            runtime
                .post_json(r#"{"type": "NoSuchEvent"}"#, Some(WAIT))
                .await
        }
        ("INVALID_STATE", "INVALID_STATE") => {
            let runtime = runtime_with(idp, |_| {});
            post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE))
                .await
                .into()
        }
        ("ALREADY_INITIALIZED", "ALREADY_INITIALIZED") => {
            let runtime = started(idp).await;
            post(&runtime, StartEvent::new()).await.into()
        }
        ("INVALID_USER_ID", "UNKNOWN_USER") => {
            let runtime = enrolled(idp).await;
            let mut event = OfflineLoginEvent::new();
            event.user_identifier = Some(UserIdentifier::new(TENANT, "nobody"));
            post(&runtime, event).await.into()
        }
        ("INVALID_PASSWORD", "WRONG_PASSWORD") => {
            let runtime = password_user(idp).await;
            post(&runtime, wrong_password()).await.into()
        }
        ("TEMPORARY_LOCKED", "TEMPORARILY_LOCKED") => {
            let runtime = password_user(idp).await;
            let policy = mc_store::LockoutPolicy::default();
            let mut last = post(&runtime, wrong_password()).await;
            for _ in 1..policy.attempts_before_temporary_lock {
                last = post(&runtime, wrong_password()).await;
            }
            last.into()
        }
        ("PIN_BLOCKED", "PIN_RETRIES_EXCEEDED") => {
            // Mode PIN, without temporary locks so the block comes at once.
            let runtime = runtime_with(idp, |c| c.store_settings.lockout.lock_delays_secs.clear());
            assert_status(&start(&runtime).await, StatusType::Ok);
            let event = EnrollAnonymousUserEvent::new(TENANT, AuthenticationMode::Pin, CLIENT)
                .with_password("482916");
            assert_status(&post(&runtime, event).await, StatusType::Ok);
            assert_status(&post(&runtime, RestartEvent::new()).await, StatusType::Ok);
            let policy = mc_store::LockoutPolicy::default();
            let wrong_pin = || OfflineLoginEvent::new().with_password("000000");
            for _ in 1..policy.attempts_before_block {
                post(&runtime, wrong_pin()).await;
            }
            post(&runtime, wrong_pin()).await.into()
        }
        ("INVALID_USER_ID", "UNKNOWN_TENANT") => {
            let runtime = enrolled(idp).await;
            post(&runtime, SwitchWorkspaceEvent::new("no-such-tenant"))
                .await
                .into()
        }
        ("NOT_REACHABLE", "SERVER_NOT_REACHABLE") => {
            // A port nobody listens on any more.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            drop(listener);
            let mut config = RuntimeConfig::new(url, StoreLocation::Memory);
            config.oidc.retry = quick_retries();
            let runtime = MasterController::start(config).unwrap();
            assert_status(&start(&runtime).await, StatusType::Ok);
            enroll(&runtime).await.into()
        }
        ("NOT_REACHABLE", "SERVER_TIMEOUT") => {
            let runtime = runtime_with(idp, |c| c.oidc.http_timeout = Duration::from_millis(200));
            assert_status(&start(&runtime).await, StatusType::Ok);
            let delay = HttpFault::Delay { millis: 2_000 };
            idp.faults()
                .set_http_fault(FaultTarget::Discovery, delay, None);
            enroll(&runtime).await.into()
        }
        ("FAILED", "INVALID_RESPONSE") => {
            let runtime = started(idp).await;
            let fault = HttpFault::MalformedJson;
            idp.faults().set_http_fault(FaultTarget::Token, fault, None);
            enroll(&runtime).await.into()
        }
        ("FAILED", "INVALID_CONFIGURATION") => {
            let runtime = started(idp).await;
            let event =
                EnrollAnonymousUserEvent::new("no-such-tenant", AuthenticationMode::No, CLIENT);
            post(&runtime, event).await.into()
        }
        ("SERVER_CANCEL", "IDP_SERVER_ERROR") => {
            let runtime = started(idp).await;
            let fault = HttpFault::Status {
                status: 500,
                retry_after_secs: None,
            };
            idp.faults().set_http_fault(FaultTarget::Token, fault, None);
            enroll(&runtime).await.into()
        }
        ("INVALID_PARAMETER", "AUDIENCE_NOT_ALLOWED") => {
            let runtime = enrolled(idp).await;
            post(&runtime, ExchangeIamTokenEvent::new("no-such-api"))
                .await
                .into()
        }
        ("ACCESS_DENIED", "ACCESS_DENIED") => {
            let runtime = enrolled(idp).await;
            let fault = HttpFault::OAuthError {
                status: 403,
                error: "access_denied".into(),
                description: "Missing consents for Token Exchange".into(),
            };
            idp.faults().set_http_fault(FaultTarget::Token, fault, None);
            post(&runtime, ExchangeIamTokenEvent::new(AUDIENCE))
                .await
                .into()
        }
        ("OFFLINE_NOT_ACTIVATED", "REGISTRATION_INVALID") => {
            let runtime = enrolled(idp).await;
            let info = post(&runtime, GetInformationEvent::new()).await;
            let user = info.logged_in_user.expect("logged in");
            let client = idp.client_of_subject(TENANT, &user.user_id).unwrap();
            assert!(idp.delete_client(TENANT, &client));
            post(&runtime, RestartEvent::new()).await;
            post(&runtime, OfflineLoginEvent::new()).await.into()
        }
        ("FAILED", "TOKEN_ORIGIN_NOT_ALLOWED") => {
            let runtime = enrolled(idp).await;
            let request =
                CreateHttpCommonRequest::new("https://elsewhere.example/steal", HttpMethod::Get)
                    .with_audience(AUDIENCE);
            post(&runtime, request).await.into()
        }
        other => panic!("no scenario for the documented row {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_error_table_is_what_the_runtime_answers() {
    let rows = documented_rows();
    assert!(rows.len() >= 15, "the table was not found whole: {rows:?}");
    let idp = idp().await;
    let mut drifts = Vec::new();
    for row in &rows {
        for answer in drive(row, &idp).await {
            let seen = observed(&answer);
            if &seen != row {
                drifts.push(format!(
                    "documented {row:?}\n  answered {seen:?}: {answer:?}"
                ));
            }
        }
    }
    assert!(drifts.is_empty(), "drifts:\n{}", drifts.join("\n"));
}
