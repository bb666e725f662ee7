//! Whether a request may run in the current [`SdkState`]. The table itself lives with the
//! catalog (`RequestKind::valid_states` in mc-events, printed in `docs/events.md`); this module
//! turns a refusal into the message an app reads in its `InvalidStateEvent`. The runtime's
//! table test (`tests/state_table.rs`) drives a real runtime through every (state, request) pair.

use mc_events::{RequestKind, SdkState};

/// `Ok` when `kind` may run in `state`; otherwise the message for the `InvalidStateEvent`,
/// saying what to send first.
pub fn check(state: SdkState, kind: RequestKind) -> Result<(), String> {
    if kind.is_valid_in(state) {
        return Ok(());
    }
    let next = match (state, kind) {
        (_, RequestKind::Start) => "the runtime is already started: send RestartEvent instead",
        (SdkState::Uninitialised, _) => "send StartEvent first",
        (SdkState::ActivationRequired, _) => "enroll first (EnrollAnonymousUserEvent)",
        (SdkState::LoginRequired, _) => "log in first (OfflineLoginEvent)",
        (SdkState::LoggedIn, _) => "not valid while logged in",
        (SdkState::Unidentified, _) => {
            "the stored users could not be read: delete the user (DeleteUserEvent) or restart"
        }
    };
    Err(format!(
        "{} is not valid in state {}: {next}",
        kind.name(),
        state_name(state)
    ))
}

/// The JSON name of a state, for messages.
pub fn state_name(state: SdkState) -> &'static str {
    match state {
        SdkState::Uninitialised => "UNINITIALISED",
        SdkState::ActivationRequired => "ACTIVATION_REQUIRED",
        SdkState::LoginRequired => "LOGIN_REQUIRED",
        SdkState::LoggedIn => "LOGGED_IN",
        SdkState::Unidentified => "UNIDENTIFIED",
    }
}
