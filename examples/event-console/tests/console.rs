//! Runs the real `event-console` binary: demo, JSON lines, a kept store, the prompt on a pipe.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mc_events::{Event, SdkState, StatusType};
use serde_json::Value;

const CONSOLE: &str = env!("CARGO_BIN_EXE_event-console");
/// Every run must end well within this; the demo is meant to take well under a second.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs the console with `args`, writes `stdin` and closes it, and waits (at most RUN_LIMIT).
fn run_console(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(CONSOLE)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("event-console starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "event-console {args:?} did not finish in {RUN_LIMIT:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Same, off the async workers so the test's dev IDP keeps serving.
async fn run_console_async(args: Vec<String>, stdin: String) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_console(&args, &stdin)
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every stdout line must be one JSON event.
fn events_of(output: &Output) -> Vec<Event> {
    let stdout = text(&output.stdout);
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            assert!(value.get("type").is_some(), "no type: {line}");
            Event::from_json(line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"))
        })
        .collect()
}

/// The one result per request id; fails if a request got none or more than one.
fn results_by_id(events: &[Event]) -> HashMap<String, Event> {
    let mut by_id: HashMap<String, Event> = HashMap::new();
    for event in events.iter().filter(|e| e.is_result()) {
        let id = event
            .request_id()
            .unwrap_or_else(|| panic!("a result without requestId: {}", event.to_json()))
            .to_string();
        if let Some(earlier) = by_id.insert(id.clone(), event.clone()) {
            panic!(
                "two results for {id}: {} and {}",
                earlier.to_json(),
                event.to_json()
            );
        }
    }
    by_id
}

fn result<'a>(results: &'a HashMap<String, Event>, id: &str) -> &'a Event {
    results
        .get(id)
        .unwrap_or_else(|| panic!("no result for request {id}"))
}

