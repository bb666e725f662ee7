//! The crash worker: loops on a real store until killed (or `--max-ops` operations), writing
//! an fsynced journal line before each operation (intent) and after each OK (acknowledgement).
//!
//! Usage: mc-crash-worker --dir DIR --journal FILE --seed N [--backend redb|sled] [--max-ops N]
//! Exit codes: 0 done, 2 bad usage, 3 the store behaved wrongly (the reason on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use mc_crashtest::journal::{self, Cred, Entry, JournalWriter};
use mc_crashtest::model::{self, Model, UserState};
use mc_crashtest::rng::Rng;
use mc_crashtest::store_ops::{
    settings, sha256_hex, virtual_now, BackendKind, HarnessStore, UnlockOutcome,
};
use mc_jose::SigningKey;
use mc_store::StoredAuthMode;

struct Args {
    dir: PathBuf,
    journal: PathBuf,
    seed: u64,
    backend: BackendKind,
    max_ops: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut dir = None;
    let mut journal = None;
    let mut seed = None;
    let mut backend = BackendKind::Redb;
    let mut max_ops = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--journal" => journal = Some(PathBuf::from(value()?)),
            "--seed" => seed = Some(value()?.parse().map_err(|_| "--seed: not a number")?),
            "--backend" => {
                let text = value()?;
                backend = BackendKind::parse(&text).ok_or(format!("unknown backend {text}"))?;
            }
            "--max-ops" => max_ops = Some(value()?.parse().map_err(|_| "--max-ops: not a number")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        dir: dir.ok_or("--dir is required")?,
        journal: journal.ok_or("--journal is required")?,
        seed: seed.ok_or("--seed is required")?,
        backend,
        max_ops,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("usage: {error}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("worker (seed {}): {error}", args.seed);
            ExitCode::from(3)
        }
    }
}

/// The worker's state: the store, the journal and the model replayed from it.
struct Worker {
    store: HarnessStore,
    journal: JournalWriter,
    model: Model,
    rng: Rng,
    next_user: u64,
}

fn run(args: &Args) -> Result<(), String> {
    let io = |what: &str| {
        let what = what.to_string();
        move |error: std::io::Error| format!("{what}: {error}")
    };
    journal::truncate_torn_tail(&args.journal).map_err(io("journal"))?;
    let entries = journal::read(&args.journal).map_err(io("journal"))?;
    let next_user = entries
        .iter()
        .filter(|entry| matches!(entry, Entry::Enrolling { .. }))
        .count() as u64;
    let model = model::replay(&entries);
    if let Some((id, _)) = model.iter().find(|(_, user)| user.pending.is_some()) {
        return Err(format!(
            "user {id} has an unresolved operation: the driver must check before a restart"
        ));
    }
    let journal = JournalWriter::open(&args.journal).map_err(io("journal"))?;
    let store = HarnessStore::open(&args.dir, args.backend)
        .map_err(|error| format!("the store does not open: {error}"))?;
    let mut worker = Worker {
        store,
        journal,
        model,
        rng: Rng::new(args.seed),
        next_user,
    };
    let mut done = 0;
    while args.max_ops.is_none_or(|max| done < max) {
        worker.step()?;
        done += 1;
    }
    Ok(())
}

impl Worker {
    fn now(&self) -> i64 {
        virtual_now(self.journal.lines())
    }

    fn record(&mut self, entry: Entry) -> Result<(), String> {
        self.journal
            .append(&entry)
            .map_err(|error| format!("journal write: {error}"))?;
        model::apply(&mut self.model, &entry);
        Ok(())
    }

