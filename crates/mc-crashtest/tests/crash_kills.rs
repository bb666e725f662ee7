//! The driver: starts `mc-crash-worker` on a real store, kills it with SIGKILL after a random
//! 2-200 ms, checks the store against the journal, and repeats.
//!
//! - `cargo test -p mc-crashtest`: 200 kills on redb (and on sled with `--features sled`).
//! - `MC_CRASH_KILLS=5000 cargo test -p mc-crashtest`: as many kills as asked.
//! - `cargo test -p mc-crashtest -- --ignored`: the long run (5000 kills per backend).
//! - `MC_CRASH_SEED=N`: replays the operation sequence and kill delays of a failed run (the
//!   exact instant a kill lands still depends on the machine's timing).
//!
//! A failure prints the seed, the round, the violations and keeps the store directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mc_crashtest::check::check_store;
use mc_crashtest::journal::{self, Entry, JournalWriter};
use mc_crashtest::model;
use mc_crashtest::rng::{derive, Rng};
use mc_crashtest::store_ops::{virtual_now, BackendKind};

const WORKER: &str = env!("CARGO_BIN_EXE_mc-crash-worker");
const NORMAL_KILLS: u64 = 200;
const LONG_KILLS: u64 = 5000;

#[derive(Debug, Default)]
struct Summary {
    kills: u64,
    acknowledged_ops: u64,
    users_checked: u64,
    unlocks: u64,
    interrupted: BTreeMap<&'static str, u64>,
    switches_old_new: (u64, u64),
    acknowledged_by_kind: BTreeMap<&'static str, u64>,
    exited_early: u64,
}

fn kills_from_env(default: u64) -> u64 {
    std::env::var("MC_CRASH_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn seed_from_env() -> u64 {
    std::env::var("MC_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or(0);
            // Fold in the pid so that two backends started in the same nanosecond differ.
            derive(nanos as u64, u64::from(std::process::id()))
        })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn acknowledgement_kind(entry: &Entry) -> Option<&'static str> {
    Some(match entry {
        Entry::Enrolled { .. } => "enrolled",
        Entry::LoggedIn { .. } => "logged-in",
        Entry::FailedAttempts { .. } => "wrong-password",
        Entry::Blocked { .. } => "blocked",
        Entry::Switched { .. } => "switched",
        Entry::Deleted { .. } => "deleted",
        Entry::Rotated { .. } => "rotated",
        Entry::Cleared { .. } => "cleared",
        Entry::Drained { .. } => "drained",
        _ => return None,
    })
}

