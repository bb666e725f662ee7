//! The journal: the driver's record of what the worker was told succeeded.
//!
//! One line per event, appended and fsynced before the worker goes on. An *intent* line
//! (`ENROLLING`, `SWITCHING`, `DELETING`, `FAILING`, `LOGGING_IN`, `ROTATING`, `CLEARING`) is written before the
//! operation, an *acknowledgement* (`ENROLLED`, `SWITCHED`, ...) after it returned OK. An intent
//! without its acknowledgement marks the operation that was running at the kill. The driver
//! appends `RESOLVED`/`COUNTER` lines after each check, so the next worker starts from exactly
//! the state the crash left. Passwords are harness-made test values, written in clear on purpose.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use mc_store::StoredAuthMode;

/// How a user is protected, with the password when the mode has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub mode: StoredAuthMode,
    pub password: Option<String>,
}

impl Cred {
    pub fn no() -> Self {
        Self {
            mode: StoredAuthMode::No,
            password: None,
        }
    }
    pub fn password(password: impl Into<String>) -> Self {
        Self {
            mode: StoredAuthMode::Password,
            password: Some(password.into()),
        }
    }
    /// Mode PIN (issue 11 point 10): the store takes any non-empty secret; the digits-only
    /// policy is the runtime's.
    pub fn pin(pin: impl Into<String>) -> Self {
        Self {
            mode: StoredAuthMode::Pin,
            password: Some(pin.into()),
        }
    }
    pub fn biometric() -> Self {
        Self {
            mode: StoredAuthMode::Biometric,
            password: None,
        }
    }
}

impl fmt::Display for Cred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.mode.as_str(),
            self.password.as_deref().unwrap_or("-")
        )
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Enrolling {
        id: String,
        cred: Cred,
        key_hash: String,
    },
    Enrolled {
        id: String,
        cred: Cred,
        key_hash: String,
    },
    LoggingIn {
        id: String,
    },
    LoggedIn {
        id: String,
    },
    Failing {
        id: String,
    },
    FailedAttempts {
        id: String,
        count: u32,
    },
    Blocked {
        id: String,
    },
    Switching {
        id: String,
        cred: Cred,
    },
    Switched {
        id: String,
        cred: Cred,
    },
    Deleting {
        id: String,
    },
    Deleted {
        id: String,
    },
    /// Driver: the pending operation of `id` left it absent.
    ResolvedAbsent {
        id: String,
    },
    /// Driver: `id` is present and unlocks with `cred`.
    ResolvedPresent {
        id: String,
        cred: Cred,
    },
    /// Driver: `id` is blocked by the lockout policy.
    ResolvedBlocked {
        id: String,
    },
    /// Driver: the failed-attempt counter of `id` read after the kill.
    Counter {
        id: String,
        count: u32,
    },
    /// Refresh-token rotation of `id` to `token` (harness-made test value) is about to run.
    Rotating {
        id: String,
        token: String,
    },
    Rotated {
        id: String,
        token: String,
    },
    /// ClearIamTokenCache CLEAR_OFFLINE of `id` is about to run.
    Clearing {
        id: String,
    },
    Cleared {
        id: String,
    },
    /// Driver: `id`'s credential was found cleared after the kill.
    ResolvedCleared {
        id: String,
    },
    /// Driver: the refresh token `id` holds after the kill.
    ResolvedToken {
        id: String,
        token: String,
    },
    /// The queued IDP deletion of deleted user `id` is about to be sent and removed (the
    /// IDP's answer is taken as done; the harness has no network).
    Draining {
        id: String,
    },
    Drained {
        id: String,
    },
    /// Driver: after the kill, deleted user `id` has its IDP deletion still queued (`true`)
    /// or not.
    ResolvedQueue {
        id: String,
        queued: bool,
    },
    /// Driver: a round started (informational, for replaying a failure by hand).
    Round {
        round: u64,
        seed: u64,
    },
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Enrolling { id, cred, key_hash } => {
                write!(f, "ENROLLING {id} {cred} {key_hash}")
            }
            Entry::Enrolled { id, cred, key_hash } => write!(f, "ENROLLED {id} {cred} {key_hash}"),
            Entry::LoggingIn { id } => write!(f, "LOGGING_IN {id}"),
            Entry::LoggedIn { id } => write!(f, "LOGGED_IN {id}"),
            Entry::Failing { id } => write!(f, "FAILING {id}"),
            Entry::FailedAttempts { id, count } => write!(f, "FAILED_ATTEMPTS {id} {count}"),
            Entry::Blocked { id } => write!(f, "BLOCKED {id}"),
            Entry::Switching { id, cred } => write!(f, "SWITCHING {id} {cred}"),
            Entry::Switched { id, cred } => write!(f, "SWITCHED {id} {cred}"),
            Entry::Deleting { id } => write!(f, "DELETING {id}"),
            Entry::Deleted { id } => write!(f, "DELETED {id}"),
            Entry::ResolvedAbsent { id } => write!(f, "RESOLVED {id} ABSENT"),
            Entry::ResolvedPresent { id, cred } => write!(f, "RESOLVED {id} PRESENT {cred}"),
            Entry::ResolvedBlocked { id } => write!(f, "RESOLVED {id} BLOCKED"),
            Entry::Counter { id, count } => write!(f, "COUNTER {id} {count}"),
            Entry::Round { round, seed } => write!(f, "ROUND {round} {seed}"),
            Entry::Rotating { id, token } => write!(f, "ROTATING {id} {token}"),
            Entry::Rotated { id, token } => write!(f, "ROTATED {id} {token}"),
            Entry::ResolvedToken { id, token } => write!(f, "RESOLVED {id} TOKEN {token}"),
            Entry::Clearing { id } => write!(f, "CLEARING {id}"),
            Entry::Cleared { id } => write!(f, "CLEARED {id}"),
            Entry::ResolvedCleared { id } => write!(f, "RESOLVED {id} CLEARED"),
            Entry::Draining { id } => write!(f, "DRAINING {id}"),
            Entry::Drained { id } => write!(f, "DRAINED {id}"),
            Entry::ResolvedQueue { id, queued: true } => write!(f, "RESOLVED {id} QUEUED"),
            Entry::ResolvedQueue { id, queued: false } => write!(f, "RESOLVED {id} DRAINED"),
        }
    }
}

