//! A backend in memory, for tests and for hosts that want nothing on disk.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{check_table_name, KvBackend, Write};
use crate::error::StoreError;

type Tables = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Tables held in memory; gone when dropped. Commits are atomic because the whole batch is
/// checked first and then applied under one lock.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    tables: Mutex<Tables>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic elsewhere while holding the lock cannot leave a half-applied batch (batches
        // are validated before any change), so the data behind a poisoned lock is consistent.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KvBackend for MemoryBackend {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_table_name(table)?;
        Ok(self
            .lock()
            .get(table)
            .and_then(|rows| rows.get(key))
            .cloned())
    }

    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        check_table_name(table)?;
        Ok(self
            .lock()
            .get(table)
            .map(|rows| rows.keys().cloned().collect())
            .unwrap_or_default())
    }

    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        for write in &batch {
            check_table_name(write.table())?;
        }
        let mut tables = self.lock();
        for write in batch {
            match write {
                Write::Put { table, key, value } => {
                    tables.entry(table).or_default().insert(key, value);
                }
                Write::Delete { table, key } => {
                    if let Some(rows) = tables.get_mut(&table) {
                        rows.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }
}
