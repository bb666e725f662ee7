//! The RFC 8252 loopback redirect receiver (section 7.3), for desktop hosts (feature `loopback`;
//! mobile builds use their platform's app-claimed redirect and do not carry it).
//!
//! A desktop app that logs a user in opens the IDP's login page in the system browser with
//! `redirect_uri` = [`LoopbackReceiver::redirect_uri`] (`http://127.0.0.1:{port}/callback`, a
//! port the OS chose); the IDP sends the browser back there with the code. The app hands the
//! receiver the `state` of `CreateAuthorizationRequestResultEvent`; only a `GET /callback`
//! carrying exactly that `state` (compared in constant time) ends the wait, with a small fixed
//! "you can close this page" page, and its full URL goes to the app, which posts it as
//! `SetAuthorisationCodeEvent { redirectUrl }`. An `error=` redirect with the right `state`
//! ends it too: the runtime maps the error to a status.
//!
//! What it must not do: interpret the redirect beyond `state` (the runtime checks `state`
//! again, `iss`, `code`, `error`), echo any part of the request into a page, keep waiting
//! forever, let one slow or hostile local client block the browser's request, or let a stray
//! request end the login. Stray requests get an answer and the wait goes on: other paths (the
//! browser's `/favicon.ico`) 404, other methods 405, a missing, repeated or wrong `state` 400, a
//! head over [`MAX_REQUEST_BYTES`] 431, a `Host` other than `127.0.0.1:{port}` (DNS rebinding)
//! 400. More than [`MAX_STRAY_REQUESTS`] of them or [`MAX_STRAY_BYTES`] read from them end the
//! wait with [`LoopbackError::TooManyStrayRequests`], so a flood costs bounded work.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";
/// Largest request head accepted (request line and headers). A redirect with a code, state and
/// iss is a few hundred bytes; browsers send about a kilobyte of headers.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How long one connection may take to send its request head; a connection that never
/// finishes is dropped after this (and never blocks the others meanwhile).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once (a local flood does not exhaust us).
pub const MAX_CONNECTIONS: usize = 32;
/// Connections that were not the redirect (refused, dropped, timed out, closed for too many at
/// once) taken before the wait ends with [`LoopbackError::TooManyStrayRequests`]. A browser
/// makes one or two (`/favicon.ico`); a hundred is someone else.
pub const MAX_STRAY_REQUESTS: usize = 100;
/// Bytes read from stray connections before the wait ends the same way.
pub const MAX_STRAY_BYTES: usize = 1024 * 1024;

/// The page the browser shows after the redirect: fixed text, nothing from the request.
const DONE_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Login complete</title></head><body><p>The login is complete. You can close this page \
and return to the app.</p></body></html>";

/// The page of a request to the redirect path that is not this login's redirect (an old tab,
/// a forged link): fixed text, nothing from the request.
const NOT_THIS_LOGIN_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta \
charset=\"utf-8\"><title>Not this login</title></head><body><p>This is not the login the app \
is waiting for. Start the login again from the app.</p></body></html>";

/// Why no redirect was received. Each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    #[error("could not listen on 127.0.0.1 for the login redirect: {0}; check that loopback networking is available")]
    Bind(std::io::Error),
    #[error("no login redirect arrived within {0:?}; start the login again (CreateAuthorizationRequestEvent) and finish it in the browser")]
    TimedOut(Duration),
    #[error("the loopback listener failed: {0}; start the login again")]
    Accept(std::io::Error),
    #[error("no state to wait for: pass the state of CreateAuthorizationRequestResultEvent (a result without one is not OK: start the login again)")]
    NoState,
    #[error("{0} requests that were not the login redirect reached the loopback port; another local program may be interfering: start the login again")]
    TooManyStrayRequests(usize),
}

/// Listens on 127.0.0.1 on a port the OS chose, for one login redirect.
#[derive(Debug)]
pub struct LoopbackReceiver {
    listener: TcpListener,
    port: u16,
}

impl LoopbackReceiver {
    /// Binds `127.0.0.1:0` (RFC 8252 section 8.3: the loopback IP literal, not `localhost`).
    pub async fn bind() -> Result<Self, LoopbackError> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(LoopbackError::Bind)?;
        let port = listener.local_addr().map_err(LoopbackError::Bind)?.port();
        Ok(Self { listener, port })
    }

    /// The port the OS gave.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}/callback`: the `redirect_uri` of the authorization request.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Waits at most `timeout` for the `GET /callback` whose `state` is `expected_state` (the
    /// one of `CreateAuthorizationRequestResultEvent`), answers the browser, and returns the
    /// full redirect URL (`http://127.0.0.1:{port}/callback?code=…&state=…`). Every connection
    /// is served on its own task, so a client that never finishes its request delays nobody;
    /// stray requests are answered and counted (see the module doc). The listener closes when
    /// this returns. The future owns a copy of the state, so it can be spawned.
    pub fn wait_for_redirect(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<String, LoopbackError>> + Send + 'static {
        let expected = Arc::new(Expected {
            state: expected_state.to_owned(),
            host: format!("127.0.0.1:{}", self.port),
        });
        self.serve_until_redirect(expected, timeout)
    }

    async fn serve_until_redirect(
        self,
        expected: Arc<Expected>,
        timeout: Duration,
    ) -> Result<String, LoopbackError> {
        if expected.state.is_empty() {
            return Err(LoopbackError::NoState);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut strays = StrayCount::default();
        // Dropped on return: connections still open are aborted.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Err(LoopbackError::TimedOut(timeout)),
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                        connections.spawn(serve_connection(stream, expected.clone()));
                    }
                    // Too many at once: closing it is the answer.
                    Ok(_) => strays.add(0)?,
                    // Per-connection failures (reset before accept) are no reason to stop.
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => return Err(LoopbackError::Accept(e)),
                },
                Some(served) = connections.join_next(), if !connections.is_empty() => {
                    match served {
                        Ok(Served::Redirect(target)) => {
                            return Ok(format!("http://127.0.0.1:{}{target}", self.port));
                        }
                        Ok(Served::Stray { bytes }) => strays.add(bytes)?,
                        // A task cannot panic on input; count it all the same.
                        Err(_) => strays.add(0)?,
                    }
                }
            }
        }
    }
}

