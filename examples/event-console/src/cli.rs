//! Command-line flags (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mc_devidp::{DEFAULT_ENROLLMENT_CLIENT, DEFAULT_TENANT, DEMO_AUDIENCE};

/// A console for the mc-runtime event model.
///
/// Without arguments: an interactive prompt (type `help`). `demo`: the whole lifecycle once.
/// `--json`: request events as JSON lines on stdin, every event as a JSON line on stdout.
#[derive(Debug, Parser)]
#[command(name = "event-console", version)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Option<Mode>,

    /// Read one request event per line (JSON) on stdin; write every event the runtime emits as
    /// one JSON line on stdout. Exits when stdin closes and every request is answered.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Run Start, Enroll, Exchange, HTTP, Restart, OfflineLogin, Exchange, Delete once and
    /// print each step; exit code 0 only if every step gave the expected status.
    Demo,
}

/// Flags every mode understands.
#[derive(Clone, Debug, Args)]
pub struct CommonArgs {
    /// Use the IDP at this URL instead of starting the development IDP in-process.
    #[arg(long, value_name = "URL", global = true)]
    pub server_url: Option<String>,

    /// Keep the runtime's store in this directory (created if missing), so state survives
    /// between runs. Default: a fresh temporary directory, removed at exit.
    #[arg(long, value_name = "DIR", global = true)]
    pub store: Option<PathBuf>,

    /// Tenant (IDP realm) that `enroll` and the demo use when none is given.
    #[arg(long, value_name = "TENANT", default_value = DEFAULT_TENANT, global = true)]
    pub tenant: String,

    /// Enrollment client that `enroll` and the demo use when none is given.
    #[arg(long, value_name = "ID", default_value = DEFAULT_ENROLLMENT_CLIENT, global = true)]
    pub client_id: String,

    /// Audience that `exchange`, `http` (for URLs on the server) and the demo use when none is given.
    #[arg(long, value_name = "AUD", default_value = DEMO_AUDIENCE, global = true)]
    pub audience: String,
}
