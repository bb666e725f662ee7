//! The RFC 8252 loopback receiver (feature `loopback`) as a browser and hostile local clients
//! talk to it: raw TCP on 127.0.0.1, so each test controls exactly the bytes sent.
#![cfg(feature = "loopback")]

use std::time::{Duration, Instant};

use mc_runtime::loopback::{
    LoopbackError, LoopbackReceiver, MAX_REQUEST_BYTES, MAX_STRAY_BYTES, MAX_STRAY_REQUESTS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);
/// The state of the login the receivers wait for (the runtime's is as long and as random).
const STATE: &str = "S1-u5Jk2pQ_x9";

/// Sends `request` and reads the whole answer (the receiver closes every connection).
async fn send(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(port: u16, target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\n\r\n")
        .into_bytes()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn the_redirect_is_returned_whole_and_the_page_echoes_nothing() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    assert_eq!(
        receiver.redirect_uri(),
        format!("http://127.0.0.1:{port}/callback")
    );
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    let target = "/callback?code=abc.def&state=S1-u5Jk2pQ_x9&iss=http%3A%2F%2Fidp%2Fr%3Cscript%3E";
    let answer = send(port, &get(port, target)).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("cache-control: no-store"), "{answer}");
    assert!(lower.contains("referrer-policy: no-referrer"), "{answer}");
    assert!(lower.contains("close this page"), "{answer}");
    for echoed in ["abc.def", "S1", "u5Jk", "script", "code="] {
        assert!(!answer.contains(echoed), "{echoed} echoed: {answer}");
    }
    let url = waiting.await.unwrap().unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}{target}"));
}

#[tokio::test]
async fn other_paths_get_404_and_the_receiver_keeps_waiting() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    for target in ["/favicon.ico", "/callback/x?code=1", "/callbackx", "/"] {
        let answer = send(port, &get(port, target)).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found", "{target}");
    }
    assert!(!waiting.is_finished(), "a wrong path is not the redirect");
    send(port, &get(port, "/callback?code=right&state=S1-u5Jk2pQ_x9")).await;
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        format!("http://127.0.0.1:{port}/callback?code=right&state=S1-u5Jk2pQ_x9")
    );
}

#[tokio::test]
async fn non_get_requests_are_refused_and_do_not_end_the_wait() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    for method in ["POST", "PUT", "HEAD", "OPTIONS"] {
        let request = format!(
            "{method} /callback?code=posted&state=S1-u5Jk2pQ_x9 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
        );
        let answer = send(port, request.as_bytes()).await;
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 405 Method Not Allowed",
            "{method}"
        );
    }
    send(port, &get(port, "/callback?code=got&state=S1-u5Jk2pQ_x9")).await;
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        format!("http://127.0.0.1:{port}/callback?code=got&state=S1-u5Jk2pQ_x9")
    );
}