/// The refresh token a user is enrolled with: derived from its device key's hash, so the
/// journal's enrollment lines need not carry it.
pub fn initial_token(key_hash: &str) -> String {
    format!("rt0-{}", key_hash.chars().take(16).collect::<String>())
}

fn parse_mode(text: &str) -> Option<StoredAuthMode> {
    match text {
        "NO" => Some(StoredAuthMode::No),
        "PASSWORD" => Some(StoredAuthMode::Password),
        "BIOMETRIC" => Some(StoredAuthMode::Biometric),
        "PIN" => Some(StoredAuthMode::Pin),
        _ => None,
    }
}

fn parse_cred(mode: &str, password: &str) -> Option<Cred> {
    let mode = parse_mode(mode)?;
    let password = (password != "-").then(|| password.to_string());
    // A password (or PIN) exactly when the mode has one.
    (password.is_some() == mode.counts_attempts()).then_some(Cred { mode, password })
}

impl Entry {
    /// Parses one line (without its newline); `None` when it is not a journal line.
    pub fn parse(line: &str) -> Option<Entry> {
        let words: Vec<&str> = line.split(' ').collect();
        let id = || words.get(1).map(|id| id.to_string());
        Some(match words.as_slice() {
            ["ENROLLING", _, mode, pw, hash] => Entry::Enrolling {
                id: id()?,
                cred: parse_cred(mode, pw)?,
                key_hash: hash.to_string(),
            },
            ["ENROLLED", _, mode, pw, hash] => Entry::Enrolled {
                id: id()?,
                cred: parse_cred(mode, pw)?,
                key_hash: hash.to_string(),
            },
            ["LOGGING_IN", _] => Entry::LoggingIn { id: id()? },
            ["LOGGED_IN", _] => Entry::LoggedIn { id: id()? },
            ["FAILING", _] => Entry::Failing { id: id()? },
            ["FAILED_ATTEMPTS", _, n] => Entry::FailedAttempts {
                id: id()?,
                count: n.parse().ok()?,
            },
            ["BLOCKED", _] => Entry::Blocked { id: id()? },
            ["SWITCHING", _, mode, pw] => Entry::Switching {
                id: id()?,
                cred: parse_cred(mode, pw)?,
            },
            ["SWITCHED", _, mode, pw] => Entry::Switched {
                id: id()?,
                cred: parse_cred(mode, pw)?,
            },
            ["DELETING", _] => Entry::Deleting { id: id()? },
            ["DELETED", _] => Entry::Deleted { id: id()? },
            ["RESOLVED", _, "ABSENT"] => Entry::ResolvedAbsent { id: id()? },
            ["RESOLVED", _, "CLEARED"] => Entry::ResolvedCleared { id: id()? },
            ["DRAINING", _] => Entry::Draining { id: id()? },
            ["DRAINED", _] => Entry::Drained { id: id()? },
            ["RESOLVED", _, "QUEUED"] => Entry::ResolvedQueue {
                id: id()?,
                queued: true,
            },
            ["RESOLVED", _, "DRAINED"] => Entry::ResolvedQueue {
                id: id()?,
                queued: false,
            },
            ["CLEARING", _] => Entry::Clearing { id: id()? },
            ["CLEARED", _] => Entry::Cleared { id: id()? },
            ["RESOLVED", _, "TOKEN", token] => Entry::ResolvedToken {
                id: id()?,
                token: token.to_string(),
            },
            ["ROTATING", _, token] => Entry::Rotating {
                id: id()?,
                token: token.to_string(),
            },
            ["ROTATED", _, token] => Entry::Rotated {
                id: id()?,
                token: token.to_string(),
            },
            ["RESOLVED", _, "BLOCKED"] => Entry::ResolvedBlocked { id: id()? },
            ["RESOLVED", _, "PRESENT", mode, pw] => Entry::ResolvedPresent {
                id: id()?,
                cred: parse_cred(mode, pw)?,
            },
            ["COUNTER", _, n] => Entry::Counter {
                id: id()?,
                count: n.parse().ok()?,
            },
            ["ROUND", round, seed] => Entry::Round {
                round: round.parse().ok()?,
                seed: seed.parse().ok()?,
            },
            _ => return None,
        })
    }
}

