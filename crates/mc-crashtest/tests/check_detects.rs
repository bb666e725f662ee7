//! The check must be able to fail: each test breaks one guarantee on purpose and expects the
//! driver's check to name it. Without these, a harness that checks nothing would pass too.

use std::path::Path;
use std::process::Command;

use mc_crashtest::check::{check_store, CheckReport};
use mc_crashtest::journal::{self, Cred, Entry, JournalWriter};
use mc_crashtest::model;
use mc_crashtest::store_ops::{sha256_hex, virtual_now, BackendKind, HarnessStore};
use mc_jose::SigningKey;

const WORKER: &str = env!("CARGO_BIN_EXE_mc-crash-worker");

fn check(dir: &Path, journal: &Path) -> CheckReport {
    let entries = journal::read(journal).unwrap();
    let model = model::replay(&entries);
    check_store(
        dir,
        BackendKind::Redb,
        &model,
        virtual_now(entries.len() as u64 + 1),
    )
}

/// Enrolls `id` the way the worker does: intent, operation, acknowledgement.
fn enroll(store: &HarnessStore, journal: &mut JournalWriter, id: &str, cred: Cred) {
    let key = SigningKey::generate().unwrap();
    let key_hash = sha256_hex(key.to_pkcs8().expose());
    journal
        .append(&Entry::Enrolling {
            id: id.into(),
            cred: cred.clone(),
            key_hash: key_hash.clone(),
        })
        .unwrap();
    store
        .enroll(id, &cred, &key, virtual_now(journal.lines()))
        .unwrap();
    journal
        .append(&Entry::Enrolled {
            id: id.into(),
            cred,
            key_hash,
        })
        .unwrap();
}

#[test]
fn worker_store_checks_clean_then_a_lost_user_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let status = Command::new(WORKER)
        .arg("--dir")
        .arg(&dir)
        .arg("--journal")
        .arg(&journal)
        .args(["--seed", "7", "--max-ops", "80"])
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let report = check(&dir, &journal);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.unlocks >= 2, "{report:?}");

    // Remove one acknowledged user behind the journal's back.
    let model = model::replay(&journal::read(&journal).unwrap());
    let (victim, _) = model
        .iter()
        .find(|(_, user)| matches!(user.state, model::UserState::Present(_)))
        .unwrap();
    HarnessStore::open(&dir, BackendKind::Redb)
        .unwrap()
        .delete(victim, 1)
        .unwrap();
    let report = check(&dir, &journal);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains(victim.as_str()) && v.contains("credential was lost")),
        "{:?}",
        report.violations
    );
}

#[test]
fn a_user_the_journal_never_acknowledged_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::password("correct-horse"));
    let key = SigningKey::generate().unwrap();
    store.enroll("ghost", &Cred::no(), &key, 1).unwrap();
    drop(store);
    let report = check(&dir, &journal);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].contains("ghost"));
}

#[test]
fn a_counter_below_the_acknowledged_count_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::password("correct-horse"));
    drop(store);
    // The journal claims 3 acknowledged failures the store never counted.
    writer
        .append(&Entry::FailedAttempts {
            id: "u1".into(),
            count: 3,
        })
        .unwrap();
    let report = check(&dir, &journal);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("counter went down")),
        "{:?}",
        report.violations
    );
}

#[test]
fn a_record_that_no_longer_decrypts_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::no());
    drop(store);
    // Another platform key: the mode-NO wrap no longer opens.
    let key_file = dir.join(mc_store::DEFAULT_KEY_FILE);
    let mut key = std::fs::read(&key_file).unwrap();
    key[0] ^= 0xff;
    std::fs::write(&key_file, key).unwrap();
    let report = check(&dir, &journal);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("u1") && v.contains("does not decrypt")),
        "{:?}",
        report.violations
    );
}

#[test]
fn an_interrupted_switch_may_end_in_either_mode_but_not_elsewhere() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::password("old-password"));
    // Intent written, switch done, acknowledgement "lost" in the kill: new mode is fine.
    writer
        .append(&Entry::Switching {
            id: "u1".into(),
            cred: Cred::biometric(),
        })
        .unwrap();
    store
        .switch(
            "u1",
            &Cred::password("old-password"),
            &Cred::biometric(),
            virtual_now(writer.lines()),
        )
        .unwrap();
    drop(store);
    let report = check(&dir, &journal);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.resolutions.contains(&Entry::ResolvedPresent {
        id: "u1".into(),
        cred: Cred::biometric()
    }));
    // But a mode the journal never mentioned is a violation.
    writer
        .append(&Entry::Switched {
            id: "u1".into(),
            cred: Cred::biometric(),
        })
        .unwrap();
    writer
        .append(&Entry::Switching {
            id: "u1".into(),
            cred: Cred::password("new-password"),
        })
        .unwrap();
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    store
        .switch(
            "u1",
            &Cred::biometric(),
            &Cred::no(),
            virtual_now(writer.lines()),
        )
        .unwrap();
    drop(store);
    let report = check(&dir, &journal);
    assert!(
        report.violations.iter().any(|v| v.contains("listed as NO")),
        "{:?}",
        report.violations
    );
}

