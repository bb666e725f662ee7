//! `event-console --json`: request events as JSON lines on stdin, every event the runtime emits
//! as one JSON line on stdout, nothing else on stdout.
//!
//! Requests are posted one after the other, each once the previous one is answered: a script
//! is a lifecycle (Start, then Enroll, ...), and the runtime refuses a state-changing request
//! while another runs. Results and pushed events are written by the listener, in the order the
//! runtime emitted them. Memory stays flat however long stdin is: the console keeps only the
//! request it is waiting for, never a list of past results.

use std::io::{BufRead as _, Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mc_events::{Event, InvalidRequest, RequestId};
use tokio::sync::mpsc;

use crate::environment::Environment;
use crate::tracker::AnsweredRequests;

/// Longest line read; longer ones are answered with an error (10 MB fields must still reach
/// the runtime, which answers them with INVALID_PARAMETER itself).
const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;
/// How long to wait for the listener to write a result the runtime already returned.
const WRITE_WAIT: Duration = Duration::from_secs(5);

/// One line of stdin, or why it could not be read.
enum Input {
    Line(Vec<u8>),
    TooLong,
    Failed(String),
}

/// Writes whole lines to stdout; remembers when stdout is gone (a closed pipe).
#[derive(Default)]
struct JsonLines {
    broken: AtomicBool,
}

impl JsonLines {
    fn write(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let written = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if written.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs until stdin closes and every request is answered. True when every result was written.
pub async fn run(env: &Environment) -> bool {
    let lines = Arc::new(JsonLines::default());
    let answered = Arc::new(AnsweredRequests::default());
    let listener = {
        let lines = Arc::clone(&lines);
        let answered = Arc::clone(&answered);
        env.runtime.add_event_listener(move |event: &Event| {
            lines.write(&event.to_json());
            if let (true, Some(id)) = (event.is_result(), event.request_id()) {
                answered.record(id);
            }
        })
    };

    let mut inputs = read_stdin_lines();
    let mut ok = true;
    let mut line_number: u64 = 0;
    while let Some(input) = inputs.recv().await {
        line_number += 1;
        let text = match input {
            Input::Line(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    lines.write(
                        &line_error(
                            line_number,
                            "the line is not UTF-8 text; send one JSON request object per line",
                        )
                        .to_json(),
                    );
                    continue;
                }
            },
            Input::TooLong => {
                let message = format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes; send smaller requests"
                );
                lines.write(&line_error(line_number, &message).to_json());
                continue;
            }
            Input::Failed(reason) => {
                tracing::error!(%reason, "reading stdin failed; no further requests are read");
                ok = false;
                break;
            }
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let result = env.runtime.post_json(text, None).await;
        // Nothing is kept per request: each result is confirmed written before the next line.
        ok &= confirm_written(&result, &answered, &lines).await;
    }
    env.runtime.remove_event_listener(listener);
    if lines.broken.load(Ordering::Relaxed) {
        tracing::error!("stdout was closed; some events were not written");
        ok = false;
    }
    ok
}

/// Waits until the listener wrote `result` (it runs on its own thread); if it never does (the
/// runtime stopped, or the listener lost it), writes it from the reply. False in that case.
async fn confirm_written(result: &Event, answered: &AnsweredRequests, lines: &JsonLines) -> bool {
    let Some(id) = result.request_id() else {
        lines.write(&result.to_json());
        return true;
    };
    if answered.wait_for(id, WRITE_WAIT).await {
        return true;
    }
    tracing::warn!(request_id = %id, "a result did not reach the listener; written from the reply");
    lines.write(&result.to_json());
    false
}

/// The INVALID_PARAMETER answer to a line the console itself could not pass on.
fn line_error(line_number: u64, message: &str) -> Event {
    let invalid = InvalidRequest {
        request_id: None,
        trace_context: None,
        kind: None,
        field: None,
        message: message.to_owned(),
    };
    let mut event = Event::invalid_request(&invalid);
    event.set_request(Some(RequestId::new(format!("line-{line_number}"))), None);
    event
}

/// Reads stdin on a thread of its own (blocking reads), one line at a time, without its
/// line ending. The channel closes at end of input.
fn read_stdin_lines() -> mpsc::Receiver<Input> {
    let (sender, receiver) = mpsc::channel(64);
    let spawned = std::thread::Builder::new()
        .name("stdin-lines".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut line = Vec::new();
                let read = (&mut stdin)
                    .take(MAX_LINE_BYTES + 1)
                    .read_until(b'\n', &mut line);
                let input = match read {
                    Ok(0) => return,
                    Ok(_) if line.ends_with(b"\n") => {
                        line.pop();
                        if line.ends_with(b"\r") {
                            line.pop();
                        }
                        Input::Line(line)
                    }
                    Ok(_) if line.len() as u64 > MAX_LINE_BYTES => {
                        if let Err(err) = skip_to_line_end(&mut stdin) {
                            let _ = sender.blocking_send(Input::TooLong);
                            let _ = sender.blocking_send(Input::Failed(err.to_string()));
                            return;
                        }
                        Input::TooLong
                    }
                    // The last line, without a newline.
                    Ok(_) => Input::Line(line),
                    Err(err) => Input::Failed(err.to_string()),
                };
                let failed = matches!(input, Input::Failed(_));
                if sender.blocking_send(input).is_err() || failed {
                    return;
                }
            }
        });
    if let Err(err) = spawned {
        let (sender, receiver) = mpsc::channel(1);
        let _ = sender.try_send(Input::Failed(format!(
            "cannot start the stdin reader: {err}"
        )));
        return receiver;
    }
    receiver
}

fn skip_to_line_end(input: &mut impl std::io::BufRead) -> std::io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(index) => {
                input.consume(index + 1);
                return Ok(());
            }
            None => {
                let len = buffer.len();
                input.consume(len);
            }
        }
    }
}
