//! Schema 1 -> 2.
//!
//! Schema 1 (the first release) had mode NO only: per user a `users` record (format 1) and a
//! `user_secrets` record `{format: 1, data_key: {mode: NO, algorithm, nonce, ciphertext},
//! secrets}` whose payload held the device key AND the registration token, both under the
//! data key. Schema 2 moves the token to its own record under the `KeyProvider` key (so a
//! blocked user can still be deleted at the IDP) and changes the AAD, so every user must be
//! decrypted and sealed again.
//!
//! Why at open, all users in ONE transaction, rather than lazily per record: schema 1 users are
//! all mode NO, so the `KeyProvider` key (needed anyway to use any of them) is all the
//! migration needs; after it the store holds one format only, so no read path keeps schema 1
//! code; and one commit that also writes `schema_version = 2` means a crash leaves either the
//! untouched schema 1 store (migrated again at the next open) or the complete schema 2 store,
//! never a mix. A user whose schema 1 record cannot be read is left as it was and reported as
//! damaged by every later read, as it was before; the others migrate. If the key itself is
//! unavailable the open fails and nothing is changed.

use std::collections::BTreeSet;

use mc_secret::SecretBytes;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::records::{
    encode_management_payload, encode_secrets_payload, ManagementRecord, SecretsRecord, UserRecord,
    WrappedKey, RECORD_FORMAT,
};
use super::{
    encode_json, MANAGEMENT_TABLE, META_TABLE, SCHEMA_VERSION_KEY, SECRETS_TABLE, USERS_TABLE,
};
use crate::backend::{KvBackend, Write};
use crate::error::StoreError;
use crate::keys::random_key;
use crate::seal::{self, Sealed};
use crate::user::{StoredAuthMode, UserId};

const V1_FORMAT: u32 = 1;
const V1_PAYLOAD_FORMAT: u8 = 1;

#[derive(Deserialize)]
pub(super) struct V1SecretsRecord {
    format: u32,
    data_key: V1WrappedKey,
    secrets: Sealed,
}

#[derive(Deserialize)]
struct V1WrappedKey {
    mode: StoredAuthMode,
    #[serde(flatten)]
    sealed: Sealed,
}

/// The schema 1 AAD, field for field (its JSON form is what was authenticated).
#[derive(Serialize)]
struct V1SealContext<'a> {
    purpose: &'static str,
    table: &'static str,
    tenant_id: &'a str,
    user_id: &'a str,
    mode: StoredAuthMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    bound: Option<V1BoundMetadata<'a>>,
}

#[derive(Serialize)]
struct V1BoundMetadata<'a> {
    enrollment_client_id: &'a str,
    server_url: &'a str,
    issuer: &'a str,
    registration_client_uri: Option<&'a str>,
    created_at: i64,
}

fn v1_aad(record: &UserRecord, purpose: &'static str, bound: bool) -> Result<Vec<u8>, StoreError> {
    let context = V1SealContext {
        purpose,
        table: SECRETS_TABLE,
        tenant_id: &record.tenant_id,
        user_id: &record.user_id,
        mode: record.authentication_mode,
        bound: bound.then(|| V1BoundMetadata {
            enrollment_client_id: &record.enrollment_client_id,
            server_url: &record.server_url,
            issuer: &record.issuer,
            registration_client_uri: record.registration_client_uri.as_deref(),
            created_at: record.created_at,
        }),
    };
    serde_json::to_vec(&context)
        .map_err(|error| StoreError::Backend(format!("cannot encode the record context: {error}")))
}

