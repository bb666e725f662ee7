//! mc-store: the bytes read back from the key-value backend. Two layers per input:
//! - every value (and key) goes through `mc_store::fuzzing::decode_stored_bytes`: the record
//!   decoders of each table, the user-key decoder and the decrypted-payload layouts, with
//!   their round-trip properties;
//! - the whole dump is loaded into a `MemoryBackend` and opened as a `UserStore` (schema
//!   check, schema 1 migration), then every public read runs on it: a damaged store gives
//!   errors, never a panic, and a user reported readable stays consistent.
//!
//! Input (see `dump` in fuzz/README.md): byte 0 picks the store key (bit 0: the schema 1 or
//! the schema 2 fixture key of crates/mc-store/tests/fixtures, so the fixture dumps in the
//! seeds decrypt), then entries `[table][key len u8][key][value len u16 LE][value]`; a length
//! past the end takes what is left.

use std::sync::Arc;

use mc_store::{
    KvBackend, MemoryBackend, SecretBytes, StaticKeyProvider, StoreError, Unlock, UserStore, Write,
};

const TABLES: [&str; 5] = [
    "meta",
    "users",
    "user_secrets",
    "user_management",
    "user_lockout",
];
const V1_KEY: &[u8; 32] =
    include_bytes!("../../crates/mc-store/tests/fixtures/schema-v1/store.key");
const V2_KEY: &[u8; 32] =
    include_bytes!("../../crates/mc-store/tests/fixtures/schema-v2/store.key");

/// The `(table, key, value)` entries of a dump.
fn entries(mut rest: &[u8]) -> Vec<(&'static str, &[u8], &[u8])> {
    fn take<'a>(rest: &mut &'a [u8], len: usize) -> &'a [u8] {
        let (taken, left) = rest.split_at(len.min(rest.len()));
        *rest = left;
        taken
    }
    let mut entries = Vec::new();
    while let [table, key_len, tail @ ..] = rest {
        rest = tail;
        let table = TABLES[usize::from(*table) % TABLES.len()];
        let key = take(&mut rest, usize::from(*key_len));
        let value_len = match take(&mut rest, 2) {
            [lo, hi] => usize::from(u16::from_le_bytes([*lo, *hi])),
            _ => 0,
        };
        let value = take(&mut rest, value_len);
        entries.push((table, key, value));
    }
    entries
}

/// One input: must not panic, and must hold what the doc above says.
pub fn check(data: &[u8]) {
    let [selector, dump @ ..] = data else {
        return;
    };
    let entries = entries(dump);
    let backend = Arc::new(MemoryBackend::new());
    let mut batch = Vec::new();
    for (table, key, value) in &entries {
        mc_store::fuzzing::decode_stored_bytes(key);
        mc_store::fuzzing::decode_stored_bytes(value);
        batch.push(Write::put(table, key.to_vec(), value.to_vec()));
    }
    backend
        .commit(batch)
        .expect("the memory backend takes any batch");

    let key = if selector & 1 == 0 { V2_KEY } else { V1_KEY };
    let keys = Arc::new(StaticKeyProvider::new(SecretBytes::new(key.to_vec())).expect("32 bytes"));
    let store = match UserStore::open(backend.clone(), keys) {
        Ok(store) => store,
        Err(
            StoreError::Corrupt { .. } | StoreError::NewerSchema { .. } | StoreError::Backend(_),
        ) => return,
        Err(other) => panic!("unexpected error opening a damaged store: {other:?}"),
    };

    let Ok(users) = store.list_users() else {
        return;
    };
    let _ = store.last_user();
    for summary in &users {
        let id = &summary.id;
        let _ = store.lockout_state(id);
        let _ = store.management_secrets(id);
        if let Ok(Some(user)) = store.get_user(id) {
            // What the store hands out is what its listing said.
            assert_eq!(&user.id, id);
            assert_eq!(user.issuer, summary.issuer);
            assert_eq!(user.server_url, summary.server_url);
        }
        // A biometric unlock without a provider configured: an error, never a panic.
        let _ = store.unlock_user(id, Unlock::Biometric { prompt: "fuzz" }, 0);
        let _ = store.record_login(id, 1_700_000_000);
    }
    // Deleting works on any damaged user and leaves no trace of it.
    if let Some(first) = users.first() {
        if store.delete_user(&first.id).is_ok() {
            assert!(matches!(store.get_user(&first.id), Ok(None)));
            assert!(store
                .list_users()
                .map(|left| left.iter().all(|u| u.id != first.id))
                .unwrap_or(true));
        }
    }
}
