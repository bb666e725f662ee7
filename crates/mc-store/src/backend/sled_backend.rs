//! The optional sled backend (cargo feature `sled`): one sled database directory, each table a
//! sled tree, each batch one multi-tree sled transaction followed by a flush.
//!
//! Never the default: sled 0.34 calls itself beta and its on-disk format is not stable across
//! versions; see docs/decisions/0005-sled-optional-backend.md for what the crash harness found.

use std::collections::HashMap;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Db, Transactional, Tree};

use super::{check_table_name, KvBackend, Write};
use crate::error::StoreError;

/// Tree names carry this prefix so that no table can collide with sled's own default tree.
const TREE_PREFIX: &str = "mc.table.";

/// Tables in a sled database directory. Only one `SledBackend` (one process) can hold a
/// directory at a time.
pub struct SledBackend {
    db: Db,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledBackend")
    }
}

impl SledBackend {
    /// Opens the sled database in the directory `path`, creating it (0700 on Unix) when absent:
    /// its metadata (server, issuer, subject) is not encrypted.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(path)?;
        let open = || sled::Config::new().path(path).open();
        let db = match open() {
            Ok(db) => db,
            // See `discard_unfinished_snapshots`: retried once, only after a corruption error.
            Err(sled::Error::Corruption { .. }) if discard_unfinished_snapshots(path)? > 0 => {
                open().map_err(open_error)?
            }
            Err(error) => return Err(open_error(error)),
        };
        Ok(Self { db })
    }

    /// The tree of `table`, or `None` when it was never written (reads must not create it).
    fn existing_tree(&self, table: &str) -> Result<Option<Tree>, StoreError> {
        let name = tree_name(table);
        let exists = self
            .db
            .tree_names()
            .iter()
            .any(|existing| existing.as_ref() == name.as_bytes());
        if !exists {
            return Ok(None);
        }
        self.db.open_tree(name).map(Some).map_err(backend_error)
    }
}

/// Works around a sled 0.34.7 recovery bug found by our crash harness (upstream
/// spacejam/sled#1527, #1533): sled writes a snapshot to `snap.<lsn>.generating`, fsyncs it and
/// renames it to `snap.<lsn>`, but on open it reads the greatest `snap.*` name, `.generating`
/// included. A kill during that write leaves a torn `.generating` file, and every later open
/// fails with `Corruption`, losing every user. Such a file is by construction unfinished (a
/// finished one was renamed) and holds nothing the log lacks, so it is removed and the open
/// retried. Called only after sled failed with `Corruption`, which it reports after taking its
/// file lock: no other process holds the database. Returns how many files were removed.
fn discard_unfinished_snapshots(path: &Path) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
            tracing::warn!(file = %name, "removed an unfinished sled snapshot left by a crash");
            removed += 1;
        }
    }
    if removed > 0 {
        #[cfg(unix)]
        std::fs::File::open(path)?.sync_all()?;
    }
    Ok(removed)
}

fn tree_name(table: &str) -> String {
    format!("{TREE_PREFIX}{table}")
}

fn backend_error(error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(io) => StoreError::Io(io),
        sled::Error::Corruption { .. } => StoreError::Backend(
            "the sled database is damaged; restore it from a backup or recreate the store"
                .to_string(),
        ),
        other => StoreError::Backend(format!("sled: {other}")),
    }
}

fn open_error(error: sled::Error) -> StoreError {
    // sled reports its file lock as a plain I/O error; name the cause the way redb's does.
    if let sled::Error::Io(io) = &error {
        if io.to_string().contains("could not acquire lock") {
            return StoreError::Backend(
                "the sled database is already open by another process or handle; close it first"
                    .to_string(),
            );
        }
    }
    backend_error(error)
}