/// The schema 1 payload: `[1][u32 BE len][device key][0 | 1 [u32 BE len][token]]`.
pub(super) fn decode_v1_payload(payload: &[u8]) -> Option<(&[u8], Option<&str>)> {
    fn take_sized(input: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = input.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (&V1_PAYLOAD_FORMAT, rest) = payload.split_first()? else {
        return None;
    };
    let (device_key, rest) = take_sized(rest)?;
    let (&has_token, rest) = rest.split_first()?;
    let (token, rest) = match has_token {
        0 => (None, rest),
        1 => {
            let (token, rest) = take_sized(rest)?;
            (Some(std::str::from_utf8(token).ok()?), rest)
        }
        _ => return None,
    };
    rest.is_empty().then_some((device_key, token))
}

/// Why one user was left as it was.
enum Skip {
    Undecodable,
    Undecryptable,
}

/// Builds the whole migration batch, ending with the current `schema_version` (3 holds
/// schema 2 records); the caller commits it
/// (holding the store's write lock).
pub(super) fn v1_to_v2_batch(
    backend: &dyn KvBackend,
    wrapping_key: &SecretBytes,
) -> Result<Vec<Write>, StoreError> {
    let mut keys: BTreeSet<Vec<u8>> = backend.keys(USERS_TABLE)?.into_iter().collect();
    keys.extend(backend.keys(SECRETS_TABLE)?);
    let mut batch = Vec::new();
    let (mut migrated, mut skipped) = (0usize, 0usize);
    for key in keys {
        let Some(id) = UserId::from_key(&key) else {
            tracing::warn!("schema migration: leaving a record with an undecodable key");
            skipped += 1;
            continue;
        };
        match migrate_user(backend, wrapping_key, &id, &key)? {
            Ok(writes) => {
                batch.extend(writes);
                migrated += 1;
            }
            Err(skip) => {
                let reason = match skip {
                    Skip::Undecodable => "its records cannot be decoded",
                    Skip::Undecryptable => "its secrets do not decrypt under the store key",
                };
                tracing::warn!(user = %id, reason, "schema migration: leaving this user as it was (it stays unusable)");
                skipped += 1;
            }
        }
    }
    batch.push(Write::put(
        META_TABLE,
        SCHEMA_VERSION_KEY,
        super::SCHEMA_VERSION.to_string(),
    ));
    tracing::info!(migrated, skipped, "migrating the store from schema 1 to 2");
    Ok(batch)
}

fn migrate_user(
    backend: &dyn KvBackend,
    wrapping_key: &SecretBytes,
    id: &UserId,
    key: &[u8],
) -> Result<Result<Vec<Write>, Skip>, StoreError> {
    let (Some(raw_record), Some(raw_secrets)) = (
        backend.get(USERS_TABLE, key)?,
        backend.get(SECRETS_TABLE, key)?,
    ) else {
        return Ok(Err(Skip::Undecodable));
    };
    // Serde messages are not logged: they can quote parts of a record.
    let (Ok(mut record), Ok(secrets)) = (
        serde_json::from_slice::<UserRecord>(&raw_record),
        serde_json::from_slice::<V1SecretsRecord>(&raw_secrets),
    ) else {
        return Ok(Err(Skip::Undecodable));
    };
    if record.format != V1_FORMAT
        || secrets.format != V1_FORMAT
        || record.tenant_id != id.tenant_id
        || record.user_id != id.user_id
        || record.authentication_mode != StoredAuthMode::No
        || secrets.data_key.mode != StoredAuthMode::No
    {
        return Ok(Err(Skip::Undecodable));
    }
    let Ok(data_key) = seal::open(
        wrapping_key.expose(),
        &v1_aad(&record, "data-key", false)?,
        &secrets.data_key.sealed,
    )?
    else {
        return Ok(Err(Skip::Undecryptable));
    };
    let Ok(payload) = seal::open(
        &data_key,
        &v1_aad(&record, "secrets", true)?,
        &secrets.secrets,
    )?
    else {
        return Ok(Err(Skip::Undecryptable));
    };
    let Some((device_key, token)) = decode_v1_payload(&payload) else {
        return Ok(Err(Skip::Undecodable));
    };

    record.format = RECORD_FORMAT;
    // A new data key: the old one was bound to the schema 1 AAD only.
    let data_key: SecretBytes = random_key()?;
    let secrets_payload: Zeroizing<Vec<u8>> = encode_secrets_payload(device_key);
    let new_secrets = SecretsRecord {
        format: RECORD_FORMAT,
        data_key: WrappedKey::No {
            sealed: seal::seal(
                wrapping_key.expose(),
                &record.data_key_aad(StoredAuthMode::No)?,
                data_key.expose(),
            )?,
        },
        secrets: seal::seal(data_key.expose(), &record.secrets_aad()?, &secrets_payload)?,
    };
    let management = ManagementRecord {
        format: RECORD_FORMAT,
        sealed: seal::seal(
            wrapping_key.expose(),
            &record.management_aad()?,
            &encode_management_payload(token),
        )?,
    };
    Ok(Ok(vec![
        Write::put(USERS_TABLE, key.to_vec(), encode_json(&record)?),
        Write::put(SECRETS_TABLE, key.to_vec(), encode_json(&new_secrets)?),
        Write::put(MANAGEMENT_TABLE, key.to_vec(), encode_json(&management)?),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_payloads_decode_and_damaged_ones_do_not() {
        let mut payload = vec![1, 0, 0, 0, 2, b'k', b'k', 1, 0, 0, 0, 1, b't'];
        assert_eq!(decode_v1_payload(&payload), Some((&b"kk"[..], Some("t"))));
        payload.push(0);
        assert_eq!(decode_v1_payload(&payload), None);
        assert_eq!(
            decode_v1_payload(&[1, 0, 0, 0, 1, b'k', 0]),
            Some((&b"k"[..], None))
        );
        for bad in [&[][..], &[2], &[1, 0, 0, 0, 9, 1], &[1, 0, 0, 0, 0, 2]] {
            assert_eq!(decode_v1_payload(bad), None);
        }
    }
}