#[tokio::test]
async fn oversized_malformed_and_foreign_host_requests_are_refused() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));

    // An endless header: refused once it passes the limit, without waiting for its end.
    let mut oversized =
        format!("GET /callback?code=big HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX: ").into_bytes();
    oversized.extend(std::iter::repeat_n(b'a', MAX_REQUEST_BYTES + 1));
    let answer = send(port, &oversized).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 431"), "{answer}");
    // A long query that ends within the limit... but past it once complete.
    let long = format!("/callback?code={}", "b".repeat(MAX_REQUEST_BYTES));
    let answer = send(port, &get(port, &long)).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 431"), "{answer}");

    let bad: Vec<Vec<u8>> = vec![
        // DNS rebinding: a page of another site sent there by a name that resolves to us.
        format!("GET /callback?code=x&state=S1-u5Jk2pQ_x9 HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n").into(),
        b"GET /callback?code=x&state=S1-u5Jk2pQ_x9 HTTP/1.1\r\n\r\n".to_vec(),
        format!("GET /callback?code=x&state=S1-u5Jk2pQ_x9 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: 127.0.0.1:{port}\r\n\r\n").into(),
        format!("GET /callback?code=x&state=S1-u5Jk2pQ_x9\x01 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into(),
        format!("GET http://127.0.0.1:{port}/callback?code=x&state=S1-u5Jk2pQ_x9 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into(),
        format!("GET /callback?code=x&state=S1-u5Jk2pQ_x9 SPDY/3\r\nHost: 127.0.0.1:{port}\r\n\r\n").into(),
        // Not UTF-8.
        [
            b"GET /callback?state=S1-u5Jk2pQ_x9&code=".to_vec(),
            vec![0xff],
            format!(" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into_bytes(),
        ]
        .concat(),
    ];
    for request in &bad {
        let answer = send(port, request).await;
        assert!(
            answer.is_empty() || status_line(&answer).starts_with("HTTP/1.1 400"),
            "{}: {answer}",
            String::from_utf8_lossy(request)
        );
    }
    assert!(
        !waiting.is_finished(),
        "nothing refused counts as the redirect"
    );
    send(port, &get(port, "/callback?code=fine&state=S1-u5Jk2pQ_x9")).await;
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        format!("http://127.0.0.1:{port}/callback?code=fine&state=S1-u5Jk2pQ_x9")
    );
}

#[tokio::test]
async fn only_this_logins_state_ends_the_wait() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    let refused = [
        "/callback?code=c".to_owned(),
        "/callback".to_owned(),
        "/callback?code=c&state=".to_owned(),
        "/callback?code=c&state=forged-state".to_owned(),
        // Off by the last byte, a prefix, a longer one, another case.
        format!("/callback?code=c&state={}", STATE.replace("x9", "x8")),
        format!("/callback?code=c&state={}", &STATE[..STATE.len() - 1]),
        format!("/callback?code=c&state={STATE}0"),
        format!("/callback?code=c&state={}", STATE.to_ascii_lowercase()),
        // The right one beside another: a crafted URL, whichever the runtime would read.
        format!("/callback?code=c&state={STATE}&state=other"),
        format!("/callback?code=c&state=other&state={STATE}"),
        format!("/callback?code=c&state={STATE}&state={STATE}"),
        // Not the parameter `state`.
        format!("/callback?code=c&xstate={STATE}"),
        format!("/callback?code=c&State={STATE}"),
        // An IDP error for another login.
        "/callback?error=access_denied&state=forged-state".to_owned(),
    ];
    for target in &refused {
        let answer = send(port, &get(port, target)).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request", "{target}");
        assert!(answer.contains("not the login"), "{target}: {answer}");
        for echoed in ["forged", "other", "code=", "u5Jk"] {
            assert!(!answer.contains(echoed), "{echoed} echoed: {answer}");
        }
    }
    assert!(!waiting.is_finished(), "no wrong state is the redirect");
    // Percent-encoded, it is the same state (the runtime decodes it the same way).
    let encoded = format!("/callback?code=c0de&state={}", STATE.replace('-', "%2D"));
    let answer = send(port, &get(port, &encoded)).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        format!("http://127.0.0.1:{port}{encoded}")
    );
}

#[tokio::test]
async fn an_idp_error_redirect_with_the_right_state_ends_the_wait() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    let target = format!("/callback?error=access_denied&error_description=no&state={STATE}");
    let answer = send(port, &get(port, &target)).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    // The app gets it whole; the runtime maps `error=` to a status.
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        format!("http://127.0.0.1:{port}{target}")
    );
}

#[tokio::test]
async fn no_state_to_wait_for_is_refused_at_once() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let outcome = receiver.wait_for_redirect("", WAIT).await;
    assert!(
        matches!(outcome, Err(LoopbackError::NoState)),
        "{outcome:?}"
    );
    let message = outcome.unwrap_err().to_string();
    assert!(
        message.contains("CreateAuthorizationRequestResultEvent"),
        "{message}"
    );
}

