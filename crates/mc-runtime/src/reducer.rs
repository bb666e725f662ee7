//! The one reducer: [`apply`] turns what an actor reports ([`Outcome`]) into the next
//! [`RuntimeState`] and the events to push. It is the only place [`SdkState`] changes; it is
//! pure (no actors, no I/O), so each transition has a unit test below.
//!
//! The transitions table (drawn in `docs/architecture.md`):
//!
//! | outcome | from | to | pushed |
//! |---|---|---|---|
//! | `Started` (Start, Restart read the users) | any | ACTIVATION_REQUIRED if no user, else LOGIN_REQUIRED | StartLoginEvent when LOGIN_REQUIRED |
//! | `StartFailed` (the users could not be read) | any | UNIDENTIFIED | — |
//! | `Enrolled`, `LoggedIn` | any | LOGGED_IN | LoginTokenClaimsAvailableEvent |
//! | `LoginFailed` (a user may have been removed) | any | LOGGED_IN if the logged-in user remains, else by the users left | — |
//! | `LoginRefused` (the IDP refused an identified user's refresh token) | any | as `LoginFailed` | IdpLoginRequiredEvent |
//! | `UserDeleted` | any | as `LoginFailed` | — |
//! | `Locked` (wrong passwords locked or blocked a user) | any | by the users left, logged out | WarningEvent `SESSION`, StartLoginEvent, when a session ended |
//! | `CredentialFailed` (the IDP no longer knows the logged-in user) | LOGGED_IN | by the users left | IdpLoginRequiredEvent |
//! | `StepUpRequired` (a resource asked for a stronger login, RFC 9470) | any | unchanged | IdpLoginRequiredEvent with `acrValues`/`maxAge` |
//! | `StateAsked` (GetStateEvent) | any | unchanged | StartLoginEvent when LOGIN_REQUIRED |
//! | `WorkspaceSwitched` (another tenant's user is the active one) | any | LOGIN_REQUIRED, logged out | StartLoginEvent naming the new active user |
//!
//! Which requests may run in which state (the admission check) is [`check`], read from
//! `RequestKind::valid_states` in mc-events.

use std::collections::BTreeMap;

use mc_events::{
    ErrorReport, Event, IdpLoginRequiredEvent, LoginTokenClaimsAvailableEvent, SdkState,
    StartLoginEvent, UserIdentifier,
};

pub use crate::state::check;

/// The enrolled users as the state machine sees them, and who an OfflineLogin without
/// `userIdentifier` means (the login actor decides; see `actors::login`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserList {
    pub users: Vec<UserIdentifier>,
    pub default: Option<UserIdentifier>,
}

impl UserList {
    /// The list without `user`; the default falls to the first one left.
    fn without(&self, user: &UserIdentifier) -> UserList {
        let users: Vec<UserIdentifier> =
            self.users.iter().filter(|u| *u != user).cloned().collect();
        let default = self
            .default
            .clone()
            .filter(|d| d != user)
            .or_else(|| users.first().cloned());
        UserList { users, default }
    }
}

/// What the controller knows between requests: the SDK state and what decides it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeState {
    pub sdk_state: SdkState,
    pub users: UserList,
    /// The user of the session the login actor holds, if any.
    pub logged_in: Option<UserIdentifier>,
}

impl RuntimeState {
    /// The state once the users changed: logged in while the session's user remains.
    fn after_user_change(mut self) -> RuntimeState {
        if let Some(user) = &self.logged_in {
            if !self.users.users.contains(user) {
                self.logged_in = None;
            }
        }
        self.sdk_state = if self.logged_in.is_some() {
            SdkState::LoggedIn
        } else if self.users.users.is_empty() {
            SdkState::ActivationRequired
        } else {
            SdkState::LoginRequired
        };
        self
    }

    /// What the MC-SDK pushes when it waits for a login: the user to log in and the others.
    fn start_login(&self) -> Option<Event> {
        let user = self.users.default.clone()?;
        Some(Event::StartLoginEvent(StartLoginEvent {
            user_identifier: user,
            user_list: self.users.users.clone(),
            // The controller stamps the trace context of the request that caused it.
            trace_context: None,
        }))
    }
}

