//! With TRACE logging on for every crate, a whole lifecycle writes no token, key or
//! registration secret into the log. A JWT always starts with `eyJ` (base64 of `{"`), so any
//! token, assertion or ID token that slipped into a log line would show as that prefix.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use mc_events::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_whole_lifecycle_hold_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let idp = idp().await;
    let store = tempfile::tempdir().unwrap();
    let runtime = runtime_at(
        &idp.base_url(),
        mc_runtime::StoreLocation::Directory(store.path().into()),
    );
    let mut tokens = Vec::new();
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    for force in [false, true] {
        let answer = post(
            &runtime,
            ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(force),
        )
        .await;
        let Event::ExchangeIamTokenResultEvent(answer) = answer else {
            panic!("{answer:#?}")
        };
        tokens.push(answer.token.expect("token").expose().to_string());
    }
    let http = post(
        &runtime,
        CreateHttpCommonRequest::new(format!("{}/demo/echo", idp.base_url()), HttpMethod::Get)
            .with_audience(AUDIENCE),
    )
    .await;
    assert_status(&http, StatusType::Ok);
    // While the user is enrolled, the store's files hold no token in clear.
    for entry in std::fs::read_dir(store.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(3).any(|w| w == b"eyJ"));
        assert!(!bytes.windows(8).any(|w| w == &tokens[0].as_bytes()[..8]));
    }
    post(&runtime, RestartEvent::new()).await;
    assert_status(
        &post(&runtime, OfflineLoginEvent::new()).await,
        StatusType::Ok,
    );
    assert_status(
        &post(&runtime, DeleteUserEvent::new()).await,
        StatusType::Ok,
    );
    drop(runtime);

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        log.contains("request answered"),
        "the capture works: {}",
        &log[..log.len().min(2000)]
    );
    assert!(log.contains("request_id="), "spans carry the request id");
    assert!(
        log.contains("traceparent=00-"),
        "spans carry the traceparent"
    );
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "an IAM token reached the log");
    }
    if let Some(at) = log.find("eyJ") {
        panic!(
            "something JWT-like reached the log: …{}…",
            &log[at.saturating_sub(200)..(at + 100).min(log.len())]
        );
    }
}
