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

    /// Let ORIGIN (`https://api.example.com`, `https://*.example.com`, plain http only to
    /// loopback) receive the IAM token of AUDIENCE; repeatable. Without any, no token is sent
    /// anywhere, except that with the in-process development IDP the demo audience may go to
    /// the IDP's own origin (its /demo/echo resource).
    #[arg(long, value_name = "AUDIENCE=ORIGIN", value_parser = parse_audience_origin, global = true)]
    pub audience_origin: Vec<(String, String)>,

    /// DEMO STAND-IN, NOT A PROTECTION: a software key in place of the platform's biometric
    /// key (Android Keystore, Secure Enclave), so mode BIOMETRIC can be tried. There is no
    /// sensor: each prompt takes the next of OUTCOMES (comma-separated: ok, cancel, lockout,
    /// invalidated), then `ok` once they are used up.
    #[arg(
        long,
        value_name = "OUTCOMES",
        num_args = 0..=1,
        default_missing_value = "ok",
        value_parser = parse_biometric_script,
        global = true
    )]
    pub software_biometric: Option<BiometricScript>,
}

/// The outcomes of `--software-biometric`, in prompt order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BiometricScript(pub Vec<BiometricOutcome>);

/// What the software biometric's next prompt does (`--software-biometric`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BiometricOutcome {
    /// The user is recognised.
    Ok,
    /// The user dismisses the prompt: USER_CANCEL.
    Cancel,
    /// Too many tries at the sensor: TEMPORARY_LOCKED (platform code 7, Android's lockout).
    Lockout,
    /// The key is invalidated, as by a new fingerprint: BIOMETRIC_KEY_INVALIDATED.
    Invalidated,
}

/// `ok,cancel,lockout,invalidated` in any order and number (at most 64).
fn parse_biometric_script(text: &str) -> Result<BiometricScript, String> {
    let outcomes: Vec<BiometricOutcome> = text
        .split(',')
        .map(|word| match word.trim() {
            "ok" => Ok(BiometricOutcome::Ok),
            "cancel" => Ok(BiometricOutcome::Cancel),
            "lockout" => Ok(BiometricOutcome::Lockout),
            "invalidated" => Ok(BiometricOutcome::Invalidated),
            _ => Err(
                "give outcomes among ok, cancel, lockout, invalidated, comma-separated".to_string(),
            ),
        })
        .collect::<Result<_, _>>()?;
    if outcomes.len() > 64 {
        return Err("at most 64 outcomes".into());
    }
    Ok(BiometricScript(outcomes))
}

/// `AUDIENCE=ORIGIN`, split at the first `=`.
fn parse_audience_origin(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((audience, origin)) if !audience.is_empty() && !origin.is_empty() => {
            Ok((audience.to_string(), origin.to_string()))
        }
        _ => Err("give AUDIENCE=ORIGIN, e.g. demo-api=https://api.example.com".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_origins_are_repeatable_pairs() {
        let cli = Cli::try_parse_from([
            "event-console",
            "--audience-origin",
            "demo-api=https://a.example.com",
            "--audience-origin",
            "other=http://127.0.0.1:9",
        ])
        .unwrap();
        assert_eq!(
            cli.common.audience_origin,
            vec![
                ("demo-api".to_string(), "https://a.example.com".to_string()),
                ("other".to_string(), "http://127.0.0.1:9".to_string())
            ]
        );
        for bad in ["demo-api", "=https://a", "demo-api="] {
            assert!(
                Cli::try_parse_from(["event-console", "--audience-origin", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
