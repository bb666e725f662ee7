//! The default backend: one redb file. redb gives ACID transactions with crash-safe commits
//! (see docs/decisions/0002-redb-default-store.md).
//!
//! A damaged file must never panic the host. redb reports damage as `StorageError::Corrupted`,
//! but in builds with debug assertions it first fails a `debug_assert!` (a panic), and a bug in
//! a dependency may panic on bytes it never expected. So every call into redb runs under
//! `catch_unwind` ([`guarded`]), and a panic becomes the same typed error a release build
//! returns: [`StoreError::Backend`] saying the file is damaged. (A host built with
//! `panic = "abort"` gets no such backstop in debug builds; release builds do not panic.)

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::{check_table_name, KvBackend, Write};
use crate::error::StoreError;

type BytesTable<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

/// Tables in a redb database file. Only one `RedbBackend` (one process) can hold a file at a time.
pub struct RedbBackend {
    db: Database,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbBackend")
    }
}

impl RedbBackend {
    /// Opens the database at `path`, creating it when absent. A new file is created with 0600
    /// permissions on Unix: its metadata (server, issuer, subject) is not encrypted.
    ///
    /// A new database is made whole under a temporary name and renamed into place: a crash
    /// while redb writes the first header would otherwise leave a file that never opens again
    /// (the crash harness found one killed 2 ms into a first start).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            create_database_atomically(path)?;
        }
        let db = guarded("open", || Ok(Database::create(path)?))?;
        Ok(Self { db })
    }

    /// Wraps a database the caller opened with its own redb settings.
    pub fn from_database(db: Database) -> Self {
        Self { db }
    }
}

/// Creates a new, empty database at `path` that is complete when it appears: written and
/// synced under `<name>.creating` (a leftover from a crash is replaced), then renamed, and the
/// directory synced so the rename survives a power cut.
fn create_database_atomically(path: &Path) -> Result<(), StoreError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating");
    let temporary = path.with_file_name(name);
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    create_private_file_if_absent(&temporary)?;
    guarded("create", || {
        drop(Database::create(&temporary)?);
        Ok(())
    })?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

// redb would create the file with the process umask; creating it empty first fixes the mode,
// and redb initialises an empty file as a new database.
fn create_private_file_if_absent(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => {
            file.sync_all()?;
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error.into()),
    }
}

impl KvBackend for RedbBackend {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_table_name(table)?;
        guarded("read", || self.get_unguarded(table, key))
    }

    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        check_table_name(table)?;
        guarded("key listing", || self.keys_unguarded(table))
    }

    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        // Checked before the transaction starts (TableDefinition::new panics on an empty name).
        for write in &batch {
            check_table_name(write.table())?;
        }
        guarded("commit", || self.commit_unguarded(&batch))
    }
}

/// Runs one call into redb; a panic inside it becomes a typed error (see the module doc).
fn guarded<T>(
    operation: &'static str,
    call: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
        tracing::error!(operation, "redb panicked: the database file is damaged");
        Err(StoreError::Backend(format!(
            "the database file is damaged ({operation} failed inside redb); restore the store \
             directory from a backup, or delete it and enroll again"
        )))
    })
}

impl RedbBackend {
    fn get_unguarded(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let rows = match txn.open_table(BytesTable::new(table)) {
            Ok(rows) => rows,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        Ok(rows.get(key)?.map(|value| value.value().to_vec()))
    }

    fn keys_unguarded(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let rows = match txn.open_table(BytesTable::new(table)) {
            Ok(rows) => rows,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let mut keys = Vec::new();
        for entry in rows.iter()? {
            let (key, _) = entry?;
            keys.push(key.value().to_vec());
        }
        Ok(keys)
    }

    fn commit_unguarded(&self, batch: &[Write]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        // Immediate is redb's default; stated here because the contract depends on it.
        txn.set_durability(Durability::Immediate)?;
        // Any error below drops `txn`, which aborts it: nothing of the batch is applied.
        for write in batch {
            match write {
                Write::Put { table, key, value } => {
                    let mut rows = txn.open_table(BytesTable::new(table))?;
                    rows.insert(key.as_slice(), value.as_slice())?;
                }
                Write::Delete { table, key } => {
                    let mut rows = txn.open_table(BytesTable::new(table))?;
                    rows.remove(key.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_appears_whole_and_a_leftover_half_creation_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.redb");
        // What a crash during an earlier first start leaves: a temporary file of garbage.
        std::fs::write(dir.path().join("users.redb.creating"), [0xAB; 4096]).unwrap();

        let backend = RedbBackend::open(&path).unwrap();
        backend
            .commit(vec![Write::Put {
                table: "users".into(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            }])
            .unwrap();
        drop(backend);

        assert!(!dir.path().join("users.redb.creating").exists());
        let reopened = RedbBackend::open(&path).unwrap();
        assert_eq!(reopened.get("users", b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn an_existing_file_with_a_damaged_header_is_an_error_not_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.redb");
        std::fs::write(&path, [0u8; 8192]).unwrap();
        // Never silently replaced: it may hold users whose keys are elsewhere.
        assert!(RedbBackend::open(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), vec![0u8; 8192]);
    }
}