fn run_harness(backend: BackendKind, kills: u64) -> Summary {
    let seed = seed_from_env();
    let started = Instant::now();
    eprintln!(
        "crash harness on {}: {kills} kills, MC_CRASH_SEED={seed}",
        backend.as_str()
    );
    let root = tempfile::Builder::new()
        .prefix(&format!("mc-crash-{}-", backend.as_str()))
        .tempdir()
        .unwrap();
    let store_dir = root.path().join("store");
    let journal_path = root.path().join("journal");
    let mut rng = Rng::new(seed);
    let mut summary = Summary::default();
    for round in 0..kills {
        let round_seed = derive(seed, round);
        let delay = Duration::from_millis(rng.between(2, 200));
        JournalWriter::open(&journal_path)
            .unwrap()
            .append(&Entry::Round {
                round,
                seed: round_seed,
            })
            .unwrap();
        let mut child = Command::new(WORKER)
            .arg("--dir")
            .arg(&store_dir)
            .arg("--journal")
            .arg(&journal_path)
            .arg("--seed")
            .arg(round_seed.to_string())
            .arg("--backend")
            .arg(backend.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let early = child.try_wait().unwrap();
        // Child::kill sends SIGKILL on Unix: no destructor, no flush, no atexit runs.
        child.kill().unwrap_or_default();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap_or_default();
        }
        let fail = |what: String| -> ! {
            let kept = keep(&root);
            panic!(
                "crash harness on {} FAILED at round {round} of {kills} (MC_CRASH_SEED={seed}, \
                 round seed {round_seed}, kill after {delay:?}):\n{what}\nworker stderr: \
                 {stderr}\nstore and journal kept in {}",
                backend.as_str(),
                kept.display()
            )
        };
        if early.is_some() {
            summary.exited_early += 1;
            fail(format!("the worker exited by itself with {status}"));
        }
        journal::truncate_torn_tail(&journal_path).unwrap();
        let entries = journal::read(&journal_path).unwrap();
        let model = model::replay(&entries);
        // Check a copy: unlocking changes the store, and the next worker must continue on
        // exactly what the kill left.
        let check_dir = root.path().join("check");
        if check_dir.exists() {
            std::fs::remove_dir_all(&check_dir).unwrap();
        }
        if store_dir.exists() {
            copy_dir(&store_dir, &check_dir);
        }
        let report = check_store(
            &check_dir,
            backend,
            &model,
            virtual_now(entries.len() as u64 + 1),
        );
        if !report.violations.is_empty() {
            fail(report.violations.join("\n"));
        }
        let mut writer = JournalWriter::open(&journal_path).unwrap();
        for entry in &report.resolutions {
            writer.append(entry).unwrap();
        }
        summary.kills += 1;
        summary.users_checked += report.users_checked as u64;
        summary.unlocks += report.unlocks as u64;
        for (kind, count) in report.interrupted {
            *summary.interrupted.entry(kind).or_default() += count;
        }
        summary.switches_old_new.0 += report.switches_old_new.0;
        summary.switches_old_new.1 += report.switches_old_new.1;
    }
    let entries = journal::read(&journal_path).unwrap();
    for kind in entries.iter().filter_map(acknowledgement_kind) {
        *summary.acknowledged_by_kind.entry(kind).or_default() += 1;
        summary.acknowledged_ops += 1;
    }
    eprintln!(
        "crash harness on {}: {} kills in {:.1} s, {} acknowledged operations {:?}, {} user \
         checks, {} unlocks verified, kills during an operation: {:?}, interrupted switches \
         found in the old mode: {}, in the new: {}",
        backend.as_str(),
        summary.kills,
        started.elapsed().as_secs_f64(),
        summary.acknowledged_ops,
        summary.acknowledged_by_kind,
        summary.users_checked,
        summary.unlocks,
        summary.interrupted,
        summary.switches_old_new.0,
        summary.switches_old_new.1
    );
    summary
}

fn keep(root: &tempfile::TempDir) -> PathBuf {
    let kept = std::env::temp_dir().join(format!(
        "mc-crash-failed-{}",
        root.path()
            .file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    copy_dir(root.path(), &kept);
    kept
}

fn assert_meaningful(summary: &Summary, kills: u64) {
    assert_eq!(summary.kills, kills);
    assert_eq!(summary.exited_early, 0);
    // The harness must have exercised the store, not killed it before it did anything.
    assert!(
        summary.acknowledged_ops >= kills,
        "only {} acknowledged operations in {kills} rounds",
        summary.acknowledged_ops
    );
    assert!(summary.unlocks > 0);
}

#[test]
fn redb_store_survives_sigkill_at_random_moments() {
    let kills = kills_from_env(NORMAL_KILLS);
    let summary = run_harness(BackendKind::Redb, kills);
    assert_meaningful(&summary, kills);
}

#[test]
#[ignore = "long run: thousands of kills (or set MC_CRASH_KILLS)"]
fn redb_store_survives_thousands_of_kills() {
    let kills = kills_from_env(LONG_KILLS);
    let summary = run_harness(BackendKind::Redb, kills);
    assert_meaningful(&summary, kills);
}

#[cfg(feature = "sled")]
#[test]
fn sled_store_survives_sigkill_at_random_moments() {
    let kills = kills_from_env(NORMAL_KILLS);
    let summary = run_harness(BackendKind::Sled, kills);
    assert_meaningful(&summary, kills);
}

#[cfg(feature = "sled")]
#[test]
#[ignore = "long run: thousands of kills (or set MC_CRASH_KILLS)"]
fn sled_store_survives_thousands_of_kills() {
    let kills = kills_from_env(LONG_KILLS);
    let summary = run_harness(BackendKind::Sled, kills);
    assert_meaningful(&summary, kills);
}