impl KvBackend for SledBackend {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_table_name(table)?;
        let Some(tree) = self.existing_tree(table)? else {
            return Ok(None);
        };
        Ok(tree.get(key).map_err(backend_error)?.map(|v| v.to_vec()))
    }

    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        check_table_name(table)?;
        let Some(tree) = self.existing_tree(table)? else {
            return Ok(Vec::new());
        };
        // sled iterates in ascending lexicographic byte order, as the contract asks.
        tree.iter()
            .keys()
            .map(|key| key.map(|key| key.to_vec()).map_err(backend_error))
            .collect()
    }

    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        for write in &batch {
            check_table_name(write.table())?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        // One tree per distinct table, in first-use order; `slot` maps a table to its view.
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut trees: Vec<Tree> = Vec::new();
        for write in &batch {
            let table = write.table();
            if !slot.contains_key(table) {
                // Creating a tree is not part of the transaction; an empty tree left by a
                // crash here reads as an empty table, which is what it is.
                let tree = self.db.open_tree(tree_name(table)).map_err(backend_error)?;
                slot.insert(table, trees.len());
                trees.push(tree);
            }
        }
        let tree_refs: Vec<&Tree> = trees.iter().collect();
        let result: Result<(), TransactionError<StoreError>> =
            tree_refs.as_slice().transaction(|views| {
                for write in &batch {
                    let view = slot.get(write.table()).and_then(|&index| views.get(index));
                    let Some(view) = view else {
                        return Err(ConflictableTransactionError::Abort(StoreError::Backend(
                            "sled transaction lost a table view".to_string(),
                        )));
                    };
                    match write {
                        Write::Put { key, value, .. } => {
                            view.insert(key.as_slice(), value.as_slice())?;
                        }
                        Write::Delete { key, .. } => {
                            view.remove(key.as_slice())?;
                        }
                    }
                }
                Ok(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(error)) => return Err(error),
            Err(TransactionError::Storage(error)) => return Err(backend_error(error)),
        }
        // A sled transaction is only in the in-memory log until flushed; the contract says a
        // batch is durable when `commit` returns.
        self.db.flush().map_err(backend_error)?;
        Ok(())
    }
}

/// A sled backend in a fresh temporary directory that lives as long as the backend.
#[cfg(test)]
pub(crate) struct TempSled {
    backend: SledBackend,
    _dir: tempfile::TempDir,
}

#[cfg(test)]
impl TempSled {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = SledBackend::open(&dir.path().join("conformance.sled")).unwrap();
        Self { backend, _dir: dir }
    }
}

#[cfg(test)]
impl std::ops::Deref for TempSled {
    type Target = SledBackend;
    fn deref(&self) -> &Self::Target {
        &self.backend
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("durable.sled");
        {
            let backend = SledBackend::open(&path).unwrap();
            backend
                .commit(vec![
                    Write::put("t", *b"k", *b"v"),
                    Write::put("u", *b"k2", *b"v2"),
                ])
                .unwrap();
        }
        let backend = SledBackend::open(&path).unwrap();
        assert_eq!(backend.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(backend.keys("u").unwrap(), vec![b"k2".to_vec()]);
    }

    #[test]
    fn reads_do_not_create_tables() {
        let temp = TempSled::new();
        assert_eq!(temp.get("absent", b"k").unwrap(), None);
        assert!(temp.keys("absent").unwrap().is_empty());
        let name = tree_name("absent");
        assert!(!temp
            .db
            .tree_names()
            .iter()
            .any(|existing| existing.as_ref() == name.as_bytes()));
    }

    #[test]
    fn directory_is_refused_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.sled");
        let _first = SledBackend::open(&path).unwrap();
        let second = SledBackend::open(&path);
        assert!(
            matches!(&second, Err(StoreError::Backend(message)) if message.contains("already open")),
            "{second:?}"
        );
    }

    #[test]
    fn a_torn_unfinished_snapshot_left_by_a_kill_does_not_lose_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torn.sled");
        {
            let backend = SledBackend::open(&path).unwrap();
            backend.commit(vec![Write::put("t", *b"k", *b"v")]).unwrap();
        }
        // What a SIGKILL during snapshot generation leaves (seen by the crash harness): a
        // `.generating` file sorting after every finished snapshot, torn before its checksum.
        std::fs::write(path.join("snap.7FFFFFFFFFFFFFFF.generating"), [1u8; 40]).unwrap();
        let backend = SledBackend::open(&path).unwrap();
        assert_eq!(backend.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(!path.join("snap.7FFFFFFFFFFFFFFF.generating").exists());
    }

    #[test]
    fn a_damaged_finished_snapshot_is_still_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.sled");
        drop(SledBackend::open(&path).unwrap());
        std::fs::write(path.join("snap.7FFFFFFFFFFFFFFF"), [1u8; 40]).unwrap();
        let result = SledBackend::open(&path);
        assert!(
            matches!(&result, Err(StoreError::Backend(message)) if message.contains("damaged")),
            "{result:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn directory_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.sled");
        let _backend = SledBackend::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
