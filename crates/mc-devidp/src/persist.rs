//! Optional persistence of tenant keys and registrations in `state_dir`.
//!
//! One JSON file, written whole on every change to a temporary file and renamed over the old one,
//! so a crash leaves either the old or the new state, never half of one. The file holds the tenants'
//! private signing keys (PKCS#8, base64url) and the registration access tokens UNENCRYPTED: this is a
//! development tool. It is created with mode 0600 (owner only) on Unix, in a 0700 directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mc_jose::Jwk;
use mc_secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

use crate::DevIdpError;

const STATE_FILE: &str = "devidp-state.json";
const TEMP_FILE: &str = ".devidp-state.json.tmp";
const FORMAT_VERSION: u32 = 1;

/// Everything the IDP keeps across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StateFile {
    pub version: u32,
    pub tenants: BTreeMap<String, TenantFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TenantFile {
    /// PKCS#8 of the tenant's ES256 signing key, base64url.
    pub signing_key_pkcs8: SecretString,
    pub clients: Vec<ClientRecord>,
}

/// One registered client (one enrolled device).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ClientRecord {
    pub client_id: String,
    /// The anonymous user id put in `sub` of the client's tokens.
    pub sub: String,
    pub software_id: String,
    pub client_name: Option<String>,
    pub grant_types: Vec<String>,
    /// The client's public key; it authenticates with `private_key_jwt` signed by the private half.
    pub jwk: Jwk,
    pub registration_access_token: SecretString,
    pub client_id_issued_at: i64,
    /// RFC 9449 §5.2: every token request of this client must carry a DPoP proof.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
}

pub(crate) fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Reads the state file; `Ok(None)` when there is none yet.
pub(crate) fn load(dir: &Path) -> Result<Option<StateFile>, DevIdpError> {
    let path = state_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => SecretBytes::new(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(DevIdpError::State {
                path,
                reason: format!("cannot read: {error}"),
            })
        }
    };
    // serde_json's error names line/column and what was expected, never the content.
    let state: StateFile =
        serde_json::from_slice(bytes.expose()).map_err(|error| DevIdpError::State {
            path: path.clone(),
            reason: format!("not a dev IDP state file: {error}"),
        })?;
    if state.version != FORMAT_VERSION {
        return Err(DevIdpError::State {
            path,
            reason: format!(
                "format version {} is not the supported {FORMAT_VERSION}",
                state.version
            ),
        });
    }
    Ok(Some(state))
}

/// Writes the state atomically (temporary file, fsync, rename). The error says what failed, never content.
pub(crate) fn save(dir: &Path, state: &StateFile) -> Result<(), String> {
    create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = SecretBytes::new(
        serde_json::to_vec_pretty(state).map_err(|e| format!("cannot encode state: {e}"))?,
    );
    let temp = dir.join(TEMP_FILE);
    let target = state_path(dir);
    // A temp file left by a crash may have other permissions: start from scratch.
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove stale {}: {e}", temp.display())),
    }
    let mut file =
        open_private(&temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    file.write_all(json.expose())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", temp.display()))?;
    drop(file);
    std::fs::rename(&temp, &target)
        .map_err(|e| format!("cannot rename into {}: {e}", target.display()))?;
    // Make the rename itself durable where the platform allows syncing a directory.
    if let Ok(dir_handle) = std::fs::File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
