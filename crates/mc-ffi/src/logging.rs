//! Log forwarding: the runtime's tracing output, formatted one line per event, handed to a
//! host-implemented [`LogSink`] (Logcat, os_log, Python `logging`).
//!
//! Secrets never reach the sink: the runtime keeps tokens, keys and passwords in `mc_secret`
//! types whose `Debug`/`Display` print `[redacted]`, and no span or event carries one.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::callbacks::HostError;
use crate::ControllerError;

/// Severity of a forwarded log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<&Level> for LogLevel {
    fn from(level: &Level) -> Self {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Receives the runtime's log lines. Called on whichever runtime thread logged; keep it quick
/// and never call back into the runtime from it.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// `target` is the Rust module (e.g. `mc_runtime::controller`); `message` is the formatted
    /// line with its span context (`request{request_id=.. kind=..}: ...`), without a timestamp.
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), HostError>;
}

type FilterHandle = reload::Handle<EnvFilter, Registry>;

struct Forwarding {
    sink: Arc<RwLock<Option<Arc<dyn LogSink>>>>,
    filter: FilterHandle,
}

static FORWARDING: OnceLock<Result<Forwarding, String>> = OnceLock::new();
/// Serialises `set_log_sink` calls (install, then swap sink and filter together).
static SETTING: Mutex<()> = Mutex::new(());

/// Forwards the runtime's logs to `sink`, filtered by `filter` (`RUST_LOG` syntax, e.g.
/// `"info"` or `"warn,mc_runtime=debug"`). Call again to replace the sink or the filter.
/// Fails when the filter cannot be read, or when the process already installed another global
/// tracing subscriber (then the host's own subscriber keeps receiving the logs).
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, filter: String) -> Result<(), ControllerError> {
    let filter =
        EnvFilter::try_new(&filter).map_err(|error| ControllerError::InvalidConfiguration {
            message: format!("log filter `{filter}` cannot be read: {error}"),
        })?;
    let _serial = SETTING.lock().unwrap_or_else(PoisonError::into_inner);
    let installed = FORWARDING.get_or_init(install);
    let forwarding = installed
        .as_ref()
        .map_err(|reason| ControllerError::LoggingUnavailable {
            message: reason.clone(),
        })?;
    forwarding
        .filter
        .reload(filter)
        .map_err(|error| ControllerError::LoggingUnavailable {
            message: error.to_string(),
        })?;
    *forwarding
        .sink
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(sink);
    Ok(())
}

/// Stops forwarding (the subscriber stays installed and drops every line).
#[uniffi::export]
pub fn clear_log_sink() {
    if let Some(Ok(forwarding)) = FORWARDING.get() {
        *forwarding
            .sink
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

fn install() -> Result<Forwarding, String> {
    let sink: Arc<RwLock<Option<Arc<dyn LogSink>>>> = Arc::new(RwLock::new(None));
    let (filter, handle) = reload::Layer::new(EnvFilter::new("off"));
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_writer(SinkWriters {
            sink: Arc::clone(&sink),
        });
    tracing_subscriber::registry()
        .with(filter)
        .with(format.boxed())
        .try_init()
        .map_err(|error| {
            format!("another tracing subscriber is installed in this process: {error}")
        })?;
    Ok(Forwarding {
        sink,
        filter: handle,
    })
}

/// Makes one writer per log event; the writer hands its line to the sink when dropped.
struct SinkWriters {
    sink: Arc<RwLock<Option<Arc<dyn LogSink>>>>,
}

impl<'a> MakeWriter<'a> for SinkWriters {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            sink: self.current(),
            level: LogLevel::Info,
            target: String::new(),
            line: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            sink: self.current(),
            level: meta.level().into(),
            target: meta.target().to_string(),
            line: Vec::new(),
        }
    }
}

impl SinkWriters {
    fn current(&self) -> Option<Arc<dyn LogSink>> {
        self.sink
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct LineWriter {
    sink: Option<Arc<dyn LogSink>>,
    level: LogLevel,
    target: String,
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.sink.is_some() {
            self.line.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let Some(sink) = self.sink.take() else {
            return;
        };
        let text = String::from_utf8_lossy(&self.line);
        let message = text.trim_end().to_string();
        if message.is_empty() {
            return;
        }
        // A sink that throws cannot be told so through the log it failed to write.
        let _ = sink.log(self.level, std::mem::take(&mut self.target), message);
    }
}