#[tokio::test]
async fn a_flood_of_stray_requests_ends_the_wait_with_a_clear_error() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    let started = Instant::now();
    for _ in 0..MAX_STRAY_REQUESTS {
        let answer = send(port, &get(port, "/favicon.ico")).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found");
    }
    // Counted as each connection ends: let the last ones finish before checking.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "up to the cap the wait goes on");
    send(port, &get(port, "/favicon.ico")).await;
    let outcome = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    match &outcome {
        Err(LoopbackError::TooManyStrayRequests(n)) => assert_eq!(*n, MAX_STRAY_REQUESTS + 1),
        other => panic!("{other:?}"),
    }
    let message = outcome.unwrap_err().to_string();
    assert!(message.contains("start the login again"), "{message}");
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    // The port is closed: nothing more is taken.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn stray_bytes_are_capped_before_the_request_count() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    // Heads just under the per-request limit: within the count, over the bytes.
    let padding = "p".repeat(MAX_REQUEST_BYTES - 200);
    let big =
        format!("GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {padding}\r\n\r\n");
    let needed = MAX_STRAY_BYTES / big.len() + 1;
    assert!(needed < MAX_STRAY_REQUESTS);
    for _ in 0..needed {
        send(port, big.as_bytes()).await;
    }
    let outcome = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    match outcome {
        Err(LoopbackError::TooManyStrayRequests(n)) => assert!(n <= needed, "{n}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_never_finished_request_does_not_block_the_redirect() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, WAIT));
    // Slowloris: connections that start a request and never finish it, and one idle.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(
                format!("GET /callback?code=stalled&state=S1-u5Jk2pQ_x9 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        stalled.push(stream);
    }
    stalled.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let started = Instant::now();
    let answer = send(
        port,
        &get(port, "/callback?code=browser&state=S1-u5Jk2pQ_x9"),
    )
    .await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        format!("http://127.0.0.1:{port}/callback?code=browser&state=S1-u5Jk2pQ_x9")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn no_redirect_is_a_timeout_error_and_the_port_is_released() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let started = Instant::now();
    let outcome = receiver
        .wait_for_redirect(STATE, Duration::from_millis(300))
        .await;
    assert!(
        matches!(outcome, Err(LoopbackError::TimedOut(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = outcome.unwrap_err().to_string();
    assert!(message.contains("start the login again"), "{message}");
    // The listener is closed: the browser arriving late finds nobody, not a hang.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn a_stalled_request_still_times_out_the_wait() {
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, Duration::from_millis(500)));
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"GET /callback").await.unwrap();
    let outcome = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert!(
        matches!(outcome, Err(LoopbackError::TimedOut(_))),
        "{outcome:?}"
    );
}

/// The receiver as a real browser meets it: Chromium asks for the page (and maybe a favicon)
/// and shows the fixed text; the app gets the URL.
#[tokio::test]
async fn headless_chromium_lands_on_the_receiver_page() {
    let driver = mc_testkit::browser::ChromeDriver::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let browser = driver.new_session().await.unwrap();
    let receiver = LoopbackReceiver::bind().await.unwrap();
    let redirect = format!("{}?code=c0de&state={STATE}", receiver.redirect_uri());
    let waiting = tokio::spawn(receiver.wait_for_redirect(STATE, Duration::from_secs(30)));
    browser.navigate(&redirect).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), redirect);
    let page = browser.page_source().await.unwrap();
    assert!(page.contains("close this page"), "{page}");
    assert!(!page.contains("c0de") && !page.contains(STATE), "{page}");
    browser.find("p").await.unwrap();
    // A WebDriver error says which command failed and why.
    let missing = browser.find("#no-such-element").await.unwrap_err();
    assert!(missing.to_string().contains("no such element"), "{missing}");
    browser.close().await.unwrap();
}