/// What the redirect must look like; shared by the connection tasks.
struct Expected {
    state: String,
    host: String,
}

/// The stray connections taken so far, against [`MAX_STRAY_REQUESTS`] and [`MAX_STRAY_BYTES`].
#[derive(Default)]
struct StrayCount {
    requests: usize,
    bytes: usize,
}

impl StrayCount {
    fn add(&mut self, bytes: usize) -> Result<(), LoopbackError> {
        self.requests += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.requests > MAX_STRAY_REQUESTS || self.bytes > MAX_STRAY_BYTES {
            return Err(LoopbackError::TooManyStrayRequests(self.requests));
        }
        Ok(())
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// How one connection ended.
enum Served {
    /// The login redirect: its request-target.
    Redirect(String),
    /// Anything else, with the bytes read from it.
    Stray { bytes: usize },
}

/// Reads one request head and answers it.
async fn serve_connection(mut stream: TcpStream, expected: Arc<Expected>) -> Served {
    let mut bytes = 0;
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, &mut bytes)).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::TooLarge)) => {
            respond(&mut stream, "431 Request Header Fields Too Large", "").await;
            bytes += drain(&mut stream).await;
            return Served::Stray { bytes };
        }
        // Closed early, unreadable or too slow: nothing to answer.
        Ok(Err(HeadError::Io)) | Err(_) => return Served::Stray { bytes },
    };
    match classify(&head, &expected) {
        Ok(target) => {
            respond(&mut stream, "200 OK", DONE_PAGE).await;
            Served::Redirect(target)
        }
        Err(Refusal::NotThisLogin) => {
            respond(&mut stream, "400 Bad Request", NOT_THIS_LOGIN_PAGE).await;
            Served::Stray { bytes }
        }
        Err(Refusal::Status(status)) => {
            respond(&mut stream, status, "").await;
            Served::Stray { bytes }
        }
    }
}

enum HeadError {
    TooLarge,
    Io,
}

/// Reads until the blank line that ends the head, at most [`MAX_REQUEST_BYTES`]; counts what
/// it read in `bytes`.
async fn read_head(stream: &mut TcpStream, bytes: &mut usize) -> Result<String, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let read = stream.read(&mut chunk).await.map_err(|_| HeadError::Io)?;
        *bytes += read;
        if read == 0 {
            return Err(HeadError::Io);
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_REQUEST_BYTES {
                return Err(HeadError::TooLarge);
            }
            head.truncate(end);
            // Non-ASCII in a request head is no browser's redirect.
            return String::from_utf8(head).map_err(|_| HeadError::Io);
        }
        if head.len() > MAX_REQUEST_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Why a request is not the redirect.
enum Refusal {
    /// A status line, with an empty body.
    Status(&'static str),
    /// A GET on the redirect path without this login's `state`: a 400 page that says so.
    NotThisLogin,
}

/// The request-target of this login's redirect, or why the request is refused.
fn classify(head: &str, expected: &Expected) -> Result<String, Refusal> {
    const BAD_REQUEST: Refusal = Refusal::Status("400 Bad Request");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD_REQUEST);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(BAD_REQUEST);
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BAD_REQUEST);
    }
    // The browser names the address it was sent to; any other Host is a page that rebound a
    // DNS name to 127.0.0.1 and is probing us.
    let mut hosts = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim());
    match (hosts.next(), hosts.next()) {
        (Some(host), None) if host == expected.host => {}
        _ => return Err(BAD_REQUEST),
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return Err(Refusal::Status("404 Not Found"));
    }
    if method != "GET" {
        return Err(Refusal::Status("405 Method Not Allowed"));
    }
    // Exactly one `state`, equal to this login's: a repeated one is a crafted URL.
    let mut states = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "state")
        .map(|(_, value)| value);
    match (states.next(), states.next()) {
        (Some(state), None) if constant_time_eq(state.as_bytes(), expected.state.as_bytes()) => {
            Ok(target.to_string())
        }
        _ => Err(Refusal::NotThisLogin),
    }
}

/// Equality whose time does not depend on where the first difference is (only on the
/// lengths), so a local client cannot find the state byte by byte from the answer's timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads what the client still sends (for a moment, a bounded amount) before the socket is
/// closed: closing with unread data makes the kernel send a reset, which can destroy the
/// refusal before the client reads it. Returns the bytes read.
async fn drain(stream: &mut TcpStream) -> usize {
    const DRAIN_LIMIT: usize = 4 * MAX_REQUEST_BYTES;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while drained < DRAIN_LIMIT {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(read) => drained += read,
            }
        }
    })
    .await;
    drained
}

async fn respond(stream: &mut TcpStream, status: &str, html: &str) {
    let answer = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'\r\n\
         Allow: GET\r\n\
         Connection: close\r\n\r\n{html}",
        html.len()
    );
    // The browser may have gone; the redirect URL is what matters, not this page.
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
