//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never on in a product
//! build): the decoders of the bytes the store reads back from its [`crate::KvBackend`] —
//! the JSON records of every table, the user keys, and the layouts of decrypted payloads
//! (which a fuzzer cannot reach through the store, as it cannot forge AES-GCM).
//!
//! The same functions the store calls, with the same types; nothing is parsed twice. They
//! return which decoders accepted the bytes, and panic only when a round-trip property is
//! broken (a bug the fuzzer is meant to find), never on hostile input.

use super::migrate::{decode_v1_payload, V1SecretsRecord};
use super::records::{
    decode_management_payload, decode_secrets_payload, encode_management_payload,
    encode_secrets_payload, LockoutRecord, ManagementRecord, SecretsRecord, UserRecord,
};
use crate::user::UserId;

/// Which decoders accepted the bytes given to [`decode_stored_bytes`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    pub user_key: bool,
    pub user_record: bool,
    pub secrets_record: bool,
    pub management_record: bool,
    pub lockout_record: bool,
    pub v1_secrets_record: bool,
    pub secrets_payload: bool,
    pub management_payload: bool,
    pub v1_payload: bool,
}

/// Runs every decoder of stored bytes on `bytes`, and checks that what one accepts encodes
/// back to the same value (user keys byte for byte, payloads and lockout records by value).
pub fn decode_stored_bytes(bytes: &[u8]) -> Accepted {
    let mut accepted = Accepted::default();

    if let Some(id) = UserId::from_key(bytes) {
        accepted.user_key = true;
        assert_eq!(id.to_key(), bytes, "a user key must encode back to itself");
    }
    if let Ok(record) = serde_json::from_slice::<UserRecord>(bytes) {
        accepted.user_record = true;
        // The AADs are built from a decoded record on every open: they must not fail.
        let mode = record.authentication_mode;
        assert!(record.data_key_aad(mode).is_ok());
        assert!(record.secrets_aad().is_ok());
        assert!(record.management_aad().is_ok());
        let _ = record.summary();
    }
    if let Ok(record) = serde_json::from_slice::<SecretsRecord>(bytes) {
        accepted.secrets_record = true;
        let _ = record.data_key.mode();
    }
    accepted.management_record = serde_json::from_slice::<ManagementRecord>(bytes).is_ok();
    if let Ok(record) = serde_json::from_slice::<LockoutRecord>(bytes) {
        accepted.lockout_record = true;
        let again = serde_json::to_vec(&record).expect("a lockout record encodes");
        let again: LockoutRecord =
            serde_json::from_slice(&again).expect("an encoded lockout record decodes");
        assert_eq!(again, record, "a lockout record must survive a round trip");
    }
    accepted.v1_secrets_record = serde_json::from_slice::<V1SecretsRecord>(bytes).is_ok();

    if let Some(device_key) = decode_secrets_payload(bytes) {
        accepted.secrets_payload = true;
        assert_eq!(*encode_secrets_payload(device_key), bytes);
    }
    if let Some(token) = decode_management_payload(bytes) {
        accepted.management_payload = true;
        assert_eq!(*encode_management_payload(token), bytes);
    }
    accepted.v1_payload = decode_v1_payload(bytes).is_some();
    accepted
}
