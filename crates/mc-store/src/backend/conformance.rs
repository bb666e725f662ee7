//! The behaviour every [`KvBackend`] must have. Each check is a plain function over a fresh
//! backend; `backend_conformance!` turns them into one `#[test]` per check for a backend, so a
//! new backend (sled, issue 3) gets the whole suite with one macro line.

use super::{KvBackend, Write};
use crate::error::StoreError;

pub(crate) fn empty_table_reads_as_empty(backend: &dyn KvBackend) {
    assert_eq!(backend.get("never_written", b"k").unwrap(), None);
    assert!(backend.keys("never_written").unwrap().is_empty());
    backend.commit(vec![Write::put("t", *b"k", *b"v")]).unwrap();
    backend.commit(vec![Write::delete("t", *b"k")]).unwrap();
    assert!(backend.keys("t").unwrap().is_empty());
    assert_eq!(backend.get("t", b"k").unwrap(), None);
}

pub(crate) fn put_then_get_and_overwrite(backend: &dyn KvBackend) {
    backend
        .commit(vec![Write::put("t", *b"k", *b"one")])
        .unwrap();
    assert_eq!(
        backend.get("t", b"k").unwrap().as_deref(),
        Some(&b"one"[..])
    );
    backend
        .commit(vec![Write::put("t", *b"k", *b"two!")])
        .unwrap();
    assert_eq!(
        backend.get("t", b"k").unwrap().as_deref(),
        Some(&b"two!"[..])
    );
    assert_eq!(backend.keys("t").unwrap(), vec![b"k".to_vec()]);
    // empty keys and values are ordinary values
    backend
        .commit(vec![Write::put("t", Vec::new(), Vec::new())])
        .unwrap();
    assert_eq!(backend.get("t", b"").unwrap(), Some(Vec::new()));
}

pub(crate) fn delete_removes_only_that_key(backend: &dyn KvBackend) {
    backend
        .commit(vec![
            Write::put("t", *b"a", *b"1"),
            Write::put("t", *b"b", *b"2"),
        ])
        .unwrap();
    backend.commit(vec![Write::delete("t", *b"a")]).unwrap();
    assert_eq!(backend.get("t", b"a").unwrap(), None);
    assert_eq!(backend.get("t", b"b").unwrap().as_deref(), Some(&b"2"[..]));
    // deleting an absent key, or in an absent table, is not an error
    backend.commit(vec![Write::delete("t", *b"a")]).unwrap();
    backend
        .commit(vec![Write::delete("absent", *b"a")])
        .unwrap();
}

pub(crate) fn keys_are_sorted_and_tables_separate(backend: &dyn KvBackend) {
    backend
        .commit(vec![
            Write::put("t", *b"c", *b"3"),
            Write::put("t", *b"a", *b"1"),
            Write::put("t", vec![0xff, 0], *b"x"),
            Write::put("t", *b"b", *b"2"),
            Write::put("other", *b"a", *b"other"),
        ])
        .unwrap();
    assert_eq!(
        backend.keys("t").unwrap(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), vec![0xff, 0]]
    );
    assert_eq!(backend.keys("other").unwrap(), vec![b"a".to_vec()]);
    assert_eq!(backend.get("t", b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        backend.get("other", b"a").unwrap().as_deref(),
        Some(&b"other"[..])
    );
}

