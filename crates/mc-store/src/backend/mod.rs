//! The backend contract: named tables of byte keys to byte values, and an atomic batch commit.
//!
//! It is deliberately tiny so that another embedded database (sled, behind a feature, issue 3)
//! or a platform store can be added by implementing three methods, and every backend is held to
//! the same behaviour by the shared conformance suite (`conformance.rs`, run on each backend).
//! Backends only ever see ciphertext and non-secret metadata; encryption happens above them.

mod memory;
mod redb_backend;
#[cfg(feature = "sled")]
mod sled_backend;

#[cfg(test)]
#[macro_use] // so that backends outside conformance.rs (sled, below) can run the suite
pub(crate) mod conformance;

pub use memory::MemoryBackend;
pub use redb_backend::RedbBackend;
#[cfg(feature = "sled")]
pub use sled_backend::SledBackend;

#[cfg(all(test, feature = "sled"))]
backend_conformance!(sled_conformance, sled_backend::TempSled::new());

use crate::error::StoreError;

/// One change in a batch given to [`KvBackend::commit`]. Writes apply in order, so a later write
/// to the same key wins.
#[derive(Clone, PartialEq, Eq)]
pub enum Write {
    /// Insert or replace `key` in `table` with `value`.
    Put {
        table: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove `key` from `table`; removing an absent key is not an error.
    Delete { table: String, key: Vec<u8> },
}

impl Write {
    pub fn put(table: &str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Write::Put {
            table: table.to_string(),
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(table: &str, key: impl Into<Vec<u8>>) -> Self {
        Write::Delete {
            table: table.to_string(),
            key: key.into(),
        }
    }

    fn table(&self) -> &str {
        match self {
            Write::Put { table, .. } | Write::Delete { table, .. } => table,
        }
    }
}

// Values may be sealed records; the Debug form shows only their shape.
impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Put { table, key, value } => write!(
                f,
                "Put {{ table: {table:?}, key: {} bytes, value: {} bytes }}",
                key.len(),
                value.len()
            ),
            Write::Delete { table, key } => {
                write!(f, "Delete {{ table: {table:?}, key: {} bytes }}", key.len())
            }
        }
    }
}

/// Storage of named byte-keyed tables.
///
/// Contract (checked by the conformance suite):
/// - a table that was never written reads as empty (no error);
/// - `keys` lists the keys of one table in ascending byte order;
/// - `commit` applies the whole batch in one transaction: either every write is visible
///   afterwards or none is, and the batch is durable when `commit` returns `Ok`;
/// - an empty table name is rejected with [`StoreError::InvalidInput`], and a batch holding one
///   changes nothing.
pub trait KvBackend: Send + Sync {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError>;

    fn commit(&self, batch: Vec<Write>) -> Result<(), StoreError>;
}

fn check_table_name(table: &str) -> Result<(), StoreError> {
    if table.is_empty() {
        return Err(StoreError::InvalidInput {
            reason: "table name is empty",
        });
    }
    Ok(())
}
