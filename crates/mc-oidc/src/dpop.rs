//! DPoP (RFC 9449): proofs signed by the device key, the nonces servers hand out, and the
//! check that a bound token is bound to our key.
//!
//! A proof is a JWT with header `typ: dpop+jwt` and the public `jwk`, and claims `jti`, `htm`,
//! `htu` (the URL without query and fragment), `iat` in server time, `nonce` when the server
//! sent a `DPoP-Nonce`, and `ath` (hash of the access token) on resource calls. A proof is
//! single-use: every request, and every retry, gets a fresh one.

use std::collections::HashMap;
use std::sync::Mutex;

use mc_jose::SigningKey;
use mc_secret::SecretString;
use serde_json::{json, Map, Value};
use url::Url;

use crate::OidcError;

/// The `typ` of a DPoP proof.
pub(crate) const PROOF_TYPE: &str = "dpop+jwt";
/// The request and response header carrying a proof, and the one carrying a nonce.
pub const DPOP_HEADER: &str = "DPoP";
pub const DPOP_NONCE_HEADER: &str = "DPoP-Nonce";
/// The error code of a server that wants a (new) nonce.
pub(crate) const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// The algorithm of every proof (the device key is P-256).
pub(crate) const PROOF_ALG: &str = "ES256";
/// RFC 9449 allows any NQCHAR string; a longer one is not a nonce we keep.
const MAX_NONCE_LEN: usize = 512;
/// Origins remembered; beyond that the store starts over (a device talks to few servers).
const MAX_NONCE_ORIGINS: usize = 64;

/// When the client proves possession of the device key with DPoP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// When the IDP advertises ES256 in `dpop_signing_alg_values_supported` (the default).
    #[default]
    Auto,
    /// Always: registration asks for bound tokens, every token request carries a proof.
    Always,
    /// Never: plain Bearer tokens, even when the IDP offers DPoP.
    Never,
}

/// The `htu` of a request to `url`: the URL without query and fragment (RFC 9449 §4.2),
/// and never with a user name or password (the proof is readable by the server and logs).
pub(crate) fn htu(url: &Url) -> String {
    let mut target = url.clone();
    target.set_query(None);
    target.set_fragment(None);
    // Only fails for URLs that cannot have credentials, which then have none.
    let _ = target.set_username("");
    let _ = target.set_password(None);
    target.to_string()
}

/// A fresh proof for `method` on `url` at server time `iat`.
pub(crate) fn proof(
    key: &SigningKey,
    method: &str,
    url: &Url,
    iat: i64,
    nonce: Option<&str>,
    access_token: Option<&SecretString>,
) -> Result<SecretString, OidcError> {
    let public = key.public_jwk();
    // Only the members RFC 7638 hashes: the server's jkt is the thumbprint of exactly this.
    let jwk = json!({ "kty": public.kty, "crv": public.crv, "x": public.x, "y": public.y });
    let mut header = Map::new();
    header.insert("jwk".into(), jwk);
    let mut claims = Map::new();
    claims.insert("jti".into(), Value::String(mc_jose::random_token(16)));
    claims.insert("htm".into(), Value::String(method.to_string()));
    claims.insert("htu".into(), Value::String(htu(url)));
    claims.insert("iat".into(), Value::from(iat));
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), Value::String(nonce.to_string()));
    }
    if let Some(token) = access_token {
        claims.insert(
            "ath".into(),
            Value::String(mc_jose::sha256_b64url(token.expose().as_bytes())),
        );
    }
    key.sign_jwt(PROOF_TYPE, header, &Value::Object(claims))
        .map(SecretString::new)
        .map_err(|e| OidcError::Config(format!("device key cannot sign a DPoP proof: {e}")))
}

/// Whether a `DPoP-Nonce` value is one we may put into a proof: RFC 9449 NQCHAR only
/// (printable ASCII without `"` and `\`), not empty, bounded.
fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// The latest `DPoP-Nonce` each origin sent. Servers may send a new one with any answer.
#[derive(Debug, Default)]
pub(crate) struct NonceStore {
    by_origin: Mutex<HashMap<String, String>>,
}

impl NonceStore {
    pub(crate) fn get(&self, origin: &str) -> Option<String> {
        self.by_origin
            .lock()
            .ok()
            .and_then(|nonces| nonces.get(origin).cloned())
    }

    /// Remembers `nonce` for `origin`; an invalid value is ignored.
    pub(crate) fn observe(&self, origin: &str, nonce: &str) {
        let nonce = nonce.trim();
        if !is_valid_nonce(nonce) {
            return;
        }
        if let Ok(mut nonces) = self.by_origin.lock() {
            if nonces.len() >= MAX_NONCE_ORIGINS && !nonces.contains_key(origin) {
                nonces.clear();
            }
            nonces.insert(origin.to_string(), nonce.to_string());
        }
    }
}

/// Whether a resource's `WWW-Authenticate` asks for a DPoP nonce (RFC 9449 §9):
/// `DPoP error="use_dpop_nonce", ...`.
pub(crate) fn is_resource_nonce_challenge(www_authenticate: &str) -> bool {
    let lower = www_authenticate.to_ascii_lowercase();
    lower.contains("dpop") && lower.contains(&format!("error=\"{USE_DPOP_NONCE}\""))
}