pub(crate) fn batch_applies_across_tables_in_order(backend: &dyn KvBackend) {
    backend
        .commit(vec![Write::put("t1", *b"old", *b"x")])
        .unwrap();
    backend
        .commit(vec![
            Write::put("t1", *b"k", *b"first"),
            Write::put("t2", *b"k", *b"second"),
            Write::delete("t1", *b"old"),
            Write::put("t1", *b"k", *b"last wins"),
            Write::put("t2", *b"gone", *b"x"),
            Write::delete("t2", *b"gone"),
        ])
        .unwrap();
    assert_eq!(
        backend.get("t1", b"k").unwrap().as_deref(),
        Some(&b"last wins"[..])
    );
    assert_eq!(
        backend.get("t2", b"k").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(backend.get("t1", b"old").unwrap(), None);
    assert_eq!(backend.get("t2", b"gone").unwrap(), None);
    backend.commit(Vec::new()).unwrap();
}

pub(crate) fn failed_batch_changes_nothing(backend: &dyn KvBackend) {
    backend
        .commit(vec![Write::put("t", *b"keep", *b"before")])
        .unwrap();
    let result = backend.commit(vec![
        Write::put("t", *b"keep", *b"after"),
        Write::put("t", *b"new", *b"x"),
        Write::delete("t", *b"keep"),
        Write::put("", *b"bad", *b"empty table name"),
    ]);
    assert!(
        matches!(result, Err(StoreError::InvalidInput { .. })),
        "{result:?}"
    );
    assert_eq!(
        backend.get("t", b"keep").unwrap().as_deref(),
        Some(&b"before"[..])
    );
    assert_eq!(backend.get("t", b"new").unwrap(), None);
    assert!(matches!(
        backend.get("", b"k"),
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        backend.keys(""),
        Err(StoreError::InvalidInput { .. })
    ));
}

pub(crate) fn concurrent_batches_are_not_torn(backend: &dyn KvBackend) {
    // Each batch writes the same value under two tables; a reader must never see them differ.
    std::thread::scope(|scope| {
        for writer in 0..4u8 {
            scope.spawn(move || {
                for round in 0..25u8 {
                    let value = vec![writer, round];
                    backend
                        .commit(vec![
                            Write::put("left", *b"k", value.clone()),
                            Write::put("right", *b"k", value),
                        ])
                        .unwrap();
                }
            });
        }
    });
    let left = backend.get("left", b"k").unwrap();
    assert!(left.is_some());
    assert_eq!(left, backend.get("right", b"k").unwrap());
}

/// Generates one test per conformance check for the backend built by `$make`
/// (an expression evaluated once per test, returning something that derefs to a `KvBackend`).
macro_rules! backend_conformance {
    ($module:ident, $make:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::backend::conformance as c;

            #[test]
            fn empty_table_reads_as_empty() {
                let backend = $make;
                c::empty_table_reads_as_empty(&*backend);
            }
            #[test]
            fn put_then_get_and_overwrite() {
                let backend = $make;
                c::put_then_get_and_overwrite(&*backend);
            }
            #[test]
            fn delete_removes_only_that_key() {
                let backend = $make;
                c::delete_removes_only_that_key(&*backend);
            }
            #[test]
            fn keys_are_sorted_and_tables_separate() {
                let backend = $make;
                c::keys_are_sorted_and_tables_separate(&*backend);
            }
            #[test]
            fn batch_applies_across_tables_in_order() {
                let backend = $make;
                c::batch_applies_across_tables_in_order(&*backend);
            }
            #[test]
            fn failed_batch_changes_nothing() {
                let backend = $make;
                c::failed_batch_changes_nothing(&*backend);
            }
            #[test]
            fn concurrent_batches_are_not_torn() {
                let backend = $make;
                c::concurrent_batches_are_not_torn(&*backend);
            }
        }
    };
}

/// A redb backend in a fresh temporary directory that lives as long as the backend.
pub(crate) struct TempRedb {
    backend: super::RedbBackend,
    _dir: tempfile::TempDir,
}

impl TempRedb {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = super::RedbBackend::open(&dir.path().join("conformance.redb")).unwrap();
        Self { backend, _dir: dir }
    }
}

impl std::ops::Deref for TempRedb {
    type Target = super::RedbBackend;
    fn deref(&self) -> &Self::Target {
        &self.backend
    }
}

backend_conformance!(memory, Box::new(crate::backend::MemoryBackend::new()));
backend_conformance!(redb, crate::backend::conformance::TempRedb::new());

#[test]
fn redb_commit_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.redb");
    {
        let backend = super::RedbBackend::open(&path).unwrap();
        backend
            .commit(vec![
                Write::put("t", *b"k", *b"v"),
                Write::put("u", *b"k2", *b"v2"),
            ])
            .unwrap();
    }
    let backend = super::RedbBackend::open(&path).unwrap();
    assert_eq!(backend.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(backend.keys("u").unwrap(), vec![b"k2".to_vec()]);
}

#[test]
fn redb_file_is_refused_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.redb");
    let _first = super::RedbBackend::open(&path).unwrap();
    let second = super::RedbBackend::open(&path);
    assert!(matches!(second, Err(StoreError::Backend(_))), "{second:?}");
}

#[cfg(unix)]
#[test]
fn redb_file_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.redb");
    let _backend = super::RedbBackend::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