    /// One operation, chosen at random among those the current users allow.
    fn step(&mut self) -> Result<(), String> {
        let blocked = self
            .model
            .iter()
            .find(|(_, user)| matches!(user.state, UserState::Blocked | UserState::Cleared(_)))
            .map(|(id, _)| id.clone());
        if let Some(id) = blocked {
            // A blocked or cleared user must enroll again: the runtime deletes it.
            return self.delete(&id);
        }
        let queued: Vec<String> = self
            .model
            .iter()
            .filter(|(_, user)| user.queued && user.pending.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        // Drained often enough that the queue never reaches its bound (which would drop one).
        if queued.len() >= 8 || (!queued.is_empty() && self.rng.chance(30)) {
            if let Some(id) = self.rng.pick(&queued).cloned() {
                return self.drain(&id);
            }
        }
        let present: Vec<(String, Cred)> = self
            .model
            .iter()
            .filter_map(|(id, user)| match &user.state {
                UserState::Present(cred) => Some((id.clone(), cred.clone())),
                _ => None,
            })
            .collect();
        if present.len() < 2 || (present.len() < 6 && self.rng.chance(15)) {
            return self.enroll();
        }
        let Some((id, cred)) = self.rng.pick(&present).cloned() else {
            return self.enroll();
        };
        match self.rng.below(100) {
            0..=19 => self.login(&id, &cred),
            20..=34 => self.rotate(&id, &cred),
            35..=59 if cred.mode.counts_attempts() => self.wrong_passwords(&id, cred.mode),
            35..=59 => self.login(&id, &cred),
            60..=84 => self.switch(&id, &cred),
            85..=91 => self.clear_credential(&id),
            _ => self.delete(&id),
        }
    }

    fn random_cred(&mut self) -> Cred {
        match self.rng.below(4) {
            0 => Cred::no(),
            1 => Cred::password(self.rng.password()),
            2 => Cred::pin(self.rng.pin()),
            _ => Cred::biometric(),
        }
    }

    fn enroll(&mut self) -> Result<(), String> {
        self.next_user += 1;
        let id = format!("u{}", self.next_user);
        let cred = self.random_cred();
        let key = SigningKey::generate().map_err(|error| format!("keygen: {error}"))?;
        let key_hash = sha256_hex(key.to_pkcs8().expose());
        self.record(Entry::Enrolling {
            id: id.clone(),
            cred: cred.clone(),
            key_hash: key_hash.clone(),
        })?;
        self.store
            .enroll(&id, &cred, &key, self.now())
            .map_err(|error| format!("enroll {id}: {error}"))?;
        self.record(Entry::Enrolled { id, cred, key_hash })
    }

    fn login(&mut self, id: &str, cred: &Cred) -> Result<(), String> {
        self.record(Entry::LoggingIn { id: id.to_string() })?;
        let expected = self.model.get(id).map(|user| user.key_hash.clone());
        match self.store.unlock(id, cred, self.now()) {
            UnlockOutcome::Unlocked { key_hash, .. } if Some(&key_hash) == expected.as_ref() => {
                self.record(Entry::LoggedIn { id: id.to_string() })
            }
            UnlockOutcome::Unlocked { .. } => Err(format!("login {id}: another device key")),
            other => Err(format!(
                "login {id} as {} answered {other:?}",
                cred.mode.as_str()
            )),
        }
    }

    /// Refresh-token rotation (issue 10): a new token, stored in one commit after the unlock.
    fn rotate(&mut self, id: &str, cred: &Cred) -> Result<(), String> {
        let token = format!("rt-{}", self.rng.password());
        self.record(Entry::Rotating {
            id: id.to_string(),
            token: token.clone(),
        })?;
        self.store
            .rotate(id, cred, &token, self.now())
            .map_err(|e| format!("rotate {id} as {}: {e}", cred.mode.as_str()))?;
        self.record(Entry::Rotated {
            id: id.to_string(),
            token,
        })
    }

    /// A streak of wrong passwords (or PINs, in `mode`): usually 1-4, sometimes enough to
    /// reach the block.
    fn wrong_passwords(&mut self, id: &str, mode: StoredAuthMode) -> Result<(), String> {
        let limit = settings().lockout.attempts_before_block;
        let streak = if self.rng.chance(15) {
            u64::from(limit) + 2
        } else {
            self.rng.between(1, 4)
        };
        for _ in 0..streak {
            let floor = self.model.get(id).map_or(0, |user| user.counter_floor);
            let wrong = match mode {
                // At least 14 digits: never one of the 6-12 digit PINs the driver enrolls.
                StoredAuthMode::Pin => Cred::pin(format!("9{}", self.rng.pin()).repeat(2)),
                _ => Cred::password(format!("wrong{}", self.rng.password())),
            };
            self.record(Entry::Failing { id: id.to_string() })?;
            match self.store.unlock(id, &wrong, self.now()) {
                UnlockOutcome::WrongPassword { failed_attempts } if failed_attempts > floor => {
                    self.record(Entry::FailedAttempts {
                        id: id.to_string(),
                        count: failed_attempts,
                    })?;
                }
                UnlockOutcome::Blocked if floor + 1 >= limit => {
                    return self.record(Entry::Blocked { id: id.to_string() });
                }
                other => {
                    return Err(format!(
                        "wrong password for {id} after {floor} failures answered {other:?}"
                    ))
                }
            }
        }
        Ok(())
    }

    fn switch(&mut self, id: &str, from: &Cred) -> Result<(), String> {
        let floor = self.model.get(id).map_or(0, |user| user.counter_floor);
        if floor > 0 {
            // Reset the counter first, so the driver may try a wrong password of an ambiguous
            // switch without tipping the user into the block.
            self.login(id, from)?;
        }
        let mut to = self.random_cred();
        if from.mode == StoredAuthMode::Biometric && to.mode == StoredAuthMode::Biometric {
            // Refused by the store (it would replace the platform key before the commit).
            to = Cred::password(self.rng.password());
        }
        self.record(Entry::Switching {
            id: id.to_string(),
            cred: to.clone(),
        })?;
        self.store
            .switch(id, from, &to, self.now())
            .map_err(|error| {
                format!(
                    "switch {id} {} -> {} answered {error:?}",
                    from.mode.as_str(),
                    to.mode.as_str()
                )
            })?;
        self.record(Entry::Switched {
            id: id.to_string(),
            cred: to,
        })
    }

    /// ClearIamTokenCache CLEAR_OFFLINE (issue 10): the device key and refresh token
    /// destroyed in one commit, the user kept listed.
    fn clear_credential(&mut self, id: &str) -> Result<(), String> {
        self.record(Entry::Clearing { id: id.to_string() })?;
        match self.store.clear_credential(id) {
            Ok(true) => self.record(Entry::Cleared { id: id.to_string() }),
            Ok(false) => Err(format!("clear {id}: the user was not there")),
            Err(error) => Err(format!("clear {id}: {error}")),
        }
    }

    fn delete(&mut self, id: &str) -> Result<(), String> {
        self.record(Entry::Deleting { id: id.to_string() })?;
        match self.store.delete(id, self.now()) {
            Ok(true) => self.record(Entry::Deleted { id: id.to_string() }),
            Ok(false) => Err(format!("delete {id}: the user was not there")),
            Err(error) => Err(format!("delete {id}: {error}")),
        }
    }

    /// The IDP confirmed the deletion of `id` (queued by its delete): the record goes.
    fn drain(&mut self, id: &str) -> Result<(), String> {
        self.record(Entry::Draining { id: id.to_string() })?;
        match self.store.drain(id) {
            Ok(true) => self.record(Entry::Drained { id: id.to_string() }),
            Ok(false) => Err(format!("drain {id}: its queued IDP deletion is not there")),
            Err(error) => Err(format!("drain {id}: {error}")),
        }
    }
}
