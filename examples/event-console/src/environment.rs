//! What every mode runs against: the IDP (in-process or external), the store directory and the
//! runtime itself.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use mc_devidp::{DevIdp, DevIdpConfig};
use mc_runtime::{MasterController, RuntimeConfig, StoreLocation};
use tempfile::TempDir;

use crate::cli::CommonArgs;

/// The running pieces. Fields drop in declaration order: the runtime stops before the IDP, and
/// the temporary store goes last.
pub struct Environment {
    pub runtime: MasterController,
    /// Base URL of the IDP, without a trailing slash.
    pub server_url: String,
    dev_idp: Option<DevIdp>,
    store_dir: PathBuf,
    temporary_store: Option<TempDir>,
}

impl Environment {
    /// Starts the dev IDP unless `--server-url` names one, prepares the store directory and
    /// starts the runtime. Must run inside the tokio runtime (the dev IDP serves on it).
    pub async fn open(args: &CommonArgs) -> anyhow::Result<Environment> {
        let (dev_idp, server_url) = match &args.server_url {
            Some(url) => (None, checked_server_url(url)?),
            None => {
                let idp = DevIdp::start(([127, 0, 0, 1], 0).into(), DevIdpConfig::default())
                    .await
                    .context("starting the in-process development IDP failed")?;
                let url = idp.base_url();
                (Some(idp), url)
            }
        };
        let (store_dir, temporary_store) = match &args.store {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("event-console-")
                    .tempdir()
                    .context(
                        "creating a temporary store directory failed; give one with --store DIR",
                    )?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut config = RuntimeConfig::new(
            server_url.clone(),
            StoreLocation::Directory(store_dir.clone()),
        );
        if dev_idp.is_some() {
            // The in-process IDP's /demo/echo is the demo audience's resource.
            config
                .audience_origins
                .allow(mc_devidp::DEMO_AUDIENCE, &server_url)
                .map_err(anyhow::Error::msg)?;
        }
        for (audience, origin) in &args.audience_origin {
            config
                .audience_origins
                .allow(audience, origin)
                .map_err(|e| anyhow::anyhow!("--audience-origin {audience}={origin}: {e}"))?;
        }
        if let Some(script) = &args.software_biometric {
            config.biometric = Some(software_biometric(&script.0));
        }
        let runtime = MasterController::start(config).with_context(|| {
            format!(
                "starting the runtime with store {} failed",
                store_dir.display()
            )
        })?;
        Ok(Environment {
            runtime,
            server_url,
            dev_idp,
            store_dir,
            temporary_store,
        })
    }

    /// One line for humans: which IDP and which store.
    pub fn describe(&self) -> String {
        let idp = if self.dev_idp.is_some() {
            "in-process dev IDP"
        } else {
            "external IDP"
        };
        let store = if self.temporary_store.is_some() {
            "temporary, removed at exit"
        } else {
            "kept"
        };
        format!(
            "server {} ({idp}), store {} ({store})",
            self.server_url,
            self.store_dir.display()
        )
    }

    /// The in-process dev IDP, when there is one (its request counters tell cache hits apart).
    pub fn dev_idp(&self) -> Option<&DevIdp> {
        self.dev_idp.as_ref()
    }

    /// Stops the runtime, then the dev IDP (letting its requests finish), then removes a
    /// temporary store.
    pub async fn close(self) {
        let Environment {
            runtime,
            dev_idp,
            temporary_store,
            ..
        } = self;
        runtime.shutdown();
        // Joins the runtime's thread; off the async workers so they keep serving the IDP.
        let _ = tokio::task::spawn_blocking(move || drop(runtime)).await;
        if let Some(idp) = dev_idp {
            idp.shutdown().await;
        }
        drop(temporary_store);
    }
}

/// Accepts only absolute http(s) URLs; the runtime appends the tenant paths to it.
/// `--software-biometric`: the demo stand-in for the platform's biometric key, its prompts
/// scripted. Said on stderr so nobody mistakes it for a protection.
fn software_biometric(
    outcomes: &[crate::cli::BiometricOutcome],
) -> std::sync::Arc<dyn mc_runtime::BiometricKeyProvider> {
    use crate::cli::BiometricOutcome;
    use mc_runtime::ScriptedOutcome;
    eprintln!(
        "note: --software-biometric is a DEMO STAND-IN for the platform's biometric key: no \
         sensor, no protection; prompts follow the script {outcomes:?}, then succeed"
    );
    let biometric = mc_runtime::SoftwareBiometric::in_memory();
    for outcome in outcomes {
        biometric.script_next(match outcome {
            BiometricOutcome::Ok => ScriptedOutcome::Succeed,
            BiometricOutcome::Cancel => ScriptedOutcome::Cancel,
            BiometricOutcome::Lockout => ScriptedOutcome::Lockout(7),
            BiometricOutcome::Invalidated => ScriptedOutcome::Invalidate,
        });
    }
    std::sync::Arc::new(biometric)
}

fn checked_server_url(text: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(text).with_context(|| {
        format!("--server-url `{text}` is not a URL; give one like http://127.0.0.1:8080")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("--server-url `{text}` must be an http:// or https:// URL with a host");
    }
    Ok(text.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::checked_server_url;

    #[test]
    fn server_url_must_be_absolute_http() {
        assert_eq!(
            checked_server_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(checked_server_url("127.0.0.1:8080").is_err());
        assert!(checked_server_url("ftp://example.com").is_err());
        assert!(checked_server_url("").is_err());
    }
}
