//! event-console: a console for the mc-runtime event model, for people trying the runtime and
//! for scripts and tests driving it.
//!
//! Three modes: an interactive prompt (no arguments) that prints every event pretty and
//! coloured; `demo`, the whole lifecycle once against the in-process development IDP; and
//! `--json`, request events as JSON lines on stdin and every event as a JSON line on stdout.
//!
//! What it must not touch: it is a host of the runtime like any app, using only the public
//! API of mc-runtime, mc-events and mc-devidp. It never prints a token whole in the pretty view
//! (the JSON mode prints events as the runtime emits them), and logs only to stderr.

mod cli;
mod command;
mod demo;
mod environment;
mod interactive;
mod json_mode;
mod login_user;
mod pretty;
mod tracker;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::cli::{Cli, Mode};
use crate::command::Defaults;
use crate::environment::Environment;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.json && cli.mode.is_some() {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--json and `demo` are different modes; give one of them",
            )
            .exit();
    }
    mc_runtime::logging::init_from_env();
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(tokio) => tokio,
        Err(err) => {
            eprintln!("event-console: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match run(&cli, &tokio) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("event-console: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen mode; `Ok(false)` when it ran but did not succeed.
fn run(cli: &Cli, tokio: &tokio::runtime::Runtime) -> anyhow::Result<bool> {
    let env = tokio.block_on(Environment::open(&cli.common))?;
    let defaults = Defaults {
        tenant: cli.common.tenant.clone(),
        client_id: cli.common.client_id.clone(),
        audience: cli.common.audience.clone(),
        server_url: env.server_url.clone(),
    };
    let outcome = match (&cli.mode, cli.json) {
        (Some(Mode::Demo), _) => Ok(tokio.block_on(demo::run(&env, &defaults))),
        (None, true) => Ok(tokio.block_on(json_mode::run(&env))),
        (None, false) => interactive::run(&env, &defaults, tokio).map(|()| true),
    };
    tokio.block_on(env.close());
    outcome
}
