//! With TRACE logging on for every crate, a whole lifecycle in each authentication mode writes
//! no token, key, password or registration secret into the log, and the store's files hold none
//! of them in clear. A JWT always starts with `eyJ` (base64 of `{"`), so any token, assertion or
//! ID token that slipped into a log line would show as that prefix.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mc_events::*;
use mc_runtime::{MasterController, StoreLocation};
use mc_store::SoftwareBiometric;
use mc_testkit::*;

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

const PASSWORD: &str = "Tr0ub4dor&3-unique-marker";

fn files_of(dir: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_and_store_files_hold_no_secret_in_any_mode() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let idp = idp().await;
    let mut tokens = Vec::new();
    for mode in [
        AuthenticationMode::No,
        AuthenticationMode::Password,
        AuthenticationMode::Biometric,
    ] {
        let store = tempfile::tempdir().unwrap();
        let mut config = fast_config(
            &idp.base_url(),
            StoreLocation::Directory(store.path().into()),
        );
        config.biometric = Some(Arc::new(SoftwareBiometric::in_memory()));
        let runtime = MasterController::start(config).unwrap();
        let password = (mode == AuthenticationMode::Password).then_some(PASSWORD);

        start(&runtime).await;
        let mut enroll = EnrollAnonymousUserEvent::new(TENANT, mode, CLIENT);
        let mut login = OfflineLoginEvent::new();
        if let Some(password) = password {
            enroll = enroll.with_password(password);
            login = login.with_password(password);
        }
        assert_status(&post(&runtime, enroll).await, StatusType::Ok);
        for force in [false, true] {
            let answer = post(
                &runtime,
                ExchangeIamTokenEvent::new(AUDIENCE).with_force_update(force),
            )
            .await;
            tokens.push(answer.token.expect("token").expose().to_string());
        }
        let http = post(
            &runtime,
            CreateHttpCommonRequest::new(format!("{}/demo/echo", idp.base_url()), HttpMethod::Get)
                .with_audience(AUDIENCE),
        )
        .await;
        assert_status(&http, StatusType::Ok);
        // While the user is enrolled, the store's files hold no token or password in clear.
        for bytes in files_of(store.path()) {
            assert!(!contains(&bytes, b"eyJ"), "{mode:?}: a JWT in the store");
            assert!(
                !contains(&bytes, PASSWORD.as_bytes()),
                "{mode:?}: the password in the store"
            );
            assert!(!contains(&bytes, &tokens[0].as_bytes()[..16]));
        }
        post(&runtime, RestartEvent::new()).await;
        if mode == AuthenticationMode::Password {
            let wrong = post(
                &runtime,
                OfflineLoginEvent::new().with_password("wrong-guess-marker"),
            )
            .await;
            assert_status(&wrong, StatusType::InvalidPassword);
        }
        assert_status(&post(&runtime, login).await, StatusType::Ok);
        assert_status(
            &post(&runtime, DeleteUserEvent::new()).await,
            StatusType::Ok,
        );
    }

    // DeleteUser with the IDP answering 500: its registration token is queued in the store
    // (sealed), then sent at the next Restart. Neither the token nor the registration URI's
    // secret part may reach a store file or the log. The IDP persists its state, which holds
    // the token in clear: that is how the test knows it.
    let idp_state = tempfile::tempdir().unwrap();
    let persisted = mc_devidp::DevIdp::start(
        "127.0.0.1:0".parse().unwrap(),
        mc_devidp::DevIdpConfig {
            state_dir: Some(idp_state.path().into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let runtime = runtime_at(
        &persisted.base_url(),
        StoreLocation::Directory(store.path().into()),
    );
    start(&runtime).await;
    assert_status(&enroll(&runtime).await, StatusType::Ok);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(idp_state.path().join("devidp-state.json")).unwrap())
            .unwrap();
    let registration_token = state["tenants"][TENANT]["clients"][0]["registration_access_token"]
        .as_str()
        .expect("the dev IDP's state names the registration token")
        .to_string();
    persisted.faults().set_http_fault(
        mc_devidp::FaultTarget::RegistrationManagement,
        mc_devidp::HttpFault::Status {
            status: 500,
            retry_after_secs: None,
        },
        None,
    );
    let deleted = post(&runtime, DeleteUserEvent::new()).await;
    assert!(deleted.idp_deletion_pending, "{deleted:#?}");
    for bytes in files_of(store.path()) {
        assert!(
            !contains(&bytes, registration_token.as_bytes()),
            "the queued registration token is in a store file in clear"
        );
    }
    persisted.faults().clear_http_fault();
    post(&runtime, RestartEvent::new()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while runtime.queued_idp_deletions_for_tests().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue was never sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        !log.contains(&registration_token),
        "the registration token reached the log"
    );
    assert!(
        log.contains("the IDP confirmed the deletion"),
        "the queued delete was sent while captured"
    );
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
    assert!(!log.contains(PASSWORD), "the password reached the log");
    assert!(
        !log.contains("wrong-guess-marker"),
        "a wrong password reached the log"
    );
    if let Some(at) = log.find("eyJ") {
        panic!(
            "something JWT-like reached the log: …{}…",
            &log[at.saturating_sub(200)..(at + 100).min(log.len())]
        );
    }
}
