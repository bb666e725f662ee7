//! The JSON configuration of `mc_runtime_new`, read into a [`RuntimeConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mc_runtime::DpopMode;
use mc_runtime::{RuntimeConfig, StoreLocation};
use serde::Deserialize;

/// The configuration object a C host passes. Unknown fields are refused (a typo should not
/// silently fall back to a default).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HostConfig {
    server_url: String,
    #[serde(default)]
    store_directory: Option<String>,
    #[serde(default)]
    memory: bool,
    #[serde(default)]
    issuer_template: Option<String>,
    #[serde(default)]
    dpop: Option<DpopSetting>,
    #[serde(default)]
    http_timeout_ms: Option<u64>,
    #[serde(default)]
    allow_insecure_http: bool,
    /// Audience -> origins that may receive its IAM token (`https://api.example.com`,
    /// a `*.` wildcard host such as `*.example.com`, plain http only to loopback). Without an
    /// entry, the token of an audience is sent nowhere.
    #[serde(default)]
    audience_origins: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum DpopSetting {
    Auto,
    Always,
    Never,
}

/// Reads the configuration; the error says which field is wrong and what to send instead.
pub(crate) fn parse(json: &str) -> Result<RuntimeConfig, String> {
    let host: HostConfig = serde_json::from_str(json).map_err(|e| {
        format!("the configuration JSON is not usable ({e}); see mc_runtime_new in mc_runtime.h")
    })?;
    if host.server_url.trim().is_empty() {
        return Err("configuration field `serverUrl` is empty: give the IDP's base URL".into());
    }
    let store = match (host.store_directory, host.memory) {
        (Some(dir), false) if !dir.is_empty() => StoreLocation::Directory(PathBuf::from(dir)),
        (None, true) => StoreLocation::Memory,
        (Some(_), true) => {
            return Err(
                "configuration has both `storeDirectory` and `memory`: give exactly one".into(),
            )
        }
        (Some(_), false) => {
            return Err("configuration field `storeDirectory` is empty: give a directory".into())
        }
        (None, false) => {
            return Err(
                "configuration needs `storeDirectory` (a directory the app owns) \
                        or `\"memory\": true` (tests only: lost on exit)"
                    .into(),
            )
        }
    };
    let mut config = RuntimeConfig::new(host.server_url, store);
    if let Some(template) = host.issuer_template {
        config.oidc.issuer_template = template;
    }
    if let Some(dpop) = host.dpop {
        config.oidc.dpop = match dpop {
            DpopSetting::Auto => DpopMode::Auto,
            DpopSetting::Always => DpopMode::Always,
            DpopSetting::Never => DpopMode::Never,
        };
    }
    if let Some(ms) = host.http_timeout_ms {
        if ms == 0 {
            return Err("configuration field `httpTimeoutMs` is 0: give at least 1".into());
        }
        config.oidc.http_timeout = Duration::from_millis(ms);
    }
    config.oidc.allow_insecure_http = host.allow_insecure_http;
    for (audience, origins) in &host.audience_origins {
        for origin in origins {
            config
                .audience_origins
                .allow(audience, origin)
                .map_err(|e| format!("configuration field `audienceOrigins`.`{audience}`: {e}"))?;
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_configuration_is_read() {
        let config = parse(
            r#"{"serverUrl": "http://127.0.0.1:1/", "storeDirectory": "/tmp/x",
                "issuerTemplate": "{server}", "dpop": "NEVER", "httpTimeoutMs": 1500,
                "audienceOrigins": {"demo-api": ["https://api.example.com", "http://127.0.0.1:1"]}}"#,
        )
        .unwrap();
        assert_eq!(config.server_url, "http://127.0.0.1:1");
        assert!(
            matches!(config.store, StoreLocation::Directory(ref d) if d == &PathBuf::from("/tmp/x"))
        );
        assert_eq!(config.oidc.issuer_template, "{server}");
        assert_eq!(config.oidc.dpop, DpopMode::Never);
        assert_eq!(config.oidc.http_timeout, Duration::from_millis(1500));
        assert_eq!(config.audience_origins.of("demo-api").len(), 2);
        assert!(config.audience_origins.of("other").is_empty());
    }

    #[test]
    fn bad_configurations_name_the_problem() {
        let cases = [
            ("{}", "serverUrl"),
            (r#"{"serverUrl": "http://a"}"#, "storeDirectory"),
            (
                r#"{"serverUrl": "http://a", "memory": true, "storeDirectory": "/x"}"#,
                "exactly one",
            ),
            (r#"{"serverUrl": " ", "memory": true}"#, "empty"),
            (
                r#"{"serverUrl": "http://a", "memory": true, "serverURL": "x"}"#,
                "serverURL",
            ),
            (
                r#"{"serverUrl": "http://a", "memory": true, "dpop": "SOMETIMES"}"#,
                "AUTO",
            ),
            (
                r#"{"serverUrl": "http://a", "memory": true, "httpTimeoutMs": 0}"#,
                "httpTimeoutMs",
            ),
            ("[1]", "configuration"),
            (
                r#"{"serverUrl": "http://a", "memory": true, "audienceOrigins": {"api": ["http://api.example.com"]}}"#,
                "audienceOrigins",
            ),
            (
                r#"{"serverUrl": "http://a", "memory": true, "audienceOrigins": {"api": "https://x"}}"#,
                "configuration",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
