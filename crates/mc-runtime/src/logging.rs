//! Logging for hosts: `RUST_LOG`-style filtering through tracing-subscriber. Every request
//! runs in a span named `request` carrying `request_id`, `traceparent` and `kind`. No secret is
//! ever a field or part of a message: tokens, keys and passwords are `mc_secret` types whose
//! `Debug` and `Display` print `[redacted]`.

use tracing_subscriber::EnvFilter;

/// Installs a global subscriber writing to stderr, filtered by `RUST_LOG` (default: `warn`).
/// Returns false when the host already installed one.
pub fn init_from_env() -> bool {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok()
}