#[test]
fn a_refresh_token_other_than_the_acknowledged_or_rotating_one_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::no());
    // An interrupted rotation may end with either token...
    writer
        .append(&Entry::Rotating {
            id: "u1".into(),
            token: "rt-new".into(),
        })
        .unwrap();
    store.rotate("u1", &Cred::no(), "rt-new", 1).unwrap();
    drop(store);
    let report = check(&dir, &journal);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    // ...but a token the journal never named is a violation.
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    store.rotate("u1", &Cred::no(), "rt-stranger", 2).unwrap();
    drop(store);
    let report = check(&dir, &journal);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("refresh token is neither")),
        "{:?}",
        report.violations
    );
}

#[test]
fn an_interrupted_clear_may_leave_the_credential_whole_or_gone_but_a_silent_one_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::no());
    enroll(&store, &mut writer, "u2", Cred::password("pw-0123456789"));
    // A CLEAR_OFFLINE killed before its commit (u1) or after it (u2): both are fine.
    for id in ["u1", "u2"] {
        writer.append(&Entry::Clearing { id: id.into() }).unwrap();
    }
    assert!(store.clear_credential("u2").unwrap());
    drop(store);
    let report = check(&dir, &journal);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.clears_whole_gone, (1, 1));

    // An acknowledged clear whose credential still unlocks, and a credential gone though
    // the journal never asked: each a violation.
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::no());
    enroll(&store, &mut writer, "u2", Cred::no());
    writer.append(&Entry::Clearing { id: "u1".into() }).unwrap();
    writer.append(&Entry::Cleared { id: "u1".into() }).unwrap();
    assert!(store.clear_credential("u2").unwrap());
    drop(store);
    let report = check(&dir, &journal);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.starts_with("user u1: cleared user unlocks as Unlocked")),
        "{:?}",
        report.violations
    );
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.starts_with("user u2: unlocks in none") && v.contains("Cleared")),
        "{:?}",
        report.violations
    );
}

/// Deletes `id` the way the worker does: intent, operation (user out, IDP deletion queued in
/// one commit), acknowledgement.
fn delete(store: &HarnessStore, journal: &mut JournalWriter, id: &str) {
    journal.append(&Entry::Deleting { id: id.into() }).unwrap();
    assert!(store.delete(id, virtual_now(journal.lines())).unwrap());
    journal.append(&Entry::Deleted { id: id.into() }).unwrap();
}

#[test]
fn a_deleted_user_without_its_queued_idp_deletion_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::no());
    enroll(&store, &mut writer, "u2", Cred::no());
    delete(&store, &mut writer, "u1");
    delete(&store, &mut writer, "u2");
    assert!(store.drain("u2").unwrap());
    writer.append(&Entry::Drained { id: "u2".into() }).unwrap();
    drop(store);
    let report = check(&dir, &journal);
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // The record of u1 removed behind the journal's back: as if the delete's commit had
    // removed the user without queueing what the IDP must be told.
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    assert!(store.drain("u1").unwrap());
    drop(store);
    let report = check(&dir, &journal);
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(
        report.violations[0].contains("u1") && report.violations[0].contains("0 queued"),
        "{:?}",
        report.violations
    );
}

#[test]
fn a_queued_idp_deletion_that_does_not_open_is_reported() {
    use mc_store::{KvBackend, RedbBackend, Write};
    let root = tempfile::tempdir().unwrap();
    let (dir, journal) = (root.path().join("store"), root.path().join("journal"));
    let store = HarnessStore::open(&dir, BackendKind::Redb).unwrap();
    let mut writer = JournalWriter::open(&journal).unwrap();
    enroll(&store, &mut writer, "u1", Cred::no());
    delete(&store, &mut writer, "u1");
    drop(store);
    {
        let backend = RedbBackend::open(&dir.join(mc_store::DEFAULT_DB_FILE)).unwrap();
        let table = "pending_idp_deletions";
        let key = backend.keys(table).unwrap().remove(0);
        let mut value = backend.get(table, &key).unwrap().unwrap();
        // A byte of the sealed part (the JSON ends with it): still JSON, no longer authentic.
        let at = value.len() - 10;
        value[at] = if value[at] == b'0' { b'1' } else { b'0' };
        backend.commit(vec![Write::put(table, key, value)]).unwrap();
    }
    let report = check(&dir, &journal);
    assert!(
        report.violations.iter().any(|v| v.contains("do not open")),
        "{:?}",
        report.violations
    );
}