fn json_args(base: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--json".to_owned(),
        "--server-url".to_owned(),
        base.to_owned(),
        // The dev IDP serves the demo resource: its origin may receive the demo-api token.
        "--audience-origin".to_owned(),
        format!("demo-api={base}"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

const START: &str = r#"{"type":"StartEvent","requestId":"start-1"}"#;
const ENROLL: &str = r#"{"type":"EnrollAnonymousUserEvent","requestId":"enroll-1","tenantId":"demo","authenticationMode":"NO","clientId":"AnonymousUserEnrollment"}"#;
const EXCHANGE: &str =
    r#"{"type":"ExchangeIamTokenEvent","requestId":"exchange-1","audience":"demo-api"}"#;

#[test]
fn demo_runs_every_step_and_exits_0() {
    let started = Instant::now();
    let output = run_console(&["demo"], "");
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        text(&output.stderr)
    );
    let steps = [
        "Start",
        "Enroll demo",
        "Exchange demo-api",
        "HTTP GET /demo/echo",
        "Restart",
        "OfflineLogin",
        "Exchange demo-api (cached)",
        "Delete",
        // the identified user at the in-process dev IDP
        "Authorize demo",
        "Login form (as a browser)",
        "SetAuthorisationCode",
        "Exchange demo-api",
        "HTTP GET /demo/echo",
        "Logout: ClearIamTokenCache",
        "Logout: Restart",
        "OfflineLogin (refused)",
    ];
    let total = steps.len();
    for (index, step) in steps.iter().enumerate() {
        let step = format!("[{}/{total}] {step} ", index + 1);
        let line = stdout
            .lines()
            .find(|line| line.starts_with(&step))
            .unwrap_or_else(|| panic!("step {step} not printed:\n{stdout}"));
        let expected = match index + 1 {
            10 => " REDIRECT ",
            16 => " NO_TOKEN_DATA_AVAILABLE ",
            _ => " OK ",
        };
        assert!(line.contains(expected), "step not {expected}: {line}");
        assert!(line.contains(" ms"), "no duration: {line}");
    }
    assert!(stdout.contains("httpStatus 200, echo sub "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "echo sub {} (the identified user)",
            mc_devidp::DEMO_USER_SUB
        )),
        "{stdout}"
    );
    assert!(stdout.contains("sdkState LOGIN_REQUIRED"), "{stdout}");
    assert!(
        stdout.contains(&format!("all {total} steps gave the expected status")),
        "{stdout}"
    );
    assert!(
        !contains_jwt(&stdout),
        "a whole token was printed:\n{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "NO_COLOR must disable colour");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the demo must finish in seconds, took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_answers_every_line_once_and_goes_on_after_bad_lines() {
    let idp = mc_testkit::idp().await;
    let base = idp.base_url();
    let http = format!(
        r#"{{"type":"CreateHttpCommonRequest","requestId":"http-1","fullUrl":"{base}/demo/echo","method":"GET","audience":"demo-api"}}"#
    );
    let script = [
        START,
        ENROLL,
        "this is not json",
        r#"{"type":"NoSuchEvent","requestId":"unknown-1"}"#,
        "   ",
        EXCHANGE,
        &http,
    ]
    .join("\n");
    let output = run_console_async(json_args(&base, &[]), script + "\n").await;
    assert!(
        output.status.success(),
        "exit {:?}, stderr:\n{}",
        output.status,
        text(&output.stderr)
    );
    let events = events_of(&output);
    let results = results_by_id(&events);
    // Five requests with ids, and the malformed line (answered under an id the runtime chose).
    assert_eq!(results.len(), 6, "{}", text(&output.stdout));

    match result(&results, "start-1") {
        Event::StartResultEvent(e) => {
            assert_eq!(e.info.status, StatusType::Ok);
            assert_eq!(e.sdk_state, SdkState::ActivationRequired);
        }
        other => panic!("start: {}", other.to_json()),
    }
    assert_eq!(result(&results, "enroll-1").status(), Some(StatusType::Ok));
    match result(&results, "exchange-1") {
        Event::ExchangeIamTokenResultEvent(e) => {
            assert_eq!(e.info.status, StatusType::Ok);
            // JSON mode gives the script its token whole.
            assert!(e
                .token
                .as_ref()
                .is_some_and(|t| t.expose().split('.').count() == 3));
        }
        other => panic!("exchange: {}", other.to_json()),
    }
    match result(&results, "http-1") {
        Event::CreateHttpCommonResultEvent(e) => {
            assert_eq!(e.http_status, Some(200), "{}", e.error_description);
            let body: Value = serde_json::from_slice(&e.response).unwrap();
            assert!(
                body["sub"].as_str().is_some_and(|s| !s.is_empty()),
                "{body}"
            );
            assert_eq!(body["aud"], "demo-api");
        }
        other => panic!("http: {}", other.to_json()),
    }
    let invalid: Vec<&Event> = results
        .values()
        .filter(|e| e.status() == Some(StatusType::InvalidParameter))
        .collect();
    assert_eq!(invalid.len(), 2, "malformed line and unknown type");
    let unknown = result(&results, "unknown-1");
    assert_eq!(unknown.status(), Some(StatusType::InvalidParameter));
    assert!(
        unknown.to_json().contains("NoSuchEvent"),
        "names the problem"
    );

    // The console used the IDP it was given.
    let stats = idp.stats();
    assert_eq!(stats.registration, 1);
    assert_eq!(stats.echo, 1);
    assert!(stats.token_exchange >= 1);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_refuses_repeated_keys_and_control_characters_and_reuses_answered_ids() {
    let idp = mc_testkit::idp().await;
    let base = idp.base_url();
    let again = r#"{"type":"GetStateEvent","requestId":"again"}"#;
    let script = [
        START,
        again,
        again,
        // "type" twice: serde alone would run the second (DeleteUserEvent).
        r#"{"type":"GetStateEvent","type":"DeleteUserEvent","requestId":"dup-1"}"#,
        r#"{"type":"EnrollAnonymousUserEvent","requestId":"nul-1","tenantId":"de\u0000mo","authenticationMode":"NO","clientId":"AnonymousUserEnrollment"}"#,
    ]
    .join("\n");
    let output = run_console_async(json_args(&base, &[]), script + "\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events = events_of(&output);
    let results: Vec<&Event> = events.iter().filter(|e| e.is_result()).collect();
    assert_eq!(
        results.len(),
        5,
        "one result per line: {}",
        text(&output.stdout)
    );

    // An id may be used again once its request was answered: each post gets its own result.
    let again_results = results
        .iter()
        .filter(|e| e.request_id().map(|r| r.as_str()) == Some("again"))
        .count();
    assert_eq!(again_results, 2);

    // The repeated key refuses the whole line (its requestId is not trusted either).
    let duplicate = results
        .iter()
        .find(|e| e.to_json().contains("more than once"))
        .unwrap_or_else(|| panic!("no refusal of the repeated key: {}", text(&output.stdout)));
    assert_eq!(duplicate.status(), Some(StatusType::InvalidParameter));
    let info = duplicate.result_info().unwrap();
    assert_eq!(info.error_code, mc_events::error_code::MALFORMED_REQUEST);
    assert!(
        info.error_description.contains("field `type`"),
        "{}",
        info.error_description
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DeleteUserResultEvent(_))),
        "the second `type` ran"
    );

    let nul = results
        .iter()
        .find(|e| e.request_id().map(|r| r.as_str()) == Some("nul-1"))
        .expect("a result for nul-1");
    assert_eq!(nul.status(), Some(StatusType::InvalidParameter));
    let info = nul.result_info().unwrap();
    assert!(
        info.error_description.contains("field `tenantId`")
            && info.error_description.contains("control character"),
        "{}",
        info.error_description
    );
    assert_eq!(idp.stats().registration, 0, "nothing reached the IDP");
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_store_needs_offline_login_in_the_next_run() {
    let idp = mc_testkit::idp().await;
    let base = idp.base_url();
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap().to_owned();

    let first = run_console_async(
        json_args(&base, &["--store", &store_arg]),
        format!("{START}\n{ENROLL}\n"),
    )
    .await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let first_results = results_by_id(&events_of(&first));
    assert_eq!(
        result(&first_results, "enroll-1").status(),
        Some(StatusType::Ok)
    );

    let login = r#"{"type":"OfflineLoginEvent","requestId":"login-1"}"#;
    let second = run_console_async(
        json_args(&base, &["--store", &store_arg]),
        format!("{START}\n{login}\n{EXCHANGE}\n"),
    )
    .await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let events = events_of(&second);
    let results = results_by_id(&events);
    match result(&results, "start-1") {
        Event::StartResultEvent(e) => {
            assert_eq!(e.info.status, StatusType::Ok);
            assert_eq!(e.sdk_state, SdkState::LoginRequired);
            assert_eq!(e.user_details_list.len(), 1);
        }
        other => panic!("start: {}", other.to_json()),
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::StartLoginEvent(_))),
        "StartLoginEvent pushed"
    );
    assert_eq!(result(&results, "login-1").status(), Some(StatusType::Ok));
    assert_eq!(
        result(&results, "exchange-1").status(),
        Some(StatusType::Ok)
    );
    // One registration in all: the second run reused the stored enrollment.
    assert_eq!(idp.stats().registration, 1);
    idp.shutdown().await;
}