/// What an actor reports when its work changed what the state depends on.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Start or Restart read the enrolled users (Restart ended the session first).
    Started { users: UserList },
    /// Start or Restart could not read the users.
    StartFailed,
    /// An enrollment finished: its user is logged in.
    Enrolled {
        user: UserIdentifier,
        claims: BTreeMap<String, String>,
        users: UserList,
    },
    /// An offline login finished.
    LoggedIn {
        user: UserIdentifier,
        claims: BTreeMap<String, String>,
        users: UserList,
    },
    /// An offline login failed; `users` is the list after it (a blocked password or a
    /// registration the IDP no longer knows removes the user), `None` when unreadable.
    LoginFailed { users: Option<UserList> },
    /// An identified user's offline login failed because the IDP refused its refresh token:
    /// as `LoginFailed`, and the app is told to open the login page.
    LoginRefused {
        user: UserIdentifier,
        users: Option<UserList>,
    },
    /// A user was deleted; `users` is the list after it.
    UserDeleted { users: UserList },
    /// Wrong passwords (or a biometric lockout) locked or blocked a user: whoever is logged
    /// in is logged out, since someone at the device is guessing. `users` is the list after
    /// it (a blocked user is removed), `None` when unreadable; `code` the lock's error code.
    Locked { users: Option<UserList>, code: u32 },
    /// The IDP proved the registration of `user` gone during an exchange or HTTP call; the
    /// login actor removed it.
    CredentialFailed { user: UserIdentifier },
    /// GetStateEvent: nothing changes, but a waiting login is announced again.
    StateAsked,
    /// SwitchWorkspaceEvent made another tenant's user the active one (`users.default`); the
    /// session of the previous one ended.
    WorkspaceSwitched { users: UserList },
    /// A resource answered 401 `insufficient_user_authentication` (RFC 9470): nothing changes;
    /// the app is told which login the resource wants.
    StepUpRequired {
        user: UserIdentifier,
        acr_values: Option<String>,
        max_age: Option<u64>,
    },
}

/// The transition for `outcome` in `state`: the next state and the events to push (after the
/// result of the request that reported it).
pub fn apply(state: &RuntimeState, outcome: Outcome) -> (RuntimeState, Vec<Event>) {
    let mut pushed = Vec::new();
    let next = match outcome {
        // A switch of workspace is a start with the chosen user first: no session, the
        // StartLoginEvent names who logs in next.
        Outcome::Started { users } | Outcome::WorkspaceSwitched { users } => {
            let next = RuntimeState {
                users,
                logged_in: None,
                ..state.clone()
            }
            .after_user_change();
            pushed.extend(next.start_login());
            next
        }
        Outcome::StartFailed => RuntimeState {
            sdk_state: SdkState::Unidentified,
            logged_in: None,
            ..state.clone()
        },
        Outcome::Enrolled {
            user,
            claims,
            users,
        }
        | Outcome::LoggedIn {
            user,
            claims,
            users,
        } => {
            pushed.push(Event::LoginTokenClaimsAvailableEvent(
                LoginTokenClaimsAvailableEvent {
                    claims,
                    trace_context: None,
                },
            ));
            RuntimeState {
                sdk_state: SdkState::LoggedIn,
                users,
                logged_in: Some(user),
            }
        }
        Outcome::LoginRefused { user, users } => {
            let (next, _) = apply(state, Outcome::LoginFailed { users });
            pushed.push(Event::IdpLoginRequiredEvent(IdpLoginRequiredEvent::new(
                user,
            )));
            next
        }
        Outcome::Locked { users, code } => {
            let next = RuntimeState {
                users: users.unwrap_or_else(|| state.users.clone()),
                logged_in: None,
                ..state.clone()
            }
            .after_user_change();
            if state.logged_in.is_some() {
                pushed.push(Event::WarningEvent(ErrorReport::new(
                    "SESSION",
                    code,
                    "the session ended: a user was locked after wrong passwords; log in again \
                     once the lock is over (or enroll again when the user was removed)",
                )));
                pushed.extend(next.start_login());
            }
            next
        }
        Outcome::LoginFailed { users: None } => state.clone(),
        Outcome::LoginFailed { users: Some(users) } | Outcome::UserDeleted { users } => {
            RuntimeState {
                users,
                ..state.clone()
            }
            .after_user_change()
        }
        Outcome::CredentialFailed { user } => {
            if state.logged_in.as_ref() != Some(&user) {
                // Already handled (another request saw the same answer): nothing new.
                return (state.clone(), pushed);
            }
            pushed.push(Event::IdpLoginRequiredEvent(IdpLoginRequiredEvent::new(
                user.clone(),
            )));
            RuntimeState {
                users: state.users.without(&user),
                logged_in: None,
                ..state.clone()
            }
            .after_user_change()
        }
        Outcome::StepUpRequired {
            user,
            acr_values,
            max_age,
        } => {
            pushed.push(Event::IdpLoginRequiredEvent(IdpLoginRequiredEvent {
                user_identifier: user,
                acr_values,
                max_age,
                trace_context: None,
            }));
            state.clone()
        }
        Outcome::StateAsked => {
            if state.sdk_state == SdkState::LoginRequired {
                pushed.extend(state.start_login());
            }
            state.clone()
        }
    };
    (next, pushed)
}

