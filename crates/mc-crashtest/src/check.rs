//! The driver's check of a store left by a kill, against what the journal acknowledged.
//!
//! It runs on a copy of the store directory: unlocking changes the store (a correct password
//! resets the counter, a wrong one in an ambiguous switch raises it), and the next worker must
//! continue on exactly what the crash left.

use std::collections::BTreeMap;
use std::path::Path;

use mc_store::StoredAuthMode;

use crate::journal::{Cred, Entry};
use crate::model::{Model, Pending, UserModel, UserState};
use crate::store_ops::{settings, BackendKind, HarnessStore, UnlockOutcome};

/// What the check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Broken guarantees, one sentence each (user id, expectation, what happened).
    pub violations: Vec<String>,
    /// Journal lines that tell the next worker how each pending operation ended.
    pub resolutions: Vec<Entry>,
    /// Users found listed and checked.
    pub users_checked: usize,
    /// Successful unlocks (each with a JWT signed and verified).
    pub unlocks: usize,
    /// Operations that were running at the kill, by kind.
    pub interrupted: BTreeMap<&'static str, u64>,
    /// How the switches running at the kill ended: (still the old mode, already the new).
    pub switches_old_new: (u64, u64),
    /// How the CLEAR_OFFLINEs running at the kill ended: (credential whole, gone).
    pub clears_whole_gone: (u64, u64),
    /// How the queue drains running at the kill ended: record still there (`true`) or gone.
    pub drains_kept_gone: BTreeMap<bool, u64>,
}

fn pending_name(pending: &Pending) -> &'static str {
    match pending {
        Pending::Enrolling(_) => "enroll",
        Pending::Switching { .. } => "switch",
        Pending::Deleting => "delete",
        Pending::Failing => "wrong-password",
        Pending::LoggingIn => "login",
        Pending::Rotating(_) => "rotate",
        Pending::Clearing => "clear-credential",
        Pending::Draining => "drain",
    }
}

/// Checks the store in `dir` against `model`, unlocking at `now` (virtual clock).
pub fn check_store(dir: &Path, backend: BackendKind, model: &Model, now: i64) -> CheckReport {
    let mut report = CheckReport::default();
    let store = match HarnessStore::open(dir, backend) {
        Ok(store) => store,
        Err(error) => {
            report
                .violations
                .push(format!("the store does not open after the kill: {error}"));
            return report;
        }
    };
    let mut listed: BTreeMap<String, StoredAuthMode> = match store.list() {
        Ok(users) => users.into_iter().collect(),
        Err(error) => {
            report
                .violations
                .push(format!("listing the users fails: {error}"));
            return report;
        }
    };
    report.users_checked = listed.len();
    let mut queue = match store.queue() {
        Ok(queue) => queue,
        Err(error) => {
            report
                .violations
                .push(format!("the queue of IDP deletions: {error}"));
            BTreeMap::new()
        }
    };
    for (id, user) in model {
        let queued = queue.remove(id);
        check_queue(&mut report, id, user, listed.contains_key(id), queued);
        if let Some(pending) = &user.pending {
            *report.interrupted.entry(pending_name(pending)).or_default() += 1;
        }
        let listed_mode = listed.remove(id);
        let mut check = UserCheck {
            store: &store,
            id,
            user,
            now,
            report: &mut report,
        };
        check.run(listed_mode);
    }
    for id in queue.keys() {
        report.violations.push(format!(
            "an IDP deletion is queued for {id}, a user the worker never deleted"
        ));
    }
    for (id, mode) in listed {
        report.violations.push(format!(
            "user {id} ({}) is listed but was never enrolled by the worker (half-written user?)",
            mode.as_str()
        ));
    }
    report
}

/// A delete removes the user and queues its IDP deletion in ONE commit: never both there,
/// never neither. A drain removes the record; killed during one, either is fine (sending it
/// again is harmless: the IDP answers "already gone").
fn check_queue(
    report: &mut CheckReport,
    id: &str,
    user: &UserModel,
    listed: bool,
    queued: Option<(usize, bool)>,
) {
    let (count, intact) = queued.unwrap_or((0, true));
    if !intact {
        report.violations.push(format!(
            "user {id}: its queued IDP deletion holds something else than the delete queued"
        ));
    }
    let allowed: &[usize] = match (&user.state, &user.pending) {
        (_, Some(Pending::Deleting)) if listed => &[0],
        (_, Some(Pending::Deleting)) => &[1],
        (_, Some(Pending::Draining)) => &[0, 1],
        (UserState::Absent, _) if user.queued => &[1],
        _ => &[0],
    };
    if !allowed.contains(&count) {
        report.violations.push(format!(
            "user {id} ({:?}, pending {:?}, listed: {listed}): {count} queued IDP deletions, \
             expected {allowed:?}",
            user.state, user.pending
        ));
    }
    if user.pending == Some(Pending::Draining) {
        *report.drains_kept_gone.entry(count == 1).or_default() += 1;
        report.resolutions.push(Entry::ResolvedQueue {
            id: id.to_string(),
            queued: count == 1,
        });
    }
}

