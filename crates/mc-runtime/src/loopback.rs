//! The RFC 8252 loopback redirect receiver (section 7.3), for desktop hosts (feature `loopback`;
//! mobile builds use their platform's app-claimed redirect and do not carry it).
//!
//! A desktop app that logs a user in opens the IDP's login page in the system browser with
//! `redirect_uri` = [`LoopbackReceiver::redirect_uri`] (`http://127.0.0.1:{port}/callback`, a
//! port the OS chose); the IDP sends the browser back there with the code. The receiver takes
//! the one `GET /callback`, answers the browser a small fixed "you can close this page" page
//! and hands the full redirect URL to the app, which posts it as `SetAuthorisationCodeEvent
//! { redirectUrl }` (the runtime checks `state` and `iss`, not this module).
//!
//! What it must not do: interpret the redirect (no parsing of `code`/`state` here), echo any
//! part of the request into the page, keep waiting forever, or let one slow or hostile local
//! client block the browser's request. Other paths (the browser's `/favicon.ico`) get 404 and
//! it keeps waiting; other methods 405; a request whose head exceeds [`MAX_REQUEST_BYTES`] 431;
//! a `Host` other than `127.0.0.1:{port}` (DNS rebinding) 400.

use std::net::{Ipv4Addr, SocketAddr};
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

/// The page the browser shows after the redirect: fixed text, nothing from the request.
const DONE_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Login complete</title></head><body><p>The login is complete. You can close this page \
and return to the app.</p></body></html>";

/// Why no redirect was received. Each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    #[error("could not listen on 127.0.0.1 for the login redirect: {0}; check that loopback networking is available")]
    Bind(std::io::Error),
    #[error("no login redirect arrived within {0:?}; start the login again (CreateAuthorizationRequestEvent) and finish it in the browser")]
    TimedOut(Duration),
    #[error("the loopback listener failed: {0}; start the login again")]
    Accept(std::io::Error),
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

    /// Waits at most `timeout` for the `GET /callback`, answers the browser, and returns the
    /// full redirect URL (`http://127.0.0.1:{port}/callback?code=…&state=…`). Every connection
    /// is served on its own task, so a client that never finishes its request delays nobody.
    /// The listener closes when this returns.
    pub async fn wait_for_redirect(self, timeout: Duration) -> Result<String, LoopbackError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Dropped on return: connections still open are aborted.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Err(LoopbackError::TimedOut(timeout)),
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                        connections.spawn(serve_connection(stream, self.port));
                    }
                    // Too many at once: closing it is the answer.
                    Ok(_) => {}
                    // Per-connection failures (reset before accept) are no reason to stop.
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => return Err(LoopbackError::Accept(e)),
                },
                Some(served) = connections.join_next(), if !connections.is_empty() => {
                    if let Ok(Some(target)) = served {
                        return Ok(format!("http://127.0.0.1:{}{target}", self.port));
                    }
                }
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// Reads one request head and answers it; `Some(request-target)` for the redirect.
async fn serve_connection(mut stream: TcpStream, port: u16) -> Option<String> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::TooLarge)) => {
            respond(&mut stream, "431 Request Header Fields Too Large", "").await;
            drain(&mut stream).await;
            return None;
        }
        // Closed early, unreadable or too slow: nothing to answer.
        Ok(Err(HeadError::Io)) | Err(_) => return None,
    };
    match classify(&head, port) {
        Ok(target) => {
            respond(&mut stream, "200 OK", DONE_PAGE).await;
            Some(target)
        }
        Err(status) => {
            respond(&mut stream, status, "").await;
            None
        }
    }
}

enum HeadError {
    TooLarge,
    Io,
}

/// Reads until the blank line that ends the head, at most [`MAX_REQUEST_BYTES`].
async fn read_head(stream: &mut TcpStream) -> Result<String, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let read = stream.read(&mut chunk).await.map_err(|_| HeadError::Io)?;
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

/// The request-target of a valid redirect, or the status line to refuse the request with.
fn classify(head: &str, port: u16) -> Result<String, &'static str> {
    const BAD_REQUEST: &str = "400 Bad Request";
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
    let expected_host = format!("127.0.0.1:{port}");
    let mut hosts = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim());
    match (hosts.next(), hosts.next()) {
        (Some(host), None) if host == expected_host => {}
        _ => return Err(BAD_REQUEST),
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != CALLBACK_PATH {
        return Err("404 Not Found");
    }
    if method != "GET" {
        return Err("405 Method Not Allowed");
    }
    Ok(target.to_string())
}

/// Reads what the client still sends (for a moment, a bounded amount) before the socket is
/// closed: closing with unread data makes the kernel send a reset, which can destroy the
/// refusal before the client reads it.
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    let mut left = 4 * MAX_REQUEST_BYTES;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(read) => left = left.saturating_sub(read),
            }
        }
    })
    .await;
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
