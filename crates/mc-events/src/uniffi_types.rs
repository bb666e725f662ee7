//! Feature `uniffi`: how the catalog's types that UniFFI does not know cross the FFI boundary.
//! Every request, result and pushed type derives `uniffi::Record` / `uniffi::Enum` where it is
//! declared (the `catalog!` macro for `RequestEvent`, `RequestKind` and `Event`); a type that
//! does not cannot be a variant of those enums, so the compiler catches a missing derive.
//!
//! - [`SecretString`] crosses as a plain string: the host needs its token and gives its
//!   password. On the Rust side it stays a `SecretString` (redacted `Debug`, zeroized).
//! - `BTreeMap<String, String>` (claims, headers, configuration) crosses as a map; the Rust
//!   side keeps its keys sorted, as the JSON form has them.
//! - [`RequestId`] crosses as its string.

use std::collections::{BTreeMap, HashMap};

use mc_secret::SecretString;

use crate::types::RequestId;

uniffi::custom_type!(SecretString, String, {
    remote,
    // The host needs the token in clear; from here on it is the host's to protect.
    lower: |secret| secret.expose().to_owned(),
    try_lift: |text| Ok(SecretString::from(text)),
});

/// A map of strings, keys sorted on the Rust side (`BTreeMap`).
type StringMap = BTreeMap<String, String>;

uniffi::custom_type!(StringMap, HashMap<String, String>, {
    remote,
    lower: |map| map.into_iter().collect(),
    try_lift: |map| Ok(map.into_iter().collect()),
});

uniffi::custom_type!(RequestId, String, {
    lower: |id| id.into_string(),
    try_lift: |text| Ok(RequestId::new(text)),
});