struct UserCheck<'a> {
    store: &'a HarnessStore,
    id: &'a str,
    user: &'a UserModel,
    now: i64,
    report: &'a mut CheckReport,
}

impl UserCheck<'_> {
    fn violation(&mut self, text: String) {
        self.report
            .violations
            .push(format!("user {}: {text}", self.id));
    }

    fn resolve(&mut self, entry: Entry) {
        self.report.resolutions.push(entry);
    }

    fn run(&mut self, listed: Option<StoredAuthMode>) {
        let id = self.id.to_string();
        let user = self.user;
        match (&user.state, &user.pending, listed) {
            (UserState::Absent, None, None) => {}
            (UserState::Absent, None, Some(_)) => {
                self.violation("deleted (acknowledged) but still listed".to_string())
            }
            (UserState::Absent, Some(Pending::Draining), None) => {}
            (UserState::Absent, Some(Pending::Draining), Some(_)) => {
                self.violation("deleted (acknowledged) but listed again".to_string())
            }
            (UserState::Absent, Some(Pending::Enrolling(cred)), None) => {
                self.expect_not_found(cred);
                self.resolve(Entry::ResolvedAbsent { id });
            }
            (UserState::Absent, Some(Pending::Enrolling(cred)), Some(mode)) => {
                // The enrollment was not acknowledged, but what is there must be whole.
                self.expect_mode(mode, &[cred]);
                self.read_counter();
                if let Some(found) = self.expect_unlock(std::slice::from_ref(cred), false) {
                    self.resolve(Entry::ResolvedPresent { id, cred: found });
                }
            }
            (UserState::Present(_), _, None) if user.pending == Some(Pending::Deleting) => {
                self.resolve(Entry::ResolvedAbsent { id });
            }
            (UserState::Present(cred), _, None) => self.violation(format!(
                "acknowledged enrollment ({}) is gone: the credential was lost",
                cred.mode.as_str()
            )),
            (UserState::Present(cred), Some(Pending::Clearing), Some(mode)) => {
                // Whole (unlocks to the enrolled key and token) or gone (CredentialCleared);
                // secrets gone without the mark, or the reverse, fail as a half state.
                self.expect_mode(mode, &[cred]);
                self.read_counter();
                if self.store.unlock(self.id, cred, self.now) == UnlockOutcome::Cleared {
                    self.report.clears_whole_gone.1 += 1;
                    self.resolve(Entry::ResolvedCleared { id });
                } else if let Some(found) = self.expect_unlock(std::slice::from_ref(cred), false) {
                    self.report.clears_whole_gone.0 += 1;
                    self.resolve(Entry::ResolvedPresent { id, cred: found });
                }
            }
            (UserState::Present(cred), pending, Some(mode)) => {
                let candidates = match pending {
                    Some(Pending::Switching { from, to }) => {
                        // Try first the mode the metadata names; the other one must be
                        // tried too, since metadata and key could disagree.
                        if mode == to.mode {
                            vec![to.clone(), from.clone()]
                        } else {
                            vec![from.clone(), to.clone()]
                        }
                    }
                    _ => vec![cred.clone()],
                };
                let allowed: Vec<&Cred> = candidates.iter().collect();
                self.expect_mode(mode, &allowed);
                let counter = self.read_counter();
                // Blocked is the policy's answer only when the acknowledged failures (plus one
                // attempt running at the kill) reached the limit.
                let running = u32::from(pending == &Some(Pending::Failing));
                let limit = settings().lockout.attempts_before_block;
                let may_be_blocked = user.counter_floor + running >= limit
                    || counter.is_some_and(|(count, _)| count >= limit);
                let found = self.expect_unlock(&candidates, may_be_blocked);
                if let (Some(Pending::Switching { to, .. }), Some(found)) = (pending, &found) {
                    if found == to {
                        self.report.switches_old_new.1 += 1;
                    } else {
                        self.report.switches_old_new.0 += 1;
                    }
                }
                match found {
                    Some(found) => self.resolve(Entry::ResolvedPresent { id, cred: found }),
                    None if may_be_blocked => self.resolve(Entry::ResolvedBlocked { id }),
                    None => {}
                }
            }
            (UserState::Cleared(_), Some(Pending::Deleting), None) => {
                self.resolve(Entry::ResolvedAbsent { id })
            }
            (UserState::Cleared(cred), _, None) => self.violation(format!(
                "cleared ({}) but no longer listed: only a delete removes it",
                cred.mode.as_str()
            )),
            (UserState::Cleared(cred), _, Some(mode)) => {
                self.expect_mode(mode, &[cred]);
                match self.store.unlock(self.id, cred, self.now) {
                    UnlockOutcome::Cleared => {}
                    other => self.violation(format!("cleared user unlocks as {other:?}")),
                }
                self.resolve(Entry::ResolvedCleared { id });
            }
            (UserState::Blocked, _, None) => self.resolve(Entry::ResolvedAbsent { id }),
            (UserState::Blocked, _, Some(_)) => {
                self.read_counter();
                match self.store.unlock(self.id, &Cred::no(), self.now) {
                    UnlockOutcome::Blocked | UnlockOutcome::WrongMethod => {}
                    other => self.violation(format!("blocked user unlocks as {other:?}")),
                }
                self.resolve(Entry::ResolvedBlocked { id });
            }
            (state, pending, _) => self.violation(format!(
                "harness bug: state {state:?} with pending {pending:?} cannot happen"
            )),
        }
    }

    fn expect_mode(&mut self, listed: StoredAuthMode, allowed: &[&Cred]) {
        if !allowed.iter().any(|cred| cred.mode == listed) {
            let allowed: Vec<_> = allowed.iter().map(|cred| cred.mode.as_str()).collect();
            self.violation(format!(
                "listed as {} but the journal allows only {allowed:?}",
                listed.as_str()
            ));
        }
    }

    /// Reads the durable counter and checks it did not go below what was acknowledged or
    /// observed after the previous kill. Records it for the next round.
    fn read_counter(&mut self) -> Option<(u32, bool)> {
        match self.store.lockout(self.id) {
            Ok((count, blocked)) => {
                if count < self.user.counter_floor {
                    self.violation(format!(
                        "failed-attempt counter went down: {count} < {} acknowledged",
                        self.user.counter_floor
                    ));
                }
                self.resolve(Entry::Counter {
                    id: self.id.to_string(),
                    count,
                });
                Some((count, blocked))
            }
            Err(error) => {
                self.violation(format!("lockout state unreadable: {error}"));
                None
            }
        }
    }

    /// Unlocks with the first candidate that works; a violation when none does.
    fn expect_unlock(&mut self, candidates: &[Cred], may_be_blocked: bool) -> Option<Cred> {
        let mut seen = Vec::new();
        for cred in candidates {
            match self.store.unlock(self.id, cred, self.now) {
                UnlockOutcome::Unlocked { key_hash, token } => {
                    if key_hash != self.user.key_hash {
                        self.violation(format!(
                            "unlocks as {} but yields another device key",
                            cred.mode.as_str()
                        ));
                        return None;
                    }
                    self.expect_token(token);
                    self.report.unlocks += 1;
                    return Some(cred.clone());
                }
                UnlockOutcome::Blocked if may_be_blocked => return None,
                UnlockOutcome::Failed(error) => {
                    self.violation(format!(
                        "unlock as {} fails (record does not decrypt?): {error}",
                        cred.mode.as_str()
                    ));
                    return None;
                }
                other => seen.push(format!("{}: {other:?}", cred.mode.as_str())),
            }
        }
        self.violation(format!(
            "unlocks in none of the acknowledged modes: {}",
            seen.join(", ")
        ));
        None
    }

    /// The refresh token must be the acknowledged one or, with a rotation under way at the
    /// kill, its new one: never another, never missing (rotation is one commit).
    fn expect_token(&mut self, token: Option<String>) {
        let acknowledged = &self.user.token;
        let rotating = match &self.user.pending {
            Some(Pending::Rotating(new)) => Some(new),
            _ => None,
        };
        match token {
            Some(token) if &token == acknowledged || Some(&token) == rotating => {
                self.resolve(Entry::ResolvedToken {
                    id: self.id.to_string(),
                    token,
                });
            }
            Some(_) => self.violation(
                "the refresh token is neither the acknowledged one nor the rotation under way"
                    .to_string(),
            ),
            None => self.violation("the refresh token is missing".to_string()),
        }
    }

    fn expect_not_found(&mut self, cred: &Cred) {
        match self.store.unlock(self.id, cred, self.now) {
            UnlockOutcome::NotFound => {}
            other => self.violation(format!(
                "not listed, yet unlock answers {other:?} (orphan record?)"
            )),
        }
    }
}