/// Checks that a token bound by `cnf.jkt` is bound to `key`. A token that says it is DPoP
/// (`token_type` DPoP) must carry `cnf.jkt` when it is a JWT we could read; a `cnf.jkt` of
/// another key means the IDP bound it to someone else: refuse it.
pub(crate) fn check_binding(
    token_type: &str,
    claims: &Map<String, Value>,
    key: &SigningKey,
) -> Result<(), OidcError> {
    let jkt = claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .map(|jkt| jkt.as_str().unwrap_or_default());
    match jkt {
        Some(jkt) if jkt == key.kid() => Ok(()),
        Some(_) => Err(OidcError::InvalidToken(
            "the token is DPoP-bound to another key (cnf.jkt); log in again".into(),
        )),
        None if token_type.eq_ignore_ascii_case("dpop") => Err(OidcError::InvalidToken(
            "a DPoP token without cnf.jkt; the IDP must bind it to the device key".into(),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_has_the_rfc_9449_shape() {
        let key = SigningKey::generate().unwrap();
        let url = Url::parse("https://api.example/a/b?x=1#frag").unwrap();
        let token = SecretString::new("at-123");
        let proof = proof(&key, "GET", &url, 1_000, Some("n-1"), Some(&token)).unwrap();
        let jwt = mc_jose::Jwt::decode_unverified(proof.expose()).unwrap();
        assert_eq!(jwt.header.get("typ"), Some(&json!("dpop+jwt")));
        assert_eq!(jwt.alg(), Some("ES256"));
        let jwk: mc_jose::Jwk =
            serde_json::from_value(jwt.header.get("jwk").unwrap().clone()).unwrap();
        assert_eq!(jwk.thumbprint().unwrap(), key.kid());
        // verifies with the embedded key
        let set = mc_jose::JwkSet {
            keys: vec![mc_jose::Jwk {
                kid: Some(key.kid().into()),
                ..jwk
            }],
        };
        mc_jose::verify_es256(proof.expose(), &set).unwrap();
        assert_eq!(jwt.claim_str("htm"), Some("GET"));
        assert_eq!(jwt.claim_str("htu"), Some("https://api.example/a/b"));
        assert_eq!(jwt.claim_i64("iat"), Some(1_000));
        assert_eq!(jwt.claim_str("nonce"), Some("n-1"));
        assert_eq!(
            jwt.claim_str("ath"),
            Some(mc_jose::sha256_b64url(b"at-123").as_str())
        );
        assert!(jwt.claim_str("jti").is_some_and(|j| j.len() >= 16));
        let again = super::proof(&key, "GET", &url, 1_000, None, None).unwrap();
        let again = mc_jose::Jwt::decode_unverified(again.expose()).unwrap();
        assert_ne!(again.claim_str("jti"), jwt.claim_str("jti"));
        assert!(again.claims.get("nonce").is_none() && again.claims.get("ath").is_none());
        assert!(jwt.header.get("jwk").unwrap().get("d").is_none());
    }

    #[test]
    fn userinfo_never_reaches_the_htu() {
        let url = Url::parse("https://user:s3cret@api.example/a?q=1").unwrap();
        assert_eq!(htu(&url), "https://api.example/a");
    }

    #[test]
    fn nonces_are_kept_per_origin_and_checked() {
        let store = NonceStore::default();
        store.observe("https://a", "n1");
        store.observe("https://b", "n2");
        store.observe("https://a", "n3");
        assert_eq!(store.get("https://a").as_deref(), Some("n3"));
        assert_eq!(store.get("https://b").as_deref(), Some("n2"));
        store.observe("https://a", "bad\"quote");
        store.observe("https://a", "");
        store.observe("https://a", &"x".repeat(600));
        assert_eq!(store.get("https://a").as_deref(), Some("n3"));
        for i in 0..100 {
            store.observe(&format!("https://o{i}"), "n");
        }
        assert!(store.by_origin.lock().unwrap().len() <= MAX_NONCE_ORIGINS);
    }

    #[test]
    fn resource_challenges_are_recognised() {
        assert!(is_resource_nonce_challenge(
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#
        ));
        assert!(!is_resource_nonce_challenge(
            r#"DPoP error="invalid_token""#
        ));
        assert!(!is_resource_nonce_challenge(r#"Bearer realm="x""#));
    }

    #[test]
    fn binding_must_name_the_device_key() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let bound = |jkt: &str| {
            let mut claims = Map::new();
            claims.insert("cnf".into(), json!({ "jkt": jkt }));
            claims
        };
        assert!(check_binding("DPoP", &bound(key.kid()), &key).is_ok());
        assert!(matches!(
            check_binding("DPoP", &bound(other.kid()), &key),
            Err(OidcError::InvalidToken(_))
        ));
        assert!(matches!(
            check_binding("Bearer", &bound(other.kid()), &key),
            Err(OidcError::InvalidToken(_))
        ));
        assert!(matches!(
            check_binding("DPoP", &Map::new(), &key),
            Err(OidcError::InvalidToken(_))
        ));
        assert!(check_binding("Bearer", &Map::new(), &key).is_ok());
    }
}