/// Results that report `sdkState` report the state after their request: set here, once the
/// reducer ran, so an actor never guesses it.
pub fn stamp_state(result: &mut Event, state: SdkState) {
    match result {
        Event::StartResultEvent(r) => r.sdk_state = state,
        Event::RestartResultEvent(r) => r.sdk_state = state,
        Event::DeleteUserResultEvent(r) => r.sdk_state = state,
        Event::GetStateResultEvent(r) => r.sdk_state = state,
        Event::GetInformationResultEvent(r) => r.sdk_state = state,
        Event::SwitchWorkspaceResultEvent(r) => r.sdk_state = state,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserIdentifier {
        UserIdentifier::new("tenant", name)
    }

    fn list(names: &[&str]) -> UserList {
        UserList {
            users: names.iter().map(|n| user(n)).collect(),
            default: names.first().map(|n| user(n)),
        }
    }

    fn in_state(sdk_state: SdkState, names: &[&str], logged_in: Option<&str>) -> RuntimeState {
        RuntimeState {
            sdk_state,
            users: list(names),
            logged_in: logged_in.map(user),
        }
    }

    fn names(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.type_name()).collect()
    }

    #[test]
    fn started_without_users_requires_activation_and_pushes_nothing() {
        let (next, pushed) = apply(
            &RuntimeState::default(),
            Outcome::Started { users: list(&[]) },
        );
        assert_eq!(next.sdk_state, SdkState::ActivationRequired);
        assert!(pushed.is_empty());
    }

    #[test]
    fn started_with_users_requires_login_and_announces_the_default_user() {
        let (next, pushed) = apply(
            &RuntimeState::default(),
            Outcome::Started {
                users: list(&["a", "b"]),
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        let [Event::StartLoginEvent(start)] = pushed.as_slice() else {
            panic!("one StartLoginEvent, got {:?}", names(&pushed));
        };
        assert_eq!(start.user_identifier, user("a"));
        assert_eq!(start.user_list, vec![user("a"), user("b")]);
    }

    #[test]
    fn restart_while_logged_in_ends_the_session() {
        let state = in_state(SdkState::LoggedIn, &["a"], Some("a"));
        let (next, _) = apply(
            &state,
            Outcome::Started {
                users: list(&["a"]),
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert_eq!(next.logged_in, None);
    }

    #[test]
    fn unreadable_users_make_the_state_unidentified() {
        let state = in_state(SdkState::LoggedIn, &["a"], Some("a"));
        let (next, pushed) = apply(&state, Outcome::StartFailed);
        assert_eq!(next.sdk_state, SdkState::Unidentified);
        assert_eq!(next.logged_in, None);
        assert!(pushed.is_empty());
    }

    #[test]
    fn enrolled_and_logged_in_both_log_in_and_push_the_claims() {
        type Make = fn(UserIdentifier, BTreeMap<String, String>, UserList) -> Outcome;
        let makers: [Make; 2] = [
            |user, claims, users| Outcome::Enrolled {
                user,
                claims,
                users,
            },
            |user, claims, users| Outcome::LoggedIn {
                user,
                claims,
                users,
            },
        ];
        for make in makers {
            let claims = BTreeMap::from([("sub".to_string(), "s".to_string())]);
            let state = in_state(SdkState::ActivationRequired, &[], None);
            let (next, pushed) = apply(&state, make(user("a"), claims.clone(), list(&["a"])));
            assert_eq!(next.sdk_state, SdkState::LoggedIn);
            assert_eq!(next.logged_in, Some(user("a")));
            let [Event::LoginTokenClaimsAvailableEvent(event)] = pushed.as_slice() else {
                panic!("one claims event, got {:?}", names(&pushed));
            };
            assert_eq!(event.claims, claims);
        }
    }

    #[test]
    fn a_failed_login_that_removed_the_last_user_requires_activation() {
        let state = in_state(SdkState::LoginRequired, &["a"], None);
        let (next, pushed) = apply(
            &state,
            Outcome::LoginFailed {
                users: Some(list(&[])),
            },
        );
        assert_eq!(next.sdk_state, SdkState::ActivationRequired);
        assert!(pushed.is_empty());
    }

    #[test]
    fn a_failed_login_for_another_user_keeps_the_session() {
        let state = in_state(SdkState::LoggedIn, &["a", "b"], Some("a"));
        let (next, _) = apply(
            &state,
            Outcome::LoginFailed {
                users: Some(list(&["a"])),
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoggedIn);
        assert_eq!(next.logged_in, Some(user("a")));
    }

    #[test]
    fn a_failed_login_with_unreadable_users_changes_nothing() {
        let state = in_state(SdkState::LoginRequired, &["a"], None);
        let (next, _) = apply(&state, Outcome::LoginFailed { users: None });
        assert_eq!(next, state);
    }

    #[test]
    fn a_refused_refresh_token_keeps_the_user_and_asks_for_a_web_login() {
        let state = in_state(SdkState::LoginRequired, &["a"], None);
        let (next, pushed) = apply(
            &state,
            Outcome::LoginRefused {
                user: user("a"),
                users: Some(list(&["a"])),
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert_eq!(next.users, list(&["a"]));
        let [Event::IdpLoginRequiredEvent(event)] = pushed.as_slice() else {
            panic!("one IdpLoginRequiredEvent, got {:?}", names(&pushed));
        };
        assert_eq!(event.user_identifier, user("a"));
    }

    #[test]
    fn deleting_the_logged_in_user_ends_the_session() {
        let state = in_state(SdkState::LoggedIn, &["a", "b"], Some("a"));
        let (next, pushed) = apply(
            &state,
            Outcome::UserDeleted {
                users: list(&["b"]),
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert_eq!(next.logged_in, None);
        assert!(pushed.is_empty());
    }

    #[test]
    fn deleting_another_user_keeps_the_session() {
        let state = in_state(SdkState::LoggedIn, &["a", "b"], Some("a"));
        let (next, _) = apply(
            &state,
            Outcome::UserDeleted {
                users: list(&["a"]),
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoggedIn);
    }

    #[test]
    fn deleting_the_last_user_from_unidentified_requires_activation() {
        let state = in_state(SdkState::Unidentified, &[], None);
        let (next, _) = apply(&state, Outcome::UserDeleted { users: list(&[]) });
        assert_eq!(next.sdk_state, SdkState::ActivationRequired);
    }

    #[test]
    fn a_gone_credential_logs_out_removes_the_user_and_asks_for_login_once() {
        let state = in_state(SdkState::LoggedIn, &["a", "b"], Some("a"));
        let (next, pushed) = apply(&state, Outcome::CredentialFailed { user: user("a") });
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert_eq!(next.users.users, vec![user("b")]);
        assert_eq!(next.users.default, Some(user("b")));
        let [Event::IdpLoginRequiredEvent(event)] = pushed.as_slice() else {
            panic!("one IdpLoginRequiredEvent, got {:?}", names(&pushed));
        };
        assert_eq!(event.user_identifier, user("a"));
        // A second request that saw the same answer changes nothing and pushes nothing.
        let (again, pushed) = apply(&next, Outcome::CredentialFailed { user: user("a") });
        assert_eq!(again, next);
        assert!(pushed.is_empty());
    }

    #[test]
    fn a_gone_credential_of_the_only_user_requires_activation() {
        let state = in_state(SdkState::LoggedIn, &["a"], Some("a"));
        let (next, _) = apply(&state, Outcome::CredentialFailed { user: user("a") });
        assert_eq!(next.sdk_state, SdkState::ActivationRequired);
        assert_eq!(next.users, UserList::default());
    }

    #[test]
    fn a_lock_ends_the_session_and_says_so() {
        let state = in_state(SdkState::LoggedIn, &["a", "b"], Some("a"));
        let code = mc_events::error_code::TEMPORARILY_LOCKED;
        let (next, pushed) = apply(
            &state,
            Outcome::Locked {
                users: Some(list(&["a", "b"])),
                code,
            },
        );
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert_eq!(next.logged_in, None);
        assert_eq!(names(&pushed), vec!["WarningEvent", "StartLoginEvent"]);
        // A blocked (removed) last user: activation, and only the warning.
        let state = in_state(SdkState::LoggedIn, &["a"], Some("a"));
        let (next, pushed) = apply(
            &state,
            Outcome::Locked {
                users: Some(list(&[])),
                code: mc_events::error_code::RETRIES_EXCEEDED,
            },
        );
        assert_eq!(next.sdk_state, SdkState::ActivationRequired);
        assert_eq!(names(&pushed), vec!["WarningEvent"]);
        // Nobody logged in: nothing ended, nothing pushed.
        let state = in_state(SdkState::LoginRequired, &["a"], None);
        let (next, pushed) = apply(&state, Outcome::Locked { users: None, code });
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert!(pushed.is_empty());
    }

    #[test]
    fn asking_the_state_announces_a_waiting_login_only() {
        let waiting = in_state(SdkState::LoginRequired, &["a"], None);
        let (next, pushed) = apply(&waiting, Outcome::StateAsked);
        assert_eq!(next, waiting);
        assert_eq!(names(&pushed), vec!["StartLoginEvent"]);
        let logged_in = in_state(SdkState::LoggedIn, &["a"], Some("a"));
        let (next, pushed) = apply(&logged_in, Outcome::StateAsked);
        assert_eq!(next, logged_in);
        assert!(pushed.is_empty());
    }

    #[test]
    fn a_workspace_switch_logs_out_and_announces_the_new_active_user() {
        let state = in_state(SdkState::LoggedIn, &["a", "b"], Some("a"));
        let users = UserList {
            users: vec![user("a"), user("b")],
            default: Some(user("b")),
        };
        let (next, pushed) = apply(&state, Outcome::WorkspaceSwitched { users });
        assert_eq!(next.sdk_state, SdkState::LoginRequired);
        assert_eq!(next.logged_in, None);
        let [Event::StartLoginEvent(start)] = pushed.as_slice() else {
            panic!("one StartLoginEvent, got {:?}", names(&pushed));
        };
        assert_eq!(start.user_identifier, user("b"));
    }

    #[test]
    fn results_report_the_state_after_their_request() {
        let mut result = Event::failure(
            mc_events::RequestKind::DeleteUser,
            mc_events::ResultInfo::ok(),
        );
        stamp_state(&mut result, SdkState::LoginRequired);
        let Event::DeleteUserResultEvent(result) = result else {
            panic!("a DeleteUserResultEvent");
        };
        assert_eq!(result.sdk_state, SdkState::LoginRequired);
    }
}