#[test]
fn the_prompt_on_a_pipe_prints_events_and_usage_hints_without_colour() {
    let script = [
        "help",
        "start",
        "enroll",
        "exchange",
        "http GET /demo/echo",
        "frobnicate now",
        "login nouser",
        "json {broken",
        "state",
        "quit",
    ]
    .join("\n");
    let output = run_console(&[], &(script + "\n"));
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{}",
        output.status,
        text(&output.stderr)
    );
    for expected in [
        "delete-audience AUD...",
        "CLEAR_ALL, which logs out",
        "StartResultEvent OK",
        "sdkState: ACTIVATION_REQUIRED",
        "LoginTokenClaimsAvailableEvent pushed",
        "ExchangeIamTokenResultEvent OK",
        "CreateHttpCommonResultEvent success HTTP 200",
        "unknown command `frobnicate`",
        "a user is TENANT/USER",
        "StatusResultEvent INVALID_PARAMETER",
        "sdkState: LOGGED_IN",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // Tokens only shortened: the token line ends in "…", and no whole JWT is anywhere.
    let token_line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("token: "))
        .expect("a token line");
    assert!(token_line.ends_with('…'), "{token_line}");
    assert!(token_line.len() < 40, "{token_line}");
    assert!(
        !contains_jwt(&stdout),
        "a whole token was printed:\n{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "no colour on a pipe");
    // The results come in the order of the commands (each printed before the next prompt).
    let start = stdout.find("StartResultEvent OK").unwrap();
    let exchange = stdout.find("ExchangeIamTokenResultEvent OK").unwrap();
    let state = stdout.find("GetStateResultEvent OK").unwrap();
    assert!(start < exchange && exchange < state);
}

