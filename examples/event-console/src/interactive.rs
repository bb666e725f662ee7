//! The interactive prompt: a person types commands, every event is printed pretty.

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mc_events::Event;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use crate::command::{self, Command, Defaults, COMMAND_NAMES, HELP, MODE_NAMES};
use crate::environment::Environment;
use crate::login_user;
use crate::pretty::{self, Painter, Tone};
use crate::tracker::AnsweredRequests;

/// How long the prompt waits for the listener to print a result before showing itself again.
const PRINT_WAIT: Duration = Duration::from_secs(2);

/// Where the listener prints: above the prompt while one is shown (rustyline's external
/// printer, on a terminal), else plain stdout.
enum Output {
    Printer(Mutex<Box<dyn ExternalPrinter + Send>>),
    Stdout,
}

impl Output {
    fn print(&self, text: String) {
        match self {
            Output::Printer(printer) => {
                let mut printer = printer.lock().unwrap_or_else(PoisonError::into_inner);
                if printer.print(format!("{text}\n")).is_err() {
                    write_stdout(&text);
                }
            }
            Output::Stdout => write_stdout(&text),
        }
    }
}

/// A closed stdout is ignored rather than a panic (as `println!` would).
fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Completes command names in the first word, a command's options, and the modes after `--mode`.
struct ConsoleHelper;

impl Completer for ConsoleHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before
            .rfind(char::is_whitespace)
            .map_or(0, |index| index + 1);
        let word = before.get(start..).unwrap_or_default();
        let mut earlier = before.get(..start).unwrap_or_default().split_whitespace();
        let command = earlier.next();
        let previous = earlier.last();
        let candidates: &[&str] = match (command, previous) {
            (None, _) => COMMAND_NAMES,
            (Some(_), Some("--mode")) => MODE_NAMES,
            (Some(command), _) if word.starts_with('-') => command::options_of(command),
            _ => &[],
        };
        let matches = candidates
            .iter()
            .filter(|candidate| candidate.starts_with(word))
            // The trailing space lets the next word follow right away.
            .map(|candidate| Pair {
                display: (*candidate).to_owned(),
                replacement: format!("{candidate} "),
            })
            .collect();
        Ok((start, matches))
    }
}

impl Hinter for ConsoleHelper {
    type Hint = String;
}

impl Highlighter for ConsoleHelper {}

impl Validator for ConsoleHelper {}

impl Helper for ConsoleHelper {}

/// Runs the prompt until `quit` or end of input. Returns normally; errors of single commands
/// are printed and the prompt goes on.
pub fn run(
    env: &Environment,
    defaults: &Defaults,
    tokio: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let painter = Painter::for_stdout();
    let mut editor: Editor<ConsoleHelper, DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(ConsoleHelper));
    let output = Arc::new(match editor.create_external_printer() {
        Ok(printer) => Output::Printer(Mutex::new(Box::new(printer))),
        Err(_) => Output::Stdout,
    });
    let answered = Arc::new(AnsweredRequests::default());
    let listener = {
        let output = Arc::clone(&output);
        let answered = Arc::clone(&answered);
        env.runtime.add_event_listener(move |event: &Event| {
            output.print(pretty::render(event, painter));
            if let (true, Some(id)) = (event.is_result(), event.request_id()) {
                answered.record(id);
            }
        })
    };

    output.print(format!(
        "event-console {} — {}\ntype `help` for the commands, `start` to begin",
        env!("CARGO_PKG_VERSION"),
        env.describe()
    ));
    loop {
        let line = match editor.readline("mc> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => {
                output.print(painter.paint(&format!("cannot read input: {err}"), Tone::Error));
                break;
            }
        };
        // Passwords typed on the line stay out of the history.
        if !line.trim().is_empty() && !line.contains("--password") {
            let _ = editor.add_history_entry(line.as_str());
        }
        let posted = match command::parse(&line, defaults) {
            Ok(Command::Nothing) => continue,
            Ok(Command::Help) => {
                output.print(HELP.to_owned());
                continue;
            }
            Ok(Command::Quit) => break,
            Ok(Command::Post(request)) => {
                tokio.block_on(wait_or_interrupt(env.runtime.post_event(*request)))
            }
            Ok(Command::PostJson(json)) => {
                tokio.block_on(wait_or_interrupt(env.runtime.post_json(&json, None)))
            }
            Ok(Command::LoginUser { tenant, client }) => {
                let steps = steps(env, &answered, &output);
                let login = login_user::login_user(&steps, &tenant, &client);
                if tokio.block_on(wait_or_interrupt(login)).is_none() {
                    output.print("login abandoned; run login-user again".to_owned());
                }
                continue;
            }
            Ok(Command::Logout) => {
                let steps = steps(env, &answered, &output);
                if tokio
                    .block_on(wait_or_interrupt(login_user::logout(&steps)))
                    .is_none()
                {
                    output.print(
                        "not waiting any more; the results are printed when they arrive".to_owned(),
                    );
                }
                continue;
            }
            Err(usage) => {
                output.print(painter.paint(&usage, Tone::Error));
                continue;
            }
        };
        match posted {
            Some(result) => {
                // The listener prints the result; wait for it so it comes before the prompt.
                if let Some(id) = result.request_id() {
                    tokio.block_on(answered.wait_for(id, PRINT_WAIT));
                }
            }
            None => output
                .print("not waiting any more; the result is printed when it arrives".to_owned()),
        }
    }
    env.runtime.remove_event_listener(listener);
    Ok(())
}

/// The steps of `login-user` and `logout`: post, then wait until the listener printed.
fn steps<'a>(
    env: &'a Environment,
    answered: &'a AnsweredRequests,
    output: &'a Arc<Output>,
) -> login_user::Steps<'a> {
    login_user::Steps {
        runtime: &env.runtime,
        answered,
        print_wait: PRINT_WAIT,
        say: Box::new(move |text| output.print(text)),
    }
}

/// The result, or `None` when the person pressed Ctrl-C while waiting.
async fn wait_or_interrupt<T>(result: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        event = result => Some(event),
        _ = tokio::signal::ctrl_c() => None,
    }
}
