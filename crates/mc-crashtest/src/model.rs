//! What the journal says each user must look like after a kill.

use std::collections::BTreeMap;

use crate::journal::{Cred, Entry};

/// The last acknowledged state of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserState {
    /// Never enrolled, or deleted.
    Absent,
    /// Enrolled; unlocks with this credential.
    Present(Cred),
    /// The lockout policy destroyed its wrapped key.
    Blocked,
    /// CLEAR_OFFLINE destroyed its credential (enrolled with this one); still listed.
    Cleared(Cred),
}

/// The operation that had written its intent but not its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Enrolling(Cred),
    Switching {
        from: Cred,
        to: Cred,
    },
    Deleting,
    /// A wrong-password attempt.
    Failing,
    /// A login with the right credential (which resets the counter).
    LoggingIn,
    /// A refresh-token rotation to this token (its unlock resets the counter too).
    Rotating(String),
    /// CLEAR_OFFLINE: the credential whole or gone, never half.
    Clearing,
    /// The queued IDP deletion of a deleted user being sent and removed: there or gone.
    Draining,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserModel {
    pub state: UserState,
    pub pending: Option<Pending>,
    /// SHA-256 (hex) of the device key's PKCS#8, as enrolled.
    pub key_hash: String,
    /// The least value the durable failed-attempt counter may have now: the last count that was
    /// acknowledged or observed, or 0 after anything that may have reset it.
    pub counter_floor: u32,
    /// The acknowledged refresh token.
    pub token: String,
    /// Deleted, and its IDP deletion queued in the store (written by the delete's commit,
    /// removed by a drain).
    pub queued: bool,
}

/// Users by id, in id order.
pub type Model = BTreeMap<String, UserModel>;

/// Replays the journal. Lines about unknown users (which the harness never writes) are ignored.
pub fn replay(entries: &[Entry]) -> Model {
    let mut model = Model::new();
    for entry in entries {
        apply(&mut model, entry);
    }
    model
}

pub fn apply(model: &mut Model, entry: &Entry) {
    if let Entry::Enrolling { id, cred, key_hash } = entry {
        model.insert(
            id.clone(),
            UserModel {
                state: UserState::Absent,
                pending: Some(Pending::Enrolling(cred.clone())),
                key_hash: key_hash.clone(),
                counter_floor: 0,
                token: crate::journal::initial_token(key_hash),
                queued: false,
            },
        );
        return;
    }
    let id = match entry {
        Entry::Round { .. } | Entry::Enrolling { .. } => return,
        Entry::Enrolled { id, .. }
        | Entry::LoggingIn { id }
        | Entry::LoggedIn { id }
        | Entry::Failing { id }
        | Entry::FailedAttempts { id, .. }
        | Entry::Blocked { id }
        | Entry::Switching { id, .. }
        | Entry::Switched { id, .. }
        | Entry::Deleting { id }
        | Entry::Deleted { id }
        | Entry::ResolvedAbsent { id }
        | Entry::ResolvedPresent { id, .. }
        | Entry::ResolvedBlocked { id }
        | Entry::Counter { id, .. }
        | Entry::Rotating { id, .. }
        | Entry::Rotated { id, .. }
        | Entry::ResolvedToken { id, .. }
        | Entry::Clearing { id }
        | Entry::Cleared { id }
        | Entry::ResolvedCleared { id }
        | Entry::Draining { id }
        | Entry::Drained { id }
        | Entry::ResolvedQueue { id, .. } => id,
    };
    let Some(user) = model.get_mut(id) else {
        return;
    };
    match entry {
        Entry::Enrolled { cred, key_hash, .. } => {
            user.state = UserState::Present(cred.clone());
            user.key_hash = key_hash.clone();
            user.token = crate::journal::initial_token(key_hash);
            user.pending = None;
        }
        Entry::Rotating { token, .. } => {
            user.pending = Some(Pending::Rotating(token.clone()));
            user.counter_floor = 0;
        }
        Entry::Rotated { token, .. } => {
            user.token = token.clone();
            user.pending = None;
        }
        Entry::ResolvedToken { token, .. } => user.token = token.clone(),
        Entry::LoggingIn { .. } => {
            user.pending = Some(Pending::LoggingIn);
            user.counter_floor = 0;
        }
        Entry::LoggedIn { .. } => {
            user.pending = None;
            user.counter_floor = 0;
        }
        Entry::Failing { .. } => user.pending = Some(Pending::Failing),
        Entry::FailedAttempts { count, .. } | Entry::Counter { count, .. } => {
            user.pending = None;
            user.counter_floor = *count;
        }
        Entry::Blocked { .. } | Entry::ResolvedBlocked { .. } => {
            user.state = UserState::Blocked;
            user.pending = None;
        }
        Entry::Switching { cred, .. } => {
            if let UserState::Present(from) = &user.state {
                user.pending = Some(Pending::Switching {
                    from: from.clone(),
                    to: cred.clone(),
                });
            }
            // A switch unlocks with the current credential, which may reset the counter.
            user.counter_floor = 0;
        }
        Entry::Switched { cred, .. } | Entry::ResolvedPresent { cred, .. } => {
            user.state = UserState::Present(cred.clone());
            user.pending = None;
        }
        Entry::Clearing { .. } => user.pending = Some(Pending::Clearing),
        Entry::Cleared { .. } | Entry::ResolvedCleared { .. } => {
            if let UserState::Present(cred) = &user.state {
                user.state = UserState::Cleared(cred.clone());
            }
            user.pending = None;
        }
        Entry::Deleting { .. } => user.pending = Some(Pending::Deleting),
        Entry::Deleted { .. } | Entry::ResolvedAbsent { .. } => {
            // A user that existed leaves its IDP deletion queued by the same commit; an
            // enrollment that never happened leaves nothing.
            user.queued =
                user.state != UserState::Absent || user.pending == Some(Pending::Deleting);
            user.state = UserState::Absent;
            user.pending = None;
            user.counter_floor = 0;
        }
        Entry::Draining { .. } => user.pending = Some(Pending::Draining),
        Entry::Drained { .. } => {
            user.queued = false;
            user.pending = None;
        }
        Entry::ResolvedQueue { queued, .. } => {
            user.queued = *queued;
            user.pending = None;
        }
        Entry::Round { .. } | Entry::Enrolling { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_without_acknowledgement_stay_pending() {
        let id = || "u".to_string();
        let model = replay(&[
            Entry::Enrolling {
                id: id(),
                cred: Cred::no(),
                key_hash: "h".into(),
            },
            Entry::Enrolled {
                id: id(),
                cred: Cred::no(),
                key_hash: "h".into(),
            },
            Entry::Failing { id: id() },
            Entry::FailedAttempts { id: id(), count: 2 },
            Entry::Switching {
                id: id(),
                cred: Cred::password("p"),
            },
        ]);
        let user = &model["u"];
        assert_eq!(user.state, UserState::Present(Cred::no()));
        assert_eq!(
            user.pending,
            Some(Pending::Switching {
                from: Cred::no(),
                to: Cred::password("p")
            })
        );
        assert_eq!(user.counter_floor, 0);

        let model = replay(&[
            Entry::Enrolling {
                id: id(),
                cred: Cred::password("p"),
                key_hash: "h".into(),
            },
            Entry::Enrolled {
                id: id(),
                cred: Cred::password("p"),
                key_hash: "h".into(),
            },
            Entry::FailedAttempts { id: id(), count: 4 },
            Entry::Failing { id: id() },
        ]);
        assert_eq!(model["u"].counter_floor, 4);
        assert_eq!(model["u"].pending, Some(Pending::Failing));
    }
}