#[test]
fn bad_flags_fail_with_a_message() {
    let output = run_console(&["--server-url", "not a url", "--json"], "");
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--server-url"),
        "{}",
        text(&output.stderr)
    );
    assert!(output.stdout.is_empty());

    let output = run_console(&["--json", "demo"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--json"));
}

/// Any `xxx.yyy.zzz` word whose first two parts decode to JSON objects, as JWS do.
fn contains_jwt(text: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && parts.iter().take(2).all(|part| {
                    URL_SAFE_NO_PAD
                        .decode(part)
                        .ok()
                        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                        .is_some_and(|v| v.is_object())
                })
        })
}

#[test]
fn jwt_detector_finds_a_token() {
    let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let token = format!(
        "{}.{}.c2ln",
        part(r#"{"alg":"ES256"}"#),
        part(r#"{"sub":"x"}"#)
    );
    assert!(contains_jwt(&format!("token: {token}\n")));
    assert!(!contains_jwt("token: eyJhbGciOiJF…"));
}

const ENROLL_BIOMETRIC: &str = r#"{"type":"EnrollAnonymousUserEvent","requestId":"enroll-b","tenantId":"demo","authenticationMode":"BIOMETRIC","clientId":"AnonymousUserEnrollment"}"#;

/// `--software-biometric`: BIOMETRIC can be tried in the console, each prompt scripted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_software_biometric_plays_its_scripted_outcomes() {
    let idp = mc_testkit::idp().await;
    let lines = [
        START.to_string(),
        ENROLL_BIOMETRIC.to_string(),
        r#"{"type":"RestartEvent","requestId":"restart-1"}"#.to_string(),
        r#"{"type":"OfflineLoginEvent","requestId":"login-cancel"}"#.to_string(),
        r#"{"type":"OfflineLoginEvent","requestId":"login-lockout"}"#.to_string(),
        r#"{"type":"OfflineLoginEvent","requestId":"login-ok"}"#.to_string(),
    ];
    let args = json_args(
        &idp.base_url(),
        &["--software-biometric", "ok,cancel,lockout"],
    );
    let output = run_console_async(args, lines.join("\n") + "\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("DEMO STAND-IN"));
    let results = results_by_id(&events_of(&output));
    let status = |id| result(&results, id).status();
    assert_eq!(status("enroll-b"), Some(StatusType::Ok));
    assert_eq!(status("login-cancel"), Some(StatusType::UserCancel));
    assert_eq!(status("login-lockout"), Some(StatusType::TemporaryLocked));
    assert_eq!(
        status("login-ok"),
        Some(StatusType::Ok),
        "the script used up: ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_biometric_is_not_supported_and_bad_scripts_are_refused() {
    let idp = mc_testkit::idp().await;
    let lines = format!("{START}\n{ENROLL_BIOMETRIC}\n");
    let output = run_console_async(json_args(&idp.base_url(), &[]), lines).await;
    let results = results_by_id(&events_of(&output));
    assert_eq!(
        result(&results, "enroll-b").status(),
        Some(StatusType::NotSupported)
    );

    let output = run_console(&["--json", "--software-biometric", "ok,maybe"], "");
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("ok, cancel, lockout, invalidated"));
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_software_key_asks_for_a_new_enrollment() {
    let idp = mc_testkit::idp().await;
    let lines = [
        START.to_string(),
        ENROLL_BIOMETRIC.to_string(),
        r#"{"type":"RestartEvent","requestId":"restart-1"}"#.to_string(),
        r#"{"type":"OfflineLoginEvent","requestId":"login-invalidated"}"#.to_string(),
    ];
    let args = json_args(&idp.base_url(), &["--software-biometric", "ok,invalidated"]);
    let output = run_console_async(args, lines.join("\n") + "\n").await;
    let results = results_by_id(&events_of(&output));
    assert_eq!(
        result(&results, "login-invalidated").status(),
        Some(StatusType::BiometricKeyInvalidated)
    );
}

/// The prompt with `login-user`, played by the test as a person with a browser would: it reads
/// the printed login URL, fills in the dev IDP's form (`mc_devidp::form_login`) and sends the
/// browser to the redirect, which the console's loopback receiver takes. `browser` gets the
/// redirect URL the IDP answered and returns the ones the "browser" opens, in order.
struct LoginUserRun {
    stdout: String,
    /// What the loopback receiver answered the browser, one per URL opened.
    pages: Vec<(u16, String)>,
}

async fn run_login_user(script: &[&str], browser: fn(String) -> Vec<String>) -> LoginUserRun {
    let mut child = Command::new(CONSOLE)
        // No desktop opener: the test is the browser.
        .env("PATH", "/nonexistent")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("event-console starts");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all((script.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(input);
    // Lines as they come, so the URL can be used while the console waits for the redirect.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let url = loop {
        let line = lines_rx
            .recv_timeout(RUN_LIMIT)
            .unwrap_or_else(|e| panic!("no login URL printed ({e}):\n{}", seen.join("\n")));
        seen.push(line.clone());
        let trimmed = line.trim();
        if trimmed.starts_with("http://") && trimmed.contains("/protocol/openid-connect/auth") {
            break trimmed.to_owned();
        }
    };
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(mc_oidc::tls_client_config().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = mc_devidp::form_login(
        &http,
        &url,
        mc_devidp::DEMO_USER,
        mc_devidp::DEMO_USER_PASSWORD,
        Some(mc_devidp::DEMO_USER_OTP),
    )
    .await
    .unwrap_or_else(|e| panic!("the login form: {e}\n{}", seen.join("\n")));
    assert!(
        redirect.starts_with("http://127.0.0.1:"),
        "the IDP sends the browser to the loopback receiver: {redirect}"
    );
    let mut pages = Vec::new();
    for opened in browser(redirect) {
        let answer = http.get(opened).send().await.unwrap();
        let status = answer.status().as_u16();
        pages.push((status, answer.text().await.unwrap()));
    }
    let output = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if started.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    reader.join().unwrap();
    seen.extend(lines_rx.try_iter());
    let stdout = seen.join("\n");
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\nstderr:\n{}",
        output.status,
        text(&output.stderr)
    );
    assert!(
        !contains_jwt(&stdout),
        "a whole token was printed:\n{stdout}"
    );
    LoginUserRun { stdout, pages }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_user_logs_in_through_the_loopback_redirect_and_logout_logs_out() {
    let run = run_login_user(
        &["start", "login-user", "info", "logout", "login", "quit"],
        |redirect| vec![redirect],
    )
    .await;
    let stdout = &run.stdout;
    let (status, page) = &run.pages[0];
    assert_eq!(*status, 200, "{page}");
    assert!(page.contains("You can close this page"), "{page}");
    assert!(
        stdout.contains("no desktop opener found"),
        "without xdg-open the URL is left to the person:\n{stdout}"
    );
    let logged_in = stdout
        .find("StatusResultEvent OK")
        .unwrap_or_else(|| panic!("SetAuthorisationCode not OK:\n{stdout}"));
    assert!(
        stdout.contains(mc_devidp::DEMO_USER_SUB),
        "info names the identified user (the ID token's sub):\n{stdout}"
    );
    let cleared = stdout
        .find("ClearIamTokenCacheResultEvent OK")
        .unwrap_or_else(|| panic!("logout's ClearIamTokenCache not OK:\n{stdout}"));
    let restarted = stdout
        .find("RestartResultEvent OK")
        .unwrap_or_else(|| panic!("logout's Restart not OK:\n{stdout}"));
    let refused = stdout
        .find("OfflineLoginResultEvent NO_TOKEN_DATA_AVAILABLE")
        .unwrap_or_else(|| panic!("offline login after logout not refused:\n{stdout}"));
    assert!(logged_in < cleared && cleared < restarted && restarted < refused);
}

/// A redirect whose `state` is not the request's (a forged or replayed one) reaches the
/// console's receiver first: it is answered 400 and never posted, the console keeps waiting,
/// and the real redirect after it logs the user in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_user_ignores_a_forged_state_and_takes_the_real_redirect() {
    let run = run_login_user(&["start", "login-user", "state", "quit"], |redirect| {
        let mut url = url::Url::parse(&redirect).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| match name.as_ref() {
                "state" => (name.into_owned(), "forged-state".to_owned()),
                _ => (name.into_owned(), value.into_owned()),
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        vec![url.into(), redirect]
    })
    .await;
    let stdout = &run.stdout;
    let (forged_status, forged_page) = &run.pages[0];
    assert_eq!(*forged_status, 400, "{forged_page}");
    assert!(forged_page.contains("not the login"), "{forged_page}");
    assert!(!forged_page.contains("forged"), "{forged_page}");
    let (status, page) = &run.pages[1];
    assert_eq!(*status, 200, "{page}");
    assert!(page.contains("You can close this page"), "{page}");
    // One SetAuthorisationCode was posted, the real one; the forged URL never reached the
    // runtime.
    let answers: Vec<_> = stdout
        .lines()
        .filter(|line| line.contains("StatusResultEvent"))
        .collect();
    assert_eq!(answers.len(), 1, "{stdout}");
    assert!(answers[0].contains(" OK"), "{stdout}");
    assert!(!stdout.contains("forged-state"), "{stdout}");
    assert!(stdout.contains("sdkState: LOGGED_IN"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_takes_mode_pin_and_switches_workspaces() {
    let idp = mc_testkit::idp_with(mc_devidp::DevIdpConfig {
        tenants: vec!["demo".to_owned(), "other".to_owned()],
        ..mc_devidp::DevIdpConfig::default()
    })
    .await;
    let lines = [
        START,
        r#"{"type":"EnrollAnonymousUserEvent","requestId":"enroll-pin-letters","tenantId":"demo","authenticationMode":"PIN","clientId":"AnonymousUserEnrollment","password":"48291a"}"#,
        r#"{"type":"EnrollAnonymousUserEvent","requestId":"enroll-pin","tenantId":"demo","authenticationMode":"PIN","clientId":"AnonymousUserEnrollment","password":"482916"}"#,
        r#"{"type":"EnrollAnonymousUserEvent","requestId":"enroll-other","tenantId":"other","authenticationMode":"NO","clientId":"AnonymousUserEnrollment"}"#,
        r#"{"type":"SwitchWorkspaceEvent","requestId":"switch-demo","tenantId":"demo"}"#,
        r#"{"type":"OfflineLoginEvent","requestId":"login-short","password":"4829"}"#,
        r#"{"type":"OfflineLoginEvent","requestId":"login-pin","password":"482916"}"#,
        r#"{"type":"SwitchWorkspaceEvent","requestId":"switch-unknown","tenantId":"nowhere"}"#,
    ];
    let output = run_console_async(json_args(&idp.base_url(), &[]), lines.join("\n") + "\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results = results_by_id(&events_of(&output));
    let status = |id| result(&results, id).status();
    assert_eq!(
        status("enroll-pin-letters"),
        Some(StatusType::InvalidParameter)
    );
    assert_eq!(status("enroll-pin"), Some(StatusType::Ok));
    assert_eq!(status("enroll-other"), Some(StatusType::Ok));
    let Event::SwitchWorkspaceResultEvent(switched) = result(&results, "switch-demo") else {
        panic!("not a switch result");
    };
    assert_eq!(switched.sdk_state, SdkState::LoginRequired);
    assert_eq!(
        switched
            .user_identifier
            .as_ref()
            .map(|u| u.tenant_id.as_str()),
        Some("demo")
    );
    assert_eq!(status("login-short"), Some(StatusType::InvalidParameter));
    assert_eq!(status("login-pin"), Some(StatusType::Ok));
    assert_eq!(status("switch-unknown"), Some(StatusType::InvalidUserId));
    assert!(!text(&output.stdout).contains("482916\""), "a PIN echoed");
}
