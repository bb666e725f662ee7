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
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private_file_if_absent(path)?;
        let db = guarded("open", || Ok(Database::create(path)?))?;
        Ok(Self { db })
    }

    /// Wraps a database the caller opened with its own redb settings.
    pub fn from_database(db: Database) -> Self {
        Self { db }
    }
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