/// Appends lines, each one durable (fsynced) before `append` returns.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    lines: u64,
}

impl JournalWriter {
    /// Opens `path` for appending (creating it), counting the lines already there.
    pub fn open(path: &Path) -> io::Result<Self> {
        let lines = read(path)?.len() as u64;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file, lines })
    }

    /// Writes `entry` as one line and fsyncs it: once this returns, the line survives a kill.
    pub fn append(&mut self, entry: &Entry) -> io::Result<()> {
        // One write call per line, so a kill leaves at most one torn line, at the end.
        self.file.write_all(format!("{entry}\n").as_bytes())?;
        self.file.sync_data()?;
        self.lines += 1;
        Ok(())
    }

    /// Lines in the journal, including those appended by this writer.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

/// Every complete line of the journal (a torn last line, cut by a kill mid-write, is not an
/// acknowledgement and is skipped). A complete line that does not parse is an error: the
/// harness itself is broken.
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_string(&mut text)?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    }
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            Entry::parse(line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("journal line does not parse: {line:?}"),
                )
            })
        })
        .collect()
}

/// Cuts a torn last line (no newline) left by a kill, so the next writer starts on a line
/// boundary. Returns whether something was cut.
pub fn truncate_torn_tail(path: &Path) -> io::Result<bool> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    let keep = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    if keep == bytes.len() {
        return Ok(false);
    }
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_round_trips() {
        let entries = vec![
            Entry::Enrolling {
                id: "u1".into(),
                cred: Cred::password("pw12345678"),
                key_hash: "ab".into(),
            },
            Entry::Enrolled {
                id: "u1".into(),
                cred: Cred::no(),
                key_hash: "ab".into(),
            },
            Entry::LoggingIn { id: "u1".into() },
            Entry::LoggedIn { id: "u1".into() },
            Entry::Failing { id: "u1".into() },
            Entry::FailedAttempts {
                id: "u1".into(),
                count: 3,
            },
            Entry::Blocked { id: "u1".into() },
            Entry::Switching {
                id: "u1".into(),
                cred: Cred::biometric(),
            },
            Entry::Switched {
                id: "u1".into(),
                cred: Cred::password("x"),
            },
            Entry::Deleting { id: "u1".into() },
            Entry::Deleted { id: "u1".into() },
            Entry::Clearing { id: "u1".into() },
            Entry::Cleared { id: "u1".into() },
            Entry::ResolvedCleared { id: "u1".into() },
            Entry::Draining { id: "u1".into() },
            Entry::Drained { id: "u1".into() },
            Entry::ResolvedQueue {
                id: "u1".into(),
                queued: true,
            },
            Entry::ResolvedQueue {
                id: "u1".into(),
                queued: false,
            },
            Entry::ResolvedAbsent { id: "u1".into() },
            Entry::ResolvedPresent {
                id: "u1".into(),
                cred: Cred::no(),
            },
            Entry::ResolvedBlocked { id: "u1".into() },
            Entry::Counter {
                id: "u1".into(),
                count: 9,
            },
            Entry::Round { round: 7, seed: 99 },
        ];
        for entry in entries {
            assert_eq!(Entry::parse(&entry.to_string()), Some(entry.clone()));
        }
        assert_eq!(Entry::parse("SWITCHED u1 PASSWORD -"), None);
        assert_eq!(Entry::parse("SWITCHED u1 NO pw"), None);
        assert_eq!(Entry::parse("DELETED"), None);
    }

    #[test]
    fn torn_tail_is_ignored_then_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let mut writer = JournalWriter::open(&path).unwrap();
        writer.append(&Entry::Deleted { id: "a".into() }).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"DELETED b")
            .unwrap();
        assert_eq!(
            read(&path).unwrap(),
            vec![Entry::Deleted { id: "a".into() }]
        );
        assert!(truncate_torn_tail(&path).unwrap());
        assert!(!truncate_torn_tail(&path).unwrap());
        let writer = JournalWriter::open(&path).unwrap();
        assert_eq!(writer.lines(), 1);
        std::fs::write(&path, "NONSENSE\n").unwrap();
        assert!(read(&path).is_err());
    }
}
